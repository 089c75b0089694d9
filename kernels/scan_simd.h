// Scans across the lanes of one SIMD register (log2(N) shift-and-combine steps), for scans
// along time when there is a single channel. Written once over the batch type: real batches and
// xsimd complex batches (shifted component-wise) alike.
#pragma once
#include <algorithm>
#include <complex>
#include <cstdint>
#include <type_traits>

#include "rotor/kernels/simd.h"  // xsimd, behind the GCC 12 false-positive workaround

// Lane shuffles must inline into the scan loops (their masks then fold to constants).
#define ROTOR_SIMD_INLINE [[gnu::always_inline]] inline

namespace rotor::kernels::simd {

namespace detail {
template <unsigned K>
struct LaneMinus {  // lane i reads lane i-K
  static constexpr unsigned get(unsigned i, unsigned) { return i >= K ? i - K : 0; }
};
template <unsigned K>
struct LanePlus {  // lane i reads lane i+K
  static constexpr unsigned get(unsigned i, unsigned n) { return i + K < n ? i + K : n - 1; }
};
template <unsigned K, bool Forward>
struct HasSource {  // lane i has a lane to read from
  static constexpr bool get(unsigned i, unsigned n) { return Forward ? i >= K : i + K < n; }
};
struct LaneLast {
  static constexpr unsigned get(unsigned, unsigned n) { return n - 1; }
};
struct LaneFirst {
  static constexpr unsigned get(unsigned, unsigned) { return 0; }
};

template <class R, class A>
using index_batch = xsimd::batch<xsimd::as_unsigned_integer_t<R>, A>;

// Lane i takes lane i-K (Forward) or i+K; lanes with no source take fill. Real batches: one
// permute and one blend; complex batches move their real and imaginary registers.
template <unsigned K, bool Forward, class R, class A>
ROTOR_SIMD_INLINE xsimd::batch<R, A> shift(const xsimd::batch<R, A>& x, const xsimd::batch<R, A>& fill) {
  using G = std::conditional_t<Forward, LaneMinus<K>, LanePlus<K>>;
  auto moved = xsimd::swizzle(x, xsimd::make_batch_constant<index_batch<R, A>, G>());
  // The mask is a compile-time constant too (a float batch_constant would need floating-point
  // template arguments, which clang 14 lacks).
  return xsimd::select(xsimd::make_batch_bool_constant<xsimd::batch<R, A>, HasSource<K, Forward>>(), moved, fill);
}
template <unsigned K, bool Forward, class R, class A>
ROTOR_SIMD_INLINE xsimd::batch<std::complex<R>, A> shift(const xsimd::batch<std::complex<R>, A>& x,
                                                          const xsimd::batch<std::complex<R>, A>& fill) {
  return {shift<K, Forward>(x.real(), fill.real()), shift<K, Forward>(x.imag(), fill.imag())};
}
template <class G, class R, class A>
ROTOR_SIMD_INLINE xsimd::batch<R, A> gather_lane(const xsimd::batch<R, A>& x) {
  return xsimd::swizzle(x, xsimd::make_batch_constant<index_batch<R, A>, G>());
}
template <class G, class R, class A>
ROTOR_SIMD_INLINE xsimd::batch<std::complex<R>, A> gather_lane(const xsimd::batch<std::complex<R>, A>& x) {
  return {gather_lane<G>(x.real()), gather_lane<G>(x.imag())};
}
}  // namespace detail

// Lane i takes lane i-K (forward) or i+K (backward); lanes with no source take `fill`.
template <unsigned K, class Bt>
ROTOR_SIMD_INLINE Bt shift_forward(const Bt& x, const Bt& fill) {
  return detail::shift<K, true>(x, fill);
}
template <unsigned K, class Bt>
ROTOR_SIMD_INLINE Bt shift_backward(const Bt& x, const Bt& fill) {
  return detail::shift<K, false>(x, fill);
}

// Every lane set to the last (first) lane.
template <class Bt>
ROTOR_SIMD_INLINE Bt broadcast_last(const Bt& x) {
  return detail::gather_lane<detail::LaneLast>(x);
}
template <class Bt>
ROTOR_SIMD_INLINE Bt broadcast_first(const Bt& x) {
  return detail::gather_lane<detail::LaneFirst>(x);
}

// Inclusive prefix sums across lanes: lane i = x_0 + ... + x_i (reverse: x_i + ... + x_{N-1}).
template <bool Reverse, class Bt, unsigned K = 1>
ROTOR_SIMD_INLINE Bt lane_cumsum(Bt x) {
  if constexpr (K < Bt::size) {
    Bt zero(typename Bt::value_type(0));
    Bt s = Reverse ? shift_backward<K>(x, zero) : shift_forward<K>(x, zero);
    return lane_cumsum<Reverse, Bt, 2 * K>(x + s);
  } else {
    return x;
  }
}

// Inclusive composition across lanes of the affine maps h -> a_i h + b_i, in time order
// (lane 0 first; reverse: lane N-1 first). On return lane i holds (A_i, U_i) with
// "h after lane i" = A_i * (h before the first lane) + U_i.
template <bool Reverse, class Bt, unsigned K = 1>
ROTOR_SIMD_INLINE void lane_affine_scan(Bt& a, Bt& b) {
  if constexpr (K < Bt::size) {
    Bt zero(typename Bt::value_type(0)), one(typename Bt::value_type(1));
    if constexpr (Reverse) {
      b = xsimd::fma(a, shift_backward<K>(b, zero), b);
      a = a * shift_backward<K>(a, one);
    } else {
      b = xsimd::fma(a, shift_forward<K>(b, zero), b);
      a = a * shift_forward<K>(a, one);
    }
    lane_affine_scan<Reverse, Bt, 2 * K>(a, b);
  }
}

// ---------------------------------------------------------------------------------------------
// Rows of channels: one body for the batches and the scalar tail
// ---------------------------------------------------------------------------------------------

template <class V>
using batch = xsimd::batch<V>;

// W is V (scalar tail) or batch<V>.
template <class W, class V>
ROTOR_SIMD_INLINE W load(const V* p) {
  if constexpr (std::is_same_v<W, V>) return *p;
  else return W::load_unaligned(p);
}
template <class W, class V>
ROTOR_SIMD_INLINE void store(V* p, const W& w) {
  if constexpr (std::is_same_v<W, V>) *p = w;
  else w.store_unaligned(p);
}

// W(0) for a scalar or a batch.
template <class W>
ROTOR_SIMD_INLINE W zero() {
  if constexpr (xsimd::is_batch<W>::value) return W(typename W::value_type(0));
  else return W(0);
}

// Runs f(W{}, rows + c...) for c = 0, N, 2N, ... with W = batch<V>, then for the tail with
// W = V: one body for both. The rows are passed in (not captured) so that they stay in
// registers: xsimd's stores may alias anything, which would reload captured pointers.
template <class V, class F, class... P>
ROTOR_SIMD_INLINE void for_channels(int64_t n, F&& f, P*... rows) {
  constexpr int64_t N = batch<V>::size;
  int64_t c = 0;
  for (; c + N <= n; c += N) f(batch<V>{}, (rows + c)...);
  for (; c < n; ++c) f(V{}, (rows + c)...);
}

template <class W>
struct is_complex : std::false_type {};
template <class R>
struct is_complex<std::complex<R>> : std::true_type {};

// a * x + b for batches (fused) and scalars. Complex scalars are multiplied without the C99
// inf/nan recovery of std::complex, like the batches.
template <class W>
ROTOR_SIMD_INLINE W madd(const W& a, const W& x, const W& b) {
  if constexpr (xsimd::is_batch<W>::value) {
    return xsimd::fma(a, x, b);
  } else if constexpr (is_complex<W>::value) {
    return {a.real() * x.real() - a.imag() * x.imag() + b.real(), a.real() * x.imag() + a.imag() * x.real() + b.imag()};
  } else {
    return a * x + b;
  }
}
template <class W>
ROTOR_SIMD_INLINE W mul(const W& a, const W& x) {
  if constexpr (is_complex<W>::value) return {a.real() * x.real() - a.imag() * x.imag(), a.real() * x.imag() + a.imag() * x.real()};
  else return a * x;
}

// Conjugate for complex values (scalars or batches), identity for real ones.
template <class W>
ROTOR_SIMD_INLINE W conjugate(const W& w) {
  if constexpr (is_complex<W>::value) return std::conj(w);
  else if constexpr (std::is_arithmetic_v<W>) return w;
  else if constexpr (is_complex<typename W::value_type>::value) return {w.real(), -w.imag()};
  else return w;
}

}  // namespace rotor::kernels::simd
