// Suite "train", part 3: the MQAR generator (Zoology's semantics) and the batch loader.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "rotor/core/parallel.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/mqar.h"
#include "task_test_util.h"

using namespace rotor;
using namespace rotor::nn;

using testutil::row;
using testutil::same;

TEST_CASE("MQAR rows: context of distinct key-value pairs, queries labelled with the value that followed the key") {
  for (MqarConfig c : {MqarConfig{8192, 64, 4}, MqarConfig{8192, 256, 16}, MqarConfig{100, 32, 8}}) {
    const int64_t n = c.num_kv_pairs, T = c.seq_len, V = c.vocab_size;
    TokenData d = mqar_generate(c, 300, 7);
    REQUIRE(d.inputs.shape() == Shape{300, T});
    REQUIRE(d.labels.shape() == Shape{300, T});
    for (int64_t r = 0; r < d.size(); ++r) {
      auto in = row(d.inputs, r), lab = row(d.labels, r);
      std::set<int64_t> keys, values;
      for (int64_t i = 0; i < n; ++i) {
        CHECK(in[size_t(2 * i)] >= 1);
        CHECK(in[size_t(2 * i)] < V / 2);
        CHECK(in[size_t(2 * i + 1)] >= V / 2);
        CHECK(in[size_t(2 * i + 1)] < V);
        keys.insert(in[size_t(2 * i)]);
        values.insert(in[size_t(2 * i + 1)]);
      }
      CHECK(int64_t(keys.size()) == n);
      CHECK(int64_t(values.size()) == n);
      int64_t labelled = 0;
      for (int64_t t = 0; t < T; ++t) {
        CHECK(in[size_t(t)] >= 0);
        CHECK(in[size_t(t)] < V);
        if (lab[size_t(t)] == kIgnoreIndex) continue;
        ++labelled;
        CHECK(t >= 2 * n);
        CHECK((t - 2 * n) % 2 == 0);  // queries sit at 2n + 2·gap
        // The key at t appears once in the context, followed by the label.
        int64_t found = -1;
        for (int64_t i = 0; i < n; ++i)
          if (in[size_t(2 * i)] == in[size_t(t)]) found = i;
        REQUIRE(found >= 0);
        CHECK(in[size_t(2 * found + 1)] == lab[size_t(t)]);
      }
      CHECK(labelled == n);  // every key is queried exactly once
    }
  }
}

TEST_CASE("MQAR filler tokens are random (Zoology's random_non_queries) or 0 when disabled") {
  MqarConfig c{512, 64, 4};
  TokenData d = mqar_generate(c, 200, 1);
  std::set<int64_t> fillers;
  int64_t below_half = 0, total = 0;
  for (int64_t r = 0; r < d.size(); ++r) {
    auto in = row(d.inputs, r), lab = row(d.labels, r);
    for (int64_t t = 2 * c.num_kv_pairs; t < c.seq_len; ++t)
      if (lab[size_t(t)] == kIgnoreIndex) {
        fillers.insert(in[size_t(t)]);
        below_half += in[size_t(t)] < 256;
        ++total;
      }
  }
  CHECK(fillers.size() > 400);                         // spread over the whole vocabulary
  CHECK(std::abs(double(below_half) / double(total) - 0.5) < 0.03);
  c.random_non_queries = false;
  TokenData z = mqar_generate(c, 20, 1);
  for (int64_t r = 0; r < z.size(); ++r) {
    auto in = row(z.inputs, r), lab = row(z.labels, r);
    for (int64_t t = 2 * c.num_kv_pairs; t < c.seq_len; ++t)
      if (lab[size_t(t)] == kIgnoreIndex) CHECK(in[size_t(t)] == 0);
  }
}

TEST_CASE("MQAR query gaps follow the power law: short gaps dominate") {
  MqarConfig c{8192, 256, 4};  // 124 possible gaps
  TokenData d = mqar_generate(c, 2000, 2);
  const int64_t space = (c.seq_len - 2 * c.num_kv_pairs) / 2;
  double mean_gap = 0;
  int64_t count = 0, first_ten = 0;
  for (int64_t r = 0; r < d.size(); ++r) {
    auto lab = row(d.labels, r);
    for (int64_t t = 0; t < c.seq_len; ++t)
      if (lab[size_t(t)] != kIgnoreIndex) {
        const int64_t gap = (t - 2 * c.num_kv_pairs) / 2;
        mean_gap += double(gap);
        first_ten += gap < 10;
        ++count;
      }
  }
  mean_gap /= double(count);
  // Uniform gaps would average (space-1)/2 ≈ 61.5 with 8% under 10; weights (g+1)^-0.99 put
  // about half the mass on the first ten gaps.
  CHECK(mean_gap < 0.6 * double(space - 1) / 2);
  CHECK(double(first_ten) / double(count) > 0.3);
}

TEST_CASE("MQAR is deterministic, seed dependent and thread-count independent") {
  MqarConfig c{8192, 64, 4};
  TokenData a = mqar_generate(c, 500, 3), b = mqar_generate(c, 500, 3), other = mqar_generate(c, 500, 4);
  CHECK(same(a.inputs, b.inputs));
  CHECK(same(a.labels, b.labels));
  CHECK_FALSE(same(a.inputs, other.inputs));
  set_num_threads(1);
  TokenData serial = mqar_generate(c, 500, 3);
  set_num_threads(0);
  CHECK(same(a.inputs, serial.inputs));
  CHECK(same(a.labels, serial.labels));
  // A prefix of a larger set is the smaller set (row i depends on (seed, i) only).
  TokenData more = mqar_generate(c, 700, 3);
  CHECK(same(more.rows(0, 500).inputs, a.inputs));
}

TEST_CASE("MQAR train and test sets are disjoint, also when collisions are likely") {
  MqarConfig c{8192, 64, 4};
  MqarSplits s = mqar_splits(c, 1000, 300, 0);
  std::set<std::vector<int64_t>> train;
  for (int64_t r = 0; r < s.train.size(); ++r) train.insert(row(s.train.inputs, r));
  for (int64_t r = 0; r < s.test.size(); ++r) CHECK(train.count(row(s.test.inputs, r)) == 0);
  CHECK(same(s.train.inputs, mqar_generate(c, 1000, 0).inputs));

  // 3 keys x 4 values, no random filler: 12 possible sequences, so the raw test stream
  // repeats train rows often and only the filter keeps the sets apart.
  MqarConfig tiny{8, 4, 1, 0.01, false};
  MqarSplits t = mqar_splits(tiny, 6, 20, 0);
  std::set<std::vector<int64_t>> tiny_train;
  for (int64_t r = 0; r < t.train.size(); ++r) tiny_train.insert(row(t.train.inputs, r));
  TokenData raw = mqar_generate(tiny, 20, 10);
  int64_t raw_collisions = 0;
  for (int64_t r = 0; r < raw.size(); ++r) raw_collisions += tiny_train.count(row(raw.inputs, r));
  CHECK(raw_collisions > 0);
  for (int64_t r = 0; r < t.test.size(); ++r) {
    CHECK(tiny_train.count(row(t.test.inputs, r)) == 0);
    auto in = row(t.test.inputs, r), lab = row(t.test.labels, r);
    CHECK(lab[2] == in[1]);  // redrawn rows are still valid MQAR rows
  }
  // With every sequence in the train set, no disjoint test set exists.
  CHECK_THROWS_WITH_AS(mqar_splits(tiny, 400, 5, 0), doctest::Contains("too few distinct sequences"), Error);
}

TEST_CASE("MQAR rejects sizes Zoology rejects") {
  CHECK_THROWS_AS(mqar_generate(MqarConfig{8192, 63, 4}, 1, 0), Error);  // odd length
  CHECK_THROWS_AS(mqar_generate(MqarConfig{8192, 64, 17}, 1, 0), Error);  // 4n > T
  CHECK_THROWS_AS(mqar_generate(MqarConfig{64, 64, 4}, 1, 0), Error);     // V <= T
}

TEST_CASE("BatchLoader: each epoch visits every row once in a new order; a position resumes it") {
  const int64_t N = 12, T = 3;
  std::vector<int64_t> ids(size_t(N * T));
  for (int64_t i = 0; i < N * T; ++i) ids[size_t(i)] = i / T;  // row i holds the value i
  TokenData d{from_vector<int64_t>(ids, {N, T}), from_vector<int64_t>(ids, {N, T})};
  BatchLoader loader(d, 4, 9);
  std::vector<int64_t> epoch0, epoch1;
  for (int b = 0; b < 3; ++b)
    for (int64_t v : loader.next().inputs.to_vector<int64_t>()) epoch0.push_back(v);
  BatchLoader::Position saved = loader.position();
  for (int b = 0; b < 3; ++b)
    for (int64_t v : loader.next().inputs.to_vector<int64_t>()) epoch1.push_back(v);
  std::multiset<int64_t> s0(epoch0.begin(), epoch0.end()), s1(epoch1.begin(), epoch1.end());
  for (int64_t i = 0; i < N; ++i) {
    CHECK(s0.count(i) == size_t(T));
    CHECK(s1.count(i) == size_t(T));
  }
  CHECK(epoch0 != epoch1);
  BatchLoader resumed(d, 4, 9);
  resumed.set_position(saved);
  std::vector<int64_t> again;
  for (int b = 0; b < 3; ++b)
    for (int64_t v : resumed.next().inputs.to_vector<int64_t>()) again.push_back(v);
  CHECK(again == epoch1);
  CHECK_THROWS_AS(BatchLoader(d, 13, 0), Error);
}
