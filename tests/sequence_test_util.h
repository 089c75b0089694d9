// Helpers of the kernel suites for sequence mixers (GLA, the gated delta rule): float64 buffers,
// seeded random inputs, relative errors, central differences and slicing along time of the
// (B,T,H,D) layout.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/kernels/gla.h"

namespace rotor::test {

using rotor::kernels::GlaDims;

using Buf = std::vector<double>;

inline double rel_rmse(const Buf& a, const Buf& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline double norm(const Buf& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

inline bool all_finite(const Buf& a) {
  for (double x : a)
    if (!std::isfinite(x)) return false;
  return true;
}

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  Buf normal(size_t n, double sd = 1.0) {
    std::normal_distribution<double> dist(0.0, sd);
    Buf out(n);
    for (auto& x : out) x = dist(gen);
    return out;
  }
  Buf uniform(size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    Buf out(n);
    for (auto& x : out) x = dist(gen);
    return out;
  }
};

inline double logsigmoid(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::abs(x))); }

// L = sum(o * dout) + sum(ht * dht), the scalar whose gradients the backward kernels return.
inline double loss(const Buf& o, const Buf& ht, const Buf& dout, const Buf& dht) {
  double l = 0;
  for (size_t i = 0; i < o.size(); ++i) l += o[i] * dout[i];
  for (size_t i = 0; i < ht.size(); ++i) l += ht[i] * dht[i];
  return l;
}

// Central differences of f with respect to every entry of x; compares with `analytic`.
// Relative error against the largest |gradient| (entries near zero are compared absolutely).
inline double finite_difference_error(Buf& x, const Buf& analytic, const std::function<double()>& f) {
  const double h = 1e-5;
  double worst = 0, scale = 1e-30;
  for (double a : analytic) scale = std::max(scale, std::abs(a));
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = f();
    x[i] = saved - h;
    const double down = f();
    x[i] = saved;
    worst = std::max(worst, std::abs((up - down) / (2 * h) - analytic[i]) / scale);
  }
  return worst;
}

// Rows [t0, t1) of a (B,T,H,D) tensor, as a (B,t1-t0,H,D) tensor.
inline Buf slice_time(const Buf& x, const GlaDims& d, int64_t t0, int64_t t1, int64_t D) {
  Buf out;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = t0; t < t1; ++t) {
      const double* row = &x[size_t(((b * d.T + t) * d.H) * D)];
      out.insert(out.end(), row, row + d.H * D);
    }
  return out;
}

// Concatenation along time of (B,T1,H,D) and (B,T2,H,D).
inline Buf concat_time(const Buf& a, const Buf& b, int64_t B, int64_t T1, int64_t T2, int64_t HD) {
  Buf out;
  for (int64_t i = 0; i < B; ++i) {
    out.insert(out.end(), a.begin() + i * T1 * HD, a.begin() + (i + 1) * T1 * HD);
    out.insert(out.end(), b.begin() + i * T2 * HD, b.begin() + (i + 1) * T2 * HD);
  }
  return out;
}

// The message of the rotor::Error that fn throws, or "no error".
template <class Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const rotor::Error& e) {
    return std::string(e.what());
  }
  return std::string("no error");
}

// Buffers converted for the float32 kernels and back.
inline std::vector<float> f32(const Buf& x) { return std::vector<float>(x.begin(), x.end()); }
inline Buf f64(const std::vector<float>& x) { return Buf(x.begin(), x.end()); }

// Every buffer of `one` equals its counterpart in `two` bit for bit (runs on different thread counts).
inline void check_bit_identical(const std::vector<std::vector<float>>& one,
                                const std::vector<std::vector<float>>& two) {
  REQUIRE(one.size() == two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    REQUIRE(one[i].size() == two[i].size());
    CHECK(std::memcmp(one[i].data(), two[i].data(), one[i].size() * sizeof(float)) == 0);
  }
}

}  // namespace rotor::test
