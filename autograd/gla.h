// Gated linear attention (docs/gla.md), fla's layout: q, k, g [B, T, H, K]; v [B, T, H, V];
// g holds log-decays (<= 0); states [B, H, K, V].
//   S_t = diag(exp g_t) S_{t-1} + k_t^T v_t,   o_t = (scale q_t) S_t
#pragma once
#include "rotor/autograd/ops.h"
#include "rotor/kernels/gla.h"

namespace rotor {

struct GlaOut {
  Tensor o;            // [B, T, H, V]
  Tensor final_state;  // [B, H, K, V]
};

// scale <= 0 means K^-1/2. initial_state: [B, H, K, V] or undefined (zeros).
GlaOut gla_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale = -1,
                     const Tensor& initial_state = Tensor());
GlaOut gla_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale = -1,
                   const Tensor& initial_state = Tensor(), int64_t chunk_size = kernels::kGlaDefaultChunk);
// The complex-valued recurrence of docs/gla.md ("the RoPE trick"): q and k read as K/2 complex
// numbers (half-split), per-pair log-decays g and angle increments dtheta [B, T, H, K/2],
//   h_t = (exp(g_t) e^{-i dtheta_t}) ⊙ h_{t-1} + z_{k,t} v_t^T,   o_t = scale Re(conj(z_{q,t})^T h_t).
// States [B, H, K, V] hold Re h in rows r < K/2 and Im h in rows r + K/2.
GlaOut gla_complex_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& dtheta,
                             double scale = -1, const Tensor& initial_state = Tensor());

// The recurrence written with ordinary ops, one step at a time: the reference.
GlaOut gla_unfused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale = -1,
                   const Tensor& initial_state = Tensor());

}  // namespace rotor
