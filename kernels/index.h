// Indexing and data-movement kernels: index_select / gather with int64 indices and their
// scatter-add adjoints, concatenation, one-hot. Out-of-range indices are a rotor::Error.
#pragma once
#include <vector>

#include "rotor/core/tensor.h"

namespace rotor::kernels {

// out = x with dim replaced by idx's entries: out[.., i, ..] = x[.., idx[i], ..]. idx: int64, 1-D.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx);
// out = zeros(shape); out[.., idx[i], ..] += src[.., i, ..] (deterministic order).
Tensor index_add(const Shape& shape, int64_t dim, const Tensor& idx, const Tensor& src);

// PyTorch gather: out has idx's shape, out[i][j] = x[i][idx[i][j]] along dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx);
// The adjoint of gather: out = zeros(shape) with out[i][idx[i][j]] += src[i][j].
Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& idx, const Tensor& src);

Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor one_hot(const Tensor& idx, int64_t num_classes, DType dtype = DType::Float32);

}  // namespace rotor::kernels
