#include "rotor/nn/init.h"

#include <cmath>

#include "rotor/nn/layers.h"

namespace rotor::nn {

namespace {
Tensor& overwrite(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  core::copy_into(t, values);
  return t;
}
}  // namespace

Tensor& normal_(Tensor& t, Generator& gen, double mean, double std) {
  return overwrite(t, randn(t.shape(), gen, t.dtype(), mean, std));
}

Tensor& uniform_(Tensor& t, Generator& gen, double lo, double hi) {
  return overwrite(t, rand(t.shape(), gen, t.dtype(), lo, hi));
}

Tensor& zeros_(Tensor& t) { return overwrite(t, zeros(t.shape(), t.dtype())); }

int64_t fan_in(const Tensor& weight) {
  ROTOR_CHECK(weight.dim() >= 2, "fan_in", "needs a weight with >= 2 dims, got ", shape_str(weight.shape()));
  int64_t n = 1;
  for (int64_t d = 1; d < weight.dim(); ++d) n *= weight.size(d);
  return n;
}

InitScheme init_scheme_from_name(const std::string& name) {
  if (name == "reference") return InitScheme::Reference;
  if (name == "torch") return InitScheme::Torch;
  ROTOR_FAIL("config", "init must be reference or torch, got '", name, "'");
}

const char* init_scheme_name(InitScheme scheme) { return scheme == InitScheme::Torch ? "torch" : "reference"; }

void initialize(Module& m, InitScheme scheme, Generator& gen) {
  if (scheme == InitScheme::Reference) return;
  if (auto* linear = dynamic_cast<Linear*>(&m)) {
    // kaiming_uniform_(a = √5): bound √(6 / ((1 + 5) fan_in)) = 1/√fan_in.
    const double bound = 1.0 / std::sqrt(double(fan_in(linear->weight)));
    uniform_(linear->weight, gen, -bound, bound);
    if (linear->bias.defined()) zeros_(linear->bias);
  } else if (auto* conv = dynamic_cast<ShortConvolution*>(&m)) {
    const double bound = 1.0 / std::sqrt(double(fan_in(conv->weight)));
    uniform_(conv->weight, gen, -bound, bound);
    if (conv->bias.defined()) uniform_(conv->bias, gen, -bound, bound);
  } else if (auto* embedding = dynamic_cast<Embedding*>(&m)) {
    normal_(embedding->weight, gen, 0.0, 0.02);
  }
  for (const auto& [name, child] : m.children()) initialize(*child, scheme, gen);
}

}  // namespace rotor::nn
