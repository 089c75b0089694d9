#include "rotor/nn/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace rotor::nn {

void check_sampling_options(const SamplingOptions& o) {
  ROTOR_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, "sample_token", "temperature must be >= 0, got ",
              o.temperature);
  ROTOR_CHECK(o.top_k >= 0, "sample_token", "top_k must be >= 0, got ", o.top_k);
  ROTOR_CHECK(o.top_p > 0 && o.top_p <= 1, "sample_token", "top_p must be in (0, 1], got ", o.top_p);
}

int64_t sample_token(const std::vector<double>& logits, const SamplingOptions& o, Generator& gen) {
  check_sampling_options(o);
  ROTOR_CHECK(!logits.empty(), "sample_token", "no logits");
  for (size_t i = 0; i < logits.size(); ++i)
    ROTOR_CHECK(std::isfinite(logits[i]), "sample_token", "logit ", i, " is not finite (", logits[i], ")");
  std::vector<int64_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), int64_t(0));
  auto before = [&](int64_t a, int64_t b) {
    const double la = logits[size_t(a)], lb = logits[size_t(b)];
    return la > lb || (la == lb && a < b);
  };
  if (o.temperature == 0) return *std::min_element(ids.begin(), ids.end(), before);
  const int64_t V = int64_t(ids.size());
  const int64_t k = o.top_k > 0 && o.top_k < V ? o.top_k : V;
  if (o.top_p < 1) {
    std::sort(ids.begin(), ids.end(), before);  // the nucleus is a prefix of this order
    ids.resize(size_t(k));
  } else if (k < V) {
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), before);
    ids.resize(size_t(k));
  }
  double top = -INFINITY;
  for (int64_t i : ids) top = std::max(top, logits[size_t(i)]);
  std::vector<double> weights;  // exp((l - max) / T): the largest is 1, nothing overflows
  double total = 0;
  for (int64_t i : ids) total += weights.emplace_back(std::exp((logits[size_t(i)] - top) / o.temperature));
  if (o.top_p < 1) {
    // Most likely first: keep tokens until their share reaches top_p (the one crossing it too).
    double kept = 0;
    size_t n = 0;
    while (n < ids.size() && (n == 0 || kept < o.top_p * total)) kept += weights[n++];
    ids.resize(n);
    weights.resize(n);
    total = kept;
  }
  double u = gen.next_uniform() * total;
  for (size_t j = 0; j < ids.size(); ++j)
    if ((u -= weights[j]) < 0) return ids[j];
  return ids.back();  // u within rounding of the total
}

int64_t sample_token(const Tensor& logits, const SamplingOptions& options, Generator& gen) {
  ROTOR_CHECK(logits.dim() == 1 && is_floating(logits.dtype()), "sample_token",
              "logits must be a float vector [V], got ", dtype_name(logits.dtype()), " ", shape_str(logits.shape()));
  return sample_token(core::contiguous(core::to_dtype(logits.detach(), DType::Float64)).to_vector<double>(), options,
                      gen);
}

}  // namespace rotor::nn
