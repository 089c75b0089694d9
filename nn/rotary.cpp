#include "rotor/nn/rotary.h"

#include "rotor/nn/gradcheck_case.h"

#include <cmath>

namespace rotor::nn {

Json PositionEmbeddingConfig::to_json() const {
  Json j = Json::object();
  j.set("type", type);
  if (type == "rope") j.set("theta", theta);
  if (type == "selective_rope") {
    const SelectiveRopeConfig& s = selective;
    j.set("phi_parametrization", s.phi_parametrization);
    j.set("phi_proj_rank", s.phi_proj_rank);
    j.set("skip_conv", s.skip_conv);
    j.set("d_conv", s.d_conv);
    j.set("conv_act", s.conv_act.empty() ? Json() : Json(s.conv_act));
    j.set("use_bias", s.use_bias);
    j.set("use_gate", s.use_gate);
    j.set("gate_parametrization", s.gate_parametrization);
    j.set("gate_low_rank_dim", s.gate_low_rank_dim);
    j.set("temp_type", s.temp_type);
    j.set("temp_theta", s.temp_theta);
    j.set("temp_max", s.temp_max);
    j.set("temp_grad", s.temp_grad);
  }
  return j;
}

PositionEmbeddingConfig PositionEmbeddingConfig::from_json(const Json& j) {
  PositionEmbeddingConfig c;
  if (j.is_null()) return c;
  j.as_object("position_embedding");
  if (auto* v = j.find("type")) c.type = v->as_string("position_embedding.type");
  ROTOR_CHECK(c.type == "nope" || c.type == "rope" || c.type == "selective_rope", "config",
              "position_embedding.type must be nope, rope or selective_rope, got '", c.type, "'");
  if (auto* v = j.find("theta")) c.theta = v->as_number("position_embedding.theta");
  SelectiveRopeConfig& s = c.selective;
  auto str = [&](const char* key, std::string& out) {
    if (auto* v = j.find(key)) out = v->is_null() ? "" : v->as_string(key);
  };
  str("phi_parametrization", s.phi_parametrization);
  j.read_optional("phi_proj_rank", s.phi_proj_rank);
  j.read_optional("skip_conv", s.skip_conv);
  j.read_optional("d_conv", s.d_conv);
  str("conv_act", s.conv_act);
  j.read_optional("use_bias", s.use_bias);
  j.read_optional("use_gate", s.use_gate);
  str("gate_parametrization", s.gate_parametrization);
  j.read_optional("gate_low_rank_dim", s.gate_low_rank_dim);
  str("temp_type", s.temp_type);
  j.read_optional("temp_theta", s.temp_theta);
  j.read_optional("temp_max", s.temp_max);
  j.read_optional("temp_grad", s.temp_grad);
  return c;
}

SelectiveRoPE::SelectiveRoPE(int64_t head_k_dim_, int64_t model_dim_, int64_t num_heads_,
                             const SelectiveRopeConfig& cfg, Generator& gen, DType dtype)
    : config(cfg), num_heads(num_heads_), head_k_dim(head_k_dim_), pe_dim(head_k_dim_ / 2), model_dim(model_dim_) {
  const char* op = "SelectiveRoPE";
  ROTOR_CHECK(head_k_dim % 2 == 0, op, "head_k_dim must be even, got ", head_k_dim);
  ROTOR_CHECK(model_dim % num_heads == 0, op, "model_dim ", model_dim, " is not divisible by num_heads ", num_heads);
  // "swish" is the reference's other name for SiLU.
  const bool conv_silu = cfg.conv_act == "silu" || cfg.conv_act == "swish";
  ROTOR_CHECK(cfg.conv_act.empty() || conv_silu, op, "conv_act must be none, silu or swish, got '", cfg.conv_act, "'");
  const int64_t channels = num_heads * pe_dim;
  if (cfg.phi_parametrization == "low-rank") {
    ROTOR_CHECK(cfg.phi_proj_rank > 0, op, "phi_proj_rank must be positive, got ", cfg.phi_proj_rank);
    phi_down = std::make_unique<Linear>(model_dim, cfg.phi_proj_rank, false, gen, dtype);
    phi_up = std::make_unique<Linear>(cfg.phi_proj_rank, channels, false, gen, dtype);
    phi_proj_.register_module("0", *phi_down);
    phi_proj_.register_module("1", *phi_up);
  } else if (cfg.phi_parametrization == "full-rank") {
    // Per head [in, out] matrices, Kaiming-uniform like the reference's ChunkedLinear (fan_in = out).
    const int64_t in = model_dim / num_heads;
    const double bound = std::sqrt(6.0 / double(pe_dim));
    phi_weight = phi_proj_.register_parameter("weight", rand({num_heads, in, pe_dim}, gen, dtype, -bound, bound));
    phi_scalar = phi_proj_.register_parameter("scalar", ones({num_heads}, dtype), false);
  } else {
    ROTOR_FAIL(op, "phi_parametrization must be low-rank or full-rank, got '", cfg.phi_parametrization, "'");
  }
  register_module("phi_proj", phi_proj_);
  if (!cfg.skip_conv) {
    phi_conv1d = std::make_unique<ShortConvolution>(channels, cfg.d_conv, false, conv_silu, gen, dtype);
    register_module("phi_conv1d", *phi_conv1d);
  }
  if (cfg.use_bias) phi_bias = register_parameter("phi_bias", zeros({1, 1, num_heads, pe_dim}, dtype), false);
  Tensor temp = reshape(rotary_temperature(cfg.temp_type, cfg.temp_theta, head_k_dim, cfg.temp_max, dtype), {1, 1, 1, pe_dim});
  temperature = cfg.temp_grad ? register_parameter("temperature", temp, false) : register_buffer_parameter("temperature", temp);
  if (cfg.use_gate) {
    if (cfg.gate_parametrization == "standard") {
      gate_proj = std::make_unique<Linear>(model_dim, num_heads, true, gen, dtype);
      register_module("phase_gate_proj", *gate_proj);
    } else if (cfg.gate_parametrization == "low-rank" || cfg.gate_parametrization == "gla") {
      const int64_t out = cfg.gate_parametrization == "gla" ? channels : num_heads;
      gate_down = std::make_unique<Linear>(model_dim, cfg.gate_low_rank_dim, false, gen, dtype);
      gate_up = std::make_unique<Linear>(cfg.gate_low_rank_dim, out, true, gen, dtype);
      phase_gate_proj_.register_module("0", *gate_down);
      phase_gate_proj_.register_module("1", *gate_up);
      register_module("phase_gate_proj", phase_gate_proj_);
    } else {
      ROTOR_FAIL(op, "gate_parametrization must be standard, low-rank or gla, got '", cfg.gate_parametrization, "'");
    }
  }
}

std::pair<Tensor, Tensor> SelectiveRoPE::phase_increments(const Tensor& x, const Tensor& history) const {
  ROTOR_CHECK(x.dim() == 3 && x.size(2) == model_dim, "SelectiveRoPE", "input ", shape_str(x.shape()),
              " should be [B, T, ", model_dim, "]");
  const int64_t B = x.size(0), T = x.size(1), H = num_heads, R = pe_dim;
  // 1. per-head L2 normalisation of the layer input
  Tensor xh = l2_norm(reshape(x, {B, T, H, model_dim / H}));
  Tensor xn = reshape(xh, {B, T, model_dim});
  // 2. projection to H*R phase increments
  Tensor phi;
  if (phi_down) {
    phi = phi_up->forward(phi_down->forward(xn));  // [B, T, H*R]
  } else {
    // weight = scalar * normalize(W, dim=-2); per head [B*T, in] @ [in, R]
    Tensor w = reshape(phi_scalar, {H, 1, 1}) * (phi_weight * rsqrt(sum(square(phi_weight), {1}, true) + 1e-24));
    Tensor xt = transpose(reshape(xh, {B * T, H, model_dim / H}), 0, 1);  // [H, B*T, in]
    phi = reshape(transpose(matmul(xt, w), 0, 1), {B, T, H * R});
  }
  // 3. short causal convolution (or first difference)
  Tensor new_history;
  if (phi_conv1d) {
    ConvResult c = phi_conv1d->forward(phi, history);
    phi = c.y;
    new_history = c.history;
  } else {
    Tensor prev = history.defined() ? history : zeros({B, 1, H * R}, phi.dtype());
    ROTOR_CHECK(prev.shape() == (Shape{B, 1, H * R}), "SelectiveRoPE", "skip_conv history ",
                shape_str(prev.shape()), " should be ", shape_str({B, 1, H * R}));
    Tensor shifted = narrow(concat({prev, phi}, 1), 1, 0, T);
    new_history = narrow(phi, 1, T - 1, 1).detach();
    phi = phi - shifted;
  }
  phi = reshape(phi, {B, T, H, R});
  // 4. bias: the phase advances at least at rate exp(b)
  if (phi_bias.defined()) phi = phi + exp(phi_bias);
  // 5. phase gate
  if (config.use_gate) {
    Tensor gate = gate_proj ? gate_proj->forward(xn) : gate_up->forward(gate_down->forward(xn));
    gate = sigmoid(gate);
    phi = config.gate_parametrization == "gla" ? phi * reshape(gate, {B, T, H, R}) : phi * unsqueeze(gate, -1);
  }
  return {phi, new_history};
}

SelectiveRoPE::Output SelectiveRoPE::forward(const Tensor& q, const Tensor& k, const Tensor& x,
                                             const RotaryCache* cache) const {
  auto [phi, history] = phase_increments(x, cache ? cache->history : Tensor());
  // 6-8. accumulate, scale by the temperature, rotate q and k
  SelectiveRopeOut r = selective_rope(q, k, phi, temperature, cache ? cache->offset : Tensor());
  return {r.q, r.k, {history, r.final_offset.detach()}};
}

PositionEmbedding::PositionEmbedding(Module& owner, const PositionEmbeddingConfig& c, int64_t head_dim,
                                     int64_t hidden_size, int64_t num_heads, Generator& gen, DType dtype) {
  if (c.type == "selective_rope") {
    selective_rope_ = std::make_unique<SelectiveRoPE>(head_dim, hidden_size, num_heads, c.selective, gen, dtype);
    owner.register_module("rotary", *selective_rope_);
  } else if (c.type == "rope") {
    rope_freqs_ = rope_frequencies(head_dim, c.theta, dtype);
  }
}

void PositionEmbedding::apply(Tensor& q, Tensor& k, const Tensor& x, RotaryCache* rotary, int64_t seen) const {
  if (selective_rope_) {
    SelectiveRoPE::Output r = selective_rope_->forward(q, k, x, rotary);
    q = r.q, k = r.k;
    if (rotary) *rotary = r.cache;
  } else if (rope_freqs_.defined()) {
    RopeOut r = rope(q, k, rope_freqs_, seen);
    q = r.q, k = r.k;
  }
}

// ---- gradcheck cases: every option of docs/selective_rope.md, small dims (H = 2, D = 4, model 6) ----

namespace {
CaseBuilder selective_rope_case(SelectiveRopeConfig config, bool with_cache) {
  return layer_case(
      [config](DType d, Generator& g) {
        auto m = std::make_shared<SelectiveRoPE>(4, 6, 2, config, g, d);
        // The reference initialisation (std 0.02) gives tiny angles; larger weights exercise the rotation.
        scale_parameters(*m, 20.0, [](const Parameter& p) { return p.name != "phi_proj.scalar"; });
        return m;
      },
      [with_cache](const SelectiveRoPE& m, const TensorList& x) {
        RotaryCache cache;
        if (with_cache) {
          cache.offset = x[3];
          cache.history = x[4];
        }
        SelectiveRoPE::Output r = m.forward(x[0], x[1], x[2], with_cache ? &cache : nullptr);
        return TensorList{r.q, r.k};
      });
}
std::vector<InputSpec> rope_inputs(bool with_cache, int64_t history) {
  std::vector<InputSpec> in = {input({2, 3, 2, 4}), input({2, 3, 2, 4}), input({2, 3, 6})};
  if (with_cache) in.push_back(input({2, 2, 2})), in.push_back(input({2, history, 4}));
  return in;
}
SelectiveRopeConfig with(std::function<void(SelectiveRopeConfig&)> f) {
  SelectiveRopeConfig c;
  c.phi_proj_rank = 3;
  f(c);
  return c;
}
}  // namespace

ROTOR_GRADCHECK({"SelectiveRoPE_low_rank", rope_inputs(false, 0), {}, kLayerOptions, selective_rope_case(with([](auto&) {}), false)});
ROTOR_GRADCHECK({"SelectiveRoPE_with_cache", rope_inputs(true, 3), {}, kLayerOptions, selective_rope_case(with([](auto&) {}), true)});
ROTOR_GRADCHECK({"SelectiveRoPE_full_rank", rope_inputs(false, 0), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.phi_parametrization = "full-rank"; }), false)});
ROTOR_GRADCHECK({"SelectiveRoPE_skip_conv", rope_inputs(true, 1), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.skip_conv = true; }), true)});
ROTOR_GRADCHECK({"SelectiveRoPE_conv_silu_bias", rope_inputs(false, 0), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.conv_act = "silu", c.use_bias = true; }), false)});
ROTOR_GRADCHECK({"SelectiveRoPE_gate_per_head", rope_inputs(false, 0), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.use_gate = true; }), false)});
ROTOR_GRADCHECK({"SelectiveRoPE_gate_low_rank", rope_inputs(false, 0), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.use_gate = true, c.gate_parametrization = "low-rank", c.gate_low_rank_dim = 2; }), false)});
ROTOR_GRADCHECK({"SelectiveRoPE_gate_per_channel", rope_inputs(false, 0), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.use_gate = true, c.gate_parametrization = "gla", c.gate_low_rank_dim = 2; }), false)});
ROTOR_GRADCHECK({"SelectiveRoPE_rfa_trainable_temperature", rope_inputs(false, 0), {}, kLayerOptions,
                 selective_rope_case(with([](auto& c) { c.temp_type = "rfa", c.temp_theta = 0.5, c.temp_grad = true; }), false)});

}  // namespace rotor::nn
