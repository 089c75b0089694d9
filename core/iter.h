// The loop every elementwise kernel shares: N operands over one shape, each with its own
// strides (0 where it broadcasts). Dims are coalesced so a contiguous tensor becomes a single
// long row, and the work is handed out as runs along the innermost dim.
#pragma once
#include <array>
#include <cstdint>

#include "rotor/core/error.h"
#include "rotor/core/shape.h"

namespace rotor {

template <int N>
struct StridedLoop {
  Shape shape;                    // coalesced; at least one dim
  std::array<Strides, N> strides;  // per operand, in elements

  StridedLoop(const Shape& full_shape, const std::array<Strides, N>& full_strides) {
    for (size_t d = 0; d < full_shape.size(); ++d) {
      if (full_shape[d] == 1) continue;
      bool merge = !shape.empty();
      for (int i = 0; i < N && merge; ++i)
        merge = strides[i].back() == full_strides[i][d] * full_shape[d];
      if (merge) {
        shape.back() *= full_shape[d];
        for (int i = 0; i < N; ++i) strides[i].back() = full_strides[i][d];
      } else {
        shape.push_back(full_shape[d]);
        for (int i = 0; i < N; ++i) strides[i].push_back(full_strides[i][d]);
      }
    }
    ROTOR_CHECK(shape.size() <= 16, "loop", "more than 16 non-trivial dims: ", shape_str(full_shape));
    if (shape.empty() || shape_numel(full_shape) == 0) {
      bool empty = shape_numel(full_shape) == 0;
      shape.assign(1, empty ? 0 : 1);
      for (int i = 0; i < N; ++i) strides[i].assign(1, 0);
    }
  }

  int64_t numel() const { return shape_numel(shape); }
  int64_t inner_size() const { return shape.back(); }
  int64_t inner_stride(int i) const { return strides[i].back(); }

  // Calls fn(offsets, n) for the runs covering linear positions [lo, hi): offsets[i] is the
  // element offset of operand i at the run start, and the run continues for n steps of
  // inner_stride(i).
  template <class F>
  void for_runs(int64_t lo, int64_t hi, F&& fn) const {
    const int nd = int(shape.size());
    int64_t idx[16] = {};
    std::array<int64_t, N> off{};
    int64_t rem = lo;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (int i = 0; i < N; ++i) off[i] += idx[d] * strides[i][d];
    }
    int64_t pos = lo;
    const int64_t inner = shape[nd - 1];
    while (pos < hi) {
      int64_t n = inner - idx[nd - 1];
      if (n > hi - pos) n = hi - pos;
      fn(off, n);
      pos += n;
      idx[nd - 1] += n;
      for (int i = 0; i < N; ++i) off[i] += n * strides[i][nd - 1];
      for (int d = nd - 1; d > 0 && idx[d] == shape[d]; --d) {
        for (int i = 0; i < N; ++i) off[i] += strides[i][d - 1] - shape[d] * strides[i][d];
        idx[d] = 0;
        idx[d - 1] += 1;
      }
    }
  }
};

// Strides of a tensor of shape `from` (with strides `st`) broadcast to shape `to`.
Strides broadcast_strides(const Shape& from, const Strides& st, const Shape& to);

}  // namespace rotor
