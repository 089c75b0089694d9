#include "rotor/kernels/index.h"

#include <algorithm>

#include "rotor/core/iter.h"
#include "rotor/core/parallel.h"
#include "rotor/core/view.h"

namespace rotor::kernels {
namespace {

void check_indices(const Tensor& idx, int64_t bound, const char* op) {
  ROTOR_CHECK(idx.dtype() == DType::Int64, op, "indices must be int64, got ", dtype_name(idx.dtype()));
  Tensor c = core::contiguous(idx);
  const int64_t* p = c.data<int64_t>();
  for (int64_t i = 0; i < c.numel(); ++i)
    ROTOR_CHECK(p[i] >= 0 && p[i] < bound, op, "index ", p[i], " out of range [0, ", bound, ") at position ", i);
}

// Dims before and after `dim`.
std::pair<int64_t, int64_t> outer_inner(const Shape& shape, int64_t dim) {
  int64_t A = 1, C = 1;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
    if (d < dim) A *= shape[size_t(d)];
    if (d > dim) C *= shape[size_t(d)];
  }
  return {A, C};
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& idx) {
  int64_t dim = normalize_dim(dim_in, x.dim(), "index_select");
  ROTOR_CHECK(idx.dim() == 1, "index_select", "indices must be 1-D, got shape ", shape_str(idx.shape()));
  const int64_t N = x.shape()[size_t(dim)];
  check_indices(idx, N, "index_select");
  Tensor xc = core::contiguous(x), ic = core::contiguous(idx);
  Shape shape = x.shape();
  shape[size_t(dim)] = idx.numel();
  Tensor out = Tensor::empty(shape, x.dtype());
  // Plain variables, not a structured binding: clang 14 lets no lambda capture a binding.
  const auto outer = outer_inner(x.shape(), dim);
  const int64_t A = outer.first, C = outer.second;
  const int64_t M = idx.numel(), esize = int64_t(dtype_size(x.dtype()));
  const char* src = static_cast<const char*>(xc.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  const int64_t* ip = ic.data<int64_t>();
  parallel_for(A * M, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t a = r / M, i = r % M;
      std::memcpy(dst + (r * C) * esize, src + ((a * N + ip[i]) * C) * esize, size_t(C * esize));
    }
  });
  return out;
}

Tensor index_add(const Shape& shape, int64_t dim_in, const Tensor& idx, const Tensor& src) {
  int64_t dim = normalize_dim(dim_in, int64_t(shape.size()), "index_add");
  const int64_t N = shape[size_t(dim)], M = idx.numel();
  check_indices(idx, N, "index_add");
  Shape expect = shape;
  expect[size_t(dim)] = M;
  ROTOR_CHECK(src.shape() == expect, "index_add", "source shape ", shape_str(src.shape()), " should be ",
              shape_str(expect));
  Tensor out = zeros(shape, src.dtype());
  Tensor sc = core::contiguous(src), ic = core::contiguous(idx);
  const auto outer = outer_inner(shape, dim);
  const int64_t A = outer.first, C = outer.second;
  dispatch_float(src.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    const T* s = sc.data<T>();
    T* o = out.data<T>();
    const int64_t* ip = ic.data<int64_t>();
    // Threads own disjoint (a, column-chunk) pairs and walk the indices in order: no races,
    // and the same summation order on any thread count.
    const int64_t chunk = 64, ncc = (C + chunk - 1) / chunk;
    parallel_blocks(A * ncc, [&](int64_t b) {
      int64_t a = b / ncc, c0 = (b % ncc) * chunk, c1 = std::min(C, c0 + chunk);
      for (int64_t i = 0; i < M; ++i) {
        T* orow = o + (a * N + ip[i]) * C;
        const T* srow = s + (a * M + i) * C;
        for (int64_t c = c0; c < c1; ++c) orow[c] += srow[c];
      }
    });
  });
  return out;
}

namespace {
void check_gather(const Shape& xshape, int64_t dim, const Tensor& idx, const char* op) {
  ROTOR_CHECK(idx.dim() == int64_t(xshape.size()), op, "index shape ", shape_str(idx.shape()),
              " must have as many dims as ", shape_str(xshape));
  for (int64_t d = 0; d < idx.dim(); ++d)
    ROTOR_CHECK(d == dim || idx.shape()[size_t(d)] <= xshape[size_t(d)], op, "index shape ",
                shape_str(idx.shape()), " exceeds ", shape_str(xshape), " in dim ", d);
  check_indices(idx, xshape[size_t(dim)], op);
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& idx) {
  int64_t dim = normalize_dim(dim_in, x.dim(), "gather");
  check_gather(x.shape(), dim, idx, "gather");
  Tensor out = Tensor::empty(idx.shape(), x.dtype());
  Strides xs = x.strides();
  const int64_t dstride = xs[size_t(dim)];
  xs[size_t(dim)] = 0;
  StridedLoop<3> loop(idx.shape(), {out.strides(), idx.strides(), xs});
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw_data());
    const int64_t* ip = idx.data<int64_t>();
    T* o = out.data<T>();
    loop.for_runs(0, loop.numel(), [&](const std::array<int64_t, 3>& off, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        o[off[0] + i] = xp[off[2] + i * loop.inner_stride(2) + ip[off[1] + i * loop.inner_stride(1)] * dstride];
    });
  });
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t dim_in, const Tensor& idx, const Tensor& src) {
  int64_t dim = normalize_dim(dim_in, int64_t(shape.size()), "scatter_add");
  check_gather(shape, dim, idx, "scatter_add");
  ROTOR_CHECK(src.shape() == idx.shape(), "scatter_add", "source shape ", shape_str(src.shape()),
              " must equal index shape ", shape_str(idx.shape()));
  Tensor out = zeros(shape, src.dtype());
  Strides os = out.strides();
  const int64_t dstride = os[size_t(dim)];
  os[size_t(dim)] = 0;
  StridedLoop<3> loop(idx.shape(), {src.strides(), idx.strides(), os});
  dispatch_float(src.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    const T* sp = static_cast<const T*>(src.raw_data());
    const int64_t* ip = idx.data<int64_t>();
    T* o = out.data<T>();
    loop.for_runs(0, loop.numel(), [&](const std::array<int64_t, 3>& off, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        o[off[2] + i * loop.inner_stride(2) + ip[off[1] + i * loop.inner_stride(1)] * dstride] +=
            sp[off[0] + i * loop.inner_stride(0)];
    });
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim_in) {
  ROTOR_CHECK(!xs.empty(), "concat", "needs at least one tensor");
  const Tensor& first = xs[0];
  int64_t dim = normalize_dim(dim_in, first.dim(), "concat");
  Shape shape = first.shape();
  int64_t total = 0;
  for (const Tensor& x : xs) {
    ROTOR_CHECK(x.dtype() == first.dtype(), "concat", "dtype mismatch: ", dtype_name(first.dtype()), " vs ",
                dtype_name(x.dtype()));
    bool same = x.dim() == first.dim();
    for (int64_t d = 0; same && d < x.dim(); ++d) same = d == dim || x.shape()[size_t(d)] == shape[size_t(d)];
    ROTOR_CHECK(same, "concat", "shapes ", shape_str(first.shape()), " and ", shape_str(x.shape()),
                " differ outside dim ", dim);
    total += x.shape()[size_t(dim)];
  }
  shape[size_t(dim)] = total;
  Tensor out = Tensor::empty(shape, first.dtype());
  int64_t at = 0;
  for (const Tensor& x : xs) {
    const int64_t len = x.shape()[size_t(dim)];
    if (len) core::copy_into(core::narrow(out, dim, at, len), x);
    at += len;
  }
  return out;
}

Tensor one_hot(const Tensor& idx, int64_t num_classes, DType dtype) {
  ROTOR_CHECK(num_classes > 0, "one_hot", "num_classes must be positive, got ", num_classes);
  check_indices(idx, num_classes, "one_hot");
  Shape shape = idx.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, dtype);
  Tensor ic = core::contiguous(idx);
  const int64_t* ip = ic.data<int64_t>();
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    for (int64_t i = 0; i < ic.numel(); ++i) o[i * num_classes + ip[i]] = T(1);
  });
  return out;
}

}  // namespace rotor::kernels
