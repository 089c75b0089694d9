#include "rotor/nn/state_tracking.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

namespace rotor::nn {

namespace {

bool is_even(const std::vector<int>& p) {
  int inversions = 0;
  for (size_t i = 0; i < p.size(); ++i)
    for (size_t j = i + 1; j < p.size(); ++j) inversions += p[i] > p[j];
  return inversions % 2 == 0;
}

Group permutation_group(const std::string& name, int n, bool even_only) {
  std::vector<std::vector<int>> elements;
  std::vector<int> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  do {  // lexicographic order, identity first
    if (!even_only || is_even(p)) elements.push_back(p);
  } while (std::next_permutation(p.begin(), p.end()));
  Group g{name, int64_t(elements.size()), {}};
  g.table.resize(size_t(g.order * g.order));
  std::vector<int> ab(static_cast<size_t>(n));
  for (int64_t a = 0; a < g.order; ++a)
    for (int64_t b = 0; b < g.order; ++b) {
      for (int i = 0; i < n; ++i) ab[size_t(i)] = elements[size_t(a)][size_t(elements[size_t(b)][size_t(i)])];
      const auto at = std::lower_bound(elements.begin(), elements.end(), ab);  // sorted: binary search
      g.table[size_t(a * g.order + b)] = int32_t(at - elements.begin());
    }
  return g;
}

}  // namespace

Group make_group(const std::string& name) {
  const char* op = "state_tracking";
  ROTOR_CHECK(name.size() >= 2 && (name[0] == 'S' || name[0] == 'A' || name[0] == 'Z'), op,
              "group must be S<n>, A<n> or Z<m>, got '", name, "'");
  char* end = nullptr;
  const long n = std::strtol(name.c_str() + 1, &end, 10);
  ROTOR_CHECK(*end == 0 && end != name.c_str() + 1, op, "group must be S<n>, A<n> or Z<m>, got '", name, "'");
  if (name[0] == 'Z') {
    ROTOR_CHECK(n >= 2 && n <= 1024, op, "cyclic group order must be in [2, 1024], got ", n);
    Group g{name, n, {}};
    g.table.resize(size_t(n * n));
    for (long a = 0; a < n; ++a)
      for (long b = 0; b < n; ++b) g.table[size_t(a * n + b)] = int32_t((a + b) % n);
    return g;
  }
  if (name[0] == 'S') ROTOR_CHECK(n >= 2 && n <= 6, op, "symmetric group S<n> needs 2 <= n <= 6, got ", n);
  if (name[0] == 'A') ROTOR_CHECK(n >= 3 && n <= 6, op, "alternating group A<n> needs 3 <= n <= 6, got ", n);
  return permutation_group(name, int(n), name[0] == 'A');
}

void StateTrackingConfig::validate() const {
  const char* op = "state_tracking";
  make_group(group);
  ROTOR_CHECK(seq_len >= 1 && seq_len <= (1 << 20), op, "seq_len must be in [1, 2^20], got ", seq_len);
  ROTOR_CHECK(min_len >= 0 && min_len <= seq_len, op, "min_len must be in [0, seq_len ", seq_len, "], got ", min_len);
  for (int64_t l : eval_lengths)
    ROTOR_CHECK(l >= 1 && l <= (1 << 20), op, "eval lengths must be in [1, 2^20], got ", l);
}

namespace {
// A row of `length` elements drawn uniformly (fewer, right-padded, when min_len asks for it).
RowWriter row_writer(const Group& g, const StateTrackingConfig& c, int64_t length, int64_t min_len) {
  return [&g, length, min_len, bos = c.bos](Generator& gen, int64_t* in, int64_t* lab) {
    const int64_t bos_token = g.order, pad_token = g.order + 1, T = length + (bos ? 1 : 0);
    const int64_t n = min_len > 0 ? gen.next_int(min_len, length + 1) : length;
    int64_t t = 0;
    if (bos) in[t] = bos_token, lab[t] = kIgnoreIndex, ++t;
    int64_t y = 0;  // the identity
    for (int64_t i = 0; i < n; ++i, ++t) {
      const int64_t x = gen.next_int(0, g.order);
      y = g.multiply(y, x);
      in[t] = x;
      lab[t] = y;
    }
    for (; t < T; ++t) in[t] = pad_token, lab[t] = kIgnoreIndex;
  };
}
}  // namespace

TokenData state_tracking_generate(const Group& g, const StateTrackingConfig& c, int64_t length, int64_t n,
                                  uint64_t seed) {
  c.validate();
  return generate_rows(n, length + (c.bos ? 1 : 0), seed, row_writer(g, c, length, 0));
}

TaskData state_tracking_splits(const StateTrackingConfig& c, int64_t train_size, int64_t test_size, uint64_t seed) {
  c.validate();
  const Group g = make_group(c.group);
  const int64_t T = c.seq_len + (c.bos ? 1 : 0);
  const RowWriter train_rows = row_writer(g, c, c.seq_len, c.min_len), test_rows = row_writer(g, c, c.seq_len, 0);
  TaskData d;
  d.train = generate_rows(train_size, T, seed, train_rows);
  d.test = generate_rows(test_size, T, seed + 10, test_rows);
  std::unordered_set<std::string_view> taken;
  make_rows_distinct(d.train, seed, train_rows, taken, "state_tracking (train)");
  make_rows_distinct(d.test, seed + 10, test_rows, taken, "state_tracking (test)");
  d.lengths.push_back({c.seq_len, d.test});
  for (size_t j = 0; j < c.eval_lengths.size(); ++j) {
    const int64_t L = c.eval_lengths[j];
    if (L == c.seq_len) continue;
    d.lengths.push_back({L, state_tracking_generate(g, c, L, test_size, seed + 20 + j)});
  }
  std::sort(d.lengths.begin(), d.lengths.end(), [](const auto& a, const auto& b) { return a.length < b.length; });
  return d;
}

}  // namespace rotor::nn
