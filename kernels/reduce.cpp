#include "rotor/kernels/reduce.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "rotor/core/parallel.h"
#include "rotor/core/view.h"
#include "rotor/kernels/elementwise.h"
#include "rotor/kernels/scan_cumsum.h"
#include "rotor/kernels/simd.h"

namespace rotor::kernels {
namespace {

const char* reduce_name(Reduce op) { return op == Reduce::Sum ? "sum" : op == Reduce::Max ? "max" : "min"; }

template <class T>
T identity(Reduce op) {
  if (op == Reduce::Sum) return T(0);
  if constexpr (std::is_floating_point_v<T>)
    return op == Reduce::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  else
    return op == Reduce::Max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
}

// Max and min propagate NaN (as NumPy and PyTorch): a bare comparison drops it or keeps it
// depending on where it sits, so min([1, 2, NaN, 4]) was 4.
template <class V>
V combine(Reduce op, V a, V b) {
  if (op == Reduce::Sum) return a + b;
  if constexpr (std::is_integral_v<V>) return op == Reduce::Max ? (a > b ? a : b) : (a < b ? a : b);
  else if constexpr (std::is_arithmetic_v<V>)
    return (op == Reduce::Max ? a > b : a < b) || std::isnan(a) ? a : b;
  else return xsimd::select((op == Reduce::Max ? a > b : a < b) | xsimd::isnan(a), a, b);
}

// Reduces n contiguous elements: four SIMD accumulators, then lanes, in a fixed order.
template <class T>
T reduce_contiguous(Reduce op, const T* p, int64_t n) {
  if constexpr (std::is_floating_point_v<T>) {
    constexpr int64_t W = batch_size<T>();
    const T init = identity<T>(op);
    Batch<T> acc0(init), acc1(init), acc2(init), acc3(init);
    int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 = combine(op, acc0, Batch<T>::load_unaligned(p + i));
      acc1 = combine(op, acc1, Batch<T>::load_unaligned(p + i + W));
      acc2 = combine(op, acc2, Batch<T>::load_unaligned(p + i + 2 * W));
      acc3 = combine(op, acc3, Batch<T>::load_unaligned(p + i + 3 * W));
    }
    for (; i + W <= n; i += W) acc0 = combine(op, acc0, Batch<T>::load_unaligned(p + i));
    acc0 = combine(op, combine(op, acc0, acc1), combine(op, acc2, acc3));
    alignas(64) T lanes[W];
    acc0.store_aligned(lanes);
    T r = lanes[0];
    for (int64_t j = 1; j < W; ++j) r = combine(op, r, lanes[j]);
    for (; i < n; ++i) r = combine(op, r, p[i]);
    return r;
  } else {
    T r = identity<T>(op);
    for (int64_t i = 0; i < n; ++i) r = combine(op, r, p[i]);
    return r;
  }
}

// out[a, c] = reduce_r x[a, r, c] for contiguous x of shape [A, R, C] (C may be 1).
template <class T>
void reduce_arc(Reduce op, const T* x, T* out, int64_t A, int64_t R, int64_t C) {
  constexpr int64_t kBlock = 1 << 14;  // elements reduced by one task before partials combine
  if (C == 1) {
    const int64_t nb = (R + kBlock - 1) / kBlock;
    if (nb <= 1) {
      parallel_for(A, std::max<int64_t>(1, kBlock / std::max<int64_t>(R, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t a = lo; a < hi; ++a) out[a] = reduce_contiguous(op, x + a * R, R);
      });
      return;
    }
    std::vector<T> partial(size_t(A * nb));
    parallel_blocks(A * nb, [&](int64_t i) {
      int64_t a = i / nb, b = i % nb, lo = b * kBlock, hi = std::min(R, lo + kBlock);
      partial[size_t(i)] = reduce_contiguous(op, x + a * R + lo, hi - lo);
    });
    for (int64_t a = 0; a < A; ++a) {
      T r = partial[size_t(a * nb)];
      for (int64_t b = 1; b < nb; ++b) r = combine(op, r, partial[size_t(a * nb + b)]);
      out[a] = r;
    }
    return;
  }
  // C > 1: vectorise along c, walk r in order. Split r into fixed blocks when A*C is too small
  // to give every thread a column range of its own.
  const int64_t rows_per_block = std::max<int64_t>(1, kBlock / C);
  const int64_t nb = (R + rows_per_block - 1) / rows_per_block;
  const int64_t col_chunk = 1024;
  const int64_t ncc = (C + col_chunk - 1) / col_chunk;
  auto reduce_rows = [&](const T* src, T* dst, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) dst[c] = identity<T>(op);
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = src + r * C;
      if constexpr (std::is_floating_point_v<T>) {
        constexpr int64_t W = batch_size<T>();
        int64_t c = c0;
        for (; c + W <= c1; c += W)
          combine(op, Batch<T>::load_unaligned(dst + c), Batch<T>::load_unaligned(row + c)).store_unaligned(dst + c);
        for (; c < c1; ++c) dst[c] = combine(op, dst[c], row[c]);
      } else {
        for (int64_t c = c0; c < c1; ++c) dst[c] = combine(op, dst[c], row[c]);
      }
    }
  };
  if (nb <= 1 || A * ncc >= 4) {
    parallel_blocks(A * ncc, [&](int64_t i) {
      int64_t a = i / ncc, c0 = (i % ncc) * col_chunk, c1 = std::min(C, c0 + col_chunk);
      reduce_rows(x + a * R * C, out + a * C, 0, R, c0, c1);
    });
    return;
  }
  std::vector<T> partial(size_t(A * nb * C));
  parallel_blocks(A * nb * ncc, [&](int64_t i) {
    int64_t cc = i % ncc, ab = i / ncc, a = ab / nb, b = ab % nb;
    int64_t c0 = cc * col_chunk, c1 = std::min(C, c0 + col_chunk);
    int64_t r0 = b * rows_per_block, r1 = std::min(R, r0 + rows_per_block);
    reduce_rows(x + a * R * C, partial.data() + (a * nb + b) * C, r0, r1, c0, c1);
  });
  for (int64_t a = 0; a < A; ++a)
    for (int64_t c = 0; c < C; ++c) {
      T r = partial[size_t((a * nb) * C + c)];
      for (int64_t b = 1; b < nb; ++b) r = combine(op, r, partial[size_t((a * nb + b) * C + c)]);
      out[a * C + c] = r;
    }
}

// Brings x into the [A, R, C] form with the reduced dims as R, copying only when needed.
struct ArcView {
  Tensor x;
  int64_t A, R, C;
};

ArcView as_arc(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t nd = x.dim();
  bool block = !dims.empty() && dims.back() - dims.front() + 1 == int64_t(dims.size());
  if (x.is_contiguous() && block) {
    int64_t A = 1, R = 1, C = 1;
    for (int64_t d = 0; d < nd; ++d) {
      if (d < dims.front()) A *= x.shape()[d];
      else if (d <= dims.back()) R *= x.shape()[d];
      else C *= x.shape()[d];
    }
    return {x, A, R, C};
  }
  std::vector<int64_t> perm;
  std::vector<bool> reduced(size_t(nd), false);
  for (int64_t d : dims) reduced[size_t(d)] = true;
  int64_t A = 1, R = 1;
  for (int64_t d = 0; d < nd; ++d)
    if (!reduced[size_t(d)]) perm.push_back(d), A *= x.shape()[d];
  for (int64_t d : dims) perm.push_back(d), R *= x.shape()[d];
  return {core::contiguous(core::permute(x, perm)), A, R, 1};
}

}  // namespace

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
    bool r = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!r) out.push_back(shape[size_t(d)]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

Tensor reduce(Reduce op, const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const char* name = reduce_name(op);
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), name);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  if (op != Reduce::Sum) {
    for (int64_t d : dims)
      ROTOR_CHECK(x.shape()[size_t(d)] > 0, name, "cannot reduce over the empty dim ", d, " of shape ",
                  shape_str(x.shape()));
  }
  if (out.numel() == 0) return out;
  ArcView v = as_arc(x, dims);
  dispatch_numeric(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    reduce_arc<T>(op, static_cast<const T*>(v.x.raw_data()), out.data<T>(), v.A, v.R, v.C);
  });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[size_t(d)];
  Tensor s = reduce(Reduce::Sum, x, dims, keepdim);
  dispatch_float(x.dtype(), "mean", [](auto) {});
  return binary_scalar(Binary::Mul, s, 1.0 / double(count));
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "logsumexp");
  dispatch_float(x.dtype(), "logsumexp", [](auto) {});
  for (int64_t d : dims)  // the log of an empty sum, not an error from the max inside
    if (x.shape()[size_t(d)] == 0)
      return full(reduced_shape(x.shape(), dims, keepdim), -std::numeric_limits<double>::infinity(), x.dtype());
  Tensor m = reduce(Reduce::Max, x, dims, true);
  // A row of -inf has max -inf: shift by 0 instead so the result is -inf, not NaN.
  Tensor finite = compare(Compare::Eq, binary(Binary::Sub, m, m), zeros({}, m.dtype()));
  Tensor shift = where(finite, m, zeros({}, m.dtype()));
  Tensor s = reduce(Reduce::Sum, unary(Unary::Exp, binary(Binary::Sub, x, shift)), dims, true);
  Tensor out = binary(Binary::Add, unary(Unary::Log, s), shift);
  return keepdim ? out : core::reshape(out, reduced_shape(x.shape(), dims, false));
}

namespace {
Tensor arg_reduce(const Tensor& x, int64_t dim_in, bool keepdim, bool want_max) {
  const char* name = want_max ? "argmax" : "argmin";
  int64_t dim = normalize_dim(dim_in, x.dim(), name);
  ROTOR_CHECK(x.shape()[size_t(dim)] > 0, name, "empty dim ", dim, " in shape ", shape_str(x.shape()));
  Tensor out = Tensor::empty(reduced_shape(x.shape(), {dim}, keepdim), DType::Int64);
  ArcView v = as_arc(x, {dim});
  dispatch_numeric(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(v.x.raw_data());
    int64_t* o = out.data<int64_t>();
    const int64_t A = v.A, R = v.R, C = v.C;
    parallel_for(A * C, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        int64_t a = i / C, c = i % C, best = 0;
        const T* row = p + a * R * C + c;
        T bv = row[0];
        for (int64_t r = 1; r < R; ++r) {
          T val = row[r * C];
          bool better = want_max ? val > bv : val < bv;
          // The first NaN wins, matching max/min.
          if constexpr (std::is_floating_point_v<T>) better = better || (std::isnan(val) && !std::isnan(bv));
          if (better) bv = val, best = r;
        }
        o[i] = best;
      }
    });
  });
  return out;
}

// Applies fn(row_in, row_out, n) to every row along `dim`, via a contiguous last-dim layout.
template <class F>
Tensor along_last(const Tensor& x, int64_t dim_in, const char* name, F fn) {
  int64_t dim = normalize_dim(dim_in, x.dim(), name);
  const int64_t last = x.dim() - 1;
  Tensor xt = core::contiguous(dim == last ? x : core::transpose(x, dim, last));
  Tensor out = Tensor::empty(xt.shape(), x.dtype());
  const int64_t n = x.shape()[size_t(dim)], rows = n ? xt.numel() / n : 0;
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* in = xt.data<T>();
    T* o = out.data<T>();
    parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) fn(in + r * n, o + r * n, n);
    });
  });
  return dim == last ? out : core::transpose(out, dim, last);
}

template <class T>
void exp_shifted(const T* in, T* out, int64_t n, T shift) {
  constexpr int64_t W = batch_size<T>();
  const Batch<T> s(shift);
  int64_t i = 0;
  for (; i + W <= n; i += W) xsimd::exp(Batch<T>::load_unaligned(in + i) - s).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = std::exp(in[i] - shift);
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return arg_reduce(x, dim, keepdim, true); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return arg_reduce(x, dim, keepdim, false); }

Tensor softmax(const Tensor& x, int64_t dim) {
  return along_last(x, dim, "softmax", [](const auto* in, auto* out, int64_t n) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(in)>>;
    T m = reduce_contiguous(Reduce::Max, in, n);
    if (std::isinf(m) && m < 0) m = 0;
    exp_shifted(in, out, n, m);
    T inv = T(1) / reduce_contiguous(Reduce::Sum, static_cast<const T*>(out), n);
    for (int64_t i = 0; i < n; ++i) out[i] *= inv;
  });
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  return along_last(x, dim, "log_softmax", [](const auto* in, auto* out, int64_t n) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(in)>>;
    T m = reduce_contiguous(Reduce::Max, in, n);
    if (std::isinf(m) && m < 0) m = 0;
    exp_shifted(in, out, n, m);
    // (x - m) - log(sum), not x - (m + log(sum)): rounding m + log(sum) would cost ulp(m),
    // 5e-4 at float32 logits near 1e4, while x - m is exact.
    T log_sum = std::log(reduce_contiguous(Reduce::Sum, static_cast<const T*>(out), n));
    for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - m) - log_sum;
  });
}

Tensor cumsum(const Tensor& x, int64_t dim_in, bool reverse) {
  int64_t dim = normalize_dim(dim_in, x.dim(), "cumsum");
  Tensor xc = core::contiguous(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  int64_t A = 1, L = x.shape()[size_t(dim)], C = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < dim) A *= x.shape()[size_t(d)];
    if (d > dim) C *= x.shape()[size_t(d)];
  }
  if (out.numel() == 0) return out;
  if (is_floating(x.dtype())) {
    // The parallel associative scan: parallel over rows and channels, and along time when a
    // long sequence is all there is.
    dispatch_float(x.dtype(), "cumsum", [&](auto tag) {
      using T = decltype(tag);
      cumsum_forward<T>(xc.data<T>(), nullptr, out.data<T>(), A, L, C, reverse);
    });
    return out;
  }
  const int64_t* in = xc.data<int64_t>();
  int64_t* o = out.data<int64_t>();
  parallel_blocks(A, [&](int64_t a) {
    for (int64_t s = 0; s < L; ++s) {
      int64_t l = reverse ? L - 1 - s : s;
      const int64_t* prev = s == 0 ? nullptr : o + (a * L + (reverse ? l + 1 : l - 1)) * C;
      for (int64_t c = 0; c < C; ++c) o[(a * L + l) * C + c] = (prev ? prev[c] : 0) + in[(a * L + l) * C + c];
    }
  });
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  ROTOR_CHECK(lead >= 0, "sum_to", "cannot reduce shape ", shape_str(g.shape()), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < g.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[size_t(d - lead)] == 1 && g.shape()[size_t(d)] != 1) dims.push_back(d);
    else
      ROTOR_CHECK(shape[size_t(d - lead)] == g.shape()[size_t(d)] || shape[size_t(d - lead)] == 1, "sum_to",
                  "cannot reduce shape ", shape_str(g.shape()), " to ", shape_str(shape));
  }
  if (dims.empty()) return core::reshape(g, shape);
  return core::reshape(reduce(Reduce::Sum, g, dims, true), shape);
}

Tensor prod_rows(const Tensor& x) {
  ROTOR_CHECK(x.dim() == 2 && x.is_contiguous(), "prod", "expects a contiguous [rows, n] tensor, got ",
              shape_str(x.shape()));
  const int64_t rows = x.size(0), n = x.size(1);
  Tensor out = Tensor::empty({rows}, x.dtype());
  dispatch_numeric(x.dtype(), "prod", [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_integral_v<T>, T, double>;
    const T* xp = x.data<T>();
    T* o = out.data<T>();
    parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        Acc p = 1;
        for (int64_t j = 0; j < n; ++j) p *= Acc(xp[r * n + j]);
        o[r] = T(p);
      }
    });
  });
  return out;
}

Tensor prod_rows_backward(const Tensor& x, const Tensor& g) {
  ROTOR_CHECK(x.dim() == 2 && x.is_contiguous() && g.dim() == 1 && g.size(0) == x.size(0) && g.is_contiguous() &&
                  g.dtype() == x.dtype(),
              "prod", "backward expects contiguous [rows, n] and [rows], got ", shape_str(x.shape()), " and ",
              shape_str(g.shape()));
  const int64_t rows = x.size(0), n = x.size(1);
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "prod", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* gp = g.data<T>();
    T* d = dx.data<T>();
    parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* row = xp + r * n;
        T* drow = d + r * n;
        double before = 1;  // prod_{k < j}, written first, then times prod_{k > j}
        for (int64_t j = 0; j < n; ++j) {
          drow[j] = T(before);
          before *= double(row[j]);
        }
        double after = 1;
        for (int64_t j = n; j-- > 0;) {
          drow[j] = T(double(gp[r]) * double(drow[j]) * after);
          after *= double(row[j]);
        }
      }
    });
  });
  return dx;
}

}  // namespace rotor::kernels
