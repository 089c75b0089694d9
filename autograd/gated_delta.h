// The gated delta rule (docs/gated_deltanet.md), fla's layout: q, k [B, T, H, K]; v [B, T, H, V];
// g (log-decays <= 0) and beta [B, T, H]; states [B, H, K, V].
//   S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,   o_t = scale S_t^T q_t
// q and k are used as given: the GatedDeltaNet layer L2-normalises them first.
#pragma once
#include "rotor/autograd/ops.h"
#include "rotor/kernels/gated_delta.h"

namespace rotor {

struct GatedDeltaOut {
  Tensor o;            // [B, T, H, V]
  Tensor final_state;  // [B, H, K, V]
};

// scale <= 0 means K^-1/2. initial_state: [B, H, K, V] or undefined (zeros). Gradients flow to
// q, k, v, g, beta and the initial state, and may arrive on the final state.
GatedDeltaOut gated_delta_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                    const Tensor& beta, double scale = -1, const Tensor& initial_state = Tensor());
// The same function in the chunked WY form (the fast one for training).
GatedDeltaOut gated_delta_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                  const Tensor& beta, double scale = -1, const Tensor& initial_state = Tensor(),
                                  int64_t chunk_size = kernels::kGatedDeltaDefaultChunk);

// The recurrence written with ordinary ops, one step at a time: the reference.
GatedDeltaOut gated_delta_unfused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                  const Tensor& beta, double scale = -1, const Tensor& initial_state = Tensor());

}  // namespace rotor
