#include "rotor/autograd/fused.h"

#include "rotor/autograd/gradcheck.h"
#include "rotor/core/view.h"
#include "rotor/kernels/blas.h"
#include "rotor/kernels/fused.h"
#include "rotor/kernels/norm.h"
#include "rotor/kernels/reduce.h"

namespace rotor {

namespace {
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  ROTOR_CHECK(!b.defined() || a.dtype() == b.dtype(), op, "dtype mismatch: ", dtype_name(a.dtype()), " vs ",
              dtype_name(b.dtype()));
}

// x's leading dims flattened: [N, in] with unit column stride (a view when x allows, else a copy).
Tensor as_rows(const Tensor& x) {
  const int64_t in = x.size(-1), n = in ? x.numel() / in : 0;
  if (auto v = core::try_view(x, Shape{n, in}); v && (v->stride(1) == 1 || in == 1) && v->stride(0) >= in) {
    return *v;
  }
  return core::view(core::contiguous(x), Shape{n, in});
}
int64_t row_stride(const Tensor& m) { return m.size(0) > 1 ? m.stride(0) : std::max<int64_t>(1, m.size(1)); }
}  // namespace

// ---- linear ----

static const OpDef kLinear{"linear"};

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  ROTOR_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), op, "input ", shape_str(x.shape()),
              " does not match weight ", shape_str(weight.shape()));
  ROTOR_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), op, "bias ",
              shape_str(bias.shape()), " does not match weight ", shape_str(weight.shape()));
  check_same_dtype(op, x, weight);
  check_same_dtype(op, x, bias);
  const int64_t in = weight.size(1), out = weight.size(0);
  Tensor xm = as_rows(x), w = core::contiguous(weight);
  const int64_t N = xm.size(0);
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor y = Tensor::empty(out_shape, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.data<T>();
    if (N == 0 || out == 0) return;
    if (bias.defined()) {
      Tensor bc = core::contiguous(bias);
      for (int64_t n = 0; n < N; ++n) std::copy(bc.data<T>(), bc.data<T>() + out, yp + n * out);
    } else if (in == 0) {
      std::fill(yp, yp + N * out, T(0));
    }
    kernels::gemm<T>(false, true, N, out, in, T(1), xm.data<T>(), row_stride(xm), w.data<T>(), std::max<int64_t>(1, in),
                     bias.defined() ? T(1) : T(0), yp, out);
  });
  if (needs_grad({x, weight, bias}))
    record(kLinear, {x, weight, bias}, {y},
           [sx = save_if(weight.requires_grad(), xm), sw = save_if(x.requires_grad(), w), xshape = x.shape(), N, in,
            out](const TensorList& g, const std::vector<bool>& needs) {
             Tensor dy = core::contiguous(g[0]);
             TensorList grads(3);
             dispatch_float(dy.dtype(), "linear", [&](auto tag) {
               using T = decltype(tag);
               const T* dyp = dy.data<T>();
               if (needs[0]) {
                 grads[0] = Tensor::empty(xshape, dy.dtype());
                 T* dx = grads[0].data<T>();
                 if (out == 0) std::fill(dx, dx + N * in, T(0));
                 else if (N && in) kernels::gemm<T>(false, false, N, in, out, T(1), dyp, out, sw.get().data<T>(), in, T(0), dx, in);
               }
               if (needs[1]) {
                 grads[1] = Tensor::empty({out, in}, dy.dtype());
                 T* dw = grads[1].data<T>();
                 if (N == 0) std::fill(dw, dw + out * in, T(0));
                 else if (out && in) {
                   const Tensor& xv = sx.get();
                   kernels::gemm<T>(true, false, out, in, N, T(1), dyp, out, xv.data<T>(), row_stride(xv), T(0), dw, in);
                 }
               }
             });
             if (needs[2]) grads[2] = kernels::sum_to(core::view(dy, Shape{N, out}), Shape{out});
             return grads;
           });
  return y;
}

Tensor linear_unfused(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Shape out_shape = x.shape();
  out_shape.back() = weight.size(0);
  Tensor y = matmul(reshape(x, {-1, x.size(-1)}), transpose(weight, 0, 1));
  if (bias.defined()) y = y + bias;
  return reshape(y, out_shape);
}

// ---- swiglu ----

static const OpDef kSwiglu{"swiglu"};

Tensor swiglu(const Tensor& h) {
  ROTOR_CHECK(h.dim() >= 1 && h.size(-1) % 2 == 0, "swiglu", "last dim must be even ([gate | up]), got shape ",
              shape_str(h.shape()));
  const int64_t I = h.size(-1) / 2, N = I ? h.numel() / (2 * I) : 0;
  Tensor hc = core::contiguous(h);
  Shape out_shape = h.shape();
  out_shape.back() = I;
  Tensor y = Tensor::empty(out_shape, h.dtype());
  dispatch_float(h.dtype(), "swiglu", [&](auto tag) {
    using T = decltype(tag);
    kernels::swiglu_forward<T>(hc.data<T>(), y.data<T>(), N, I);
  });
  if (needs_grad({h}))
    record(kSwiglu, {h}, {y}, [sh = save(hc), N, I](const TensorList& g, auto&) {
      const Tensor& hv = sh.get();
      Tensor dy = core::contiguous(g[0]), dh = Tensor::empty(hv.shape(), hv.dtype());
      dispatch_float(hv.dtype(), "swiglu", [&](auto tag) {
        using T = decltype(tag);
        kernels::swiglu_backward<T>(hv.data<T>(), dy.data<T>(), dh.data<T>(), N, I);
      });
      return TensorList{dh};
    });
  return y;
}

Tensor swiglu_unfused(const Tensor& h) {
  const int64_t I = h.size(-1) / 2;
  return silu(narrow(h, -1, 0, I)) * narrow(h, -1, I, I);
}

// ---- gated_rms_norm and l2_norm ----

static const OpDef kGatedRmsNorm{"gated_rms_norm"}, kL2Norm{"l2_norm"};

Tensor gated_rms_norm(const Tensor& x, const Tensor& weight, const Tensor& gate, double eps) {
  const char* op = "gated_rms_norm";
  ROTOR_CHECK(x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1) && gate.shape() == x.shape(), op,
              "input ", shape_str(x.shape()), ", weight ", shape_str(weight.shape()), " and gate ",
              shape_str(gate.shape()), " do not match");
  check_same_dtype(op, x, weight);
  check_same_dtype(op, x, gate);
  const int64_t D = x.size(-1), N = D ? x.numel() / D : 0;
  Tensor xc = core::contiguous(x), wc = core::contiguous(weight), gc = core::contiguous(gate);
  Tensor y = Tensor::empty(x.shape(), x.dtype()), rstd = Tensor::empty({N}, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernels::gated_rms_norm_forward<T>(xc.data<T>(), wc.data<T>(), gc.data<T>(), y.data<T>(), rstd.data<T>(), N, D,
                                       T(eps));
  });
  if (needs_grad({x, weight, gate}))
    record(kGatedRmsNorm, {x, weight, gate}, {y},
           [sx = save(xc), sw = save(wc), sg = save(gc), sr = save(rstd), N, D](const TensorList& g, auto&) {
             const Tensor &xv = sx.get(), &wv = sw.get(), &gv = sg.get();
             Tensor dy = core::contiguous(g[0]);
             Tensor dx = empty_like(xv), dw = Tensor::empty({D}, xv.dtype()), dg = empty_like(gv);
             dispatch_float(xv.dtype(), "gated_rms_norm", [&](auto tag) {
               using T = decltype(tag);
               kernels::gated_rms_norm_backward<T>(xv.data<T>(), wv.data<T>(), gv.data<T>(), sr.get().data<T>(),
                                                   dy.data<T>(), dx.data<T>(), dw.data<T>(), dg.data<T>(), N, D);
             });
             return TensorList{dx, dw, dg};
           });
  return y;
}

Tensor gated_rms_norm_unfused(const Tensor& x, const Tensor& weight, const Tensor& gate, double eps) {
  return x * rsqrt(mean(square(x), {-1}, true) + eps) * weight * silu(gate);
}

Tensor l2_norm(const Tensor& x, double eps) {
  ROTOR_CHECK(x.dim() >= 1, "l2_norm", "needs at least one dim");
  const int64_t D = x.size(-1), N = D ? x.numel() / D : 0;
  Tensor xc = core::contiguous(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype()), rstd = Tensor::empty({N}, x.dtype());
  dispatch_float(x.dtype(), "l2_norm", [&](auto tag) {
    using T = decltype(tag);
    kernels::l2_norm_forward<T>(xc.data<T>(), y.data<T>(), rstd.data<T>(), N, D, T(eps));
  });
  if (needs_grad({x}))
    record(kL2Norm, {x}, {y}, [sx = save(xc), sr = save(rstd), N, D](const TensorList& g, auto&) {
      const Tensor& xv = sx.get();
      Tensor dy = core::contiguous(g[0]), dx = empty_like(xv);
      dispatch_float(xv.dtype(), "l2_norm", [&](auto tag) {
        using T = decltype(tag);
        kernels::l2_norm_backward<T>(xv.data<T>(), sr.get().data<T>(), dy.data<T>(), dx.data<T>(), N, D);
      });
      return TensorList{dx};
    });
  return y;
}

Tensor l2_norm_unfused(const Tensor& x, double eps) { return x * rsqrt(sum(square(x), {-1}, true) + eps); }

// ---- causal_conv1d ----

static const OpDef kCausalConv1d{"causal_conv1d"};

namespace {
void check_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history) {
  const char* op = "causal_conv1d";
  ROTOR_CHECK(x.dim() == 3 && weight.dim() == 3 && weight.size(1) == 1 && weight.size(0) == x.size(2) &&
                  weight.size(2) >= 1,
              op, "input ", shape_str(x.shape()), " and weight ", shape_str(weight.shape()),
              " do not match ([B, T, C] and [C, 1, W])");
  const int64_t B = x.size(0), C = x.size(2), W = weight.size(2);
  ROTOR_CHECK(!bias.defined() || bias.shape() == Shape{C}, op, "bias ", shape_str(bias.shape()), " should be [", C,
              "]");
  ROTOR_CHECK(!history.defined() || history.shape() == (Shape{B, W - 1, C}), op, "history ",
              shape_str(history.shape()), " should be ", shape_str({B, W - 1, C}));
  for (const Tensor* t : {&weight, &bias, &history}) check_same_dtype(op, x, *t);
}
}  // namespace

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history, bool silu) {
  check_conv(x, weight, bias, history);
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), W = weight.size(2);
  Tensor xc = core::contiguous(x), wc = core::contiguous(weight);
  Tensor bc = bias.defined() ? core::contiguous(bias) : Tensor(), hc = history.defined() ? core::contiguous(history) : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "causal_conv1d", [&](auto tag) {
    using T_ = decltype(tag);
    kernels::short_conv_forward<T_>(xc.data<T_>(), wc.data<T_>(), bc.data_or_null<T_>(), hc.data_or_null<T_>(),
                                    y.data<T_>(), B, T, C, W, silu);
  });
  if (needs_grad({x, weight, bias, history}))
    record(kCausalConv1d, {x, weight, bias, history}, {y},
           [sx = save(xc), sw = save(wc), sb = save(bc), sh = save(hc), B, T, C, W, silu](const TensorList& g,
                                                                                           const std::vector<bool>& needs) {
             const Tensor &xv = sx.get(), &wv = sw.get(), &bv = sb.get(), &hv = sh.get();
             Tensor dy = core::contiguous(g[0]), dx = empty_like(xv), dw = empty_like(wv);
             Tensor db = needs[2] ? empty_like(bv) : Tensor();
             Tensor dh = needs[3] ? Tensor::empty({B, W - 1, C}, xv.dtype()) : Tensor();
             dispatch_float(xv.dtype(), "causal_conv1d", [&](auto tag) {
               using T_ = decltype(tag);
               kernels::short_conv_backward<T_>(xv.data<T_>(), wv.data<T_>(), bv.data_or_null<T_>(), hv.data_or_null<T_>(),
                                                dy.data<T_>(), dx.data<T_>(), dw.data<T_>(), db.data_or_null<T_>(),
                                                dh.data_or_null<T_>(), B, T, C, W, silu);
             });
             return TensorList{dx, dw, db, dh};
           });
  return y;
}

Tensor causal_conv1d_unfused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& history,
                             bool silu_after) {
  check_conv(x, weight, bias, history);
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), W = weight.size(2);
  Tensor past = history.defined() ? history : zeros({B, W - 1, C}, x.dtype());
  Tensor padded = concat({past, x}, 1);                    // [B, W-1+T, C]
  Tensor taps = transpose(reshape(weight, {C, W}), 0, 1);  // [W, C]
  Tensor y;
  for (int64_t j = 0; j < W; ++j) {
    Tensor term = narrow(padded, 1, j, T) * select(taps, 0, j);
    y = y.defined() ? y + term : term;
  }
  if (bias.defined()) y = y + bias;
  return silu_after ? silu(y) : y;
}

// ---- gradcheck cases ----

ROTOR_GRADCHECK({"linear", {input({2, 3, 4}), transposed({5, 4}), input({5})},
                 [](auto& x) { return TensorList{linear(x[0], x[1], x[2]), linear(x[0], x[1])}; }});
ROTOR_GRADCHECK({"linear_fused_strided_input", {sliced({3, 4}), input({2, 4})},
                 [](auto& x) { return TensorList{linear(x[0], x[1])}; }});
ROTOR_GRADCHECK({"swiglu", {input({2, 3, 8}, -3.0, 3.0)}, [](auto& x) { return TensorList{swiglu(x[0])}; }});
ROTOR_GRADCHECK({"swiglu_strided", {transposed({6, 4}, -3.0, 3.0)}, [](auto& x) { return TensorList{swiglu(x[0])}; }});
ROTOR_GRADCHECK({"gated_rms_norm", {transposed({2, 3, 5}), input({5}, 0.5, 1.5), input({2, 3, 5}, -3.0, 3.0)},
                 [](auto& x) { return TensorList{gated_rms_norm(x[0], x[1], x[2], 1e-5)}; }});
ROTOR_GRADCHECK({"l2_norm", {transposed({4, 3})}, [](auto& x) { return TensorList{l2_norm(x[0], 1e-6)}; }});
// 19 channels: two SIMD batches and a ragged tail for float64 on AVX-512.
ROTOR_GRADCHECK({"causal_conv1d", {input({2, 5, 19}), input({19, 1, 4}), input({19}), input({2, 3, 19})}, [](auto& x) {
                   return TensorList{causal_conv1d(x[0], x[1], x[2], x[3], true), causal_conv1d(x[0], x[1], Tensor(), Tensor(), false)};
                 }});
ROTOR_GRADCHECK({"causal_conv1d_short_input", {input({1, 2, 3}), input({3, 1, 4})},  // T < W
                 [](auto& x) { return TensorList{causal_conv1d(x[0], x[1], Tensor(), Tensor(), true)}; }});

}  // namespace rotor
