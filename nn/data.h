// Token data sets and the loader that walks them in shuffled batches.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "rotor/core/safetensors.h"
#include "rotor/core/tensor.h"

namespace rotor::nn {

// A supervised data set: token inputs and labels, both int64 [N, T] (label -100 = no loss), or
// for any other model rows of any dtype and shape, [N, ...] each.
struct TokenData {
  Tensor inputs, labels;
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  int64_t seq_len() const { return inputs.defined() ? inputs.size(1) : 0; }
  TokenData rows(int64_t begin, int64_t end) const;  // a copy of rows [begin, end)
};

// FNV-1a over the bytes of inputs and labels: a cheap identity of a data set.
std::string data_fingerprint(const TokenData& data);
uint64_t fnv1a(const void* data, size_t bytes, uint64_t h = 1469598103934665603ULL);  // continues from h
std::string hex64(uint64_t h);

// What a Trainer draws batches from. Its position is a few integers that a checkpoint's
// metadata carries, so a resumed run draws the batches the saved one would have drawn.
class Loader {
 public:
  virtual ~Loader() = default;
  virtual TokenData next() = 0;
  virtual int64_t batch_size() const = 0;
  virtual uint64_t seed() const = 0;
  virtual std::string fingerprint() const = 0;  // identity of the data drawn from
  virtual Metadata position_metadata() const = 0;
  // Reads the keys position_metadata() wrote (rotor::Error naming `what` when absent or invalid).
  virtual void restore_position(const SafetensorsContent& file, const std::string& what) = 0;
};

// Yields batches of `batch_size` rows in a fresh random order every epoch; the last rows of an
// epoch that do not fill a batch are skipped (drop_last). The order of epoch e is a pure
// function of (seed, e), so the loader's whole state is (epoch, cursor) and a resumed loader
// continues exactly where the saved one stopped.
class BatchLoader : public Loader {
 public:
  BatchLoader(TokenData data, int64_t batch_size, uint64_t seed);

  TokenData next() override;
  int64_t batch_size() const override { return batch_; }
  uint64_t seed() const override { return seed_; }
  std::string fingerprint() const override { return data_fingerprint(data_); }
  Metadata position_metadata() const override;
  void restore_position(const SafetensorsContent& file, const std::string& what) override;

  struct Position {
    int64_t epoch = 0;
    int64_t cursor = 0;  // rows of this epoch already served
  };
  Position position() const { return pos_; }
  void set_position(Position p);

  const TokenData& data() const { return data_; }

 private:
  void shuffle();
  TokenData data_;
  int64_t batch_;
  uint64_t seed_;
  Position pos_;
  std::vector<int64_t> order_;  // the permutation of the current epoch
  int64_t order_epoch_ = -1;
};

// A curriculum over sequence length: serves the first columns(s) positions of the s-th batch of
// another loader, columns(s) = min(full, start · 2^⌊s / every⌋). For tasks whose prefixes are
// examples too (a word problem's labels are running products: a prefix keeps its labels), a
// model first learns short sequences, and each doubling then demands more precision of what it
// learned rather than a solution from scratch. Its position (batches served) is checkpointed.
class LengthCurriculum : public Loader {
 public:
  LengthCurriculum(std::unique_ptr<Loader> inner, int64_t start, int64_t every);

  TokenData next() override;
  int64_t batch_size() const override { return inner_->batch_size(); }
  uint64_t seed() const override { return inner_->seed(); }
  std::string fingerprint() const override;
  Metadata position_metadata() const override;
  void restore_position(const SafetensorsContent& file, const std::string& what) override;

  int64_t columns(int64_t batch_index, int64_t full) const;  // served of a batch of `full` columns

 private:
  std::unique_ptr<Loader> inner_;
  int64_t start_, every_, served_ = 0;
};

}  // namespace rotor::nn
