// rotor::Generator: a counter-based random generator. The n-th number drawn is a pure function
// of (seed, n), so a tensor filled in parallel gets the same values on any thread count, and
// a generator is checkpointed by two integers.
#pragma once
#include <cstdint>

#include "rotor/core/tensor.h"

namespace rotor {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // counters consumed so far
  void set_offset(uint64_t offset) { offset_ = offset; }

  // Reserves n counters and returns the first.
  uint64_t take(uint64_t n) {
    uint64_t first = offset_;
    offset_ += n;
    return first;
  }

  uint64_t bits(uint64_t counter) const;          // 64 random bits
  double uniform(uint64_t counter) const;         // [0, 1), 53 bits
  double normal(uint64_t counter) const;          // standard normal

  uint64_t next_bits() { return bits(take(1)); }
  double next_uniform() { return uniform(take(1)); }
  int64_t next_int(int64_t lo, int64_t hi);  // uniform in [lo, hi)
  double next_normal() { return normal(take(1)); }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::Float32, double mean = 0.0,
             double stddev = 1.0);
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::Float32, double lo = 0.0,
            double hi = 1.0);
Tensor randint(int64_t lo, int64_t hi, const Shape& shape, Generator& gen);  // int64 in [lo, hi)

}  // namespace rotor
