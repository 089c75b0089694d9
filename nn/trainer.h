// One training step of a language model on token data (forward, fused cross-entropy,
// backward, clipping, AdamW with a warmup + cosine schedule), checkpointing of everything a
// bit-identical resume needs, and evaluation.
#pragma once
#include <string>

#include "rotor/nn/checkpoint.h"
#include "rotor/nn/data.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/optim.h"

namespace rotor::nn {

struct TrainConfig {
  int64_t steps = 1000;  // the schedule's length
  double lr = 1e-3;      // peak learning rate
  int64_t warmup = 0;    // linear warmup steps
  double min_lr = 0.0;   // cosine floor
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip = 1.0;  // global norm; <= 0 disables clipping
  Json to_json() const;
};

struct StepStats {
  int64_t step = 0;  // steps done after this one
  double loss = 0, accuracy = 0, grad_norm = 0, lr = 0;
  int64_t tokens = 0;
};

// A non-finite loss or gradient norm: training must stop. Thrown before any parameter or
// optimizer state changes, so the model is still the last good one and no checkpoint is
// touched.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

class Trainer {
 public:
  // The trainer keeps references to model and loader; both must outlive it.
  Trainer(LanguageModel& model, Loader& loader, const TrainConfig& config);

  StepStats step();
  int64_t step_count() const { return step_; }

  // Writes path (the model file, see checkpoint.h) and optimizer_path(path) (AdamW state,
  // step, loader position, config and a fingerprint of the training data), both atomically.
  // The optimizer file is written first, and both carry the step, so a crash between the two
  // writes is detected by resume() instead of silently mixing two steps.
  void save(const std::string& path, const Metadata& extra = {}) const;
  // Loads both files into this trainer's model, optimizer and loader: the next step() is the
  // one the saved run would have made. Returns the training settings the run was saved with
  // (TrainConfig as JSON; empty when the file has none), so a caller can tell when they changed.
  std::string resume(const std::string& path);
  static std::string optimizer_path(const std::string& path) { return path + ".optim.safetensors"; }

  LanguageModel& model;
  Loader& loader;
  TrainConfig config;
  AdamW optimizer;
  LrSchedule schedule;

 private:
  int64_t step_ = 0;
};

struct EvalResult {
  double loss = 0;  // mean over labelled positions
  Accuracy accuracy;
};
// Without gradients, in batches of batch_size rows.
EvalResult evaluate(const LanguageModel& model, const TokenData& data, int64_t batch_size);

}  // namespace rotor::nn
