#include "rotor/nn/attention.h"

#include "rotor/nn/gradcheck_case.h"

namespace rotor::nn {

Attention::Attention(const AttentionLayerConfig& c, Generator& gen, DType dtype)
    : config(c),
      head_dim(c.hidden_size / c.num_heads),
      q_proj(c.hidden_size, c.hidden_size, c.qkv_bias, gen, dtype),
      k_proj(c.hidden_size, c.hidden_size, c.qkv_bias, gen, dtype),
      v_proj(c.hidden_size, c.hidden_size, c.qkv_bias, gen, dtype),
      o_proj(c.hidden_size, c.hidden_size, false, gen, dtype) {
  ROTOR_CHECK(c.num_heads > 0 && c.hidden_size % c.num_heads == 0, "Attention", "hidden_size ", c.hidden_size,
              " is not divisible by num_heads ", c.num_heads);
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  register_module("o_proj", o_proj);
  if (c.qk_norm) {
    q_norm = std::make_unique<RMSNorm>(head_dim, c.norm_eps, dtype);
    k_norm = std::make_unique<RMSNorm>(head_dim, c.norm_eps, dtype);
    register_module("q_norm", *q_norm);
    register_module("k_norm", *k_norm);
  }
  position = PositionEmbedding(*this, c.position_embedding, head_dim, c.hidden_size, c.num_heads, gen, dtype);
}

Tensor Attention::forward(const Tensor& x, AttentionCache* cache) const {
  ROTOR_CHECK(x.dim() == 3 && x.size(2) == config.hidden_size, "Attention", "input ", shape_str(x.shape()),
              " should be [B, T, ", config.hidden_size, "]");
  const int64_t B = x.size(0), T = x.size(1), H = config.num_heads;
  Tensor q = reshape(q_proj.forward(x), {B, T, H, head_dim});
  Tensor k = reshape(k_proj.forward(x), {B, T, H, head_dim});
  Tensor v = reshape(v_proj.forward(x), {B, T, H, head_dim});
  // q/k norm comes after Selective RoPE's rotation, before a fixed one.
  const bool norm_after = position.selective();
  if (q_norm && !norm_after) q = q_norm->forward(q), k = k_norm->forward(k);
  position.apply(q, k, x, cache ? &cache->rotary : nullptr, cache ? cache->seen : 0);
  if (q_norm && norm_after) q = q_norm->forward(q), k = k_norm->forward(k);
  if (cache) {
    if (cache->k.defined()) {
      k = concat({cache->k, k}, 1);
      v = concat({cache->v, v}, 1);
    }
    cache->k = k.detach();
    cache->v = v.detach();
    cache->seen += T;
  }
  return o_proj.forward(reshape(attention(q, k, v), {B, T, config.hidden_size}));
}

// ---- gradcheck cases ----

namespace {
CaseBuilder attention_case(std::function<void(AttentionLayerConfig&)> configure) {
  return layer_case(
      [configure](DType d, Generator& g) {
        AttentionLayerConfig c;
        c.hidden_size = 8;
        c.num_heads = 2;
        c.position_embedding.selective.phi_proj_rank = 3;
        configure(c);
        auto m = std::make_shared<Attention>(c, g, d);
        scale_matrices_for_gradcheck(*m);
        return m;
      },
      [](const Attention& m, const TensorList& x) { return TensorList{m.forward(x[0])}; });
}
}  // namespace

ROTOR_GRADCHECK({"Attention", {input({2, 3, 8})}, {}, kLayerOptions, attention_case([](auto&) {})});
ROTOR_GRADCHECK({"Attention_rope_qk_norm", {input({1, 4, 8})}, {}, kLayerOptions, attention_case([](auto& c) {
                   c.position_embedding.type = "rope", c.position_embedding.theta = 100, c.qk_norm = true, c.qkv_bias = true;
                 })});
ROTOR_GRADCHECK({"Attention_selective_rope_qk_norm", {input({1, 4, 8})}, {}, kLayerOptions, attention_case([](auto& c) {
                   c.position_embedding.type = "selective_rope", c.qk_norm = true;
                 })});

}  // namespace rotor::nn
