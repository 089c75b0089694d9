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
  Trainer(LanguageModel& model, BatchLoader& loader, const TrainConfig& config);

  StepStats step();
  int64_t step_count() const { return step_; }

  // Writes a checkpoint: path (the model file, see checkpoint.h) and its optimizer file (AdamW
  // state, step, loader position, config and a fingerprint of the training data). The commit:
  //   1. the optimizer state goes to the one of two slots, path.optim-a / path.optim-b
  //      (.safetensors), that the current model file does not name (atomic, fsynced);
  //   2. the model file, naming that slot in its metadata, replaces path (atomic, fsynced):
  //      this rename is the commit;
  //   3. the other slot, now named by no model file, is removed.
  // A kill at any instant leaves path naming a complete optimizer file of its own step: the new
  // pair after step 2, the previous one before it.
  void save(const std::string& path, const Metadata& extra = {}) const;
  // Error unless save(path) can write its files (directory exists and takes files, no path is a
  // symlink or device): for checking a save path before training.
  static void check_save_path(const std::string& path);
  // Loads both files into this trainer's model, optimizer and loader: the next step() is the
  // one the saved run would have made. Returns the training settings the run was saved with
  // (TrainConfig as JSON; empty when the file has none), so a caller can tell when they changed.
  // A saved model config that differs from this trainer's is an error naming the fields.
  std::string resume(const std::string& path);
  // The optimizer file paired with the model file at path (the slot its metadata names; the
  // single path.optim.safetensors of files from before the two slots).
  static std::string optimizer_path(const std::string& path);

  LanguageModel& model;
  BatchLoader& loader;
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

// FNV-1a over the bytes of inputs and labels: a cheap identity of a data set.
std::string data_fingerprint(const TokenData& data);

}  // namespace rotor::nn
