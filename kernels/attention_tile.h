// Internal building block of the tiled attention kernels (kernels/attention.cpp): a small
// register-blocked matrix product written once over xsimd batches.
//
// Every tile product of attention, forward or backward, has the form
//     C (m × n)  =  or +=  A (m × k) · B (k × n)
// where B is a packed tile whose rows are contiguous and whose width n is padded to a multiple of
// the vector width, while A is read one scalar at a time (broadcast) through two strides, so A can be
// q, k, v, do in their natural (B,T,H,D) layout, or the transpose of one, without copying.
// Each element of C is one fma chain over p = 0..k-1 in order, whatever the blocking, so a row's
// result never depends on which rows share its register block.
#pragma once
#include <cstdint>
#include <type_traits>

// Include before anything that pulls in <immintrin.h> (oneTBB does): see kernels/simd.h.
#include "rotor/kernels/simd.h"

namespace rotor::kernels::attention_tile {

template <class T>
using Vec = xsimd::batch<T>;

template <class T>
constexpr int64_t kLanes = int64_t(Vec<T>::size);

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// AVX-512 has 32 vector registers, the narrower ISAs 16: the register blocks below must fit.
constexpr bool kWideRegisters = std::is_base_of_v<xsimd::avx512f, xsimd::default_arch>;
// Vectors per column panel and rows per register block, chosen so that MR·NV accumulators + NV
// loads of B + one broadcast fit in the register file. Measured on AVX-512 (Zen 5, float, k = 64):
// 8×2 blocks reach 210 GFLOP/s per core against 165 for 4×4, whose B loads were folded into
// every fma; 8 rows also divide the 64-row tiles evenly.
constexpr int kPanelVectors = 2;
constexpr int rows_for(int nv) {
  if (kWideRegisters) return 8;
  return nv >= 2 ? 4 : 6;
}

// C[0:MR, 0:NV·W] (+)= A[0:MR, 0:k] · B[0:k, 0:NV·W], accumulators in registers.
template <class T, int MR, int NV>
inline void micro_tile(int64_t k, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t ldb, T* C,
                       int64_t ldc, bool accumulate) {
  constexpr int64_t W = kLanes<T>;
  Vec<T> c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v)
      c[r][v] = accumulate ? Vec<T>::load_unaligned(C + r * ldc + v * W) : Vec<T>(T(0));
  for (int64_t p = 0; p < k; ++p) {
    const T* b = B + p * ldb;
    const T* a = A + p * csa;
    Vec<T> bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = Vec<T>::load_unaligned(b + v * W);
    for (int r = 0; r < MR; ++r) {
      Vec<T> ar(a[r * rsa]);
      for (int v = 0; v < NV; ++v) c[r][v] = xsimd::fma(ar, bv[v], c[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v].store_unaligned(C + r * ldc + v * W);
}

// All m rows of one column panel: blocks of MR rows, then the remainder with smaller blocks.
template <class T, int NV, int MR>
inline void panel_rows(int64_t m, int64_t k, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t ldb, T* C,
                       int64_t ldc, bool accumulate) {
  int64_t r = 0;
  for (; r + MR <= m; r += MR) micro_tile<T, MR, NV>(k, A + r * rsa, rsa, csa, B, ldb, C + r * ldc, ldc, accumulate);
  if constexpr (MR > 1) {
    if (r < m) panel_rows<T, NV, MR - 1>(m - r, k, A + r * rsa, rsa, csa, B, ldb, C + r * ldc, ldc, accumulate);
  }
}

template <class T, int NV>
inline void panel(int64_t m, int64_t k, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t ldb, T* C,
                  int64_t ldc, bool accumulate) {
  panel_rows<T, NV, rows_for(NV)>(m, k, A, rsa, csa, B, ldb, C, ldc, accumulate);
}

// C (m × n) = A·B (accumulate false) or C += A·B (accumulate true); n must be a multiple of the
// vector width. A[r, p] is A[r*rsa + p*csa]; B[p, :] starts at B + p*ldb; C[r, :] at C + r*ldc.
template <class T>
void gemm_bcast(int64_t m, int64_t n, int64_t k, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t ldb,
                T* C, int64_t ldc, bool accumulate) {
  constexpr int64_t W = kLanes<T>;
  const int64_t nvec = n / W;
  int64_t v = 0;
  for (; v + kPanelVectors <= nvec; v += kPanelVectors)
    panel<T, kPanelVectors>(m, k, A, rsa, csa, B + v * W, ldb, C + v * W, ldc, accumulate);
  if (v < nvec) panel<T, 1>(m, k, A, rsa, csa, B + v * W, ldb, C + v * W, ldc, accumulate);
}

}  // namespace rotor::kernels::attention_tile
