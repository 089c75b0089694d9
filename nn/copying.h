// The copying task (docs/tasks.md), in the format of the reference's synthetic_tasks/copying:
// over an alphabet of `letters` tokens, an example is `$ s | s .` — a start mark, a string s,
// a separator, s again, an end mark. The model must reproduce s after the separator.
//
//   tokens    letters 0 … V−1, then $ = V, | = V+1, . = V+2, * = V+3 (padding)
//   training  each row packs examples (string lengths uniform in [min_len, max_len]) into
//             seq_len + 1 tokens, the last one cut off; inputs are the first seq_len tokens and
//             the label at position p is token p+1 where that token is part of an answer (the
//             copy of s and its end mark), −100 elsewhere (the cut-off example has none)
//   testing   one example per row, right-padded with *; labels on the copy of s only (not the
//             end mark): per-character accuracy is the token accuracy, exact-string accuracy
//             the sequence accuracy. Length generalisation: strings of exactly L letters.
// Disjoint: no complete training example copies a string that is in a test set.
#pragma once
#include "rotor/nn/tasks.h"

namespace rotor::nn {

struct CopyingConfig {
  int64_t letters = 26;
  int64_t seq_len = 128;               // training context in tokens
  int64_t min_len = 2, max_len = 16;   // training string lengths
  std::vector<int64_t> eval_lengths;   // test sets of strings of exactly these lengths
  int64_t vocab_size() const { return letters + 4; }
  void validate() const;
};

// Train rows from `seed`, test rows (string lengths as in training, padded to 2·max_len + 2
// tokens) from seed + 10, one test set per eval length L (2L + 2 tokens) from seed + 20 + j.
TaskData copying_splits(const CopyingConfig& config, int64_t train_size, int64_t test_size, uint64_t seed);

}  // namespace rotor::nn
