// Stateless building blocks of the layers, composed from differentiable ops.
#pragma once
#include "rotor/autograd/fused.h"

namespace rotor::nn {

// linear(x, W, b) and l2_norm(x, eps) are the fused ops of autograd/fused.h.

// rms_norm is the fused op of autograd/ops.h; this is its composition from elementwise ops.
Tensor rms_norm_unfused(const Tensor& x, const Tensor& weight, double eps);

// Causal depthwise convolution over time. x: [B, T, C]; weight: [C, 1, W] (PyTorch Conv1d);
// bias: [C] or undefined; history: [B, W-1, C] inputs preceding x (undefined = zeros).
// Returns y [B, T, C] and the last W-1 inputs, which continue the sequence.
struct ConvResult {
  Tensor y;
  Tensor history;
};
ConvResult short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history, bool silu_after);

}  // namespace rotor::nn
