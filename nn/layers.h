// The basic layers. Parameter names and layouts follow PyTorch / fla, so weights load from a
// reference state_dict without renaming.
#pragma once
#include "rotor/nn/functional.h"
#include "rotor/nn/module.h"

namespace rotor::nn {

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, DType dtype = DType::Float32);
  Tensor forward(const Tensor& x) const { return linear(x, weight, bias); }
  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined
};

class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator& gen, DType dtype = DType::Float32);
  Tensor forward(const Tensor& ids) const { return embedding(weight, ids); }
  Tensor weight;  // [num, dim]
};

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, DType dtype = DType::Float32);
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight, eps); }
  Tensor weight;  // [dim], ones
  double eps;
};

// PyTorch's nn.LayerNorm over the last dim: (x − mean) / √(var + eps) · weight + bias, the
// variance biased. weight (ones) and bias (zeros) are [dim]; without elementwise_affine there
// are neither, with bias false no bias.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool elementwise_affine = true, bool bias = true,
                     DType dtype = DType::Float32);
  Tensor forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }
  Tensor weight, bias;  // [dim] or undefined
  double eps;
};

// PyTorch's nn.Dropout: in training mode each element is zeroed with probability p and the rest
// scaled by 1/(1 − p); in eval mode the identity. The masks come from the module's own
// generator, so a seed fixes them.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, uint64_t seed = 0);
  Tensor forward(const Tensor& x) const { return dropout(x, p, training(), generator); }
  double p;
  mutable Generator generator;
};

// RMSNorm(o) * weight * swish(gate): GLA's output gate (fla's FusedRMSNormGated).
class GatedRMSNorm : public Module {
 public:
  GatedRMSNorm(int64_t dim, double eps, DType dtype = DType::Float32);
  Tensor forward(const Tensor& x, const Tensor& gate) const { return gated_rms_norm(x, weight, gate, eps); }
  Tensor weight;
  double eps;
};

// SwiGLU: down_proj(silu(gate_proj(x)) * up_proj(x)) (fla's GatedMLP).
class GatedMLP : public Module {
 public:
  GatedMLP(int64_t hidden, int64_t intermediate, Generator& gen, DType dtype = DType::Float32);
  Tensor forward(const Tensor& x) const;
  Linear gate_proj, up_proj, down_proj;
};

// Causal depthwise convolution over time (fla's ShortConvolution); weight [C, 1, W].
class ShortConvolution : public Module {
 public:
  ShortConvolution(int64_t channels, int64_t width, bool bias, bool silu, Generator& gen,
                   DType dtype = DType::Float32);
  // x [B, T, C]; history: [B, W-1, C] from the previous call, or undefined at the start.
  ConvResult forward(const Tensor& x, const Tensor& history = Tensor()) const {
    return short_conv(x, weight, bias, history, silu);
  }
  Tensor weight, bias;
  bool silu;
};

// q, k, v [B, T, C] through their own short convolutions, in place. With a cache (any type with
// q_history, k_history, v_history), continues from its histories and updates them.
template <class Cache>
void short_conv_qkv(const ShortConvolution& cq, const ShortConvolution& ck, const ShortConvolution& cv, Tensor& q,
                    Tensor& k, Tensor& v, Cache* cache) {
  ConvResult rq = cq.forward(q, cache ? cache->q_history : Tensor());
  ConvResult rk = ck.forward(k, cache ? cache->k_history : Tensor());
  ConvResult rv = cv.forward(v, cache ? cache->v_history : Tensor());
  q = rq.y, k = rk.y, v = rv.y;
  if (cache) cache->q_history = rq.history, cache->k_history = rk.history, cache->v_history = rv.history;
}

// fla's GatedMLP intermediate size: hidden * ratio * 2/3, rounded up to a multiple of 256.
int64_t swiglu_intermediate_size(int64_t hidden, int64_t hidden_ratio);

}  // namespace rotor::nn
