// The gated linear attention layer (docs/gla.md) as the reference defines it: projections,
// optional short convolutions, low-rank log-decay gate, position embedding on q and k, the
// recurrence (chunked for training, recurrent for short inputs and decoding), and the gated
// RMSNorm output.
#pragma once
#include "rotor/autograd/gla.h"
#include "rotor/nn/rotary.h"

namespace rotor::nn {

struct GlaLayerConfig {
  int64_t hidden_size = 128;
  int64_t num_heads = 4;
  double expand_k = 0.5;
  double expand_v = 1.0;
  bool use_short_conv = false;
  int64_t conv_size = 4;
  bool conv_bias = false;
  bool use_output_gate = true;
  double norm_eps = 1e-5;
  int64_t gate_logit_normalizer = 16;
  int64_t gate_low_rank_dim = 16;
  int64_t chunk_size = 64;
  int64_t recurrent_below = 64;  // inputs up to this length run the recurrent form (as fla)
  PositionEmbeddingConfig position_embedding;
};

// A layer's state after the tokens seen so far.
struct GlaCache {
  Tensor state;                            // [B, H, K, V]
  Tensor q_history, k_history, v_history;  // short-conv inputs
  RotaryCache rotary;
  int64_t seen = 0;                        // tokens consumed (fixed RoPE's position offset)
};

class GatedLinearAttention : public Module {
 public:
  GatedLinearAttention(const GlaLayerConfig& config, Generator& gen, DType dtype = DType::Float32);
  // x: [B, T, hidden]. With a cache, continues from it and updates it.
  Tensor forward(const Tensor& x, GlaCache* cache = nullptr) const;

  GlaLayerConfig config;
  int64_t key_dim, value_dim, head_k_dim, head_v_dim;
  Linear q_proj, k_proj, v_proj;
  std::unique_ptr<Linear> g_proj;
  std::unique_ptr<ShortConvolution> q_conv1d, k_conv1d, v_conv1d;
  Linear gk_down, gk_up;  // gk_proj.0, gk_proj.1
  Linear o_proj;
  std::unique_ptr<GatedRMSNorm> g_norm_swish_gate;
  std::unique_ptr<RMSNorm> g_norm;
  PositionEmbedding position;

 private:
  Module gk_proj_;
};

}  // namespace rotor::nn
