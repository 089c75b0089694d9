// Group "train": one training step (forward, fused cross-entropy, backward, clipping, AdamW) of
// the MQAR-sized language model — vocab 8192, d 128, 2 GLA layers with Selective RoPE, 8 heads,
// head dim 16 (expand_k = expand_v = 1, as the reference's MAD configs), SwiGLU inner 512 —
// on B 32 x T 256 tokens. Reports tokens/s, achieved GFLOP/s (6·B·T·P with P the matmul
// parameters) as a ratio of raw sgemm, and the step's peak memory: rotor's allocator peak and
// the process's peak RSS (VmHWM).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/trainer.h"

namespace bench {

namespace {
double vm_hwm_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return 0;
}
}  // namespace

void bench_train(Bench& b) {
  using namespace rotor;
  using namespace rotor::nn;
  ModelConfig c;
  c.vocab_size = 8192;
  c.hidden_size = 128;
  c.num_hidden_layers = 2;
  c.num_heads = 8;
  c.expand_k = 1.0;
  c.expand_v = 1.0;
  c.intermediate_size = 512;
  c.position_embedding.type = "selective_rope";
  const int64_t B = 32, T = 256;
  Generator gen(0);
  LanguageModel model(c, gen);
  MqarConfig task{8192, T, 16};
  BatchLoader loader(mqar_generate(task, 4 * B, 0), B, 0);
  TrainConfig tc;
  tc.steps = 1000;
  Trainer trainer(model, loader, tc);

  trainer.step();  // warm-up: allocator caches, first-touch pages
  std::vector<kernels::GemmShape> shapes;
  kernels::set_gemm_tracer(&shapes);
  trainer.step();
  kernels::set_gemm_tracer(nullptr);
  reset_peak_memory();
  const int64_t live_before = memory_stats().live_bytes;
  const double seconds = time_median([&] { trainer.step(); }, 3);
  const double peak_mb = double(memory_stats().peak_bytes) / (1024.0 * 1024.0);
  const double tokens = double(B * T);
  b.report("train.step_seconds", seconds, "s");
  b.report("train.tokens_per_s", tokens / seconds, "tok/s");
  b.report_gflops("train.step", 6.0 * tokens * double(model.matmul_parameters()), seconds, 1024);
  b.report("train.peak_memory", peak_mb, "MB");
  b.report("train.peak_memory_above_model", peak_mb - double(live_before) / (1024.0 * 1024.0), "MB");
  b.report("train.peak_rss", vm_hwm_mb(), "MB");  // before the raw GEMMs below allocate their operands
  int distinct = 0;
  const double gemm = raw_gemm_seconds(shapes, distinct);
  b.report("train.raw_gemm_seconds", gemm, "s");
  b.report("train.gemm_share", gemm / seconds, "ratio", "raw sgemm at the step's shapes");
}

}  // namespace bench
