// Vectorised sin and cos of one batch, accurate for the large angles Selective RoPE produces.
//
// xsimd's own float sincos hands every batch holding an |angle| > 64·π to a scalar per-lane
// reduction; accumulated phases reach thousands of radians, so most batches would take it.
// Here the reduction x = k·π/2 + r is a Cody–Waite subtraction of π/2 split into short parts:
// every product k·part is exact (k < 2^16 with 8-bit parts for float, k < 2^26 with 27-bit parts
// for double) and each partial remainder lands on a grid fine enough to hold it, so r is within
// about ulp(r) of x − k·π/2 while |x| < limit. It needs no fused multiply-add, which matters:
// xsimd 8.1 spells fma as x*y + z on AVX-512 and on baseline x86-64, fused only when the
// compiler contracts it. Beyond the limit (rare) a batch is evaluated lane by lane with the
// double-precision libm.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rotor/kernels/simd.h"  // xsimd, behind the GCC 12 false-positive workaround

namespace rotor::kernels::simd {

template <class T>
struct SincosConstants;

template <>
struct SincosConstants<float> {
  static constexpr float two_over_pi = 0x1.45f306p-1f;
  // π/2 = Σ pio2[i] + 5e-17: three parts of <= 8 significant bits, then the float remainder.
  static constexpr float pio2[] = {0x1.92p+0f, 0x1.fcp-12f, -0x1.58p-21f, 0x1.10b462p-30f};
  // Below 2^16: k < 2^16, and the rounding of x·(2/π) leaves |r| <= π/4 + 0.005.
  static constexpr float limit = 65536.f;
  // Minimax polynomials on [-π/4, π/4] (Cephes sinf/cosf).
  static constexpr float s[] = {-1.9515295891e-4f, 8.3321608736e-3f, -1.6666654611e-1f};
  static constexpr float c[] = {2.443315711809948e-5f, -1.388731625493765e-3f, 4.166664568298827e-2f};
};

template <>
struct SincosConstants<double> {
  static constexpr double two_over_pi = 0x1.45f306dc9c883p-1;
  // π/2 = Σ pio2[i] + 4e-35: two parts of 27 significant bits, then the double remainder.
  static constexpr double pio2[] = {0x1.921fb54p+0, 0x1.10b461p-30, 0x1.a62633145c06ep-58};
  static constexpr double limit = 0x1p26;
  // Cephes sin/cos.
  static constexpr double s[] = {1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
                                 -1.98412698295895385996e-4, 8.33333333332211858878e-3,  -1.66666666666666307295e-1};
  static constexpr double c[] = {-1.13585365213876817300e-11, 2.08757008419747316778e-9,  -2.75573141792967388112e-7,
                                 2.48015872888517045348e-5,   -1.38888888888730564116e-3, 4.16666666666665929218e-2};
};

// Horner evaluation of coef[0]·z^{n-1} + ... + coef[n-1].
template <class B, class T, std::size_t N>
inline B horner(const B& z, const T (&coef)[N]) {
  B p(coef[0]);
  for (std::size_t i = 1; i < N; ++i) p = xsimd::fma(p, z, B(coef[i]));
  return p;
}

// GCC 12 reports the self-initialised "undefined" vectors inside its AVX-512 intrinsics as
// maybe-uninitialized wherever they are inlined (a false positive, fixed in GCC 13). GCC only:
// clang knows no -Wmaybe-uninitialized and would warn about the pragma.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// s = sin(x), c = cos(x), lane by lane.
template <class T, class A>
inline void sincos(const xsimd::batch<T, A>& x, xsimd::batch<T, A>& s, xsimd::batch<T, A>& c) {
  using B = xsimd::batch<T, A>;
  using I = xsimd::batch<xsimd::as_integer_t<T>, A>;
  using K = SincosConstants<T>;
  constexpr int kSignShift = int(8 * sizeof(T)) - 2;  // moves bit 1 of the quadrant to the sign bit

  if (xsimd::any(xsimd::abs(x) > B(K::limit))) {
    alignas(A::alignment()) T in[B::size], so[B::size], co[B::size];
    x.store_aligned(in);
    for (std::size_t i = 0; i < B::size; ++i) {
      so[i] = T(std::sin(double(in[i])));
      co[i] = T(std::cos(double(in[i])));
    }
    s = B::load_aligned(so);
    c = B::load_aligned(co);
    return;
  }
  const B k = xsimd::nearbyint(x * B(K::two_over_pi));
  B r = x;
  for (T part : K::pio2) r = xsimd::fnma(k, B(part), r);  // exact products: fused or not, same r
  const B z = r * r;
  const B ps = xsimd::fma(horner(z, K::s) * z, r, r);                                   // sin r
  const B pc = xsimd::fma(horner(z, K::c) * z, z, xsimd::fnma(B(T(0.5)), z, B(T(1))));  // cos r

  // Quadrant q = k mod 4: sin x = (s, c, -s, -c)[q], cos x = (c, -s, -c, s)[q].
  const I q = xsimd::to_int(k);
  const B odd = xsimd::bitwise_cast<B>(-(q & I(1)));  // all ones where q is odd
  const B swap = (ps ^ pc) & odd;
  s = (ps ^ swap) ^ xsimd::bitwise_cast<B>((q & I(2)) << kSignShift);
  c = (pc ^ swap) ^ xsimd::bitwise_cast<B>(((q + I(1)) & I(2)) << kSignShift);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace rotor::kernels::simd
