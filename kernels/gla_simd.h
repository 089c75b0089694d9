// Row helpers shared by the GLA kernels: loops over a contiguous row in xsimd batches, the last
// partial batch going through a zero-padded buffer so that every loop body is written once, for
// batches only, and works for any row length (60, 100, ...).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "rotor/kernels/simd.h"  // xsimd, behind the GCC 12 false-positive workaround

namespace rotor::kernels::gla_simd {

template <class T>
using Vec = xsimd::batch<T>;

template <class T>
constexpr int64_t width = int64_t(Vec<T>::size);

// Loads min(n, width) lanes from p; missing lanes are zero.
template <class T>
inline Vec<T> load(const T* p, int64_t n) {
  if (n >= width<T>) return Vec<T>::load_unaligned(p);
  return load_first(p, n);
}

// Stores min(n, width) lanes of x to p.
template <class T>
inline void store(T* p, const Vec<T>& x, int64_t n) {
  if (n >= width<T>) return x.store_unaligned(p);
  store_first(p, x, n);
}

template <class T>
inline T sum(const Vec<T>& x) {
  return xsimd::hadd(x);
}

// out[r] = sum(rows[r]) for r < width: the horizontal sums of width batches in one batch.
// xsimd 8.1's haddp permutes the lanes of its float result on AVX-512 (lanes 2-5 and 10-13), so
// there the rows are reduced one by one.
template <class T>
inline Vec<T> row_sums(const Vec<T> (&rows)[width<T>]) {
  if constexpr (std::is_same_v<T, float> && std::is_base_of_v<xsimd::avx512f, xsimd::default_arch>) {
    alignas(64) T out[width<T>];
    for (int64_t r = 0; r < width<T>; ++r) out[r] = sum(rows[r]);
    return Vec<T>::load_aligned(out);
  } else {
    return xsimd::haddp(rows);
  }
}

// out[j] = f(in[j]...) for j < n, f called on batches.
template <class T, class F, class... In>
inline void map(int64_t n, T* out, F&& f, const In*... in) {
  for (int64_t j = 0; j < n; j += width<T>) store(out + j, f(load(in + j, n - j)...), n - j);
}

// sum_j f(in[j]...) for j < n; f must map zero lanes to zero.
template <class T, class F, class... In>
inline T map_sum(int64_t n, F&& f, const In*... in) {
  Vec<T> acc(T(0));
  for (int64_t j = 0; j < n; j += width<T>) acc += f(load(in + j, n - j)...);
  return sum(acc);
}

}  // namespace rotor::kernels::gla_simd
