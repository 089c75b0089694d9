#include "rotor/nn/mqar.h"

#include <cmath>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "rotor/core/generator.h"
#include "rotor/core/parallel.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/tasks.h"

namespace rotor::nn {

void MqarConfig::validate() const {
  const char* op = "mqar";
  ROTOR_CHECK(seq_len > 0 && seq_len % 2 == 0, op, "seq_len must be positive and even, got ", seq_len);
  ROTOR_CHECK(vocab_size > seq_len, op, "vocab_size ", vocab_size, " must exceed seq_len ", seq_len);
  ROTOR_CHECK(num_kv_pairs > 0 && 4 * num_kv_pairs <= seq_len, op, "num_kv_pairs ", num_kv_pairs,
              " must be positive with 4 * num_kv_pairs <= seq_len ", seq_len);
  ROTOR_CHECK(power_a > 0, op, "power_a must be positive, got ", power_a);
}

namespace {

// n distinct integers from [lo, hi) by rejection (n is far below hi - lo here).
void distinct(Generator& gen, int64_t lo, int64_t hi, int64_t n, int64_t* out) {
  for (int64_t i = 0; i < n;) {
    const int64_t x = gen.next_int(lo, hi);
    bool seen = false;
    for (int64_t j = 0; j < i; ++j) seen |= out[j] == x;
    if (!seen) out[i++] = x;
  }
}

// One row: the stream of Generator(row_seed) decides everything.
void generate_row(const MqarConfig& c, const std::vector<double>& weights, uint64_t row_seed, int64_t* in,
                  int64_t* lab) {
  Generator gen(row_seed);
  const int64_t n = c.num_kv_pairs, T = c.seq_len, half = c.vocab_size / 2;
  std::vector<int64_t> keys(static_cast<size_t>(n)), values(static_cast<size_t>(n)), gaps(static_cast<size_t>(n));
  distinct(gen, 1, half, n, keys.data());
  distinct(gen, half, c.vocab_size, n, values.data());
  // Gaps without replacement, proportional to the weights of the gaps still available.
  std::vector<double> w = weights;
  for (int64_t i = 0; i < n; ++i) {
    double total = 0;
    for (double x : w) total += x;
    double u = gen.next_uniform() * total;
    int64_t pick = -1, last = -1;
    for (int64_t g = 0; g < int64_t(w.size()); ++g) {
      if (w[size_t(g)] == 0) continue;
      last = g;
      if (u < w[size_t(g)]) {
        pick = g;
        break;
      }
      u -= w[size_t(g)];
    }
    if (pick < 0) pick = last;  // rounding left u past the end
    gaps[size_t(i)] = pick;
    w[size_t(pick)] = 0;
  }
  for (int64_t t = 0; t < T; ++t) {
    in[t] = 0;
    lab[t] = kIgnoreIndex;
  }
  for (int64_t i = 0; i < n; ++i) {
    in[2 * i] = keys[size_t(i)];
    in[2 * i + 1] = values[size_t(i)];
    const int64_t q = 2 * n + 2 * gaps[size_t(i)];
    in[q] = keys[size_t(i)];
    lab[q] = values[size_t(i)];
  }
  for (int64_t t = 0; t < T; ++t)
    if (in[t] == 0) in[t] = c.random_non_queries ? gen.next_int(0, c.vocab_size) : 0;
}

std::vector<double> gap_weights(const MqarConfig& c) {
  const int64_t space = (c.seq_len - 2 * c.num_kv_pairs) / 2;
  std::vector<double> w(static_cast<size_t>(space));
  for (int64_t i = 0; i < space; ++i) w[size_t(i)] = c.power_a * std::pow(double(i + 1), c.power_a - 1.0);
  return w;
}

}  // namespace

TokenData mqar_generate(const MqarConfig& config, int64_t num_examples, uint64_t seed) {
  config.validate();
  ROTOR_CHECK(num_examples >= 0, "mqar", "num_examples must be >= 0, got ", num_examples);
  const int64_t T = config.seq_len;
  TokenData d{Tensor::empty({num_examples, T}, DType::Int64), Tensor::empty({num_examples, T}, DType::Int64)};
  const std::vector<double> w = gap_weights(config);
  int64_t* in = d.inputs.data<int64_t>();
  int64_t* lab = d.labels.data<int64_t>();
  parallel_for(num_examples, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) generate_row(config, w, task_row_seed(seed, i, 0), in + i * T, lab + i * T);
  });
  return d;
}

MqarSplits mqar_splits(const MqarConfig& config, int64_t train_size, int64_t test_size, uint64_t seed) {
  MqarSplits s{mqar_generate(config, train_size, seed), mqar_generate(config, test_size, seed + 10)};
  std::unordered_set<std::string_view> train_rows;
  for (int64_t i = 0; i < s.train.size(); ++i) train_rows.insert(row_bytes(s.train.inputs, i));
  const std::vector<double> w = gap_weights(config);
  const int64_t T = config.seq_len;
  constexpr int64_t kAttempts = 100;
  for (int64_t i = 0; i < s.test.size(); ++i) {
    for (int64_t attempt = 1; train_rows.count(row_bytes(s.test.inputs, i)); ++attempt) {
      ROTOR_CHECK(attempt <= kAttempts, "mqar", "test row ", i, " still equals a train row after ", kAttempts,
                  " redraws: the task (vocab ", config.vocab_size, ", seq_len ", T, ", ", config.num_kv_pairs,
                  " pairs) has too few distinct sequences for ", train_size, " train rows");
      generate_row(config, w, task_row_seed(seed + 10, i, attempt), s.test.inputs.data<int64_t>() + i * T,
                   s.test.labels.data<int64_t>() + i * T);
    }
  }
  return s;
}

}  // namespace rotor::nn
