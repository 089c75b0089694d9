// Fixed RoPE (docs/rotations.md): rotate q and k at time t by θ_{t,r} = (t + position_offset)·ω_r.
#pragma once
#include <cstdint>

#include "rotor/kernels/rotary.h"

namespace rotor::kernels {

// omega: (R), R = D/2. WRITES ω_r = base^{−2r/D} (evaluated in double, then rounded).
template <class T>
void rope_frequencies(T* omega, int64_t D, double base = 10000.0);

// q, k, q_out, k_out: (B,T,H,D); omega: (R). WRITES q_out, k_out rotated by
// θ_{t,r} = T(t + position_offset)·ω_r (the position rounded to T, then one multiply).
// k (with k_out) may be null: only q is rotated. q_out may alias q and k_out k.
template <class T>
void rope_forward(T* q_out, T* k_out, const T* q, const T* k, const T* omega, int64_t position_offset, RopeShape shape,
                  RotaryLayout layout = RotaryLayout::HalfSplit);

// WRITES dq, dk = dq_out, dk_out rotated by −θ. A null output is not computed; a null upstream
// gradient is zero (its input gradient is written as zeros). dq may alias dq_out.
template <class T>
void rope_backward(T* dq, T* dk, const T* dq_out, const T* dk_out, const T* omega, int64_t position_offset,
                   RopeShape shape, RotaryLayout layout = RotaryLayout::HalfSplit);

// Scalar loops with std::sin/std::cos, the oracles of the two kernels above. Same contracts.
template <class T>
void rope_forward_reference(T* q_out, T* k_out, const T* q, const T* k, const T* omega, int64_t position_offset,
                            RopeShape shape, RotaryLayout layout = RotaryLayout::HalfSplit);
template <class T>
void rope_backward_reference(T* dq, T* dk, const T* dq_out, const T* dk_out, const T* omega, int64_t position_offset,
                             RopeShape shape, RotaryLayout layout = RotaryLayout::HalfSplit);

}  // namespace rotor::kernels
