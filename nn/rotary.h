// Position embeddings for the mixers: none, fixed RoPE, or Selective RoPE (docs/selective_rope.md) with
// every option of the reference module (timurcarstensen/selective-rope, modules/rotary.py).
#pragma once
#include <string>

#include "rotor/autograd/rope.h"
#include "rotor/core/json.h"
#include "rotor/nn/layers.h"

namespace rotor::nn {

struct SelectiveRopeConfig {
  std::string phi_parametrization = "low-rank";  // or "full-rank" (per head, weight-normalised)
  int64_t phi_proj_rank = 32;
  bool skip_conv = false;      // first difference instead of the short convolution
  int64_t d_conv = 4;
  std::string conv_act;        // "" (none), "silu" or its other name "swish"
  bool use_bias = false;       // φ += exp(phi_bias)
  bool use_gate = false;       // φ *= σ(phase_gate_proj(x̂))
  std::string gate_parametrization = "standard";  // per head; "low-rank" per head; "gla" per channel
  int64_t gate_low_rank_dim = 16;
  std::string temp_type = "rope";  // or "rfa"
  double temp_theta = 500000;
  double temp_max = 1.0;
  bool temp_grad = false;
};

struct PositionEmbeddingConfig {
  std::string type = "nope";  // "nope", "rope" or "selective_rope"
  double theta = 500000;      // RoPE base
  SelectiveRopeConfig selective;

  // The reference's flat dict: {"type": "selective_rope", "phi_proj_rank": 32, ...}.
  Json to_json() const;
  static PositionEmbeddingConfig from_json(const Json& j);
};

// What a Selective RoPE carries from one segment of a sequence to the next.
struct RotaryCache {
  Tensor history;  // the last d_conv-1 values of φ before the convolution (or the last φ for skip_conv)
  Tensor offset;   // accumulated phase Φ, [B, H, R]
};

class SelectiveRoPE : public Module {
 public:
  SelectiveRoPE(int64_t head_k_dim, int64_t model_dim, int64_t num_heads, const SelectiveRopeConfig& config,
                Generator& gen, DType dtype = DType::Float32);

  struct Output {
    Tensor q, k;
    RotaryCache cache;
  };
  // q, k: [B, T, H, D]; x: the layer input [B, T, model_dim]; cache: state after earlier tokens.
  Output forward(const Tensor& q, const Tensor& k, const Tensor& x, const RotaryCache* cache = nullptr) const;
  // φ before accumulation, [B, T, H, R] (steps 1-5 of docs/selective_rope.md), and the conv history after it.
  std::pair<Tensor, Tensor> phase_increments(const Tensor& x, const Tensor& history) const;

  SelectiveRopeConfig config;
  int64_t num_heads, head_k_dim, pe_dim, model_dim;
  std::unique_ptr<Linear> phi_down, phi_up;  // low-rank: phi_proj.0, phi_proj.1
  Tensor phi_weight, phi_scalar;             // full-rank: phi_proj.weight [H, in, R], phi_proj.scalar [H]
  std::unique_ptr<ShortConvolution> phi_conv1d;
  Tensor phi_bias;     // [1, 1, H, R]
  Tensor temperature;  // [1, 1, 1, R]
  std::unique_ptr<Linear> gate_proj, gate_down, gate_up;  // phase_gate_proj or phase_gate_proj.{0,1}

 private:
  Module phi_proj_, phase_gate_proj_;  // name scopes for the reference's nested names
};

// The position embedding of an attention or GLA layer: none, fixed RoPE or Selective RoPE
// (registered on the owning layer as "rotary", the reference's name), applied to q and k.
class PositionEmbedding {
 public:
  PositionEmbedding() = default;  // none
  PositionEmbedding(Module& owner, const PositionEmbeddingConfig& config, int64_t head_dim, int64_t hidden_size,
                    int64_t num_heads, Generator& gen, DType dtype);
  // Rotates q, k [B, T, H, head_dim] in place of the handles. x: the layer input (Selective
  // RoPE's φ); rotary / seen: the streaming state, nullptr / 0 for a whole sequence.
  void apply(Tensor& q, Tensor& k, const Tensor& x, RotaryCache* rotary, int64_t seen) const;
  bool selective() const { return bool(selective_rope_); }

 private:
  std::unique_ptr<SelectiveRoPE> selective_rope_;
  Tensor rope_freqs_;  // fixed RoPE only
};

}  // namespace rotor::nn
