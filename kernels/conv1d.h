// 1-D convolution in PyTorch's layout, as im2col and one GEMM per (batch, group):
//   y[b, o, t] = bias[o] + sum_{c, j} w[o, c, j] * x[b, g*Cg + c, t*stride + j*dilation - pad_left]
// with g = o / (Cout/G), Cg = Cin/G, and x read as zero outside [0, L).
#pragma once
#include <cstdint>

namespace rotor::kernels {

struct Conv1dShape {
  int64_t B, Cin, L;     // x: (B, Cin, L)
  int64_t Cout, K;       // w: (Cout, Cin/G, K)
  int64_t G = 1;         // groups
  int64_t stride = 1, dilation = 1, pad_left = 0;
  int64_t Lout;          // y: (B, Cout, Lout)
};

// Writes y; bias may be null.
template <class T>
void conv1d_forward(const T* x, const T* w, const T* bias, T* y, const Conv1dShape& s);

// Writes (not accumulates) whichever of dx (B, Cin, L), dw (Cout, Cin/G, K), dbias (Cout) is not null.
// Each output element is summed by one task in a fixed order: the same bits on any thread count.
template <class T>
void conv1d_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, const Conv1dShape& s);

// The plain loops of the formula above (the tests' and the reader's reference).
template <class T>
void conv1d_forward_reference(const T* x, const T* w, const T* bias, T* y, const Conv1dShape& s);

}  // namespace rotor::kernels
