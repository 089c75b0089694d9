// Token data sets and the loader that walks them in shuffled batches.
#pragma once
#include <cstdint>

#include "rotor/core/tensor.h"

namespace rotor::nn {

// A supervised token data set: inputs and labels, both int64 [N, T]; label -100 = no loss.
struct TokenData {
  Tensor inputs, labels;
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  int64_t seq_len() const { return inputs.defined() ? inputs.size(1) : 0; }
  TokenData rows(int64_t begin, int64_t end) const;  // a copy of rows [begin, end)
};

// Yields batches of `batch_size` rows in a fresh random order every epoch; the last rows of an
// epoch that do not fill a batch are skipped (drop_last). The order of epoch e is a pure
// function of (seed, e), so the loader's whole state is (epoch, cursor) and a resumed loader
// continues exactly where the saved one stopped.
class BatchLoader {
 public:
  BatchLoader(TokenData data, int64_t batch_size, uint64_t seed);

  TokenData next();

  struct Position {
    int64_t epoch = 0;
    int64_t cursor = 0;  // rows of this epoch already served
  };
  Position position() const { return pos_; }
  void set_position(Position p);

  const TokenData& data() const { return data_; }
  int64_t batch_size() const { return batch_; }
  uint64_t seed() const { return seed_; }

 private:
  void shuffle();
  TokenData data_;
  int64_t batch_;
  uint64_t seed_;
  Position pos_;
  std::vector<int64_t> order_;  // the permutation of the current epoch
  int64_t order_epoch_ = -1;
};

}  // namespace rotor::nn
