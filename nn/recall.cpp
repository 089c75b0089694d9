#include "rotor/nn/recall.h"

namespace rotor::nn {

void RecallConfig::validate() const {
  const char* op = "recall";
  ROTOR_CHECK(vocab_size >= 4 && vocab_size % 2 == 0 && vocab_size <= (1 << 16), op,
              "vocab_size must be even and in [4, 2^16], got ", vocab_size);
  ROTOR_CHECK(seq_len >= 4 && seq_len % 2 == 0 && seq_len <= (1 << 20), op,
              "seq_len must be even and in [4, 2^20], got ", seq_len);
}

namespace {
RowWriter recall_writer(const RecallConfig& c, bool training) {
  return [c, training](Generator& gen, int64_t* in, int64_t* lab) {
    const int64_t half = c.vocab_size / 2, pairs = c.seq_len / 2;
    std::vector<int64_t> value(size_t(half), -1), tokens(size_t(c.seq_len)), target(size_t(c.seq_len), kIgnoreIndex);
    std::vector<int64_t> seen;  // keys presented so far, in order of first appearance
    for (int64_t i = 0; i < pairs; ++i) {
      // The last pair probes a key seen before; the others draw any key.
      const int64_t k = i + 1 < pairs ? gen.next_int(0, half) : seen[size_t(gen.next_int(0, int64_t(seen.size())))];
      const bool repeat = value[size_t(k)] >= 0;
      if (!repeat) {
        value[size_t(k)] = half + gen.next_int(0, half);
        seen.push_back(k);
      }
      tokens[size_t(2 * i)] = k;
      tokens[size_t(2 * i + 1)] = value[size_t(k)];
      if (repeat) target[size_t(2 * i + 1)] = value[size_t(k)];
    }
    for (int64_t t = 0; t + 1 < c.seq_len; ++t) {
      in[t] = tokens[size_t(t)];
      lab[t] = training ? tokens[size_t(t + 1)] : target[size_t(t + 1)];
    }
  };
}
}  // namespace

TaskData recall_splits(const RecallConfig& c, int64_t train_size, int64_t test_size, uint64_t seed) {
  c.validate();
  TaskData d;
  const RowWriter train_rows = recall_writer(c, true), test_rows = recall_writer(c, false);
  d.train = generate_rows(train_size, c.seq_len - 1, seed, train_rows);
  d.test = generate_rows(test_size, c.seq_len - 1, seed + 10, test_rows);
  std::unordered_set<std::string_view> taken;
  make_rows_distinct(d.train, seed, train_rows, taken, "recall (train)");
  make_rows_distinct(d.test, seed + 10, test_rows, taken, "recall (test)");
  return d;
}

}  // namespace rotor::nn
