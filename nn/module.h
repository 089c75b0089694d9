// Module: named parameters (dotted names, as in PyTorch's state_dict), child modules,
// train/eval. Layers own their parameters as Tensor members and register them once; the
// registry holds handles to the same tensors, so loading a checkpoint writes into them in
// place.
#pragma once
#include <string>
#include <vector>

#include "rotor/autograd/ops.h"

namespace rotor::nn {

struct Parameter {
  std::string name;
  Tensor value;
  bool weight_decay;  // false for norms, biases and embeddings (AdamW's default)
};

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Every parameter of this module and its children, depth first, in registration order.
  std::vector<Parameter> named_parameters() const;
  TensorList parameters() const;
  Tensor parameter(const std::string& name) const;  // Error when absent
  int64_t num_parameters() const;
  void zero_grad();

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

 // Registration is public (as in PyTorch) so a layer can fill a nested name scope.
  // Marks t as requiring grad and records it under `name`; returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t, bool weight_decay = true);
  // A parameter kept for interop that never trains (e.g. a fixed temperature).
  Tensor register_buffer_parameter(const std::string& name, Tensor t);
  void register_module(const std::string& name, Module& child);
  // Direct children in registration order (a walk over the module tree, e.g. initialisation).
  const std::vector<std::pair<std::string, Module*>>& children() const { return children_; }

 private:
  void collect(const std::string& prefix, std::vector<Parameter>& out) const;
  std::vector<Parameter> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

// Initialisers (seeded, like the reference: normal with std 0.02 for weights).
Tensor normal_init(const Shape& shape, Generator& gen, DType dtype, double std = 0.02);

}  // namespace rotor::nn
