// sort and topk along one dim. Both order indices with a strict total order (value, then
// position), so results are the same on any thread count; the values' gradient is scattered
// back to the positions the indices name.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/index.h"

namespace rotor {

static const OpDef kSort{"sort"}, kTopk{"topk"};

namespace {

// Orders positions of one line: ascending or descending by value with NaN above every number,
// ties by position.
template <class T>
struct Before {
  const T* line;
  int64_t step;
  bool descending;
  bool operator()(int64_t a, int64_t b) const {
    const T va = line[a * step], vb = line[b * step];
    const bool na = is_nan(va), nb = is_nan(vb);
    if (na || nb) {
      if (na && nb) return a < b;
      return descending ? na : nb;
    }
    if (va != vb) return descending ? va > vb : va < vb;
    return a < b;
  }
  static bool is_nan(T v) {
    if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
    else return false;
  }
};

// For every line along dim of x (contiguous): pick(order, line) fills `order` with the k
// positions to keep, in output order. Returns values and int64 indices with size k along dim.
template <class Pick>
ValuesIndices select_along(const Tensor& x_in, int64_t dim, int64_t k, Pick pick) {
  Tensor x = core::contiguous(x_in);
  const Shape& shape = x.shape();
  const int64_t N = shape[size_t(dim)];
  int64_t A = 1, C = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < dim) A *= shape[size_t(d)];
    if (d > dim) C *= shape[size_t(d)];
  }
  Shape out_shape = shape;
  out_shape[size_t(dim)] = k;
  ValuesIndices r{Tensor::empty(out_shape, x.dtype()), Tensor::empty(out_shape, DType::Int64)};
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* vp = r.values.data<T>();
    int64_t* ip = r.indices.data<int64_t>();
    parallel_for(A * C, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(N, 1)), [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> order(static_cast<size_t>(N));
      for (int64_t line = lo; line < hi; ++line) {
        const int64_t a = line / C, c = line % C;
        const T* in = xp + a * N * C + c;
        std::iota(order.begin(), order.end(), int64_t(0));
        pick(order, Before<T>{in, C, false});
        for (int64_t i = 0; i < k; ++i) {
          const int64_t at = (a * k + i) * C + c;
          ip[at] = order[size_t(i)];
          vp[at] = in[order[size_t(i)] * C];
        }
      }
    });
  });
  return r;
}

// Records op on values; the backward puts each value's gradient back at its index.
void record_values(const OpDef& op, const Tensor& x, ValuesIndices& r, int64_t dim) {
  if (!needs_grad({x})) return;
  if (!is_floating(x.dtype())) return;
  record(op, {x}, {r.values}, [shape = x.shape(), dim, si = save(r.indices)](const TensorList& g, auto&) {
    return TensorList{kernels::scatter_add(shape, dim, si.get(), core::contiguous(g[0]))};
  });
}

}  // namespace

ValuesIndices sort(const Tensor& x, int64_t dim_in, bool descending) {
  if (x.dim() == 0) return {x, zeros({}, DType::Int64)};
  const int64_t dim = normalize_dim(dim_in, x.dim(), "sort");
  ValuesIndices r = select_along(x, dim, x.size(dim), [descending](std::vector<int64_t>& order, auto before) {
    before.descending = descending;
    std::sort(order.begin(), order.end(), before);  // a strict total order: stable by construction
  });
  record_values(kSort, x, r, dim);
  return r;
}

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim_in, bool largest, bool sorted) {
  if (x.dim() == 0) {
    ROTOR_CHECK(k == 1, "topk", "k = ", k, " out of range for a 0-d tensor (only k = 1)");
    return {x, zeros({}, DType::Int64)};
  }
  const int64_t dim = normalize_dim(dim_in, x.dim(), "topk");
  ROTOR_CHECK(k >= 0 && k <= x.size(dim), "topk", "k = ", k, " out of range for size ", x.size(dim), " of dim ", dim,
              " of shape ", shape_str(x.shape()));
  ValuesIndices r = select_along(x, dim, k, [k, largest, sorted](std::vector<int64_t>& order, auto before) {
    before.descending = largest;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
    if (!sorted) std::sort(order.begin(), order.begin() + k);
  });
  record_values(kTopk, x, r, dim);
  return r;
}

// Distinct values (drawn uniformly, ties have probability zero): the order is locally constant.
ROTOR_GRADCHECK({"sort", {transposed({3, 5})}, [](auto& x) {
                   return TensorList{sort(x[0]).values, sort(x[0], 0, true).values};
                 }});
ROTOR_GRADCHECK({"topk", {input({4, 6})}, [](auto& x) {
                   return TensorList{topk(x[0], 3).values, topk(x[0], 2, 0, false).values, topk(x[0], 4, 1, true, false).values};
                 }});

}  // namespace rotor
