// Suite "scan": the blocked parallel scan driver and its instantiations, against plain
// sequential loops in float64.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <complex>
#include <cstring>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "kernels/scan.h"

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
