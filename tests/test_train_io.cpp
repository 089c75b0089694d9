// Suite "train", part 2: safetensors (round trip, the spec's byte layout, every malformed
// case), atomic saves, checkpoint loading (strict and not), bit-identical resume, and the
// stop on a non-finite loss.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "rotor/core/io.h"
#include "rotor/core/json.h"
#include "rotor/core/safetensors.h"
#include "core_test_util.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/trainer.h"

using namespace rotor;
using namespace rotor::nn;
using testutil::same_bits;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {


std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

// A file assembled by hand from a header text and data bytes (independent of the writer).
std::string handmade(const std::string& header, const std::string& data) { return u64le(header.size()) + header + data; }

// "{e1,e2,...}" (built with appends: GCC 12 warns falsely on "literal" + std::string).
std::string obj(std::initializer_list<std::string> entries) {
  std::string s = "{";
  for (const std::string& e : entries) {
    if (s.size() > 1) s += ',';
    s += e;
  }
  s += '}';
  return s;
}

std::string floats(std::initializer_list<float> v) {
  std::string s;
  for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
  return s;
}

}  // namespace

TEST_CASE("safetensors round trip: every dtype, 0-d and empty tensors, strided input, metadata") {
  Generator gen(0);
  Tensor f32 = randn({3, 4}, gen), f64 = randn({2, 1, 3}, gen, DType::Float64);
  Tensor i64 = from_vector<int64_t>({-5, 0, int64_t(1) << 40}), b = from_vector<bool>({true, false, true, true}, {2, 2});
  Tensor zero_d = scalar_tensor(2.5, DType::Float64), empty = zeros({0, 7}), transposed = transpose(f32, 0, 1);
  NamedTensors in = {{"f32", f32}, {"f64", f64}, {"i64", i64}, {"bool", b}, {"scalar", zero_d},
                     {"empty", empty}, {"model.layers.0.t", transposed}};
  Metadata meta = {{"config", "{\"a\": 1}"}, {"step", "12"}, {"empty", ""}};
  std::string bytes = safetensors_to_bytes(in, meta);
  SafetensorsContent out = safetensors_from_bytes(bytes);
  REQUIRE(out.tensors.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(out.tensors[i].first == in[i].first);
    const Tensor& a = in[i].second;
    const Tensor& c = out.tensors[i].second;
    CHECK(c.dtype() == a.dtype());
    CHECK(c.shape() == a.shape());
    dispatch_all(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      CHECK(core::contiguous(c).to_vector<T>() == core::contiguous(a).to_vector<T>());
    });
  }
  CHECK(out.metadata == meta);
  CHECK(*out.find_metadata("step") == "12");
  CHECK(out.find("nope") == nullptr);

  // The layout of the spec: header length, '{', spaces up to a multiple of 8, data in order.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  CHECK(n % 8 == 0);
  CHECK(bytes[8] == '{');
  Json header = Json::parse(bytes.substr(8, size_t(n)));
  CHECK(header.at("f32").at("dtype").as_string() == "F32");
  CHECK(header.at("bool").at("dtype").as_string() == "BOOL");
  CHECK(header.at("i64").at("data_offsets").as_array()[0].as_int() == 12 * 4 + 6 * 8);
  CHECK(header.at("scalar").at("shape").as_array().empty());
  CHECK(bytes.size() == 8 + n + (12 * 4 + 6 * 8 + 3 * 8 + 4 + 8 + 0 + 12 * 4));
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  CHECK(first == f32.to_vector<float>()[0]);
}

TEST_CASE("safetensors reads a file assembled by hand from the spec") {
  const std::string header = R"({"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  int64_t seven = 7;
  std::string data = floats({1.5f, -2.0f}) + std::string(reinterpret_cast<const char*>(&seven), 8);
  SafetensorsContent c = safetensors_from_bytes(handmade(header, data));  // header not padded: allowed
  CHECK(c.find("a")->to_vector<float>() == std::vector<float>{1.5f, -2.0f});
  CHECK(c.find("b")->to_vector<int64_t>() == std::vector<int64_t>{7});
  CHECK(*c.find_metadata("k") == "v");
}

TEST_CASE("malformed safetensors files are rotor::Error with a message naming the problem") {
  const std::string good_data = floats({1, 2, 3, 4});
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int b, int e) {
    std::string s = "\"";
    s.append(name).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":").append(shape);
    s.append(",\"data_offsets\":[").append(std::to_string(b)).append(",").append(std::to_string(e)).append("]}");
    return s;
  };
  const std::string ok_header = obj({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 8, 16)});
  REQUIRE_NOTHROW(safetensors_from_bytes(handmade(ok_header, good_data)));

  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"too short", "abc", "too short"},
      {"header length past the end", u64le(1000) + "{}", "exceeds the file"},
      {"absurd header length", u64le(uint64_t(1) << 62) + "{}", "exceeds the limit"},
      {"not JSON", handmade("{\"a\": [1, 2", good_data), "not valid JSON"},
      {"bad escape", handmade("{\"\\uzzzz\": 1}", ""), "not valid JSON"},
      {"not an object", handmade("[1, 2]   ", ""), "does not start with '{'"},
      {"entry not an object", handmade("{\"a\": 3}", ""), "'a'"},
      {"missing field", handmade("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", floats({1})), "'a'"},
      {"unknown dtype", handmade(obj({entry("a", "F16", "[2]", 0, 4)}), floats({1})), "unsupported dtype 'F16'"},
      {"negative shape", handmade(obj({entry("a", "F32", "[-2]", 0, 8)}), floats({1, 2})), "'a'"},
      {"fractional offset", handmade("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", floats({1})),
       "'a'"},
      {"offsets reversed", handmade(obj({entry("a", "F32", "[0]", 8, 4)}), good_data), "end before they begin"},
      {"truncated data", handmade(ok_header, good_data.substr(0, 12)), "run past the data section"},
      {"offsets out of range", handmade(obj({entry("a", "F32", "[2]", 16, 24)}), good_data), "'a'"},
      {"size disagrees with shape", handmade(obj({entry("a", "F32", "[3]", 0, 8)}), good_data), "needs 12 bytes"},
      {"overlap", handmade(obj({entry("a", "F32", "[3]", 0, 12), entry("b", "F32", "[2]", 8, 16)}), good_data),
       "overlaps"},
      {"hole", handmade(obj({entry("a", "F32", "[1]", 0, 4), entry("b", "F32", "[2]", 8, 16)}), good_data),
       "belong to no tensor"},
      {"trailing bytes", handmade(ok_header, good_data + "xxxx"), "trailing bytes"},
      {"metadata not strings", handmade("{\"__metadata__\":{\"step\":3}}", ""), "not a string"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK_THROWS_WITH_AS(safetensors_from_bytes(c.bytes), doctest::Contains(c.message), Error);
  }
}

TEST_CASE("corrupted safetensors bytes either load or throw rotor::Error, never crash") {
  Generator gen(11);
  NamedTensors in = {{"w", randn({4, 3}, gen)}, {"i", from_vector<int64_t>({1, 2})}, {"s", scalar_tensor(1.0)}};
  const std::string bytes = safetensors_to_bytes(in, {{"k", "v"}});
  int errors = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string b = bytes;
    const int flips = 1 + int(gen.next_int(0, 3));
    for (int f = 0; f < flips; ++f) b[size_t(gen.next_int(0, int64_t(b.size())))] = char(gen.next_int(0, 256));
    if (trial % 7 == 0) b.resize(size_t(gen.next_int(0, int64_t(b.size()))));
    try {
      safetensors_from_bytes(b);
    } catch (const Error&) {
      ++errors;
    }
  }
  CHECK(errors > 100);  // the mutations do hit the header
}

TEST_CASE("a failed save leaves the previous file intact") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  save_safetensors(path, {{"a", from_vector<float>({1, 2})}});
  const std::string before = io::read_all(path, "test");
  // A save that fails after writing its bytes, before the rename: the old file stays.
  io::set_crash_hook([](const std::string& step) {
    if (step.rfind("synced", 0) == 0) ROTOR_FAIL("test", "interrupted");
  });
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", from_vector<float>({7, 8, 9})}}),
                       doctest::Contains("interrupted"), Error);
  io::set_crash_hook(nullptr);
  CHECK(io::read_all(path, "test") == before);
  // A save that fails while producing the bytes never touches the file either.
  CHECK_THROWS_AS(save_safetensors(path, {{"a", Tensor()}}), Error);
  CHECK(io::read_all(path, "test") == before);
  // A directory that does not exist is a clear error.
  CHECK_THROWS_WITH_AS(save_safetensors(dir / "missing/model.safetensors", {{"a", from_vector<float>({1})}}),
                       doctest::Contains("cannot open"), Error);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path))
    files += entry.path().filename().string().find(".tmp") == std::string::npos;  // an interrupted save's temporary stays
  CHECK(files == 1);
  save_safetensors(path, {{"a", from_vector<float>({3, 4, 5})}});
  CHECK(load_safetensors(path).find("a")->numel() == 3);
}

// ---- model checkpoints ----

namespace {
ModelConfig tiny_config(const std::string& pe) {
  ModelConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_heads = 2;
  c.expand_k = 1.0;
  c.expand_v = 1.0;
  c.intermediate_size = 64;
  c.position_embedding.type = pe;
  c.position_embedding.selective.phi_proj_rank = 8;
  return c;
}

}  // namespace

TEST_CASE("save_model / load_model round trip: same parameters, config and logits") {
  TempDir dir;
  Generator gen(1);
  LanguageModel model(tiny_config("selective_rope"), gen);
  save_model(dir / "m.safetensors", model, 42, {{"note", "hello"}});
  auto loaded = load_model(dir / "m.safetensors");
  CHECK(loaded->config.to_json().dump() == model.config.to_json().dump());
  auto a = model.named_parameters(), b = loaded->named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i].value, b[i].value));
  SafetensorsContent f = load_safetensors(dir / "m.safetensors");
  CHECK(checkpoint_step(f) == 42);
  CHECK(*f.find_metadata("note") == "hello");
  NoGradGuard ng;
  Tensor ids = randint(0, 64, {2, 9}, gen);
  CHECK(same_bits(model.forward(ids), loaded->forward(ids)));
}

TEST_CASE("loading checks names, shapes and dtypes; strict and non-strict") {
  TempDir dir;
  Generator gen(2);
  LanguageModel model(tiny_config("rope"), gen);
  auto params = model.named_parameters();
  NamedTensors tensors;
  for (const auto& p : params) tensors.emplace_back(p.name, p.value.detach());
  const std::string victim = params[3].name;

  LanguageModel target(tiny_config("rope"), gen);
  const Tensor before = core::clone(target.parameter(params[0].name));

  NamedTensors missing = tensors;
  missing.erase(missing.begin() + 3);
  missing.emplace_back("model.layers.9.extra", zeros({2}));
  SafetensorsContent file{missing, {}};
  CHECK_THROWS_WITH_AS(load_parameters(target, file), doctest::Contains(("missing:    " + victim).c_str()), Error);
  CHECK_THROWS_WITH_AS(load_parameters(target, file), doctest::Contains("unexpected: model.layers.9.extra"), Error);
  CHECK(same_bits(target.parameter(params[0].name), before));  // nothing written on failure
  LoadReport r = load_parameters(target, file, false);
  CHECK(r.missing == std::vector<std::string>{victim});
  CHECK(r.unexpected == std::vector<std::string>{"model.layers.9.extra"});
  CHECK(same_bits(target.parameter(params[0].name), params[0].value));

  NamedTensors wrong_shape = tensors;
  wrong_shape[3].second = zeros({1, 2, 3});
  CHECK_THROWS_WITH_AS(load_parameters(target, SafetensorsContent{wrong_shape, {}}),
                       doctest::Contains(("'" + victim + "' has shape").c_str()), Error);
  NamedTensors wrong_dtype = tensors;
  wrong_dtype[3].second = core::to_dtype(tensors[3].second, DType::Float64);
  CHECK_THROWS_WITH_AS(load_parameters(target, SafetensorsContent{wrong_dtype, {}}),
                       doctest::Contains(("'" + victim + "' is float64").c_str()), Error);
  // A file that is not a rotor model file.
  save_safetensors(dir / "x.safetensors", {{"a", zeros({1})}});
  CHECK_THROWS_WITH_AS(load_model(dir / "x.safetensors"), doctest::Contains("no model config"), Error);
}

// ---- training: resume and divergence ----

namespace {
struct Run {
  Generator init;
  LanguageModel model;
  BatchLoader loader;
  Trainer trainer;
  Run(const ModelConfig& c, uint64_t init_seed, const TokenData& data, const TrainConfig& tc)
      : init(init_seed), model(c, init), loader(data, 8, 5), trainer(model, loader, tc) {}
};
TrainConfig tiny_train() {
  TrainConfig t;
  t.steps = 6;
  t.lr = 3e-3;
  t.warmup = 2;
  t.min_lr = 1e-4;
  t.grad_clip = 0.5;  // active: gradient norms of a fresh model are larger
  return t;
}
TokenData tiny_data() {
  MqarConfig m{64, 32, 4};
  return mqar_generate(m, 20, 3);  // 20 rows, batch 8: the loader wraps into a second epoch
}
}  // namespace

TEST_CASE("resuming from a checkpoint continues bit-identically to an uninterrupted run") {
  TempDir dir;
  const ModelConfig c = tiny_config("selective_rope");
  const TokenData data = tiny_data();
  Run straight(c, 1, data, tiny_train());
  double clipped_norm = 0;
  for (int s = 0; s < 6; ++s) clipped_norm = std::max(clipped_norm, straight.trainer.step().grad_norm);
  CHECK(clipped_norm > 0.5);  // clipping took part

  Run first(c, 1, data, tiny_train());
  for (int s = 0; s < 3; ++s) first.trainer.step();
  first.trainer.save(dir / "ckpt.safetensors");

  Run second(c, 999, data, tiny_train());  // another initialisation, overwritten by resume
  second.trainer.resume(dir / "ckpt.safetensors");
  CHECK(second.trainer.step_count() == 3);
  for (int s = 0; s < 3; ++s) second.trainer.step();

  auto a = straight.model.named_parameters(), b = second.model.named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(same_bits(a[i].value, b[i].value));
  }
  for (size_t i = 0; i < straight.trainer.optimizer.state().size(); ++i) {
    CHECK(same_bits(straight.trainer.optimizer.state()[i].exp_avg_sq, second.trainer.optimizer.state()[i].exp_avg_sq));
    CHECK(straight.trainer.optimizer.state()[i].step == 6);
    CHECK(second.trainer.optimizer.state()[i].step == 6);
  }
  CHECK(straight.loader.position().epoch == second.loader.position().epoch);
  CHECK(straight.loader.position().cursor == second.loader.position().cursor);
}

TEST_CASE("resume refuses files that do not belong together or other data") {
  TempDir dir;
  const ModelConfig c = tiny_config("nope");
  const TokenData data = tiny_data();
  Run run(c, 1, data, tiny_train());
  run.trainer.step();
  const std::string path = dir / "ckpt.safetensors";
  run.trainer.save(path);
  run.trainer.step();
  // A crash between the two renames leaves step 2's optimizer file beside step 1's model file.
  const std::string later = dir / "later.safetensors";
  run.trainer.save(later);
  fs::copy_file(Trainer::optimizer_path(later), Trainer::optimizer_path(path), fs::copy_options::overwrite_existing);
  Run other(c, 1, data, tiny_train());
  CHECK_THROWS_WITH_AS(other.trainer.resume(path), doctest::Contains("do not belong together"), Error);

  run.trainer.save(path);
  Run different_data(c, 1, mqar_generate(MqarConfig{64, 32, 4}, 20, 4), tiny_train());
  CHECK_THROWS_WITH_AS(different_data.trainer.resume(path), doctest::Contains("other data"), Error);
  Run different_model(tiny_config("rope"), 1, data, tiny_train());
  CHECK_THROWS_AS(different_model.trainer.resume(path), Error);
  CHECK_NOTHROW(other.trainer.resume(path));
}

TEST_CASE("a non-finite loss stops training before the update and keeps the last good checkpoint") {
  TempDir dir;
  const TokenData data = tiny_data();
  Run run(tiny_config("nope"), 1, data, tiny_train());
  run.trainer.step();
  const std::string path = dir / "ckpt.safetensors";
  run.trainer.save(path);
  const std::string model_bytes = io::read_all(path, "t"), optim_bytes = io::read_all(Trainer::optimizer_path(path), "t");

  Tensor w = run.model.lm_head.weight;
  {
    NoGradGuard ng;
    w.data<float>()[5] = NAN;
  }
  std::vector<Tensor> before;
  for (const auto& p : run.model.named_parameters()) before.push_back(core::clone(p.value));
  const Tensor m_before = core::clone(run.trainer.optimizer.state()[0].exp_avg);
  CHECK_THROWS_WITH_AS(run.trainer.step(), doctest::Contains("loss is not finite"), TrainingDiverged);
  CHECK(run.trainer.step_count() == 1);
  auto params = run.model.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) CHECK(same_bits(params[i].value, before[i]));
  CHECK(same_bits(run.trainer.optimizer.state()[0].exp_avg, m_before));
  CHECK(io::read_all(path, "t") == model_bytes);
  CHECK(io::read_all(Trainer::optimizer_path(path), "t") == optim_bytes);
}

TEST_CASE("evaluate averages loss and accuracy over every labelled position") {
  Generator gen(3);
  LanguageModel model(tiny_config("nope"), gen);
  const TokenData data = tiny_data();
  EvalResult whole = evaluate(model, data, 20), parts = evaluate(model, data, 3);
  CHECK(whole.accuracy.count == 20 * 4);
  CHECK(parts.accuracy.count == whole.accuracy.count);
  CHECK(parts.accuracy.correct == whole.accuracy.correct);
  CHECK(parts.loss == doctest::Approx(whole.loss).epsilon(1e-5));
  NoGradGuard ng;
  CHECK(whole.loss == doctest::Approx(cross_entropy(model.forward(data.inputs), data.labels).item()).epsilon(1e-6));
}
