#include "rotor/nn/functional.h"

#include "rotor/autograd/gradcheck.h"

namespace rotor::nn {

Tensor rms_norm_unfused(const Tensor& x, const Tensor& weight, double eps) {
  return x * rsqrt(mean(square(x), {-1}, true) + eps) * weight;
}

ConvResult short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history,
                      bool silu_after) {
  Tensor y = causal_conv1d(x, weight, bias, history, silu_after);  // checks the shapes
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), W = weight.size(2);
  // The last W-1 inputs continue the sequence: a view of x when it is long enough.
  Tensor next;
  if (T >= W - 1) {
    next = narrow(x, 1, T - (W - 1), W - 1).detach();
  } else {
    NoGradGuard no_grad;
    Tensor past = history.defined() ? history : zeros({B, W - 1, C}, x.dtype());
    next = narrow(concat({past, x}, 1), 1, T, W - 1).detach();
  }
  return {y, next};
}

ROTOR_GRADCHECK({"rms_norm_unfused", {input({2, 3, 5}), input({5}, 0.5, 1.5)},
                 [](auto& x) { return TensorList{rms_norm_unfused(x[0], x[1], 1e-6)}; }});
ROTOR_GRADCHECK({"short_conv", {input({2, 5, 3}), input({3, 1, 4}), input({3}), input({2, 3, 3})}, [](auto& x) {
                   ConvResult r = short_conv(x[0], x[1], x[2], x[3], true);
                   return TensorList{r.y};
                 }});

}  // namespace rotor::nn
