// Fused RMS normalisation over the last dim: one node instead of the ~16 elementwise passes of
// its composition (which stays in the tests as the reference).
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/kernels/norm.h"

namespace rotor {

static const OpDef kRmsNorm{"rms_norm"};

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

ROTOR_GRADCHECK({"rms_norm", {transposed({2, 3, 5}), input({5}, 0.5, 1.5)},
                 [](auto& x) { return TensorList{rms_norm(x[0], x[1], 1e-6)}; }});

}  // namespace rotor
