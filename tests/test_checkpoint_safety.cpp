// Suite "io", part 2: model configs are checked before anything is built from them (limits, every
// field's domain, agreement with the file's tensors), loaded parameters must be finite, and the
// checkpoint commit keeps a resumable model + optimizer pair at every instant of a save.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "rotor/core/io.h"
#include "rotor/core/json.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/trainer.h"
#include "core_test_util.h"

using namespace rotor;
using testutil::contains;
using testutil::error_of;
using namespace rotor::nn;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny() {
  ModelConfig c;
  c.vocab_size = 16;
  c.hidden_size = 8;
  c.num_hidden_layers = 1;
  c.num_heads = 2;
  c.expand_k = 1.0;
  c.intermediate_size = 16;
  c.gate_low_rank_dim = 2;
  return c;
}

// A real tiny checkpoint with one config field replaced by the given JSON text.
std::string checkpoint_with(const TempDir& dir, const std::string& key, const std::string& value_json) {
  Generator gen(0);
  LanguageModel m(tiny(), gen);
  const std::string path = dir / "m.safetensors";
  save_model(path, m, 3);
  SafetensorsContent f = load_safetensors(path);
  Json config = Json::parse(*f.find_metadata("config"));
  config.set(key, Json::parse(value_json));
  Metadata meta;
  for (auto [k, v] : f.metadata) meta.emplace_back(k, k == "config" ? config.dump() : v);
  save_safetensors(path, f.tensors, meta);
  return path;
}
}  // namespace

TEST_CASE("a checkpoint's config sizes are checked against limits and the file before anything is built") {
  TempDir dir;
  struct Case {
    const char* key;
    const char* value;
    const char* expect;
  };
  const Case cases[] = {
      {"vocab_size", "1e12", "vocab_size"},
      {"vocab_size", "17", "vocab_size 17"},           // within limits, but not the file's embedding
      {"hidden_size", "16", "hidden_size 16"},         // (16 divisible by 2 heads)
      {"intermediate_size", "1e12", "intermediate_size"},
      {"intermediate_size", "32", "intermediate_size 32"},
      {"num_hidden_layers", "1e6", "num_hidden_layers"},
      {"num_hidden_layers", "3", "num_hidden_layers 3"},
      {"hidden_ratio", "8e15", "hidden_ratio"},
      {"expand_k", "1e9", "expand_k"},
      {"gate_low_rank_dim", "1e9", "gate_low_rank_dim"},
      {"chunk_size", "1e12", "chunk_size"},
  };
  for (const Case& c : cases) {
    const std::string path = checkpoint_with(dir, c.key, c.value);
    const std::string msg = error_of([&] { load_model(path); });
    CHECK_MESSAGE(contains(msg, "[load_checkpoint]"), c.key, "=", c.value, ": ", msg);
    CHECK_MESSAGE(contains(msg, c.expect), c.key, "=", c.value, ": ", msg);
  }
  CHECK(load_model(checkpoint_with(dir, "norm_eps", "1e-5"))->config.norm_eps == 1e-5);  // a valid change loads
}

TEST_CASE("ModelConfig::validate refuses every field outside its domain, from JSON or from C++") {
  struct Case {
    const char* name;
    std::function<void(ModelConfig&)> set;
    const char* expect;
  };
  const Case cases[] = {
      {"negative norm_eps", [](ModelConfig& c) { c.norm_eps = -1e-6; }, "norm_eps"},
      {"zero norm_eps", [](ModelConfig& c) { c.norm_eps = 0; }, "norm_eps"},
      {"NaN norm_eps", [](ModelConfig& c) { c.norm_eps = std::nan(""); }, "norm_eps"},
      {"zero gate_logit_normalizer", [](ModelConfig& c) { c.gate_logit_normalizer = 0; }, "gate_logit_normalizer"},
      {"zero hidden_ratio", [](ModelConfig& c) { c.intermediate_size = 0; c.hidden_ratio = 0; }, "hidden_ratio"},
      {"huge hidden_ratio", [](ModelConfig& c) { c.intermediate_size = 0; c.hidden_ratio = 8'000'000'000'000'000; }, "hidden_ratio"},
      {"negative intermediate_size", [](ModelConfig& c) { c.intermediate_size = -5; }, "intermediate_size"},
      {"NaN expand_v", [](ModelConfig& c) { c.expand_v = std::nan(""); }, "expand_v"},
      {"infinite expand_k", [](ModelConfig& c) { c.expand_k = INFINITY; }, "expand_k"},
      {"zero conv_size", [](ModelConfig& c) { c.use_short_conv = true; c.conv_size = 0; }, "conv_size"},
      {"zero gate_low_rank_dim", [](ModelConfig& c) { c.gate_low_rank_dim = 0; }, "gate_low_rank_dim"},
      {"negative attn heads", [](ModelConfig& c) { c.attn_num_heads = -2; }, "attn"},
      {"misspelt position embedding", [](ModelConfig& c) { c.position_embedding.type = "selective-rope"; }, "position_embedding.type"},
      {"empty position embedding", [](ModelConfig& c) { c.position_embedding.type = ""; }, "position_embedding.type"},
      {"zero RoPE theta", [](ModelConfig& c) { c.position_embedding.type = "rope"; c.position_embedding.theta = 0; }, "theta"},
      {"bad phi parametrization",
       [](ModelConfig& c) { c.position_embedding.type = "selective_rope"; c.position_embedding.selective.phi_parametrization = "lowrank"; },
       "phi_parametrization"},
      {"zero phi rank",
       [](ModelConfig& c) { c.position_embedding.type = "selective_rope"; c.position_embedding.selective.phi_proj_rank = 0; },
       "phi_proj_rank"},
      {"bad temp_type",
       [](ModelConfig& c) { c.position_embedding.type = "selective_rope"; c.position_embedding.selective.temp_type = "x"; },
       "temp_type"},
      {"bad conv_act",
       [](ModelConfig& c) { c.position_embedding.type = "selective_rope"; c.position_embedding.selective.conv_act = "relu"; },
       "conv_act"},
  };
  for (const Case& c : cases) {
    ModelConfig cfg = tiny();
    c.set(cfg);
    const std::string msg = error_of([&] { cfg.validate(); });
    CHECK_MESSAGE(contains(msg, "[config]"), c.name, ": ", msg);
    CHECK_MESSAGE(contains(msg, c.expect), c.name, ": ", msg);
    Generator gen(0);
    CHECK_MESSAGE(contains(error_of([&] { LanguageModel m(cfg, gen); }), "[config]"), c.name);  // nothing built
  }
  CHECK_NOTHROW(tiny().validate());
}

TEST_CASE("a checkpoint with a non-finite parameter is refused, naming the tensor") {
  TempDir dir;
  Generator gen(0);
  LanguageModel m(tiny(), gen);
  const std::string victim = m.named_parameters()[2].name;
  for (double bad : {double(NAN), double(INFINITY), -double(INFINITY)}) {
    {
      NoGradGuard ng;
      m.parameter(victim).data<float>()[1] = float(bad);
    }
    save_model(dir / "nan.safetensors", m, 1);
    const std::string msg = error_of([&] { load_model(dir / "nan.safetensors"); });
    CHECK(contains(msg, "[load_checkpoint]"));
    CHECK(contains(msg, victim));
    CHECK(contains(msg, "not finite"));
  }
}

// ---- the checkpoint commit ----

namespace {
TokenData tiny_data() { return mqar_generate(MqarConfig{16, 8, 2}, 12, 1); }
TrainConfig tiny_train() {
  TrainConfig t;
  t.steps = 10;
  t.lr = 1e-2;
  return t;
}
struct Run {
  Generator init;
  LanguageModel model;
  BatchLoader loader;
  Trainer trainer;
  explicit Run(const TokenData& data, ModelConfig c = tiny())
      : init(7), model(c, init), loader(data, 4, 3), trainer(model, loader, tiny_train()) {}
};
struct SimulatedCrash {};
}  // namespace

TEST_CASE("a save killed at any point leaves the newest pair or the previous one resumable") {
  TempDir dir;
  const TokenData data = tiny_data();
  const std::string path = dir / "ckpt.safetensors";
  Run run(data);
  run.trainer.step();
  run.trainer.save(path);  // step 1: the previous pair
  run.trainer.step();      // step 2 is being saved below
  int crashes = 0;
  for (int k = 1;; ++k) {
    int seen = 0;
    io::set_crash_hook([&](const std::string&) {
      if (++seen == k) throw SimulatedCrash{};
    });
    bool crashed = false;
    try {
      run.trainer.save(path);
    } catch (const SimulatedCrash&) {
      crashed = true;
    }
    io::set_crash_hook(nullptr);
    Run fresh(data);
    const std::string msg = error_of([&] { fresh.trainer.resume(path); });
    CHECK_MESSAGE(msg.empty(), "crash at point ", k, ": ", msg);
    const int64_t resumed = fresh.trainer.step_count();
    CHECK_MESSAGE((resumed == 1 || resumed == 2), "crash at point ", k, ": resumed at step ", resumed);
    if (!crashed) {
      CHECK(resumed == 2);
      break;
    }
    ++crashes;
    // Restore the previous pair for the next crash point.
    Run back(data);
    back.trainer.step();
    back.trainer.save(path);
    REQUIRE(k < 100);
  }
  CHECK(crashes >= 4);  // the hook saw the writes, fsyncs and renames of both files
  // Whatever the crashes left behind goes with the next complete save: one pair remains (beside
  // the temporaries of this process, which is still alive; those of a killed one are removed).
  run.trainer.save(path);
  std::vector<std::string> files;
  for (const std::string& name : dir.entries())
    if (name.find(".tmp") == std::string::npos) files.push_back(name);
  CHECK(files == std::vector<std::string>{"ckpt.safetensors", fs::path(Trainer::optimizer_path(path)).filename().string()});
}

TEST_CASE("the model and optimizer files of a pair belong together and the diff of configs is named") {
  TempDir dir;
  const TokenData data = tiny_data();
  const std::string path = dir / "ckpt.safetensors";
  Run a(data);
  a.trainer.step();
  a.trainer.save(path);
  ModelConfig other = tiny();
  other.num_heads = 4;
  other.norm_eps = 1e-5;
  Run b(data, other);
  const std::string msg = error_of([&] { b.trainer.resume(path); });
  CHECK(contains(msg, "num_heads: saved 2, now 4"));
  CHECK(contains(msg, "norm_eps"));
  CHECK_FALSE(contains(msg, "vocab_size"));
}

TEST_CASE("temporaries orphaned by a killed process are removed by the next save") {
  TempDir dir;
  const std::string path = dir / "x.npy.safetensors";
  // A pid beyond pid_max names no process; the live process's own temporaries are not orphans.
  for (const std::string& name : {path + ".tmp999999999.0", path + ".tmp999999998.17"}) std::ofstream(name) << "partial";
  const std::string mine = path + ".tmp" + std::to_string(::getpid()) + ".99999";
  std::ofstream(mine) << "in flight";
  std::ofstream(dir / "unrelated.tmp999999999.0") << "other file's";
  save_safetensors(path, {{"a", ones({2})}});
  CHECK(dir.entries() == std::vector<std::string>{"unrelated.tmp999999999.0", "x.npy.safetensors",
                                                   fs::path(mine).filename().string()});
}

TEST_CASE("saving over a symlink, a directory or a device is refused and leaves it as it was") {
  TempDir dir;
  const std::string target = dir / "target.safetensors";
  save_safetensors(target, {{"a", ones({1})}});
  const std::string before = io::read_all(target, "t");
  fs::create_symlink(target, dir / "link.safetensors");
  CHECK(contains(error_of([&] { save_safetensors(dir / "link.safetensors", {{"b", ones({2})}}); }), "not a regular file"));
  CHECK(fs::is_symlink(dir / "link.safetensors"));
  CHECK(io::read_all(target, "t") == before);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK(contains(error_of([&] { save_safetensors(dir / "fifo", {{"b", ones({2})}}); }), "not a regular file"));
  CHECK(fs::is_fifo(dir / "fifo"));
  fs::create_directory(dir / "sub");
  CHECK(contains(error_of([&] { save_safetensors(dir / "sub", {{"b", ones({2})}}); }), "not a regular file"));
  CHECK(contains(error_of([&] { io::check_writable(dir / "fifo", "t"); }), "not a regular file"));
  CHECK(dir.entries() == std::vector<std::string>{"fifo", "link.safetensors", "sub", "target.safetensors"});
}

TEST_CASE("a failed write names the system's reason, and the old file stays") {
  TempDir dir;
  const std::string path = dir / "big.safetensors";
  save_safetensors(path, {{"a", ones({1})}});
  const std::string before = io::read_all(path, "t");
  // A file size limit makes write(2) fail with EFBIG, the way a full disk fails with ENOSPC.
  struct rlimit old_limit;
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string msg = error_of([&] { save_safetensors(path, {{"a", ones({100000})}}); });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  CHECK(contains(msg, "[safetensors]"));
  CHECK(contains(msg, std::strerror(EFBIG)));
  CHECK(io::read_all(path, "t") == before);
  CHECK(dir.entries() == std::vector<std::string>{"big.safetensors"});
}

TEST_CASE("check_writable finds a bad save path before any work is done") {
  TempDir dir;
  CHECK_NOTHROW(io::check_writable(dir / "new.safetensors", "t"));
  CHECK(dir.entries().empty());  // the probe leaves nothing behind
  CHECK(contains(error_of([&] { io::check_writable(dir / "missing/x.safetensors", "t"); }), "missing"));
  std::ofstream(dir / "file") << "x";
  CHECK(contains(error_of([&] { io::check_writable(dir / "file/x.safetensors", "t"); }), "[t]"));
  CHECK(contains(error_of([&] { io::check_writable("", "t"); }), "empty"));
  const TokenData data = tiny_data();
  Run run(data);
  CHECK(contains(error_of([&] { run.trainer.check_save_path(dir / "missing/ckpt.safetensors"); }), "missing"));
}
