// Suite "rope": the rotation kernels, fixed RoPE and fused Selective RoPE (kernels/rotary.h,
// kernels/rope.h, kernels/selective_rope.h) against float64 scalar references, central finite
// differences, identities of docs/rotations.md and docs/selective_rope.md, and bit-identity across thread counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/core/generator.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/rope.h"
#include "rotor/kernels/rotary.h"
#include "rotor/kernels/selective_rope.h"

using namespace rotor;
using namespace rotor::kernels;

namespace {

template <class T>
std::vector<T> uniform(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Generator gen(seed);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = T(lo + (hi - lo) * gen.next_uniform());
  return v;
}

template <class T>
std::vector<double> widen(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <class T>
double max_diff(const std::vector<T>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

template <class T>
double max_abs(const std::vector<T>& a) {
  double m = 0;
  for (auto x : a) m = std::max(m, std::abs(double(x)));
  return m;
}

const RotaryLayout kLayouts[] = {RotaryLayout::HalfSplit, RotaryLayout::Interleaved};

// Per-dtype tolerances of the fast kernels against a float64 reference fed the same inputs.
// Rotations: the float sincos is within ~1.2e-7 of the exact value (Cody–Waite reduction,
// float polynomials), rotated O(1) inputs add a few float roundings (measured max 1.5e-7);
// double stays within a few ulps (measured 4e-16).
template <class T>
constexpr double kRotTol = sizeof(T) == 4 ? 1e-6 : 1e-14;

// A relative bound scaled by the reference's largest magnitude (sums of many terms).
template <class T>
bool close_rel(const std::vector<T>& got, const std::vector<double>& ref, double tol) {
  return max_diff(got, ref) <= tol * std::max(1.0, max_abs(ref));
}

int64_t numel(const RopeShape& s) { return s.B * s.T * s.H * s.D; }
int64_t numel_phase(const RopeShape& s) { return s.B * s.T * s.H * (s.D / 2); }

// Inputs of one Selective RoPE problem.
template <class T>
struct SelectiveInputs {
  RopeShape sh;
  std::vector<T> q, k, phi, tau, offset;
  SelectiveInputs(RopeShape s, uint64_t seed, double phi_hi = 1.0)
      : sh(s),
        q(uniform<T>(numel(s), seed)),
        k(uniform<T>(numel(s), seed + 1)),
        phi(uniform<T>(numel_phase(s), seed + 2, -0.25, phi_hi)),
        tau(uniform<T>(s.D / 2, seed + 3, 0.0, 1.0)),
        offset(uniform<T>(s.B * s.H * (s.D / 2), seed + 4, -3.0, 3.0)) {}
};

template <class T>
struct SelectiveOutputs {
  std::vector<T> q_out, k_out, final_offset;
  explicit SelectiveOutputs(const RopeShape& s)
      : q_out(numel(s)), k_out(numel(s)), final_offset(s.B * s.H * (s.D / 2)) {}
};

template <class T>
struct SelectiveGrads {
  std::vector<T> dq, dk, dphi, dtau, doffset;
  explicit SelectiveGrads(const RopeShape& s)
      : dq(numel(s)), dk(numel(s)), dphi(numel_phase(s)), dtau(s.D / 2), doffset(s.B * s.H * (s.D / 2)) {}
};

template <class T>
SelectiveOutputs<T> run_forward(const SelectiveInputs<T>& in, RotaryLayout layout, bool with_offset = true) {
  SelectiveOutputs<T> out(in.sh);
  selective_rope_forward(out.q_out.data(), out.k_out.data(), out.final_offset.data(), in.q.data(), in.k.data(),
                         in.phi.data(), in.tau.data(), with_offset ? in.offset.data() : nullptr, in.sh, layout);
  return out;
}

template <class T>
SelectiveGrads<T> run_backward(const SelectiveInputs<T>& in, const std::vector<T>& gq, const std::vector<T>& gk,
                               const std::vector<T>* gf, RotaryLayout layout) {
  SelectiveGrads<T> g(in.sh);
  selective_rope_backward(g.dq.data(), g.dk.data(), g.dphi.data(), g.dtau.data(), g.doffset.data(), gq.data(),
                          gk.data(), gf ? gf->data() : nullptr, in.q.data(), in.k.data(), in.phi.data(), in.tau.data(),
                          in.offset.data(), in.sh, layout);
  return g;
}

// The same problem widened to float64, through the scalar references.
template <class T>
SelectiveOutputs<double> reference_forward(const SelectiveInputs<T>& in, RotaryLayout layout) {
  SelectiveOutputs<double> out(in.sh);
  auto q = widen(in.q), k = widen(in.k), phi = widen(in.phi), tau = widen(in.tau), off = widen(in.offset);
  selective_rope_forward_reference(out.q_out.data(), out.k_out.data(), out.final_offset.data(), q.data(), k.data(),
                                   phi.data(), tau.data(), off.data(), in.sh, layout);
  return out;
}

template <class T>
SelectiveGrads<double> reference_backward(const SelectiveInputs<T>& in, const std::vector<T>& gq,
                                          const std::vector<T>& gk, const std::vector<T>* gf, RotaryLayout layout) {
  SelectiveGrads<double> g(in.sh);
  auto q = widen(in.q), k = widen(in.k), phi = widen(in.phi), tau = widen(in.tau), off = widen(in.offset);
  auto gq64 = widen(gq), gk64 = widen(gk);
  std::vector<double> gf64 = gf ? widen(*gf) : std::vector<double>();
  selective_rope_backward_reference(g.dq.data(), g.dk.data(), g.dphi.data(), g.dtau.data(), g.doffset.data(),
                                    gq64.data(), gk64.data(), gf ? gf64.data() : nullptr, q.data(), k.data(),
                                    phi.data(), tau.data(), off.data(), in.sh, layout);
  return g;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Complex rotation kernels

TEST_CASE_TEMPLATE("rotary forward and backward match float64 loops (layouts, ragged D, odd N)", T, float, double) {
  for (RotaryLayout layout : kLayouts)
    for (int64_t D : {2, 6, 10, 64, 100})
      for (int64_t N : {1, 7, 33}) {
        CAPTURE(D);
        CAPTURE(N);
        CAPTURE(int(layout));
        const int64_t R = D / 2;
        auto x = uniform<T>(N * D, 10 + D), g = uniform<T>(N * D, 20 + D), th = uniform<T>(N * R, 30 + D, -20, 20);
        auto x64 = widen(x), g64 = widen(g), th64 = widen(th);

        std::vector<T> out(N * D), dx(N * D), dth(N * R);
        std::vector<double> out64(N * D), dx64(N * D), dth64(N * R);
        rotary_forward(out.data(), x.data(), th.data(), N, D, layout);
        rotary_forward_reference(out64.data(), x64.data(), th64.data(), N, D, layout);
        CHECK(max_diff(out, out64) < kRotTol<T>);

        rotary_backward(dx.data(), dth.data(), g.data(), x.data(), th.data(), N, D, layout);
        rotary_backward_reference(dx64.data(), dth64.data(), g64.data(), x64.data(), th64.data(), N, D, layout);
        CHECK(max_diff(dx, dx64) < kRotTol<T>);
        CHECK(max_diff(dth, dth64) < 2 * kRotTol<T>);  // a sum of four products

        // The same loops in T (the plain reference beside the kernel agrees too).
        std::vector<T> out_ref(N * D);
        rotary_forward_reference(out_ref.data(), x.data(), th.data(), N, D, layout);
        CHECK(max_diff(out_ref, widen(out64)) < kRotTol<T>);
      }
}

TEST_CASE_TEMPLATE("rotary accuracy for large angles: exact sin/cos of the stored angle", T, float, double) {
  // Angles up to 1e4 rad (accumulated phases get there); and a few beyond 65536, where the
  // float kernel leaves its vector range reduction for double-precision libm calls.
  const int64_t N = 4096, D = 64, R = D / 2;
  auto x = uniform<T>(N * D, 1);
  auto th = uniform<T>(N * R, 2, -1e4, 1e4);
  for (int64_t i = 0; i < N * R; i += 97) th[i] = T(th[i] * 300);  // up to 3e6
  std::vector<T> out(N * D);
  rotary_forward(out.data(), x.data(), th.data(), N, D);
  // Reference: the angle as stored (cast to double), rotated with double std::sin/std::cos.
  std::vector<double> out64(N * D), x64 = widen(x), th64 = widen(th);
  rotary_forward_reference(out64.data(), x64.data(), th64.data(), N, D);
  const double err = max_diff(out, out64);
  MESSAGE("max |error| = " << err);
  CHECK(err < (sizeof(T) == 4 ? 1e-5 : 1e-12));  // the required bounds
  CHECK(err < kRotTol<T>);                       // what the kernel actually achieves
}

TEST_CASE("rotary backward: null outputs are skipped, dx may alias dout") {
  const int64_t N = 5, D = 10, R = 5;
  auto x = uniform<double>(N * D, 1), g = uniform<double>(N * D, 2), th = uniform<double>(N * R, 3, -5, 5);
  std::vector<double> dx(N * D), dth(N * R), dth_only(N * R), inplace = g;
  rotary_backward(dx.data(), dth.data(), g.data(), x.data(), th.data(), N, D);
  rotary_backward<double>(nullptr, dth_only.data(), g.data(), x.data(), th.data(), N, D);
  rotary_backward<double>(inplace.data(), nullptr, inplace.data(), x.data(), th.data(), N, D);
  CHECK(dth_only == dth);
  CHECK(inplace == dx);
}

TEST_CASE("rotary kernels reject an odd D with a named error") {
  std::vector<float> x(6), th(3);
  CHECK_THROWS_WITH_AS(rotary_forward(x.data(), x.data(), th.data(), 2, 3), doctest::Contains("[rotary_forward]"),
                       rotor::Error);
  RopeShape bad{1, 2, 1, 5};
  CHECK_THROWS_AS(selective_rope_forward(x.data(), x.data(), x.data(), x.data(), x.data(), x.data(), th.data(),
                                         static_cast<const float*>(nullptr), bad),
                  rotor::Error);
}

// ---------------------------------------------------------------------------------------------
// Fixed RoPE

TEST_CASE_TEMPLATE("rope forward and backward match float64 loops", T, float, double) {
  for (RotaryLayout layout : kLayouts)
    for (int64_t D : {2, 10, 64}) {
      CAPTURE(D);
      const RopeShape sh{3, 37, 2, D};
      std::vector<T> omega(D / 2);
      rope_frequencies(omega.data(), D, 10000.0);
      auto q = uniform<T>(numel(sh), 1), k = uniform<T>(numel(sh), 2);
      auto gq = uniform<T>(numel(sh), 3), gk = uniform<T>(numel(sh), 4);
      std::vector<T> qo(numel(sh)), ko(numel(sh)), dq(numel(sh)), dk(numel(sh));
      rope_forward(qo.data(), ko.data(), q.data(), k.data(), omega.data(), 5, sh, layout);
      rope_backward(dq.data(), dk.data(), gq.data(), gk.data(), omega.data(), 5, sh, layout);

      // Reference: the kernel's angle T(t+5)·ω (rounded to T), rotated in float64 by the generic
      // rotation loops; dq, dk are the rotation's dx. (Also checks rope_*_reference.)
      std::vector<double> theta(sh.B * sh.T * sh.H * (D / 2));
      for (int64_t row = 0; row < sh.B * sh.T; ++row)
        for (int64_t h = 0; h < sh.H; ++h)
          for (int64_t r = 0; r < D / 2; ++r) theta[(row * sh.H + h) * (D / 2) + r] = T(row % sh.T + 5) * omega[r];
      const int64_t N = sh.B * sh.T * sh.H;
      auto q64 = widen(q), k64 = widen(k), gq64 = widen(gq), gk64 = widen(gk);
      std::vector<double> qo64(numel(sh)), ko64(numel(sh)), dq64(numel(sh)), dk64(numel(sh));
      rotary_forward_reference(qo64.data(), q64.data(), theta.data(), N, D, layout);
      rotary_forward_reference(ko64.data(), k64.data(), theta.data(), N, D, layout);
      rotary_backward_reference(dq64.data(), static_cast<double*>(nullptr), gq64.data(), q64.data(), theta.data(), N, D,
                                layout);
      rotary_backward_reference(dk64.data(), static_cast<double*>(nullptr), gk64.data(), k64.data(), theta.data(), N, D,
                                layout);
      CHECK(max_diff(qo, qo64) < kRotTol<T>);
      CHECK(max_diff(ko, ko64) < kRotTol<T>);
      CHECK(max_diff(dq, dq64) < kRotTol<T>);
      CHECK(max_diff(dk, dk64) < kRotTol<T>);

      std::vector<T> qo_ref(numel(sh)), dk_ref(numel(sh));
      rope_forward_reference(qo_ref.data(), static_cast<T*>(nullptr), q.data(), static_cast<const T*>(nullptr),
                             omega.data(), 5, sh, layout);
      rope_backward_reference(static_cast<T*>(nullptr), dk_ref.data(), gq.data(), gk.data(), omega.data(), 5, sh,
                              layout);
      CHECK(max_diff(qo_ref, qo64) < kRotTol<T>);
      CHECK(max_diff(dk_ref, dk64) < kRotTol<T>);
    }
}

TEST_CASE("rope: q'_t·k'_s depends only on t − s, and the backward inverts the forward") {
  const int64_t T = 40, D = 16, R = D / 2;
  const RopeShape sh{1, T, 1, D};
  std::vector<double> omega(R);
  rope_frequencies(omega.data(), D, 10000.0);
  auto q1 = uniform<double>(D, 1), k1 = uniform<double>(D, 2);
  std::vector<double> q(T * D), k(T * D);
  for (int64_t t = 0; t < T; ++t)
    std::copy(q1.begin(), q1.end(), q.begin() + t * D), std::copy(k1.begin(), k1.end(), k.begin() + t * D);
  std::vector<double> qo(T * D), ko(T * D);
  rope_forward(qo.data(), ko.data(), q.data(), k.data(), omega.data(), 3, sh);
  auto dot = [&](int64_t t, int64_t s) {
    double acc = 0;
    for (int64_t d = 0; d < D; ++d) acc += qo[t * D + d] * ko[s * D + d];
    return acc;
  };
  for (int64_t lag = 0; lag < 10; ++lag)
    for (int64_t t = lag; t < T; ++t) CHECK(dot(t, t - lag) == doctest::Approx(dot(lag, 0)).epsilon(1e-12));
  // A rotation is orthogonal: rotating back by −θ restores the input.
  std::vector<double> back(T * D);
  rope_backward<double>(back.data(), nullptr, qo.data(), nullptr, omega.data(), 3, sh);
  CHECK(max_diff(back, q) < 1e-14);
}

// ---------------------------------------------------------------------------------------------
// Selective RoPE: forward and backward against the unfused float64 reference

// B < 8 takes the along-time path (chunk items), B >= 8 the per-sequence path; T = 150 spans
// three chunks of 64 with a partial last one.
const RopeShape kSelectiveShapes[] = {{2, 150, 3, 10}, {8, 70, 2, 6}, {1, 1, 1, 2}, {3, 64, 2, 64}, {9, 130, 1, 100}};

TEST_CASE_TEMPLATE("selective rope forward matches the unfused float64 reference", T, float, double) {
  for (RotaryLayout layout : kLayouts)
    for (const RopeShape& sh : kSelectiveShapes) {
      CAPTURE(sh.B);
      CAPTURE(sh.T);
      CAPTURE(sh.D);
      SelectiveInputs<T> in(sh, 7);
      auto out = run_forward(in, layout);
      auto ref = reference_forward(in, layout);
      // Φ reaches |offset| + 0.375·T ≈ 60 (ulp 4e-6 in float); its float rounding errors random-walk
      // over T <= 150 steps (~12 ulps) and the angle is rounded once more: ~5e-5 in the angle
      // and the outputs (measured max 1.5e-5). double: the same walk at ulp 1.4e-14.
      const double tol = sizeof(T) == 4 ? 6e-5 : 1e-12;
      CHECK(max_diff(out.q_out, ref.q_out) < tol);
      CHECK(max_diff(out.k_out, ref.k_out) < tol);
      CHECK(max_diff(out.final_offset, ref.final_offset) < tol);
    }
}

TEST_CASE_TEMPLATE("selective rope backward matches the analytic float64 reference", T, float, double) {
  for (RotaryLayout layout : kLayouts)
    for (const RopeShape& sh : kSelectiveShapes) {
      CAPTURE(sh.B);
      CAPTURE(sh.T);
      CAPTURE(sh.D);
      SelectiveInputs<T> in(sh, 11);
      auto gq = uniform<T>(numel(sh), 100), gk = uniform<T>(numel(sh), 101);
      auto gf = uniform<T>(sh.B * sh.H * (sh.D / 2), 102);
      auto g = run_backward(in, gq, gk, &gf, layout);
      auto ref = reference_backward(in, gq, gk, &gf, layout);
      // Every gradient inherits the angle error of the forward (above); dphi, doffset and
      // dtemperature sum many such terms, so their bound is relative to their largest magnitude.
      const double tol = sizeof(T) == 4 ? 6e-5 : 1e-12;
      CHECK(max_diff(g.dq, ref.dq) < tol);
      CHECK(max_diff(g.dk, ref.dk) < tol);
      CHECK(close_rel(g.dphi, ref.dphi, tol));
      CHECK(close_rel(g.doffset, ref.doffset, tol));
      CHECK(close_rel(g.dtau, ref.dtau, tol));
    }
}

TEST_CASE("selective rope backward: optional inputs and outputs") {
  // B = 2: along-time path (chunk totals, carry added in a second pass); B = 8: per sequence.
  for (const RopeShape& sh : {RopeShape{2, 90, 2, 10}, RopeShape{8, 90, 2, 10}}) {
    CAPTURE(sh.B);
    SelectiveInputs<double> in(sh, 3);
    auto gq = uniform<double>(numel(sh), 4), gk = uniform<double>(numel(sh), 5);
    const auto full = run_backward<double>(in, gq, gk, nullptr, RotaryLayout::HalfSplit);
    const double* no = nullptr;

    {  // only dtemperature
      std::vector<double> dtau(sh.D / 2);
      selective_rope_backward<double>(nullptr, nullptr, nullptr, dtau.data(), nullptr, gq.data(), gk.data(), no,
                                      in.q.data(), in.k.data(), in.phi.data(), in.tau.data(), in.offset.data(), sh);
      CHECK(dtau == full.dtau);
    }
    {  // only doffset (dphi rows kept in scratch)
      std::vector<double> doff(full.doffset.size());
      selective_rope_backward<double>(nullptr, nullptr, nullptr, nullptr, doff.data(), gq.data(), gk.data(), no,
                                      in.q.data(), in.k.data(), in.phi.data(), in.tau.data(), in.offset.data(), sh);
      CHECK(doff == full.doffset);
    }
    {  // no upstream gradient on k: k's gradient is zero and the rest equals the reference
      SelectiveGrads<double> g(sh), ref(sh);
      std::fill(g.dk.begin(), g.dk.end(), 1.0);
      selective_rope_backward<double>(g.dq.data(), g.dk.data(), g.dphi.data(), g.dtau.data(), g.doffset.data(),
                                      gq.data(), no, no, in.q.data(), no, in.phi.data(), in.tau.data(),
                                      in.offset.data(), sh);
      selective_rope_backward_reference<double>(ref.dq.data(), ref.dk.data(), ref.dphi.data(), ref.dtau.data(),
                                                ref.doffset.data(), gq.data(), no, no, in.q.data(), no, in.phi.data(),
                                                in.tau.data(), in.offset.data(), sh);
      CHECK(max_abs(g.dk) == 0.0);
      CHECK(max_diff(g.dq, ref.dq) < 1e-12);
      CHECK(max_diff(g.dphi, ref.dphi) < 1e-10);
      CHECK(max_diff(g.dtau, ref.dtau) < 1e-9);
    }
    {  // q without k in the forward
      std::vector<double> qo(numel(sh)), qo_ref(numel(sh)), fo(full.doffset.size()), fo_ref(full.doffset.size());
      selective_rope_forward<double>(qo.data(), nullptr, fo.data(), in.q.data(), no, in.phi.data(), in.tau.data(),
                                     in.offset.data(), sh);
      selective_rope_forward_reference<double>(qo_ref.data(), nullptr, fo_ref.data(), in.q.data(), no, in.phi.data(),
                                               in.tau.data(), in.offset.data(), sh);
      CHECK(max_diff(qo, qo_ref) < 1e-12);
      CHECK(max_diff(fo, fo_ref) < 1e-12);
    }
    {  // in place: q_out over q, dq over dq_out
      SelectiveGrads<double> g = full;
      std::vector<double> qo = in.q, dq = gq;
      selective_rope_forward<double>(qo.data(), nullptr, nullptr, qo.data(), no, in.phi.data(), in.tau.data(),
                                     in.offset.data(), sh);
      selective_rope_backward<double>(dq.data(), g.dk.data(), g.dphi.data(), nullptr, nullptr, dq.data(), gk.data(), no,
                                      in.q.data(), in.k.data(), in.phi.data(), in.tau.data(), in.offset.data(), sh);
      CHECK(qo == run_forward(in, RotaryLayout::HalfSplit).q_out);
      CHECK(dq == full.dq);
      CHECK(g.dphi == full.dphi);
    }
    {  // dq needs q when angles are differentiated
      std::vector<double> dphi(numel_phase(sh));
      CHECK_THROWS_AS(selective_rope_backward<double>(nullptr, nullptr, dphi.data(), nullptr, nullptr, gq.data(), no,
                                                      no, no, no, in.phi.data(), in.tau.data(), no, sh),
                      rotor::Error);
    }
  }
}

TEST_CASE("selective rope gradients equal central finite differences (float64, every input)") {
  // loss = Σ q_out·Gq + Σ k_out·Gk + Σ final_offset·Gf; B = 2 < 8 and T = 70 > 64 exercise the
  // along-time path with a chunk boundary. Central differences with h = 1e-6 carry ~1e-12 of
  // truncation and ~ε·Σ|terms|/h ≈ 1e-8 of rounding (the loss sums ~4000 terms of size ~1);
  // measured worst 1e-8 relative.
  const RopeShape sh{2, 70, 2, 6};
  SelectiveInputs<double> in(sh, 21);
  const auto Gq = uniform<double>(numel(sh), 22), Gk = uniform<double>(numel(sh), 23);
  const auto Gf = uniform<double>(sh.B * sh.H * 3, 24);
  auto loss = [&](const SelectiveInputs<double>& x) {
    auto out = run_forward(x, RotaryLayout::HalfSplit);
    double l = 0;
    for (size_t i = 0; i < out.q_out.size(); ++i) l += out.q_out[i] * Gq[i] + out.k_out[i] * Gk[i];
    for (size_t i = 0; i < out.final_offset.size(); ++i) l += out.final_offset[i] * Gf[i];
    return l;
  };
  const auto g = run_backward(in, Gq, Gk, &Gf, RotaryLayout::HalfSplit);
  const double h = 1e-6;
  auto check = [&](std::vector<double> SelectiveInputs<double>::*field, const std::vector<double>& grad,
                   const char* name) {
    CAPTURE(name);
    double worst = 0;
    for (size_t i = 0; i < grad.size(); ++i) {
      SelectiveInputs<double> x = in;
      (x.*field)[i] += h;
      const double up = loss(x);
      (x.*field)[i] -= 2 * h;
      const double down = loss(x);
      worst = std::max(worst, std::abs((up - down) / (2 * h) - grad[i]) / std::max(1.0, std::abs(grad[i])));
    }
    CHECK(worst < 1e-7);
  };
  check(&SelectiveInputs<double>::q, g.dq, "q");
  check(&SelectiveInputs<double>::k, g.dk, "k");
  check(&SelectiveInputs<double>::phi, g.dphi, "phi");
  check(&SelectiveInputs<double>::tau, g.dtau, "temperature");
  check(&SelectiveInputs<double>::offset, g.doffset, "offset");
}

// ---------------------------------------------------------------------------------------------
// Identities

TEST_CASE_TEMPLATE("selective rope with phi = 1 and RoPE temperatures is fixed RoPE", T, float, double) {
  // With φ ≡ 1 and offset c (an integer), Φ_t = c + (t+1): the cumulative sum includes the
  // current step, so token t sits at RoPE position t+1+c, i.e. rope position_offset = c + 1.
  // Integers are exact in T, so Φ_t is exact and θ = τ·Φ_t is the same single multiply as
  // RoPE's ω·T(t + position_offset): the angles are identical, and the outputs agree to the
  // last bits (the two kernels are compiled apart; the compiler may fuse their multiply-adds
  // differently). A position off by one would differ by O(1).
  const RopeShape sh{2, 200, 3, 10};
  const int64_t R = sh.D / 2;
  std::vector<T> tau(R);
  rotary_temperature(tau.data(), TemperatureType::Rope, 10000.0, sh.D);
  std::vector<T> omega(R);
  rope_frequencies(omega.data(), sh.D, 10000.0);
  REQUIRE(tau == omega);
  const double tol = 4 * std::numeric_limits<T>::epsilon();
  auto q = uniform<T>(numel(sh), 1), k = uniform<T>(numel(sh), 2);
  auto gq = uniform<T>(numel(sh), 3), gk = uniform<T>(numel(sh), 4);
  std::vector<T> phi(numel_phase(sh), T(1));
  for (int64_t c : {0, 5}) {
    std::vector<T> offset(sh.B * sh.H * R, T(c));
    std::vector<T> qs(numel(sh)), ks(numel(sh)), qr(numel(sh)), kr(numel(sh)), fo(offset.size());
    selective_rope_forward(qs.data(), ks.data(), fo.data(), q.data(), k.data(), phi.data(), tau.data(), offset.data(),
                           sh);
    rope_forward(qr.data(), kr.data(), q.data(), k.data(), omega.data(), c + 1, sh);
    CHECK(max_diff(qs, widen(qr)) < tol);
    CHECK(max_diff(ks, widen(kr)) < tol);
    CHECK(fo == std::vector<T>(offset.size(), T(c + sh.T)));

    std::vector<T> dqs(numel(sh)), dks(numel(sh)), dqr(numel(sh)), dkr(numel(sh));
    selective_rope_backward(dqs.data(), dks.data(), static_cast<T*>(nullptr), static_cast<T*>(nullptr),
                            static_cast<T*>(nullptr), gq.data(), gk.data(), static_cast<const T*>(nullptr), q.data(),
                            k.data(), phi.data(), tau.data(), offset.data(), sh);
    rope_backward(dqr.data(), dkr.data(), gq.data(), gk.data(), omega.data(), c + 1, sh);
    CHECK(max_diff(dqs, widen(dqr)) < tol);
    CHECK(max_diff(dks, widen(dkr)) < tol);
  }
}

TEST_CASE_TEMPLATE("selective rope: splitting a sequence and carrying final_offset equals one pass", T, float, double) {
  const RopeShape whole{2, 300, 2, 10};
  SelectiveInputs<T> in(whole, 5);
  auto gq = uniform<T>(numel(whole), 6), gk = uniform<T>(numel(whole), 7), gf = uniform<T>(2 * 2 * 5, 8);
  const auto one = run_forward(in, RotaryLayout::HalfSplit);
  const auto gone = run_backward(in, gq, gk, &gf, RotaryLayout::HalfSplit);
  const int64_t HD = whole.H * whole.D, HR = whole.H * whole.D / 2;

  // Split at t = 128 (a chunk boundary: the summation order is the same, bits equal) and at
  // t = 100 (inside a chunk: Φ is summed in another order, equal to rounding).
  for (int64_t cut : {128, 100}) {
    CAPTURE(cut);
    auto slice = [&](const std::vector<T>& v, int64_t row, int64_t t0, int64_t t1) {
      std::vector<T> s;
      for (int64_t b = 0; b < whole.B; ++b)
        s.insert(s.end(), v.begin() + (b * whole.T + t0) * row, v.begin() + (b * whole.T + t1) * row);
      return s;
    };
    SelectiveInputs<T> a = in, b = in;
    a.sh.T = cut;
    b.sh.T = whole.T - cut;
    a.q = slice(in.q, HD, 0, cut), a.k = slice(in.k, HD, 0, cut), a.phi = slice(in.phi, HR, 0, cut);
    b.q = slice(in.q, HD, cut, whole.T), b.k = slice(in.k, HD, cut, whole.T), b.phi = slice(in.phi, HR, cut, whole.T);
    const auto oa = run_forward(a, RotaryLayout::HalfSplit);
    b.offset = oa.final_offset;
    const auto ob = run_forward(b, RotaryLayout::HalfSplit);

    // Backward: the second part's doffset is the first part's gradient on final_offset.
    const auto gb =
        run_backward(b, slice(gq, HD, cut, whole.T), slice(gk, HD, cut, whole.T), &gf, RotaryLayout::HalfSplit);
    const auto ga = run_backward(a, slice(gq, HD, 0, cut), slice(gk, HD, 0, cut), &gb.doffset, RotaryLayout::HalfSplit);
    std::vector<T> dtau(gone.dtau.size());
    for (size_t r = 0; r < dtau.size(); ++r) dtau[r] = ga.dtau[r] + gb.dtau[r];

    const bool aligned = cut % kPhaseChunk == 0;
    const double tol = sizeof(T) == 4 ? 1e-4 : 1e-12;
    auto same = [&](const std::vector<T>& x, const std::vector<T>& y, bool bitwise) {
      if (bitwise) return x == y;
      return max_diff(x, widen(y)) <= tol * std::max(1.0, max_abs(y));
    };
    CHECK(same(oa.q_out, slice(one.q_out, HD, 0, cut), aligned));
    CHECK(same(ob.q_out, slice(one.q_out, HD, cut, whole.T), aligned));
    CHECK(same(ob.k_out, slice(one.k_out, HD, cut, whole.T), aligned));
    CHECK(same(ob.final_offset, one.final_offset, aligned));
    CHECK(same(ga.dq, slice(gone.dq, HD, 0, cut), aligned));
    CHECK(same(gb.dk, slice(gone.dk, HD, cut, whole.T), aligned));
    CHECK(same(gb.dphi, slice(gone.dphi, HR, cut, whole.T), aligned));
    // Before the cut the carried gradient enters as dfinal_offset at t = cut−1 rather than as
    // the suffix carry: another grouping of the same sums, equal to rounding only.
    CHECK(same(ga.dphi, slice(gone.dphi, HR, 0, cut), false));
    CHECK(same(ga.doffset, gone.doffset, false));
    CHECK(max_diff(dtau, widen(gone.dtau)) <= tol * std::max(1.0, max_abs(gone.dtau)));
  }
}

TEST_CASE_TEMPLATE("selective rope: q'·k' is invariant to a constant added to every angle", T, float, double) {
  // A constant offset adds the same angle τ_r·offset_r at every t, which cancels in
  // Re(conj(z_q'(t))·z_k'(s)) = Re(conj(z_q)·z_k·e^{i(θ_s − θ_t)}).
  const RopeShape sh{2, 40, 2, 10};
  SelectiveInputs<T> in(sh, 9);
  for (auto& o : in.offset) o *= T(30);  // angles shifted by up to 90 rad
  const auto shifted = run_forward(in, RotaryLayout::Interleaved);
  const auto plain = run_forward(in, RotaryLayout::Interleaved, /*with_offset=*/false);
  double worst = 0;
  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.H; ++h)
      for (int64_t t = 0; t < sh.T; ++t)
        for (int64_t s = 0; s < sh.T; ++s) {
          double d1 = 0, d2 = 0;
          for (int64_t d = 0; d < sh.D; ++d) {
            const int64_t iq = ((b * sh.T + t) * sh.H + h) * sh.D + d, ik = ((b * sh.T + s) * sh.H + h) * sh.D + d;
            d1 += double(shifted.q_out[iq]) * double(shifted.k_out[ik]);
            d2 += double(plain.q_out[iq]) * double(plain.k_out[ik]);
          }
          worst = std::max(worst, std::abs(d1 - d2));
        }
  // float: angles near 90 rad carry an absolute rounding of ~ulp(90) = 8e-6 each.
  CHECK(worst < (sizeof(T) == 4 ? 1e-4 : 1e-12));
}

// ---------------------------------------------------------------------------------------------
// Determinism

TEST_CASE("selective rope: bit-identical on 1 and 2 threads, and across the two parallel paths") {
  // B = 1, T = 4096 takes the along-time path (chunks as items); B = 8 the per-sequence path.
  for (const RopeShape& sh : {RopeShape{1, 4096, 4, 64}, RopeShape{8, 256, 4, 64}}) {
    CAPTURE(sh.B);
    SelectiveInputs<float> in(sh, 31);
    auto gq = uniform<float>(numel(sh), 32), gk = uniform<float>(numel(sh), 33);
    auto gf = uniform<float>(sh.B * sh.H * 32, 34);
    set_num_threads(1);
    const auto o1 = run_forward(in, RotaryLayout::HalfSplit);
    const auto g1 = run_backward(in, gq, gk, &gf, RotaryLayout::HalfSplit);
    set_num_threads(2);
    const auto o2 = run_forward(in, RotaryLayout::HalfSplit);
    const auto g2 = run_backward(in, gq, gk, &gf, RotaryLayout::HalfSplit);
    set_num_threads(0);
    CHECK(o1.q_out == o2.q_out);
    CHECK(o1.k_out == o2.k_out);
    CHECK(o1.final_offset == o2.final_offset);
    CHECK(g1.dq == g2.dq);
    CHECK(g1.dk == g2.dk);
    CHECK(g1.dphi == g2.dphi);
    CHECK(g1.dtau == g2.dtau);
    CHECK(g1.doffset == g2.doffset);
  }

  // The same sequence alone (along-time path) and as one of 8 (per-sequence path): same bits.
  const RopeShape one{1, 300, 2, 16}, eight{8, 300, 2, 16};
  SelectiveInputs<double> big(eight, 41);
  SelectiveInputs<double> small = big;
  small.sh = one;
  const int64_t n = numel(one), np = numel_phase(one), no = 2 * 8;
  auto take = [](const std::vector<double>& v, int64_t count) {
    return std::vector<double>(v.begin(), v.begin() + count);
  };
  small.q = take(big.q, n), small.k = take(big.k, n), small.phi = take(big.phi, np),
  small.offset = take(big.offset, no);
  auto gq = uniform<double>(numel(eight), 42), gk = uniform<double>(numel(eight), 43);
  const auto ob = run_forward(big, RotaryLayout::HalfSplit), os = run_forward(small, RotaryLayout::HalfSplit);
  CHECK(take(ob.q_out, n) == os.q_out);
  CHECK(take(ob.final_offset, no) == os.final_offset);
  const auto gb = run_backward<double>(big, gq, gk, nullptr, RotaryLayout::HalfSplit);
  const auto gs = run_backward<double>(small, take(gq, n), take(gk, n), nullptr, RotaryLayout::HalfSplit);
  CHECK(take(gb.dq, n) == gs.dq);
  CHECK(take(gb.dphi, np) == gs.dphi);
  CHECK(take(gb.doffset, no) == gs.doffset);
}

// ---------------------------------------------------------------------------------------------
// Temperatures

TEST_CASE("rotary temperatures follow docs/selective_rope.md step 7") {
  const int64_t D = 64, R = 32;
  std::vector<double> rope(R), rfa(R);
  rotary_temperature(rope.data(), TemperatureType::Rope, 500000.0, D, 2.0);
  CHECK(rope[0] == 2.0);
  for (int64_t r = 0; r + 1 < R; ++r)  // a geometric sequence with ratio base^{-2/D}
    CHECK(rope[r + 1] / rope[r] == doctest::Approx(std::pow(500000.0, -2.0 / D)).epsilon(1e-13));

  // rfa: the reference's sqrt((1 − cos ω)/(1 + cos ω)) is tan(ω/2); check against the tan form.
  const double c = 0.7, pi = 3.14159265358979323846;
  rotary_temperature(rfa.data(), TemperatureType::Rfa, c, D, 1.5);
  for (int64_t r = 0; r < R; ++r) {
    const double expect = 1.5 * std::tan(c * pi * r / (R - 1) / 2) / std::tan(c * pi / 2);
    CHECK(rfa[r] == doctest::Approx(expect).epsilon(1e-13));
  }
  CHECK(rfa[0] == 0.0);
  CHECK(rfa[R - 1] == doctest::Approx(1.5).epsilon(1e-15));

  std::vector<float> f(R);
  CHECK_THROWS_AS(rotary_temperature(f.data(), TemperatureType::Rfa, 2.0, D), rotor::Error);
  CHECK_THROWS_AS(rotary_temperature(f.data(), TemperatureType::Rope, 0.5, D), rotor::Error);
}
