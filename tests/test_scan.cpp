// Suite "scan": the blocked parallel scan driver and its instantiations, against plain
// sequential loops in float64.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <complex>
#include <cstring>
#include <random>
#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/kernels/scan.h"
#include "rotor/kernels/scan_cumsum.h"
#include "rotor/kernels/scan_linear_recurrence.h"

using namespace rotor;
using namespace rotor::kernels;

namespace {

template <class V>
std::vector<V> uniform(size_t n, uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<V> v(n);
  for (auto& e : v) e = V(u(rng));
  return v;
}

// Runs fn once on one thread and once on all threads, and checks the outputs are the same bits.
template <class V, class F>
void check_thread_invariant(std::vector<V>& out, F&& fn) {
  set_num_threads(1);
  fn();
  std::vector<V> one = out;
  set_num_threads(0);
  fn();
  CHECK(std::memcmp(one.data(), out.data(), out.size() * sizeof(V)) == 0);
}

// 2x2 matrices multiply in order: a non-commutative associative operator.
using Mat2 = std::array<double, 4>;
Mat2 matmul(const Mat2& p, const Mat2& q) {
  return {p[0] * q[0] + p[1] * q[2], p[0] * q[1] + p[1] * q[3], p[2] * q[0] + p[3] * q[2],
          p[2] * q[1] + p[3] * q[3]};
}

// Per value type: the long double type its exact reference runs in, and its unit roundoff.
template <class V>
struct Num;
template <>
struct Num<float> {
  using W = long double;
  static constexpr double eps = 0x1p-24;
};
template <>
struct Num<double> {
  using W = long double;
  static constexpr double eps = 0x1p-53;
};
template <class R>
struct Num<std::complex<R>> {
  using W = std::complex<long double>;
  static constexpr double eps = Num<R>::eps;
};
template <class V>
using wide_t = typename Num<V>::W;
template <class V>
constexpr bool is_complex_v = !std::is_arithmetic_v<V>;

// Uniform values in [lo, hi) (both parts of a complex value).
template <class V>
std::vector<V> random_values(size_t n, uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<V> v(n);
  for (auto& e : v) {
    if constexpr (is_complex_v<V>) {
      double re = u(rng);
      e = V(re, u(rng));
    } else {
      e = V(u(rng));
    }
  }
  return v;
}

// Decays: real in [0.8, 1] (long memory); complex with modulus in [0.8, 1] and any phase.
template <class V>
std::vector<V> random_decays(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> r(0.8, 1.0), phase(-M_PI, M_PI);
  std::vector<V> v(n);
  for (auto& e : v) {
    if constexpr (is_complex_v<V>) e = std::polar(r(rng), phase(rng));
    else e = V(r(rng));
  }
  return v;
}

template <class V>
std::vector<wide_t<V>> widen(const std::vector<V>& v) {
  return std::vector<wide_t<V>>(v.begin(), v.end());
}
template <class V, class W>
std::vector<V> narrow(const std::vector<W>& v) {
  std::vector<V> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = V(v[i]);
  return out;
}
template <class V>
const V* ptr_or_null(const std::vector<V>& v) {
  return v.empty() ? nullptr : v.data();
}
template <class V>
V* ptr_or_null(std::vector<V>& v) {
  return v.empty() ? nullptr : v.data();
}

template <class V, class W>
double max_err(const std::vector<V>& got, const std::vector<W>& exact) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i) e = std::max(e, double(std::abs(W(got[i]) - exact[i])));
  return e;
}
template <class W>
double max_abs(const std::vector<W>& v) {
  double m = 0;
  for (auto& e : v) m = std::max(m, double(std::abs(e)));
  return m;
}

// The kernels reassociate, so they are held to the accuracy of the plain sequential loop in the
// same precision: max error <= 4 x that loop's max error, plus a statistical allowance for a
// different order of roundings: each output collects at most `steps` roundings of at most
// eps/2 x the largest magnitude, which add up like a random walk (2 sqrt(steps) is ~4 sigma).
// (The loop alone is not a safe yardstick: on some inputs its errors cancel to a few ulps.)
template <class V, class W>
void check_close(const std::vector<V>& got, const std::vector<V>& loop, const std::vector<W>& exact,
                 int64_t steps) {
  REQUIRE(got.size() == exact.size());
  const double e_got = max_err(got, exact), e_loop = max_err(loop, exact), scale = max_abs(exact);
  CAPTURE(e_got);
  CAPTURE(e_loop);
  CAPTURE(scale);
  CHECK(e_got <= 4 * e_loop + (16 + 2 * std::sqrt(double(steps))) * Num<V>::eps * scale);
}

// Exact (long double) oracles, written independently of the kernels' references.
template <class W>
void exact_cumsum(const std::vector<W>& x, const W* init, std::vector<W>& y, int64_t B, int64_t T, int64_t C,
                  bool reverse) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      W s = init ? init[b * C + c] : W(0);
      for (int64_t i = 0; i < T; ++i) {
        int64_t t = reverse ? T - 1 - i : i;
        s += x[size_t((b * T + t) * C + c)];
        y[size_t((b * T + t) * C + c)] = s;
      }
    }
}
template <class W>
W cj(const W& z) {
  if constexpr (std::is_arithmetic_v<W>) return z;
  else return std::conj(z);
}
template <class W>
void exact_recurrence(const std::vector<W>& a, const std::vector<W>& b, const std::vector<W>& h0, std::vector<W>& h,
                      std::vector<W>& hT, int64_t B, int64_t T, int64_t C) {
  hT.assign(size_t(B * C), W(0));
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c) {
      W s = h0.empty() ? W(0) : h0[size_t(bi * C + c)];
      for (int64_t t = 0; t < T; ++t) {
        size_t off = size_t((bi * T + t) * C + c);
        h[off] = s = a[off] * s + b[off];
      }
      hT[size_t(bi * C + c)] = s;
    }
}
// dL/dh_t accumulates backwards: g_t = dh_t + conj(a_{t+1}) g_{t+1}.
template <class W>
void exact_recurrence_backward(const std::vector<W>& a, const std::vector<W>& h0, const std::vector<W>& h,
                               const std::vector<W>& dh, const std::vector<W>& dhT, std::vector<W>& da,
                               std::vector<W>& db, std::vector<W>& dh0, int64_t B, int64_t T, int64_t C) {
  dh0.assign(size_t(B * C), W(0));
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c) {
      W g = dhT.empty() ? W(0) : dhT[size_t(bi * C + c)];
      for (int64_t t = T - 1; t >= 0; --t) {
        size_t off = size_t((bi * T + t) * C + c);
        if (t + 1 < T) g = cj(a[off + size_t(C)]) * g;
        if (!dh.empty()) g += dh[off];
        db[off] = g;
        W hp = t > 0 ? h[off - size_t(C)] : h0.empty() ? W(0) : h0[size_t(bi * C + c)];
        da[off] = g * cj(hp);
      }
      if (T > 0) dh0[size_t(bi * C + c)] = cj(a[size_t(bi * T * C + c)]) * db[size_t(bi * T * C + c)];
      else if (!dhT.empty()) dh0[size_t(bi * C + c)] = dhT[size_t(bi * C + c)];
    }
}

struct Shape3 {
  int64_t B, T, C;
};
// Lengths 1, 2, odd, prime, 10^6; one channel and several (below, at and off the SIMD width);
// one and several sequences; a row wide enough to be cut into channel blocks. The primes
// 100003 and 65537 and the 37-channel rows span several time blocks with ragged ends.
const std::vector<Shape3> kShapes = {{1, 1, 1},       {1, 2, 1},    {1, 17, 1},     {1, 9973, 1},
                                     {1, 100003, 1},  {1, 1000000, 1}, {3, 65537, 1}, {2, 1001, 3},
                                     {2, 9973, 37},   {2, 2000, 64}, {2, 61, 1100}};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Partition
// ---------------------------------------------------------------------------------------------

TEST_CASE("plan_scan covers time with fixed aligned blocks, in reverse order when asked") {
  for (int64_t T : {1, 2, 63, 64, 65, 9973, 1000000}) {
    for (bool reverse : {false, true}) {
      ScanPlan p = plan_scan(1, T, 8, reverse);
      CHECK(p.nblocks * p.block >= T);
      CHECK((p.nblocks - 1) * p.block < T);
      if (p.nblocks > 1) CHECK(p.block % kScanStepAlign == 0);
      int64_t covered = 0, expect_hi = reverse ? T : -1, expect_lo = 0;
      for (int64_t k = 0; k < p.nblocks; ++k) {
        auto [lo, hi] = p.range(k);
        CHECK(lo < hi);
        if (reverse) {
          CHECK(hi == expect_hi);
          expect_hi = lo;
        } else {
          CHECK(lo == expect_lo);
          expect_lo = hi;
        }
        covered += hi - lo;
      }
      CHECK(covered == T);
    }
  }
  // Many lanes keep the threads busy without cutting time.
  CHECK(plan_scan(kScanLanesNoSplit, 1 << 20, 8, false).nblocks == 1);
}

// ---------------------------------------------------------------------------------------------
// Generic scan
// ---------------------------------------------------------------------------------------------

TEST_CASE("associative_scan: sums match a float64 sequential loop, forward and reverse") {
  struct Case { int64_t B, T, C; };
  for (Case s : {Case{1, 1, 1}, Case{1, 2, 1}, Case{3, 17, 5}, Case{1, 9973, 1}, Case{2, 9973, 3},
                 Case{1, 1000000, 1}, Case{20, 3001, 2}, Case{2, 513, 700}}) {
    for (bool reverse : {false, true}) {
      CAPTURE(s.B);
      CAPTURE(s.T);
      CAPTURE(s.C);
      CAPTURE(reverse);
      size_t n = size_t(s.B * s.T * s.C);
      auto x = uniform<double>(n, 7);
      std::vector<double> y(n), ref(n);
      auto add = [](double p, double q) { return p + q; };
      associative_scan_reference(x.data(), ref.data(), s.B, s.T, s.C, reverse, add);
      check_thread_invariant(y, [&] { associative_scan(x.data(), y.data(), s.B, s.T, s.C, reverse, add); });
      // Blocked sums reassociate: error bounded by ~ (blocks + block length) ulps of sum |x|.
      double worst = 0;
      for (int64_t b = 0; b < s.B; ++b)
        for (int64_t c = 0; c < s.C; ++c) {
          double abs_sum = 0;
          for (int64_t i = 0; i < s.T; ++i) {
            int64_t t = reverse ? s.T - 1 - i : i;
            size_t off = size_t((b * s.T + t) * s.C + c);
            abs_sum += std::fabs(x[off]);
            worst = std::max(worst, std::fabs(y[off] - ref[off]) / (abs_sum * 1e-16 * std::sqrt(double(s.T)) + 1e-300));
          }
        }
      CHECK(worst < 64);
    }
  }
}

TEST_CASE("associative_scan respects order: 2x2 matrix products, forward and reverse") {
  // Rotations and reflections: orthogonal, so products stay bounded, and they do not commute.
  for (int64_t T : {1, 2, 31, 9973, 200000}) {
    for (bool reverse : {false, true}) {
      CAPTURE(T);
      CAPTURE(reverse);
      const int64_t B = 2, C = 3;
      auto r = uniform<double>(size_t(B * T * C * 2), 11, -3, 3);
      std::vector<Mat2> x(size_t(B * T * C)), y(x.size()), ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        double c = std::cos(r[2 * i]), s = std::sin(r[2 * i]);
        x[i] = r[2 * i + 1] > 0 ? Mat2{c, -s, s, c} : Mat2{c, s, s, -c};
      }
      associative_scan_reference(x.data(), ref.data(), B, T, C, reverse, matmul);
      check_thread_invariant(y, [&] { associative_scan(x.data(), y.data(), B, T, C, reverse, matmul); });
      double worst = 0;
      for (size_t i = 0; i < y.size(); ++i)
        for (int j = 0; j < 4; ++j) worst = std::max(worst, std::fabs(y[i][j] - ref[i][j]));
      CHECK(worst < 1e-9);
      // The same operator with swapped arguments gives a different answer: order is tested.
      if (T >= 2) {
        std::vector<Mat2> swapped(x.size());
        associative_scan_reference(x.data(), swapped.data(), B, T, C, reverse,
                                   [](const Mat2& p, const Mat2& q) { return matmul(q, p); });
        double diff = 0;
        for (size_t i = 0; i < y.size(); ++i)
          for (int j = 0; j < 4; ++j) diff = std::max(diff, std::fabs(swapped[i][j] - ref[i][j]));
        CHECK(diff > 1e-3);
      }
    }
  }
}

TEST_CASE("associative_scan works in place") {
  const int64_t B = 2, T = 5001, C = 3;
  auto x = uniform<double>(size_t(B * T * C), 3);
  std::vector<double> ref(x.size());
  auto add = [](double p, double q) { return p + q; };
  associative_scan(x.data(), ref.data(), B, T, C, true, add);
  associative_scan(x.data(), x.data(), B, T, C, true, add);
  CHECK(std::memcmp(x.data(), ref.data(), x.size() * sizeof(double)) == 0);
}

TEST_CASE("associative_scan of affine maps equals linear_recurrence_forward") {
  // The pairs (a, b) under (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2) are the recurrence itself.
  const int64_t B = 2, T = 4099, C = 5;
  auto a = uniform<double>(size_t(B * T * C), 21, 0.5, 0.95), b = uniform<double>(size_t(B * T * C), 22);
  using Pair = std::array<double, 2>;
  std::vector<Pair> x(a.size()), y(a.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = {a[i], b[i]};
  associative_scan(x.data(), y.data(), B, T, C, false,
                   [](const Pair& p, const Pair& q) { return Pair{q[0] * p[0], q[0] * p[1] + q[1]}; });
  std::vector<double> h(a.size());
  linear_recurrence_forward<double>(a.data(), b.data(), nullptr, h.data(), nullptr, B, T, C);
  double worst = 0;
  for (size_t i = 0; i < h.size(); ++i) worst = std::max(worst, std::fabs(y[i][1] - h[i]));
  CHECK(worst < 1e-13);  // |h| <= 1 / (1 - 0.95) = 20: a few ulps of 20
}

// ---------------------------------------------------------------------------------------------
// Prefix sums
// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("cumsum_forward / cumsum_backward match long double loops", V, float, double) {
  for (Shape3 s : kShapes) {
    for (bool reverse : {false, true}) {
      for (bool with_init : {false, true}) {
        CAPTURE(s.B);
        CAPTURE(s.T);
        CAPTURE(s.C);
        CAPTURE(reverse);
        CAPTURE(with_init);
        const size_t n = size_t(s.B * s.T * s.C), ns = size_t(s.B * s.C);
        // Positive inputs make the sums grow like T (the hard case for rounding), signed ones not.
        auto x = random_values<V>(n, 1 + s.T, reverse ? -1 : 0, 1);
        auto init = with_init ? random_values<V>(ns, 2) : std::vector<V>{};
        std::vector<V> y(n), loop(n);
        cumsum_forward(x.data(), ptr_or_null(init), y.data(), s.B, s.T, s.C, reverse);
        cumsum_forward_reference(x.data(), ptr_or_null(init), loop.data(), s.B, s.T, s.C, reverse);
        std::vector<wide_t<V>> exact(n), winit = widen(init);
        exact_cumsum(widen(x), ptr_or_null(winit), exact, s.B, s.T, s.C, reverse);
        check_close(y, loop, exact, s.T);

        // Backward: dx is the opposite-direction cumsum of dy, dinit the total.
        auto dy = random_values<V>(n, 3);
        std::vector<V> dx(n), dinit(ns), dx_loop(n), dinit_loop(ns);
        cumsum_backward(dy.data(), dx.data(), dinit.data(), s.B, s.T, s.C, reverse);
        cumsum_backward_reference(dy.data(), dx_loop.data(), dinit_loop.data(), s.B, s.T, s.C, reverse);
        std::vector<wide_t<V>> dx_exact(n), dinit_exact(ns);
        exact_cumsum(widen(dy), (const wide_t<V>*)nullptr, dx_exact, s.B, s.T, s.C, !reverse);
        for (int64_t b = 0; b < s.B; ++b)
          for (int64_t c = 0; c < s.C; ++c)
            dinit_exact[size_t(b * s.C + c)] = dx_exact[size_t((b * s.T + (reverse ? s.T - 1 : 0)) * s.C + c)];
        check_close(dx, dx_loop, dx_exact, s.T);
        check_close(dinit, dinit_loop, dinit_exact, s.T);
      }
    }
  }
}

TEST_CASE("cumsum_backward is the adjoint of cumsum_forward: <y, dy> = <x, dx> + <init, dinit>") {
  const int64_t B = 2, T = 777, C = 5;
  for (bool reverse : {false, true}) {
    auto x = random_values<double>(size_t(B * T * C), 5), init = random_values<double>(size_t(B * C), 6),
         dy = random_values<double>(size_t(B * T * C), 7);
    std::vector<double> y(x.size()), dx(x.size()), dinit(init.size());
    cumsum_forward(x.data(), init.data(), y.data(), B, T, C, reverse);
    cumsum_backward(dy.data(), dx.data(), dinit.data(), B, T, C, reverse);
    long double lhs = 0, rhs = 0;
    for (size_t i = 0; i < x.size(); ++i) lhs += (long double)y[i] * dy[i], rhs += (long double)x[i] * dx[i];
    for (size_t i = 0; i < init.size(); ++i) rhs += (long double)init[i] * dinit[i];
    CHECK(double(std::fabs(lhs - rhs)) < 1e-9);  // sums of ~1e6 products of size ~T: 1e-12 relative
  }
}

TEST_CASE("cumsum works in place") {
  const int64_t B = 1, T = 100000, C = 1;
  auto x = random_values<float>(size_t(T), 8);
  std::vector<float> y(x.size());
  cumsum_forward<float>(x.data(), nullptr, y.data(), B, T, C, false);
  cumsum_forward<float>(x.data(), nullptr, x.data(), B, T, C, false);
  CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
  CHECK_THROWS_AS(cumsum_forward<float>(x.data(), nullptr, y.data(), 1, -1, 1, false), rotor::Error);
}

// ---------------------------------------------------------------------------------------------
// Linear recurrence
// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("linear_recurrence forward and backward match long double loops", V, float, double,
                   std::complex<float>, std::complex<double>) {
  for (Shape3 s : kShapes) {
    for (bool with_state : {false, true}) {
      CAPTURE(s.B);
      CAPTURE(s.T);
      CAPTURE(s.C);
      CAPTURE(with_state);
      const size_t n = size_t(s.B * s.T * s.C), ns = size_t(s.B * s.C);
      auto a = random_decays<V>(n, 10 + s.C);
      auto b = random_values<V>(n, 11);
      auto h0 = with_state ? random_values<V>(ns, 12) : std::vector<V>{};
      std::vector<V> h(n), hT(ns), loop(n), loop_T(ns);
      linear_recurrence_forward(a.data(), b.data(), ptr_or_null(h0), h.data(), hT.data(), s.B, s.T, s.C);
      linear_recurrence_forward_reference(a.data(), b.data(), ptr_or_null(h0), loop.data(), loop_T.data(), s.B, s.T,
                                          s.C);
      std::vector<wide_t<V>> wa = widen(a), wh0 = widen(h0), exact(n), exact_T;
      exact_recurrence(wa, widen(b), wh0, exact, exact_T, s.B, s.T, s.C);
      check_close(h, loop, exact, s.T);
      check_close(hT, loop_T, exact_T, s.T);
      // The final state is the last step's output, bit for bit.
      for (int64_t bi = 0; bi < s.B; ++bi)
        CHECK(std::memcmp(&hT[size_t(bi * s.C)], &h[size_t((bi * s.T + s.T - 1) * s.C)], size_t(s.C) * sizeof(V)) ==
              0);

      // Backward from the exact forward states (rounded), so only the backward's error is measured.
      std::vector<V> hx = narrow<V>(exact);
      auto dh = random_values<V>(n, 13);
      auto dhT = with_state ? random_values<V>(ns, 14) : std::vector<V>{};
      std::vector<V> da(n), db(n), dh0(ns), da_l(n), db_l(n), dh0_l(ns);
      linear_recurrence_backward(a.data(), ptr_or_null(h0), hx.data(), dh.data(), ptr_or_null(dhT), da.data(),
                                 db.data(), dh0.data(), s.B, s.T, s.C);
      linear_recurrence_backward_reference(a.data(), ptr_or_null(h0), hx.data(), dh.data(), ptr_or_null(dhT),
                                           da_l.data(), db_l.data(), dh0_l.data(), s.B, s.T, s.C);
      std::vector<wide_t<V>> eda(n), edb(n), edh0;
      exact_recurrence_backward(wa, wh0, widen(hx), widen(dh), widen(dhT), eda, edb, edh0, s.B, s.T, s.C);
      check_close(db, db_l, edb, s.T);
      check_close(da, da_l, eda, s.T);
      check_close(dh0, dh0_l, edh0, s.T);
    }
  }
}

TEST_CASE_TEMPLATE("linear_recurrence_backward with a gradient on the final state only", V, float,
                   std::complex<double>) {
  for (Shape3 s : {Shape3{1, 5000, 1}, Shape3{2, 300, 19}}) {
    const size_t n = size_t(s.B * s.T * s.C), ns = size_t(s.B * s.C);
    auto a = random_decays<V>(n, 30), h = random_values<V>(n, 31), dhT = random_values<V>(ns, 32);
    std::vector<V> da(n), db(n), dh0(ns), da_l(n), db_l(n), dh0_l(ns);
    linear_recurrence_backward<V>(a.data(), nullptr, h.data(), nullptr, dhT.data(), da.data(), db.data(), dh0.data(),
                                  s.B, s.T, s.C);
    std::vector<wide_t<V>> eda(n), edb(n), edh0;
    exact_recurrence_backward(widen(a), {}, widen(h), {}, widen(dhT), eda, edb, edh0, s.B, s.T, s.C);
    linear_recurrence_backward_reference<V>(a.data(), nullptr, h.data(), nullptr, dhT.data(), da_l.data(),
                                            db_l.data(), dh0_l.data(), s.B, s.T, s.C);
    check_close(db, db_l, edb, s.T);
    check_close(da, da_l, eda, s.T);
    check_close(dh0, dh0_l, edh0, s.T);
  }
}

namespace {
// L = sum_t Re(conj(w_t) h_t) + Re(conj(wT) hT): its gradient on h_t is w_t in rotor's convention.
template <class V>
double probe_loss(const std::vector<V>& a, const std::vector<V>& b, const std::vector<V>& h0,
                  const std::vector<V>& w, const std::vector<V>& wT, Shape3 s) {
  std::vector<V> h(a.size()), hT(h0.size());
  linear_recurrence_forward(a.data(), b.data(), h0.data(), h.data(), hT.data(), s.B, s.T, s.C);
  double L = 0;
  for (size_t i = 0; i < h.size(); ++i) L += std::real(cj(w[i]) * h[i]);
  for (size_t i = 0; i < hT.size(); ++i) L += std::real(cj(wT[i]) * hT[i]);
  return L;
}
}  // namespace

TEST_CASE_TEMPLATE("linear_recurrence_backward matches central finite differences (float64)", V, double,
                   std::complex<double>) {
  // Real and imaginary parts are perturbed separately: da = dL/dRe(a) + i dL/dIm(a).
  for (Shape3 s : {Shape3{2, 7, 3}, Shape3{1, 40, 1}}) {
    CAPTURE(s.T);
    const size_t n = size_t(s.B * s.T * s.C), ns = size_t(s.B * s.C);
    auto a = random_decays<V>(n, 40), b = random_values<V>(n, 41), h0 = random_values<V>(ns, 42);
    auto w = random_values<V>(n, 43), wT = random_values<V>(ns, 44);
    std::vector<V> h(n), da(n), db(n), dh0(ns);
    linear_recurrence_forward<V>(a.data(), b.data(), h0.data(), h.data(), nullptr, s.B, s.T, s.C);
    linear_recurrence_backward(a.data(), h0.data(), h.data(), w.data(), wT.data(), da.data(), db.data(), dh0.data(),
                               s.B, s.T, s.C);
    const double step = 1e-5;
    double worst = 0;
    auto probe = [&](std::vector<V>& param, const std::vector<V>& grad) {
      for (size_t i = 0; i < param.size(); ++i) {
        for (int part = 0; part < (is_complex_v<V> ? 2 : 1); ++part) {
          V unit = part == 0 ? V(1) : V(0);
          if constexpr (is_complex_v<V>) if (part == 1) unit = V(0, 1);
          V saved = param[i];
          param[i] = saved + step * unit;
          double up = probe_loss(a, b, h0, w, wT, s);
          param[i] = saved - step * unit;
          double down = probe_loss(a, b, h0, w, wT, s);
          param[i] = saved;
          double fd = (up - down) / (2 * step);
          double an = part == 0 ? std::real(grad[i]) : std::imag(grad[i]);
          worst = std::max(worst, std::fabs(fd - an) / (1 + std::fabs(an)));
        }
      }
    };
    probe(a, da);
    probe(b, db);
    probe(h0, dh0);
    // Central differences: O(step^2) truncation (the loss is a polynomial in a) plus ~eps/step rounding.
    CHECK(worst < 1e-8);
  }
}

TEST_CASE("complex gradient convention, by hand: h = a * x") {
  // One step with b = 0: h_0 = a_0 * h0. With a = 1 + 2i, x = h0 = 3 - i:
  //   L = Re(h) = Re(a)Re(x) - Im(a)Im(x):  dL/dx = 1 - 2i = conj(a),  dL/da = 3 + i = conj(x)
  //   L = Im(h) = Re(a)Im(x) + Im(a)Re(x):  dL/dx = 2 + i = conj(a) i, dL/da = -1 + 3i = conj(x) i
  using Z = std::complex<double>;
  const Z a(1, 2), x(3, -1), b(0, 0);
  Z h, hT;
  linear_recurrence_forward(&a, &b, &x, &h, &hT, 1, 1, 1);
  CHECK(h == Z(5, 5));
  Z da, db, dx;
  const Z dre(1, 0), dim(0, 1);
  linear_recurrence_backward<Z>(&a, &x, &h, &dre, nullptr, &da, &db, &dx, 1, 1, 1);
  CHECK(dx == Z(1, -2));
  CHECK(da == Z(3, 1));
  CHECK(db == Z(1, 0));
  linear_recurrence_backward<Z>(&a, &x, &h, nullptr, &dim, &da, &db, &dx, 1, 1, 1);  // via the final state
  CHECK(dx == Z(2, 1));
  CHECK(da == Z(-1, 3));
  CHECK(db == Z(0, 1));
}

TEST_CASE("linear_recurrence with a = 1 is a cumsum with an offset") {
  const int64_t B = 2, T = 20011, C = 3;
  auto b = random_values<double>(size_t(B * T * C), 50), h0 = random_values<double>(size_t(B * C), 51);
  std::vector<double> ones(b.size(), 1.0), h(b.size()), y(b.size());
  linear_recurrence_forward<double>(ones.data(), b.data(), h0.data(), h.data(), nullptr, B, T, C);
  cumsum_forward(b.data(), h0.data(), y.data(), B, T, C, false);
  CHECK(max_err(h, std::vector<long double>(y.begin(), y.end())) < 1e-11);  // sums of ~150: 1e-13 each
}

TEST_CASE("linear_recurrence in place: h over b, db over dh") {
  const int64_t B = 1, T = 50000, C = 1;
  auto a = random_decays<float>(size_t(T), 60), b = random_values<float>(size_t(T), 61);
  std::vector<float> h(b.size());
  linear_recurrence_forward<float>(a.data(), b.data(), nullptr, h.data(), nullptr, B, T, C);
  std::vector<float> inplace = b;
  linear_recurrence_forward<float>(a.data(), inplace.data(), nullptr, inplace.data(), nullptr, B, T, C);
  CHECK(std::memcmp(h.data(), inplace.data(), h.size() * sizeof(float)) == 0);
  auto dh = random_values<float>(size_t(T), 62);
  std::vector<float> da(b.size()), db(b.size()), da2(b.size());
  linear_recurrence_backward<float>(a.data(), nullptr, h.data(), dh.data(), nullptr, da.data(), db.data(), nullptr,
                                    B, T, C);
  linear_recurrence_backward<float>(a.data(), nullptr, h.data(), dh.data(), nullptr, da2.data(), dh.data(), nullptr,
                                    B, T, C);
  CHECK(std::memcmp(db.data(), dh.data(), db.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(da.data(), da2.data(), da.size() * sizeof(float)) == 0);
}

// ---------------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------------

TEST_CASE("scans give the same bits on 1 and all threads") {
  for (Shape3 s : {Shape3{1, 1000000, 1}, Shape3{3, 20011, 37}}) {
    CAPTURE(s.T);
    const size_t n = size_t(s.B * s.T * s.C), ns = size_t(s.B * s.C);
    for (bool reverse : {false, true}) {
      auto x = random_values<float>(n, 70);
      std::vector<float> y(n);
      check_thread_invariant(y, [&] { cumsum_forward<float>(x.data(), nullptr, y.data(), s.B, s.T, s.C, reverse); });
    }
    auto a = random_decays<std::complex<float>>(n, 71), b = random_values<std::complex<float>>(n, 72),
         dh = random_values<std::complex<float>>(n, 73);
    std::vector<std::complex<float>> h(n), da(n), db(n), dh0(ns);
    check_thread_invariant(h, [&] {
      linear_recurrence_forward<std::complex<float>>(a.data(), b.data(), nullptr, h.data(), nullptr, s.B, s.T, s.C);
    });
    check_thread_invariant(da, [&] {
      linear_recurrence_backward<std::complex<float>>(a.data(), nullptr, h.data(), dh.data(), nullptr, da.data(),
                                                      db.data(), dh0.data(), s.B, s.T, s.C);
    });
    auto ar = random_decays<float>(n, 74), br = random_values<float>(n, 75);
    std::vector<float> hr(n);
    check_thread_invariant(hr, [&] {
      linear_recurrence_forward<float>(ar.data(), br.data(), nullptr, hr.data(), nullptr, s.B, s.T, s.C);
    });
  }
}

TEST_CASE("blocks whose predecessor is late rebuild its carry with the same bits") {
  // Tickets handed out last-first: every block finds its predecessor's carry missing and folds
  // it up itself from the lane start, re-reducing the blocks before it.
  const int64_t T = 300000;
  auto x = random_values<float>(size_t(T), 80), a = random_decays<float>(size_t(T), 81);
  std::vector<float> in_order(x.size()), rebuilt(x.size()), h(x.size()), h_rebuilt(x.size());
  REQUIRE(plan_scan(1, T, 8, false).nblocks > 3);
  cumsum_forward<float>(x.data(), nullptr, in_order.data(), 1, T, 1, false);
  linear_recurrence_forward<float>(a.data(), x.data(), nullptr, h.data(), nullptr, 1, T, 1);
  std::vector<float> in_place = x;
  kernels::detail::scan_test_reverse_tickets(true);
  cumsum_forward<float>(x.data(), nullptr, rebuilt.data(), 1, T, 1, false);
  cumsum_forward<float>(in_place.data(), nullptr, in_place.data(), 1, T, 1, false);
  linear_recurrence_forward<float>(a.data(), x.data(), nullptr, h_rebuilt.data(), nullptr, 1, T, 1);
  kernels::detail::scan_test_reverse_tickets(false);
  CHECK(std::memcmp(in_order.data(), rebuilt.data(), x.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(in_order.data(), in_place.data(), x.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(h.data(), h_rebuilt.data(), x.size() * sizeof(float)) == 0);
}

TEST_CASE("chained_scan reused with its own Carry and Agg: diagonal-decay matrix states") {
  // GLA's chunk-state recurrence in miniature: S_t = diag(d_t) S_{t-1} + U_t with S: K x V per
  // lane. Carry = S (K*V values), Agg = a block's (diag A, U) (K + K*V values).
  const int64_t lanes = 3, T = 20000, K = 2, V = 3, KV = K * V;
  auto d = random_decays<double>(size_t(lanes * T * K), 90);
  auto U = random_values<double>(size_t(lanes * T * KV), 91);
  auto S0 = random_values<double>(size_t(lanes * KV), 92);
  std::vector<double> S(size_t(lanes * T * KV)), ref(S.size());
  for (int64_t l = 0; l < lanes; ++l) {
    std::vector<double> s(S0.begin() + l * KV, S0.begin() + (l + 1) * KV);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < KV; ++i) {
        s[size_t(i)] = d[size_t((l * T + t) * K + i / V)] * s[size_t(i)] + U[size_t((l * T + t) * KV + i)];
        ref[size_t((l * T + t) * KV + i)] = s[size_t(i)];
      }
  }
  const ScanPlan plan = plan_scan(lanes, T, int64_t(sizeof(double)) * (K + 2 * KV), false);
  REQUIRE(plan.nblocks > 1);
  auto reduce = [&](int64_t l, int64_t lo, int64_t hi, double* agg) {  // agg = [A (K) | U (K*V)]
    std::fill(agg, agg + K, 1.0);
    std::fill(agg + K, agg + K + KV, 0.0);
    for (int64_t t = lo; t < hi; ++t)
      for (int64_t i = 0; i < KV; ++i) {
        const double dt = d[size_t((l * T + t) * K + i / V)];
        agg[K + i] = dt * agg[K + i] + U[size_t((l * T + t) * KV + i)];
        if (i % V == 0) agg[i / V] *= dt;
      }
  };
  auto fold = [&](int64_t l, const double* prev, const double* agg, double* next) {
    const double* s = prev ? prev : S0.data() + l * KV;  // the lane's first block starts from S0
    for (int64_t i = 0; i < KV; ++i) next[i] = agg[i / V] * s[i] + agg[K + i];
  };
  auto rescan = [&](int64_t l, int64_t lo, int64_t hi, const double* carry) {
    const double* s = carry ? carry : S0.data() + l * KV;
    for (int64_t t = lo; t < hi; ++t) {
      double* out = S.data() + (l * T + t) * KV;
      for (int64_t i = 0; i < KV; ++i) out[i] = d[size_t((l * T + t) * K + i / V)] * s[i] + U[size_t((l * T + t) * KV + i)];
      s = out;
    }
  };
  check_thread_invariant(S, [&] { chained_scan<double, double>(plan, KV, K + KV, reduce, fold, rescan); });
  double worst = 0;
  for (size_t i = 0; i < S.size(); ++i) worst = std::max(worst, std::fabs(S[i] - ref[i]));
  CHECK(worst < 1e-12);  // |S| <= |S0| + 1 / (1 - 0.8) = 6: a few ulps
}
