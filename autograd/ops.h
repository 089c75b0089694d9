// rotor's differentiable tensor API. Every function here records its backward when grad mode
// is on and an input requires grad; integer, boolean and comparison results never do.
// Broadcasting follows NumPy; dtypes of float operands must match (a C++ double scalar takes
// the tensor's dtype).
#pragma once
#include <optional>
#include <vector>

#include "rotor/autograd/node.h"
#include "rotor/core/generator.h"
#include "rotor/core/tensor.h"

namespace rotor {

// ---- elementwise (ops_elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor logsigmoid(const Tensor& x);  // min(x,0) - log1p(exp(-|x|)), stable for any x
Tensor relu(const Tensor& x);

// Comparisons and logic (bool results, not differentiable).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);

// cond ? a : b (differentiable in a and b).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// Bool [rows, cols]: true on and below (tril) / on and above (triu) diagonal k.
Tensor tril_mask(int64_t rows, int64_t cols, int64_t k = 0);
Tensor triu_mask(int64_t rows, int64_t cols, int64_t k = 0);
// Zero the elements above (tril) / below (triu) diagonal k of the last two dims.
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);

// Operators, with C++ scalars on either side.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// In place (not differentiable; an error on a tensor that requires grad while grad mode is on).
// Each bumps the storage version, which is how autograd notices a saved tensor was changed.
Tensor& add_(Tensor& dst, const Tensor& src, double alpha = 1.0);  // dst += alpha * src
Tensor& mul_(Tensor& dst, const Tensor& src);
Tensor& mul_(Tensor& dst, double value);
Tensor& fill_(Tensor& dst, double value);
Tensor& zero_(Tensor& dst);
Tensor& copy_(Tensor& dst, const Tensor& src);

// ---- reductions (ops_reduce.cpp); empty dims = all dims ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);

// ---- shapes and views (ops_shape.cpp): views share storage, gradients flow to the base ----
Tensor reshape(const Tensor& x, const Shape& shape);  // a view when strides allow, else a copy
Tensor view(const Tensor& x, const Shape& shape);     // always a view (error if impossible)
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dtype);
Tensor concat(const TensorList& xs, int64_t dim);
Tensor stack(const TensorList& xs, int64_t dim);
TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim);

// ---- normalisation (ops_norm.cpp) ----
// x * rsqrt(mean(x^2, -1) + eps) * weight, weight [x.size(-1)].
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);
// (x - mean) * rsqrt(var + eps) * weight + bias over the last dim, var biased as in PyTorch;
// weight and bias [x.size(-1)] or undefined (ones / zeros).
Tensor layer_norm(const Tensor& x, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), double eps = 1e-5);

// ---- linear algebra (ops_linalg.cpp) ----
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- indexing (ops_index.cpp); indices are int64 ----
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index 1-D
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);        // index.dim() == x.dim()
Tensor embedding(const Tensor& weight, const Tensor& ids);               // [V, D], ids [...] -> [..., D]
Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype = DType::Float32);
// x + src scattered along dim: out[..i..][index[..i..]][..] += src[..i..] (PyTorch's scatter_add;
// index has x's number of dims, index.size(d) <= src.size(d), and <= x.size(d) for d != dim).
// Repeated indices add up. Differentiable in x and src.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// x + alpha * src added at index along dim: out[.., index[i], ..] += alpha * src[.., i, ..]
// (index 1-D, src.size(dim) == index.numel()). Repeated indices add up. Differentiable in x and src.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha = 1.0);

// ---- sorting (ops_sort.cpp); differentiable through the values, indices int64 ----
struct ValuesIndices {
  Tensor values;
  Tensor indices;
};
// Stable: equal elements keep their order (in both directions). NaN sorts above every number.
ValuesIndices sort(const Tensor& x, int64_t dim = -1, bool descending = false);
// The k largest (or smallest) along dim, in sorted order, or in index order when !sorted; ties go
// to the lower index.
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);

// ---- random (ops_random.cpp): draws from an explicit Generator, reproducible for a seed ----
// Zeroes each element with probability p and scales the rest by 1/(1-p) when training; x itself
// otherwise. p in [0, 1]. Differentiable.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
// Category indices drawn from each row of probs ([K] or [N, K], non-negative weights, not
// normalised): int64 [num_samples] or [N, num_samples].
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen);

// ---- convolution (ops_conv.cpp); PyTorch's layout: x [B, C_in, T], weight [C_out, C_in/groups, k] ----
// torch.nn.functional.conv1d: zero padding on both sides; bias [C_out] or undefined. Differentiable.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
// Causal: dilation * (k - 1) zeros on the left only, so out[t] reads x up to t (T_out = T at
// stride 1). Depthwise (groups = C_in = C_out) at stride and dilation 1 runs the fused
// causal_conv1d kernel of the short convolutions.
Tensor conv1d_causal(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
                     int64_t dilation = 1, int64_t groups = 1);

}  // namespace rotor
