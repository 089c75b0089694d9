// Elementwise kernels with NumPy broadcasting over strided inputs. Outputs are new contiguous
// tensors; in-place variants write into an existing tensor and bump its version. Float ops are
// vectorized with xsimd; int64 and bool take scalar loops. No autograd here.
#pragma once
#include "rotor/core/tensor.h"

namespace rotor::kernels {

enum class Unary {
  Neg, Abs, Sign, Square, Reciprocal, Exp, Log, Log1p, Sqrt, Rsqrt, Sin, Cos, Tanh,
  Sigmoid, Silu, Softplus, LogSigmoid, Relu, Erf,
  Gelu,      // x * Phi(x) = x/2 (1 + erf(x / sqrt 2))
  GeluTanh,  // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's approximate='tanh'
};
enum class Binary { Add, Sub, Mul, Div, Pow, Maximum, Minimum };
enum class Compare { Eq, Ne, Lt, Le, Gt, Ge };
enum class Logical { And, Or, Xor };
enum class Classify { IsNan, IsFinite };

const char* unary_name(Unary op);
const char* binary_name(Binary op);

Tensor unary(Unary op, const Tensor& x);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);
Tensor binary_scalar(Binary op, const Tensor& a, double b);  // b in a's dtype
Tensor compare(Compare op, const Tensor& a, const Tensor& b);  // bool
Tensor logical(Logical op, const Tensor& a, const Tensor& b);  // bool in, bool out
Tensor logical_not(const Tensor& a);
// Bool: x is NaN / x is neither NaN nor infinite (integers: never NaN, always finite).
Tensor classify(Classify op, const Tensor& x);
// out = cond ? a : b, cond bool; a and b share a dtype.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// dst = op(dst, src), src broadcasting to dst's shape.
void binary_(Binary op, const Tensor& dst, const Tensor& src);
// dst += alpha * src (the gradient-accumulation and optimizer workhorse).
void axpy_(const Tensor& dst, const Tensor& src, double alpha = 1.0);

// Bool mask of shape [rows, cols]: true where col - row <= k (lower) or >= k (upper).
Tensor triangle_mask(int64_t rows, int64_t cols, int64_t k, bool lower);

}  // namespace rotor::kernels
