#include "nn/layers.h"

namespace rotor::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen, DType dtype) {
  weight = register_parameter("weight", normal_init({out, in}, gen, dtype));
  if (with_bias) bias = register_parameter("bias", zeros({out}, dtype), false);
}

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen, DType dtype) {
  weight = register_parameter("weight", normal_init({num, dim}, gen, dtype), false);
}

RMSNorm::RMSNorm(int64_t dim, double eps_, DType dtype) : eps(eps_) {
  weight = register_parameter("weight", ones({dim}, dtype), false);
}

GatedRMSNorm::GatedRMSNorm(int64_t dim, double eps_, DType dtype) : eps(eps_) {
  weight = register_parameter("weight", ones({dim}, dtype), false);
}

GatedMLP::GatedMLP(int64_t hidden, int64_t intermediate, Generator& gen, DType dtype)
    : gate_proj(hidden, intermediate, false, gen, dtype),
      up_proj(hidden, intermediate, false, gen, dtype),
      down_proj(intermediate, hidden, false, gen, dtype) {
  register_module("gate_proj", gate_proj);
  register_module("up_proj", up_proj);
  register_module("down_proj", down_proj);
}

Tensor GatedMLP::forward(const Tensor& x) const {
  return down_proj.forward(silu(gate_proj.forward(x)) * up_proj.forward(x));
}

ShortConvolution::ShortConvolution(int64_t channels, int64_t width, bool with_bias, bool silu_, Generator& gen,
                                   DType dtype)
    : silu(silu_) {
  ROTOR_CHECK(width >= 1, "ShortConvolution", "width must be >= 1, got ", width);
  weight = register_parameter("weight", normal_init({channels, 1, width}, gen, dtype));
  if (with_bias) bias = register_parameter("bias", zeros({channels}, dtype), false);
}

int64_t swiglu_intermediate_size(int64_t hidden, int64_t hidden_ratio) {
  int64_t n = hidden * hidden_ratio * 2 / 3;
  return 256 * ((n + 255) / 256);
}

}  // namespace rotor::nn
