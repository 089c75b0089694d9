// nn: parameter names and layouts, configs, and streaming (prefix + token-by-token equals one
// full forward) for every mixer and position embedding.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "rotor/nn/gradcheck_case.h"
#include "rotor/nn/model.h"

using namespace rotor;
using namespace rotor::nn;

namespace {
ModelConfig small_config(const std::string& mixer, const std::string& pe) {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_heads = 4;
  c.expand_k = 1.0;
  c.intermediate_size = 48;
  c.position_embedding.type = pe;
  c.position_embedding.theta = 10000;
  if (mixer == "attn") c.model_type = "transformer";
  if (mixer == "hybrid") c.attn_layers = {1};
  if (mixer == "gdn" || mixer == "gdn_hybrid") c.model_type = "gated_deltanet", c.head_dim = 8;
  if (mixer == "gdn_hybrid") c.attn_layers = {0};
  return c;
}

// Weights larger than the 0.02 initialisation, so positions and phases visibly matter.
void scale_weights(LanguageModel& m, double factor) {
  scale_parameters(m, factor, [](const Parameter& p) { return p.value.dim() >= 2 && p.name != "model.embeddings.weight"; });
}

double max_abs(const Tensor& t) { return max(abs(t)).item(); }
}  // namespace

TEST_CASE("parameter names and layouts follow the reference model") {
  ModelConfig c = small_config("gla", "selective_rope");
  c.use_short_conv = true;
  Generator gen(0);
  LanguageModel m(c, gen);
  std::set<std::string> names;
  for (const Parameter& p : m.named_parameters()) names.insert(p.name);
  for (const char* expected :
       {"model.embeddings.weight", "model.layers.0.attn_norm.weight", "model.layers.0.attn.q_proj.weight",
        "model.layers.0.attn.k_proj.weight", "model.layers.0.attn.v_proj.weight", "model.layers.0.attn.g_proj.weight",
        "model.layers.0.attn.gk_proj.0.weight", "model.layers.0.attn.gk_proj.1.weight",
        "model.layers.0.attn.gk_proj.1.bias", "model.layers.0.attn.o_proj.weight",
        "model.layers.0.attn.g_norm_swish_gate.weight", "model.layers.0.attn.q_conv1d.weight",
        "model.layers.0.attn.rotary.phi_proj.0.weight", "model.layers.0.attn.rotary.phi_proj.1.weight",
        "model.layers.0.attn.rotary.phi_conv1d.weight", "model.layers.0.attn.rotary.temperature",
        "model.layers.1.mlp_norm.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight"}) {
    INFO(expected);
    CHECK(names.count(expected) == 1);
  }
  // PyTorch layouts: Linear [out, in], Conv1d [C, 1, W], temperature [1, 1, 1, R].
  CHECK(m.parameter("model.layers.0.attn.q_proj.weight").shape() == Shape{32, 32});
  CHECK(m.parameter("model.layers.0.attn.gk_proj.0.weight").shape() == Shape{16, 32});
  CHECK(m.parameter("model.layers.0.attn.rotary.phi_proj.1.weight").shape() == Shape{4 * 4, 32});
  CHECK(m.parameter("model.layers.0.attn.rotary.phi_conv1d.weight").shape() == Shape{16, 1, 4});
  CHECK(m.parameter("model.layers.0.attn.rotary.temperature").shape() == Shape{1, 1, 1, 4});
  CHECK(m.parameter("lm_head.weight").shape() == Shape{50, 32});
  CHECK(m.parameter("model.layers.0.mlp.down_proj.weight").shape() == Shape{32, 48});
  // The temperature is kept for interop but does not train by default.
  CHECK_FALSE(m.parameter("model.layers.0.attn.rotary.temperature").requires_grad());
}

TEST_CASE("weight decay flags: matrices decay, norms, biases and embeddings do not") {
  Generator gen(0);
  LanguageModel m(small_config("gla", "nope"), gen);
  for (const Parameter& p : m.named_parameters()) {
    bool exempt = p.name.find("norm") != std::string::npos || p.name.ends_with("bias") ||
                  p.name.find("embeddings") != std::string::npos;
    INFO(p.name);
    CHECK(p.weight_decay == !exempt);
  }
}

TEST_CASE("the initialisation is seeded and follows std 0.02") {
  Generator a(5), b(5);
  LanguageModel m1(small_config("gla", "rope"), a), m2(small_config("gla", "rope"), b);
  Tensor w1 = m1.parameter("lm_head.weight"), w2 = m2.parameter("lm_head.weight");
  CHECK(w1.to_vector<float>() == w2.to_vector<float>());
  double var = mean(square(w1)).item();
  CHECK(std::sqrt(var) == doctest::Approx(0.02).epsilon(0.05));  // 1600 samples: ~2% standard error
}

TEST_CASE("model configs round-trip through JSON and bad configs are errors") {
  ModelConfig c = small_config("hybrid", "selective_rope");
  c.position_embedding.selective.use_gate = true;
  c.position_embedding.selective.gate_parametrization = "gla";
  c.position_embedding.selective.temp_type = "rfa";
  c.position_embedding.selective.temp_theta = 0.7;
  ModelConfig back = ModelConfig::from_json(Json::parse(c.to_json().dump(2)));
  CHECK(back.to_json().dump() == c.to_json().dump());
  CHECK(back.attn_layers == std::vector<int64_t>{1});

  Json bad = c.to_json();
  bad.set("num_heads", 5);
  CHECK_THROWS_WITH_AS(ModelConfig::from_json(bad), doctest::Contains("[config]"), Error);
  Json bad_pe = c.to_json();
  bad_pe.set("position_embedding", Json::parse(R"({"type": "alibi"})"));
  CHECK_THROWS_WITH_AS(ModelConfig::from_json(bad_pe), doctest::Contains("alibi"), Error);
  Json bad_layer = c.to_json();
  bad_layer.set("attn", Json::parse(R"({"layers": [7], "num_heads": 4})"));
  CHECK_THROWS_WITH_AS(ModelConfig::from_json(bad_layer), doctest::Contains("out of range"), Error);
}

TEST_CASE("zero_grad clears every parameter gradient") {
  Generator gen(1);
  LanguageModel m(small_config("gla", "selective_rope"), gen);
  Tensor ids = randint(0, 50, {2, 5}, gen);
  sum(m.forward(ids)).backward();
  int with_grad = 0;
  for (const Parameter& p : m.named_parameters()) with_grad += p.value.grad().defined();
  CHECK(with_grad > 20);
  m.zero_grad();
  for (const Parameter& p : m.named_parameters()) CHECK_FALSE(p.value.grad().defined());
}

TEST_CASE("streaming a prefix then single tokens gives the full forward's logits") {
  for (std::string mixer : {"gla", "attn", "hybrid", "gdn", "gdn_hybrid"})
    for (std::string pe : {"nope", "rope", "selective_rope"})
      for (bool short_conv : {false, true})
        for (int64_t prefix : {1, 2, 37}) {
          if (short_conv && mixer == "attn") continue;  // convolutions belong to GLA and Gated DeltaNet
          ModelConfig c = small_config(mixer, pe);
          c.use_short_conv = short_conv;
          Generator gen(11);
          // float64: the two orders of summation then agree far below any real mismatch; in
          // float32 their rounding differs by ~1e-5 of the logits and with the machine's BLAS.
          LanguageModel m(c, gen, DType::Float64);
          scale_weights(m, 10.0);
          const int64_t T = 70;  // > 64: the full forward takes the chunked form
          Tensor ids = randint(0, c.vocab_size, {2, T}, gen);
          NoGradGuard ng;
          Tensor full = m.forward(ids);
          std::vector<LayerCache> cache;
          TensorList parts = {m.forward(narrow(ids, 1, 0, prefix), &cache)};
          for (int64_t t = prefix; t < T; ++t) parts.push_back(m.forward(narrow(ids, 1, t, 1), &cache));
          Tensor streamed = concat(parts, 1);
          double err = max_abs(streamed - full) / max_abs(full);
          INFO(mixer, " ", pe, " conv=", short_conv, " prefix=", prefix, ": relative error ", err);
          CHECK(err <= 1e-10);
        }
}

TEST_CASE("positions matter only with a position embedding") {
  // Without a position embedding one attention layer treats the keys a query sees as a set;
  // with RoPE or Selective RoPE the same tokens in another order change the output.
  for (std::string pe : {"nope", "rope", "selective_rope"}) {
    ModelConfig c = small_config("attn", pe);
    c.num_hidden_layers = 1;
    Generator gen(3);
    LanguageModel m(c, gen);
    scale_weights(m, 10.0);
    NoGradGuard ng;
    Tensor a = m.forward(from_vector<int64_t>({5, 9, 17, 3}, {1, 4}));
    Tensor b = m.forward(from_vector<int64_t>({9, 5, 17, 3}, {1, 4}));
    // The last query sees the same set of keys in both orders.
    double diff = max_abs(select(a, 1, 3) - select(b, 1, 3));
    INFO(pe, ": ", diff);
    if (pe == "nope") CHECK(diff < 1e-5);
    else CHECK(diff > 1e-3);
  }
}

TEST_CASE("fused rms_norm matches its composition, values and gradients") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    Generator gen(2);
    Tensor x = (randn({3, 7, 40}, gen, dtype) * 3.0).requires_grad_();
    Tensor w = rand({40}, gen, dtype, 0.5, 1.5).requires_grad_();
    Tensor up = randn({3, 7, 40}, gen, dtype);
    Tensor fused = rms_norm(x, w, 1e-6);
    sum(fused * up).backward();
    Tensor gx = x.grad(), gw = w.grad();
    x.zero_grad();
    w.zero_grad();
    Tensor composed = rms_norm_unfused(x, w, 1e-6);
    sum(composed * up).backward();
    const double tol = dtype == DType::Float32 ? 2e-6 : 1e-13;  // relative to the largest value
    CHECK(max_abs(fused - composed) <= tol * max_abs(composed));
    CHECK(max_abs(gx - x.grad()) <= tol * max_abs(x.grad()));
    CHECK(max_abs(gw - w.grad()) <= tol * max_abs(w.grad()));
  }
}
