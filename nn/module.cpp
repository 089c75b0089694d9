#include "rotor/nn/module.h"

namespace rotor::nn {

std::vector<Parameter> Module::named_parameters() const {
  std::vector<Parameter> out;
  collect("", out);
  return out;
}

void Module::collect(const std::string& prefix, std::vector<Parameter>& out) const {
  for (const Parameter& p : params_) out.push_back({prefix + p.name, p.value, p.weight_decay});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

TensorList Module::parameters() const {
  TensorList out;
  for (const Parameter& p : named_parameters()) out.push_back(p.value);
  return out;
}

Tensor Module::parameter(const std::string& name) const {
  for (const Parameter& p : named_parameters())
    if (p.name == name) return p.value;
  ROTOR_FAIL("parameter", "no parameter named '", name, "'");
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Parameter& p : named_parameters()) n += p.value.numel();
  return n;
}

void Module::zero_grad() {
  for (const Parameter& p : named_parameters()) p.value.impl()->grad.reset();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool weight_decay) {
  t.requires_grad_(true);
  params_.push_back({name, t, weight_decay});
  return t;
}

Tensor Module::register_buffer_parameter(const std::string& name, Tensor t) {
  params_.push_back({name, t, false});
  return t;
}

void Module::register_module(const std::string& name, Module& child) { children_.push_back({name, &child}); }

Tensor normal_init(const Shape& shape, Generator& gen, DType dtype, double std) {
  return randn(shape, gen, dtype, 0.0, std);
}

}  // namespace rotor::nn
