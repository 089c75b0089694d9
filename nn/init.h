// Weight initialisation: in-place initialisers named like torch.nn.init, and the two schemes a
// whole model can start from (docs/model.md):
//   reference  every Linear and depthwise-conv weight ~ N(0, 0.02), biases 0 (the reference's
//              HF models, initializer_range 0.02; what the layer constructors draw);
//   torch      PyTorch's module defaults, as the reference's MAD benchmark gets them: Linear
//              weights ~ U(±1/√fan_in), depthwise-conv weights and biases ~ U(±1/√k), Linear
//              biases 0, embeddings N(0, 0.02).
// The scheme matters for Selective RoPE: its phase increment is a product of three of these
// factors (down, up, conv), ~2e-4 rad per token under `reference` and ~0.05 under `torch`.
#pragma once
#include <string>

#include "rotor/nn/module.h"

namespace rotor::nn {

// Each overwrites t (a leaf: a parameter or a plain tensor) without recording a graph and
// returns it. Values depend only on the generator's seed and offset, not on the thread count.
Tensor& normal_(Tensor& t, Generator& gen, double mean = 0.0, double std = 1.0);
Tensor& uniform_(Tensor& t, Generator& gen, double lo = 0.0, double hi = 1.0);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
Tensor& constant_(Tensor& t, double value);

// PyTorch's fan-in of a weight: size(1) times the product of the sizes after it ([out, in] ->
// in; a depthwise conv [C, 1, k] -> k). fan_out: size(0) times the same receptive field
// ([out, in] -> out; [C, 1, k] -> C·k).
int64_t fan_in(const Tensor& weight);
int64_t fan_out(const Tensor& weight);

// torch.nn.init.calculate_gain: 1 for "linear", "conv1d", "conv2d", "conv3d", "sigmoid"; 5/3 for
// "tanh"; √2 for "relu"; √(2 / (1 + a²)) for "leaky_relu" with slope a = param (0.01 when
// param < 0, i.e. not given); 3/4 for "selu". Error for other names.
double calculate_gain(const std::string& nonlinearity, double param = -1.0);

// Glorot: U(±gain·√(6 / (fan_in + fan_out))) and N(0, gain²·2 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);
Tensor& xavier_normal_(Tensor& t, Generator& gen, double gain = 1.0);
// He: std = calculate_gain(nonlinearity, a) / √fan, fan = fan_in(t) or fan_out(t) by mode
// ("fan_in" or "fan_out"); uniform draws from U(±√3·std). PyTorch's defaults: a = 0,
// "fan_in", "leaky_relu" (so gain √2). nn.Linear's own init is kaiming_uniform_(a = √5), which
// is U(±1/√fan_in).
Tensor& kaiming_uniform_(Tensor& t, Generator& gen, double a = 0.0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu");
Tensor& kaiming_normal_(Tensor& t, Generator& gen, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");

enum class InitScheme { Reference, Torch };
InitScheme init_scheme_from_name(const std::string& name);  // "reference" or "torch", else Error
const char* init_scheme_name(InitScheme scheme);

// Re-initialises the Linear, ShortConvolution and Embedding weights of m and its children by
// the scheme, in registration order from gen. Reference leaves the constructors' draws as they
// are (they are that scheme). Other parameters (norm weights, Selective RoPE's bias and
// full-rank projection, temperatures) keep their constructor values under both schemes.
void initialize(Module& m, InitScheme scheme, Generator& gen);

}  // namespace rotor::nn
