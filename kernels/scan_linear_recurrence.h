// The diagonal linear recurrence h_t = a_t ⊙ h_{t-1} + b_t, per channel, forward and backward,
// on the blocked parallel scan of kernels/scan.h. The pairs (a, b) compose associatively:
// (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2).
// V = float, double, std::complex<float>, std::complex<double> (a and b of the same type).
// Vectorized across channels when C > 1 and across time when C = 1.
//
// Complex gradient convention (rotor-wide): for a complex value z the stored gradient is
//   dz = dL/dRe(z) + i dL/dIm(z)
// of the real loss L. The chain rule then conjugates: for h = a * x, dx = conj(a) * dh and
// da = conj(x) * dh. For real V every conj is the identity and these are ordinary gradients.
//
// Magnitudes |a| <= 1 are the intended use (decays, rotations): blocks compose products of many
// a's, which would overflow where a sequential loop might not if |a| >> 1 over long spans.
#pragma once
#include <cstdint>

namespace rotor::kernels {

// a, b, h: (B, T, C); h0, hT: (B, C) or nullptr.
//   h_t = a_t * h_{t-1} + b_t  with h_{-1} = h0 (zero when nullptr); hT (if given) = h_{T-1}.
// WRITES h and hT. h may alias a or b.
template <class V>
void linear_recurrence_forward(const V* a, const V* b, const V* h0, V* h, V* hT, int64_t B, int64_t T,
                               int64_t C);

// Backward of linear_recurrence_forward, given its inputs a, h0 and its output h.
// dh: (B, T, C) upstream gradient on every h_t (nullptr: zero); dhT: (B, C) upstream gradient on
// the final state (nullptr: zero). It is a reverse recurrence:
//   g_t   = dh_t + conj(a_{t+1}) * g_{t+1},   g_{T-1} = dh_{T-1} + dhT
//   db_t  = g_t
//   da_t  = g_t * conj(h_{t-1})               (h_{-1} = h0, or zero)
//   dh0   = conj(a_0) * g_0
// WRITES da, db: (B, T, C) and dh0: (B, C) (skipped when nullptr). db may alias dh; no other
// output may alias an input.
template <class V>
void linear_recurrence_backward(const V* a, const V* h0, const V* h, const V* dh, const V* dhT, V* da, V* db,
                                V* dh0, int64_t B, int64_t T, int64_t C);

// Plain sequential loops over t (std::complex arithmetic for complex V).
template <class V>
void linear_recurrence_forward_reference(const V* a, const V* b, const V* h0, V* h, V* hT, int64_t B,
                                         int64_t T, int64_t C);
template <class V>
void linear_recurrence_backward_reference(const V* a, const V* h0, const V* h, const V* dh, const V* dhT,
                                          V* da, V* db, V* dh0, int64_t B, int64_t T, int64_t C);

}  // namespace rotor::kernels
