// Gated linear attention (GLA), docs/gla.md: raw kernels in three evaluation orders.
//
// Per batch b and head h, with state S_t (K x V) and log-decays g_t <= 0 per key channel:
//
//     S_t = diag(exp g_t) S_{t-1} + k_t^T v_t          o_t = (scale q_t) S_t
//
// Layouts (row-major, contiguous):
//     q, k, g, dq, dk, dg : (B,T,H,K)      v, o, dv, do : (B,T,H,V)
//     h0, ht, dh0, dht    : (B,H,K,V)      (initial state, final state and their gradients)
//
// Nullable pointers: h0 (a zero initial state), ht (final state not wanted), dht (no gradient on
// the final state), dh0 (initial-state gradient not wanted; when given it is written even if h0
// is null: it is then the gradient with respect to the zero state). Every other pointer is
// required (q, k, v, g, o; dout, dq, dk, dv, dg), and no output may alias an input.
// Contract: forward and backward WRITE every non-null output (they never accumulate).
// scale is explicit; gla_default_scale(K) = K^{-1/2} is the reference's default.
// Bad sizes (K or V < 1, negative B, T, H, chunk < 1, odd K for complex) throw rotor::Error.
// Results are bit-identical on any number of threads (partitions depend on the sizes only).
//
//   recurrent  — the loop above; also the one-token decoding step (T = 1 with a state).
//   chunked    — chunks of C steps: masked matrix products inside a chunk, state passing across.
//   complex    — the complex diagonal recurrence of the RoPE trick (see below).
#pragma once
#include <cmath>
#include <cstdint>

namespace rotor::kernels {

struct GlaDims {
  int64_t B, T, H, K, V;
};

template <class T>
T gla_default_scale(int64_t K) {
  return T(1) / std::sqrt(T(K));
}

// ---- recurrent --------------------------------------------------------------------------------

template <class T>
void gla_recurrent_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                           const T* h0, T* o, T* ht, T scale);

// Gradients of L given do = dL/do and dht = dL/dht. Memory O(sqrt(T) K V) per sequence: states
// are checkpointed every ~sqrt(T) steps and recomputed one segment at a time.
template <class T>
void gla_recurrent_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                            const T* h0, const T* dout, const T* dht, T* dq, T* dk, T* dv, T* dg,
                            T* dh0, T scale);

// ---- chunked ----------------------------------------------------------------------------------
//
// Same function as the recurrent kernels, evaluated chunk by chunk with OpenBLAS (any chunk >= 1;
// T need not be a multiple). The backward needs the K x V state entering every chunk of every
// sequence. Without `saved` it recomputes them (keeping those of the sequences being processed:
// all of them when B*H < 8, where chunks run in parallel); a forward given `saved` (of
// gla_chunked_saved_size elements: B H (chunks + 1) K V) keeps them there and a backward given
// the same buffer skips that pass. Both ways give bit-identical gradients.
// dg is a within-chunk reverse sum of q ⊙ dq - k ⊙ dk (as fla's chunk_gla): accurate to rounding
// relative to |q ⊙ dq|, so a dg that is itself ~exp(-30) times smaller is only that accurate.

constexpr int64_t kGlaDefaultChunk = 64;

int64_t gla_chunked_saved_size(const GlaDims& d, int64_t chunk = kGlaDefaultChunk);

template <class T>
void gla_chunked_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                         const T* h0, T* o, T* ht, T scale, int64_t chunk = kGlaDefaultChunk,
                         T* saved = nullptr);

template <class T>
void gla_chunked_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                          const T* h0, const T* dout, const T* dht, T* dq, T* dk, T* dv, T* dg,
                          T* dh0, T scale, int64_t chunk = kGlaDefaultChunk, const T* saved = nullptr);

// ---- complex (the RoPE trick) -----------------------------------------------------------------
//
// q, k are read as R = K/2 complex numbers in the half-split layout, z_r = x[r] + i x[r+R], and
// the state h_t in C^{R x V} is stored the same way: rows r and r+R of a (K,V) block hold its real
// and imaginary parts (so h0, ht, dh0, dht keep the (B,H,K,V) layout). Per pair r:
//
//     h_t = exp(g_t - i dtheta_t) ⊙ h_{t-1} + z_{k,t} v_t^T      o_t = scale Re(conj(z_{q,t})^T h_t)
//
//     g, dtheta, dg, ddtheta : (B,T,H,R)
//
// Equal to real GLA on q, k rotated by theta_t = cumsum(dtheta) with g tied per pair, and with the
// real state related by S_t = rotate(h_t, theta_t). Gradients of complex values are stored as
// dL/dRe + i dL/dIm (dh0 rows r and r+R), i.e. exactly the gradients of the real storage.

template <class T>
void gla_complex_recurrent_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                   const T* dtheta, const T* h0, T* o, T* ht, T scale);

template <class T>
void gla_complex_recurrent_backward(const GlaDims& d, const T* q, const T* k, const T* v,
                                    const T* g, const T* dtheta, const T* h0, const T* dout,
                                    const T* dht, T* dq, T* dk, T* dv, T* dg, T* ddtheta, T* dh0,
                                    T scale);

// ---- plain references (the oracles of the tests) ----------------------------------------------
//
// Scalar loops straight from the definitions; the backward references store all T states
// (O(T K V) memory) and take dg_t = exp(g_t) ⊙ rowsum(dS_t ⊙ S_{t-1}) directly.

template <class T>
void gla_recurrent_forward_reference(const GlaDims& d, const T* q, const T* k, const T* v,
                                     const T* g, const T* h0, T* o, T* ht, T scale);

template <class T>
void gla_recurrent_backward_reference(const GlaDims& d, const T* q, const T* k, const T* v,
                                      const T* g, const T* h0, const T* dout, const T* dht, T* dq,
                                      T* dk, T* dv, T* dg, T* dh0, T scale);

template <class T>
void gla_complex_recurrent_forward_reference(const GlaDims& d, const T* q, const T* k, const T* v,
                                             const T* g, const T* dtheta, const T* h0, T* o, T* ht,
                                             T scale);

template <class T>
void gla_complex_recurrent_backward_reference(const GlaDims& d, const T* q, const T* k,
                                              const T* v, const T* g, const T* dtheta,
                                              const T* h0, const T* dout, const T* dht, T* dq,
                                              T* dk, T* dv, T* dg, T* ddtheta, T* dh0, T scale);

}  // namespace rotor::kernels
