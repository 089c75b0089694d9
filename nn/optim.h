// Training utilities: AdamW, SGD, the learning-rate schedule, global gradient-norm clipping.
#pragma once
#include <string>
#include <vector>

#include "rotor/core/safetensors.h"
#include "rotor/nn/module.h"

namespace rotor::nn {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // applied only to parameters with Parameter::weight_decay
};

// AdamW as PyTorch's torch.optim.AdamW (decoupled weight decay, bias correction):
//   p ← p·(1 − lr·wd)                                   (decayed parameters only)
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//   p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
// Only parameters that require grad are optimised. A parameter without a gradient at a step is
// left alone and its step count t does not advance (PyTorch's behaviour). Moments are kept in
// the parameter's dtype; elements are updated in fixed blocks, so results do not depend on the
// thread count.
class AdamW {
 public:
  AdamW(std::vector<Parameter> params, const AdamWOptions& options = {});

  void step(double lr);
  void zero_grad();

  // The state of one parameter, exposed for checkpointing.
  struct State {
    Parameter param;
    int64_t step = 0;
    Tensor exp_avg, exp_avg_sq;  // zeros until the first step
  };
  const std::vector<State>& state() const { return state_; }
  const AdamWOptions& options() const { return options_; }

  // "<name>.step" (I64, 0-d), "<name>.exp_avg", "<name>.exp_avg_sq" for every parameter.
  NamedTensors state_dict() const;
  // The inverse; every name must be present with the right shape and dtype (rotor::Error
  // naming the tensor otherwise). Entries for other parameters are an error too.
  void load_state_dict(const NamedTensors& tensors);

 private:
  std::vector<State> state_;
  AdamWOptions options_;
};

struct SGDOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2, added to the gradient; only parameters with Parameter::weight_decay
  bool nesterov = false;      // needs momentum > 0 and dampening 0, as in PyTorch
};

// SGD as PyTorch's torch.optim.SGD:
//   g ← g + wd·p
//   b ← g at a parameter's first step, else μ·b + (1 − dampening)·g      (when μ > 0)
//   g ← g + μ·b (nesterov) or b                                          (when μ > 0)
//   p ← p − lr·g
// A parameter without a gradient at a step is left alone (its buffer neither starts nor decays).
class SGD {
 public:
  SGD(std::vector<Parameter> params, const SGDOptions& options = {});

  void step(double lr);
  void zero_grad();

  struct State {
    Parameter param;
    int64_t step = 0;        // updates made; the momentum buffer starts at the first
    Tensor momentum_buffer;  // zeros until the first step (unused without momentum)
  };
  const std::vector<State>& state() const { return state_; }
  const SGDOptions& options() const { return options_; }

  // "<name>.step" (I64, 0-d) and "<name>.momentum_buffer" for every parameter; the inverse
  // checks names, shapes and dtypes before it changes anything.
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& tensors);

 private:
  std::vector<State> state_;
  SGDOptions options_;
};

// Linear warmup from lr/warmup to lr over `warmup` steps, then cosine decay to min_lr at
// step `total`, constant after. `step` is the 0-based index of the update about to be made:
//   step < warmup:  lr · (step + 1) / warmup
//   otherwise:      min_lr + ½ (lr − min_lr) (1 + cos(π · min(1, (step − warmup) / (total − warmup))))
struct LrSchedule {
  double lr = 1e-3;
  int64_t warmup = 0;
  int64_t total = 1;
  double min_lr = 0.0;
  double at(int64_t step) const;
};

// The L2 norm of all gradients taken together (accumulated in float64 in a fixed order).
// When it exceeds max_norm (> 0), every gradient is scaled in place by max_norm / (norm + 1e-6)
// (PyTorch's clip_grad_norm_). Returns the norm before clipping; a non-finite norm leaves the
// gradients untouched and is returned as is, for the caller to stop on.
double clip_grad_norm(const TensorList& params, double max_norm);

}  // namespace rotor::nn
