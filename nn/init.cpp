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

Tensor& ones_(Tensor& t) { return overwrite(t, ones(t.shape(), t.dtype())); }

Tensor& constant_(Tensor& t, double value) { return overwrite(t, full(t.shape(), value, t.dtype())); }

int64_t fan_in(const Tensor& weight) {
  ROTOR_CHECK(weight.dim() >= 2, "fan_in", "needs a weight with >= 2 dims, got ", shape_str(weight.shape()));
  int64_t n = 1;
  for (int64_t d = 1; d < weight.dim(); ++d) n *= weight.size(d);
  return n;
}

int64_t fan_out(const Tensor& weight) {
  ROTOR_CHECK(weight.dim() >= 2, "fan_out", "needs a weight with >= 2 dims, got ", shape_str(weight.shape()));
  int64_t n = weight.size(0);
  for (int64_t d = 2; d < weight.dim(); ++d) n *= weight.size(d);
  return n;
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double a = param < 0 ? 0.01 : param;
    return std::sqrt(2.0 / (1.0 + a * a));
  }
  if (nonlinearity == "selu") return 0.75;
  ROTOR_FAIL("calculate_gain", "unknown nonlinearity '", nonlinearity,
             "' (linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu)");
}

namespace {
double xavier_std(const Tensor& t, double gain) {
  return gain * std::sqrt(2.0 / double(fan_in(t) + fan_out(t)));
}

double kaiming_std(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  ROTOR_CHECK(mode == "fan_in" || mode == "fan_out", "kaiming", "mode must be fan_in or fan_out, got '", mode, "'");
  const int64_t fan = mode == "fan_in" ? fan_in(t) : fan_out(t);
  ROTOR_CHECK(fan > 0, "kaiming", "the ", mode, " of ", shape_str(t.shape()), " is 0");
  // PyTorch passes a to calculate_gain as given, so leaky_relu with a = 0 is relu's √2.
  return calculate_gain(nonlinearity, nonlinearity == "leaky_relu" ? a : -1.0) / std::sqrt(double(fan));
}
}  // namespace

Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain) {
  const double bound = std::sqrt(3.0) * xavier_std(t, gain);
  return uniform_(t, gen, -bound, bound);
}

Tensor& xavier_normal_(Tensor& t, Generator& gen, double gain) { return normal_(t, gen, 0.0, xavier_std(t, gain)); }

Tensor& kaiming_uniform_(Tensor& t, Generator& gen, double a, const std::string& mode, const std::string& nonlinearity) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  return uniform_(t, gen, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, Generator& gen, double a, const std::string& mode, const std::string& nonlinearity) {
  return normal_(t, gen, 0.0, kaiming_std(t, a, mode, nonlinearity));
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
