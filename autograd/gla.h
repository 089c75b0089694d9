// Gated linear attention (MATH.md §3), fla's layout: q, k, g [B, T, H, K]; v [B, T, H, V];
// g holds log-decays (<= 0); states [B, H, K, V].
//   S_t = diag(exp g_t) S_{t-1} + k_t^T v_t,   o_t = (scale q_t) S_t
#pragma once
#include "autograd/ops.h"

namespace rotor {

struct GlaOut {
  Tensor o;            // [B, T, H, V]
  Tensor final_state;  // [B, H, K, V]
};

// scale <= 0 means K^-1/2. initial_state: [B, H, K, V] or undefined (zeros).
GlaOut gla_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale = -1,
                     const Tensor& initial_state = Tensor());
GlaOut gla_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale = -1,
                   const Tensor& initial_state = Tensor(), int64_t chunk_size = 64);
// The recurrence written with ordinary ops, one step at a time: the reference.
GlaOut gla_unfused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale = -1,
                   const Tensor& initial_state = Tensor());

}  // namespace rotor
