// Raw views: new shape/strides/offset over the same storage, no copy and no autograd.
// The differentiable versions in autograd/ops.h call these.
#pragma once
#include <optional>
#include <vector>

#include "rotor/core/tensor.h"

namespace rotor::core {

// Resolves a single -1 entry and checks the element count.
Shape infer_shape(Shape shape, int64_t numel, const char* op);

// The view of t with `shape` when its strides allow one; nullopt when a copy is needed.
std::optional<Tensor> try_view(const Tensor& t, const Shape& shape);
Tensor view(const Tensor& t, const Shape& shape);     // throws when a view is impossible
Tensor reshape(const Tensor& t, const Shape& shape);  // a view when possible, else a copy
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
// Elements [start, end) with a positive step along dim; start/end clamp like Python slices.
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& t, int64_t dim, int64_t index);  // drops dim
Tensor expand(const Tensor& t, const Shape& shape);          // -1 keeps a size
Tensor squeeze(const Tensor& t);                             // every size-1 dim
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);

}  // namespace rotor::core
