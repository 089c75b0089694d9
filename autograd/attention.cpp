#include "autograd/attention.h"

#include <cmath>

#include "autograd/gradcheck.h"

namespace rotor {

Tensor attention_unfused(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
  ROTOR_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(0) == q.size(0) && k.size(2) == q.size(2) &&
                  k.size(3) == q.size(3) && v.size(0) == q.size(0) && v.size(1) == k.size(1) && v.size(2) == q.size(2),
              "attention", "expected q [B, Tq, H, D], k [B, Tk, H, D], v [B, Tk, H, Dv]; got ", shape_str(q.shape()),
              ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
  const int64_t Tq = q.size(1), Tk = k.size(1);
  ROTOR_CHECK(!causal || Tq <= Tk, "attention", "causal attention needs Tq <= Tk, got ", Tq, " and ", Tk);
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(double(q.size(3)));
  Tensor qh = transpose(q, 1, 2), kh = transpose(k, 1, 2), vh = transpose(v, 1, 2);  // [B, H, T, D]
  Tensor scores = matmul(qh, transpose(kh, -1, -2)) * s;                             // [B, H, Tq, Tk]
  if (causal) scores = masked_fill(scores, logical_not(tril_mask(Tq, Tk, Tk - Tq)), -INFINITY);
  return transpose(matmul(softmax(scores, -1), vh), 1, 2);  // [B, Tq, H, Dv]
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
  return attention_unfused(q, k, v, scale, causal);
}

ROTOR_GRADCHECK({"attention_unfused", {input({1, 4, 2, 3}), input({1, 4, 2, 3}), transposed({1, 4, 2, 2})},
                 [](auto& x) { return TensorList{attention_unfused(x[0], x[1], x[2])}; }});

}  // namespace rotor
