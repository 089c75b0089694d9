// Stateless building blocks of the layers, composed from differentiable ops.
#pragma once
#include "rotor/autograd/ops.h"

namespace rotor::nn {

// y = x W^T (+ b): W is [out, in] (PyTorch's layout); x's leading dims are flattened so the
// whole batch is one GEMM forward and one per gradient backward.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// rms_norm is the fused op of autograd/ops.h; this is its composition from elementwise ops.
Tensor rms_norm_unfused(const Tensor& x, const Tensor& weight, double eps);
// x / sqrt(sum(x^2, -1) + eps)
Tensor l2_norm(const Tensor& x, double eps = 1e-6);

// Causal depthwise convolution over time. x: [B, T, C]; weight: [C, 1, W] (PyTorch Conv1d);
// bias: [C] or undefined; history: [B, W-1, C] inputs preceding x (undefined = zeros).
// Returns y [B, T, C] and the last W-1 inputs, which continue the sequence.
struct ConvResult {
  Tensor y;
  Tensor history;
};
ConvResult short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history, bool silu_after);

}  // namespace rotor::nn
