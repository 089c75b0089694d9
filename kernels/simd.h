// SIMD building blocks over xsimd. Loads take a stride: 1 (contiguous), 0 (a broadcast scalar)
// or anything else (gathered through a small buffer), so one loop body serves every layout
// and the ragged tail goes through the same batch code as the body.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

// GCC 12 flags the _mm512_undefined_* idiom inside its own AVX-512 intrinsics as
// uninitialized wherever they inline (GCC bug 105593, fixed in 13); the pragma covers those
// header lines only; clang knows no -Wmaybe-uninitialized and would warn about the pragma.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace rotor::kernels {

template <class T>
using Batch = xsimd::batch<T>;

template <class T>
constexpr int64_t batch_size() {
  return int64_t(Batch<T>::size);
}

template <class T>
inline Batch<T> load_strided(const T* p, int64_t stride) {
  if (stride == 1) return Batch<T>::load_unaligned(p);
  if (stride == 0) return Batch<T>(*p);
  alignas(64) T buf[Batch<T>::size];
  for (size_t j = 0; j < Batch<T>::size; ++j) buf[j] = p[int64_t(j) * stride];
  return Batch<T>::load_aligned(buf);
}

// Masked loads and stores of the first n lanes, where the ISA has them: a row shorter than a
// batch (a head of 8 floats in 16 AVX-512 lanes) then costs one instruction, not a trip through a
// buffer. The lanes past n are zero, exactly as through the buffer, so the results are the same.
#if defined(__AVX512F__)
template <class T>
inline auto lane_mask(int64_t n) {
  if constexpr (sizeof(T) == 4) return __mmask16((1u << n) - 1);
  else return __mmask8((1u << n) - 1);
}
#elif defined(__AVX2__)
template <class T>
inline __m256i lane_mask(int64_t n) {
  if constexpr (sizeof(T) == 4)
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  else
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
#endif

// The first n (0 <= n <= batch size) lanes from contiguous p; the other lanes are zero.
template <class T>
inline Batch<T> load_first(const T* p, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) return _mm512_maskz_loadu_ps(lane_mask<T>(n), p);
  if constexpr (std::is_same_v<T, double>) return _mm512_maskz_loadu_pd(lane_mask<T>(n), p);
#elif defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) return _mm256_maskload_ps(p, lane_mask<T>(n));
  if constexpr (std::is_same_v<T, double>) return _mm256_maskload_pd(p, lane_mask<T>(n));
#endif
  alignas(64) T buf[Batch<T>::size] = {};
  std::memcpy(buf, p, size_t(n) * sizeof(T));
  return Batch<T>::load_aligned(buf);
}

// Stores the first n (0 <= n <= batch size) lanes of v to contiguous p.
template <class T>
inline void store_first(T* p, const Batch<T>& v, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) return _mm512_mask_storeu_ps(p, lane_mask<T>(n), v);
  if constexpr (std::is_same_v<T, double>) return _mm512_mask_storeu_pd(p, lane_mask<T>(n), v);
#elif defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) return _mm256_maskstore_ps(p, lane_mask<T>(n), v);
  if constexpr (std::is_same_v<T, double>) return _mm256_maskstore_pd(p, lane_mask<T>(n), v);
#endif
  alignas(64) T buf[Batch<T>::size];
  v.store_aligned(buf);
  std::memcpy(p, buf, size_t(n) * sizeof(T));
}

// The first n (< batch size) lanes from p; the other lanes are `fill`.
template <class T>
inline Batch<T> load_partial(const T* p, int64_t stride, int64_t n, T fill = T(0)) {
  alignas(64) T buf[Batch<T>::size];
  for (size_t j = 0; j < Batch<T>::size; ++j) buf[j] = int64_t(j) < n ? p[int64_t(j) * stride] : fill;
  return Batch<T>::load_aligned(buf);
}

#if defined(__AVX__)
// The largest lane of a 256-bit batch: halves, then quarters, then pairs.
inline float max_lanes(__m256 a) {
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_max_ss(b, _mm_movehdup_ps(b)));
}
inline double max_lanes(__m256d a) {
  const __m128d b = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_max_sd(b, _mm_unpackhi_pd(b, b)));
}
#endif

// The largest lane of v. max is exact, so any order of reduction gives the same value: a tree of
// shuffles in registers, where a loop over stored lanes cost the attention forward's softmax rows
// (a 16-lane scalar loop per row and key tile) about as much as their exponentials.
template <class T>
inline T reduce_max(const Batch<T>& v) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512 x = v;
    return max_lanes(_mm256_max_ps(_mm512_castps512_ps256(x),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
  } else {
    const __m512d x = v;
    return max_lanes(_mm256_max_pd(_mm512_castpd512_pd256(x), _mm512_extractf64x4_pd(x, 1)));
  }
#elif defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) return max_lanes(__m256(v));
  else return max_lanes(__m256d(v));
#else
  alignas(64) T lanes[Batch<T>::size];
  v.store_aligned(lanes);
  T m = lanes[0];
  for (size_t j = 1; j < Batch<T>::size; ++j) m = std::max(m, lanes[j]);
  return m;
#endif
}

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols. Float tiles of 16 x 16 go through
// AVX-512 registers (three rounds of shuffles), the rest element by element.
template <class T>
inline void transpose(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  int64_t r0 = 0, c0 = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (; r0 + 16 <= rows; r0 += 16)
      for (c0 = 0; c0 + 16 <= cols; c0 += 16) {
        __m512 x[16], t[16];
        for (int i = 0; i < 16; ++i) x[i] = _mm512_loadu_ps(src + (r0 + i) * lds + c0);
        // Per 128-bit lane: pairs of rows interleaved, then quadruples; x[4i + j] then holds
        // column 4l + j of rows 4i..4i+3 in lane l.
        for (int i = 0; i < 8; ++i) {
          t[2 * i] = _mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]);
          t[2 * i + 1] = _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]);
        }
        for (int i = 0; i < 4; ++i) {
          const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]),
                        c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
          x[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
          x[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
          x[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
          x[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        // Lane l of x[j], x[4 + j], x[8 + j], x[12 + j] together make output row 4l + j.
        for (int j = 0; j < 4; ++j) {
          const __m512 u0 = _mm512_shuffle_f32x4(x[j], x[4 + j], _MM_SHUFFLE(2, 0, 2, 0)),
                       u1 = _mm512_shuffle_f32x4(x[j], x[4 + j], _MM_SHUFFLE(3, 1, 3, 1)),
                       w0 = _mm512_shuffle_f32x4(x[8 + j], x[12 + j], _MM_SHUFFLE(2, 0, 2, 0)),
                       w1 = _mm512_shuffle_f32x4(x[8 + j], x[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
          _mm512_storeu_ps(dst + (c0 + j) * ldd + r0, _mm512_shuffle_f32x4(u0, w0, _MM_SHUFFLE(2, 0, 2, 0)));
          _mm512_storeu_ps(dst + (c0 + 4 + j) * ldd + r0, _mm512_shuffle_f32x4(u1, w1, _MM_SHUFFLE(2, 0, 2, 0)));
          _mm512_storeu_ps(dst + (c0 + 8 + j) * ldd + r0, _mm512_shuffle_f32x4(u0, w0, _MM_SHUFFLE(3, 1, 3, 1)));
          _mm512_storeu_ps(dst + (c0 + 12 + j) * ldd + r0, _mm512_shuffle_f32x4(u1, w1, _MM_SHUFFLE(3, 1, 3, 1)));
        }
      }
    // The columns right of the last whole tile in the tiled rows, then the rows below them.
    for (int64_t r = 0; r < r0; ++r)
      for (int64_t c = c0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
  }
#endif
  for (int64_t r = r0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace rotor::kernels
