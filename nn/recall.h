// In-context recall as the reference's MAD suite poses it (docs/tasks.md; multi-query, no
// noise). Unlike MQAR the vocabulary is tiny and keys repeat: a sequence is seq_len/2 key–value
// pairs with keys from [0, V/2) and values from [V/2, V); each key's value is drawn the first
// time the key appears and kept after, and the last pair repeats a key seen before.
//
//   training  next-token prediction on every position (labels = inputs shifted by one)
//   testing   labels only where a value follows a key already seen in the sequence (the
//             value the model can recall), −100 elsewhere
// Rows have seq_len − 1 tokens (the last token is only a target).
#pragma once
#include "rotor/nn/tasks.h"

namespace rotor::nn {

struct RecallConfig {
  int64_t vocab_size = 16;
  int64_t seq_len = 128;
  void validate() const;  // V even and >= 4, seq_len even and >= 4
};

// Train rows from `seed` (distinct), test rows from seed + 10 (distinct, none equal to a train
// row's inputs).
TaskData recall_splits(const RecallConfig& config, int64_t train_size, int64_t test_size, uint64_t seed);

}  // namespace rotor::nn
