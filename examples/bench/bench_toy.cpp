// Group "toy": the training step of every model the main job trains (examples/studies/main.json:
// the parity variants and the MQAR variants, at its sizes and batch), each against raw
// cblas_sgemm at exactly the products that step performs.
//
// For every model: one step is run with a GEMM tracer installed (kernels/blas.h), which lists the
// shape of every product of the forward and backward; then each distinct shape is timed with raw
// cblas_sgemm on packed operands, on one OpenBLAS thread and on all of rotor's threads. A shape's
// reference time is the better of the all-thread time and the one-thread time divided by the
// thread count (independent products side by side). Their sum over the step, divided by the
// measured step time, is toy.<model>.gemm_share: 1 would mean the step costs no more than its
// products done by raw BLAS. Also reported: tokens/s and rotor's allocator peak during a step.
//
// A model is one line of kModels.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.h"
#include "rotor/core/generator.h"
#include "rotor/kernels/blas.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/state_tracking.h"
#include "rotor/nn/trainer.h"

namespace bench {
namespace {

using namespace rotor;
using namespace rotor::nn;

struct ToyModel {
  const char* name;
  const char* task;  // "parity": S2 word problems, lengths 1-16; "mqar": V 64, T 32, 8 key-value pairs
  int64_t dim, layers, heads;
  const char* pe;  // "nope", "rope" or "selective_rope" (temperature pi on every pair, phase bias)
  bool short_conv;
};

const ToyModel kModels[] = {
    // name                   task      d   L  H  position          conv
    {"parity_nope",           "parity", 32, 1, 4, "nope",           true},
    {"parity_rope",           "parity", 32, 1, 4, "rope",           true},
    {"parity_selective_rope", "parity", 32, 1, 4, "selective_rope", true},
    {"mqar_nope",             "mqar",   64, 2, 4, "nope",           false},
    {"mqar_short_conv",       "mqar",   64, 2, 4, "nope",           true},
};
constexpr int64_t kBatch = 64;

bool is_parity(const ToyModel& m) { return std::string(m.task) == "parity"; }

StateTrackingConfig parity_config() {
  StateTrackingConfig c;
  c.seq_len = 16;
  c.min_len = 1;
  return c;
}

ModelConfig model_config(const ToyModel& m) {
  ModelConfig c;
  c.vocab_size = is_parity(m) ? state_tracking_vocab(make_group("S2")) : 64;
  c.hidden_size = m.dim;
  c.num_hidden_layers = m.layers;
  c.num_heads = m.heads;
  c.expand_k = 1.0;
  c.expand_v = 1.0;
  c.use_short_conv = m.short_conv;
  c.position_embedding.type = m.pe;
  SelectiveRopeConfig& sr = c.position_embedding.selective;
  sr.use_bias = true;
  sr.temp_theta = 1.0;
  sr.temp_max = 3.14159;
  return c;
}

TokenData toy_data(const ToyModel& m, int64_t rows) {
  if (is_parity(m)) return state_tracking_splits(parity_config(), rows, 1, 0).train;
  return mqar_generate(MqarConfig{64, 32, 8}, rows, 0);
}

}  // namespace

void bench_toy(Bench& b) {
  for (const ToyModel& m : kModels) {
    const std::string name = std::string("toy.") + m.name;
    Generator init(0);
    LanguageModel model(model_config(m), init);
    TokenData data = toy_data(m, 8 * kBatch);
    const int64_t tokens = kBatch * data.inputs.size(1);
    BatchLoader loader(std::move(data), kBatch, 0);
    TrainConfig tc;
    tc.steps = 1500, tc.lr = 3e-3, tc.warmup = 100, tc.min_lr = 1e-5;
    Trainer trainer(model, loader, tc);
    // Warm-up: allocator caches, first-touch pages, and the first tenth of a second or so of a
    // process, in which the steps of the first model ran at the speed of one thread.
    const auto warm_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    do trainer.step();
    while (std::chrono::steady_clock::now() < warm_until);

    std::vector<kernels::GemmShape> shapes;
    kernels::set_gemm_tracer(&shapes);
    trainer.step();
    kernels::set_gemm_tracer(nullptr);
    for (const auto& s : shapes)
      if (s.is_double) std::fprintf(stderr, "bench: %s ran a float64 product\n", m.name);

    reset_peak_memory();
    const double step = time_median([&] { trainer.step(); }, 15);
    const double peak_mb = double(memory_stats().peak_bytes) / (1024.0 * 1024.0);
    int distinct = 0;
    const double gemm = raw_gemm_seconds(shapes, distinct);
    b.report(name + ".step_ms", 1e3 * step, "ms");
    b.report(name + ".tokens_per_s", double(tokens) / step, "tok/s");
    b.report(name + ".gemms", double(shapes.size()), "products (" + std::to_string(distinct) + " shapes)");
    b.report(name + ".raw_gemm_ms", 1e3 * gemm, "ms");
    b.report(name + ".gemm_share", gemm / step, "ratio", "raw sgemm at the step's shapes");
    b.report(name + ".peak_memory", peak_mb, "MB");
  }
}

}  // namespace bench
