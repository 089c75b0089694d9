#include "rotor/nn/layers.h"

#include "rotor/nn/gradcheck_case.h"

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

LayerNorm::LayerNorm(int64_t dim, double eps_, bool elementwise_affine, bool bias_, DType dtype) : eps(eps_) {
  ROTOR_CHECK(dim > 0 && eps_ >= 0, "LayerNorm", "needs dim > 0 and eps >= 0, got ", dim, " and ", eps_);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({dim}, dtype), false);
    if (bias_) bias = register_parameter("bias", zeros({dim}, dtype), false);
  }
}

Dropout::Dropout(double p_, uint64_t seed) : p(p_), generator(seed) {
  ROTOR_CHECK(p_ >= 0 && p_ <= 1, "Dropout", "p must be in [0, 1], got ", p_);
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
  // gate_proj and up_proj as one product of the stacked weights (one GEMM each way instead of
  // two, and x's two gradients arrive as one), then the fused SwiGLU.
  return down_proj.forward(swiglu(linear(x, concat({gate_proj.weight, up_proj.weight}, 0))));
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

// ---- gradcheck cases ----

ROTOR_GRADCHECK({"Linear", {input({2, 3, 4})}, {}, {}, layer_case([](DType d, Generator& g) {
                   return std::make_shared<Linear>(4, 3, true, g, d);
                 }, [](const Linear& m, const TensorList& x) { return TensorList{m.forward(x[0])}; })});
ROTOR_GRADCHECK({"Linear_no_bias", {transposed({3, 4})}, {}, {}, layer_case([](DType d, Generator& g) {
                   return std::make_shared<Linear>(4, 2, false, g, d);
                 }, [](const Linear& m, const TensorList& x) { return TensorList{m.forward(x[0])}; })});
ROTOR_GRADCHECK({"Embedding", {}, {}, {}, layer_case([](DType d, Generator& g) {
                   return std::make_shared<Embedding>(5, 3, g, d);
                 }, [](const Embedding& m, const TensorList&) {
                   return TensorList{m.forward(from_vector<int64_t>({4, 1, 4, 0}, {2, 2}))};
                 })});
ROTOR_GRADCHECK({"RMSNorm", {input({2, 3, 5})}, {}, {}, layer_case([](DType d, Generator& g) {
                   auto m = std::make_shared<RMSNorm>(5, 1e-6, d);
                   NoGradGuard ng;
                   copy_(m->weight, rand({5}, g, d, 0.5, 1.5));  // away from the all-ones start
                   return m;
                 }, [](const RMSNorm& m, const TensorList& x) { return TensorList{m.forward(x[0])}; })});
ROTOR_GRADCHECK({"LayerNorm", {input({2, 3, 5})}, {}, {}, layer_case([](DType d, Generator& g) {
                   auto m = std::make_shared<LayerNorm>(5, 1e-5, true, true, d);
                   NoGradGuard ng;
                   copy_(m->weight, rand({5}, g, d, 0.5, 1.5));  // away from ones and zeros
                   copy_(m->bias, rand({5}, g, d, -0.5, 0.5));
                   return m;
                 }, [](const LayerNorm& m, const TensorList& x) { return TensorList{m.forward(x[0])}; })});
// The mask must be the same at every evaluation of the check: the generator restarts each call.
ROTOR_GRADCHECK({"Dropout", {input({3, 8})}, {}, {}, layer_case([](DType, Generator&) {
                   return std::make_shared<Dropout>(0.3, 5);
                 }, [](const Dropout& m, const TensorList& x) {
                   m.generator = Generator(5);
                   return TensorList{m.forward(x[0])};
                 })});
ROTOR_GRADCHECK({"GatedRMSNorm", {input({2, 3, 4}), input({2, 3, 4}, -3.0, 3.0)}, {}, {}, layer_case([](DType d, Generator& g) {
                   auto m = std::make_shared<GatedRMSNorm>(4, 1e-5, d);
                   NoGradGuard ng;
                   copy_(m->weight, rand({4}, g, d, 0.5, 1.5));
                   return m;
                 }, [](const GatedRMSNorm& m, const TensorList& x) { return TensorList{m.forward(x[0], x[1])}; })});
ROTOR_GRADCHECK({"GatedMLP", {input({2, 3, 4})}, {}, {}, layer_case([](DType d, Generator& g) {
                   return std::make_shared<GatedMLP>(4, 6, g, d);
                 }, [](const GatedMLP& m, const TensorList& x) { return TensorList{m.forward(x[0] * 10.0)}; })});
ROTOR_GRADCHECK({"ShortConvolution", {input({2, 5, 3}), input({2, 3, 3})}, {}, {}, layer_case([](DType d, Generator& g) {
                   return std::make_shared<ShortConvolution>(3, 4, true, true, g, d);
                 }, [](const ShortConvolution& m, const TensorList& x) {
                   ConvResult r = m.forward(x[0] * 10.0, x[1]);  // with history from an earlier segment
                   return TensorList{r.y};
                 })});
ROTOR_GRADCHECK({"ShortConvolution_plain", {input({1, 2, 3})}, {}, {}, layer_case([](DType d, Generator& g) {
                   return std::make_shared<ShortConvolution>(3, 4, false, false, g, d);  // T < width
                 }, [](const ShortConvolution& m, const TensorList& x) { return TensorList{m.forward(x[0]).y}; })});

}  // namespace rotor::nn
