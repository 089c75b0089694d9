// Suite "tasks": the synthetic task generators (state tracking, copying, in-context recall),
// the exact-sequence metric and the initialisation schemes. Labels are checked against a
// separate computation written here (plain loops, explicit permutation arrays, group facts).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "rotor/core/parallel.h"
#include "rotor/nn/copying.h"
#include "rotor/nn/init.h"
#include "rotor/nn/model.h"
#include "rotor/nn/recall.h"
#include "rotor/nn/state_tracking.h"
#include "task_test_util.h"

using namespace rotor;
using namespace rotor::nn;

using testutil::row;

namespace {
bool same(const TokenData& a, const TokenData& b) {
  return testutil::same(a.inputs, b.inputs) && testutil::same(a.labels, b.labels);
}
std::set<std::vector<int64_t>> input_rows(const TokenData& d) {
  std::set<std::vector<int64_t>> s;
  for (int64_t i = 0; i < d.size(); ++i) s.insert(row(d.inputs, i));
  return s;
}
// The order of element a: the least k >= 1 with a^k = identity (index 0).
int64_t element_order(const Group& g, int64_t a) {
  int64_t x = a, k = 1;
  while (x != 0) x = g.multiply(x, a), ++k;
  return k;
}
}  // namespace

TEST_CASE("groups: tables are groups with the right order, identity first, and the known element orders") {
  for (const char* name : {"S2", "S3", "S4", "A4", "A5", "Z2", "Z7", "S5"}) {
    const Group g = make_group(name);
    const int64_t n = g.order;
    for (int64_t a = 0; a < n; ++a) {
      CHECK(g.multiply(0, a) == a);
      CHECK(g.multiply(a, 0) == a);
      std::set<int64_t> row_set;
      for (int64_t b = 0; b < n; ++b) row_set.insert(g.multiply(a, b));
      CHECK(int64_t(row_set.size()) == n);  // a Latin square: every element has an inverse
    }
    if (n <= 60)
      for (int64_t a = 0; a < n; ++a)
        for (int64_t b = 0; b < n; ++b)
          for (int64_t c = 0; c < n; ++c) REQUIRE(g.multiply(g.multiply(a, b), c) == g.multiply(a, g.multiply(b, c)));
  }
  CHECK(make_group("S2").order == 2);
  CHECK(make_group("S3").order == 6);
  CHECK(make_group("A5").order == 60);
  CHECK(make_group("S5").order == 120);
  // Orders of the elements of A5 (its class sizes): 1 identity, 15 of order 2, 20 of order 3, 24 of order 5.
  std::map<int64_t, int64_t> count;
  const Group a5 = make_group("A5");
  for (int64_t a = 0; a < a5.order; ++a) ++count[element_order(a5, a)];
  CHECK(count == std::map<int64_t, int64_t>{{1, 1}, {2, 15}, {3, 20}, {5, 24}});
  // S3 is not abelian; Z7 is.
  const Group s3 = make_group("S3");
  bool commutes = true;
  for (int64_t a = 0; a < 6; ++a)
    for (int64_t b = 0; b < 6; ++b) commutes &= s3.multiply(a, b) == s3.multiply(b, a);
  CHECK_FALSE(commutes);
  for (const char* bad : {"S1", "S7", "A2", "Z1", "Q8", "S", "S3x"})
    CHECK_THROWS_WITH_AS(make_group(bad), doctest::Contains("[state_tracking]"), Error);
}

TEST_CASE("state tracking rows: BOS, uniform elements, labels = the running product computed independently") {
  // S3 by hand: the permutations of {0,1,2} in lexicographic order, (a·b)(i) = a(b(i)).
  const std::array<std::array<int, 3>, 6> perms = {{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}};
  auto s3_index = [&](const std::array<int, 3>& p) {
    for (int i = 0; i < 6; ++i)
      if (perms[size_t(i)] == p) return int64_t(i);
    return int64_t(-1);
  };
  for (const char* name : {"S2", "Z5", "S3", "A5"}) {
    StateTrackingConfig c;
    c.group = name;
    c.seq_len = 40;
    const Group g = make_group(name);
    TokenData d = state_tracking_generate(g, c, c.seq_len, 200, 3);
    REQUIRE(d.inputs.shape() == Shape{200, 41});
    std::vector<int64_t> counts(size_t(g.order), 0);
    for (int64_t r = 0; r < d.size(); ++r) {
      const auto in = row(d.inputs, r), lab = row(d.labels, r);
      CHECK(in[0] == g.order);  // BOS
      CHECK(lab[0] == kIgnoreIndex);
      int64_t parity = 0, sum = 0;
      std::array<int, 3> prod = {0, 1, 2};
      for (size_t t = 1; t < in.size(); ++t) {
        const int64_t x = in[t];
        REQUIRE(x >= 0);
        REQUIRE(x < g.order);
        ++counts[size_t(x)];
        if (std::string(name) == "S2") {
          parity ^= x;
          CHECK(lab[t] == parity);
        } else if (std::string(name) == "Z5") {
          sum = (sum + x) % 5;
          CHECK(lab[t] == sum);
        } else if (std::string(name) == "S3") {
          std::array<int, 3> next;
          for (int i = 0; i < 3; ++i) next[size_t(i)] = prod[size_t(perms[size_t(x)][size_t(i)])];
          prod = next;
          CHECK(lab[t] == s3_index(prod));
        } else {  // A5: the table's own product (its group facts are checked above)
          sum = g.multiply(sum, x);
          CHECK(lab[t] == sum);
        }
      }
    }
    // Every element is drawn about equally often.
    const double expected = 200.0 * 40.0 / double(g.order);
    for (int64_t k : counts) CHECK(std::abs(double(k) - expected) < 6 * std::sqrt(expected));
  }
}

TEST_CASE("state tracking without BOS and with a length mixture: right-padding carries no label") {
  StateTrackingConfig c;
  c.group = "S2";
  c.seq_len = 16;
  c.min_len = 4;
  c.bos = false;
  c.eval_lengths = {32};
  TaskData d = state_tracking_splits(c, 500, 50, 0);
  REQUIRE(d.train.inputs.shape() == Shape{500, 16});
  std::set<int64_t> lengths;
  for (int64_t r = 0; r < d.train.size(); ++r) {
    const auto in = row(d.train.inputs, r), lab = row(d.train.labels, r);
    int64_t n = 0;
    while (n < 16 && in[size_t(n)] != 3) ++n;  // PAD = order + 1
    lengths.insert(n);
    for (int64_t t = 0; t < 16; ++t) {
      if (t < n) CHECK(lab[size_t(t)] != kIgnoreIndex);
      else {
        CHECK(in[size_t(t)] == 3);
        CHECK(lab[size_t(t)] == kIgnoreIndex);
      }
    }
  }
  CHECK(*lengths.begin() == 4);
  CHECK(*lengths.rbegin() == 16);
  CHECK(lengths.size() == 13);
  // Test rows are all of full length; the length split holds 32-element rows.
  for (int64_t r = 0; r < d.test.size(); ++r) CHECK(row(d.test.labels, r).back() != kIgnoreIndex);
  REQUIRE(d.lengths.size() == 2);
  CHECK(d.lengths[0].length == 16);
  CHECK(d.lengths[1].length == 32);
  CHECK(d.lengths[1].data.inputs.shape() == Shape{50, 32});
}

TEST_CASE("state tracking splits: distinct train rows, no test row in train, deterministic on any thread count") {
  StateTrackingConfig c;
  c.group = "S2";
  c.seq_len = 9;  // 512 sequences: 300 + 150 of them forces redraws
  c.eval_lengths = {18};
  const int threads = num_threads();
  set_num_threads(1);
  TaskData a = state_tracking_splits(c, 300, 150, 5);
  set_num_threads(2);
  TaskData b = state_tracking_splits(c, 300, 150, 5);
  set_num_threads(threads);
  CHECK(same(a.train, b.train));
  CHECK(same(a.test, b.test));
  CHECK(same(a.lengths[1].data, b.lengths[1].data));
  const auto train = input_rows(a.train), test = input_rows(a.test);
  CHECK(train.size() == 300);
  CHECK(test.size() == 150);
  for (const auto& r : test) CHECK(train.count(r) == 0);
  CHECK_FALSE(same(a.train, state_tracking_splits(c, 300, 150, 6).train));
  // More rows than distinct sequences: a clear error, not a hang.
  c.seq_len = 4;
  CHECK_THROWS_WITH_AS(state_tracking_splits(c, 10, 10, 0), doctest::Contains("too few distinct"), Error);
}

TEST_CASE("copying rows: packed `$ s | s .` examples, labels on the copy and its end mark") {
  CopyingConfig c;
  c.letters = 6;
  c.seq_len = 48;
  c.min_len = 2;
  c.max_len = 8;
  c.eval_lengths = {12, 20};
  TaskData d = copying_splits(c, 300, 100, 1);
  const int64_t dollar = 6, bar = 7, dot = 8, pad = 9;
  REQUIRE(d.train.inputs.shape() == Shape{300, 48});
  std::set<std::vector<int64_t>> train_strings;
  for (int64_t r = 0; r < d.train.size(); ++r) {
    const auto in = row(d.train.inputs, r), lab = row(d.train.labels, r);
    CHECK(in[0] == dollar);
    // Walk the examples: $ s | s . — each complete one is labelled on its copy and end mark.
    size_t p = 0;
    while (p < in.size()) {
      REQUIRE(in[p] == dollar);
      size_t q = p + 1;
      for (; q < in.size() && in[q] != bar; ++q) REQUIRE(in[q] < 6);
      const size_t L = q - p - 1;
      const size_t end = q + L + 1;  // the end mark's position
      if (end >= in.size() + 1) {      // cut off: no labels from here on
        for (size_t t = p; t < in.size(); ++t) CHECK(lab[t] == kIgnoreIndex);
        break;
      }
      CHECK(L >= 2);
      CHECK(L <= 8);
      std::vector<int64_t> s(in.begin() + long(p + 1), in.begin() + long(q));
      train_strings.insert(s);
      for (size_t t = p; t < std::min(end, in.size()); ++t) {
        const bool answer = t >= q;  // predicts a letter of the copy or the end mark
        if (t + 1 < in.size()) CHECK(lab[t] == (answer ? in[t + 1] : kIgnoreIndex));
        if (t > q && t < end) CHECK(in[t] == s[t - q - 1]);
      }
      if (end < in.size()) CHECK(in[end] == dot);
      if (end < in.size() && end - 1 < in.size()) CHECK(lab[end - 1] == dot);
      p = end + 1;
    }
  }
  // Test rows: one example, padded; labels are the letters of s at the positions before them.
  auto check_test = [&](const TokenData& t, int64_t lo, int64_t hi) {
    for (int64_t r = 0; r < t.size(); ++r) {
      const auto in = row(t.inputs, r), lab = row(t.labels, r);
      CHECK(in[0] == dollar);
      size_t q = 1;
      while (in[q] != bar) ++q;
      const int64_t L = int64_t(q) - 1;
      CHECK(L >= lo);
      CHECK(L <= hi);
      std::vector<int64_t> s(in.begin() + 1, in.begin() + long(q));
      CHECK(train_strings.count(s) == 0);  // disjoint from every complete training example
      for (size_t i = 0; i < in.size(); ++i) {
        if (i >= q && i < q + size_t(L)) CHECK(lab[i] == s[i - q]);
        else CHECK(lab[i] == kIgnoreIndex);
        if (i > size_t(2 * L + 2)) CHECK(in[i] == pad);
      }
    }
  };
  check_test(d.test, 2, 8);
  REQUIRE(d.lengths.size() == 2);
  CHECK(d.lengths[0].data.inputs.shape() == Shape{100, 26});
  check_test(d.lengths[0].data, 12, 12);
  check_test(d.lengths[1].data, 20, 20);
  CHECK(same(d.train, copying_splits(c, 300, 100, 1).train));
  CHECK_THROWS_WITH_AS(copying_splits(CopyingConfig{26, 20, 2, 16, {}}, 10, 10, 0), doctest::Contains("[copying]"), Error);
}

TEST_CASE("in-context recall rows: a consistent key-value map, test labels on values of repeated keys") {
  RecallConfig c;
  c.vocab_size = 16;
  c.seq_len = 64;
  TaskData d = recall_splits(c, 200, 100, 2);
  REQUIRE(d.train.inputs.shape() == Shape{200, 63});
  for (int64_t r = 0; r < d.train.size(); ++r) {
    const auto in = row(d.train.inputs, r), lab = row(d.train.labels, r);
    for (size_t t = 0; t + 1 < in.size(); ++t) CHECK(lab[t] == in[t + 1]);  // next-token targets everywhere
  }
  int64_t labelled = 0;
  for (int64_t r = 0; r < d.test.size(); ++r) {
    const auto in = row(d.test.inputs, r), lab = row(d.test.labels, r);
    std::map<int64_t, int64_t> value;
    for (size_t t = 0; t + 1 < in.size(); t += 2) {
      const int64_t k = in[t], v = in[t + 1];
      REQUIRE(k >= 0);
      REQUIRE(k < 8);
      REQUIRE(v >= 8);
      REQUIRE(v < 16);
      if (value.count(k)) {
        CHECK(v == value[k]);  // the map never changes within a sequence
        CHECK(lab[t] == v);
        ++labelled;
      } else {
        CHECK(lab[t] == kIgnoreIndex);
        value[k] = v;
      }
      CHECK(lab[t + 1] == kIgnoreIndex);
    }
    // The final key (its value is only a target) was seen before.
    CHECK(value.count(in.back()) == 1);
    CHECK(lab.back() == value[in.back()]);
  }
  CHECK(labelled > 100 * 20);
  const auto train = input_rows(d.train);
  for (const auto& r : input_rows(d.test)) CHECK(train.count(r) == 0);
}

TEST_CASE("sequence_accuracy counts rows whose every labelled position is right") {
  // 3 rows x 2 positions x 3 classes; argmax per position: row0 (2, 0), row1 (1, 1), row2 (0, 2).
  Tensor logits = from_vector<float>({0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1}, {3, 2, 3});
  Tensor labels = from_vector<int64_t>({2, 0, 1, 2, kIgnoreIndex, kIgnoreIndex}, {3, 2});
  Accuracy a = sequence_accuracy(logits, labels);
  CHECK(a.count == 2);  // row 2 has no label
  CHECK(a.correct == 1);
  Tensor partial = from_vector<int64_t>({2, kIgnoreIndex, kIgnoreIndex, 1, 0, 2}, {3, 2});
  CHECK(sequence_accuracy(logits, partial).correct == 3);
}

TEST_CASE("init schemes: reference N(0, 0.02); torch U(±1/sqrt(fan_in)) for Linear, U(±1/sqrt(k)) for conv") {
  ModelConfig c;
  c.vocab_size = 10;
  c.hidden_size = 64;
  c.num_hidden_layers = 1;
  c.num_heads = 2;
  c.use_short_conv = true;
  c.position_embedding.type = "selective_rope";
  for (const std::string scheme : {"reference", "torch"}) {
    c.init = scheme;
    Generator gen(0);
    LanguageModel m(c, gen);
    for (const Parameter& p : m.named_parameters()) {
      const bool linear = p.value.dim() == 2 && p.name != "model.embeddings.weight";
      const bool conv = p.name.ends_with("conv1d.weight");
      if (!linear && !conv) continue;
      const std::vector<float> w = p.value.to_vector<float>();
      double sq = 0, mx = 0;
      for (float x : w) sq += double(x) * x, mx = std::max(mx, std::abs(double(x)));
      const double sd = std::sqrt(sq / double(w.size()));
      if (scheme == "reference") {
        CHECK(sd == doctest::Approx(0.02).epsilon(0.2));
      } else {
        const double bound = 1.0 / std::sqrt(double(fan_in(p.value)));
        CAPTURE(p.name);
        CHECK(mx <= bound);
        CHECK(sd == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.2));  // uniform's std
      }
    }
    // Biases start at zero under both; the config records the scheme.
    for (float b : m.parameter("model.layers.0.attn.gk_proj.1.bias").to_vector<float>()) CHECK(b == 0.0f);
    CHECK(ModelConfig::from_json(m.config.to_json()).init == scheme);
  }
  CHECK(fan_in(zeros({3, 1, 4})) == 4);
  CHECK(fan_in(zeros({5, 7})) == 7);
  c.init = "xavier";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("init must be reference or torch"), Error);
}

TEST_CASE("length curriculum: prefixes of the inner loader's batches, doubling on schedule, resumable") {
  StateTrackingConfig c;
  c.group = "S2";
  c.seq_len = 16;  // 17 columns with BOS
  TokenData train = state_tracking_generate(make_group("S2"), c, c.seq_len, 64, 1);
  BatchLoader plain(train, 8, 4);
  LengthCurriculum curriculum(std::make_unique<BatchLoader>(train, 8, 4), /*start=*/5, /*every=*/3);
  const int64_t expected[] = {5, 5, 5, 10, 10, 10, 17, 17, 17, 17, 17, 17};  // 5·2^⌊i/3⌋, capped at 17
  for (int64_t i = 0; i < 12; ++i) {
    TokenData full = plain.next(), b = curriculum.next();
    CHECK(curriculum.columns(i, 17) == expected[i]);
    REQUIRE(b.inputs.shape() == Shape{8, expected[i]});
    REQUIRE(b.labels.shape() == Shape{8, expected[i]});
    for (int64_t r = 0; r < 8; ++r) {
      const auto in = row(b.inputs, r), lab = row(b.labels, r), fin = row(full.inputs, r), flab = row(full.labels, r);
      CHECK(std::equal(in.begin(), in.end(), fin.begin()));
      CHECK(std::equal(lab.begin(), lab.end(), flab.begin()));
    }
  }
  // A resumed curriculum continues at the length and the rows of the saved one.
  LengthCurriculum resumed(std::make_unique<BatchLoader>(train, 8, 4), 5, 3);
  resumed.restore_position(SafetensorsContent{{}, curriculum.position_metadata()}, "test");
  for (int i = 0; i < 3; ++i) {
    TokenData a = curriculum.next(), b = resumed.next();
    CHECK(same(a, b));
  }
  CHECK(resumed.fingerprint() != plain.fingerprint());  // a checkpoint of one does not resume the other
  CHECK_THROWS_WITH_AS(LengthCurriculum(std::make_unique<BatchLoader>(train, 8, 4), 0, 3),
                       doctest::Contains("LengthCurriculum"), Error);
}
