// Row-wise normalisations over the last dim, one pass forward and one backward per row:
//   rms_norm        y = x * rstd * w                 rstd = (mean(x^2) + eps)^-1/2
//   gated_rms_norm  y = x * rstd * w * silu(gate)    (GLA's output norm)
//   l2_norm         y = x * rstd                     rstd = (sum(x^2) + eps)^-1/2
//   layer_norm      y = (x - mean) * rstd * w + b    rstd = (mean((x - mean)^2) + eps)^-1/2
#pragma once
#include <cstdint>

namespace rotor::kernels {

// x, y: (N, D); w: (D); rstd: (N), written for the backward.
template <class T>
void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t D, T eps);

// Writes dx (N, D) and dw (D):
//   dx = rstd * (w*dy) - x * rstd^3 / D * sum(w*dy*x),   dw = sum over rows of dy * x * rstd.
// dw is reduced over fixed blocks of rows in a fixed order (deterministic on any thread count).
template <class T>
void rms_norm_backward(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, int64_t N, int64_t D);

// gate: (N, D). The backward is rms_norm's with dy replaced by dy * silu(gate), and writes
// dgate = dy * x * rstd * w * silu'(gate).
template <class T>
void gated_rms_norm_forward(const T* x, const T* w, const T* gate, T* y, T* rstd, int64_t N, int64_t D, T eps);
template <class T>
void gated_rms_norm_backward(const T* x, const T* w, const T* gate, const T* rstd, const T* dy, T* dx, T* dw,
                             T* dgate, int64_t N, int64_t D);

// dx = rstd * dy - x * rstd^3 * sum(dy*x).
template <class T>
void l2_norm_forward(const T* x, T* y, T* rstd, int64_t N, int64_t D, T eps);
template <class T>
void l2_norm_backward(const T* x, const T* rstd, const T* dy, T* dx, int64_t N, int64_t D);

// x, y: (N, D); w, b: (D) or null (ones / zeros); mean, rstd: (N), written for the backward.
// The variance is the biased one (divided by D) and is computed from x - mean (two passes).
template <class T>
void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t N, int64_t D, T eps);

// Writes dx (N, D) and, when not null, dw and db (D). With xh = (x - mean) * rstd, g = dy * w:
//   dx = rstd * (g - mean(g) - xh * mean(g * xh)),   dw = sum over rows of dy * xh,   db = sum of dy.
// dw and db are reduced over fixed blocks of rows in a fixed order (deterministic on any thread count).
template <class T>
void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx, T* dw, T* db,
                         int64_t N, int64_t D);

}  // namespace rotor::kernels
