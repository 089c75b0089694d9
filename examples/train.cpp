// examples/train — train a small language model on MQAR (multi-query associative recall) on CPU.
//
//   build/examples/train --task mqar --mixer gla --pe selective_rope --steps 1000 --save ckpt.safetensors
//   build/examples/train ... --resume ckpt.safetensors      continue a run exactly where it stopped
//
// What it shows: the whole training loop of rotor — data, model, fused cross-entropy, AdamW
// with warmup + cosine schedule, clipping, evaluation, checkpoints — in one page. Watch the
// loss fall and the accuracy on labelled positions rise; the test accuracy (on sequences the
// model never saw) is printed at the end. --log writes step,loss,accuracy,test_accuracy as CSV.
#include <cstdio>
#include <fstream>

#include "common.h"
#include "rotor/core/parallel.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/trainer.h"

using namespace rotor;
using namespace rotor::nn;

static const char* kUsage = R"(usage: train [flags]
  task      --task mqar  --vocab 8192  --seq-len 64  --kv-pairs 4  --train-size 20000  --test-size 1000
  model     --mixer gla|attn  --pe none|rope|selective_rope  --dim 128  --layers 2  --heads 8
            --expand-k 1  --expand-v 1  --pe-bias 0|1 (Selective RoPE's phase bias)
  training  --steps 1000  --batch 64  --lr 1e-3  --warmup 100  --min-lr 1e-5  --weight-decay 0.1
            --grad-clip 1  --seed 0  --threads 0 (all)
            --grad-accum 1 (split each batch into N micro-batches: same update, less memory)
  output    --eval-every 100  --log FILE.csv  --save PATH  --save-every 0 (only at the end)  --resume PATH
            --stop-at N (stop after step N of --steps; resume later with the same flags)
)";

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, kUsage);
  flags.str("task", "mqar", {"mqar"});
  MqarConfig task;
  task.vocab_size = flags.integer("vocab", 8192, 4, 1 << 20);
  task.seq_len = flags.integer("seq-len", 64, 4, 1 << 16);
  task.num_kv_pairs = flags.integer("kv-pairs", 4, 1, 1 << 14);
  const int64_t train_size = flags.integer("train-size", 20000, 1, 1 << 24);
  const int64_t test_size = flags.integer("test-size", 1000, 1, 1 << 24);

  ModelConfig model_config;
  const std::string mixer = flags.str("mixer", "gla", {"gla", "attn"});
  const std::string pe = flags.str("pe", "selective_rope", {"none", "rope", "selective_rope"});
  model_config.vocab_size = task.vocab_size;
  model_config.hidden_size = flags.integer("dim", 128, 1, 1 << 16);
  model_config.num_hidden_layers = flags.integer("layers", 2, 1, 1024);
  model_config.num_heads = flags.integer("heads", 8, 1, 1024);
  model_config.expand_k = flags.real("expand-k", 1.0, 0.0, 16.0);
  model_config.expand_v = flags.real("expand-v", 1.0, 0.0, 16.0);
  model_config.position_embedding.type = pe == "none" ? "nope" : pe;
  // Selective RoPE's optional bias φ += exp(b), b = 0 at init: starts as RoPE's constant rate.
  model_config.position_embedding.selective.use_bias = flags.integer("pe-bias", 0, 0, 1) == 1;
  if (mixer == "attn")
    for (int64_t i = 0; i < model_config.num_hidden_layers; ++i) model_config.attn_layers.push_back(i);

  TrainConfig train;
  train.steps = flags.integer("steps", 1000, 1, int64_t(1) << 40);
  const int64_t batch = flags.integer("batch", 64, 1, 1 << 20);
  train.lr = flags.real("lr", 1e-3, 1e-12, 10.0);
  train.warmup = flags.integer("warmup", std::min<int64_t>(100, train.steps / 10), 0, train.steps);
  train.min_lr = flags.real("min-lr", 1e-5, 0.0, train.lr);
  train.weight_decay = flags.real("weight-decay", 0.1, 0.0, 10.0);
  train.grad_clip = flags.real("grad-clip", 1.0, 0.0, 1e9);
  train.grad_accum = flags.integer("grad-accum", 1, 1, 1 << 20);
  const uint64_t seed = uint64_t(flags.integer("seed", 0, 0, int64_t(1) << 40));
  const int64_t threads = flags.integer("threads", 0, 0, 1024);
  const int64_t eval_every = flags.integer("eval-every", 100, 0, int64_t(1) << 40);
  const std::string log_path = flags.str("log", ""), save_path = flags.str("save", ""),
                    resume_path = flags.str("resume", "");
  const int64_t save_every = flags.integer("save-every", 0, 0, int64_t(1) << 40);
  // Stop early (and save) while the schedule still spans --steps: a long run split into pieces
  // that --resume joins, bit-identical to one uninterrupted run.
  const int64_t stop_at = flags.integer("stop-at", train.steps, 1, train.steps);
  flags.finish();
  if (threads) set_num_threads(int(threads));
  try {
    task.validate();
    model_config.validate();
  } catch (const Error& e) {
    flags.fail(e.what());
  }
  if (batch > train_size) flags.fail("--batch must not exceed --train-size");
  if (batch % train.grad_accum) flags.fail("--batch must be a multiple of --grad-accum");

  try {
    // 1. Data: disjoint train and test sets, and a loader that shuffles the train set.
    MqarSplits data = mqar_splits(task, train_size, test_size, seed);
    BatchLoader loader(data.train, batch, seed);

    // 2. Model and trainer (a resumed run overwrites parameters, optimizer and loader state).
    Generator init(seed);
    LanguageModel model(model_config, init);
    Trainer trainer(model, loader, train);
    const std::string saved_train = resume_path.empty() ? "" : trainer.resume(resume_path);
    std::printf("model: %s + %s, %lld parameters (%lld in matmuls); MQAR V=%lld T=%lld pairs=%lld; %lld steps of %lld\n",
                mixer.c_str(), pe.c_str(), (long long)model.num_parameters(), (long long)model.matmul_parameters(),
                (long long)task.vocab_size, (long long)task.seq_len, (long long)task.num_kv_pairs, (long long)train.steps,
                (long long)batch);
    if (trainer.step_count()) std::printf("resumed from %s at step %lld\n", resume_path.c_str(), (long long)trainer.step_count());
    if (!resume_path.empty() && saved_train != train.to_json().dump())
      std::printf("note: the training settings differ from the saved run's (%s): the continuation follows the new ones\n",
                  saved_train.empty() ? "none" : saved_train.c_str());

    // 3. The CSV log (appended to when resuming).
    std::ofstream log;
    if (!log_path.empty()) {
      const bool append = trainer.step_count() > 0;
      log.open(log_path, append ? std::ios::app : std::ios::trunc);
      if (!log) throw Error("[train] cannot open --log " + log_path);
      if (!append) log << "step,loss,accuracy,test_accuracy,lr,grad_norm\n";
    }

    // 4. The loop.
    examples::Progress progress(trainer.step_count(), stop_at, std::max<int64_t>(1, train.steps / 20));
    double test_accuracy = -1;
    while (trainer.step_count() < stop_at) {
      StepStats s;
      try {
        s = trainer.step();
      } catch (const TrainingDiverged& e) {
        progress.newline();
        std::fprintf(stderr, "%s\n", e.what());
        if (!save_path.empty()) std::fprintf(stderr, "the last good checkpoint is %s (if one was saved)\n", save_path.c_str());
        return 1;
      }
      std::string extra, test_cell;
      if ((eval_every && s.step % eval_every == 0) || s.step == stop_at) {
        test_accuracy = evaluate(model, data.test, batch).accuracy.value();
        char buf[64];
        std::snprintf(buf, sizeof buf, "  test acc %.4f", test_accuracy);
        extra = buf;
        test_cell = std::to_string(test_accuracy);
      }
      if (log) log << s.step << ',' << s.loss << ',' << s.accuracy << ',' << test_cell << ',' << s.lr << ','
                   << s.grad_norm << '\n' << std::flush;
      progress.update(s.step, s.loss, s.accuracy, double(s.tokens), extra);
      if (!save_path.empty() && save_every && s.step % save_every == 0) trainer.save(save_path);
    }
    progress.newline();
    if (!save_path.empty()) trainer.save(save_path);
    if (test_accuracy < 0) test_accuracy = evaluate(model, data.test, batch).accuracy.value();
    std::printf("final test accuracy: %.4f  (%s + %s, %lld steps, %s)\n", test_accuracy, mixer.c_str(), pe.c_str(),
                (long long)trainer.step_count(), examples::Progress::clock(progress.seconds()).c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
