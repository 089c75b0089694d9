// Row helpers shared by the GLA kernels: loops over a contiguous row in xsimd batches, the last
// partial batch read with zeros past the row's end (a masked load where the ISA has one) so that
// every loop body is written once, for batches only, and works for any row length (60, 100, ...).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
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
// there rotor has its own reduction tree: pairwise sums within 128-bit lanes, then across them.
template <class T>
inline Vec<T> row_sums(const Vec<T> (&rows)[width<T>]) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // Within each 128-bit lane: [a0+a1, a2+a3, b0+b1, b2+b3], then [Σa, Σb, Σc, Σd] (4 partials).
    auto pair = [](__m512 a, __m512 b) {
      return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    __m512 quad[4];
    for (int g = 0; g < 4; ++g) {
      const __m512 r = rows[4 * g], s = rows[4 * g + 1], t = rows[4 * g + 2], u = rows[4 * g + 3];
      quad[g] = pair(pair(r, s), pair(t, u));  // lane l of quad[g]: rows 4g..4g+3 over lane l
    }
    // Across the four 128-bit lanes: lane g of the result ends up holding rows 4g..4g+3.
    const __m512 c = _mm512_add_ps(_mm512_shuffle_f32x4(quad[0], quad[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(quad[0], quad[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 d = _mm512_add_ps(_mm512_shuffle_f32x4(quad[2], quad[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(quad[2], quad[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 1, 3, 1)));
  } else
#endif
  {
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
