#include "rotor/kernels/rope.h"

#include <algorithm>
#include <cmath>

#include "rotor/core/parallel.h"
#include "rotor/kernels/rotary_simd.h"

namespace rotor::kernels {

namespace {

using simd::Batch;

// Rows (b,t) in [lo, hi): the angles of a row are shared by its H heads, so each sin/cos batch
// serves 2H rotations.
template <RotaryLayout L, class T>
void forward_rows(T* q_out, T* k_out, const T* q, const T* k, const T* omega, int64_t position_offset,
                  const RopeShape& sh, int64_t lo, int64_t hi) {
  const int64_t R = sh.D / 2, W = simd::kWidth<T>, HD = sh.H * sh.D;
  for (int64_t row = lo; row < hi; ++row) {
    const Batch<T> pos(T(row % sh.T + position_offset));
    for (int64_t j = 0; j < R; j += W) {
      const int64_t n = std::min(W, R - j);
      Batch<T> s, c;
      simd::sincos(pos * simd::load_n(omega + j, n), s, c);
      for (int64_t h = 0; h < sh.H; ++h) {
        const int64_t at = row * HD + h * sh.D;
        simd::rotate_pairs<L>(q_out + at, q + at, R, j, n, c, s);
        if (k) simd::rotate_pairs<L>(k_out + at, k + at, R, j, n, c, s);
      }
    }
  }
}

template <RotaryLayout L, class T>
void backward_rows(T* dq, T* dk, const T* dq_out, const T* dk_out, const T* omega, int64_t position_offset,
                   const RopeShape& sh, int64_t lo, int64_t hi) {
  const int64_t R = sh.D / 2, W = simd::kWidth<T>, HD = sh.H * sh.D;
  if (dq && !dq_out) std::fill(dq + lo * HD, dq + hi * HD, T(0));
  if (dk && !dk_out) std::fill(dk + lo * HD, dk + hi * HD, T(0));
  const bool do_q = dq && dq_out, do_k = dk && dk_out;
  if (!do_q && !do_k) return;
  for (int64_t row = lo; row < hi; ++row) {
    const Batch<T> pos(T(row % sh.T + position_offset));
    for (int64_t j = 0; j < R; j += W) {
      const int64_t n = std::min(W, R - j);
      Batch<T> s, c;
      simd::sincos(pos * simd::load_n(omega + j, n), s, c);
      for (int64_t h = 0; h < sh.H; ++h) {
        const int64_t at = row * HD + h * sh.D;
        if (do_q) simd::unrotate_pairs<L>(dq + at, dq_out + at, static_cast<const T*>(nullptr), R, j, n, c, s);
        if (do_k) simd::unrotate_pairs<L>(dk + at, dk_out + at, static_cast<const T*>(nullptr), R, j, n, c, s);
      }
    }
  }
}

int64_t row_grain(const RopeShape& sh) { return std::max<int64_t>(1, kParallelGrain / (sh.H * sh.D)); }

}  // namespace

template <class T>
void rope_frequencies(T* omega, int64_t D, double base) {
  ROTOR_CHECK(D > 0 && D % 2 == 0, "rope_frequencies", "D must be positive and even, got ", D);
  ROTOR_CHECK(base > 0, "rope_frequencies", "base must be positive, got ", base);
  // 1 / base^{2r/D} rather than base^{-2r/D}: the same rounding as rotary_temperature's Rope type.
  for (int64_t r = 0; r < D / 2; ++r) omega[r] = T(1.0 / std::pow(base, double(2 * r) / double(D)));
}

template <class T>
void rope_forward(T* q_out, T* k_out, const T* q, const T* k, const T* omega, int64_t position_offset, RopeShape shape,
                  RotaryLayout layout) {
  simd::check_rope_shape("rope_forward", shape);
  ROTOR_CHECK(!k == !k_out, "rope_forward", "k and k_out must both be given or both be null");
  if (shape.H == 0) return;
  parallel_for(shape.B * shape.T, row_grain(shape), [&](int64_t lo, int64_t hi) {
    if (layout == RotaryLayout::HalfSplit)
      forward_rows<RotaryLayout::HalfSplit>(q_out, k_out, q, k, omega, position_offset, shape, lo, hi);
    else
      forward_rows<RotaryLayout::Interleaved>(q_out, k_out, q, k, omega, position_offset, shape, lo, hi);
  });
}

template <class T>
void rope_backward(T* dq, T* dk, const T* dq_out, const T* dk_out, const T* omega, int64_t position_offset,
                   RopeShape shape, RotaryLayout layout) {
  simd::check_rope_shape("rope_backward", shape);
  if (shape.H == 0) return;
  parallel_for(shape.B * shape.T, row_grain(shape), [&](int64_t lo, int64_t hi) {
    if (layout == RotaryLayout::HalfSplit)
      backward_rows<RotaryLayout::HalfSplit>(dq, dk, dq_out, dk_out, omega, position_offset, shape, lo, hi);
    else
      backward_rows<RotaryLayout::Interleaved>(dq, dk, dq_out, dk_out, omega, position_offset, shape, lo, hi);
  });
}

template <class T>
void rope_forward_reference(T* q_out, T* k_out, const T* q, const T* k, const T* omega, int64_t position_offset,
                            RopeShape shape, RotaryLayout layout) {
  simd::check_rope_shape("rope_forward_reference", shape);
  const int64_t R = shape.D / 2;
  for (int64_t b = 0; b < shape.B; ++b)
    for (int64_t t = 0; t < shape.T; ++t)
      for (int64_t h = 0; h < shape.H; ++h)
        for (int64_t r = 0; r < R; ++r) {
          const T theta = T(t + position_offset) * omega[r];
          const T c = std::cos(theta), s = std::sin(theta);
          const int64_t at = ((b * shape.T + t) * shape.H + h) * shape.D;
          const int64_t a = at + simd::re_index(layout, r), i = at + simd::im_index(layout, R, r);
          for (int which = 0; which < 2; ++which) {
            const T* x = which ? k : q;
            T* out = which ? k_out : q_out;
            if (!x) continue;
            const T re = x[a], im = x[i];
            out[a] = re * c - im * s;
            out[i] = re * s + im * c;
          }
        }
}

template <class T>
void rope_backward_reference(T* dq, T* dk, const T* dq_out, const T* dk_out, const T* omega, int64_t position_offset,
                             RopeShape shape, RotaryLayout layout) {
  simd::check_rope_shape("rope_backward_reference", shape);
  const int64_t R = shape.D / 2;
  for (int64_t b = 0; b < shape.B; ++b)
    for (int64_t t = 0; t < shape.T; ++t)
      for (int64_t h = 0; h < shape.H; ++h)
        for (int64_t r = 0; r < R; ++r) {
          const T theta = T(t + position_offset) * omega[r];
          const T c = std::cos(theta), s = std::sin(theta);
          const int64_t at = ((b * shape.T + t) * shape.H + h) * shape.D;
          const int64_t a = at + simd::re_index(layout, r), i = at + simd::im_index(layout, R, r);
          for (int which = 0; which < 2; ++which) {
            const T* g = which ? dk_out : dq_out;
            T* dx = which ? dk : dq;
            if (!dx) continue;
            const T g0 = g ? g[a] : T(0), g1 = g ? g[i] : T(0);
            dx[a] = g0 * c + g1 * s;
            dx[i] = -g0 * s + g1 * c;
          }
        }
}

#define ROTOR_INSTANTIATE(T)                                                                                       \
  template void rope_frequencies<T>(T*, int64_t, double);                                                          \
  template void rope_forward<T>(T*, T*, const T*, const T*, const T*, int64_t, RopeShape, RotaryLayout);           \
  template void rope_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, RopeShape, RotaryLayout);          \
  template void rope_forward_reference<T>(T*, T*, const T*, const T*, const T*, int64_t, RopeShape, RotaryLayout); \
  template void rope_backward_reference<T>(T*, T*, const T*, const T*, const T*, int64_t, RopeShape, RotaryLayout);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
