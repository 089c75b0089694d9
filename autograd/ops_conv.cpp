// conv1d in PyTorch's layout (x [B, C_in, T], weight [C_out, C_in/groups, k]): one node over the
// im2col + GEMM kernels, with symmetric (PyTorch) or causal (left-only) zero padding.
#include "rotor/autograd/fused.h"
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/kernels/conv1d.h"

namespace rotor {

static const OpDef kConv1d{"conv1d"};

namespace {

Tensor conv1d_padded(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                     int64_t pad_left, int64_t pad_right, int64_t dilation, int64_t groups) {
  ROTOR_CHECK(x.dim() == 3 && weight.dim() == 3, op, "input ", shape_str(x.shape()), " and weight ",
              shape_str(weight.shape()), " must be [B, C_in, T] and [C_out, C_in/groups, k]");
  ROTOR_CHECK(groups >= 1 && stride >= 1 && dilation >= 1 && pad_left >= 0 && pad_right >= 0, op,
              "groups, stride and dilation must be positive and padding non-negative, got groups ", groups,
              ", stride ", stride, ", dilation ", dilation, ", padding ", pad_left, "/", pad_right);
  const int64_t B = x.size(0), Cin = x.size(1), L = x.size(2), Cout = weight.size(0), K = weight.size(2);
  ROTOR_CHECK(Cin % groups == 0 && Cout % groups == 0, op, "groups ", groups, " must divide C_in ", Cin,
              " and C_out ", Cout);
  ROTOR_CHECK(weight.size(1) == Cin / groups && K >= 1, op, "weight ", shape_str(weight.shape()), " should be [",
              Cout, ", ", Cin / groups, ", k >= 1] for input ", shape_str(x.shape()), " and groups ", groups);
  ROTOR_CHECK(!bias.defined() || bias.shape() == Shape{Cout}, op, "bias ", shape_str(bias.shape()), " should be [",
              Cout, "]");
  for (const Tensor* t : {&weight, &bias})
    ROTOR_CHECK(!t->defined() || t->dtype() == x.dtype(), op, "dtype mismatch: ", dtype_name(x.dtype()), " vs ",
                dtype_name(t->dtype()));
  const int64_t span = dilation * (K - 1) + 1, padded = L + pad_left + pad_right;
  ROTOR_CHECK(padded >= span, op, "input of length ", L, " (", padded, " padded) is shorter than the kernel's span ",
              span);
  const kernels::Conv1dShape s{B, Cin, L, Cout, K, groups, stride, dilation, pad_left, (padded - span) / stride + 1};
  Tensor xc = core::contiguous(x), wc = core::contiguous(weight), bc = bias.defined() ? core::contiguous(bias) : Tensor();
  Tensor y = Tensor::empty({B, Cout, s.Lout}, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernels::conv1d_forward<T>(xc.data<T>(), wc.data<T>(), bc.data_or_null<T>(), y.data<T>(), s);
  });
  if (needs_grad({x, weight, bias}))
    record(kConv1d, {x, weight, bias}, {y},
           [sx = save_if(weight.requires_grad(), xc), sw = save_if(x.requires_grad(), wc), s](
               const TensorList& g, const std::vector<bool>& needs) {
             Tensor dy = core::contiguous(g[0]);
             Tensor dx = needs[0] ? Tensor::empty({s.B, s.Cin, s.L}, dy.dtype()) : Tensor();
             Tensor dw = needs[1] ? Tensor::empty({s.Cout, s.Cin / s.G, s.K}, dy.dtype()) : Tensor();
             Tensor db = needs[2] ? Tensor::empty({s.Cout}, dy.dtype()) : Tensor();
             dispatch_float(dy.dtype(), "conv1d", [&](auto tag) {
               using T = decltype(tag);
               kernels::conv1d_backward<T>(needs[1] ? sx.get().data<T>() : nullptr,
                                           needs[0] ? sw.get().data<T>() : nullptr, dy.data<T>(),
                                           dx.data_or_null<T>(), dw.data_or_null<T>(), db.data_or_null<T>(), s);
             });
             return TensorList{dx, dw, db};
           });
  return y;
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  return conv1d_padded("conv1d", x, weight, bias, stride, padding, padding, dilation, groups);
}

Tensor conv1d_causal(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t dilation,
                     int64_t groups) {
  if (x.dim() == 3 && weight.dim() == 3 && groups == x.size(1) && weight.size(0) == groups && weight.size(1) == 1 &&
      stride == 1 && dilation == 1 && x.size(2) > 0)
    // The short convolution's kernel: channels last, vectorised over channels, its own backward.
    return contiguous(transpose(causal_conv1d(transpose(x, 1, 2), weight, bias, Tensor(), false), 1, 2));
  const int64_t K = weight.dim() == 3 ? weight.size(2) : 1;
  return conv1d_padded("conv1d_causal", x, weight, bias, stride, dilation * (K - 1), 0, dilation, groups);
}

// Full (groups 1), grouped, depthwise; stride, dilation and padding; inputs in strided layouts.
ROTOR_GRADCHECK({"conv1d", {input({2, 4, 7}), input({3, 4, 3}), input({3})}, [](auto& x) {
                   return TensorList{conv1d(x[0], x[1], x[2]), conv1d(x[0], x[1], Tensor(), 2, 2, 2)};
                 }});
ROTOR_GRADCHECK({"conv1d_grouped", {transposed({2, 4, 6}), input({6, 2, 2}), input({4, 1, 3}), input({4})}, [](auto& x) {
                   return TensorList{conv1d(x[0], x[1], Tensor(), 1, 1, 1, 2), conv1d(x[0], x[2], x[3], 1, 1, 1, 4)};
                 }});
ROTOR_GRADCHECK({"conv1d_causal", {input({2, 3, 6}), input({5, 3, 3}), input({5}), input({3, 1, 4}), input({3})},
                 [](auto& x) {
                   return TensorList{conv1d_causal(x[0], x[1], x[2]), conv1d_causal(x[0], x[1], Tensor(), 2, 2),
                                     conv1d_causal(x[0], x[3], x[4], 1, 1, 3)};
                 }});

}  // namespace rotor
