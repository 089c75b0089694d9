#include "rotor/nn/gla.h"

#include "rotor/nn/gradcheck_case.h"

namespace rotor::nn {

GatedLinearAttention::GatedLinearAttention(const GlaLayerConfig& c, Generator& gen, DType dtype)
    : config(c),
      key_dim(int64_t(double(c.hidden_size) * c.expand_k)),
      value_dim(int64_t(double(c.hidden_size) * c.expand_v)),
      head_k_dim(key_dim / c.num_heads),
      head_v_dim(value_dim / c.num_heads),
      q_proj(c.hidden_size, key_dim, false, gen, dtype),
      k_proj(c.hidden_size, key_dim, false, gen, dtype),
      v_proj(c.hidden_size, value_dim, false, gen, dtype),
      gk_down(c.hidden_size, c.gate_low_rank_dim, false, gen, dtype),
      gk_up(c.gate_low_rank_dim, key_dim, true, gen, dtype),
      o_proj(value_dim, c.hidden_size, false, gen, dtype) {
  const char* op = "GatedLinearAttention";
  ROTOR_CHECK(c.num_heads > 0 && key_dim % c.num_heads == 0 && value_dim % c.num_heads == 0, op, "key dim ",
              key_dim, " and value dim ", value_dim, " must be divisible by num_heads ", c.num_heads);
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  if (c.use_output_gate) {
    g_proj = std::make_unique<Linear>(c.hidden_size, value_dim, false, gen, dtype);
    register_module("g_proj", *g_proj);
  }
  if (c.use_short_conv) {
    q_conv1d = std::make_unique<ShortConvolution>(key_dim, c.conv_size, c.conv_bias, true, gen, dtype);
    k_conv1d = std::make_unique<ShortConvolution>(key_dim, c.conv_size, c.conv_bias, true, gen, dtype);
    v_conv1d = std::make_unique<ShortConvolution>(value_dim, c.conv_size, c.conv_bias, true, gen, dtype);
    register_module("q_conv1d", *q_conv1d);
    register_module("k_conv1d", *k_conv1d);
    register_module("v_conv1d", *v_conv1d);
  }
  gk_proj_.register_module("0", gk_down);
  gk_proj_.register_module("1", gk_up);
  register_module("gk_proj", gk_proj_);
  register_module("o_proj", o_proj);
  if (c.use_output_gate) {
    g_norm_swish_gate = std::make_unique<GatedRMSNorm>(head_v_dim, c.norm_eps, dtype);
    register_module("g_norm_swish_gate", *g_norm_swish_gate);
  } else {
    g_norm = std::make_unique<RMSNorm>(head_v_dim, c.norm_eps, dtype);
    register_module("g_norm", *g_norm);
  }
  position = PositionEmbedding(*this, c.position_embedding, head_k_dim, c.hidden_size, c.num_heads, gen, dtype);
}

Tensor GatedLinearAttention::forward(const Tensor& x, GlaCache* cache) const {
  ROTOR_CHECK(x.dim() == 3 && x.size(2) == config.hidden_size, "GatedLinearAttention", "input ", shape_str(x.shape()),
              " should be [B, T, ", config.hidden_size, "]");
  const int64_t B = x.size(0), T = x.size(1), H = config.num_heads;
  Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);
  if (q_conv1d) short_conv_qkv(*q_conv1d, *k_conv1d, *v_conv1d, q, k, v, cache);
  Tensor gk = gk_up.forward(gk_down.forward(x));
  q = reshape(q, {B, T, H, head_k_dim});
  k = reshape(k, {B, T, H, head_k_dim});
  position.apply(q, k, x, cache ? &cache->rotary : nullptr, cache ? cache->seen : 0);
  v = reshape(v, {B, T, H, head_v_dim});
  Tensor g = logsigmoid(reshape(gk, {B, T, H, head_k_dim})) / double(config.gate_logit_normalizer);
  Tensor h0 = cache ? cache->state : Tensor();
  GlaOut out = T <= config.recurrent_below ? gla_recurrent(q, k, v, g, -1, h0)
                                           : gla_chunked(q, k, v, g, -1, h0, config.chunk_size);
  if (cache) {
    cache->state = out.final_state.detach();
    cache->seen += T;
  }
  Tensor o = out.o;  // [B, T, H, head_v_dim]
  if (g_norm_swish_gate)
    o = g_norm_swish_gate->forward(o, reshape(g_proj->forward(x), {B, T, H, head_v_dim}));
  else
    o = g_norm->forward(o);
  return o_proj.forward(reshape(o, {B, T, value_dim}));
}

// ---- gradcheck cases: small dims (hidden 6, 2 heads) ----

namespace {
CaseBuilder gla_case(std::function<void(GlaLayerConfig&)> configure) {
  return layer_case(
      [configure](DType d, Generator& g) {
        GlaLayerConfig c;
        c.hidden_size = 6;
        c.num_heads = 2;
        c.expand_k = 4.0 / 6.0;  // head_k_dim 2
        c.gate_low_rank_dim = 3;
        c.position_embedding.selective.phi_proj_rank = 3;
        configure(c);
        auto m = std::make_shared<GatedLinearAttention>(c, g, d);
        scale_matrices_for_gradcheck(*m);
        return m;
      },
      [](const GatedLinearAttention& m, const TensorList& x) { return TensorList{m.forward(x[0])}; });
}
}  // namespace

ROTOR_GRADCHECK({"GatedLinearAttention", {input({2, 4, 6})}, {}, kLayerOptions, gla_case([](auto&) {})});
ROTOR_GRADCHECK({"GatedLinearAttention_chunked_rope", {input({1, 5, 6})}, {}, kLayerOptions, gla_case([](auto& c) {
                   c.recurrent_below = 0, c.chunk_size = 2, c.position_embedding.type = "rope", c.position_embedding.theta = 100;
                 })});
ROTOR_GRADCHECK({"GatedLinearAttention_selective_rope_conv", {input({1, 4, 6})}, {}, kLayerOptions, gla_case([](auto& c) {
                   c.position_embedding.type = "selective_rope", c.use_short_conv = true, c.conv_bias = true;
                 })});
ROTOR_GRADCHECK({"GatedLinearAttention_no_output_gate", {input({1, 3, 6})}, {}, kLayerOptions, gla_case([](auto& c) {
                   c.use_output_gate = false, c.expand_v = 2.0;
                 })});

}  // namespace rotor::nn
