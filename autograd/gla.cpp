#include "autograd/gla.h"

#include <cmath>

#include "autograd/gradcheck.h"

namespace rotor {

namespace {
double resolve_scale(double scale, const Tensor& q) { return scale > 0 ? scale : 1.0 / std::sqrt(double(q.size(-1))); }

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

GlaOut gla_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale,
                     const Tensor& initial_state) {
  return gla_unfused(q, k, v, g, scale, initial_state);
}

GlaOut gla_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, double scale,
                   const Tensor& initial_state, int64_t) {
  return gla_unfused(q, k, v, g, scale, initial_state);
}

ROTOR_GRADCHECK({"gla_unfused", {input({1, 3, 2, 2}), input({1, 3, 2, 2}), input({1, 3, 2, 3}), input({1, 3, 2, 2}, -2.0, 0.0), input({1, 2, 2, 3})},
                 [](auto& x) {
                   auto r = gla_unfused(x[0], x[1], x[2], x[3], -1, x[4]);
                   return TensorList{r.o, r.final_state};
                 }});

}  // namespace rotor
