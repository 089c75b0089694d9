// Indexing with int64 indices; the adjoints scatter-add, so repeated indices accumulate.
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/core/view.h"
#include "rotor/kernels/index.h"

namespace rotor {

static const OpDef kIndexSelect{"index_select"}, kGather{"gather"}, kScatterAdd{"scatter_add"},
    kIndexAdd{"index_add"};

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

namespace {
void check_same_dtype(const char* op, const Tensor& x, const Tensor& src) {
  ROTOR_CHECK(x.dtype() == src.dtype(), op, "dtype mismatch: input ", dtype_name(x.dtype()), " vs source ",
              dtype_name(src.dtype()));
}
}  // namespace

Tensor scatter_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  const int64_t dim = normalize_dim(dim_in, x.dim(), op);
  check_same_dtype(op, x, src);
  ROTOR_CHECK(index.dim() == x.dim() && src.dim() == x.dim(), op, "input ", shape_str(x.shape()), ", index ",
              shape_str(index.shape()), " and source ", shape_str(src.shape()), " must have the same number of dims");
  for (int64_t d = 0; d < x.dim(); ++d)
    ROTOR_CHECK(index.size(d) <= src.size(d), op, "index ", shape_str(index.shape()), " is larger than source ",
                shape_str(src.shape()), " in dim ", d);
  // Only the part of src that index covers is read (as in PyTorch); the kernel checks the
  // index values and the other dims against x.
  Tensor part = src;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (part.size(d) != index.size(d)) part = core::narrow(part, d, 0, index.size(d));
  Tensor out = add(x.detach(), kernels::scatter_add(x.shape(), dim, index, part));
  if (needs_grad({x, src}))
    record(kScatterAdd, {x, src}, {out},
           [si = save(index), dim, src_shape = src.shape()](const TensorList& g, const std::vector<bool>& needs) {
             TensorList grads{g[0], Tensor()};
             if (needs[1]) {
               Tensor picked = kernels::gather(g[0], dim, si.get());
               if (picked.shape() == src_shape) grads[1] = picked;
               else {
                 grads[1] = zeros(src_shape, picked.dtype());
                 Tensor part = grads[1];
                 for (int64_t d = 0; d < picked.dim(); ++d) part = core::narrow(part, d, 0, picked.size(d));
                 core::copy_into(part, picked);
               }
             }
             return grads;
           });
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src, double alpha) {
  const char* op = "index_add";
  const int64_t dim = normalize_dim(dim_in, x.dim(), op);
  check_same_dtype(op, x, src);
  ROTOR_CHECK(index.dim() == 1, op, "index must be 1-D, got shape ", shape_str(index.shape()));
  Tensor added = kernels::index_add(x.shape(), dim, index, src);  // checks src's shape and the indices
  Tensor out = alpha == 1.0 ? add(x.detach(), added) : add(x.detach(), mul(added, alpha));
  if (needs_grad({x, src}))
    record(kIndexAdd, {x, src}, {out}, [si = save(index), dim, alpha](const TensorList& g, const std::vector<bool>& needs) {
      TensorList grads{g[0], Tensor()};
      if (needs[1]) {
        grads[1] = kernels::index_select(g[0], dim, si.get());
        if (alpha != 1.0) grads[1] = mul(grads[1], alpha);
      }
      return grads;
    });
  return out;
}

ROTOR_GRADCHECK({"index_select", {transposed({4, 3})}, [](auto& x) {
                   return TensorList{index_select(x[0], 0, from_vector<int64_t>({3, 0, 3, 1})),
                                     index_select(x[0], 1, from_vector<int64_t>({2, 2}))};
                 }});
ROTOR_GRADCHECK({"gather", {input({3, 4})}, [](auto& x) {
                   Tensor idx = from_vector<int64_t>({0, 3, 3, 1, 2, 2}, {3, 2});
                   return TensorList{gather(x[0], 1, idx), gather(x[0], 0, from_vector<int64_t>({2, 0, 1, 1}, {1, 4}))};
                 }});
// Index 3 twice (the gradients of both sources go to it), src larger than index in dim 0.
ROTOR_GRADCHECK({"scatter_add", {transposed({3, 4}), input({3, 3})}, [](auto& x) {
                   Tensor idx = from_vector<int64_t>({3, 0, 3, 1, 1, 2}, {2, 3});
                   Tensor idx0 = from_vector<int64_t>({2, 2, 0, 1}, {1, 4});
                   return TensorList{scatter_add(x[0], 1, idx, x[1]), scatter_add(x[0], 0, idx0, concat({x[1], x[1]}, 1))};
                 }});
ROTOR_GRADCHECK({"index_add", {sliced({4, 3}), input({3, 3}), input({4, 2})}, [](auto& x) {
                   return TensorList{index_add(x[0], 0, from_vector<int64_t>({3, 0, 3}), x[1]),
                                     index_add(x[0], 1, from_vector<int64_t>({2, 2}), x[2], -0.5)};
                 }});
ROTOR_GRADCHECK({"embedding", {input({5, 3})}, [](auto& x) {
                   return TensorList{embedding(x[0], from_vector<int64_t>({4, 0, 4, 2, 1, 4}, {2, 3}))};
                 }});

}  // namespace rotor
