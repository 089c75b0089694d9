#include "rotor/nn/copying.h"

#include <algorithm>
#include <string>

namespace rotor::nn {

void CopyingConfig::validate() const {
  const char* op = "copying";
  ROTOR_CHECK(letters >= 2 && letters <= 128, op, "letters must be in [2, 128], got ", letters);
  ROTOR_CHECK(min_len >= 1 && min_len <= max_len, op, "string lengths need 1 <= min_len <= max_len, got ", min_len,
              " and ", max_len);
  ROTOR_CHECK(seq_len > 2 * max_len + 2 && seq_len <= (1 << 20), op, "seq_len ", seq_len,
              " must hold one example of the longest string (> 2 * max_len + 2 = ", 2 * max_len + 2, ")");
  for (int64_t l : eval_lengths) ROTOR_CHECK(l >= 1 && l <= (1 << 16), op, "eval lengths must be in [1, 2^16], got ", l);
}

namespace {

using Strings = std::unordered_set<std::string>;

std::string draw_string(Generator& gen, int64_t letters, int64_t length) {
  std::string s(size_t(length), '\0');
  for (char& c : s) c = char(gen.next_int(0, letters));  // letters <= 128: one char each
  return s;
}

// A string for a training example: redrawn while it is one of the test strings.
std::string train_string(Generator& gen, const CopyingConfig& c, const Strings& banned) {
  for (;;) {
    std::string s = draw_string(gen, c.letters, gen.next_int(c.min_len, c.max_len + 1));
    if (!banned.count(s)) return s;
  }
}

// One evaluation row: `$ s | s` then padding; labels on the copy.
void write_test_row(const CopyingConfig& c, const std::vector<int64_t>& s, int64_t T, int64_t* in, int64_t* lab) {
  const int64_t L = int64_t(s.size()), dollar = c.letters, bar = c.letters + 1, dot = c.letters + 2, pad = c.letters + 3;
  std::fill(lab, lab + T, kIgnoreIndex);
  std::fill(in, in + T, pad);
  in[0] = dollar;
  for (int64_t i = 0; i < L; ++i) in[1 + i] = s[size_t(i)];
  in[1 + L] = bar;
  for (int64_t i = 0; i < L; ++i) {
    if (2 + L + i < T) in[2 + L + i] = s[size_t(i)];
    lab[1 + L + i] = s[size_t(i)];  // the position before each copied letter predicts it
  }
  if (2 + 2 * L < T) in[2 + 2 * L] = dot;
}

RowWriter test_writer(const CopyingConfig& c, int64_t min_len, int64_t max_len, int64_t T) {
  return [c, min_len, max_len, T](Generator& gen, int64_t* in, int64_t* lab) {
    const int64_t L = gen.next_int(min_len, max_len + 1);
    std::vector<int64_t> s(static_cast<size_t>(L));
    for (auto& x : s) x = gen.next_int(0, c.letters);
    write_test_row(c, s, T, in, lab);
  };
}

// The strings (as keys) of a test set's rows.
void collect_strings(const CopyingConfig& c, const TokenData& d, Strings& out) {
  const int64_t T = d.seq_len(), bar = c.letters + 1;
  for (int64_t i = 0; i < d.size(); ++i) {
    const int64_t* in = d.inputs.data<int64_t>() + i * T;
    std::string s;
    for (int64_t t = 1; t < T && in[t] != bar; ++t) s.push_back(char(in[t]));
    out.insert(s);
  }
}

}  // namespace

TaskData copying_splits(const CopyingConfig& c, int64_t train_size, int64_t test_size, uint64_t seed) {
  c.validate();
  TaskData d;
  std::unordered_set<std::string_view> taken;
  const int64_t T_test = 2 * c.max_len + 2;
  const RowWriter test_rows = test_writer(c, c.min_len, c.max_len, T_test);
  d.test = generate_rows(test_size, T_test, seed + 10, test_rows);
  make_rows_distinct(d.test, seed + 10, test_rows, taken, "copying (test)");
  Strings banned;
  collect_strings(c, d.test, banned);
  std::vector<int64_t> lengths = c.eval_lengths;
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  for (size_t j = 0; j < lengths.size(); ++j) {
    const int64_t L = lengths[j];
    d.lengths.push_back({L, generate_rows(test_size, 2 * L + 2, seed + 20 + j, test_writer(c, L, L, 2 * L + 2))});
    collect_strings(c, d.lengths.back().data, banned);
  }
  // Training rows: examples packed into seq_len + 1 tokens, strings outside every test set.
  const int64_t T = c.seq_len;
  d.train = generate_rows(train_size, T, seed, [&c, &banned, T](Generator& gen, int64_t* in, int64_t* lab) {
    std::vector<int64_t> tokens, answer;  // answer[p] = 1 where token p is part of an answer
    while (int64_t(tokens.size()) < T + 1) {
      const std::string s = train_string(gen, c, banned);
      const size_t start = tokens.size();
      tokens.push_back(c.letters);
      for (char x : s) tokens.push_back(int64_t(x));
      tokens.push_back(c.letters + 1);
      for (char x : s) tokens.push_back(int64_t(x));
      tokens.push_back(c.letters + 2);
      answer.resize(tokens.size(), 0);
      if (int64_t(tokens.size()) <= T + 1)
        std::fill(answer.begin() + long(start + 2 + s.size()), answer.end(), 1);
    }
    for (int64_t p = 0; p < T; ++p) {
      in[p] = tokens[size_t(p)];
      lab[p] = answer[size_t(p + 1)] ? tokens[size_t(p + 1)] : kIgnoreIndex;
    }
  });
  return d;
}

}  // namespace rotor::nn
