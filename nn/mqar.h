// Multi-query associative recall (docs/tasks.md), with the semantics of the multi-query
// generator of the Zoology benchmark:
//
//   inputs  k1 v1 k2 v2 ... kn vn | x  x  k2 x  x  x  k1 x ...      (n pairs, then queries)
//   labels  -100 ...              | -100 -100 v2 -100 ... v1 ...
//
// Keys are n distinct tokens from [1, V/2), values n distinct tokens from [V/2, V). Query i
// (the key of pair i) sits at position 2n + 2·gap_i, with the n gaps distinct in
// [0, (T − 2n)/2) and drawn without replacement with weights ∝ (gap+1)^(a−1) (a power law,
// a = 0.01: most queries come soon after the context). The label at a query position is the
// value that followed that key; every other label is −100. The remaining positions are
// uniform random tokens from [0, V) (Zoology's random_non_queries), or 0 when disabled.
#pragma once
#include "rotor/nn/data.h"

namespace rotor::nn {

struct MqarConfig {
  int64_t vocab_size = 8192;
  int64_t seq_len = 64;
  int64_t num_kv_pairs = 4;
  double power_a = 0.01;
  bool random_non_queries = true;
  void validate() const;  // Zoology's conditions: T even, V > T, 4n <= T
};

// num_examples rows from seed; row i depends only on (seed, i), so generation runs in parallel
// and gives the same tensors on any thread count.
TokenData mqar_generate(const MqarConfig& config, int64_t num_examples, uint64_t seed);

struct MqarSplits {
  TokenData train, test;
};
// Train rows from `seed`, test rows from seed + 10 (as Zoology). A test row whose input equals
// a train row's is redrawn (from further counters of the test stream), so the sets are
// disjoint; if a row keeps colliding (a task too small to have enough distinct sequences),
// this is a rotor::Error.
MqarSplits mqar_splits(const MqarConfig& config, int64_t train_size, int64_t test_size, uint64_t seed);

}  // namespace rotor::nn
