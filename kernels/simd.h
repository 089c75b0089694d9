// SIMD building blocks over xsimd. Loads take a stride: 1 (contiguous), 0 (a broadcast scalar)
// or anything else (gathered through a small buffer), so one loop body serves every layout
// and the ragged tail goes through the same batch code as the body.
#pragma once
#include <cstdint>
#include <cstring>

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

// The first n (< batch size) lanes from p; the other lanes are `fill`.
template <class T>
inline Batch<T> load_partial(const T* p, int64_t stride, int64_t n, T fill = T(0)) {
  alignas(64) T buf[Batch<T>::size];
  for (size_t j = 0; j < Batch<T>::size; ++j) buf[j] = int64_t(j) < n ? p[int64_t(j) * stride] : fill;
  return Batch<T>::load_aligned(buf);
}

template <class T>
inline void store_partial(T* p, const Batch<T>& v, int64_t n) {
  alignas(64) T buf[Batch<T>::size];
  v.store_aligned(buf);
  std::memcpy(p, buf, size_t(n) * sizeof(T));
}

}  // namespace rotor::kernels
