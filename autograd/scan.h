// Differentiable scans along time on [B, T, C] tensors (time is dim 1, channels contiguous),
// running on the parallel associative scan of kernels/scan.h. The plain prefix sum is cumsum
// in autograd/ops.h, which runs on the same scan.
#pragma once
#include "rotor/autograd/ops.h"

namespace rotor {

struct RecurrenceOut {
  Tensor h;            // [B, T, C]: every state
  Tensor final_state;  // [B, C]: h at the last step
};

// h_t = a_t ⊙ h_{t-1} + b_t, with h_{-1} = h0 ([B, C]; undefined = zeros).
RecurrenceOut linear_recurrence(const Tensor& a, const Tensor& b, const Tensor& h0 = Tensor());

// The same recurrence over complex numbers stored as (re, im) pairs in a trailing dim of 2:
// a, b [B, T, C, 2], h0 [B, C, 2]. Gradients are those of the real storage, i.e. dL/dRe + i dL/dIm.
RecurrenceOut complex_linear_recurrence(const Tensor& a, const Tensor& b, const Tensor& h0 = Tensor());

}  // namespace rotor
