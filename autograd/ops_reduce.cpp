// Reductions, the softmax family and cumulative sums.
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/core/view.h"
#include "rotor/kernels/reduce.h"

namespace rotor {

namespace {
// g (the reduced gradient) reshaped so it broadcasts against the input again.
Tensor unreduce(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& dims) {
  return reshape(g, kernels::reduced_shape(in_shape, dims, true));
}
}  // namespace

static const OpDef kSum{"sum"}, kMean{"mean"}, kMax{"max"}, kMin{"min"}, kLogsumexp{"logsumexp"},
    kSoftmax{"softmax"}, kLogSoftmax{"log_softmax"}, kCumsum{"cumsum"};

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  auto dims = normalize_dims(dims_in, x.dim(), "sum");
  Tensor out = kernels::reduce(kernels::Reduce::Sum, x, dims, keepdim);
  if (needs_grad({x}))
    record(kSum, {x}, {out}, [shape = x.shape(), dims](const TensorList& g, auto&) {
      return TensorList{expand(unreduce(g[0], shape, dims), shape)};
    });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  auto dims = normalize_dims(dims_in, x.dim(), "mean");
  Tensor out = kernels::mean(x, dims, keepdim);
  if (needs_grad({x})) {
    int64_t count = 1;
    for (int64_t d : dims) count *= x.shape()[size_t(d)];
    record(kMean, {x}, {out}, [shape = x.shape(), dims, count](const TensorList& g, auto&) {
      return TensorList{expand(unreduce(g[0] / double(count), shape, dims), shape)};
    });
  }
  return out;
}

namespace {
// max/min: the gradient goes to the elements equal to the extremum, shared evenly by ties.
Tensor extremum(const OpDef& op, kernels::Reduce kind, const Tensor& x, const std::vector<int64_t>& dims_in,
                bool keepdim) {
  auto dims = normalize_dims(dims_in, x.dim(), op.name);
  Tensor out = kernels::reduce(kind, x, dims, keepdim);
  if (needs_grad({x}))
    record(op, {x}, {out}, [sx = save(x), so = save(out), dims](const TensorList& g, auto&) {
      const Tensor& xv = sx.get();
      Tensor hit = eq(xv, unreduce(so.get(), xv.shape(), dims));
      Tensor mask = to_dtype(hit, xv.dtype());
      Tensor count = kernels::reduce(kernels::Reduce::Sum, mask, dims, true);
      return TensorList{mul(mask, div(unreduce(g[0], xv.shape(), dims), count))};
    });
  return out;
}
}  // namespace

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(kMax, kernels::Reduce::Max, x, dims, keepdim);
}
Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(kMin, kernels::Reduce::Min, x, dims, keepdim);
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  auto dims = normalize_dims(dims_in, x.dim(), "logsumexp");
  Tensor out = kernels::logsumexp(x, dims, keepdim);
  if (needs_grad({x}))
    record(kLogsumexp, {x}, {out}, [sx = save(x), so = save(out), dims](const TensorList& g, auto&) {
      const Tensor& xv = sx.get();
      Tensor p = exp(sub(xv, unreduce(so.get(), xv.shape(), dims)));
      return TensorList{mul(p, unreduce(g[0], xv.shape(), dims))};
    });
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return kernels::argmax(x, dim, keepdim); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return kernels::argmin(x, dim, keepdim); }

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor y = kernels::softmax(x, dim);
  if (needs_grad({x}))
    record(kSoftmax, {x}, {y}, [sy = save(y), dim](const TensorList& g, auto&) {
      const Tensor& yv = sy.get();
      return TensorList{mul(yv, sub(g[0], sum(mul(g[0], yv), {dim}, true)))};
    });
  return y;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor y = kernels::log_softmax(x, dim);
  if (needs_grad({x}))
    record(kLogSoftmax, {x}, {y}, [sy = save(y), dim](const TensorList& g, auto&) {
      return TensorList{sub(g[0], mul(exp(sy.get()), sum(g[0], {dim}, true)))};
    });
  return y;
}

Tensor cumsum(const Tensor& x, int64_t dim, bool reverse) {
  Tensor out = kernels::cumsum(x, dim, reverse);
  if (needs_grad({x}))
    record(kCumsum, {x}, {out}, [dim, reverse](const TensorList& g, auto&) {
      return TensorList{cumsum(g[0], dim, !reverse)};
    });
  return out;
}

// ---- gradcheck cases ----

ROTOR_GRADCHECK({"sum", {transposed({3, 4, 2})}, [](auto& x) {
                   return TensorList{sum(x[0]), sum(x[0], {0, 2}), sum(x[0], {1}, true)};
                 }});
ROTOR_GRADCHECK({"mean", {sliced({2, 3, 4})}, [](auto& x) { return TensorList{mean(x[0], {-1}), mean(x[0], {0, 1}, true)}; }});
ROTOR_GRADCHECK({"max", {input({3, 5})}, [](auto& x) { return TensorList{max(x[0], {1}), max(x[0])}; }});
ROTOR_GRADCHECK({"min", {transposed({4, 3})}, [](auto& x) { return TensorList{min(x[0], {0}, true)}; }});
ROTOR_GRADCHECK({"logsumexp", {input({3, 4}, -20.0, 20.0)}, [](auto& x) {
                   return TensorList{logsumexp(x[0], {1}), logsumexp(x[0], {0}, true)};
                 }});
ROTOR_GRADCHECK({"softmax", {input({2, 5}, -3.0, 3.0)}, [](auto& x) {
                   return TensorList{softmax(x[0], -1), softmax(x[0], 0)};
                 }});
ROTOR_GRADCHECK({"log_softmax", {transposed({3, 4}, -3.0, 3.0)}, [](auto& x) {
                   return TensorList{log_softmax(x[0], 1), log_softmax(x[0], 0)};
                 }});
ROTOR_GRADCHECK({"cumsum", {sliced({3, 4})}, [](auto& x) {
                   return TensorList{cumsum(x[0], 1), cumsum(x[0], 0, true)};
                 }});

}  // namespace rotor
