// Reductions and shape ops a PyTorch user expects beside the basic ones: prod, var/std, flip,
// repeat and constant pad.
#include <algorithm>
#include <cmath>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/core/view.h"
#include "rotor/kernels/reduce.h"

namespace rotor {

static const OpDef kProd{"prod"}, kFlip{"flip"}, kPad{"pad"};

// ---- prod ----

namespace {
// x with the kept dims first (in order) and the reduced dims last, as a contiguous [rows, n].
struct RowLayout {
  std::vector<int64_t> perm, inverse;
  Shape permuted;
  int64_t rows = 1, n = 1;
};

RowLayout row_layout(const Shape& shape, const std::vector<int64_t>& dims) {
  RowLayout l;
  std::vector<bool> reduced(shape.size(), false);
  for (int64_t d : dims) reduced[size_t(d)] = true;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!reduced[d]) l.perm.push_back(int64_t(d)), l.rows *= shape[d];
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) l.perm.push_back(int64_t(d)), l.n *= shape[d];
  l.inverse.resize(l.perm.size());
  for (size_t i = 0; i < l.perm.size(); ++i) {
    l.inverse[size_t(l.perm[i])] = int64_t(i);
    l.permuted.push_back(shape[size_t(l.perm[i])]);
  }
  return l;
}

Tensor as_rows(const Tensor& x, const RowLayout& l) {
  return core::reshape(core::contiguous(core::permute(x, l.perm)), {l.rows, l.n});
}
}  // namespace

Tensor prod(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  ROTOR_CHECK(x.defined(), "prod", "undefined tensor");
  auto dims = normalize_dims(dims_in, x.dim(), "prod");
  if (dims.empty())  // every dim
    for (int64_t d = 0; d < x.dim(); ++d) dims.push_back(d);
  const RowLayout l = row_layout(x.shape(), dims);
  Tensor out = core::reshape(kernels::prod_rows(as_rows(x, l)), kernels::reduced_shape(x.shape(), dims, keepdim));
  if (needs_grad({x}))
    record(kProd, {x}, {out}, [sx = save(x), l](const TensorList& g, auto&) {
      const Tensor& xv = sx.get();
      Tensor gr = core::contiguous(core::reshape(core::contiguous(g[0]), {l.rows}));
      Tensor dx = kernels::prod_rows_backward(as_rows(xv, l), gr);
      return TensorList{core::contiguous(core::permute(core::reshape(dx, l.permuted), l.inverse))};
    });
  return out;
}

// ---- var, std: compositions of differentiable ops, so their gradients follow ----

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, double correction, bool keepdim) {
  ROTOR_CHECK(x.defined(), "var", "undefined tensor");
  ROTOR_CHECK(is_floating(x.dtype()), "var", "expected a float32 or float64 tensor, got ", dtype_name(x.dtype()));
  ROTOR_CHECK(std::isfinite(correction) && correction >= 0, "var", "correction must be finite and >= 0, got ",
              correction);
  auto dims = normalize_dims(dims_in, x.dim(), "var");
  int64_t count = 1;
  if (dims.empty()) count = x.numel();
  for (int64_t d : dims) count *= x.shape()[size_t(d)];
  Tensor centred = sub(x, mean(x, dims, true));
  // PyTorch divides by max(0, N - correction): 0 gives inf (or NaN for a zero sum), not an error.
  const double dof = std::max(0.0, double(count) - correction);
  return div(sum(square(centred), dims, keepdim), dof);
}

Tensor std(const Tensor& x, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

// ---- flip, repeat, pad ----

Tensor flip(const Tensor& x, const std::vector<int64_t>& dims_in) {
  ROTOR_CHECK(x.defined(), "flip", "undefined tensor");
  // No dims flips nothing (as PyTorch); normalize_dims would read an empty list as every dim.
  const auto dims = dims_in.empty() ? std::vector<int64_t>{} : normalize_dims(dims_in, x.dim(), "flip");
  Strides strides = x.strides();
  int64_t offset = x.offset();
  for (int64_t d : dims) {
    const int64_t n = x.shape()[size_t(d)];
    if (n == 0) continue;
    offset += (n - 1) * strides[size_t(d)];
    strides[size_t(d)] = -strides[size_t(d)];
  }
  // A view with negated strides, copied: the copy loops walk any strides.
  Tensor out = core::clone(Tensor::view_of(x, x.shape(), strides, offset));
  if (needs_grad({x}))
    record(kFlip, {x}, {out}, [dims](const TensorList& g, auto&) { return TensorList{flip(g[0], dims)}; });
  return out;
}

Tensor repeat(const Tensor& x, const std::vector<int64_t>& sizes) {
  ROTOR_CHECK(x.defined(), "repeat", "undefined tensor");
  ROTOR_CHECK(int64_t(sizes.size()) >= x.dim(), "repeat", "needs at least one size per dim: ", sizes.size(),
              " sizes for shape ", shape_str(x.shape()));
  for (int64_t s : sizes) ROTOR_CHECK(s >= 0, "repeat", "negative size in ", shape_str(sizes));
  // [*1, s0, s1, ...] -> [1, s0, 1, s1, ...] -> expand to [r0, s0, r1, s1, ...] -> [r0 s0, r1 s1, ...];
  // expand's backward sums the copies.
  const size_t lead = sizes.size() - size_t(x.dim());
  Shape split, expanded, out;
  for (size_t d = 0; d < sizes.size(); ++d) {
    const int64_t s = d < lead ? 1 : x.shape()[d - lead];
    split.insert(split.end(), {1, s});
    expanded.insert(expanded.end(), {sizes[d], s});
    out.push_back(sizes[d] * s);
  }
  return reshape(expand(reshape(x, split), expanded), out);
}

namespace {
// Per dim of x: the window [x_lo, x_lo + len) of x that lands at [out_lo, out_lo + len) of the output.
struct PadPlan {
  Shape out_shape;
  std::vector<int64_t> x_lo, out_lo, len;
};

PadPlan plan_pad(const Shape& shape, const std::vector<int64_t>& pads) {
  ROTOR_CHECK(pads.size() % 2 == 0, "pad", "needs an even number of pads (left, right per dim), got ",
              shape_str(pads));
  ROTOR_CHECK(pads.size() / 2 <= shape.size(), "pad", shape_str(pads), " pads ", pads.size() / 2, " dims of shape ",
              shape_str(shape));
  PadPlan p;
  p.out_shape = shape;
  for (size_t d = 0; d < shape.size(); ++d) {
    p.x_lo.push_back(0), p.out_lo.push_back(0), p.len.push_back(shape[d]);
  }
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    const size_t d = shape.size() - 1 - k;
    const int64_t left = pads[2 * k], right = pads[2 * k + 1], n = shape[d];
    const int64_t size = n + left + right;
    ROTOR_CHECK(size >= 0, "pad", "pads (", left, ", ", right, ") leave dim ", d, " of shape ", shape_str(shape),
                " with size ", size);
    p.out_shape[d] = size;
    p.x_lo[d] = std::max<int64_t>(0, -left);
    p.out_lo[d] = std::max<int64_t>(0, left);
    p.len[d] = std::max<int64_t>(0, n - p.x_lo[d] - std::max<int64_t>(0, -right));
  }
  return p;
}

Tensor window(const Tensor& t, const std::vector<int64_t>& lo, const std::vector<int64_t>& len) {
  Tensor w = t;
  for (size_t d = 0; d < lo.size(); ++d) w = core::narrow(w, int64_t(d), lo[d], len[d]);
  return w;
}
}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, Scalar value) {
  ROTOR_CHECK(x.defined(), "pad", "undefined tensor");
  const PadPlan p = plan_pad(x.shape(), pads);
  ROTOR_CHECK(can_cast(result_type(x, value), x.dtype()), "pad", "value ", value.to_double(), " does not fit the ",
              dtype_name(x.dtype()), " tensor of shape ", shape_str(x.shape()));
  Tensor out = Tensor::empty(p.out_shape, x.dtype());
  core::copy_into(out, scalar_tensor(value, x.dtype()));
  core::copy_into(window(out, p.out_lo, p.len), window(x, p.x_lo, p.len));
  if (needs_grad({x}))
    record(kPad, {x}, {out}, [p, shape = x.shape(), dtype = x.dtype()](const TensorList& g, auto&) {
      Tensor dx = zeros(shape, dtype);
      core::copy_into(window(dx, p.x_lo, p.len), window(g[0], p.out_lo, p.len));
      return TensorList{dx};
    });
  return out;
}

// ---- gradcheck cases ----

// Zeros placed by hand: none, one and two in a reduced row, where out / x would divide by zero.
ROTOR_GRADCHECK({"prod", {input({3, 4}, 0.5, 1.5), transposed({2, 3, 4}, -1.5, 1.5)}, [](auto& x) {
                   Tensor mask = from_vector<double>({1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1}, {3, 4});
                   Tensor z = x[0] * to_dtype(mask, x[0].dtype());
                   return TensorList{prod(z, {1}), prod(x[0], {0}, true), prod(x[1], {0, 2}), prod(z)};
                 }});
ROTOR_GRADCHECK({"var_std", {transposed({4, 5}), input({2, 3, 4})}, [](auto& x) {
                   return TensorList{var(x[0]), var(x[0], {1}), std(x[0], {0}, 0, true), std(x[1], {0, 2}),
                                     var(x[1], {-1}, 2.5)};
                 }});
ROTOR_GRADCHECK({"flip", {sliced({3, 4}), input({2, 3, 2})}, [](auto& x) {
                   return TensorList{flip(x[0], {1}), flip(x[1], {0, 2}) * flip(x[1], {-1, 0})};
                 }});
ROTOR_GRADCHECK({"repeat", {transposed({2, 3})}, [](auto& x) {
                   return TensorList{repeat(x[0], {2, 1}), repeat(x[0], {3, 1, 2}) * 2.0};
                 }});
ROTOR_GRADCHECK({"pad", {input({2, 3, 4})}, [](auto& x) {
                   return TensorList{pad(x[0], {1, 2}), pad(x[0], {0, 1, 2, 0}, -1.5), pad(x[0], {-1, 1, 1, -2, 1, 0})};
                 }});

}  // namespace rotor
