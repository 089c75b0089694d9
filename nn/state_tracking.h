// State tracking as word problems over a finite group (docs/tasks.md), in the format of the
// reference's synthetic_tasks/state_tracking data: a sequence of group elements x_1 … x_L
// (tokens 0 … |G|−1, after an optional start token), and at each position the label is the
// running product y_t = x_1 · x_2 · … · x_t. Parity is S2: elements {identity, swap}, the label
// is the parity of the number of swaps so far.
//
//   inputs  BOS x1 x2 x3 …        (BOS = |G|; PAD = |G|+1 right-pads shorter training rows)
//   labels  -100 y1 y2 y3 …       (-100 on BOS and padding: no loss there)
//
// Elements are numbered as the reference's data numbers them: Z_m by its residues (· is
// addition mod m), S_n by the permutations of {0, …, n−1} in lexicographic order (identity
// first), A_n by the even ones in the same order; (a·b)(i) = a(b(i)), b applied first.
#pragma once
#include "rotor/nn/tasks.h"

namespace rotor::nn {

struct Group {
  std::string name;
  int64_t order = 0;
  std::vector<int32_t> table;  // table[a * order + b] = index of a·b
  int64_t multiply(int64_t a, int64_t b) const { return table[size_t(a * order + b)]; }
};
// "S<n>" (2 <= n <= 6), "A<n>" (3 <= n <= 6) or "Z<m>" (2 <= m <= 1024); rotor::Error otherwise.
Group make_group(const std::string& name);

struct StateTrackingConfig {
  std::string group = "S2";
  int64_t seq_len = 64;   // elements per training sequence (the reference's k)
  int64_t min_len = 0;    // > 0: training lengths uniform in [min_len, seq_len] (a length mixture)
  bool bos = true;        // the start token (the reference's tokenizer adds one)
  std::vector<int64_t> eval_lengths;  // test sets at these lengths (besides seq_len)
  void validate() const;
};

// Elements, BOS and PAD.
inline int64_t state_tracking_vocab(const Group& g) { return g.order + 2; }

// n rows of `length` elements (every row at that length), row i from (seed, i).
TokenData state_tracking_generate(const Group& g, const StateTrackingConfig& config, int64_t length,
                                  int64_t n, uint64_t seed);

// Train rows from `seed` (distinct), test rows at seq_len from seed + 10 (distinct, none equal
// to a train row), and a test set of test_size rows at each eval length from seed + 20 + j.
TaskData state_tracking_splits(const StateTrackingConfig& config, int64_t train_size, int64_t test_size,
                               uint64_t seed);

}  // namespace rotor::nn
