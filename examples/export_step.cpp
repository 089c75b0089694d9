// examples/export_step — one training step of a saved model, written out for another framework
// to repeat: the batch, the logits, the loss and every parameter's gradient, and the time of a
// full training step (forward, cross-entropy, backward, clipping, AdamW). scripts/compare-torch
// runs it and repeats the same step in PyTorch.
//
//   build/examples/export_step --model ckpt.safetensors --batch 64 --seq-len 32 --out step.safetensors
//
// The batch is random tokens; a quarter of the labels are the ignore index (-100), so the
// loss's masking is compared too. Parameters are not changed before the export; the timed
// steps run afterwards.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common.h"
#include "rotor/core/generator.h"
#include "rotor/core/parallel.h"
#include "rotor/core/safetensors.h"
#include "rotor/nn/checkpoint.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/optim.h"

static const char* kUsage = R"(usage: export_step --model FILE --out FILE [flags]
  --batch 64  --seq-len 32  --seed 0 (the batch)  --time-steps 20 (timed training steps; 0: none)
  --lr 1e-3  --threads 1
)";

static double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

int main(int argc, char** argv) {
  using namespace rotor;
  using namespace rotor::nn;
  examples::Flags flags(argc, argv, kUsage);
  const std::string model_path = flags.str("model", ""), out = flags.str("out", "");
  const int64_t B = flags.integer("batch", 64, 1, 1 << 16), T = flags.integer("seq-len", 32, 1, 1 << 20);
  const int64_t seed = flags.integer("seed", 0, 0, int64_t(1) << 62);
  const int64_t timed = flags.integer("time-steps", 20, 0, 1 << 20);
  const double lr = flags.real("lr", 1e-3, 0.0, 1.0);
  const int64_t threads = flags.integer("threads", 1, 0, 1024);
  flags.finish();
  if (model_path.empty() || out.empty()) flags.fail("--model and --out are required");
  if (threads) set_num_threads(int(threads));
  try {
    std::unique_ptr<LanguageModel> model = load_model(model_path);
    const int64_t V = model->config.vocab_size;
    Generator gen{uint64_t(seed)};
    Tensor ids = Tensor::empty({B, T}, DType::Int64), labels = Tensor::empty({B, T}, DType::Int64);
    for (int64_t i = 0; i < B * T; ++i) {
      ids.data<int64_t>()[i] = gen.next_int(0, V);
      const int64_t y = gen.next_int(0, V);
      labels.data<int64_t>()[i] = gen.next_int(0, 4) == 0 ? kIgnoreIndex : y;
    }
    NamedTensors tensors = {{"inputs", ids}, {"labels", labels}};
    {
      Tensor logits = model->forward(ids);
      Tensor loss = cross_entropy(logits, labels);
      loss.backward();
      tensors.emplace_back("logits", logits.detach());
      tensors.emplace_back("loss", loss.detach());
    }
    for (const Parameter& p : model->named_parameters())
      if (p.value.grad().defined()) tensors.emplace_back("grad." + p.name, core::contiguous(p.value.grad()));
    save_safetensors(out, tensors);

    if (timed > 0) {
      // The training step as the Trainer runs it, on the exported batch.
      AdamW optimizer(model->named_parameters(), AdamWOptions{0.9, 0.999, 1e-8, 0.1});
      auto step = [&] {
        optimizer.zero_grad();
        {
          Tensor loss = cross_entropy(model->forward(ids), labels);
          loss.backward();
        }
        clip_grad_norm(model->parameters(), 1.0);
        optimizer.step(lr);
      };
      step();  // warm-up
      // Wall and process CPU time per step, the minimum over the steps: on a shared machine
      // the CPU time is the steadier of the two.
      double wall = 1e30, cpu = 1e30;
      for (int64_t i = 0; i < timed; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        step();
        cpu = std::min(cpu, cpu_seconds() - c0);
        wall = std::min(wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::printf("rotor step: %.3f ms wall, %.3f ms CPU (min over %lld steps, %d thread(s))\n", 1e3 * wall, 1e3 * cpu,
                  (long long)timed, num_threads());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
