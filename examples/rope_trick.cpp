// examples/rope_trick — Selective RoPE inside gated linear attention is a complex-valued linear
// recurrence (docs/gla.md, "the RoPE trick"). This program computes both sides and prints how far
// apart they are.
//
//   build/examples/rope_trick
//
// Read each pair (x[r], x[r + K/2]) of a query or key as one complex number z. Give both
// coordinates of a pair the same decay γ_t = exp(g_t). Then
//
//   real side:    rotate q, k by the accumulated angles θ_t = Σ_{s≤t} Δθ_s (Selective RoPE),
//                 run ordinary GLA:  S_t = diag(γ_t) S_{t-1} + k'_tᵀ v_t,   o_t = scale q'_t S_t
//   complex side: h_t = (γ_t e^{-iΔθ_t}) ⊙ h_{t-1} + z_{k,t} v_tᵀ,   o_t = scale Re(conj(z_{q,t})ᵀ h_t)
//
// In the complex transition γ e^{-iΔθ}, the real magnitude γ forgets (as GLA's gate does) and the
// unit-modulus phase e^{-iΔθ} rotates the stored keys backwards, so that a query rotated to θ_t
// meets each key at the relative angle θ_t - θ_s: exactly what rotating q and k did on the real side.
#include <cstdio>

#include "rotor/autograd/gla.h"
#include "rotor/autograd/rope.h"

using namespace rotor;

int main() {
  const int64_t B = 2, T = 64, H = 4, K = 16, V = 8, R = K / 2;
  Generator gen(7);
  const DType f64 = DType::Float64;
  Tensor q = randn({B, T, H, K}, gen, f64), k = randn({B, T, H, K}, gen, f64), v = randn({B, T, H, V}, gen, f64);
  Tensor g = logsigmoid(randn({B, T, H, R}, gen, f64));      // one log-decay per complex pair
  Tensor dtheta = rand({B, T, H, R}, gen, f64, -0.5, 0.5);   // angle increments, input-dependent in a model

  // Real side: Selective RoPE (φ = Δθ, unit temperature), then GLA with the decay tied per pair.
  SelectiveRopeOut rotated = selective_rope(q, k, dtheta, ones({R}, f64));
  Tensor o_real = gla_recurrent(rotated.q, rotated.k, v, concat({g, g}, -1)).o;

  // Complex side: the diagonal complex recurrence on the unrotated q and k.
  Tensor o_complex = gla_complex_recurrent(q, k, v, g, dtheta).o;

  const double diff = max(abs(o_real - o_complex)).item(), size = max(abs(o_real)).item();
  std::printf("outputs [B=%lld, T=%lld, H=%lld, V=%lld], largest |o| = %.3f\n", (long long)B, (long long)T,
              (long long)H, (long long)V, size);
  std::printf("max |o_real - o_complex| = %.3e  (%s 1e-10)\n", diff, diff < 1e-10 ? "below" : "NOT below");
  return diff < 1e-10 ? 0 : 1;
}
