// The language model of docs/model.md, named like the reference's GLAForCausalLM,
// GatedDeltaNetForCausalLM and TransformerForCausalLM:
//   model.embeddings -> model.layers.{i}.{attn_norm, attn, mlp_norm, mlp} -> model.norm -> lm_head
// Each layer's mixer ("attn") is GLA or Gated DeltaNet, or softmax attention in the layers listed
// in attn_layers (a hybrid, the reference's "attn" dict), or softmax attention everywhere (the
// "transformer" model type).
#pragma once
#include <vector>

#include "rotor/core/json.h"
#include "rotor/nn/attention.h"
#include "rotor/nn/gated_deltanet.h"
#include "rotor/nn/gla.h"

namespace rotor::nn {

struct ModelConfig {
  // The reference class the config describes: "gla", "gated_deltanet" or "transformer". Each
  // type reads and writes only the fields its reference config has (plus rotor's chunk_size, init).
  std::string model_type = "gla";
  int64_t vocab_size = 8192;
  int64_t hidden_size = 128;
  int64_t num_hidden_layers = 2;
  int64_t num_heads = 8;
  double expand_k = 0.5;
  double expand_v = 1.0;
  int64_t hidden_ratio = 4;
  int64_t intermediate_size = 0;  // 0: derived from hidden_ratio as fla does
  bool use_short_conv = false;
  int64_t conv_size = 4;
  bool use_output_gate = true;
  double norm_eps = 1e-6;
  int64_t gate_logit_normalizer = 16;
  int64_t gate_low_rank_dim = 16;
  int64_t chunk_size = 64;
  PositionEmbeddingConfig position_embedding;
  // gated_deltanet (expand_v, use_short_conv, conv_size above apply too)
  int64_t head_dim = 0;          // key size per head; 0: hidden_size / num_heads
  int64_t num_v_heads = 0;       // 0: num_heads
  bool use_gate = true;
  bool allow_neg_eigval = false;  // beta in (0, 2)
  // transformer
  bool qkv_bias = false;
  bool qk_norm = false;
  // Softmax-attention layers of a gla or gated_deltanet model (the others are that model's mixer),
  // as the reference's "attn" dict. As there they use fixed RoPE with base attn_rope_theta,
  // whatever the model's position embedding; attn_shared_position_embedding gives them the model's
  // own instead (a rotor option, written as attn.position_embedding "model").
  std::vector<int64_t> attn_layers;
  int64_t attn_num_heads = 0;  // 0: num_heads
  bool attn_qk_norm = false;   // a rotor option: the reference's hybrid layers have no q/k norm
  double attn_rope_theta = 10000;
  bool attn_shared_position_embedding = false;
  std::string init = "reference";  // weight initialisation scheme (nn/init.h): reference or torch

  int64_t mlp_size() const;
  int64_t attention_heads() const { return attn_num_heads ? attn_num_heads : num_heads; }
  int64_t gdn_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_heads; }
  bool is_attention_layer(int64_t i) const;
  void validate() const;  // rotor::Error("[config] ...") on anything inconsistent
  Json to_json() const;
  static ModelConfig from_json(const Json& j);
};

struct LayerCache {
  GlaCache gla;
  GatedDeltaNetCache gdn;
  AttentionCache attn;
};

class Block : public Module {
 public:
  Block(const ModelConfig& config, int64_t index, Generator& gen, DType dtype);
  Tensor forward(const Tensor& x, LayerCache* cache = nullptr) const;

  RMSNorm attn_norm;
  std::unique_ptr<GatedLinearAttention> gla;
  std::unique_ptr<GatedDeltaNet> gdn;
  std::unique_ptr<Attention> softmax_attn;
  RMSNorm mlp_norm;
  GatedMLP mlp;
};

class LanguageModel : public Module {
 public:
  LanguageModel(const ModelConfig& config, Generator& gen, DType dtype = DType::Float32);

  // ids: int64 [B, T] -> logits [B, T, vocab]. With a cache (one entry per layer; empty
  // entries start a sequence), the call continues the sequence and updates the cache.
  Tensor forward(const Tensor& ids, std::vector<LayerCache>* cache = nullptr) const;
  std::vector<LayerCache> new_cache() const { return std::vector<LayerCache>(layers.size()); }

  // Parameters of the matrix products (embedding excluded, head included): the P of the
  // 6·tokens·P FLOP yardstick.
  int64_t matmul_parameters() const;

  ModelConfig config;
  Embedding embeddings;
  std::vector<std::unique_ptr<Block>> layers;
  RMSNorm norm;
  Linear lm_head;

 private:
  Module model_;
};

}  // namespace rotor::nn
