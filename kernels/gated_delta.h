// The gated delta rule (Gated DeltaNet), docs/gated_deltanet.md: raw kernels in two evaluation
// orders and their plain reference loops.
//
// Per batch b and head h, with state S_t (K x V, fla's layout), a scalar log-decay g_t <= 0 and a
// scalar write strength beta_t per step:
//
//     S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T      o_t = scale S_t^T q_t
//
// i.e. the state is decayed, then the value it predicts for k_t is moved towards v_t by beta_t.
// q and k are expected L2-normalised (the layer does it); beta in (0, 1), or (0, 2) for the
// negative-eigenvalue variant. Neither is checked: the kernels compute the formula for any input.
//
// Layouts (row-major, contiguous):
//     q, k, dq, dk        : (B,T,H,K)      v, o, dv, do : (B,T,H,V)
//     g, beta, dg, dbeta  : (B,T,H)
//     h0, ht, dh0, dht    : (B,H,K,V)      (initial state, final state and their gradients)
//
// Nullable pointers as in kernels/gla.h: h0 (zero initial state), ht (final state not wanted), dht
// (no gradient on the final state), dh0 (not wanted; when given it is written even if h0 is null).
// Every other pointer is required, and no output may alias an input.
// Contract: forward and backward WRITE every non-null output (they never accumulate).
// Bad sizes throw rotor::Error. Results are bit-identical on any number of threads.
//
//   recurrent  — the loop above, vectorised along V; also the one-token decoding step.
//   chunked    — chunks of C steps in the WY/UT form: a unit lower-triangular C x C solve by
//                forward substitution, then matrix products; states passed across chunks.
#pragma once
#include <cstdint>

#include "rotor/kernels/gla.h"  // GlaDims: the same (B, T, H, K, V) sizes

namespace rotor::kernels {

// ---- recurrent --------------------------------------------------------------------------------

template <class T>
void gated_delta_recurrent_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                   const T* beta, const T* h0, T* o, T* ht, T scale);

// Memory O(sqrt(T) K V) per sequence: states checkpointed every ~sqrt(T) steps, recomputed one
// segment at a time.
template <class T>
void gated_delta_recurrent_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                    const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                    T* dv, T* dg, T* dbeta, T* dh0, T scale);

// ---- chunked ----------------------------------------------------------------------------------
//
// Same function, chunk by chunk with OpenBLAS (any chunk >= 1; T need not be a multiple).
// Decays enter only as exp(b_i - b_j), j <= i, and exp(b_i), b the within-chunk cumulative sum of
// g (taken in float64): exponents are <= 0, so gates down to g = -30 and below underflow
// harmlessly. Parallel over sequences (b, h).

//
// The backward needs, per chunk of every sequence, the state entering it and three products of
// the forward (M^-1, [W | U] and the written values): K V + C^2 + C (K + 2V) numbers per chunk.
// Without `saved` it recomputes them in a first pass; a forward given `saved` (of
// gated_delta_chunked_saved_size elements) keeps them there and a backward given the same
// buffer skips that pass. Both ways give bit-identical gradients.

constexpr int64_t kGatedDeltaDefaultChunk = 64;

int64_t gated_delta_chunked_saved_size(const GlaDims& d, int64_t chunk = kGatedDeltaDefaultChunk);

template <class T>
void gated_delta_chunked_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                 const T* beta, const T* h0, T* o, T* ht, T scale,
                                 int64_t chunk = kGatedDeltaDefaultChunk, T* saved = nullptr);

template <class T>
void gated_delta_chunked_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                  const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                  T* dv, T* dg, T* dbeta, T* dh0, T scale,
                                  int64_t chunk = kGatedDeltaDefaultChunk, const T* saved = nullptr);

// ---- plain references (the oracles of the tests) ----------------------------------------------
//
// Scalar loops straight from the definition; backward stores all T states (O(T K V) memory).

template <class T>
void gated_delta_forward_reference(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                   const T* beta, const T* h0, T* o, T* ht, T scale);

template <class T>
void gated_delta_backward_reference(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                    const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                    T* dv, T* dg, T* dbeta, T* dh0, T scale);

}  // namespace rotor::kernels
