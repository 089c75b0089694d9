// Selective RoPE, fused (docs/selective_rope.md steps 6–8): accumulate the phases φ over time, scale them by
// the temperature and rotate q and k by the result, in one pass over memory.
//
//   Φ_t = offset + Σ_{s≤t} φ_s        θ_t = τ ⊙ Φ_t        q'_t = q_t·e^{iθ_t}, k'_t = k_t·e^{iθ_t}
//
// Summation order (the bits of Φ): time is cut into chunks of kPhaseChunk steps; chunk c's sum
// S_c is accumulated left to right from zero, the prefixes are P_0 = offset, P_{c+1} = P_c + S_c,
// and Φ_t = P_c + (φ_{c·C} + … + φ_t). Every code path (serial, parallel over batch, parallel
// along time) and the backward's recomputation follow this order, so results are bit-identical
// on any thread count and a sequence split at a chunk boundary, carried on through
// final_offset, reproduces the one-pass bits.
#pragma once
#include <cstdint>

#include "rotor/kernels/rotary.h"

namespace rotor::kernels {

constexpr int64_t kPhaseChunk = 64;

// q, k, q_out, k_out: (B,T,H,D); phi: (B,T,H,R), R = D/2; temperature: (R);
// offset, final_offset: (B,H,R).
// WRITES q_out, k_out and final_offset = Φ_{T−1} (= offset when T = 0).
// Null pointers: offset = zeros; final_offset = not wanted; k (with k_out) = only q is rotated.
// q_out may alias q and k_out k.
template <class T>
void selective_rope_forward(T* q_out, T* k_out, T* final_offset, const T* q, const T* k, const T* phi,
                            const T* temperature, const T* offset, RopeShape shape,
                            RotaryLayout layout = RotaryLayout::HalfSplit);

// Gradients of selective_rope_forward, shapes as there. With dθ_t the rotation gradient of
// docs/rotations.md summed over q and k, and dΦ_t = τ ⊙ dθ_t (+ dfinal_offset at t = T−1):
//   dq, dk    = dq_out, dk_out rotated by −θ_t
//   dphi_s    = Σ_{t≥s} dΦ_t                       (B,T,H,R)
//   dtemperature_r = Σ_{b,t,h} Φ_t ⊙ dθ_t           (R)
//   doffset   = Σ_t dΦ_t                           (B,H,R)
// WRITES every non-null output; a null output is not computed. Null upstream gradients
// (dq_out, dk_out, dfinal_offset) are zeros. q (k) is needed when dq_out (dk_out) is given and
// dphi, dtemperature or doffset is wanted. dq may alias dq_out and dk dk_out (not q, k).
// Φ is recomputed in the forward's order; the dtemperature reduction runs over fixed
// (batch, chunk) partials in a fixed order.
template <class T>
void selective_rope_backward(T* dq, T* dk, T* dphi, T* dtemperature, T* doffset, const T* dq_out, const T* dk_out,
                             const T* dfinal_offset, const T* q, const T* k, const T* phi, const T* temperature,
                             const T* offset, RopeShape shape, RotaryLayout layout = RotaryLayout::HalfSplit);

// Unfused scalar loops — plain running sum, multiply, std::sin/std::cos rotation, reverse
// running sum — the oracles of the two kernels above. Same contracts.
template <class T>
void selective_rope_forward_reference(T* q_out, T* k_out, T* final_offset, const T* q, const T* k, const T* phi,
                                      const T* temperature, const T* offset, RopeShape shape,
                                      RotaryLayout layout = RotaryLayout::HalfSplit);
template <class T>
void selective_rope_backward_reference(T* dq, T* dk, T* dphi, T* dtemperature, T* doffset, const T* dq_out,
                                       const T* dk_out, const T* dfinal_offset, const T* q, const T* k, const T* phi,
                                       const T* temperature, const T* offset, RopeShape shape,
                                       RotaryLayout layout = RotaryLayout::HalfSplit);

// The temperature τ (R values, R = D/2) of docs/selective_rope.md step 7, as the reference's
// rotary_temperature(type, theta, D, temp_max) defines it (evaluated in double, then rounded):
//   Rope: τ_r = temp_max / theta^{2r/D}                          (theta >= 1, e.g. 500000)
//   Rfa:  ω = linspace(0, theta·π, R), t_r = sqrt((1 − cos ω_r) / (1 + cos ω_r)) (= tan(ω_r/2)),
//         τ_r = temp_max · t_r / max_r t_r                       (0 < theta < 1, R >= 2)
enum class TemperatureType { Rope, Rfa };

template <class T>
void rotary_temperature(T* temperature, TemperatureType type, double theta, int64_t D, double temp_max = 1.0);

}  // namespace rotor::kernels
