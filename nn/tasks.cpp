#include "rotor/nn/tasks.h"

#include "rotor/core/parallel.h"

namespace rotor::nn {

std::string_view row_bytes(const Tensor& rows, int64_t i) {
  const int64_t T = rows.size(1);
  return {reinterpret_cast<const char*>(rows.data<int64_t>() + i * T), size_t(T) * sizeof(int64_t)};
}

uint64_t task_row_seed(uint64_t seed, int64_t i, int64_t attempt) {
  return Generator(seed).bits(uint64_t(i) | (uint64_t(attempt) << 40));
}

TokenData generate_rows(int64_t n, int64_t T, uint64_t seed, const RowWriter& write) {
  ROTOR_CHECK(n >= 0 && T > 0, "generate_rows", "need n >= 0 rows of length T > 0, got ", n, " x ", T);
  TokenData d{Tensor::empty({n, T}, DType::Int64), Tensor::empty({n, T}, DType::Int64)};
  int64_t* in = d.inputs.data<int64_t>();
  int64_t* lab = d.labels.data<int64_t>();
  parallel_for(n, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      Generator gen(task_row_seed(seed, i, 0));
      write(gen, in + i * T, lab + i * T);
    }
  });
  return d;
}

void make_rows_distinct(TokenData& d, uint64_t seed, const RowWriter& write,
                        std::unordered_set<std::string_view>& taken, const std::string& what) {
  constexpr int64_t kAttempts = 100;
  const int64_t T = d.seq_len();
  for (int64_t i = 0; i < d.size(); ++i) {
    for (int64_t attempt = 1; taken.count(row_bytes(d.inputs, i)); ++attempt) {
      ROTOR_CHECK(attempt <= kAttempts, what, "row ", i, " still repeats an earlier row after ", kAttempts,
                  " redraws: the task has too few distinct sequences for the sizes asked");
      Generator gen(task_row_seed(seed, i, attempt));
      write(gen, d.inputs.data<int64_t>() + i * T, d.labels.data<int64_t>() + i * T);
    }
    taken.insert(row_bytes(d.inputs, i));
  }
}

}  // namespace rotor::nn
