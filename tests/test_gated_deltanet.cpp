// Suite "gdn", models: the GatedDeltaNet layer and the gated_deltanet and transformer model
// types against the reference's names, shapes and initialisation, their configs, checkpoints,
// and the softmax-attention layers of hybrids as the reference builds them.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

#include "core_test_util.h"
#include "rotor/nn/checkpoint.h"
#include "rotor/nn/gradcheck_case.h"
#include "rotor/nn/model.h"

using namespace rotor;
using namespace rotor::nn;
using testutil::same_bits;
using testutil::TempDir;

namespace {
ModelConfig gdn_config(const std::string& pe = "selective_rope") {
  ModelConfig c;
  c.model_type = "gated_deltanet";
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_heads = 2;
  c.head_dim = 8;
  c.expand_v = 2.0;
  c.use_short_conv = true;
  c.intermediate_size = 48;
  c.position_embedding.type = pe;
  c.position_embedding.selective.phi_proj_rank = 4;
  return c;
}

std::set<std::string> names(const Module& m) {
  std::set<std::string> out;
  for (const Parameter& p : m.named_parameters()) out.insert(p.name);
  return out;
}

double max_abs(const Tensor& t) { return max(abs(t)).item(); }

// Logits of a one-layer model on a sequence and on the same tokens with the first two swapped,
// at the last position (whose query sees the same set of keys either way).
double order_effect(const ModelConfig& c) {
  Generator gen(3);
  LanguageModel m(c, gen);
  scale_parameters(m, 10.0, [](const Parameter& p) { return p.value.dim() >= 2 && p.name != "model.embeddings.weight"; });
  NoGradGuard ng;
  Tensor a = m.forward(from_vector<int64_t>({5, 9, 17, 3}, {1, 4}));
  Tensor b = m.forward(from_vector<int64_t>({9, 5, 17, 3}, {1, 4}));
  return max_abs(select(a, 1, 3) - select(b, 1, 3));
}
}  // namespace

TEST_SUITE("gdn") {

TEST_CASE("GatedDeltaNet parameters carry the reference's names, layouts and weight-decay flags") {
  Generator gen(0);
  LanguageModel m(gdn_config(), gen);
  const std::string a = "model.layers.0.attn.";
  const std::set<std::string> got = names(m);
  for (const char* n : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "a_proj.weight", "b_proj.weight", "A_log",
                        "dt_bias", "q_conv1d.weight", "k_conv1d.weight", "v_conv1d.weight", "g_proj.weight",
                        "o_norm.weight", "o_proj.weight", "rotary.phi_proj.0.weight", "rotary.phi_conv1d.weight"}) {
    INFO(n);
    CHECK(got.count(a + n) == 1);
  }
  // key_dim = 2 x 8, value_dim = 2 x 16; conv weights [C, 1, W]; one decay and one beta per head.
  CHECK(m.parameter(a + "q_proj.weight").shape() == Shape{16, 32});
  CHECK(m.parameter(a + "v_proj.weight").shape() == Shape{32, 32});
  CHECK(m.parameter(a + "a_proj.weight").shape() == Shape{2, 32});
  CHECK(m.parameter(a + "v_conv1d.weight").shape() == Shape{32, 1, 4});
  CHECK(m.parameter(a + "A_log").shape() == Shape{2});
  CHECK(m.parameter(a + "o_norm.weight").shape() == Shape{16});
  CHECK(m.parameter(a + "o_proj.weight").shape() == Shape{32, 32});
  for (const Parameter& p : m.named_parameters())
    if (p.name.ends_with("A_log") || p.name.ends_with("dt_bias")) {
      INFO(p.name);
      CHECK_FALSE(p.weight_decay);
    }
  // Without the output gate the norm is a plain RMSNorm, still named o_norm; no g_proj.
  ModelConfig c = gdn_config("nope");
  c.use_gate = false;
  LanguageModel plain(c, gen);
  CHECK(names(plain).count(a + "o_norm.weight") == 1);
  CHECK(names(plain).count(a + "g_proj.weight") == 0);
}

TEST_CASE("a hybrid gated_deltanet model has exactly the reference's state-dict names and shapes") {
  // Written out from the reference's module tree (GatedDeltaNetForCausalLM: model.embeddings,
  // model.layers.i.{attn_norm, attn, mlp_norm, mlp}, model.norm, lm_head; attention layers as in
  // attn.layers with fixed RoPE, which has no weights; the GatedDeltaNet layer with low-rank
  // Selective RoPE and its short convolution): nothing missing, nothing extra, PyTorch shapes.
  ModelConfig c = gdn_config();
  c.attn_layers = {0};
  c.attn_num_heads = 4;
  Generator gen(0);
  LanguageModel m(c, gen);
  const std::string a0 = "model.layers.0.attn.", a1 = "model.layers.1.attn.";
  std::map<std::string, Shape> want = {
      {"model.embeddings.weight", {40, 32}},
      {"model.norm.weight", {32}},
      {"lm_head.weight", {40, 32}},
      {a0 + "q_proj.weight", {32, 32}},
      {a0 + "k_proj.weight", {32, 32}},
      {a0 + "v_proj.weight", {32, 32}},
      {a0 + "o_proj.weight", {32, 32}},
      {a1 + "q_proj.weight", {16, 32}},
      {a1 + "k_proj.weight", {16, 32}},
      {a1 + "v_proj.weight", {32, 32}},
      {a1 + "a_proj.weight", {2, 32}},
      {a1 + "b_proj.weight", {2, 32}},
      {a1 + "A_log", {2}},
      {a1 + "dt_bias", {2}},
      {a1 + "q_conv1d.weight", {16, 1, 4}},
      {a1 + "k_conv1d.weight", {16, 1, 4}},
      {a1 + "v_conv1d.weight", {32, 1, 4}},
      {a1 + "g_proj.weight", {32, 32}},
      {a1 + "o_norm.weight", {16}},
      {a1 + "o_proj.weight", {32, 32}},
      {a1 + "rotary.phi_proj.0.weight", {4, 32}},
      {a1 + "rotary.phi_proj.1.weight", {8, 4}},
      {a1 + "rotary.phi_conv1d.weight", {8, 1, 4}},
      {a1 + "rotary.temperature", {1, 1, 1, 4}},
  };
  for (const char* l : {"model.layers.0.", "model.layers.1."}) {
    const std::string p = l;
    want[p + "attn_norm.weight"] = {32};
    want[p + "mlp_norm.weight"] = {32};
    want[p + "mlp.gate_proj.weight"] = {48, 32};
    want[p + "mlp.up_proj.weight"] = {48, 32};
    want[p + "mlp.down_proj.weight"] = {32, 48};
  }
  std::map<std::string, Shape> got;
  for (const Parameter& p : m.named_parameters()) got[p.name] = p.value.shape();
  for (const auto& [name, shape] : want) {
    INFO(name);
    REQUIRE(got.count(name) == 1);
    CHECK(got.at(name) == shape);
  }
  for (const auto& [name, shape] : got) {
    INFO("not in the reference: ", name);
    CHECK(want.count(name) == 1);
  }
}

TEST_CASE("A_log and dt_bias follow the reference's initialisation") {
  // A = exp(A_log) ~ U(0, 16); dt = softplus(dt_bias) log-uniform in [1e-3, 0.1].
  GatedDeltaNetLayerConfig c;
  c.hidden_size = 16;
  c.num_heads = 2;
  c.num_v_heads = 512;
  c.head_dim = 8;
  Generator gen(4);
  GatedDeltaNet layer(c, gen, DType::Float64);
  const std::vector<double> A = exp(layer.A_log).to_vector<double>(),
                            dt = softplus(layer.dt_bias).to_vector<double>();
  double mean_a = 0, mean_log_dt = 0;
  for (size_t h = 0; h < A.size(); ++h) {
    CHECK(A[h] >= 0.0);
    CHECK(A[h] < 16.0);
    CHECK(dt[h] >= 1e-3 * (1 - 1e-12));
    CHECK(dt[h] <= 0.1 * (1 + 1e-12));
    mean_a += A[h] / double(A.size());
    mean_log_dt += std::log(dt[h]) / double(A.size());
  }
  // 512 draws: the means are 8 and log(1e-2) to a few standard errors (0.2 and 0.06).
  CHECK(std::abs(mean_a - 8.0) < 0.8);
  CHECK(std::abs(mean_log_dt - std::log(1e-2)) < 0.25);
}

TEST_CASE("the layer is the gated delta rule on normalised q, k with the reference's gates") {
  // Rebuild the layer's function from its parts with ordinary ops and the unfused recurrence.
  GatedDeltaNetLayerConfig c;
  c.hidden_size = 12;
  c.num_heads = 2;
  c.head_dim = 4;
  c.expand_v = 1.5;
  c.allow_neg_eigval = true;
  c.recurrent_below = 0;  // the chunked form
  c.chunk_size = 3;
  Generator gen(6);
  GatedDeltaNet layer(c, gen, DType::Float64);
  scale_matrices_for_gradcheck(layer);
  Tensor x = randn({2, 7, 12}, gen, DType::Float64);
  NoGradGuard ng;
  const int64_t B = 2, T = 7;
  Tensor q = l2_norm(reshape(layer.q_conv1d->forward(layer.q_proj.forward(x)).y, {B, T, 2, 4}), 1e-6);
  Tensor k = l2_norm(reshape(layer.k_conv1d->forward(layer.k_proj.forward(x)).y, {B, T, 2, 4}), 1e-6);
  Tensor v = reshape(layer.v_conv1d->forward(layer.v_proj.forward(x)).y, {B, T, 2, 6});
  Tensor g = -exp(layer.A_log) * softplus(layer.a_proj.forward(x) + layer.dt_bias);
  Tensor beta = 2.0 * sigmoid(layer.b_proj.forward(x));
  Tensor o = gated_delta_unfused(q, k, v, g, beta).o;
  o = layer.o_norm_gated->forward(o, reshape(layer.g_proj->forward(x), {B, T, 2, 6}));
  Tensor want = layer.o_proj.forward(reshape(o, {B, T, 12}));
  Tensor got = layer.forward(x);
  CHECK(max_abs(got - want) <= 1e-12 * max_abs(want));
}

TEST_CASE("gated_deltanet and transformer configs round-trip through JSON with the reference's defaults") {
  ModelConfig c = gdn_config();
  c.allow_neg_eigval = true;
  c.num_v_heads = 4;
  c.attn_layers = {1};
  c.attn_num_heads = 4;
  c.attn_rope_theta = 5000;
  const Json j = c.to_json();
  CHECK(j.at("model_type").as_string("") == "gated_deltanet");
  CHECK(j.at("attn").at("rope_theta").as_number("") == 5000);
  CHECK(j.find("expand_k") == nullptr);  // GLA's fields are not written for this type
  ModelConfig back = ModelConfig::from_json(Json::parse(j.dump(2)));
  CHECK(back.to_json().dump() == j.dump());

  // Fields left out take the reference's defaults for the type.
  ModelConfig d = ModelConfig::from_json(Json::parse(R"({"model_type": "gated_deltanet", "hidden_size": 512, "num_heads": 2})"));
  CHECK(d.head_dim == 256);
  CHECK(d.expand_v == 2.0);
  CHECK(d.use_short_conv);
  CHECK(d.use_gate);
  CHECK_FALSE(d.allow_neg_eigval);
  ModelConfig t = ModelConfig::from_json(Json::parse(R"({"model_type": "transformer", "hidden_size": 64, "num_heads": 4})"));
  CHECK(t.position_embedding.type == "rope");
  CHECK(t.position_embedding.theta == 500000);
  CHECK_FALSE(t.qk_norm);
  ModelConfig h = ModelConfig::from_json(Json::parse(R"({"attn": {"layers": [0], "num_heads": 4}})"));
  CHECK(h.attn_rope_theta == 10000);

  CHECK_THROWS_WITH_AS(ModelConfig::from_json(Json::parse(R"({"model_type": "mamba"})")), doctest::Contains("model_type"),
                       Error);
  Json bad = j;
  bad.set("num_v_heads", 3);
  CHECK_THROWS_WITH_AS(ModelConfig::from_json(bad), doctest::Contains("num_v_heads"), Error);
  Json bad_v = j;
  bad_v.set("expand_v", 0.3);
  CHECK_THROWS_WITH_AS(ModelConfig::from_json(bad_v), doctest::Contains("expand_v"), Error);
}

TEST_CASE("gated_deltanet and transformer models reload from rotor checkpoints with the same logits") {
  TempDir dir;
  ModelConfig t;
  t.model_type = "transformer";
  t.vocab_size = 40;
  t.hidden_size = 32;
  t.num_heads = 4;
  t.qk_norm = true;
  t.qkv_bias = true;
  t.intermediate_size = 48;
  ModelConfig hybrid = gdn_config("rope");
  hybrid.attn_layers = {0};
  for (const ModelConfig& c : {gdn_config(), hybrid, t}) {
    CAPTURE(c.to_json().dump());
    Generator gen(8);
    LanguageModel model(c, gen);
    save_model(dir / "m.safetensors", model, 3);
    auto loaded = load_model(dir / "m.safetensors");
    CHECK(loaded->config.to_json().dump() == model.config.to_json().dump());
    NoGradGuard ng;
    Tensor ids = randint(0, 40, {2, 9}, gen);
    CHECK(same_bits(model.forward(ids), loaded->forward(ids)));
  }
  // The transformer's layers: the reference Attention's names (no rotary weights for fixed RoPE).
  Generator gen(9);
  LanguageModel m(t, gen);
  const std::set<std::string> got = names(m);
  for (const char* n : {"q_proj.weight", "q_proj.bias", "k_proj.weight", "v_proj.bias", "o_proj.weight",
                        "q_norm.weight", "k_norm.weight"})
    CHECK(got.count(std::string("model.layers.1.attn.") + n) == 1);
  CHECK(m.layers[0]->softmax_attn->q_norm->eps == 1e-5);  // the reference's RMSNorm default
}

TEST_CASE("the attention layers of a hybrid use fixed RoPE of base attn.rope_theta whatever the model's") {
  // One attention layer in a model whose own position embedding is none: positions still matter
  // there (RoPE), unless the layer is given the model's embedding explicitly.
  for (const char* type : {"gla", "gated_deltanet"}) {
    CAPTURE(type);
    ModelConfig c = gdn_config("nope");
    c.model_type = type;
    c.num_hidden_layers = 1;
    c.attn_layers = {0};
    CHECK(order_effect(c) > 1e-3);
    c.attn_shared_position_embedding = true;
    CHECK(order_effect(c) < 1e-5);
    CHECK(ModelConfig::from_json(c.to_json()).attn_shared_position_embedding);
  }
  // A different base is a different model.
  ModelConfig a = gdn_config("nope"), b = gdn_config("nope");
  a.attn_layers = b.attn_layers = {0};
  b.attn_rope_theta = 100;
  Generator g1(1), g2(1);
  LanguageModel ma(a, g1), mb(b, g2);
  NoGradGuard ng;
  Tensor ids = from_vector<int64_t>({5, 9, 17, 3, 1, 2}, {1, 6});
  CHECK(max_abs(ma.forward(ids) - mb.forward(ids)) > 0);
}

TEST_CASE("Selective RoPE's conv_act accepts swish, the reference's other name for SiLU") {
  ModelConfig c = gdn_config();
  c.position_embedding.selective.conv_act = "silu";
  ModelConfig s = c;
  s.position_embedding.selective.conv_act = "swish";
  Generator g1(2), g2(2);
  LanguageModel a(c, g1), b(ModelConfig::from_json(s.to_json()), g2);
  NoGradGuard ng;
  Tensor ids = from_vector<int64_t>({5, 9, 17, 3}, {1, 4});
  CHECK(same_bits(a.forward(ids), b.forward(ids)));
  s.position_embedding.selective.conv_act = "gelu";
  Generator g3(2);
  CHECK_THROWS_WITH_AS(LanguageModel(s, g3), doctest::Contains("conv_act"), Error);
}

}  // TEST_SUITE
