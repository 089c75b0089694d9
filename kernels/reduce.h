// Reductions over any set of dims, softmax-family rows and cumulative sums. Every reduction
// splits its work into blocks fixed by the shape alone and combines partial results in block
// order, so the bits do not depend on the thread count.
#pragma once
#include <vector>

#include "rotor/core/tensor.h"

namespace rotor::kernels {

enum class Reduce { Sum, Max, Min };

// Empty dims means every dim.
Tensor reduce(Reduce op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim);  // int64, first maximum
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// Inclusive cumulative sum along dim; reverse sums from the end.
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);

// Products over the last dim of a contiguous [rows, n] tensor (accumulated in double), and
// their vector-Jacobian product dx[r, j] = g[r] * prod_{k != j} x[r, k], formed from prefix and
// suffix products with no division, so it is exact where x has zeros.
Tensor prod_rows(const Tensor& x);
Tensor prod_rows_backward(const Tensor& x, const Tensor& g);  // g: [rows]

// The shape a reduction over dims produces.
Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim);

// Sums g down to `shape` (the inverse of broadcasting shape to g's shape).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace rotor::kernels
