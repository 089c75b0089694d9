#include "rotor/kernels/rotary.h"

#include <algorithm>
#include <cmath>

#include "rotor/core/error.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/rotary_simd.h"

namespace rotor::kernels {

namespace {

void check_rotary(const char* op, int64_t N, int64_t D) {
  ROTOR_CHECK(N >= 0, op, "N must be >= 0, got ", N);
  ROTOR_CHECK(D > 0 && D % 2 == 0, op, "D must be positive and even (D/2 complex pairs), got ", D);
}

int64_t row_grain(int64_t D) { return std::max<int64_t>(1, kParallelGrain / D); }

template <RotaryLayout L, class T>
void forward_rows(T* out, const T* x, const T* theta, int64_t lo, int64_t hi, int64_t D) {
  using simd::Batch;
  const int64_t R = D / 2, W = simd::kWidth<T>;
  for (int64_t i = lo; i < hi; ++i) {
    for (int64_t j = 0; j < R; j += W) {
      const int64_t n = std::min(W, R - j);
      Batch<T> s, c;
      simd::sincos(simd::load_n(theta + i * R + j, n), s, c);
      simd::rotate_pairs<L>(out + i * D, x + i * D, R, j, n, c, s);
    }
  }
}

template <RotaryLayout L, class T>
void backward_rows(T* dx, T* dtheta, const T* dout, const T* x, const T* theta, int64_t lo, int64_t hi, int64_t D) {
  using simd::Batch;
  const int64_t R = D / 2, W = simd::kWidth<T>;
  for (int64_t i = lo; i < hi; ++i) {
    for (int64_t j = 0; j < R; j += W) {
      const int64_t n = std::min(W, R - j);
      Batch<T> s, c;
      simd::sincos(simd::load_n(theta + i * R + j, n), s, c);
      Batch<T> dth =
          simd::unrotate_pairs<L>(dx ? dx + i * D : nullptr, dout + i * D, dtheta ? x + i * D : nullptr, R, j, n, c, s);
      if (dtheta) simd::store_n(dtheta + i * R + j, dth, n);
    }
  }
}

}  // namespace

template <class T>
void rotary_forward(T* out, const T* x, const T* theta, int64_t N, int64_t D, RotaryLayout layout) {
  check_rotary("rotary_forward", N, D);
  parallel_for(N, row_grain(D), [&](int64_t lo, int64_t hi) {
    if (layout == RotaryLayout::HalfSplit)
      forward_rows<RotaryLayout::HalfSplit>(out, x, theta, lo, hi, D);
    else
      forward_rows<RotaryLayout::Interleaved>(out, x, theta, lo, hi, D);
  });
}

template <class T>
void rotary_backward(T* dx, T* dtheta, const T* dout, const T* x, const T* theta, int64_t N, int64_t D,
                     RotaryLayout layout) {
  check_rotary("rotary_backward", N, D);
  if (!dx && !dtheta) return;
  parallel_for(N, row_grain(D), [&](int64_t lo, int64_t hi) {
    if (layout == RotaryLayout::HalfSplit)
      backward_rows<RotaryLayout::HalfSplit>(dx, dtheta, dout, x, theta, lo, hi, D);
    else
      backward_rows<RotaryLayout::Interleaved>(dx, dtheta, dout, x, theta, lo, hi, D);
  });
}

template <class T>
void rotary_forward_reference(T* out, const T* x, const T* theta, int64_t N, int64_t D, RotaryLayout layout) {
  check_rotary("rotary_forward_reference", N, D);
  const int64_t R = D / 2;
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * D;
    T* oi = out + i * D;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t a = simd::re_index(layout, r), b = simd::im_index(layout, R, r);
      const T c = std::cos(theta[i * R + r]), s = std::sin(theta[i * R + r]);
      const T re = xi[a], im = xi[b];
      oi[a] = re * c - im * s;
      oi[b] = re * s + im * c;
    }
  }
}

template <class T>
void rotary_backward_reference(T* dx, T* dtheta, const T* dout, const T* x, const T* theta, int64_t N, int64_t D,
                               RotaryLayout layout) {
  check_rotary("rotary_backward_reference", N, D);
  const int64_t R = D / 2;
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * D;
    const T* gi = dout + i * D;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t a = simd::re_index(layout, r), b = simd::im_index(layout, R, r);
      const T c = std::cos(theta[i * R + r]), s = std::sin(theta[i * R + r]);
      const T g0 = gi[a], g1 = gi[b];
      if (dtheta) dtheta[i * R + r] = g0 * (-xi[a] * s - xi[b] * c) + g1 * (xi[a] * c - xi[b] * s);
      if (dx) {
        dx[i * D + a] = g0 * c + g1 * s;
        dx[i * D + b] = -g0 * s + g1 * c;
      }
    }
  }
}

#define ROTOR_INSTANTIATE(T)                                                                              \
  template void rotary_forward<T>(T*, const T*, const T*, int64_t, int64_t, RotaryLayout);                \
  template void rotary_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t, RotaryLayout); \
  template void rotary_forward_reference<T>(T*, const T*, const T*, int64_t, int64_t, RotaryLayout);      \
  template void rotary_backward_reference<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t, RotaryLayout);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
