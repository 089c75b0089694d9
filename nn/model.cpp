#include "rotor/nn/model.h"

#include <algorithm>
#include <cmath>

#include "rotor/nn/gradcheck_case.h"
#include "rotor/nn/init.h"

namespace rotor::nn {

int64_t ModelConfig::mlp_size() const {
  return intermediate_size > 0 ? intermediate_size : swiglu_intermediate_size(hidden_size, hidden_ratio);
}

bool ModelConfig::is_attention_layer(int64_t i) const {
  return std::find(attn_layers.begin(), attn_layers.end(), i) != attn_layers.end();
}

namespace {
// Every size a config can ask for is bounded before anything is built from it, so that a
// corrupt or hostile config is an error, not an allocation of terabytes or an overflow.
constexpr int64_t kMaxVocab = int64_t(1) << 24, kMaxWidth = int64_t(1) << 16, kMaxLayers = 4096,
                  kMaxRatio = 64, kMaxConv = 64, kMaxExpand = 64;

void check_range(const char* name, int64_t v, int64_t lo, int64_t hi) {
  ROTOR_CHECK(v >= lo && v <= hi, "config", name, " must be in [", lo, ", ", hi, "], got ", v);
}
void check_positive(const char* name, double v, double hi) {
  ROTOR_CHECK(std::isfinite(v) && v > 0 && v <= hi, "config", name, " must be positive and at most ", hi, ", got ", v);
}
bool one_of(const std::string& v, std::initializer_list<const char*> choices) {
  for (const char* c : choices)
    if (v == c) return true;
  return false;
}

void validate_position_embedding(const PositionEmbeddingConfig& pe) {
  const char* op = "config";
  ROTOR_CHECK(one_of(pe.type, {"nope", "rope", "selective_rope"}), op,
              "position_embedding.type must be nope, rope or selective_rope, got '", pe.type, "'");
  if (pe.type == "rope") check_positive("position_embedding.theta", pe.theta, 1e300);
  if (pe.type != "selective_rope") return;
  const SelectiveRopeConfig& s = pe.selective;
  ROTOR_CHECK(one_of(s.phi_parametrization, {"low-rank", "full-rank"}), op,
              "position_embedding.phi_parametrization must be low-rank or full-rank, got '", s.phi_parametrization, "'");
  check_range("position_embedding.phi_proj_rank", s.phi_proj_rank, 1, kMaxWidth);
  check_range("position_embedding.d_conv", s.d_conv, 1, kMaxConv);
  ROTOR_CHECK(one_of(s.conv_act, {"", "silu", "swish"}), op,
              "position_embedding.conv_act must be null, silu or swish, got '", s.conv_act, "'");
  ROTOR_CHECK(one_of(s.gate_parametrization, {"standard", "low-rank", "gla"}), op,
              "position_embedding.gate_parametrization must be standard, low-rank or gla, got '", s.gate_parametrization,
              "'");
  check_range("position_embedding.gate_low_rank_dim", s.gate_low_rank_dim, 1, kMaxWidth);
  ROTOR_CHECK(one_of(s.temp_type, {"rope", "rfa"}), op, "position_embedding.temp_type must be rope or rfa, got '",
              s.temp_type, "'");
  check_positive("position_embedding.temp_theta", s.temp_theta, 1e300);
  check_positive("position_embedding.temp_max", s.temp_max, 1e300);
}

GatedDeltaNetLayerConfig gated_deltanet_config(const ModelConfig& c) {
  GatedDeltaNetLayerConfig g;
  g.hidden_size = c.hidden_size;
  g.num_heads = c.num_heads;
  g.head_dim = c.gdn_head_dim();
  g.num_v_heads = c.num_v_heads;
  g.expand_v = c.expand_v;
  g.use_gate = c.use_gate;
  g.use_short_conv = c.use_short_conv;
  g.conv_size = c.conv_size;
  g.allow_neg_eigval = c.allow_neg_eigval;
  g.norm_eps = c.norm_eps;
  g.chunk_size = c.chunk_size;
  g.position_embedding = c.position_embedding;
  return g;
}
}  // namespace

void ModelConfig::validate() const {
  const char* op = "config";
  ROTOR_CHECK(model_type == "gla" || model_type == "gated_deltanet" || model_type == "transformer", op,
              "model_type must be gla, gated_deltanet or transformer, got '", model_type, "'");
  check_range("vocab_size", vocab_size, 1, kMaxVocab);
  check_range("hidden_size", hidden_size, 1, kMaxWidth);
  check_range("num_hidden_layers", num_hidden_layers, 1, kMaxLayers);
  check_range("num_heads", num_heads, 1, kMaxWidth);
  if (model_type != "gated_deltanet" || head_dim == 0)
    ROTOR_CHECK(hidden_size % num_heads == 0, op, "hidden_size ", hidden_size, " is not divisible by num_heads ",
                num_heads);
  check_positive("expand_k", expand_k, kMaxExpand);
  check_positive("expand_v", expand_v, kMaxExpand);
  check_range("hidden_ratio", hidden_ratio, 1, kMaxRatio);
  check_range("intermediate_size", intermediate_size, 0, kMaxWidth * kMaxRatio);
  check_range("conv_size", conv_size, 1, kMaxConv);
  check_positive("norm_eps", norm_eps, 1.0);
  check_range("gate_logit_normalizer", gate_logit_normalizer, 1, kMaxWidth);
  check_range("gate_low_rank_dim", gate_low_rank_dim, 1, kMaxWidth);
  check_range("chunk_size", chunk_size, 1, kMaxWidth);
  validate_position_embedding(position_embedding);
  if (model_type == "gla") {
    const int64_t key_dim = int64_t(double(hidden_size) * expand_k), value_dim = int64_t(double(hidden_size) * expand_v);
    ROTOR_CHECK(key_dim > 0 && key_dim % num_heads == 0 && value_dim > 0 && value_dim % num_heads == 0, op,
                "expand_k/expand_v give key dim ", key_dim, " and value dim ", value_dim,
                ", which must be positive multiples of num_heads ", num_heads);
    if (position_embedding.type != "nope")
      ROTOR_CHECK((key_dim / num_heads) % 2 == 0, op, "rotary position embeddings need an even head dim, got ",
                  key_dim / num_heads);
  } else if (model_type == "gated_deltanet") {
    check_range("head_dim", head_dim, 0, kMaxWidth);
    check_range("num_v_heads", num_v_heads, 0, kMaxWidth);
    gated_deltanet_config(*this).validate();
  } else {
    ROTOR_CHECK(attn_layers.empty(), op, "a transformer has softmax attention in every layer: attn.layers must be empty");
    if (position_embedding.type != "nope")
      ROTOR_CHECK((hidden_size / num_heads) % 2 == 0, op, "rotary position embeddings need an even head dim, got ",
                  hidden_size / num_heads);
  }
  for (int64_t l : attn_layers)
    ROTOR_CHECK(l >= 0 && l < num_hidden_layers, op, "attention layer index ", l, " out of range [0, ",
                num_hidden_layers, ")");
  check_range("attn.num_heads", attn_num_heads, 0, hidden_size);
  const int64_t ah = attention_heads();
  ROTOR_CHECK(attn_layers.empty() || (hidden_size % ah == 0 && (hidden_size / ah) % 2 == 0), op, "hidden_size ",
              hidden_size, " must split into attention heads ", ah, " of even size (their RoPE)");
  check_positive("attn.rope_theta", attn_rope_theta, 1e300);
  init_scheme_from_name(init);
}

Json ModelConfig::to_json() const {
  Json j = Json::object();
  j.set("model_type", model_type);
  j.set("vocab_size", vocab_size);
  j.set("hidden_size", hidden_size);
  j.set("num_hidden_layers", num_hidden_layers);
  j.set("num_heads", num_heads);
  if (model_type == "gla") {
    j.set("expand_k", expand_k);
    j.set("expand_v", expand_v);
    j.set("use_short_conv", use_short_conv);
    j.set("conv_size", conv_size);
    j.set("use_output_gate", use_output_gate);
    j.set("gate_logit_normalizer", gate_logit_normalizer);
    j.set("gate_low_rank_dim", gate_low_rank_dim);
  } else if (model_type == "gated_deltanet") {
    j.set("head_dim", gdn_head_dim());
    j.set("num_v_heads", num_v_heads > 0 ? Json(num_v_heads) : Json());
    j.set("expand_v", expand_v);
    j.set("use_gate", use_gate);
    j.set("use_short_conv", use_short_conv);
    j.set("allow_neg_eigval", allow_neg_eigval);
    j.set("conv_size", conv_size);
  } else {
    j.set("qkv_bias", qkv_bias);
    j.set("qk_norm", qk_norm);
  }
  j.set("hidden_ratio", hidden_ratio);
  j.set("intermediate_size", intermediate_size > 0 ? Json(intermediate_size) : Json());
  j.set("norm_eps", norm_eps);
  if (model_type != "transformer") j.set("chunk_size", chunk_size);
  j.set("position_embedding", position_embedding.to_json());
  j.set("init", init);
  if (model_type == "transformer") return j;
  if (attn_layers.empty()) {
    j.set("attn", Json());
  } else {
    Json a = Json::object(), layers_json = Json::array();
    for (int64_t l : attn_layers) layers_json.push(l);
    a.set("layers", layers_json);
    a.set("num_heads", attention_heads());
    a.set("rope_theta", attn_rope_theta);
    if (attn_qk_norm) a.set("qk_norm", true);
    if (attn_shared_position_embedding) a.set("position_embedding", "model");
    j.set("attn", a);
  }
  return j;
}

ModelConfig ModelConfig::from_json(const Json& j) {
  j.as_object("model config");
  ModelConfig c;
  if (auto* t = j.find("model_type"); t && !t->is_null()) c.model_type = t->as_string("model_type");
  // The reference's defaults where they differ from rotor's GLA ones.
  if (c.model_type == "gated_deltanet") c.head_dim = 256, c.expand_v = 2.0, c.use_short_conv = true;
  if (c.model_type == "transformer") c.position_embedding.type = "rope", c.position_embedding.theta = 500000;
  j.read_optional("vocab_size", c.vocab_size);
  j.read_optional("hidden_size", c.hidden_size);
  j.read_optional("num_hidden_layers", c.num_hidden_layers);
  j.read_optional("num_heads", c.num_heads);
  j.read_optional("expand_k", c.expand_k);
  j.read_optional("expand_v", c.expand_v);
  j.read_optional("hidden_ratio", c.hidden_ratio);
  j.read_optional("intermediate_size", c.intermediate_size);
  j.read_optional("use_short_conv", c.use_short_conv);
  j.read_optional("conv_size", c.conv_size);
  j.read_optional("use_output_gate", c.use_output_gate);
  j.read_optional("norm_eps", c.norm_eps);
  j.read_optional("gate_logit_normalizer", c.gate_logit_normalizer);
  j.read_optional("gate_low_rank_dim", c.gate_low_rank_dim);
  j.read_optional("chunk_size", c.chunk_size);
  j.read_optional("head_dim", c.head_dim);
  j.read_optional("num_v_heads", c.num_v_heads);
  j.read_optional("use_gate", c.use_gate);
  j.read_optional("allow_neg_eigval", c.allow_neg_eigval);
  j.read_optional("qkv_bias", c.qkv_bias);
  j.read_optional("qk_norm", c.qk_norm);
  if (auto* v = j.find("init"); v && !v->is_null()) c.init = v->as_string("init");
  if (auto* pe = j.find("position_embedding"); pe && !pe->is_null())
    c.position_embedding = PositionEmbeddingConfig::from_json(*pe);
  if (auto* a = j.find("attn"); a && !a->is_null()) {
    for (const Json& l : a->at("layers").as_array("attn.layers")) c.attn_layers.push_back(l.as_int("attn.layers[]"));
    if (auto* h = a->find("num_heads")) c.attn_num_heads = h->as_int("attn.num_heads");
    if (auto* q = a->find("qk_norm")) c.attn_qk_norm = q->as_bool("attn.qk_norm");
    if (auto* r = a->find("rope_theta"); r && !r->is_null()) c.attn_rope_theta = r->as_number("attn.rope_theta");
    if (auto* p = a->find("position_embedding"); p && !p->is_null()) {
      const std::string v = p->as_string("attn.position_embedding");
      ROTOR_CHECK(v == "rope" || v == "model", "config", "attn.position_embedding must be rope or model, got '", v, "'");
      c.attn_shared_position_embedding = v == "model";
    }
  }
  c.validate();
  return c;
}

namespace {
GlaLayerConfig gla_config(const ModelConfig& c) {
  GlaLayerConfig g;
  g.hidden_size = c.hidden_size;
  g.num_heads = c.num_heads;
  g.expand_k = c.expand_k;
  g.expand_v = c.expand_v;
  g.use_short_conv = c.use_short_conv;
  g.conv_size = c.conv_size;
  g.use_output_gate = c.use_output_gate;
  g.norm_eps = c.norm_eps;
  g.gate_logit_normalizer = c.gate_logit_normalizer;
  g.gate_low_rank_dim = c.gate_low_rank_dim;
  g.chunk_size = c.chunk_size;
  g.position_embedding = c.position_embedding;
  return g;
}

// The softmax-attention layers: every layer of a transformer, with the model's position
// embedding, or the attention layers of a hybrid, with fixed RoPE of base attn.rope_theta.
AttentionLayerConfig attention_config(const ModelConfig& c) {
  AttentionLayerConfig a;
  a.hidden_size = c.hidden_size;
  if (c.model_type == "transformer") {
    a.num_heads = c.num_heads;
    a.qkv_bias = c.qkv_bias;
    a.qk_norm = c.qk_norm;
    a.position_embedding = c.position_embedding;
    return a;
  }
  a.num_heads = c.attention_heads();
  a.qk_norm = c.attn_qk_norm;
  if (c.attn_shared_position_embedding) {
    a.position_embedding = c.position_embedding;
  } else {
    a.position_embedding.type = "rope";
    a.position_embedding.theta = c.attn_rope_theta;
  }
  return a;
}
}  // namespace

Block::Block(const ModelConfig& c, int64_t index, Generator& gen, DType dtype)
    : attn_norm(c.hidden_size, c.norm_eps, dtype),
      mlp_norm(c.hidden_size, c.norm_eps, dtype),
      mlp(c.hidden_size, c.mlp_size(), gen, dtype) {
  register_module("attn_norm", attn_norm);
  if (c.model_type == "transformer" || c.is_attention_layer(index)) {
    softmax_attn = std::make_unique<Attention>(attention_config(c), gen, dtype);
    register_module("attn", *softmax_attn);
  } else if (c.model_type == "gated_deltanet") {
    gdn = std::make_unique<GatedDeltaNet>(gated_deltanet_config(c), gen, dtype);
    register_module("attn", *gdn);
  } else {
    gla = std::make_unique<GatedLinearAttention>(gla_config(c), gen, dtype);
    register_module("attn", *gla);
  }
  register_module("mlp_norm", mlp_norm);
  register_module("mlp", mlp);
}

Tensor Block::forward(const Tensor& x, LayerCache* cache) const {
  Tensor h = attn_norm.forward(x);
  if (gla) h = gla->forward(h, cache ? &cache->gla : nullptr);
  else if (gdn) h = gdn->forward(h, cache ? &cache->gdn : nullptr);
  else h = softmax_attn->forward(h, cache ? &cache->attn : nullptr);
  Tensor r = x + h;
  return r + mlp.forward(mlp_norm.forward(r));
}

LanguageModel::LanguageModel(const ModelConfig& c, Generator& gen, DType dtype)
    : config((c.validate(), c)),
      embeddings(c.vocab_size, c.hidden_size, gen, dtype),
      norm(c.hidden_size, c.norm_eps, dtype),
      lm_head(c.hidden_size, c.vocab_size, false, gen, dtype) {
  model_.register_module("embeddings", embeddings);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(std::make_unique<Block>(c, i, gen, dtype));
    model_.register_module("layers." + std::to_string(i), *layers.back());
  }
  model_.register_module("norm", norm);
  register_module("model", model_);
  register_module("lm_head", lm_head);
  initialize(*this, init_scheme_from_name(c.init), gen);
}

Tensor LanguageModel::forward(const Tensor& ids, std::vector<LayerCache>* cache) const {
  ROTOR_CHECK(ids.dim() == 2 && ids.dtype() == DType::Int64, "LanguageModel", "ids must be int64 [B, T], got ",
              dtype_name(ids.dtype()), " ", shape_str(ids.shape()));
  if (cache) {
    if (cache->empty()) *cache = new_cache();
    ROTOR_CHECK(cache->size() == layers.size(), "LanguageModel", "cache has ", cache->size(), " layers, model has ",
                layers.size());
  }
  Tensor x = embeddings.forward(ids);
  for (size_t i = 0; i < layers.size(); ++i) x = layers[i]->forward(x, cache ? &(*cache)[i] : nullptr);
  return lm_head.forward(norm.forward(x));
}

int64_t LanguageModel::matmul_parameters() const {
  int64_t n = 0;
  for (const Parameter& p : named_parameters())
    if ((p.value.dim() == 2 && p.name != "model.embeddings.weight") || p.name.ends_with("phi_proj.weight"))
      n += p.value.numel();
  return n;
}

// ---- gradcheck cases: a 2-layer LM with each mixer and each position embedding ----

namespace {
CaseBuilder lm_case(const std::string& mixer, const std::string& pe) {
  return layer_case(
      [mixer, pe](DType d, Generator& g) {
        ModelConfig c;
        c.vocab_size = 7;
        c.hidden_size = 4;
        c.num_hidden_layers = 2;
        c.num_heads = 2;
        c.expand_k = 1.0;
        c.intermediate_size = 6;
        c.gate_low_rank_dim = 2;
        c.position_embedding.type = pe;
        c.position_embedding.theta = 100;
        c.position_embedding.selective.phi_proj_rank = 2;
        if (mixer == "attn") c.model_type = "transformer";
        if (mixer == "hybrid") c.attn_layers = {1};
        if (mixer == "gdn" || mixer == "gdn_hybrid") c.model_type = "gated_deltanet", c.head_dim = 2, c.use_short_conv = true;
        if (mixer == "gdn_hybrid") c.attn_layers = {0};
        auto m = std::make_shared<LanguageModel>(c, g, d);
        scale_matrices_for_gradcheck(*m);
        return m;
      },
      [](const LanguageModel& m, const TensorList&) {
        return TensorList{m.forward(from_vector<int64_t>({1, 5, 2, 6, 0, 3}, {2, 3}))};
      });
}
}  // namespace

ROTOR_GRADCHECK({"LM_gla_nope", {}, {}, kLayerOptions, lm_case("gla", "nope")});
ROTOR_GRADCHECK({"LM_gla_rope", {}, {}, kLayerOptions, lm_case("gla", "rope")});
ROTOR_GRADCHECK({"LM_gla_selective_rope", {}, {}, kLayerOptions, lm_case("gla", "selective_rope")});
ROTOR_GRADCHECK({"LM_attn_nope", {}, {}, kLayerOptions, lm_case("attn", "nope")});
ROTOR_GRADCHECK({"LM_attn_rope", {}, {}, kLayerOptions, lm_case("attn", "rope")});
ROTOR_GRADCHECK({"LM_attn_selective_rope", {}, {}, kLayerOptions, lm_case("attn", "selective_rope")});
ROTOR_GRADCHECK({"LM_hybrid_selective_rope", {}, {}, kLayerOptions, lm_case("hybrid", "selective_rope")});
ROTOR_GRADCHECK({"LM_gdn_nope", {}, {}, kLayerOptions, lm_case("gdn", "nope")});
ROTOR_GRADCHECK({"LM_gdn_selective_rope", {}, {}, kLayerOptions, lm_case("gdn", "selective_rope")});
ROTOR_GRADCHECK({"LM_gdn_hybrid_rope", {}, {}, kLayerOptions, lm_case("gdn_hybrid", "rope")});

}  // namespace rotor::nn
