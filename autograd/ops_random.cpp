// Ops that draw from an explicit Generator: dropout and multinomial. Each element's draw is one
// counter of the generator (the n-th counter taken belongs to the n-th element), so the result
// depends on the seed alone, never on the thread count.
#include <algorithm>
#include <cmath>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/core/parallel.h"

namespace rotor {

static const OpDef kDropout{"dropout"};

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  ROTOR_CHECK(p >= 0.0 && p <= 1.0, "dropout", "probability must be in [0, 1], got ", p);
  ROTOR_CHECK(is_floating(x.dtype()), "dropout", "needs a float tensor, got ", dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  // The mask holds 0 or 1/(1-p) (0 everywhere for p = 1); the backward multiplies by it again.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const uint64_t base = gen.take(uint64_t(mask.numel()));
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    T* m = mask.data<T>();
    const T keep = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
    parallel_for(mask.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) m[i] = gen.uniform(base + uint64_t(i)) >= p ? keep : T(0);
    });
  });
  Tensor y;
  {
    NoGradGuard no_grad;
    y = mul(x, mask);
  }
  if (needs_grad({x}))
    record(kDropout, {x}, {y}, [sm = save(mask)](const TensorList& g, auto&) { return TensorList{mul(g[0], sm.get())}; });
  return y;
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen) {
  const char* op = "multinomial";
  ROTOR_CHECK(probs.dim() == 1 || probs.dim() == 2, op, "probabilities must be 1-D or 2-D, got shape ",
              shape_str(probs.shape()));
  ROTOR_CHECK(is_floating(probs.dtype()), op, "probabilities must be float, got ", dtype_name(probs.dtype()));
  const int64_t K = probs.size(-1), rows = probs.dim() == 2 ? probs.size(0) : 1;
  ROTOR_CHECK(K > 0, op, "needs at least one category, got shape ", shape_str(probs.shape()));
  ROTOR_CHECK(num_samples > 0, op, "num_samples must be positive, got ", num_samples);
  ROTOR_CHECK(replacement || num_samples <= K, op, "cannot draw ", num_samples, " samples without replacement from ",
              K, " categories");
  Tensor w = core::contiguous(core::to_dtype(probs, DType::Float64));
  const double* wp = w.data<double>();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t positive = 0;
    double total = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double v = wp[r * K + k];
      ROTOR_CHECK(std::isfinite(v) && v >= 0, op, "probability ", v, " at row ", r, ", category ", k,
                  " is negative or not finite");
      positive += v > 0, total += v;
    }
    ROTOR_CHECK(std::isfinite(total) && total > 0, op, "row ", r, " has no positive probability (sum ", total, ")");
    ROTOR_CHECK(replacement || num_samples <= positive, op, "row ", r, " has ", positive,
                " categories of positive probability, fewer than the ", num_samples,
                " samples asked for without replacement");
  }
  Shape shape = probs.dim() == 2 ? Shape{rows, num_samples} : Shape{num_samples};
  Tensor out = Tensor::empty(shape, DType::Int64);
  int64_t* o = out.data<int64_t>();
  // Sample s of row r reads counter base + r * num_samples + s.
  const uint64_t base = gen.take(uint64_t(rows * num_samples));
  parallel_for(rows, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> cum(size_t(K) + 1);
    std::vector<double> left;
    for (int64_t r = lo; r < hi; ++r) {
      const double* row = wp + r * K;
      const uint64_t c0 = base + uint64_t(r * num_samples);
      if (replacement) {
        // Inverse CDF: the first category whose cumulative weight exceeds u * total.
        cum[0] = 0;
        for (int64_t k = 0; k < K; ++k) cum[size_t(k + 1)] = cum[size_t(k)] + row[k];
        for (int64_t s = 0; s < num_samples; ++s) {
          const double u = gen.uniform(c0 + uint64_t(s)) * cum[size_t(K)];
          int64_t k = int64_t(std::upper_bound(cum.begin() + 1, cum.end(), u) - (cum.begin() + 1));
          k = std::min(k, K - 1);
          while (row[k] == 0 && k > 0) --k;  // u at the top edge: the last category of positive weight
          o[r * num_samples + s] = k;
        }
      } else {
        // One category at a time from what is left, its weight removed once drawn.
        left.assign(row, row + K);
        for (int64_t s = 0; s < num_samples; ++s) {
          double total = 0;
          for (int64_t k = 0; k < K; ++k) total += left[size_t(k)];
          const double u = gen.uniform(c0 + uint64_t(s)) * total;
          double acc = 0;
          int64_t pick = -1;
          for (int64_t k = 0; k < K; ++k) {
            if (left[size_t(k)] == 0) continue;
            pick = k;  // the last positive one if rounding leaves u at the top
            acc += left[size_t(k)];
            if (u < acc) break;
          }
          o[r * num_samples + s] = pick;
          left[size_t(pick)] = 0;
        }
      }
    }
  });
  return out;
}

// The mask comes from a generator made inside the function, so every evaluation of the
// finite differences sees the same one.
ROTOR_GRADCHECK({"dropout", {transposed({3, 5})}, [](auto& x) {
                   Generator gen(11);
                   return TensorList{dropout(x[0], 0.4, true, gen), dropout(x[0], 0.4, false, gen)};
                 }});

}  // namespace rotor
