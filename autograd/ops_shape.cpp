// Views and reshaping. A view shares its input's storage; its backward maps the gradient back
// to the input's shape, so gradients reach the base through any chain of views.
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/core/view.h"
#include "rotor/kernels/index.h"

namespace rotor {

namespace {
// A new handle on the same data, so recording a node never rewrites the input's own history.
Tensor alias(const Tensor& t) { return Tensor::view_of(t, t.shape(), t.strides(), t.offset()); }

// Zeros of `shape` with g written into the window `place` selects (the adjoint of a slice).
Tensor scatter_into_zeros(const Shape& shape, DType dtype, const Tensor& g,
                          const std::function<Tensor(const Tensor&)>& place) {
  Tensor z = zeros(shape, dtype);
  core::copy_into(place(z), g);
  return z;
}
}  // namespace

static const OpDef kReshape{"reshape"}, kPermute{"permute"}, kSlice{"slice"}, kSelect{"select"},
    kExpand{"expand"}, kContiguous{"contiguous"}, kToDtype{"to_dtype"}, kConcat{"concat"};

namespace {
// Records out, a view or reshaped copy of x with x's elements in order: its backward reshapes
// the gradient back to x's shape.
Tensor record_reshape(const Tensor& x, Tensor out) {
  if (out.is_same(x)) out = alias(x);
  if (needs_grad({x}))
    record(kReshape, {x}, {out}, [in = x.shape()](const TensorList& g, auto&) { return TensorList{reshape(g[0], in)}; });
  return out;
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return record_reshape(x, core::reshape(x, shape)); }
Tensor view(const Tensor& x, const Shape& shape) { return record_reshape(x, core::view(x, shape)); }

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = normalize_dim(start_dim, x.dim(), "flatten"), e = normalize_dim(end_dim, x.dim(), "flatten");
  ROTOR_CHECK(s <= e, "flatten", "start_dim ", start_dim, " after end_dim ", end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int64_t d = s; d <= e; ++d) n *= x.shape()[size_t(d)];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x) { return record_reshape(x, core::squeeze(x)); }
Tensor squeeze(const Tensor& x, int64_t dim) { return record_reshape(x, core::squeeze(x, dim)); }
Tensor unsqueeze(const Tensor& x, int64_t dim) { return record_reshape(x, core::unsqueeze(x, dim)); }

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out = core::permute(x, dims);
  if (needs_grad({x})) {
    std::vector<int64_t> inverse(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inverse[size_t(normalize_dim(dims[i], x.dim(), "permute"))] = int64_t(i);
    record(kPermute, {x}, {out}, [inverse](const TensorList& g, auto&) { return TensorList{permute(g[0], inverse)}; });
  }
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> dims(size_t(x.dim()));
  for (int64_t d = 0; d < x.dim(); ++d) dims[size_t(d)] = d;
  std::swap(dims[size_t(normalize_dim(dim0, x.dim(), "transpose"))], dims[size_t(normalize_dim(dim1, x.dim(), "transpose"))]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = core::slice(x, dim, start, end, step);
  if (needs_grad({x}))
    record(kSlice, {x}, {out}, [shape = x.shape(), dtype = x.dtype(), dim, start, end, step](const TensorList& g, auto&) {
      return TensorList{scatter_into_zeros(shape, dtype, g[0],
                                           [&](const Tensor& z) { return core::slice(z, dim, start, end, step); })};
    });
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  core::narrow(x, dim, start, length);  // bounds check with narrow's message
  return slice(x, dim, start, start + length);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  Tensor out = core::select(x, dim, index);
  if (needs_grad({x}))
    record(kSelect, {x}, {out}, [shape = x.shape(), dtype = x.dtype(), dim, index](const TensorList& g, auto&) {
      return TensorList{
          scatter_into_zeros(shape, dtype, g[0], [&](const Tensor& z) { return core::select(z, dim, index); })};
    });
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = core::expand(x, shape);
  // The engine sums the broadcast gradient back to x's shape.
  if (needs_grad({x})) record(kExpand, {x}, {out}, [](const TensorList& g, auto&) { return TensorList{g[0]}; });
  return out;
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return expand(x, shape); }

Tensor contiguous(const Tensor& x) {
  Tensor out = core::contiguous(x);
  if (out.is_same(x)) out = alias(x);
  if (needs_grad({x})) record(kContiguous, {x}, {out}, [](const TensorList& g, auto&) { return TensorList{g[0]}; });
  return out;
}

Tensor clone(const Tensor& x) {
  Tensor out = core::clone(x);
  if (needs_grad({x})) record(kContiguous, {x}, {out}, [](const TensorList& g, auto&) { return TensorList{g[0]}; });
  return out;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  Tensor out = core::to_dtype(x, dtype);
  if (out.is_same(x)) out = alias(x);
  if (needs_grad({x}) && is_floating(dtype))
    record(kToDtype, {x}, {out}, [from = x.dtype()](const TensorList& g, auto&) { return TensorList{to_dtype(g[0], from)}; });
  return out;
}

Tensor concat(const TensorList& xs, int64_t dim) {
  Tensor out = kernels::concat(xs, dim);
  if (needs_grad(xs)) {
    int64_t d = normalize_dim(dim, xs[0].dim(), "concat");
    std::vector<int64_t> sizes;
    for (const Tensor& x : xs) sizes.push_back(x.shape()[size_t(d)]);
    record(kConcat, xs, {out}, [sizes, d](const TensorList& g, const std::vector<bool>& needs) {
      TensorList grads;
      int64_t at = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        grads.push_back(needs[i] ? core::narrow(g[0], d, at, sizes[i]) : Tensor());
        at += sizes[i];
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const TensorList& xs, int64_t dim) {
  ROTOR_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  int64_t d = normalize_dim(dim, xs[0].dim() + 1, "stack");
  TensorList parts;
  for (const Tensor& x : xs) {
    ROTOR_CHECK(x.shape() == xs[0].shape(), "stack", "shapes differ: ", shape_str(xs[0].shape()), " and ",
                shape_str(x.shape()));
    parts.push_back(unsqueeze(x, d));
  }
  return concat(parts, d);
}

TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    ROTOR_CHECK(s >= 0, "split", "negative size ", s, " in ", shape_str(sizes));
    total += s;
  }
  ROTOR_CHECK(total == x.shape()[size_t(d)], "split", "sizes add up to ", total, " but dim ", d, " of shape ",
              shape_str(x.shape()), " has ", x.shape()[size_t(d)]);
  TensorList out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, d, at, s));
    at += s;
  }
  return out;
}

TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  ROTOR_CHECK(chunks > 0, "chunk", "chunks must be positive, got ", chunks);
  int64_t d = normalize_dim(dim, x.dim(), "chunk");
  const int64_t n = x.shape()[size_t(d)], step = (n + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += step) sizes.push_back(std::min(step, n - at));
  return split(x, sizes, d);
}

// ---- gradcheck cases ----

ROTOR_GRADCHECK({"reshape", {transposed({3, 4})}, [](auto& x) {
                   return TensorList{reshape(x[0], {2, 6}), flatten(x[0]), view(contiguous(x[0]), {4, 3})};
                 }});
ROTOR_GRADCHECK({"permute", {input({2, 3, 4})}, [](auto& x) { return TensorList{permute(x[0], {2, 0, 1}) * 1.5}; }});
ROTOR_GRADCHECK({"slice", {sliced({4, 6})}, [](auto& x) {
                   return TensorList{slice(x[0], 1, 1, 6, 2), narrow(x[0], 0, 1, 2)};
                 }});
ROTOR_GRADCHECK({"select", {input({3, 4})}, [](auto& x) { return TensorList{select(x[0], 1, -1), select(x[0], 0, 1)}; }});
ROTOR_GRADCHECK({"expand", {input({3, 1})}, [](auto& x) {
                   return TensorList{expand(x[0], {2, 3, 4}) * expand(x[0], {2, 3, 4})};
                 }});
ROTOR_GRADCHECK({"squeeze_unsqueeze", {input({3, 1, 2})}, [](auto& x) {
                   return TensorList{unsqueeze(squeeze(x[0]), 0), squeeze(x[0], 1)};
                 }});
ROTOR_GRADCHECK({"view_of_view", {input({4, 6})}, [](auto& x) {
                   return TensorList{select(transpose(slice(x[0], 1, 1, 5), 0, 1), 0, 2)};
                 }});
ROTOR_GRADCHECK({"contiguous_clone", {transposed({3, 4})}, [](auto& x) {
                   return TensorList{contiguous(x[0]) * clone(x[0])};
                 }});
ROTOR_GRADCHECK({"to_dtype", {input({3, 4})}, [](auto& x) {
                   DType other = x[0].dtype() == DType::Float64 ? DType::Float32 : DType::Float64;
                   // A round trip through the other precision. It is linear, so a wide step is exact
                   // up to float32 rounding of the perturbed inputs (~1e-7 / 2e-2 ~ 5e-6).
                   return TensorList{to_dtype(to_dtype(x[0], other), x[0].dtype()) + x[0]};
                 },
                 {.eps = 1e-2, .atol = 2e-5}});
ROTOR_GRADCHECK({"concat", {input({2, 3}), transposed({2, 2})}, [](auto& x) {
                   return TensorList{concat({x[0], x[1], x[0]}, 1)};
                 }});
ROTOR_GRADCHECK({"stack_split", {input({3, 4}), input({3, 4})}, [](auto& x) {
                   TensorList parts = split(stack({x[0], x[1]}, 1), {1, 3}, 2);
                   TensorList halves = chunk(x[0], 2, 1);
                   return TensorList{parts[0], parts[1] * 2.0, halves[1]};
                 }});

}  // namespace rotor
