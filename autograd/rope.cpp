#include "rotor/autograd/rope.h"


#include "rotor/autograd/gradcheck.h"
#include "rotor/core/view.h"
#include "rotor/kernels/rope.h"
#include "rotor/kernels/selective_rope.h"

namespace rotor {

namespace {
// x rotated by angles theta ([.., D/2] broadcasting against x's pairs), half-split layout.
Tensor rotate_half_split(const Tensor& x, const Tensor& theta) {
  const int64_t R = x.size(-1) / 2;
  Tensor x0 = narrow(x, -1, 0, R), x1 = narrow(x, -1, R, R);
  Tensor c = cos(theta), s = sin(theta);
  return concat({x0 * c - x1 * s, x0 * s + x1 * c}, -1);
}

void check_qk(const Tensor& q, const Tensor& k, const char* op) {
  ROTOR_CHECK(q.dim() == 4 && q.shape() == k.shape() && q.size(-1) % 2 == 0, op,
              "q and k must both be [B, T, H, D] with even D, got ", shape_str(q.shape()), " and ",
              shape_str(k.shape()));
}
}  // namespace

namespace {
void check_selective_rope(const Tensor& q, const Tensor& k, const Tensor& phi, const Tensor& temperature,
                          const Tensor& offset);
}

SelectiveRopeOut selective_rope_unfused(const Tensor& q, const Tensor& k, const Tensor& phi,
                                        const Tensor& temperature, const Tensor& offset) {
  check_selective_rope(q, k, phi, temperature, offset);
  const int64_t T = q.size(1), R = q.size(3) / 2;
  Tensor Phi = cumsum(phi, 1);
  if (offset.defined()) Phi = Phi + unsqueeze(offset, 1);
  Tensor theta = Phi * reshape(temperature, {R});
  return {rotate_half_split(q, theta), rotate_half_split(k, theta), select(Phi, 1, T - 1)};
}

namespace {
void check_selective_rope(const Tensor& q, const Tensor& k, const Tensor& phi, const Tensor& temperature,
                          const Tensor& offset) {
  check_qk(q, k, "selective_rope");
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), R = q.size(3) / 2;
  ROTOR_CHECK(phi.shape() == (Shape{B, T, H, R}), "selective_rope", "phi ", shape_str(phi.shape()), " should be ",
              shape_str({B, T, H, R}));
  ROTOR_CHECK(temperature.numel() == R, "selective_rope", "temperature has ", temperature.numel(),
              " elements, expected D/2 = ", R);
  ROTOR_CHECK(!offset.defined() || offset.shape() == (Shape{B, H, R}), "selective_rope", "offset ",
              shape_str(offset.shape()), " should be ", shape_str({B, H, R}));
  for (const Tensor* t : {&k, &phi, &temperature, &offset})
    ROTOR_CHECK(!t->defined() || t->dtype() == q.dtype(), "selective_rope", "dtype mismatch: ", dtype_name(q.dtype()),
                " vs ", dtype_name(t->dtype()));
}

}  // namespace

static const OpDef kSelectiveRope{"selective_rope"}, kRope{"rope"}, kRotate{"rotate"};

Tensor rotate(const Tensor& x_in, const Tensor& theta_in, RotaryLayout layout) {
  ROTOR_CHECK(x_in.dim() >= 1 && x_in.size(-1) % 2 == 0, "rotate", "x must end in an even dim, got ",
              shape_str(x_in.shape()));
  Shape angles = x_in.shape();
  angles.back() /= 2;
  ROTOR_CHECK(theta_in.shape() == angles && theta_in.dtype() == x_in.dtype(), "rotate", "theta ",
              shape_str(theta_in.shape()), " should be ", shape_str(angles), " for x ", shape_str(x_in.shape()));
  const int64_t D = x_in.size(-1), N = D ? x_in.numel() / D : 0;
  Tensor x = core::contiguous(x_in), theta = core::contiguous(theta_in), out = empty_like(x);
  dispatch_float(x.dtype(), "rotate", [&](auto tag) {
    using T = decltype(tag);
    kernels::rotary_forward<T>(out.data<T>(), x.data<T>(), theta.data<T>(), N, D, layout);
  });
  if (needs_grad({x_in, theta_in}))
    record(kRotate, {x_in, theta_in}, {out},
           [sx = save(x), st = save(theta), N, D, layout](const TensorList& g, const std::vector<bool>& needs) {
             const Tensor &xv = sx.get(), &tv = st.get();
             Tensor dout = core::contiguous(g[0]);
             Tensor dx = needs[0] ? empty_like(xv) : Tensor(), dtheta = needs[1] ? empty_like(tv) : Tensor();
             dispatch_float(xv.dtype(), "rotate", [&](auto tag) {
               using T = decltype(tag);
               kernels::rotary_backward<T>(dx.data_or_null<T>(),
                                           dtheta.data_or_null<T>(), dout.data<T>(), xv.data<T>(),
                                           tv.data<T>(), N, D, layout);
             });
             return TensorList{dx, dtheta};
           });
  return out;
}

SelectiveRopeOut selective_rope(const Tensor& q_in, const Tensor& k_in, const Tensor& phi_in, const Tensor& temperature,
                                const Tensor& offset_in) {
  check_selective_rope(q_in, k_in, phi_in, temperature, offset_in);
  const kernels::RopeShape shape{q_in.size(0), q_in.size(1), q_in.size(2), q_in.size(3)};
  const int64_t R = shape.D / 2;
  Tensor q = core::contiguous(q_in), k = core::contiguous(k_in), phi = core::contiguous(phi_in);
  Tensor tau = core::contiguous(core::reshape(temperature, {R}));
  Tensor offset = offset_in.defined() ? core::contiguous(offset_in) : Tensor();
  Tensor q_out = empty_like(q), k_out = empty_like(k), final_offset = Tensor::empty({shape.B, shape.H, R}, q.dtype());
  dispatch_float(q.dtype(), "selective_rope", [&](auto tag) {
    using T = decltype(tag);
    kernels::selective_rope_forward<T>(q_out.data<T>(), k_out.data<T>(), final_offset.data<T>(), q.data<T>(),
                                       k.data<T>(), phi.data<T>(), tau.data<T>(), offset.data_or_null<T>(), shape);
  });
  if (needs_grad({q_in, k_in, phi_in, temperature, offset_in}))
    record(kSelectiveRope, {q_in, k_in, phi_in, temperature, offset_in}, {q_out, k_out, final_offset},
           [sq = save(q), sk = save(k), sphi = save(phi), stau = save(tau), soff = save(offset), shape,
            tau_shape = temperature.shape()](const TensorList& g, const std::vector<bool>& needs) {
             const Tensor &qv = sq.get(), &kv = sk.get(), &phiv = sphi.get(), &tauv = stau.get(), &offv = soff.get();
             Tensor dq_out = core::contiguous(g[0]), dk_out = core::contiguous(g[1]), dfinal = core::contiguous(g[2]);
             auto maybe = [&](bool want, const Shape& s) { return want ? Tensor::empty(s, qv.dtype()) : Tensor(); };
             Tensor dq = maybe(needs[0], qv.shape()), dk = maybe(needs[1], kv.shape()), dphi = maybe(needs[2], phiv.shape());
             Tensor dtau = maybe(needs[3], tauv.shape()), doff = maybe(needs[4], {shape.B, shape.H, shape.D / 2});
             dispatch_float(qv.dtype(), "selective_rope", [&](auto tag) {
               using T = decltype(tag);
               auto out = [](Tensor& t) { return t.data_or_null<T>(); };
               kernels::selective_rope_backward<T>(out(dq), out(dk), out(dphi), out(dtau), out(doff), dq_out.data<T>(),
                                                   dk_out.data<T>(), dfinal.data<T>(), qv.data<T>(), kv.data<T>(),
                                                   phiv.data<T>(), tauv.data<T>(), offv.data_or_null<T>(), shape);
             });
             return TensorList{dq, dk, dphi, dtau.defined() ? core::reshape(dtau, tau_shape) : Tensor(), doff};
           });
  return {q_out, k_out, final_offset};
}

Tensor rope_unfused(const Tensor& x, const Tensor& freqs, int64_t position_offset) {
  ROTOR_CHECK(x.dim() == 4 && x.size(-1) == 2 * freqs.numel(), "rope", "x ", shape_str(x.shape()),
              " does not match ", freqs.numel(), " frequencies");
  const int64_t T = x.size(1);
  Tensor pos = to_dtype(arange(double(position_offset), double(position_offset + T), 1.0, DType::Float64), x.dtype());
  Tensor theta = reshape(pos, {T, 1, 1}) * reshape(freqs, {freqs.numel()});  // [T, 1, R]
  return rotate_half_split(x, theta);
}

RopeOut rope(const Tensor& q_in, const Tensor& k_in, const Tensor& freqs, int64_t position_offset) {
  check_qk(q_in, k_in, "rope");
  ROTOR_CHECK(freqs.numel() * 2 == q_in.size(3) && freqs.dtype() == q_in.dtype(), "rope", "frequencies ",
              shape_str(freqs.shape()), " (", dtype_name(freqs.dtype()), ") do not match q ", shape_str(q_in.shape()),
              " (", dtype_name(q_in.dtype()), ")");
  const kernels::RopeShape shape{q_in.size(0), q_in.size(1), q_in.size(2), q_in.size(3)};
  Tensor q = core::contiguous(q_in), k = core::contiguous(k_in), omega = core::contiguous(freqs);
  Tensor q_out = empty_like(q), k_out = empty_like(k);
  dispatch_float(q.dtype(), "rope", [&](auto tag) {
    using T = decltype(tag);
    kernels::rope_forward<T>(q_out.data<T>(), k_out.data<T>(), q.data<T>(), k.data<T>(), omega.data<T>(),
                             position_offset, shape);
  });
  if (needs_grad({q_in, k_in}))
    record(kRope, {q_in, k_in}, {q_out, k_out},
           [so = save(omega), shape, position_offset](const TensorList& g, const std::vector<bool>& needs) {
             Tensor dq_out = core::contiguous(g[0]), dk_out = core::contiguous(g[1]);
             Tensor dq = needs[0] ? empty_like(dq_out) : Tensor(), dk = needs[1] ? empty_like(dk_out) : Tensor();
             dispatch_float(dq_out.dtype(), "rope", [&](auto tag) {
               using T = decltype(tag);
               kernels::rope_backward<T>(dq.data_or_null<T>(), dk.data_or_null<T>(),
                                         dq_out.data<T>(), dk_out.data<T>(), so.get().data<T>(), position_offset, shape);
             });
             return TensorList{dq, dk};
           });
  return {q_out, k_out};
}

Tensor rope_frequencies(int64_t head_dim, double base, DType dtype) {
  ROTOR_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope_frequencies", "head_dim must be even, got ", head_dim);
  Tensor omega = Tensor::empty({head_dim / 2}, dtype);
  dispatch_float(dtype, "rope_frequencies", [&](auto tag) {
    kernels::rope_frequencies<decltype(tag)>(omega.data<decltype(tag)>(), head_dim, base);
  });
  return omega;
}

Tensor rotary_temperature(const std::string& type, double theta, int64_t head_dim, double temp_max, DType dtype) {
  ROTOR_CHECK(type == "rope" || type == "rfa", "rotary_temperature", "unknown temperature type '", type,
              "' (rope or rfa)");
  ROTOR_CHECK(head_dim > 0 && head_dim % 2 == 0, "rotary_temperature", "head_dim must be even, got ", head_dim);
  const auto kind = type == "rope" ? kernels::TemperatureType::Rope : kernels::TemperatureType::Rfa;
  Tensor t = Tensor::empty({head_dim / 2}, dtype);
  dispatch_float(dtype, "rotary_temperature", [&](auto tag) {
    kernels::rotary_temperature<decltype(tag)>(t.data<decltype(tag)>(), kind, theta, head_dim, temp_max);
  });
  return t;
}

ROTOR_GRADCHECK({"selective_rope_unfused", {input({2, 3, 2, 4}), input({2, 3, 2, 4}), input({2, 3, 2, 2}), input({2}, 0.5, 1.5), input({2, 2, 2})},
                 [](auto& x) {
                   auto r = selective_rope_unfused(x[0], x[1], x[2], x[3], x[4]);
                   return TensorList{r.q, r.k, r.final_offset};
                 }});

ROTOR_GRADCHECK({"rotate", {input({3, 2, 6}), input({3, 2, 3}, -4.0, 4.0)}, [](auto& x) {
                   return TensorList{rotate(x[0], x[1]), rotate(x[0], x[1], RotaryLayout::Interleaved)};
                 }});
ROTOR_GRADCHECK({"selective_rope", {input({2, 5, 2, 6}), transposed({2, 5, 2, 6}), input({2, 5, 2, 3}), input({1, 1, 1, 3}, 0.5, 1.5), input({2, 2, 3})},
                 [](auto& x) {
                   auto r = selective_rope(x[0], x[1], x[2], x[3], x[4]);
                   return TensorList{r.q, r.k, r.final_offset};
                 }});
ROTOR_GRADCHECK({"selective_rope_no_offset", {input({1, 70, 1, 2}), input({1, 70, 1, 2}), input({1, 70, 1, 1}, 0.0, 0.2), input({1}, 0.5, 1.5)},
                 [](auto& x) {
                   // longer than one phase chunk (64 steps) of the fused kernel
                   auto r = selective_rope(x[0], x[1], x[2], x[3]);
                   return TensorList{r.q, r.k};
                 }});
ROTOR_GRADCHECK({"rope", {input({2, 3, 2, 4}), sliced({2, 3, 2, 4})}, [](auto& x) {
                   auto r = rope(x[0], x[1], rope_frequencies(4, 10000.0, x[0].dtype()), 3);
                   return TensorList{r.q, r.k};
                 }});
ROTOR_GRADCHECK({"rope_unfused", {input({2, 3, 2, 4}), sliced({2, 3, 2, 4})}, [](auto& x) {
                   Tensor f = rope_frequencies(4, 10000.0, x[0].dtype());
                   return TensorList{rope_unfused(x[0], f, 5), rope_unfused(x[1], f, 5)};
                 }});

}  // namespace rotor
