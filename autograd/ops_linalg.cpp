// Matrix products. 1-D operands are promoted to matrices with views, so the node itself only
// sees batched matrices; broadcast batch gradients are summed back by the engine.
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/kernels/blas.h"

namespace rotor {

static const OpDef kMatmul{"matmul"};

Tensor matmul(const Tensor& a, const Tensor& b) {
  ROTOR_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul", "operands must have at least one dim, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  // Checked here on the shapes as given: below, 1-D operands are promoted to matrices.
  const int64_t ka = a.shape().back(), kb = b.dim() == 1 ? b.shape()[0] : b.shape()[size_t(b.dim() - 2)];
  ROTOR_CHECK(ka == kb, "matmul", "inner dims differ: ", shape_str(a.shape()), " @ ", shape_str(b.shape()));
  if (a.dim() == 1 || b.dim() == 1) {
    Tensor out = matmul(a.dim() == 1 ? unsqueeze(a, 0) : a, b.dim() == 1 ? unsqueeze(b, 1) : b);
    if (b.dim() == 1) out = squeeze(out, -1);
    if (a.dim() == 1) out = squeeze(out, b.dim() == 1 ? -1 : -2);
    return out;
  }
  Tensor out = kernels::matmul(a, b);
  if (needs_grad({a, b}))
    record(kMatmul, {a, b}, {out}, [sa = save(a), sb = save(b)](const TensorList& g, const std::vector<bool>& needs) {
      return TensorList{needs[0] ? matmul(g[0], transpose(sb.get(), -1, -2)) : Tensor(),
                        needs[1] ? matmul(transpose(sa.get(), -1, -2), g[0]) : Tensor()};
    });
  return out;
}

ROTOR_GRADCHECK({"matmul", {input({3, 4}), transposed({4, 5})}, [](auto& x) { return TensorList{matmul(x[0], x[1])}; }});
ROTOR_GRADCHECK({"matmul_batched_broadcast", {input({2, 1, 3, 4}), transposed({3, 4, 2})},
                 [](auto& x) { return TensorList{matmul(x[0], x[1])}; }});
ROTOR_GRADCHECK({"matmul_vector", {input({4}), sliced({4, 3}), input({3})}, [](auto& x) {
                   return TensorList{matmul(x[0], x[1]), matmul(x[1], x[2]), matmul(x[2], x[2])};
                 }});

}  // namespace rotor
