// Rotary position embeddings (docs/rotations.md and docs/selective_rope.md): fixed RoPE and Selective RoPE on [B, T, H, D]
// queries and keys, half-split layout (pair r is (x[r], x[r + D/2])).
#pragma once
#include <string>

#include "rotor/autograd/ops.h"
#include "rotor/kernels/rotary.h"

namespace rotor {

using kernels::RotaryLayout;  // HalfSplit (default): pair r is (x[r], x[r+D/2]); Interleaved: (x[2r], x[2r+1])

// x [..., D] rotated pair by pair by theta [..., D/2] (same leading shape); differentiable in
// both x and theta.
Tensor rotate(const Tensor& x, const Tensor& theta, RotaryLayout layout = RotaryLayout::HalfSplit);

struct SelectiveRopeOut {
  Tensor q, k;          // rotated, [B, T, H, D]
  Tensor final_offset;  // Φ at the last step, [B, H, D/2]: the offset of the next segment
};

// θ_t = τ ⊙ (offset + Σ_{s≤t} φ_s); q and k rotated by θ_t. phi: [B, T, H, D/2];
// temperature: D/2 elements (any shape); offset: [B, H, D/2] or undefined (zeros).
SelectiveRopeOut selective_rope(const Tensor& q, const Tensor& k, const Tensor& phi, const Tensor& temperature,
                                const Tensor& offset = Tensor());
// The same function from ordinary ops: the reference the fused op is tested against.
SelectiveRopeOut selective_rope_unfused(const Tensor& q, const Tensor& k, const Tensor& phi,
                                        const Tensor& temperature, const Tensor& offset = Tensor());

// Fixed RoPE: θ_{t,r} = (t + position_offset) · freqs_r; freqs: [D/2].
struct RopeOut {
  Tensor q, k;
};
RopeOut rope(const Tensor& q, const Tensor& k, const Tensor& freqs, int64_t position_offset = 0);
Tensor rope_unfused(const Tensor& x, const Tensor& freqs, int64_t position_offset = 0);

// ω_r = base^(-2r/D), r < D/2.
Tensor rope_frequencies(int64_t head_dim, double base, DType dtype = DType::Float32);
// Selective RoPE's temperature τ (docs/selective_rope.md step 7): type "rope" (theta = base >= 1) or "rfa"
// (0 < theta < 1), scaled so that its maximum is temp_max. Shape [D/2].
Tensor rotary_temperature(const std::string& type, double theta, int64_t head_dim, double temp_max,
                          DType dtype = DType::Float32);

}  // namespace rotor
