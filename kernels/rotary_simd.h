// Batch-level building blocks shared by the rotation kernels (rotary, rope, selective_rope):
// partial loads for row tails, the two complex layouts, and the rotation step itself.
// Internal header: included by kernel .cpp files only.
#pragma once
#include <complex>
#include <cstdint>
#include <type_traits>

#include "rotor/kernels/simd.h"  // xsimd, behind the GCC 12 false-positive workaround

#include "rotor/core/error.h"
#include "rotor/kernels/rotary.h"
#include "rotor/kernels/sincos.h"

namespace rotor::kernels::simd {

template <class T>
using Batch = xsimd::batch<T>;
template <class T>
constexpr int64_t kWidth = int64_t(Batch<T>::size);
constexpr std::size_t kAlign = xsimd::default_arch::alignment();

// n <= kWidth elements at p; missing lanes read as zero and are never written.
template <class T>
inline Batch<T> load_n(const T* p, int64_t n) {
  if (n == kWidth<T>) return Batch<T>::load_unaligned(p);
  return kernels::load_first(p, n);
}

template <class T>
inline void store_n(T* p, const Batch<T>& v, int64_t n) {
  if (n == kWidth<T>) return v.store_unaligned(p);
  kernels::store_first(p, v, n);
}

// Calls body(std::true_type) when every batch of a row of R complex numbers is full
// (R % kWidth == 0), body(std::false_type) otherwise: with n a constant kWidth in the common
// case, the tail handling of load_n / store_n folds away.
template <class T, class F>
inline void dispatch_full(int64_t R, F&& body) {
  if (R % kWidth<T> == 0)
    body(std::true_type{});
  else
    body(std::false_type{});
}

// Complex numbers j .. j+n-1 of a row x holding R of them in layout L: real and imaginary parts.
template <RotaryLayout L, class T>
inline void load_pairs(const T* x, int64_t R, int64_t j, int64_t n, Batch<T>& re, Batch<T>& im) {
  if constexpr (L == RotaryLayout::HalfSplit) {
    re = load_n(x + j, n);
    im = load_n(x + R + j, n);
  } else if (n == kWidth<T>) {
    auto z = xsimd::batch<std::complex<T>>::load_unaligned(reinterpret_cast<const std::complex<T>*>(x + 2 * j));
    re = z.real();
    im = z.imag();
  } else {
    alignas(kAlign) T a[kWidth<T>] = {}, b[kWidth<T>] = {};
    for (int64_t i = 0; i < n; ++i) a[i] = x[2 * (j + i)], b[i] = x[2 * (j + i) + 1];
    re = Batch<T>::load_aligned(a);
    im = Batch<T>::load_aligned(b);
  }
}

template <RotaryLayout L, class T>
inline void store_pairs(T* x, int64_t R, int64_t j, int64_t n, const Batch<T>& re, const Batch<T>& im) {
  if constexpr (L == RotaryLayout::HalfSplit) {
    store_n(x + j, re, n);
    store_n(x + R + j, im, n);
  } else if (n == kWidth<T>) {
    xsimd::batch<std::complex<T>>(re, im).store_unaligned(reinterpret_cast<std::complex<T>*>(x + 2 * j));
  } else {
    alignas(kAlign) T a[kWidth<T>], b[kWidth<T>];
    re.store_aligned(a);
    im.store_aligned(b);
    for (int64_t i = 0; i < n; ++i) x[2 * (j + i)] = a[i], x[2 * (j + i) + 1] = b[i];
  }
}

// out = x · e^{iθ} for complex numbers j .. j+n-1 of one row, given c = cos θ, s = sin θ.
template <RotaryLayout L, class T>
inline void rotate_pairs(T* out, const T* x, int64_t R, int64_t j, int64_t n, const Batch<T>& c, const Batch<T>& s) {
  Batch<T> re, im;
  load_pairs<L>(x, R, j, n, re, im);
  store_pairs<L>(out, R, j, n, xsimd::fms(re, c, im * s), xsimd::fma(re, s, im * c));
}

// The backward of rotate_pairs: dx = g · e^{−iθ} is stored (when dx is not null) and
// dθ = Im(conj(z_x) · dz) = x_re·dx_im − x_im·dx_re is returned (when x is not null, else 0).
// This equals docs/rotations.md's g[r]·(−x[r]·sin − x[r+R]·cos) + g[r+R]·(x[r]·cos − x[r+R]·sin).
template <RotaryLayout L, class T>
inline Batch<T> unrotate_pairs(T* dx, const T* g, const T* x, int64_t R, int64_t j, int64_t n, const Batch<T>& c,
                               const Batch<T>& s) {
  Batch<T> g_re, g_im;
  load_pairs<L>(g, R, j, n, g_re, g_im);
  const Batch<T> dx_re = xsimd::fma(g_re, c, g_im * s);
  const Batch<T> dx_im = xsimd::fms(g_im, c, g_re * s);
  if (dx) store_pairs<L>(dx, R, j, n, dx_re, dx_im);
  if (!x) return Batch<T>(T(0));
  Batch<T> x_re, x_im;
  load_pairs<L>(x, R, j, n, x_re, x_im);
  return xsimd::fms(x_re, dx_im, x_im * dx_re);
}

// Element indices of the real and imaginary part of complex number r (scalar reference loops).
inline int64_t re_index(RotaryLayout layout, int64_t r) { return layout == RotaryLayout::HalfSplit ? r : 2 * r; }
inline int64_t im_index(RotaryLayout layout, int64_t R, int64_t r) {
  return layout == RotaryLayout::HalfSplit ? r + R : 2 * r + 1;
}

// Argument check shared by the (B,T,H,D) kernels.
inline void check_rope_shape(const char* op, const RopeShape& s) {
  ROTOR_CHECK(s.B >= 0 && s.T >= 0 && s.H >= 0, op, "B, T, H must be >= 0, got B=", s.B, " T=", s.T, " H=", s.H);
  ROTOR_CHECK(s.D > 0 && s.D % 2 == 0, op, "D must be positive and even (D/2 complex pairs), got ", s.D);
}

}  // namespace rotor::kernels::simd
