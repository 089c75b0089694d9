// Tutorial step 4 — a layer (docs/tutorial/04_layer.md).
//
//   build/examples/tutorial_04_layer
//
// A layer is a Module: it owns its parameters as Tensor members, registers them (and its child
// modules) under PyTorch-style dotted names, and has a forward made of differentiable ops.
// Here a residual feed-forward block, y = x + W2 silu(W1 RMSNorm(x)), written from rotor's
// pieces, its parameter names, a gradient check that covers its weights, and then one of
// rotor's own layers, gated linear attention with Selective RoPE.
#include <cstdio>

#include "rotor/rotor.h"

using namespace rotor;

class FeedForward : public nn::Module {
 public:
  FeedForward(int64_t dim, int64_t hidden, Generator& gen, DType dtype = DType::Float32)
      : norm(dim, 1e-6, dtype), up(dim, hidden, false, gen, dtype), down(hidden, dim, false, gen, dtype) {
    register_module("norm", norm);
    register_module("up", up);
    register_module("down", down);
  }
  Tensor forward(const Tensor& x) const { return x + down.forward(silu(up.forward(norm.forward(x)))); }

  nn::RMSNorm norm;
  nn::Linear up, down;
};

int main() {
  Generator gen(0);

  // 1. Build it and list what it learns.
  FeedForward ff(8, 32, gen);
  for (const nn::Parameter& p : ff.named_parameters())
    std::printf("%-12s %-8s weight decay %s\n", p.name.c_str(), shape_str(p.value.shape()).c_str(),
                p.weight_decay ? "yes" : "no");
  std::printf("%lld parameters\n", (long long)ff.num_parameters());

  // 2. Forward on a batch [B, T, dim]; the block keeps the shape.
  Tensor x = randn({2, 5, 8}, gen);
  Tensor y = ff.forward(x);
  std::printf("x %s -> y %s\n", shape_str(x.shape()).c_str(), shape_str(y.shape()).c_str());

  // 3. Check its gradients, weights included: build it in float64 and pass the parameters.
  // (The std-0.02 initialisation makes the nonlinear paths tiny; scale the weights up first.)
  FeedForward ff64(4, 6, gen, DType::Float64);
  {
    NoGradGuard no_grad;
    for (const nn::Parameter& p : ff64.named_parameters())
      if (p.value.dim() == 2) {
        Tensor w = p.value;
        mul_(w, 20.0);
      }
  }
  Tensor x64 = randn({3, 4}, gen, DType::Float64);
  GradcheckReport r = gradcheck([&](const TensorList& in) { return TensorList{ff64.forward(in[0])}; }, {x64},
                                ff64.parameters());
  std::printf("gradcheck over the input and %zu parameters: %s\n", r.inputs.size() - 1, r.passed ? "passed" : "FAILED");

  // 4. rotor's layers are Modules like this one. GLA with Selective RoPE, 2 heads:
  nn::GlaLayerConfig config;
  config.hidden_size = 8;
  config.num_heads = 2;
  config.expand_k = 1.0;  // keys as wide as the model: head size 4, two rotation pairs per head
  config.position_embedding.type = "selective_rope";
  config.position_embedding.selective.phi_proj_rank = 4;
  nn::GatedLinearAttention gla(config, gen);
  for (const nn::Parameter& p : gla.named_parameters())
    std::printf("  attn.%-28s %s\n", p.name.c_str(), shape_str(p.value.shape()).c_str());
  std::printf("GLA: x %s -> %s\n", shape_str(x.shape()).c_str(), shape_str(gla.forward(x).shape()).c_str());
}
