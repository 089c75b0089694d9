// Causal softmax attention (docs/attention.md) on [B, T, H, D] tensors (flash-attn's layout).
#pragma once
#include "rotor/autograd/ops.h"

namespace rotor {

// softmax(q k^T * scale + causal mask) v. q: [B, Tq, H, D]; k: [B, Tk, H, D]; v: [B, Tk, H, Dv].
// Queries align with the end of the keys (query i sees key j iff j <= i + Tk - Tq), which is
// training when Tq == Tk and decoding against a cache otherwise. scale <= 0 means D^-1/2.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale = -1, bool causal = true);
// The O(T^2) version from ordinary ops: the reference.
Tensor attention_unfused(const Tensor& q, const Tensor& k, const Tensor& v, double scale = -1, bool causal = true);

}  // namespace rotor
