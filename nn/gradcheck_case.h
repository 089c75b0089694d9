// Registers a layer with the gradcheck registry: the layer is built in the case's dtype and
// its parameters are checked along with the inputs.
#pragma once
#include <functional>
#include <memory>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/nn/module.h"

namespace rotor::nn {

// Whole layers compose dozens of ops with weights of order one: float32 rounding accumulates to
// a few 1e-6 of the gradient's scale (measured), so their float32/float64 agreement bound is 2e-5.
inline const GradcheckOptions kLayerOptions = {.float32_agreement = 2e-5};

// Multiplies the trainable parameters that `which` selects by `factor`, in place.
inline void scale_parameters(const Module& m, double factor, const std::function<bool(const Parameter&)>& which) {
  NoGradGuard no_grad;
  for (const Parameter& p : m.named_parameters())
    if (p.value.requires_grad() && which(p)) {
      Tensor w = p.value;
      mul_(w, factor);
    }
}

// Multiplies every matrix of a freshly built layer by 15: the std-0.02 initialisation would leave
// most paths too small to matter, weights of order one exercise every one of them.
inline void scale_matrices_for_gradcheck(const Module& layer) {
  scale_parameters(layer, 15.0, [](const Parameter& p) { return p.value.dim() >= 2; });
}

// make(dtype, gen) -> std::shared_ptr<Layer>; run(layer, inputs) -> TensorList.
template <class Make, class Run>
CaseBuilder layer_case(Make make, Run run) {
  return [make, run](DType dtype, Generator& gen) {
    auto layer = make(dtype, gen);
    TensorList params;
    for (const auto& p : layer->named_parameters())
      if (p.value.requires_grad()) params.push_back(p.value);
    return BuiltCase{[layer, run](const TensorList& in) { return run(*layer, in); }, params};
  };
}

}  // namespace rotor::nn
