#include "rotor/nn/functional.h"

#include "rotor/autograd/gradcheck.h"

namespace rotor::nn {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  ROTOR_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear", "input ",
              shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  Tensor y = matmul(reshape(x, {-1, x.size(-1)}), transpose(weight, 0, 1));
  if (bias.defined()) y = y + bias;
  return reshape(y, out_shape);
}

Tensor rms_norm_unfused(const Tensor& x, const Tensor& weight, double eps) {
  return x * rsqrt(mean(square(x), {-1}, true) + eps) * weight;
}

Tensor l2_norm(const Tensor& x, double eps) { return x * rsqrt(sum(square(x), {-1}, true) + eps); }

ConvResult short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history,
                      bool silu_after) {
  ROTOR_CHECK(x.dim() == 3 && weight.dim() == 3 && weight.size(1) == 1 && weight.size(0) == x.size(2),
              "short_conv", "input ", shape_str(x.shape()), " and weight ", shape_str(weight.shape()),
              " do not match ([B, T, C] and [C, 1, W])");
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), W = weight.size(2);
  Tensor past = history.defined() ? history : zeros({B, W - 1, C}, x.dtype());
  ROTOR_CHECK(past.shape() == (Shape{B, W - 1, C}), "short_conv", "history ", shape_str(past.shape()),
              " should be ", shape_str({B, W - 1, C}));
  Tensor padded = concat({past, x}, 1);  // [B, W-1+T, C]
  Tensor taps = transpose(reshape(weight, {C, W}), 0, 1);  // [W, C]
  Tensor y;
  for (int64_t j = 0; j < W; ++j) {
    Tensor term = narrow(padded, 1, j, T) * select(taps, 0, j);
    y = y.defined() ? y + term : term;
  }
  if (bias.defined()) y = y + bias;
  if (silu_after) y = silu(y);
  return {y, narrow(padded, 1, T, W - 1).detach()};
}

ROTOR_GRADCHECK({"linear", {input({2, 3, 4}), transposed({5, 4}), input({5})},
                 [](auto& x) { return TensorList{linear(x[0], x[1], x[2])}; }});
ROTOR_GRADCHECK({"rms_norm_unfused", {input({2, 3, 5}), input({5}, 0.5, 1.5)},
                 [](auto& x) { return TensorList{rms_norm_unfused(x[0], x[1], 1e-6)}; }});
ROTOR_GRADCHECK({"l2_norm", {transposed({4, 3})}, [](auto& x) { return TensorList{l2_norm(x[0], 1e-6)}; }});
ROTOR_GRADCHECK({"short_conv", {input({2, 5, 3}), input({3, 1, 4}), input({3}), input({2, 3, 3})}, [](auto& x) {
                   ConvResult r = short_conv(x[0], x[1], x[2], x[3], true);
                   return TensorList{r.y};
                 }});

}  // namespace rotor::nn
