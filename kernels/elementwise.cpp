#include "rotor/kernels/elementwise.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "rotor/core/iter.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/simd.h"

namespace rotor::kernels {
namespace {

// ---- functors: written once over the value type V (an xsimd batch or a scalar) ----

template <class V>
constexpr bool is_scalar_v = std::is_arithmetic_v<V>;

// maximum and minimum propagate a NaN from either side, as NumPy and PyTorch do; a bare
// comparison (or the x86 max instruction) returns one fixed operand, so relu(NaN) was 0 and
// maximum(NaN, 0) differed from maximum(0, NaN).
template <class V>
V vmax(V a, V b) {
  if constexpr (std::is_integral_v<V>) return a > b ? a : b;
  else if constexpr (is_scalar_v<V>) return a > b || std::isnan(a) ? a : b;
  else return xsimd::select((a > b) | xsimd::isnan(a), a, b);
}
template <class V>
V vmin(V a, V b) {
  if constexpr (std::is_integral_v<V>) return a < b ? a : b;
  else if constexpr (is_scalar_v<V>) return a < b || std::isnan(a) ? a : b;
  else return xsimd::select((a < b) | xsimd::isnan(a), a, b);
}
template <class V>
V vabs(V a) {
  if constexpr (is_scalar_v<V>) return a < 0 ? -a : a;
  else return xsimd::abs(a);
}

template <Unary op, class V>
V apply_unary(V x) {
  using xsimd::exp, xsimd::log, xsimd::log1p, xsimd::sqrt, xsimd::sin, xsimd::cos, xsimd::tanh, xsimd::erf;
  const V one(1), zero(0);
  if constexpr (op == Unary::Neg) return -x;
  else if constexpr (op == Unary::Abs) return vabs(x);
  else if constexpr (op == Unary::Sign) {
    if constexpr (is_scalar_v<V>) return V((x > 0) - (x < 0));
    else return xsimd::select(x > zero, one, xsimd::select(x < zero, -one, zero));
  } else if constexpr (op == Unary::Square) return x * x;
  else if constexpr (op == Unary::Reciprocal) return one / x;
  else if constexpr (op == Unary::Exp) return exp(x);
  else if constexpr (op == Unary::Log) return log(x);
  else if constexpr (op == Unary::Log1p) return log1p(x);
  else if constexpr (op == Unary::Sqrt) return sqrt(x);
  else if constexpr (op == Unary::Rsqrt) return one / sqrt(x);
  else if constexpr (op == Unary::Sin) return sin(x);
  else if constexpr (op == Unary::Cos) return cos(x);
  else if constexpr (op == Unary::Tanh) return tanh(x);
  else if constexpr (op == Unary::Sigmoid) return one / (one + exp(-x));
  else if constexpr (op == Unary::Silu) return x / (one + exp(-x));
  else if constexpr (op == Unary::Softplus) return vmax(x, zero) + log1p(exp(-vabs(x)));
  else if constexpr (op == Unary::LogSigmoid) return vmin(x, zero) - log1p(exp(-vabs(x)));
  else if constexpr (op == Unary::Relu) return vmax(x, zero);
  else if constexpr (op == Unary::Erf) return erf(x);
  else if constexpr (op == Unary::Gelu) return V(0.5) * x * (one + erf(x * V(0.70710678118654752440)));
  else if constexpr (op == Unary::GeluTanh)
    return V(0.5) * x * (one + tanh(V(0.79788456080286535588) * (x + V(0.044715) * x * x * x)));
}

template <Binary op, class V>
V apply_binary(V a, V b) {
  if constexpr (op == Binary::Add) return a + b;
  else if constexpr (op == Binary::Sub) return a - b;
  else if constexpr (op == Binary::Mul) return a * b;
  else if constexpr (op == Binary::Div) return a / b;
  else if constexpr (op == Binary::Pow) {
    if constexpr (std::is_integral_v<V>) {  // exact, by squaring (wrapping as PyTorch's int64 does)
      uint64_t r = 1, base = uint64_t(a);
      for (uint64_t e = b < 0 ? 0 : uint64_t(b); e; e >>= 1, base *= base)
        if (e & 1) r *= base;
      return V(r);
    } else if constexpr (is_scalar_v<V>) return V(std::pow(double(a), double(b)));
    else {
      // xsimd's pow returns 0 for a zero base whatever the exponent; std::pow gives x^0 = 1
      // (which the gradient of x^1 needs at 0) and 0^b = inf for b < 0.
      const V zero(0);
      V r = xsimd::select(b == zero, V(1), xsimd::pow(a, b));
      return xsimd::select(a == zero && b < zero, V(std::numeric_limits<typename V::value_type>::infinity()), r);
    }
  } else if constexpr (op == Binary::Maximum) return vmax(a, b);
  else if constexpr (op == Binary::Minimum) return vmin(a, b);
}

// ---- loops ----

// out[i] = f(x[i * sx]) for a contiguous out run of n elements.
template <class T, class F>
void unary_run(const T* x, int64_t sx, T* out, int64_t n, F f) {
  constexpr int64_t W = batch_size<T>();
  int64_t i = 0;
  if (sx == 1)
    for (; i + W <= n; i += W) f(Batch<T>::load_unaligned(x + i)).store_unaligned(out + i);
  else
    for (; i + W <= n; i += W) f(load_strided(x + i * sx, sx)).store_unaligned(out + i);
  if (i < n) store_first(out + i, f(load_partial(x + i * sx, sx, n - i, T(1))), n - i);
}

template <class T, class F>
void binary_run(const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n, F f) {
  constexpr int64_t W = batch_size<T>();
  int64_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + W <= n; i += W)
      f(Batch<T>::load_unaligned(a + i), Batch<T>::load_unaligned(b + i)).store_unaligned(out + i);
  } else {
    for (; i + W <= n; i += W) f(load_strided(a + i * sa, sa), load_strided(b + i * sb, sb)).store_unaligned(out + i);
  }
  if (i < n)
    store_first(out + i, f(load_partial(a + i * sa, sa, n - i, T(1)), load_partial(b + i * sb, sb, n - i, T(1))),
                n - i);
}

template <Unary op>
Tensor unary_impl(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  if constexpr (op == Unary::Neg || op == Unary::Abs || op == Unary::Sign || op == Unary::Square || op == Unary::Relu) {
    if (x.dtype() == DType::Int64) {
      StridedLoop<2> loop(x.shape(), {out.strides(), x.strides()});
      const int64_t* xp = x.data<int64_t>();
      int64_t* op_ = out.data<int64_t>();
      parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
        loop.for_runs(lo, hi, [&](const std::array<int64_t, 2>& off, int64_t n) {
          for (int64_t i = 0; i < n; ++i) op_[off[0] + i] = apply_unary<op>(xp[off[1] + i * loop.inner_stride(1)]);
        });
      });
      return out;
    }
  }
  dispatch_float(x.dtype(), unary_name(op), [&](auto tag) {
    using T = decltype(tag);
    StridedLoop<2> loop(x.shape(), {out.strides(), x.strides()});
    const T* xp = static_cast<const T*>(x.raw_data());
    T* o = out.data<T>();
    const int64_t sx = loop.inner_stride(1);
    parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      loop.for_runs(lo, hi, [&](const std::array<int64_t, 2>& off, int64_t n) {
        unary_run(xp + off[1], sx, o + off[0], n, [](auto v) { return apply_unary<op>(v); });
      });
    });
  });
  return out;
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  ROTOR_CHECK(a.dtype() == b.dtype(), op, "dtype mismatch: ", dtype_name(a.dtype()), " ",
              shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
}

// Runs out = f(a, b) elementwise where out (possibly strided) has the broadcast shape.
template <Binary op>
void binary_into(const Tensor& out, const Tensor& a, const Tensor& b) {
  const Shape& shape = out.shape();
  StridedLoop<3> loop(shape, {out.strides(), broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  const int64_t so = loop.inner_stride(0), sa = loop.inner_stride(1), sb = loop.inner_stride(2);
  if (a.dtype() == DType::Int64) {
    ROTOR_CHECK(op != Binary::Div, binary_name(op), "not defined for int64 tensors");
    const int64_t* ap = a.data<int64_t>();
    const int64_t* bp = b.data<int64_t>();
    int64_t* o = out.data<int64_t>();
    parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      loop.for_runs(lo, hi, [&](const std::array<int64_t, 3>& off, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          o[off[0] + i * so] = apply_binary<op>(ap[off[1] + i * sa], bp[off[2] + i * sb]);
      });
    });
    return;
  }
  dispatch_float(a.dtype(), binary_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    auto f = [](auto x, auto y) { return apply_binary<op>(x, y); };
    parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      loop.for_runs(lo, hi, [&](const std::array<int64_t, 3>& off, int64_t n) {
        if (so == 1) {
          binary_run(ap + off[1], sa, bp + off[2], sb, o + off[0], n, f);
        } else {
          for (int64_t i = 0; i < n; ++i) o[off[0] + i * so] = f(ap[off[1] + i * sa], bp[off[2] + i * sb]);
        }
      });
    });
  });
}

template <class F>
decltype(auto) dispatch_binary(Binary op, F&& f) {
  switch (op) {
    case Binary::Add: return f(std::integral_constant<Binary, Binary::Add>{});
    case Binary::Sub: return f(std::integral_constant<Binary, Binary::Sub>{});
    case Binary::Mul: return f(std::integral_constant<Binary, Binary::Mul>{});
    case Binary::Div: return f(std::integral_constant<Binary, Binary::Div>{});
    case Binary::Pow: return f(std::integral_constant<Binary, Binary::Pow>{});
    case Binary::Maximum: return f(std::integral_constant<Binary, Binary::Maximum>{});
    case Binary::Minimum: return f(std::integral_constant<Binary, Binary::Minimum>{});
  }
  return f(std::integral_constant<Binary, Binary::Add>{});
}

}  // namespace

const char* unary_name(Unary op) {
  static const char* names[] = {"neg", "abs", "sign", "square", "reciprocal", "exp", "log", "log1p", "sqrt",
                                "rsqrt", "sin", "cos", "tanh", "sigmoid", "silu", "softplus", "logsigmoid", "relu",
                                "erf", "gelu", "gelu_tanh"};
  return names[int(op)];
}

const char* binary_name(Binary op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  return names[int(op)];
}

Tensor unary(Unary op, const Tensor& x) {
  switch (op) {
#define ROTOR_UNARY_CASE(name) \
  case Unary::name: return unary_impl<Unary::name>(x);
    ROTOR_UNARY_CASE(Neg) ROTOR_UNARY_CASE(Abs) ROTOR_UNARY_CASE(Sign) ROTOR_UNARY_CASE(Square)
    ROTOR_UNARY_CASE(Reciprocal) ROTOR_UNARY_CASE(Exp) ROTOR_UNARY_CASE(Log) ROTOR_UNARY_CASE(Log1p)
    ROTOR_UNARY_CASE(Sqrt) ROTOR_UNARY_CASE(Rsqrt) ROTOR_UNARY_CASE(Sin) ROTOR_UNARY_CASE(Cos)
    ROTOR_UNARY_CASE(Tanh) ROTOR_UNARY_CASE(Sigmoid) ROTOR_UNARY_CASE(Silu) ROTOR_UNARY_CASE(Softplus)
    ROTOR_UNARY_CASE(LogSigmoid) ROTOR_UNARY_CASE(Relu) ROTOR_UNARY_CASE(Erf) ROTOR_UNARY_CASE(Gelu)
    ROTOR_UNARY_CASE(GeluTanh)
#undef ROTOR_UNARY_CASE
  }
  return Tensor();
}

Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
  check_same_dtype(a, b, binary_name(op));
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), binary_name(op)), a.dtype());
  dispatch_binary(op, [&](auto c) { binary_into<decltype(c)::value>(out, a, b); });
  return out;
}

Tensor binary_scalar(Binary op, const Tensor& a, double b) { return binary(op, a, scalar_tensor(b, a.dtype())); }

void binary_(Binary op, const Tensor& dst, const Tensor& src) {
  check_same_dtype(dst, src, binary_name(op));
  Shape s = broadcast_shapes(dst.shape(), src.shape(), binary_name(op));
  ROTOR_CHECK(s == dst.shape(), binary_name(op), "in-place result of shape ", shape_str(s),
              " does not fit the destination ", shape_str(dst.shape()));
  dst.storage()->bump_version();
  dispatch_binary(op, [&](auto c) { binary_into<decltype(c)::value>(dst, dst, src); });
}

void axpy_(const Tensor& dst, const Tensor& src, double alpha) {
  if (alpha == 1.0) return binary_(Binary::Add, dst, src);
  binary_(Binary::Add, dst, binary_scalar(Binary::Mul, src, alpha));
}

Tensor compare(Compare op, const Tensor& a, const Tensor& b) {
  static const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  const char* name = names[int(op)];
  check_same_dtype(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, DType::Bool);
  StridedLoop<3> loop(shape, {out.strides(), broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    bool* o = out.data<bool>();
    const int64_t sa = loop.inner_stride(1), sb = loop.inner_stride(2);
    parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      loop.for_runs(lo, hi, [&](const std::array<int64_t, 3>& off, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          T x = ap[off[1] + i * sa], y = bp[off[2] + i * sb];
          bool r = false;
          switch (op) {
            case Compare::Eq: r = x == y; break;
            case Compare::Ne: r = x != y; break;
            case Compare::Lt: r = x < y; break;
            case Compare::Le: r = x <= y; break;
            case Compare::Gt: r = x > y; break;
            case Compare::Ge: r = x >= y; break;
          }
          o[off[0] + i] = r;
        }
      });
    });
  });
  return out;
}

Tensor logical(Logical op, const Tensor& a, const Tensor& b) {
  ROTOR_CHECK(a.dtype() == DType::Bool && b.dtype() == DType::Bool, "logical", "expects bool tensors, got ",
              dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "logical");
  Tensor out = Tensor::empty(shape, DType::Bool);
  StridedLoop<3> loop(shape, {out.strides(), broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  const bool* ap = a.data<bool>();
  const bool* bp = b.data<bool>();
  bool* o = out.data<bool>();
  loop.for_runs(0, loop.numel(), [&](const std::array<int64_t, 3>& off, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      bool x = ap[off[1] + i * loop.inner_stride(1)], y = bp[off[2] + i * loop.inner_stride(2)];
      o[off[0] + i] = op == Logical::And ? (x && y) : op == Logical::Or ? (x || y) : (x != y);
    }
  });
  return out;
}

Tensor logical_not(const Tensor& a) { return logical(Logical::Xor, a, full({}, 1.0, DType::Bool)); }

Tensor classify(Classify op, const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::Bool);
  if (!is_floating(x.dtype())) {
    core::copy_into(out, full({}, op == Classify::IsFinite ? 1.0 : 0.0, DType::Bool));
    return out;
  }
  StridedLoop<2> loop(x.shape(), {out.strides(), x.strides()});
  dispatch_float(x.dtype(), op == Classify::IsNan ? "isnan" : "isfinite", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw_data());
    bool* o = out.data<bool>();
    const int64_t sx = loop.inner_stride(1);
    parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      loop.for_runs(lo, hi, [&](const std::array<int64_t, 2>& off, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          T v = xp[off[1] + i * sx];
          o[off[0] + i] = op == Classify::IsNan ? std::isnan(v) : std::isfinite(v);
        }
      });
    });
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  ROTOR_CHECK(cond.dtype() == DType::Bool, "where", "condition must be bool, got ", dtype_name(cond.dtype()));
  check_same_dtype(a, b, "where");
  Shape shape;
  try {
    shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  } catch (const Error&) {  // name all three shapes, not the intermediate broadcast
    ROTOR_FAIL("where", "cannot broadcast condition ", shape_str(cond.shape()), ", a ", shape_str(a.shape()),
               " and b ", shape_str(b.shape()));
  }
  Tensor out = Tensor::empty(shape, a.dtype());
  StridedLoop<4> loop(shape, {out.strides(), broadcast_strides(cond.shape(), cond.strides(), shape),
                              broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const bool* c = cond.data<bool>();
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const int64_t sc = loop.inner_stride(1), sa = loop.inner_stride(2), sb = loop.inner_stride(3);
    parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      loop.for_runs(lo, hi, [&](const std::array<int64_t, 4>& off, int64_t n) {
        for (int64_t i = 0; i < n; ++i) o[off[0] + i] = c[off[1] + i * sc] ? ap[off[2] + i * sa] : bp[off[3] + i * sb];
      });
    });
  });
  return out;
}

Tensor triangle_mask(int64_t rows, int64_t cols, int64_t k, bool lower) {
  ROTOR_CHECK(rows >= 0 && cols >= 0, lower ? "tril_mask" : "triu_mask", "negative size ", rows, "x", cols);
  Tensor out = Tensor::empty({rows, cols}, DType::Bool);
  bool* o = out.data<bool>();
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) o[i * cols + j] = lower ? (j - i <= k) : (j - i >= k);
  return out;
}

}  // namespace rotor::kernels
