// Rotations of head vectors read as complex numbers (docs/rotations.md).
//
// A row x of D = 2R numbers holds R complex numbers z_r; rotating it by angles θ (R) multiplies
// z_r by e^{iθ_r}. The default half-split layout reads z_r = x[r] + i·x[r+R]; the interleaved
// layout z_r = x[2r] + i·x[2r+1] is an explicit option.
#pragma once
#include <cstdint>

namespace rotor::kernels {

enum class RotaryLayout { HalfSplit, Interleaved };

// The shape of a pair of rotated tensors q, k: (B,T,H,D), R = D/2 complex numbers per head.
struct RopeShape {
  int64_t B, T, H, D;
};

// x, out: (N, D), theta: (N, R), R = D/2. out = x rotated row by row; out may alias x.
template <class T>
void rotary_forward(T* out, const T* x, const T* theta, int64_t N, int64_t D,
                    RotaryLayout layout = RotaryLayout::HalfSplit);

// dout, x, dx: (N, D), theta, dtheta: (N, R). WRITES dx = dout rotated by −θ and
// dθ_r = g[r]·(−x[r]·sin − x[r+R]·cos) + g[r+R]·(x[r]·cos − x[r+R]·sin) (g = dout, half-split
// shown). Either output may be null (not wanted); dx may alias dout.
template <class T>
void rotary_backward(T* dx, T* dtheta, const T* dout, const T* x, const T* theta, int64_t N, int64_t D,
                     RotaryLayout layout = RotaryLayout::HalfSplit);

// Plain scalar loops (std::sin/std::cos), the oracles of the two kernels above. Same contracts.
template <class T>
void rotary_forward_reference(T* out, const T* x, const T* theta, int64_t N, int64_t D,
                              RotaryLayout layout = RotaryLayout::HalfSplit);
template <class T>
void rotary_backward_reference(T* dx, T* dtheta, const T* dout, const T* x, const T* theta, int64_t N, int64_t D,
                               RotaryLayout layout = RotaryLayout::HalfSplit);

}  // namespace rotor::kernels
