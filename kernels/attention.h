// Causal softmax attention, o = softmax(scale · q kᵀ + mask) v  (docs/attention.md), as raw kernels.
//
// Layouts (row-major, contiguous):
//   q: (B,Tq,H,D)   k: (B,Tk,H,D)   v: (B,Tk,H,Dv)   o, do: (B,Tq,H,Dv)   lse: (B,H,Tq)
// Causal masking aligns the queries to the END of the keys, as flash-attn does: query i may attend
// key j iff j <= i + (Tk - Tq). Tq = Tk is training, Tq = 1 against Tk cached keys is one decoding
// step, and a chunk of Tq new queries against Tk >= Tq keys is streaming. Causal calls need Tk >= Tq
// (so every query sees at least key 0). Non-causal calls attend to all Tk keys, any Tq.
// scale (> 0) is chosen by the caller; the usual one is D^-1/2 (attention_default_scale).
//
// The fast kernels are tiled with an online softmax (FlashAttention-2): memory O(T·D) per head,
// the T×T score matrix is never formed. The *_reference kernels are the plain O(T²) loops.
#pragma once
#include <cmath>
#include <cstdint>

namespace rotor::kernels {

struct AttentionDims {
  int64_t B = 0, Tq = 0, Tk = 0, H = 0, D = 0, Dv = 0;
};

inline double attention_default_scale(int64_t D) { return 1.0 / std::sqrt(double(D)); }

// Throws rotor::Error("[op] ...") unless the sizes describe a valid call (all kernels below check).
void attention_check_dims(const char* op, const AttentionDims& dims, bool causal);

// Writes o and lse[b,h,i] = log Σ_j exp(scale · q_i·k_j) over the keys query i attends to
// (the backward needs it; pass lse = nullptr when it is not wanted, e.g. when decoding).
template <class T>
void attention_forward(T* o, T* lse, const T* q, const T* k, const T* v, const AttentionDims& dims, T scale,
                       bool causal = true);

// Given the forward's o and lse and the upstream gradient dout (same shape as o), WRITES dq, dk, dv
// (same shapes as q, k, v). Deterministic: every sum has a fixed order that does not depend on the
// number of threads.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* o,
                        const T* lse, const AttentionDims& dims, T scale, bool causal = true);

// Plain loops, one query row at a time: the oracle for tests. Same contracts; the backward
// recomputes the probabilities from q, k, v itself (it needs no o or lse).
template <class T>
void attention_forward_reference(T* o, T* lse, const T* q, const T* k, const T* v, const AttentionDims& dims,
                                 T scale, bool causal = true);
template <class T>
void attention_backward_reference(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                                  const AttentionDims& dims, T scale, bool causal = true);

}  // namespace rotor::kernels
