#include "rotor/nn/gated_deltanet.h"

#include <cmath>

#include "rotor/nn/gradcheck_case.h"

namespace rotor::nn {

void GatedDeltaNetLayerConfig::validate() const {
  const char* op = "GatedDeltaNet";
  ROTOR_CHECK(hidden_size > 0 && num_heads > 0 && head_dim > 0 && num_v_heads >= 0, op,
              "hidden_size, num_heads and head_dim must be positive (num_v_heads >= 0), got ", hidden_size, ", ",
              num_heads, ", ", head_dim, ", ", num_v_heads);
  ROTOR_CHECK(value_heads() % num_heads == 0, op, "num_v_heads ", value_heads(), " must be a multiple of num_heads ",
              num_heads);
  const double v = double(head_dim) * expand_v;
  ROTOR_CHECK(v >= 1 && std::abs(v - std::round(v)) < 1e-9 * v, op, "head_dim * expand_v = ", head_dim, " * ",
              expand_v, " is not a positive whole number");
  if (position_embedding.type != "nope")
    ROTOR_CHECK(head_dim % 2 == 0, op, "rotary position embeddings need an even head_dim, got ", head_dim);
  ROTOR_CHECK(conv_size >= 1 && chunk_size >= 1, op, "conv_size and chunk_size must be positive, got ", conv_size,
              " and ", chunk_size);
}

GatedDeltaNet::GatedDeltaNet(const GatedDeltaNetLayerConfig& c, Generator& gen, DType dtype)
    : config((c.validate(), c)),
      head_k_dim(c.head_dim),
      head_v_dim(int64_t(std::llround(double(c.head_dim) * c.expand_v))),
      key_dim(c.num_heads * head_k_dim),
      value_dim(c.value_heads() * head_v_dim),
      value_heads(c.value_heads()),
      q_proj(c.hidden_size, key_dim, false, gen, dtype),
      k_proj(c.hidden_size, key_dim, false, gen, dtype),
      v_proj(c.hidden_size, value_dim, false, gen, dtype),
      a_proj(c.hidden_size, value_heads, false, gen, dtype),
      b_proj(c.hidden_size, value_heads, false, gen, dtype),
      o_proj(value_dim, c.hidden_size, false, gen, dtype) {
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  register_module("a_proj", a_proj);
  register_module("b_proj", b_proj);
  // The reference's init, neither decayed: A ~ U(0, 16), A_log = log A; dt log-uniform in
  // [1e-3, 0.1] (at least 1e-4) and dt_bias = softplus^-1(dt) = dt + log(1 - exp(-dt)).
  A_log = register_parameter("A_log", log(rand({value_heads}, gen, dtype, 0.0, 16.0)), false);
  Tensor u = rand({value_heads}, gen, DType::Float64);
  std::vector<double> inv(static_cast<size_t>(value_heads));
  for (int64_t h = 0; h < value_heads; ++h) {
    const double lo = std::log(1e-3), hi = std::log(0.1);
    const double dt = std::max(1e-4, std::exp(lo + u.data<double>()[h] * (hi - lo)));
    inv[size_t(h)] = dt + std::log(-std::expm1(-dt));
  }
  dt_bias = register_parameter("dt_bias", core::to_dtype(from_vector(inv, {value_heads}), dtype), false);
  if (c.use_short_conv) {
    q_conv1d = std::make_unique<ShortConvolution>(key_dim, c.conv_size, c.conv_bias, true, gen, dtype);
    k_conv1d = std::make_unique<ShortConvolution>(key_dim, c.conv_size, c.conv_bias, true, gen, dtype);
    v_conv1d = std::make_unique<ShortConvolution>(value_dim, c.conv_size, c.conv_bias, true, gen, dtype);
    register_module("q_conv1d", *q_conv1d);
    register_module("k_conv1d", *k_conv1d);
    register_module("v_conv1d", *v_conv1d);
  }
  if (c.use_gate) {
    g_proj = std::make_unique<Linear>(c.hidden_size, value_dim, false, gen, dtype);
    register_module("g_proj", *g_proj);
    o_norm_gated = std::make_unique<GatedRMSNorm>(head_v_dim, c.norm_eps, dtype);
    register_module("o_norm", *o_norm_gated);
  } else {
    o_norm = std::make_unique<RMSNorm>(head_v_dim, c.norm_eps, dtype);
    register_module("o_norm", *o_norm);
  }
  register_module("o_proj", o_proj);
  position = PositionEmbedding(*this, c.position_embedding, head_k_dim, c.hidden_size, c.num_heads, gen, dtype);
}

Tensor GatedDeltaNet::forward(const Tensor& x, GatedDeltaNetCache* cache) const {
  ROTOR_CHECK(x.dim() == 3 && x.size(2) == config.hidden_size, "GatedDeltaNet", "input ", shape_str(x.shape()),
              " should be [B, T, ", config.hidden_size, "]");
  const int64_t B = x.size(0), T = x.size(1), H = config.num_heads, HV = value_heads;
  Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);
  if (q_conv1d) {
    short_conv_qkv(*q_conv1d, *k_conv1d, *v_conv1d, q, k, v, cache);
  } else {  // the reference's SiLU without convolutions
    q = silu(q), k = silu(k), v = silu(v);
  }
  q = reshape(q, {B, T, H, head_k_dim});
  k = reshape(k, {B, T, H, head_k_dim});
  position.apply(q, k, x, cache ? &cache->rotary : nullptr, cache ? cache->seen : 0);
  if (HV > H) {  // head h of q and k serves value heads h*G .. h*G+G-1
    const int64_t G = HV / H;
    auto repeat = [&](const Tensor& t) {
      return reshape(expand(unsqueeze(t, 3), {B, T, H, G, head_k_dim}), {B, T, HV, head_k_dim});
    };
    q = repeat(q), k = repeat(k);
  }
  q = l2_norm(q, 1e-6);
  k = l2_norm(k, 1e-6);
  v = reshape(v, {B, T, HV, head_v_dim});
  Tensor beta = sigmoid(b_proj.forward(x));
  if (config.allow_neg_eigval) beta = beta * 2.0;
  Tensor g = -exp(A_log) * softplus(a_proj.forward(x) + dt_bias);  // [B, T, HV]
  Tensor h0 = cache ? cache->state : Tensor();
  GatedDeltaOut out = T <= config.recurrent_below ? gated_delta_recurrent(q, k, v, g, beta, -1, h0)
                                                  : gated_delta_chunked(q, k, v, g, beta, -1, h0, config.chunk_size);
  if (cache) {
    cache->state = out.final_state.detach();
    cache->seen += T;
  }
  Tensor o = out.o;  // [B, T, HV, head_v_dim]
  if (o_norm_gated)
    o = o_norm_gated->forward(o, reshape(g_proj->forward(x), {B, T, HV, head_v_dim}));
  else
    o = o_norm->forward(o);
  return o_proj.forward(reshape(o, {B, T, value_dim}));
}

// ---- gradcheck cases: small dims (hidden 6, 2 heads of key size 2) ----

namespace {
CaseBuilder gdn_case(std::function<void(GatedDeltaNetLayerConfig&)> configure) {
  return layer_case(
      [configure](DType d, Generator& g) {
        GatedDeltaNetLayerConfig c;
        c.hidden_size = 6;
        c.num_heads = 2;
        c.head_dim = 2;
        c.expand_v = 1.5;  // head_v_dim 3
        c.position_embedding.selective.phi_proj_rank = 3;
        configure(c);
        auto m = std::make_shared<GatedDeltaNet>(c, g, d);
        scale_matrices_for_gradcheck(*m);
        return m;
      },
      [](const GatedDeltaNet& m, const TensorList& x) { return TensorList{m.forward(x[0])}; });
}
}  // namespace

ROTOR_GRADCHECK({"GatedDeltaNet", {input({2, 4, 6})}, {}, kLayerOptions, gdn_case([](auto&) {})});
ROTOR_GRADCHECK({"GatedDeltaNet_selective_rope", {input({1, 5, 6})}, {}, kLayerOptions, gdn_case([](auto& c) {
                   c.position_embedding.type = "selective_rope", c.position_embedding.selective.use_bias = true;
                 })});
ROTOR_GRADCHECK({"GatedDeltaNet_chunked_rope_negative_eigenvalues", {input({1, 5, 6})}, {}, kLayerOptions,
                 gdn_case([](auto& c) {
                   c.recurrent_below = 0, c.chunk_size = 2, c.allow_neg_eigval = true;
                   c.position_embedding.type = "rope", c.position_embedding.theta = 100;
                 })});
ROTOR_GRADCHECK({"GatedDeltaNet_no_gate_no_conv_value_heads", {input({1, 3, 6})}, {}, kLayerOptions, gdn_case([](auto& c) {
                   c.use_gate = false, c.use_short_conv = false, c.num_v_heads = 4, c.expand_v = 1.0;
                 })});

}  // namespace rotor::nn
