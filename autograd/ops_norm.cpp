// Fused RMS and layer normalisation over the last dim: one node each instead of the ~16
// elementwise passes of their compositions (which stay in the tests as the references).
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/kernels/norm.h"

namespace rotor {

static const OpDef kRmsNorm{"rms_norm"}, kLayerNorm{"layer_norm"};

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  ROTOR_CHECK(x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1), "rms_norm", "input ",
              shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()));
  ROTOR_CHECK(x.dtype() == weight.dtype(), "rms_norm", "dtype mismatch: ", dtype_name(x.dtype()), " vs ",
              dtype_name(weight.dtype()));
  const int64_t D = x.size(-1), N = D ? x.numel() / D : 0;
  Tensor xc = core::contiguous(x), wc = core::contiguous(weight);
  Tensor y = Tensor::empty(x.shape(), x.dtype()), rstd = Tensor::empty({N}, x.dtype());
  dispatch_float(x.dtype(), "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    kernels::rms_norm_forward<T>(xc.data<T>(), wc.data<T>(), y.data<T>(), rstd.data<T>(), N, D, T(eps));
  });
  if (needs_grad({x, weight}))
    record(kRmsNorm, {x, weight}, {y}, [sx = save(xc), sw = save(wc), sr = save(rstd), N, D](const TensorList& g, auto&) {
      const Tensor &xv = sx.get(), &wv = sw.get();
      Tensor dy = core::contiguous(g[0]);
      Tensor dx = Tensor::empty(xv.shape(), xv.dtype()), dw = Tensor::empty({D}, xv.dtype());
      dispatch_float(xv.dtype(), "rms_norm", [&](auto tag) {
        using T = decltype(tag);
        kernels::rms_norm_backward<T>(xv.data<T>(), wv.data<T>(), sr.get().data<T>(), dy.data<T>(), dx.data<T>(),
                                      dw.data<T>(), N, D);
      });
      return TensorList{dx, dw};
    });
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  ROTOR_CHECK(x.dim() >= 1, op, "needs at least one dim, got a 0-d tensor");
  const int64_t D = x.size(-1), N = D ? x.numel() / D : 0;
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    ROTOR_CHECK(p->shape() == Shape{D}, op, p == &weight ? "weight " : "bias ", shape_str(p->shape()),
                " does not match the last dim of input ", shape_str(x.shape()));
    ROTOR_CHECK(p->dtype() == x.dtype(), op, "dtype mismatch: ", dtype_name(x.dtype()), " vs ",
                dtype_name(p->dtype()));
  }
  ROTOR_CHECK(eps >= 0, op, "eps must be non-negative, got ", eps);
  Tensor xc = core::contiguous(x);
  Tensor wc = weight.defined() ? core::contiguous(weight) : Tensor(), bc = bias.defined() ? core::contiguous(bias) : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype()), mu = Tensor::empty({N}, x.dtype()), rstd = Tensor::empty({N}, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernels::layer_norm_forward<T>(xc.data<T>(), wc.data_or_null<T>(), bc.data_or_null<T>(), y.data<T>(), mu.data<T>(),
                                   rstd.data<T>(), N, D, T(eps));
  });
  if (needs_grad({x, weight, bias}))
    record(kLayerNorm, {x, weight, bias}, {y},
           [sx = save(xc), sw = save(wc), sm = save(mu), sr = save(rstd), N, D](const TensorList& g,
                                                                             const std::vector<bool>& needs) {
             const Tensor& xv = sx.get();
             Tensor dy = core::contiguous(g[0]), dx = empty_like(xv);
             Tensor dw = needs[1] ? Tensor::empty({D}, xv.dtype()) : Tensor();
             Tensor db = needs[2] ? Tensor::empty({D}, xv.dtype()) : Tensor();
             dispatch_float(xv.dtype(), "layer_norm", [&](auto tag) {
               using T = decltype(tag);
               kernels::layer_norm_backward<T>(xv.data<T>(), sw.get().data_or_null<T>(), sm.get().data<T>(),
                                               sr.get().data<T>(), dy.data<T>(), dx.data<T>(), dw.data_or_null<T>(),
                                               db.data_or_null<T>(), N, D);
             });
             return TensorList{dx, dw, db};
           });
  return y;
}

ROTOR_GRADCHECK({"layer_norm", {transposed({2, 3, 5}), input({5}, 0.5, 1.5), input({5})},
                 [](auto& x) { return TensorList{layer_norm(x[0], x[1], x[2]), layer_norm(x[0], Tensor(), Tensor(), 1e-3)}; }});
ROTOR_GRADCHECK({"layer_norm_weight_only", {input({4, 1}), input({1}), input({3, 6}, -3.0, 3.0), input({6})},
                 [](auto& x) { return TensorList{layer_norm(x[0], x[1], Tensor()), layer_norm(x[2], x[3], Tensor())}; }});

ROTOR_GRADCHECK({"rms_norm", {transposed({2, 3, 5}), input({5}, 0.5, 1.5)},
                 [](auto& x) { return TensorList{rms_norm(x[0], x[1], 1e-6)}; }});

}  // namespace rotor
