// Row-wise RMS normalisation: y = x * rstd * w with rstd = (mean(x^2) + eps)^-1/2.
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

}  // namespace rotor::kernels
