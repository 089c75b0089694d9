// Fused kernels of the layers around the matrix products: SwiGLU and the short causal
// depthwise convolution. Each is one pass forward and one backward over rows (SIMD along the
// channels); results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace rotor::kernels {

// SwiGLU over h = [gate | up], h: (N, 2I), y: (N, I):   y = silu(gate) * up.
// Backward writes dh = [dy * up * silu'(gate) | dy * silu(gate)], (N, 2I).
template <class T>
void swiglu_forward(const T* h, T* y, int64_t N, int64_t I);
template <class T>
void swiglu_backward(const T* h, const T* dy, T* dh, int64_t N, int64_t I);

// Causal depthwise convolution over time, optionally followed by silu:
//   z[b,t,c] = bias[c] + sum_{j<W} w[c,j] * xp[b, t + j, c],   y = silu(z) or z,
// where xp = [history ; x] along time: history (B, W-1, C) holds the inputs just before x
// (null = zeros). x, y: (B, T, C); w: (C, W); bias: (C) or null.
template <class T>
void short_conv_forward(const T* x, const T* w, const T* bias, const T* history, T* y, int64_t B, int64_t T_,
                        int64_t C, int64_t W, bool silu);
// Writes dx (B,T,C), dw (C,W), dbias (C) when non-null, dhistory (B,W-1,C) when non-null. dw and
// dbias are summed over batch rows in a fixed order.
template <class T>
void short_conv_backward(const T* x, const T* w, const T* bias, const T* history, const T* dy, T* dx, T* dw,
                         T* dbias, T* dhistory, int64_t B, int64_t T_, int64_t C, int64_t W, bool silu);

}  // namespace rotor::kernels
