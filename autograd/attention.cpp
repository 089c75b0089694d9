#include "rotor/autograd/attention.h"

#include <cmath>

#include "rotor/autograd/gradcheck.h"
#include "rotor/kernels/attention.h"

namespace rotor {

namespace {
// Checks q [B, Tq, H, D], k [B, Tk, H, D], v [B, Tk, H, Dv] (one dtype) and the causal rule.
kernels::AttentionDims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  ROTOR_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(0) == q.size(0) && k.size(2) == q.size(2) &&
                  k.size(3) == q.size(3) && v.size(0) == q.size(0) && v.size(1) == k.size(1) && v.size(2) == q.size(2),
              "attention", "expected q [B, Tq, H, D], k [B, Tk, H, D], v [B, Tk, H, Dv]; got ", shape_str(q.shape()),
              ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
  ROTOR_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "attention", "dtype mismatch");
  const kernels::AttentionDims dims{q.size(0), q.size(1), k.size(1), q.size(2), q.size(3), v.size(3)};
  kernels::attention_check_dims("attention", dims, causal);
  return dims;
}
}  // namespace

Tensor attention_unfused(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
  const kernels::AttentionDims dims = attention_dims(q, k, v, causal);
  const int64_t Tq = dims.Tq, Tk = dims.Tk;
  const double s = scale > 0 ? scale : kernels::attention_default_scale(dims.D);
  Tensor qh = transpose(q, 1, 2), kh = transpose(k, 1, 2), vh = transpose(v, 1, 2);  // [B, H, T, D]
  Tensor scores = matmul(qh, transpose(kh, -1, -2)) * s;                             // [B, H, Tq, Tk]
  if (causal) scores = masked_fill(scores, logical_not(tril_mask(Tq, Tk, Tk - Tq)), -INFINITY);
  return transpose(matmul(softmax(scores, -1), vh), 1, 2);  // [B, Tq, H, Dv]
}

static const OpDef kAttention{"attention"};

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale, bool causal) {
  const kernels::AttentionDims dims = attention_dims(q_in, k_in, v_in, causal);
  const double s = scale > 0 ? scale : kernels::attention_default_scale(dims.D);
  const bool grad = needs_grad({q_in, k_in, v_in});
  Tensor q = core::contiguous(q_in), k = core::contiguous(k_in), v = core::contiguous(v_in);
  Tensor o = Tensor::empty({dims.B, dims.Tq, dims.H, dims.Dv}, q.dtype());
  Tensor lse = grad ? Tensor::empty({dims.B, dims.H, dims.Tq}, q.dtype()) : Tensor();
  dispatch_float(q.dtype(), "attention", [&](auto tag) {
    using T = decltype(tag);
    kernels::attention_forward<T>(o.data<T>(), grad ? lse.data<T>() : nullptr, q.data<T>(), k.data<T>(), v.data<T>(),
                                  dims, T(s), causal);
  });
  if (grad)
    record(kAttention, {q_in, k_in, v_in}, {o},
           [sq = save(q), sk = save(k), sv = save(v), so = save(o), sl = save(lse), dims, s, causal](
               const TensorList& g, auto&) {
             const Tensor &qv = sq.get(), &kv = sk.get(), &vv = sv.get();
             Tensor dout = core::contiguous(g[0]);
             Tensor dq = empty_like(qv), dk = empty_like(kv), dv = empty_like(vv);
             dispatch_float(qv.dtype(), "attention", [&](auto tag) {
               using T = decltype(tag);
               kernels::attention_backward<T>(dq.data<T>(), dk.data<T>(), dv.data<T>(), dout.data<T>(), qv.data<T>(),
                                              kv.data<T>(), vv.data<T>(), so.get().data<T>(), sl.get().data<T>(), dims,
                                              T(s), causal);
             });
             return TensorList{dq, dk, dv};
           });
  return o;
}

ROTOR_GRADCHECK({"attention", {input({2, 5, 2, 3}), transposed({2, 7, 2, 3}), input({2, 7, 2, 2})},
                 [](auto& x) { return TensorList{attention(x[0] * 2.0, x[1] * 2.0, x[2])}; }});
ROTOR_GRADCHECK({"attention_non_causal", {input({1, 3, 1, 4}), input({1, 2, 1, 4}), input({1, 2, 1, 4})},
                 [](auto& x) { return TensorList{attention(x[0], x[1], x[2], 0.7, false)}; }});
ROTOR_GRADCHECK({"attention_unfused", {input({1, 4, 2, 3}), input({1, 4, 2, 3}), transposed({1, 4, 2, 2})},
                 [](auto& x) { return TensorList{attention_unfused(x[0], x[1], x[2])}; }});

}  // namespace rotor
