// Indexing with int64 indices; the adjoints scatter-add, so repeated indices accumulate.
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/kernels/index.h"

namespace rotor {

static const OpDef kIndexSelect{"index_select"}, kGather{"gather"};

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = kernels::index_select(x, dim, index);
  if (needs_grad({x}))
    record(kIndexSelect, {x}, {out}, [shape = x.shape(), dim, si = save(index)](const TensorList& g, auto&) {
      return TensorList{kernels::index_add(shape, dim, si.get(), g[0])};
    });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = kernels::gather(x, dim, index);
  if (needs_grad({x}))
    record(kGather, {x}, {out}, [shape = x.shape(), dim, si = save(index)](const TensorList& g, auto&) {
      return TensorList{kernels::scatter_add(shape, dim, si.get(), g[0])};
    });
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  ROTOR_CHECK(weight.dim() == 2, "embedding", "weight must be [num_embeddings, dim], got ", shape_str(weight.shape()));
  ROTOR_CHECK(ids.dtype() == DType::Int64, "embedding", "ids must be int64, got ", dtype_name(ids.dtype()));
  // Checked here so the error names embedding and the table, not the index_select inside.
  const Tensor flat = core::contiguous(ids);
  const int64_t* id = flat.data<int64_t>();
  for (int64_t i = 0; i < flat.numel(); ++i)
    ROTOR_CHECK(id[i] >= 0 && id[i] < weight.shape()[0], "embedding", "id ", id[i], " at position ", i,
                " out of range for a weight of shape ", shape_str(weight.shape()));
  Shape shape = ids.shape();
  shape.push_back(weight.shape()[1]);
  return reshape(index_select(weight, 0, reshape(ids.detach(), {ids.numel()})), shape);
}

Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype) { return kernels::one_hot(ids, num_classes, dtype); }

ROTOR_GRADCHECK({"index_select", {transposed({4, 3})}, [](auto& x) {
                   return TensorList{index_select(x[0], 0, from_vector<int64_t>({3, 0, 3, 1})),
                                     index_select(x[0], 1, from_vector<int64_t>({2, 2}))};
                 }});
ROTOR_GRADCHECK({"gather", {input({3, 4})}, [](auto& x) {
                   Tensor idx = from_vector<int64_t>({0, 3, 3, 1, 2, 2}, {3, 2});
                   return TensorList{gather(x[0], 1, idx), gather(x[0], 0, from_vector<int64_t>({2, 0, 1, 1}, {1, 4}))};
                 }});
ROTOR_GRADCHECK({"embedding", {input({5, 3})}, [](auto& x) {
                   return TensorList{embedding(x[0], from_vector<int64_t>({4, 0, 4, 2, 1, 4}, {2, 3}))};
                 }});

}  // namespace rotor
