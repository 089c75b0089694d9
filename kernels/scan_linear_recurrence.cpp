#include "rotor/kernels/scan_linear_recurrence.h"

#include <algorithm>
#include <complex>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/kernels/scan.h"
#include "rotor/kernels/scan_simd.h"

namespace rotor::kernels {
namespace {

using simd::batch;

// ---------------------------------------------------------------------------------------------
// One channel along time (C = 1): affine maps composed inside registers
// ---------------------------------------------------------------------------------------------
// Steps i = 0..n-1 (Reverse: n-1 down to 0) apply h -> alpha(i) h + beta(i); alpha(i, W{}) and
// beta(i, W{}) load step i as a scalar (W = V) or steps i..i+N-1 as a batch (W = batch<V>).

// Composes the n steps onto (A, U), which describe the steps before them: h -> A h + U.
template <bool Reverse, class V, class Alpha, class Beta>
void compose_one_channel(int64_t n, Alpha&& alpha, Beta&& beta, V& A, V& U) {
  constexpr int64_t N = batch<V>::size;
  const int64_t m = n / N * N;
  auto scalar = [&](int64_t i) {
    V al = alpha(i, V{});
    U = simd::madd(al, U, beta(i, V{}));
    A = simd::mul(al, A);
  };
  batch<V> Ab(A), Ub(U);
  auto vector = [&](int64_t i) {
    batch<V> al = alpha(i, batch<V>{}), be = beta(i, batch<V>{});
    simd::lane_affine_scan<Reverse>(al, be);
    al = Reverse ? simd::broadcast_first(al) : simd::broadcast_last(al);
    be = Reverse ? simd::broadcast_first(be) : simd::broadcast_last(be);
    Ub = simd::madd(al, Ub, be);
    Ab = simd::mul(al, Ab);
  };
  if (!Reverse) {
    for (int64_t i = 0; i < m; i += N) vector(i);
    A = Ab.get(0), U = Ub.get(0);
    for (int64_t i = m; i < n; ++i) scalar(i);
  } else {
    for (int64_t i = n - 1; i >= m; --i) scalar(i);
    Ab = batch<V>(A), Ub = batch<V>(U);
    for (int64_t i = m - N; i >= 0; i -= N) vector(i);
    A = Ab.get(0), U = Ub.get(0);
  }
}

// Runs the n steps from state h, calling emit(i, state after step i) (a scalar or a batch of N
// states); returns the state after the last step.
template <bool Reverse, class V, class Alpha, class Beta, class Emit>
V rescan_one_channel(int64_t n, V h, Alpha&& alpha, Beta&& beta, Emit&& emit) {
  constexpr int64_t N = batch<V>::size;
  const int64_t m = n / N * N;
  auto scalar = [&](int64_t i) {
    h = simd::madd(alpha(i, V{}), h, beta(i, V{}));
    emit(i, h);
  };
  batch<V> hb;
  auto vector = [&](int64_t i) {
    batch<V> al = alpha(i, batch<V>{}), be = beta(i, batch<V>{});
    simd::lane_affine_scan<Reverse>(al, be);
    emit(i, simd::madd(al, hb, be));
    // The state carried to the next register is one fma away (the broadcasts are off the chain).
    hb = Reverse ? simd::madd(simd::broadcast_first(al), hb, simd::broadcast_first(be))
                 : simd::madd(simd::broadcast_last(al), hb, simd::broadcast_last(be));
  };
  if (!Reverse) {
    hb = batch<V>(h);
    for (int64_t i = 0; i < m; i += N) vector(i);
    h = hb.get(0);
    for (int64_t i = m; i < n; ++i) scalar(i);
  } else {
    for (int64_t i = n - 1; i >= m; --i) scalar(i);
    hb = batch<V>(h);
    for (int64_t i = m - N; i >= 0; i -= N) vector(i);
    h = hb.get(0);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Several channels (C > 1): rows of channels, SIMD across them
// ---------------------------------------------------------------------------------------------

// (A, U) := step after (A, U), for h -> a h + b: U = a U + b, A = a A. Conj: the same with
// conj(a), the backward recurrence's steps.
template <bool Conj = false, class V>
void step_rows(V* A, V* U, const V* a, const V* b, int64_t n) {
  simd::for_channels<V>(
      n, [](auto w, V* A, V* U, const V* a, const V* b) {
        using W = decltype(w);
        W at = simd::load<W>(a);
        if constexpr (Conj) at = simd::conjugate(at);
        simd::store(U, simd::madd(at, simd::load<W>(U), simd::load<W>(b)));
        simd::store(A, simd::mul(at, simd::load<W>(A)));
      },
      A, U, a, b);
}
// h = a * s + b.
template <class V>
void apply_rows(const V* a, const V* s, const V* b, V* h, int64_t n) {
  simd::for_channels<V>(
      n, [](auto w, const V* a, const V* s, const V* b, V* h) {
        using W = decltype(w);
        simd::store(h, simd::madd(simd::load<W>(a), simd::load<W>(s), simd::load<W>(b)));
      },
      a, s, b, h);
}
// One backward step: g = conj(a_next) * g_next + dh, db = g, da = g * conj(h_prev).
template <class V>
void backward_rows(const V* a_next, const V* g_next, const V* dh, const V* h_prev, V* db, V* da, int64_t n) {
  simd::for_channels<V>(
      n, [](auto w, const V* an, const V* gn, const V* d, const V* hp, V* db, V* da) {
        using W = decltype(w);
        W g = simd::madd(simd::conjugate(simd::load<W>(an)), simd::load<W>(gn), simd::load<W>(d));
        simd::store(db, g);
        simd::store(da, simd::mul(g, simd::conjugate(simd::load<W>(hp))));
      },
      a_next, g_next, dh, h_prev, db, da);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

template <class V>
void linear_recurrence_forward(const V* a, const V* b, const V* h0, V* h, V* hT, int64_t B, int64_t T,
                               int64_t C) {
  ROTOR_CHECK(B >= 0 && T >= 0 && C >= 0, "linear_recurrence", "negative size B=", B, " T=", T, " C=", C);
  if (B == 0 || C == 0) return;
  if (T == 0) {
    if (hT) for (int64_t i = 0; i < B * C; ++i) hT[i] = h0 ? h0[i] : V(0);
    return;
  }
  const ChannelLanes L(B, T, C, int64_t(sizeof(V)));
  // A read-only row of zeros: the state before the start when there is no h0 (shared by every block).
  const std::vector<V> zeros(size_t(L.cw), V(0));
  const ScanPlan plan = plan_scan(L.count, T, 3 * L.cw * int64_t(sizeof(V)), false);
  auto start_of = [&](int64_t lane, const V* carry) -> const V* {
    return carry ? carry : h0 ? h0 + L.state(lane) : nullptr;
  };
  // Aggregate of a block: A (cw values) then U (cw values), h_end = A h_start + U.
  auto reduce = [&](int64_t lane, int64_t lo, int64_t hi, V* agg) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    V *A = agg, *U = agg + L.cw;
    std::fill(A, A + n, V(1));
    std::fill(U, U + n, V(0));
    if (C == 1) {
      const V *ab = a + base + lo, *bb = b + base + lo;
      compose_one_channel<false>(
          hi - lo, [&](int64_t i, auto w) { return simd::load<decltype(w)>(ab + i); },
          [&](int64_t i, auto w) { return simd::load<decltype(w)>(bb + i); }, A[0], U[0]);
      return;
    }
    for (int64_t t = lo; t < hi; ++t) step_rows(A, U, a + base + t * C, b + base + t * C, n);
  };
  auto fold = [&](int64_t lane, const V* prev, const V* agg, V* next) {
    const V* s = start_of(lane, prev);
    const V *A = agg, *U = agg + L.cw;
    for (int64_t c = 0, n = L.channels(lane); c < n; ++c) next[c] = s ? simd::madd(A[c], s[c], U[c]) : U[c];
  };
  auto rescan = [&](int64_t lane, int64_t lo, int64_t hi, const V* carry) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    const V* s = start_of(lane, carry);
    if (C == 1) {
      const V *ab = a + base + lo, *bb = b + base + lo;
      V* hb = h + base + lo;
      rescan_one_channel<false>(
          hi - lo, s ? *s : V(0), [&](int64_t i, auto w) { return simd::load<decltype(w)>(ab + i); },
          [&](int64_t i, auto w) { return simd::load<decltype(w)>(bb + i); }, [&](int64_t i, auto w) { simd::store(hb + i, w); });
    } else {
      if (!s) s = zeros.data();
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t off = base + t * C;
        apply_rows(a + off, s, b + off, h + off, n);
        s = h + off;
      }
    }
    if (hT && hi == T) std::copy(h + base + (T - 1) * C, h + base + (T - 1) * C + n, hT + L.state(lane));
  };
  chained_scan<V, V>(plan, L.cw, 2 * L.cw, reduce, fold, rescan);
}

// ---------------------------------------------------------------------------------------------
// Backward: the recurrence g_t = conj(a_{t+1}) g_{t+1} + dh_t run from the end of time
// ---------------------------------------------------------------------------------------------

template <class V>
void linear_recurrence_backward(const V* a, const V* h0, const V* h, const V* dh, const V* dhT, V* da, V* db,
                                V* dh0, int64_t B, int64_t T, int64_t C) {
  ROTOR_CHECK(B >= 0 && T >= 0 && C >= 0, "linear_recurrence", "negative size B=", B, " T=", T, " C=", C);
  if (B == 0 || C == 0) return;
  if (T == 0) {  // the final state is h0 itself
    if (dh0) for (int64_t i = 0; i < B * C; ++i) dh0[i] = dhT ? dhT[i] : V(0);
    return;
  }
  const ChannelLanes L(B, T, C, int64_t(sizeof(V)));
  // Read-only rows of 1 and 0 for the steps that have no a or b (shared by every block).
  const std::vector<V> ones(size_t(L.cw), V(1)), zeros(size_t(L.cw), V(0));
  const ScanPlan plan = plan_scan(L.count, T, 5 * L.cw * int64_t(sizeof(V)), true);
  auto start_of = [&](int64_t lane, const V* carry) -> const V* {
    return carry ? carry : dhT ? dhT + L.state(lane) : nullptr;
  };
  // Loaders of step t's upstream gradient, and of h_{t-1} (h0 or zero before the start).
  auto dh_at = [&](int64_t off, auto w) {
    using W = decltype(w);
    return dh ? simd::load<W>(dh + off) : simd::zero<W>();
  };
  auto h_before = [&](int64_t lane, int64_t off, int64_t t, auto w) {
    using W = decltype(w);
    if (t > 0) return simd::load<W>(h + off - C);
    return h0 ? simd::load<W>(h0 + L.state(lane) + (off - L.base(lane))) : simd::zero<W>();
  };

  // Aggregate of a block in processing order (from its end): g_lo = A g_hi + U.
  auto reduce = [&](int64_t lane, int64_t lo, int64_t hi, V* agg) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    V *A = agg, *U = agg + L.cw;
    std::fill(A, A + n, V(1));
    std::fill(U, U + n, V(0));
    if (C == 1) {
      int64_t top = hi;
      if (hi == T) U[0] = dh_at(base + T - 1, V{}), top = T - 1;  // the last step has no a_{t+1}
      const V* ab = a + base + lo + 1;
      const int64_t db0 = base + lo;
      compose_one_channel<true>(
          top - lo, [&](int64_t i, auto w) { return simd::conjugate(simd::load<decltype(w)>(ab + i)); },
          [&](int64_t i, auto w) { return dh_at(db0 + i, w); }, A[0], U[0]);
      return;
    }
    // The last step has no a_{t+1}: it composes with 1 (g_{T-1} = dhT + dh_{T-1}).
    for (int64_t t = hi - 1; t >= lo; --t) {
      const int64_t off = base + t * C;
      step_rows<true>(A, U, t + 1 < T ? a + off + C : ones.data(), dh ? dh + off : zeros.data(), n);
    }
  };
  auto fold = [&](int64_t lane, const V* prev, const V* agg, V* next) {
    const V* s = start_of(lane, prev);
    const V *A = agg, *U = agg + L.cw;
    for (int64_t c = 0, n = L.channels(lane); c < n; ++c) next[c] = s ? simd::madd(A[c], s[c], U[c]) : U[c];
  };
  // Writes db_t = g_t and da_t = g_t conj(h_{t-1}) at flat offset off (time t).
  auto emit = [&](int64_t lane, int64_t off, int64_t t, auto g) {
    using W = decltype(g);
    simd::store(db + off, g);
    simd::store(da + off, simd::mul(g, simd::conjugate(h_before(lane, off, t, W{}))));
  };
  auto rescan = [&](int64_t lane, int64_t lo, int64_t hi, const V* carry) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    const V* s = start_of(lane, carry);
    if (C == 1) {
      V g = s ? *s : V(0);
      int64_t top = hi;
      if (hi == T) {  // the last step: g_{T-1} = dh_{T-1} + dhT
        g = g + dh_at(base + T - 1, V{});
        emit(lane, base + T - 1, T - 1, g);
        top = T - 1;
      }
      const int64_t bottom = std::max<int64_t>(lo, 1);  // step 0 reads h0: done below
      if (top > bottom) {
        const V* ab = a + base + bottom + 1;
        const int64_t off0 = base + bottom;
        g = rescan_one_channel<true>(
            top - bottom, g, [&](int64_t i, auto w) { return simd::conjugate(simd::load<decltype(w)>(ab + i)); },
            [&](int64_t i, auto w) { return dh_at(off0 + i, w); },
            [&](int64_t i, auto w) { emit(lane, off0 + i, bottom + i, w); });
      }
      if (lo == 0 && top > 0) {
        g = simd::madd(simd::conjugate(a[base + 1]), g, dh_at(base, V{}));
        emit(lane, base, 0, g);
      }
      if (lo == 0 && dh0) dh0[L.state(lane)] = simd::mul(simd::conjugate(a[base]), g);
      return;
    }
    const V* h_start = h0 ? h0 + L.state(lane) : zeros.data();
    if (!s) s = zeros.data();
    for (int64_t t = hi - 1; t >= lo; --t) {
      const int64_t off = base + t * C;
      backward_rows(t + 1 < T ? a + off + C : ones.data(), s, dh ? dh + off : zeros.data(),
                    t > 0 ? h + off - C : h_start, db + off, da + off, n);
      s = db + off;
    }
    if (lo == 0 && dh0) {
      simd::for_channels<V>(
          n, [](auto w, const V* a0, const V* g0, V* d) {
            using W = decltype(w);
            simd::store(d, simd::mul(simd::conjugate(simd::load<W>(a0)), simd::load<W>(g0)));
          },
          a + base, db + base, dh0 + L.state(lane));
    }
  };
  chained_scan<V, V>(plan, L.cw, 2 * L.cw, reduce, fold, rescan);
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

template <class V>
void linear_recurrence_forward_reference(const V* a, const V* b, const V* h0, V* h, V* hT, int64_t B,
                                         int64_t T, int64_t C) {
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c) {
      V s = h0 ? h0[bi * C + c] : V(0);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t off = (bi * T + t) * C + c;
        h[off] = s = a[off] * s + b[off];
      }
      if (hT) hT[bi * C + c] = s;
    }
}

template <class V>
void linear_recurrence_backward_reference(const V* a, const V* h0, const V* h, const V* dh, const V* dhT,
                                          V* da, V* db, V* dh0, int64_t B, int64_t T, int64_t C) {
  auto cj = [](V z) {
    if constexpr (simd::is_complex<V>::value) return std::conj(z);
    else return z;
  };
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c) {
      V g = dhT ? dhT[bi * C + c] : V(0);  // dL/dh_t, accumulated from the end
      V a_next = V(1);                     // a_{t+1}; the final state is h_{T-1} itself
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t off = (bi * T + t) * C + c;
        g = cj(a_next) * g + (dh ? dh[off] : V(0));
        V h_prev = t > 0 ? h[off - C] : h0 ? h0[bi * C + c] : V(0);
        db[off] = g;
        da[off] = g * cj(h_prev);
        a_next = a[off];
      }
      if (dh0) dh0[bi * C + c] = cj(a_next) * g;
    }
}

#define ROTOR_INSTANTIATE(V)                                                                                   \
  template void linear_recurrence_forward<V>(const V*, const V*, const V*, V*, V*, int64_t, int64_t, int64_t); \
  template void linear_recurrence_backward<V>(const V*, const V*, const V*, const V*, const V*, V*, V*, V*,    \
                                              int64_t, int64_t, int64_t);                                     \
  template void linear_recurrence_forward_reference<V>(const V*, const V*, const V*, V*, V*, int64_t, int64_t, \
                                                       int64_t);                                              \
  template void linear_recurrence_backward_reference<V>(const V*, const V*, const V*, const V*, const V*, V*,  \
                                                        V*, V*, int64_t, int64_t, int64_t);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
ROTOR_INSTANTIATE(std::complex<float>)
ROTOR_INSTANTIATE(std::complex<double>)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
