// Fused ops of the layers: each one node with one kernel pass forward and one backward, in place
// of a chain of elementwise ops. Every fused op has its composition from ordinary ops beside it
// (the *_unfused twin), which the tests hold it to, and a gradcheck registry case.
#pragma once
#include "rotor/autograd/ops.h"

namespace rotor {

// y = x W^T + b for W [out, in] (PyTorch's layout), b [out] or undefined, x [..., in]. One GEMM
// forward (the bias enters as its initial C), two backward; dW comes out in W's layout.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
Tensor linear_unfused(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// SwiGLU on h = [gate | up] along the last dim, h [..., 2I] -> silu(gate) * up [..., I].
Tensor swiglu(const Tensor& h);
Tensor swiglu_unfused(const Tensor& h);

// rms_norm(x, weight, eps) * silu(gate): GLA's gated output norm. gate has x's shape.
Tensor gated_rms_norm(const Tensor& x, const Tensor& weight, const Tensor& gate, double eps);
Tensor gated_rms_norm_unfused(const Tensor& x, const Tensor& weight, const Tensor& gate, double eps);

// x / sqrt(sum(x^2, -1) + eps).
Tensor l2_norm(const Tensor& x, double eps = 1e-6);
Tensor l2_norm_unfused(const Tensor& x, double eps = 1e-6);

// Causal depthwise convolution over time, then silu when asked. x [B, T, C]; weight [C, 1, W]
// (PyTorch Conv1d); bias [C] or undefined; history [B, W-1, C]: the inputs preceding x
// (undefined = zeros). Differentiable in all four.
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history, bool silu);
Tensor causal_conv1d_unfused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history,
                             bool silu);

}  // namespace rotor
