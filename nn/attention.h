// The causal softmax attention layer (docs/attention.md; reference layers/attn.py), with the same
// position-embedding choice as GLA and optional per-head RMSNorm on q and k.
#pragma once
#include "rotor/autograd/attention.h"
#include "rotor/nn/rotary.h"

namespace rotor::nn {

struct AttentionLayerConfig {
  int64_t hidden_size = 128;
  int64_t num_heads = 4;
  bool qkv_bias = false;
  bool qk_norm = false;  // after the rotation for Selective RoPE, before it otherwise
  double norm_eps = 1e-5;  // of the q/k norms: the reference's RMSNorm default, not the model's eps
  PositionEmbeddingConfig position_embedding;
};

struct AttentionCache {
  Tensor k, v;  // [B, seen, H, D], already rotated
  RotaryCache rotary;
  int64_t seen = 0;
};

class Attention : public Module {
 public:
  Attention(const AttentionLayerConfig& config, Generator& gen, DType dtype = DType::Float32);
  Tensor forward(const Tensor& x, AttentionCache* cache = nullptr) const;

  AttentionLayerConfig config;
  int64_t head_dim;
  Linear q_proj, k_proj, v_proj, o_proj;
  std::unique_ptr<RMSNorm> q_norm, k_norm;
  PositionEmbedding position;
};

}  // namespace rotor::nn
