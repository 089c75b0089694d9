// Prefix sums along time (Selective RoPE's phase accumulation, docs/selective_rope.md step 6, and
// its reverse for the backward), on the blocked parallel scan of kernels/scan.h.
// V = float or double. Vectorized across channels when C > 1 and across time when C = 1.
#pragma once
#include <cstdint>

namespace rotor::kernels {

// x, y: (B, T, C); init: (B, C) offset carried in from a previous segment, or nullptr (zero).
//   forward: y_t = init + x_0 + ... + x_t
//   reverse: y_t = init + x_t + ... + x_{T-1}
// The final offset for continuation is y_{T-1} (forward). y may alias x. WRITES y.
template <class V>
void cumsum_forward(const V* x, const V* init, V* y, int64_t B, int64_t T, int64_t C, bool reverse);

// dy: (B, T, C) upstream gradient of y. WRITES dx: (B, T, C) and dinit: (B, C) (skipped when
// nullptr). dx is the cumsum of dy in the opposite direction; dinit = sum over t of dy.
// dx may alias dy.
template <class V>
void cumsum_backward(const V* dy, V* dx, V* dinit, int64_t B, int64_t T, int64_t C, bool reverse);

// Plain sequential loops (accumulating in V, as the kernels do).
template <class V>
void cumsum_forward_reference(const V* x, const V* init, V* y, int64_t B, int64_t T, int64_t C, bool reverse);
template <class V>
void cumsum_backward_reference(const V* dy, V* dx, V* dinit, int64_t B, int64_t T, int64_t C, bool reverse);

}  // namespace rotor::kernels
