#include "rotor/kernels/scan_cumsum.h"

#include <algorithm>
#include <type_traits>

#include "rotor/core/error.h"
#include "rotor/kernels/scan.h"
#include "rotor/kernels/scan_simd.h"

namespace rotor::kernels {
namespace {

using simd::batch;

// One channel, n contiguous steps, from zero: y_i = x_0 + ... + x_i (reverse:
// y_i = x_i + ... + x_{n-1}); returns the total. Prefix sums inside registers; groups of kGroup
// registers share one carry update, so the loop is not bound by the add -> broadcast latency.
// Store = false computes the same total, bit for bit, without writing (for rebuilds).
constexpr int64_t kGroup = 4;
template <bool Reverse, bool Store, class V>
ROTOR_SIMD_INLINE void scan_group(const V* x, V* y, batch<V>& carry) {
  constexpr int64_t N = batch<V>::size, G = kGroup;
  batch<V> p[G], total[G];
  for (int64_t g = 0; g < G; ++g) {
    p[g] = simd::lane_cumsum<Reverse>(batch<V>::load_unaligned(x + g * N));
    total[g] = Reverse ? simd::broadcast_first(p[g]) : simd::broadcast_last(p[g]);
  }
  // In time order: ascending registers forward, descending in reverse.
  for (int64_t k = 0; k < G; ++k) {
    const int64_t g = Reverse ? G - 1 - k : k;
    if constexpr (Store) (p[g] + carry).store_unaligned(y + g * N);
    carry = carry + total[g];
  }
}
template <bool Store, class V>
V scan_contiguous(const V* x, V* y, int64_t n, bool reverse) {
  constexpr int64_t N = batch<V>::size, G = kGroup;
  const int64_t m = n / (G * N) * (G * N);
  V s(0);
  if (!reverse) {
    batch<V> carry(V(0));
    for (int64_t i = 0; i < m; i += G * N) scan_group<false, Store>(x + i, y + i, carry);
    s = carry.get(0);  // equals the last output: p + c and c + p are the same sum
    for (int64_t i = m; i < n; ++i) {
      s = s + x[i];
      if constexpr (Store) y[i] = s;
    }
  } else {
    for (int64_t i = n - 1; i >= m; --i) {
      s = s + x[i];
      if constexpr (Store) y[i] = s;
    }
    batch<V> carry(s);
    for (int64_t i = m - G * N; i >= 0; i -= G * N) scan_group<true, Store>(x + i, y + i, carry);
    s = carry.get(0);
  }
  return s;
}

// y_i = s + y_i over n contiguous values.
template <class V>
void add_scalar(V* y, int64_t n, V s) {
  constexpr int64_t N = batch<V>::size;
  const batch<V> sb(s);
  int64_t i = 0;
  for (; i + N <= n; i += N) (sb + batch<V>::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = s + y[i];
}

// y = p + x over n channels.
template <class V>
void add_row(const V* p, const V* x, V* y, int64_t n) {
  simd::for_channels<V>(
      n, [](auto w, const V* p, const V* x, V* y) { simd::store(y, simd::load<decltype(w)>(p) + simd::load<decltype(w)>(x)); },
      p, x, y);
}

}  // namespace

template <class V>
void cumsum_forward(const V* x, const V* init, V* y, int64_t B, int64_t T, int64_t C, bool reverse) {
  ROTOR_CHECK(B >= 0 && T >= 0 && C >= 0, "cumsum", "negative size B=", B, " T=", T, " C=", C);
  if (B == 0 || T == 0 || C == 0) return;
  const ChannelLanes L(B, T, C, int64_t(sizeof(V)));
  const ScanPlan plan = plan_scan(L.count, T, 2 * L.cw * int64_t(sizeof(V)), reverse);
  // What a block starts from: the carried prefix, else the initial offset, else nothing.
  auto start_of = [&](int64_t lane, const V* carry) -> const V* {
    return carry ? carry : init ? init + L.state(lane) : nullptr;
  };
  // Scan-then-fixup: each block writes its prefix sums from zero while streaming x once, then
  // adds the carried prefix to them while they are still in cache. Rows: running sums from zero,
  // row after row, in processing order (reduce repeats exactly that arithmetic).
  auto local = [&](int64_t lane, int64_t lo, int64_t hi, V* agg, V* out) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    if (C == 1) {
      agg[0] = out ? scan_contiguous<true>(x + base + lo, out + base + lo, hi - lo, reverse)
                   : scan_contiguous<false>(x + base + lo, static_cast<V*>(nullptr), hi - lo, reverse);
      return;
    }
    std::fill(agg, agg + n, V(0));
    const V* run = agg;
    for (int64_t i = 0; i < hi - lo; ++i) {
      const int64_t off = base + (reverse ? hi - 1 - i : lo + i) * C;
      V* dst = out ? out + off : agg;
      add_row(run, x + off, dst, n);
      run = dst;
    }
    if (out) std::copy(run, run + n, agg);
  };
  auto reduce = [&](int64_t lane, int64_t lo, int64_t hi, V* agg) { local(lane, lo, hi, agg, nullptr); };
  auto scan_local = [&](int64_t lane, int64_t lo, int64_t hi, V* agg) { local(lane, lo, hi, agg, y); };
  auto fold = [&](int64_t lane, const V* prev, const V* agg, V* next) {
    const V* s = start_of(lane, prev);
    for (int64_t c = 0, n = L.channels(lane); c < n; ++c) next[c] = s ? s[c] + agg[c] : agg[c];
  };
  auto fixup = [&](int64_t lane, int64_t lo, int64_t hi, const V* carry) {
    const V* s = start_of(lane, carry);
    if (!s) return;  // the first block without an offset is already final
    const int64_t base = L.base(lane), n = L.channels(lane);
    if (C == 1) {
      add_scalar(y + base + lo, hi - lo, *s);
      return;
    }
    for (int64_t t = lo; t < hi; ++t) add_row(s, y + base + t * C, y + base + t * C, n);
  };
  chained_scan_fixup<V, V>(plan, L.cw, L.cw, reduce, fold, scan_local, fixup);
}

template <class V>
void cumsum_backward(const V* dy, V* dx, V* dinit, int64_t B, int64_t T, int64_t C, bool reverse) {
  ROTOR_CHECK(B >= 0 && T >= 0 && C >= 0, "cumsum", "negative size B=", B, " T=", T, " C=", C);
  cumsum_forward<V>(dy, nullptr, dx, B, T, C, !reverse);
  if (!dinit) return;
  // The offset reaches every output, so its gradient is the full sum: dx at the far end.
  const int64_t t = reverse ? T - 1 : 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) dinit[b * C + c] = T > 0 ? dx[(b * T + t) * C + c] : V(0);
}

template <class V>
void cumsum_forward_reference(const V* x, const V* init, V* y, int64_t B, int64_t T, int64_t C, bool reverse) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      V s = init ? init[b * C + c] : V(0);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t off = (b * T + (reverse ? T - 1 - i : i)) * C + c;
        y[off] = s = s + x[off];
      }
    }
}

template <class V>
void cumsum_backward_reference(const V* dy, V* dx, V* dinit, int64_t B, int64_t T, int64_t C, bool reverse) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      V s = V(0);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t off = (b * T + (reverse ? i : T - 1 - i)) * C + c;
        dx[off] = s = s + dy[off];
      }
      if (dinit) dinit[b * C + c] = s;
    }
}

#define ROTOR_INSTANTIATE(V)                                                                          \
  template void cumsum_forward<V>(const V*, const V*, V*, int64_t, int64_t, int64_t, bool);           \
  template void cumsum_backward<V>(const V*, V*, V*, int64_t, int64_t, int64_t, bool);                \
  template void cumsum_forward_reference<V>(const V*, const V*, V*, int64_t, int64_t, int64_t, bool); \
  template void cumsum_backward_reference<V>(const V*, V*, V*, int64_t, int64_t, int64_t, bool);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
