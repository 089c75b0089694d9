// The Gated DeltaNet layer (docs/gated_deltanet.md; the reference's layers/gated_deltanet.py):
// q/k/v projections with short convolutions and SiLU, the position embedding on q and k (after
// the convolution, before the L2 normalisation, which a rotation does not change), the decay
// g = -exp(A_log) softplus(a_proj(x) + dt_bias) and the write strength beta = sigmoid(b_proj(x))
// (times 2 with allow_neg_eigval), the gated delta rule (chunked for training, recurrent for
// short inputs and decoding), a gated RMSNorm per head and o_proj.
#pragma once
#include "rotor/autograd/gated_delta.h"
#include "rotor/nn/rotary.h"

namespace rotor::nn {

struct GatedDeltaNetLayerConfig {
  int64_t hidden_size = 128;
  int64_t num_heads = 4;
  int64_t head_dim = 32;         // key size per head; key_dim = num_heads * head_dim
  int64_t num_v_heads = 0;       // 0: num_heads; more: each q/k head serves num_v_heads/num_heads value heads
  double expand_v = 2.0;         // head_v_dim = head_dim * expand_v
  bool use_gate = true;          // output gate g_proj and the gated RMSNorm
  bool use_short_conv = true;
  int64_t conv_size = 4;
  bool conv_bias = false;
  bool allow_neg_eigval = false;  // beta in (0, 2) instead of (0, 1)
  double norm_eps = 1e-5;
  int64_t chunk_size = 64;
  int64_t recurrent_below = 64;  // inputs up to this length run the recurrent form (as the reference)
  PositionEmbeddingConfig position_embedding;

  int64_t value_heads() const { return num_v_heads > 0 ? num_v_heads : num_heads; }
  void validate() const;  // rotor::Error("[GatedDeltaNet] ...")
};

// A layer's state after the tokens seen so far.
struct GatedDeltaNetCache {
  Tensor state;                            // [B, HV, K, V]
  Tensor q_history, k_history, v_history;  // short-conv inputs
  RotaryCache rotary;
  int64_t seen = 0;                        // tokens consumed (fixed RoPE's position offset)
};

class GatedDeltaNet : public Module {
 public:
  GatedDeltaNet(const GatedDeltaNetLayerConfig& config, Generator& gen, DType dtype = DType::Float32);
  // x: [B, T, hidden]. With a cache, continues from it and updates it.
  Tensor forward(const Tensor& x, GatedDeltaNetCache* cache = nullptr) const;

  GatedDeltaNetLayerConfig config;
  int64_t head_k_dim, head_v_dim, key_dim, value_dim, value_heads;
  Linear q_proj, k_proj, v_proj, a_proj, b_proj;
  Tensor A_log, dt_bias;  // [HV]
  std::unique_ptr<ShortConvolution> q_conv1d, k_conv1d, v_conv1d;
  std::unique_ptr<Linear> g_proj;
  std::unique_ptr<GatedRMSNorm> o_norm_gated;  // registered as o_norm
  std::unique_ptr<RMSNorm> o_norm;
  Linear o_proj;
  PositionEmbedding position;
};

}  // namespace rotor::nn
