// Choosing the next token from a model's logits: greedy, or a seeded draw with temperature,
// top-k and top-p (nucleus) truncation, applied in that order as Hugging Face's generate does.
#pragma once
#include <cstdint>
#include <vector>

#include "rotor/core/generator.h"
#include "rotor/core/tensor.h"

namespace rotor::nn {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy (the most likely token; top_k and top_p do not matter)
  int64_t top_k = 0;         // keep the k most likely tokens (0: all)
  double top_p = 1.0;        // then the fewest most likely whose probabilities sum to >= top_p (1: all)
};

// Error unless temperature >= 0, top_k >= 0 and top_p in (0, 1], naming the field.
void check_sampling_options(const SamplingOptions& options);

// One token id from one position's logits [V]. Temperature 0 returns the first argmax.
// Otherwise p_i ∝ exp((l_i − max) / T) over the tokens kept by top_k (most likely first, ties
// to the lower id) and then by top_p (on the probabilities renormalised over the top_k), and
// one uniform number from gen picks the token: the same seed gives the same tokens anywhere.
// A non-finite logit is an Error.
int64_t sample_token(const std::vector<double>& logits, const SamplingOptions& options, Generator& gen);
int64_t sample_token(const Tensor& logits, const SamplingOptions& options, Generator& gen);  // float [V]

}  // namespace rotor::nn
