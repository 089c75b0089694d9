#include "rotor/autograd/gated_delta.h"

#include "rotor/autograd/gradcheck.h"

namespace rotor {

namespace {
double resolve_scale(double scale, const Tensor& q) {
  return scale > 0 ? scale : kernels::gla_default_scale<double>(q.size(-1));
}

void check_gated_delta(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                       const Tensor& h0, const char* op) {
  ROTOR_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.dim() == 4 && v.size(0) == q.size(0) &&
                  v.size(1) == q.size(1) && v.size(2) == q.size(2),
              op, "expected q, k [B, T, H, K] and v [B, T, H, V], got q ", shape_str(q.shape()), ", k ",
              shape_str(k.shape()), ", v ", shape_str(v.shape()));
  const Shape steps{q.size(0), q.size(1), q.size(2)};
  ROTOR_CHECK(g.shape() == steps && beta.shape() == steps, op, "g and beta must be ", shape_str(steps), ", got ",
              shape_str(g.shape()), " and ", shape_str(beta.shape()));
  if (h0.defined()) {
    const Shape want{q.size(0), q.size(2), q.size(3), v.size(3)};
    ROTOR_CHECK(h0.shape() == want, op, "initial_state ", shape_str(h0.shape()), " should be ", shape_str(want));
  }
  for (const Tensor* t : {&k, &v, &g, &beta, &h0})
    ROTOR_CHECK(!t->defined() || t->dtype() == q.dtype(), op, "dtype mismatch: ", dtype_name(q.dtype()), " vs ",
                dtype_name(t->dtype()));
}

enum class Form { Recurrent, Chunked };

// One autograd node around the recurrent or chunked kernels (same signature, same gradients).
GatedDeltaOut gated_delta_fused(const OpDef& op, Form form, const Tensor& q_in, const Tensor& k_in,
                                const Tensor& v_in, const Tensor& g_in, const Tensor& beta_in, double scale,
                                const Tensor& h0_in, int64_t chunk) {
  check_gated_delta(q_in, k_in, v_in, g_in, beta_in, h0_in, op.name);
  ROTOR_CHECK(chunk > 0, op.name, "chunk size must be positive, got ", chunk);
  const kernels::GlaDims d{q_in.size(0), q_in.size(1), q_in.size(2), q_in.size(3), v_in.size(3)};
  const double s = resolve_scale(scale, q_in);
  Tensor q = core::contiguous(q_in), k = core::contiguous(k_in), v = core::contiguous(v_in);
  Tensor g = core::contiguous(g_in), beta = core::contiguous(beta_in);
  Tensor h0 = h0_in.defined() ? core::contiguous(h0_in) : Tensor();
  Tensor o = Tensor::empty({d.B, d.T, d.H, d.V}, q.dtype()), ht = Tensor::empty({d.B, d.H, d.K, d.V}, q.dtype());
  const bool grad = needs_grad({q_in, k_in, v_in, g_in, beta_in, h0_in});
  // The chunked forward keeps what its backward would otherwise recompute.
  Tensor saved = form == Form::Chunked && grad
                     ? Tensor::empty({kernels::gated_delta_chunked_saved_size(d, chunk)}, q.dtype())
                     : Tensor();
  dispatch_float(q.dtype(), op.name, [&](auto tag) {
    using T = decltype(tag);
    if (form == Form::Recurrent)
      kernels::gated_delta_recurrent_forward<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(),
                                                beta.data<T>(), h0.data_or_null<T>(), o.data<T>(), ht.data<T>(),
                                                T(s));
    else
      kernels::gated_delta_chunked_forward<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(),
                                              beta.data<T>(), h0.data_or_null<T>(), o.data<T>(), ht.data<T>(),
                                              T(s), chunk, saved.data_or_null<T>());
  });
  if (grad)
    record(op, {q_in, k_in, v_in, g_in, beta_in, h0_in}, {o, ht},
           [sq = save(q), sk = save(k), sv = save(v), sg = save(g), sb = save(beta), sh = save(h0), saved, d, s,
            form, chunk, name = op.name](const TensorList& grads, const std::vector<bool>& needs) {
             const Tensor &qv = sq.get(), &kv = sk.get(), &vv = sv.get(), &gv = sg.get(), &bv = sb.get(),
                          &hv = sh.get();
             Tensor dout = core::contiguous(grads[0]), dht = core::contiguous(grads[1]);
             // The kernels write all of dq, dk, dv, dg, dbeta; only dh0 is optional.
             Tensor dq = empty_like(qv), dk = empty_like(kv), dv = empty_like(vv), dg = empty_like(gv),
                    dbeta = empty_like(bv);
             Tensor dh0 = needs[5] ? Tensor::empty({d.B, d.H, d.K, d.V}, qv.dtype()) : Tensor();
             dispatch_float(qv.dtype(), name, [&](auto tag) {
               using T = decltype(tag);
               if (form == Form::Recurrent)
                 kernels::gated_delta_recurrent_backward<T>(
                     d, qv.data<T>(), kv.data<T>(), vv.data<T>(), gv.data<T>(), bv.data<T>(), hv.data_or_null<T>(),
                     dout.data<T>(), dht.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), dg.data<T>(),
                     dbeta.data<T>(), dh0.data_or_null<T>(), T(s));
               else
                 kernels::gated_delta_chunked_backward<T>(
                     d, qv.data<T>(), kv.data<T>(), vv.data<T>(), gv.data<T>(), bv.data<T>(), hv.data_or_null<T>(),
                     dout.data<T>(), dht.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), dg.data<T>(),
                     dbeta.data<T>(), dh0.data_or_null<T>(), T(s), chunk, saved.data_or_null<T>());
             });
             return TensorList{dq, dk, dv, dg, dbeta, dh0};
           });
  return {o, ht};
}

const OpDef kGatedDeltaRecurrent{"gated_delta_recurrent"}, kGatedDeltaChunked{"gated_delta_chunked"};
}  // namespace

GatedDeltaOut gated_delta_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                    const Tensor& beta, double scale, const Tensor& initial_state) {
  return gated_delta_fused(kGatedDeltaRecurrent, Form::Recurrent, q, k, v, g, beta, scale, initial_state, 1);
}

GatedDeltaOut gated_delta_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                  const Tensor& beta, double scale, const Tensor& initial_state, int64_t chunk_size) {
  return gated_delta_fused(kGatedDeltaChunked, Form::Chunked, q, k, v, g, beta, scale, initial_state, chunk_size);
}

GatedDeltaOut gated_delta_unfused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                  const Tensor& beta, double scale, const Tensor& initial_state) {
  check_gated_delta(q, k, v, g, beta, initial_state, "gated_delta");
  const double s = resolve_scale(scale, q);
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), K = q.size(3), V = v.size(3);
  Tensor S = initial_state.defined() ? initial_state : zeros({B, H, K, V}, q.dtype());
  TensorList outs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor kt = select(k, 1, t), vt = select(v, 1, t);                        // [B, H, K], [B, H, V]
    Tensor P = S * unsqueeze(unsqueeze(exp(select(g, 1, t)), -1), -1);        // decayed state
    Tensor u = vt - squeeze(matmul(unsqueeze(kt, -2), P), -2);                // v - P^T k
    Tensor bk = kt * unsqueeze(select(beta, 1, t), -1);
    S = P + unsqueeze(bk, -1) * unsqueeze(u, -2);
    outs.push_back(squeeze(matmul(unsqueeze(select(q, 1, t) * s, -2), S), -2));  // [B, H, V]
  }
  return {stack(outs, 1), S};
}

// k in [-0.5, 0.5] keeps |k|^2 < 1 for K = 3, so 1 - beta |k|^2 stays in (-1, 1) for beta < 2.
ROTOR_GRADCHECK({"gated_delta_recurrent",
                 {input({2, 5, 2, 3}), transposed({2, 5, 2, 3}, -0.5, 0.5), input({2, 5, 2, 2}), input({2, 5, 2}, -3.0, 0.0),
                  input({2, 5, 2}, 0.05, 0.95), input({2, 2, 3, 2})},
                 [](auto& x) {
                   auto r = gated_delta_recurrent(x[0], x[1], x[2], x[3], x[4], -1, x[5]);
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gated_delta_recurrent_negative_eigenvalues",
                 {input({1, 6, 2, 3}), input({1, 6, 2, 3}, -0.5, 0.5), input({1, 6, 2, 2}), input({1, 6, 2}, -1.0, 0.0),
                  input({1, 6, 2}, 0.1, 1.9)},
                 [](auto& x) {
                   auto r = gated_delta_recurrent(x[0], x[1], x[2], x[3], x[4], 0.7);
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gated_delta_chunked",
                 {input({1, 11, 2, 3}), input({1, 11, 2, 3}, -0.5, 0.5), sliced({1, 11, 2, 4}), input({1, 11, 2}, -3.0, 0.0),
                  input({1, 11, 2}, 0.1, 1.9), input({1, 2, 3, 4})},
                 [](auto& x) {
                   auto r = gated_delta_chunked(x[0], x[1], x[2], x[3], x[4], 0.8, x[5], 4);  // a ragged last chunk
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gated_delta_chunked_strong_gates",
                 {input({1, 9, 1, 2}), input({1, 9, 1, 2}, -0.5, 0.5), input({1, 9, 1, 3}), input({1, 9, 1}, -30.0, 0.0),
                  input({1, 9, 1}, 0.05, 0.95)},
                 [](auto& x) {
                   auto r = gated_delta_chunked(x[0], x[1], x[2], x[3], x[4], -1, Tensor(), 3);
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gated_delta_unfused",
                 {input({1, 3, 2, 2}), input({1, 3, 2, 2}, -0.5, 0.5), input({1, 3, 2, 3}), input({1, 3, 2}, -2.0, 0.0),
                  input({1, 3, 2}, 0.1, 1.9), input({1, 2, 2, 3})},
                 [](auto& x) {
                   auto r = gated_delta_unfused(x[0], x[1], x[2], x[3], x[4], -1, x[5]);
                   return TensorList{r.o, r.final_state};
                 }});

}  // namespace rotor
