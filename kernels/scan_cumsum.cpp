#include "kernels/scan_cumsum.h"

#include <algorithm>
#include <type_traits>

#include "core/error.h"
#include "kernels/scan.h"
#include "kernels/scan_simd.h"

namespace rotor::kernels {
namespace {

using simd::batch;

// Sum of n contiguous values, in a fixed order (two batch accumulators, then the tail).
template <class V>
V sum_contiguous(const V* x, int64_t n) {
  constexpr int64_t N = batch<V>::size;
  batch<V> s0(V(0)), s1(V(0));
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 += batch<V>::load_unaligned(x + i);
    s1 += batch<V>::load_unaligned(x + i + N);
  }
  V s = xsimd::hadd(s0 + s1);
  for (; i < n; ++i) s += x[i];
  return s;
}

// One channel, n contiguous steps from offset s: y_i = s + x_0 + ... + x_i
// (reverse: y_i = s + x_i + ... + x_{n-1}). Prefix sums inside registers; groups of kGroup
// registers share one carry update, so the loop is not bound by the add -> broadcast latency.
constexpr int64_t kGroup = 4;
template <class V>
void rescan_contiguous(const V* x, V* y, int64_t n, V s, bool reverse) {
  constexpr int64_t N = batch<V>::size, G = kGroup;
  const int64_t m = n / (G * N) * (G * N);
  auto group = [&](int64_t i, batch<V>& carry, auto reversed) {
    constexpr bool R = decltype(reversed)::value;
    batch<V> p[G], total[G];
    for (int64_t g = 0; g < G; ++g) {
      p[g] = simd::lane_cumsum<R>(batch<V>::load_unaligned(x + i + g * N));
      total[g] = R ? simd::broadcast_first(p[g]) : simd::broadcast_last(p[g]);
    }
    // In time order: ascending registers forward, descending in reverse.
    for (int64_t k = 0; k < G; ++k) {
      const int64_t g = R ? G - 1 - k : k;
      (p[g] + carry).store_unaligned(y + i + g * N);
      carry = carry + total[g];
    }
  };
  if (!reverse) {
    batch<V> carry(s);
    for (int64_t i = 0; i < m; i += G * N) group(i, carry, std::false_type{});
    if (m > 0) s = y[m - 1];
    for (int64_t i = m; i < n; ++i) y[i] = s = s + x[i];
  } else {
    for (int64_t i = n - 1; i >= m; --i) y[i] = s = s + x[i];
    batch<V> carry(s);
    for (int64_t i = m - G * N; i >= 0; i -= G * N) group(i, carry, std::true_type{});
  }
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
  auto reduce = [&](int64_t lane, int64_t lo, int64_t hi, V* agg) {
    const V* xb = x + L.base(lane);
    const int64_t n = L.channels(lane);
    if (C == 1) {
      agg[0] = sum_contiguous(xb + lo, hi - lo);
      return;
    }
    std::fill(agg, agg + n, V(0));
    for (int64_t t = lo; t < hi; ++t) add_row(agg, xb + t * C, agg, n);
  };
  auto fold = [&](int64_t lane, const V* prev, const V* agg, V* next) {
    const V* s = start_of(lane, prev);
    for (int64_t c = 0, n = L.channels(lane); c < n; ++c) next[c] = s ? s[c] + agg[c] : agg[c];
  };
  auto rescan = [&](int64_t lane, int64_t lo, int64_t hi, const V* carry) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    const V* s = start_of(lane, carry);
    if (C == 1) {
      rescan_contiguous(x + base + lo, y + base + lo, hi - lo, s ? *s : V(0), reverse);
      return;
    }
    // Row by row: the previous output row is the running sum (still in L1).
    for (int64_t i = 0; i < hi - lo; ++i) {
      const int64_t off = base + (reverse ? hi - 1 - i : lo + i) * C;
      if (s) add_row(s, x + off, y + off, n);
      else std::copy(x + off, x + off + n, y + off);
      s = y + off;
    }
  };
  chained_scan<V, V>(plan, L.cw, L.cw, reduce, fold, rescan);
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
