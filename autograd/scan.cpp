#include "rotor/autograd/scan.h"

#include <complex>

#include "rotor/autograd/gradcheck.h"
#include "rotor/kernels/scan_linear_recurrence.h"

namespace rotor {

namespace {
// Runs the recurrence kernels on value type V (T or std::complex<T>); `pairs` is 2 for complex
// storage (a trailing dim of re, im) and 1 otherwise.
template <class T, class V>
RecurrenceOut recurrence(const OpDef& op, const Tensor& a_in, const Tensor& b_in, const Tensor& h0_in, int pairs) {
  const int64_t B = a_in.size(0), T_ = a_in.size(1), C = a_in.size(2);
  Tensor a = core::contiguous(a_in), b = core::contiguous(b_in);
  Tensor h0 = h0_in.defined() ? core::contiguous(h0_in) : Tensor();
  Shape state{B, C};
  if (pairs == 2) state.push_back(2);
  Tensor h = empty_like(a), hT = Tensor::empty(state, a.dtype());
  auto v = [](const Tensor& t) { return reinterpret_cast<V*>(t.data_or_null<T>()); };
  kernels::linear_recurrence_forward<V>(v(a), v(b), v(h0), v(h), v(hT), B, T_, C);
  if (needs_grad({a_in, b_in, h0_in}))
    record(op, {a_in, b_in, h0_in}, {h, hT},
           [sa = save(a), sh0 = save(h0), sh = save(h), B, T_, C, state, v](const TensorList& g, const std::vector<bool>& needs) {
             Tensor dh = core::contiguous(g[0]), dhT = core::contiguous(g[1]);
             Tensor da = empty_like(sa.get()), db = empty_like(sa.get());
             Tensor dh0 = needs[2] ? Tensor::empty(state, da.dtype()) : Tensor();
             kernels::linear_recurrence_backward<V>(v(sa.get()), v(sh0.get()), v(sh.get()), v(dh), v(dhT), v(da), v(db),
                                                    v(dh0), B, T_, C);
             return TensorList{da, db, dh0};
           });
  return {h, hT};
}

void check_recurrence(const Tensor& a, const Tensor& b, const Tensor& h0, int pairs, const char* op) {
  const int64_t dims = 3 + (pairs == 2);
  ROTOR_CHECK(a.dim() == dims && b.shape() == a.shape() && (pairs == 1 || a.size(-1) == 2), op,
              "a and b must both be [B, T, C", pairs == 2 ? ", 2" : "", "], got ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
  ROTOR_CHECK(a.dtype() == b.dtype() && (!h0.defined() || h0.dtype() == a.dtype()), op, "dtype mismatch");
  if (h0.defined()) {
    Shape want{a.size(0), a.size(2)};
    if (pairs == 2) want.push_back(2);
    ROTOR_CHECK(h0.shape() == want, op, "h0 ", shape_str(h0.shape()), " should be ", shape_str(want));
  }
}
}  // namespace

static const OpDef kLinearRecurrence{"linear_recurrence"}, kComplexRecurrence{"complex_linear_recurrence"};

RecurrenceOut linear_recurrence(const Tensor& a, const Tensor& b, const Tensor& h0) {
  check_recurrence(a, b, h0, 1, "linear_recurrence");
  return dispatch_float(a.dtype(), "linear_recurrence", [&](auto tag) {
    using T = decltype(tag);
    return recurrence<T, T>(kLinearRecurrence, a, b, h0, 1);
  });
}

RecurrenceOut complex_linear_recurrence(const Tensor& a, const Tensor& b, const Tensor& h0) {
  check_recurrence(a, b, h0, 2, "complex_linear_recurrence");
  return dispatch_float(a.dtype(), "complex_linear_recurrence", [&](auto tag) {
    using T = decltype(tag);
    return recurrence<T, std::complex<T>>(kComplexRecurrence, a, b, h0, 2);
  });
}

ROTOR_GRADCHECK({"linear_recurrence", {input({2, 7, 3}, -1.0, 1.0), transposed({2, 7, 3}), input({2, 3})}, [](auto& x) {
                   auto r = linear_recurrence(x[0], x[1], x[2]);
                   return TensorList{r.h, r.final_state};
                 }});
ROTOR_GRADCHECK({"complex_linear_recurrence", {input({1, 5, 2, 2}, -0.7, 0.7), input({1, 5, 2, 2}), input({1, 2, 2})},
                 [](auto& x) {
                   auto r = complex_linear_recurrence(x[0], x[1], x[2]);
                   return TensorList{r.h, r.final_state};
                 }});

}  // namespace rotor
