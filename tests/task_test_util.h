// Helpers shared by the task-generator tests: rows of int64 [N, T] tensors as vectors.
#pragma once
#include <vector>

#include "rotor/core/tensor.h"

namespace testutil {

inline std::vector<int64_t> row(const rotor::Tensor& t, int64_t i) {
  const int64_t T = t.size(1);
  const int64_t* p = t.data<int64_t>() + i * T;
  return std::vector<int64_t>(p, p + T);
}

inline bool same(const rotor::Tensor& a, const rotor::Tensor& b) {
  return a.to_vector<int64_t>() == b.to_vector<int64_t>();
}

}  // namespace testutil
