#include "rotor/autograd/gla.h"


#include "rotor/autograd/gradcheck.h"
#include "rotor/kernels/gla.h"

namespace rotor {

namespace {
double resolve_scale(double scale, const Tensor& q) { return scale > 0 ? scale : kernels::gla_default_scale<double>(q.size(-1)); }

void check_gla(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& h0, const char* op) {
  ROTOR_CHECK(q.dim() == 4 && k.shape() == q.shape() && g.shape() == q.shape() && v.dim() == 4 &&
                  v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2),
              op, "expected q, k, g [B, T, H, K] and v [B, T, H, V], got q ", shape_str(q.shape()), ", k ",
              shape_str(k.shape()), ", g ", shape_str(g.shape()), ", v ", shape_str(v.shape()));
  if (h0.defined()) {
    Shape want{q.size(0), q.size(2), q.size(3), v.size(3)};
    ROTOR_CHECK(h0.shape() == want, op, "initial_state ", shape_str(h0.shape()), " should be ", shape_str(want));
  }
}
}  // namespace

GlaOut gla_unfused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale,
                   const Tensor& initial_state) {
  check_gla(q, k, v, g, initial_state, "gla");
  const double s = resolve_scale(scale, q);
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), K = q.size(3), V = v.size(3);
  Tensor S = initial_state.defined() ? initial_state : zeros({B, H, K, V}, q.dtype());
  TensorList outs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor kt = select(k, 1, t), vt = select(v, 1, t);
    S = S * unsqueeze(exp(select(g, 1, t)), -1) + unsqueeze(kt, -1) * unsqueeze(vt, -2);
    outs.push_back(squeeze(matmul(unsqueeze(select(q, 1, t) * s, -2), S), -2));  // [B, H, V]
  }
  return {stack(outs, 1), S};
}

namespace {

enum class GlaForm { Recurrent, Chunked };

// One autograd node around the recurrent or chunked kernels (same signature, same gradients).
GlaOut gla_fused(const OpDef& op, GlaForm form, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                 const Tensor& g_in, double scale, const Tensor& h0_in, int64_t chunk) {
  check_gla(q_in, k_in, v_in, g_in, h0_in, op.name);
  for (const Tensor* t : {&k_in, &v_in, &g_in, &h0_in})
    ROTOR_CHECK(!t->defined() || t->dtype() == q_in.dtype(), op.name, "dtype mismatch: ", dtype_name(q_in.dtype()),
                " vs ", dtype_name(t->dtype()));
  ROTOR_CHECK(chunk > 0, op.name, "chunk size must be positive, got ", chunk);
  const kernels::GlaDims d{q_in.size(0), q_in.size(1), q_in.size(2), q_in.size(3), v_in.size(3)};
  const double s = resolve_scale(scale, q_in);
  Tensor q = core::contiguous(q_in), k = core::contiguous(k_in), v = core::contiguous(v_in), g = core::contiguous(g_in);
  Tensor h0 = h0_in.defined() ? core::contiguous(h0_in) : Tensor();
  Tensor o = Tensor::empty({d.B, d.T, d.H, d.V}, q.dtype()), ht = Tensor::empty({d.B, d.H, d.K, d.V}, q.dtype());
  const bool grad = needs_grad({q_in, k_in, v_in, g_in, h0_in});
  // The chunked forward keeps the chunk states, which its backward would otherwise recompute.
  Tensor saved = form == GlaForm::Chunked && grad
                     ? Tensor::empty({kernels::gla_chunked_saved_size(d, chunk)}, q.dtype())
                     : Tensor();
  dispatch_float(q.dtype(), op.name, [&](auto tag) {
    using T = decltype(tag);
    if (form == GlaForm::Recurrent)
      kernels::gla_recurrent_forward<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(), h0.data_or_null<T>(),
                                        o.data<T>(), ht.data<T>(), T(s));
    else
      kernels::gla_chunked_forward<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(), h0.data_or_null<T>(),
                                      o.data<T>(), ht.data<T>(), T(s), chunk, saved.data_or_null<T>());
  });
  if (grad)
    record(op, {q_in, k_in, v_in, g_in, h0_in}, {o, ht},
           [sq = save(q), sk = save(k), sv = save(v), sg = save(g), sh = save(h0), saved, d, s, form, chunk](
               const TensorList& grads, const std::vector<bool>& needs) {
             const Tensor &qv = sq.get(), &kv = sk.get(), &vv = sv.get(), &gv = sg.get(), &hv = sh.get();
             Tensor dout = core::contiguous(grads[0]), dht = core::contiguous(grads[1]);
             // The kernels write all of dq, dk, dv, dg; only dh0 is optional.
             Tensor dq = empty_like(qv), dk = empty_like(kv), dv = empty_like(vv), dg = empty_like(gv);
             Tensor dh0 = needs[4] ? Tensor::empty({d.B, d.H, d.K, d.V}, qv.dtype()) : Tensor();
             dispatch_float(qv.dtype(), "gla", [&](auto tag) {
               using T = decltype(tag);
               if (form == GlaForm::Recurrent)
                 kernels::gla_recurrent_backward<T>(d, qv.data<T>(), kv.data<T>(), vv.data<T>(), gv.data<T>(),
                                                    hv.data_or_null<T>(), dout.data<T>(), dht.data<T>(), dq.data<T>(),
                                                    dk.data<T>(), dv.data<T>(), dg.data<T>(), dh0.data_or_null<T>(), T(s));
               else
                 kernels::gla_chunked_backward<T>(d, qv.data<T>(), kv.data<T>(), vv.data<T>(), gv.data<T>(),
                                                  hv.data_or_null<T>(), dout.data<T>(), dht.data<T>(), dq.data<T>(),
                                                  dk.data<T>(), dv.data<T>(), dg.data<T>(), dh0.data_or_null<T>(), T(s),
                                                  chunk, saved.data_or_null<T>());
             });
             return TensorList{dq, dk, dv, dg, dh0};
           });
  return {o, ht};
}
}  // namespace

static const OpDef kGlaRecurrent{"gla_recurrent"}, kGlaChunked{"gla_chunked"}, kGlaComplex{"gla_complex_recurrent"};

GlaOut gla_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale,
                     const Tensor& initial_state) {
  return gla_fused(kGlaRecurrent, GlaForm::Recurrent, q, k, v, g, scale, initial_state, 1);
}

GlaOut gla_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale,
                   const Tensor& initial_state, int64_t chunk_size) {
  return gla_fused(kGlaChunked, GlaForm::Chunked, q, k, v, g, scale, initial_state, chunk_size);
}

GlaOut gla_complex_recurrent(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& g_in,
                             const Tensor& dtheta_in, double scale, const Tensor& h0_in) {
  const char* op = kGlaComplex.name;
  ROTOR_CHECK(q_in.dim() == 4 && q_in.size(3) % 2 == 0, op, "q must be [B, T, H, K] with even K, got ",
              shape_str(q_in.shape()));
  const int64_t R = q_in.size(3) / 2;
  Shape pairs{q_in.size(0), q_in.size(1), q_in.size(2), R};
  ROTOR_CHECK(g_in.shape() == pairs && dtheta_in.shape() == pairs, op, "g and dtheta must be ", shape_str(pairs),
              ", got ", shape_str(g_in.shape()), " and ", shape_str(dtheta_in.shape()));
  check_gla(q_in, k_in, v_in, /*g=*/q_in, h0_in, op);  // g has its own pair shape, checked above
  const kernels::GlaDims d{q_in.size(0), q_in.size(1), q_in.size(2), q_in.size(3), v_in.size(3)};
  const double s = resolve_scale(scale, q_in);
  Tensor q = core::contiguous(q_in), k = core::contiguous(k_in), v = core::contiguous(v_in), g = core::contiguous(g_in);
  Tensor th = core::contiguous(dtheta_in), h0 = h0_in.defined() ? core::contiguous(h0_in) : Tensor();
  Tensor o = Tensor::empty({d.B, d.T, d.H, d.V}, q.dtype()), ht = Tensor::empty({d.B, d.H, d.K, d.V}, q.dtype());
  dispatch_float(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernels::gla_complex_recurrent_forward<T>(d, q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(), th.data<T>(),
                                              h0.data_or_null<T>(), o.data<T>(), ht.data<T>(), T(s));
  });
  if (needs_grad({q_in, k_in, v_in, g_in, dtheta_in, h0_in}))
    record(kGlaComplex, {q_in, k_in, v_in, g_in, dtheta_in, h0_in}, {o, ht},
           [sq = save(q), sk = save(k), sv = save(v), sg = save(g), st = save(th), sh = save(h0), d, s](
               const TensorList& grads, const std::vector<bool>& needs) {
             const Tensor &qv = sq.get(), &kv = sk.get(), &vv = sv.get(), &gv = sg.get(), &tv = st.get(), &hv = sh.get();
             Tensor dout = core::contiguous(grads[0]), dht = core::contiguous(grads[1]);
             Tensor dq = empty_like(qv), dk = empty_like(kv), dv = empty_like(vv), dg = empty_like(gv), dth = empty_like(tv);
             Tensor dh0 = needs[5] ? Tensor::empty({d.B, d.H, d.K, d.V}, qv.dtype()) : Tensor();
             dispatch_float(qv.dtype(), "gla_complex_recurrent", [&](auto tag) {
               using T = decltype(tag);
               kernels::gla_complex_recurrent_backward<T>(d, qv.data<T>(), kv.data<T>(), vv.data<T>(), gv.data<T>(),
                                                          tv.data<T>(), hv.data_or_null<T>(), dout.data<T>(), dht.data<T>(),
                                                          dq.data<T>(), dk.data<T>(), dv.data<T>(), dg.data<T>(),
                                                          dth.data<T>(), dh0.data_or_null<T>(), T(s));
             });
             return TensorList{dq, dk, dv, dg, dth, dh0};
           });
  return {o, ht};
}

ROTOR_GRADCHECK({"gla_recurrent", {input({2, 5, 2, 3}), transposed({2, 5, 2, 3}), input({2, 5, 2, 2}), input({2, 5, 2, 3}, -3.0, 0.0), input({2, 2, 3, 2})},
                 [](auto& x) {
                   auto r = gla_recurrent(x[0], x[1], x[2], x[3], -1, x[4]);
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gla_chunked", {input({1, 11, 2, 3}), input({1, 11, 2, 3}), sliced({1, 11, 2, 4}), input({1, 11, 2, 3}, -3.0, 0.0), input({1, 2, 3, 4})},
                 [](auto& x) {
                   auto r = gla_chunked(x[0], x[1], x[2], x[3], 0.8, x[4], 4);  // chunks of 4: a ragged last chunk
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gla_chunked_no_initial_state", {input({1, 9, 1, 2}), input({1, 9, 1, 2}), input({1, 9, 1, 3}), input({1, 9, 1, 2}, -30.0, 0.0)},
                 [](auto& x) {
                   auto r = gla_chunked(x[0], x[1], x[2], x[3], -1, Tensor(), 3);  // strong gates
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gla_complex_recurrent", {input({1, 4, 2, 4}), input({1, 4, 2, 4}), input({1, 4, 2, 3}), input({1, 4, 2, 2}, -2.0, 0.0), input({1, 4, 2, 2}), input({1, 2, 4, 3})},
                 [](auto& x) {
                   auto r = gla_complex_recurrent(x[0], x[1], x[2], x[3], x[4], -1, x[5]);
                   return TensorList{r.o, r.final_state};
                 }});
ROTOR_GRADCHECK({"gla_unfused", {input({1, 3, 2, 2}), input({1, 3, 2, 2}), input({1, 3, 2, 3}), input({1, 3, 2, 2}, -2.0, 0.0), input({1, 2, 2, 3})},
                 [](auto& x) {
                   auto r = gla_unfused(x[0], x[1], x[2], x[3], -1, x[4]);
                   return TensorList{r.o, r.final_state};
                 }});

}  // namespace rotor
