// One training step of a model (forward, loss, backward, clipping, AdamW with a warmup +
// cosine schedule), checkpointing of everything a bit-identical resume needs, and evaluation.
// The model is a LanguageModel on token data (fused cross-entropy), or any Module with a loss
// function of a batch. A step can be split into micro-batches (gradient accumulation) and over
// the ranks of a data-parallel job (distributed.h).
#pragma once
#include <functional>
#include <memory>
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
  // How a step is computed rather than what it computes (so not in to_json): each rank's share
  // of the batch is split into grad_accum micro-batches, whose gradients are summed before
  // the one update; bucket_bytes and overlap shape the all-reduce between ranks.
  int64_t grad_accum = 1;
  int64_t bucket_bytes = int64_t(1) << 20;
  bool overlap = true;  // send a bucket as soon as the backward has finished it
  Json to_json() const;
};

struct StepStats {
  int64_t step = 0;  // steps done after this one
  double loss = 0, accuracy = 0, grad_norm = 0, lr = 0;
  int64_t tokens = 0;
  double reduce_seconds = 0;  // after the last backward, until the summed gradient was ready
};

// A non-finite loss or gradient norm: training must stop. Thrown before any parameter or
// optimizer state changes, so the model is still the last good one and no checkpoint is
// touched.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

class World;
class GradientReducer;

// What a loss function returns for one batch: the mean loss (0-d, requires grad) and, for a
// classifier, the items counted and predicted right (accuracy; leave it 0/0 otherwise).
struct BatchLoss {
  Tensor loss;
  Accuracy accuracy;
};
// The loss of a Module on a batch (inputs and labels of any dtype and shape with rows first).
using LossFn = std::function<BatchLoss(const TokenData& batch)>;

class Trainer {
 public:
  // The trainer keeps references to model, loader and world; they must outlive it. With a
  // world of R ranks, every rank holds the same model and loader: each step takes the same
  // global batch everywhere, rank r computes the gradient of its slice (rows [r·B/R,
  // (r+1)·B/R)), and all ranks apply the same summed update. Micro-batch m of the N = R ·
  // grad_accum has its mean loss weighted by its share of the batch's labelled positions, so
  // the sum is the gradient of the whole batch's mean loss: clipping sees that gradient's
  // norm, as without accumulation. The sum is taken in micro-batch order, (g_0 + g_1) + ...,
  // so R ranks give the bits of one process with grad_accum R.
  Trainer(LanguageModel& model, Loader& loader, const TrainConfig& config, World* world = nullptr);
  // Any module: loss(batch) computes the forward and the mean loss over the batch's rows. With
  // micro-batches (grad_accum or ranks), each of the equal slices of rows weighs 1/N, so the
  // summed gradient is that of the whole batch's mean when the loss is a mean over rows.
  // Checkpoints hold the parameters and the step (no model config); resume checks names,
  // shapes and dtypes against this module.
  Trainer(Module& model, Loader& loader, const TrainConfig& config, LossFn loss, World* world = nullptr);
  ~Trainer();

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
  // Bytes of gradient each rank sends into the all-reduce per step (0 without accumulation).
  int64_t reduce_bytes() const;
  int64_t reduce_buckets() const;

  Module& model;
  LanguageModel* language_model;  // the model when it is one, else null
  Loader& loader;
  TrainConfig config;
  AdamW optimizer;
  LrSchedule schedule;

 private:
  int64_t step_ = 0;
  LossFn loss_;
  World* world_;
  std::unique_ptr<GradientReducer> reducer_;  // when a step has more than one micro-batch
};

struct EvalResult {
  double loss = 0;  // mean over labelled positions
  Accuracy accuracy;
  Accuracy sequences;  // rows with every labelled position right
};
// Without gradients, in batches of batch_size rows.
EvalResult evaluate(const LanguageModel& model, const TokenData& data, int64_t batch_size);

}  // namespace rotor::nn
