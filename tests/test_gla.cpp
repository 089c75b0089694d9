// Suite "gla": the three GLA evaluation orders (recurrent, chunked, complex) against each other,
// against plain reference loops, against central finite differences and against the RoPE-trick
// identity of docs/gla.md. All comparisons in float64 unless said otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/gla.h"
#include "sequence_test_util.h"

using namespace rotor::kernels;
using namespace rotor::test;

namespace {

// g as in the GLA layer: logsigmoid(x) / normalizer.
Buf gla_gates(Rng& rng, size_t n, double normalizer) {
  Buf g = rng.normal(n, 2.0);
  for (auto& x : g) x = logsigmoid(x) / normalizer;
  return g;
}

// Inputs of one GLA problem plus an upstream gradient on o and on the final state.
struct Problem {
  GlaDims d;
  Buf q, k, v, g, h0, dout, dht;
  double scale;
  Problem(GlaDims dims, uint64_t seed, double normalizer = 16.0, bool with_state = true)
      : d(dims), scale(1.0 / std::sqrt(double(dims.K))) {
    Rng rng(seed);
    const size_t nk = size_t(d.B * d.T * d.H * d.K), nv = size_t(d.B * d.T * d.H * d.V),
                 ns = size_t(d.B * d.H * d.K * d.V);
    q = rng.normal(nk);
    k = rng.normal(nk);
    v = rng.normal(nv);
    g = gla_gates(rng, nk, normalizer);
    dout = rng.normal(nv);
    if (with_state) {
      h0 = rng.normal(ns);
      dht = rng.normal(ns);
    }
  }
  size_t nk() const { return size_t(d.B * d.T * d.H * d.K); }
  size_t nv() const { return size_t(d.B * d.T * d.H * d.V); }
  size_t ns() const { return size_t(d.B * d.H * d.K * d.V); }
  const double* h0p() const { return h0.empty() ? nullptr : h0.data(); }
  const double* dhtp() const { return dht.empty() ? nullptr : dht.data(); }
};

struct Forward {
  Buf o, ht;
};
struct Grads {
  Buf dq, dk, dv, dg, dh0;
};

enum class Order { Reference, Recurrent, Chunked };

Forward run_forward(const Problem& p, Order order, int64_t chunk = 64) {
  Forward f{Buf(p.nv()), Buf(p.ns())};
  auto fn = order == Order::Reference ? gla_recurrent_forward_reference<double>
            : order == Order::Recurrent
                ? gla_recurrent_forward<double>
                : nullptr;
  if (fn)
    fn(p.d, p.q.data(), p.k.data(), p.v.data(), p.g.data(), p.h0p(), f.o.data(), f.ht.data(), p.scale);
  else
    gla_chunked_forward<double>(p.d, p.q.data(), p.k.data(), p.v.data(), p.g.data(), p.h0p(), f.o.data(),
                                f.ht.data(), p.scale, chunk);
  return f;
}

Grads run_backward(const Problem& p, Order order, int64_t chunk = 64) {
  Grads r{Buf(p.nk()), Buf(p.nk()), Buf(p.nv()), Buf(p.nk()), Buf(p.ns())};
  auto fn = order == Order::Reference ? gla_recurrent_backward_reference<double>
            : order == Order::Recurrent
                ? gla_recurrent_backward<double>
                : nullptr;
  if (fn)
    fn(p.d, p.q.data(), p.k.data(), p.v.data(), p.g.data(), p.h0p(), p.dout.data(), p.dhtp(),
       r.dq.data(), r.dk.data(), r.dv.data(), r.dg.data(), r.dh0.data(), p.scale);
  else
    gla_chunked_backward<double>(p.d, p.q.data(), p.k.data(), p.v.data(), p.g.data(), p.h0p(),
                                 p.dout.data(), p.dhtp(), r.dq.data(), r.dk.data(), r.dv.data(),
                                 r.dg.data(), r.dh0.data(), p.scale, chunk);
  return r;
}

// Every output and gradient of two evaluation orders agree to `tol` (relative RMSE).
void check_same(const Problem& p, Order a, Order b, double tol, int64_t chunk = 64) {
  const Forward fa = run_forward(p, a, chunk), fb = run_forward(p, b, chunk);
  const Grads ga = run_backward(p, a, chunk), gb = run_backward(p, b, chunk);
  for (const Buf* x : {&fa.o, &fa.ht, &ga.dq, &ga.dk, &ga.dv, &ga.dg, &ga.dh0}) CHECK(all_finite(*x));
  CHECK(rel_rmse(fa.o, fb.o) <= tol);
  CHECK(rel_rmse(fa.ht, fb.ht) <= tol);
  CHECK(rel_rmse(ga.dq, gb.dq) <= tol);
  CHECK(rel_rmse(ga.dk, gb.dk) <= tol);
  CHECK(rel_rmse(ga.dv, gb.dv) <= tol);
  CHECK(rel_rmse(ga.dg, gb.dg) <= tol);
  CHECK(rel_rmse(ga.dh0, gb.dh0) <= tol);
}

// The half-split rotation of docs/rotations.md applied in place to a (B,T,H,K) tensor, angles (B,T,H,K/2).
void rotate(Buf& x, const Buf& theta, const GlaDims& d, double sign = 1.0) {
  const int64_t R = d.K / 2;
  for (int64_t row = 0; row < d.B * d.T * d.H; ++row)
    for (int64_t r = 0; r < R; ++r) {
      const double c = std::cos(theta[row * R + r]), s = sign * std::sin(theta[row * R + r]);
      double& a = x[row * d.K + r];
      double& b = x[row * d.K + r + R];
      const double a0 = a, b0 = b;
      a = a0 * c - b0 * s;
      b = a0 * s + b0 * c;
    }
}

// theta_t = dtheta_0 + ... + dtheta_t along time, per (b, h, r).
Buf cumsum_time(const Buf& dtheta, const GlaDims& d, int64_t R) {
  Buf theta(dtheta.size());
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.T; ++t)
      for (int64_t i = 0; i < d.H * R; ++i) {
        const size_t at = size_t((b * d.T + t) * d.H * R + i);
        theta[at] = dtheta[at] + (t > 0 ? theta[at - size_t(d.H * R)] : 0.0);
      }
  return theta;
}

// A complex-GLA problem: per-pair gates and angle increments (B,T,H,R).
struct ComplexProblem {
  Problem p;  // q, k, v, h0, dout, dht (p.g unused)
  Buf g, dtheta;
  ComplexProblem(GlaDims d, uint64_t seed) : p(d, seed) {
    Rng rng(seed + 1000);
    const size_t n = size_t(d.B * d.T * d.H * (d.K / 2));
    g = gla_gates(rng, n, 4.0);
    dtheta = rng.uniform(n, -1.5, 1.5);
  }
  size_t nr() const { return g.size(); }
};

struct ComplexGrads {
  Buf dq, dk, dv, dg, ddtheta, dh0;
};

Forward complex_forward(const ComplexProblem& c, bool reference) {
  const Problem& p = c.p;
  Forward f{Buf(p.nv()), Buf(p.ns())};
  (reference ? gla_complex_recurrent_forward_reference<double> : gla_complex_recurrent_forward<double>)(
      p.d, p.q.data(), p.k.data(), p.v.data(), c.g.data(), c.dtheta.data(), p.h0p(), f.o.data(), f.ht.data(),
      p.scale);
  return f;
}

ComplexGrads complex_backward(const ComplexProblem& c, bool reference) {
  const Problem& p = c.p;
  ComplexGrads r{Buf(p.nk()), Buf(p.nk()), Buf(p.nv()), Buf(c.nr()), Buf(c.nr()), Buf(p.ns())};
  (reference ? gla_complex_recurrent_backward_reference<double> : gla_complex_recurrent_backward<double>)(
      p.d, p.q.data(), p.k.data(), p.v.data(), c.g.data(), c.dtheta.data(), p.h0p(), p.dout.data(), p.dhtp(),
      r.dq.data(), r.dk.data(), r.dv.data(), r.dg.data(), r.ddtheta.data(), r.dh0.data(), p.scale);
  return r;
}

// dL/dtheta_r of a half-split rotation (docs/rotations.md): x the unrotated input, gx the gradient of the
// rotated output; per pair, summed into dtheta.
void rotation_angle_grad(const double* x, const double* gx, int64_t R, double* dtheta,
                         const double* theta) {
  for (int64_t r = 0; r < R; ++r) {
    const double c = std::cos(theta[r]), s = std::sin(theta[r]);
    dtheta[r] += gx[r] * (-x[r] * s - x[r + R] * c) + gx[r + R] * (x[r] * c - x[r + R] * s);
  }
}

}  // namespace

TEST_SUITE("gla") {

TEST_CASE("recurrent kernel equals the reference loop, forward and backward") {
  // Value widths of several batches, of one AVX-512 batch of doubles (8) and of less (3).
  for (GlaDims d : {GlaDims{2, 37, 3, 16, 24}, GlaDims{1, 50, 2, 60, 100}, GlaDims{1, 1, 1, 5, 3},
                    GlaDims{2, 20, 2, 7, 8}}) {
    CAPTURE(d.T);
    CAPTURE(d.K);
    check_same(Problem(d, 1), Order::Recurrent, Order::Reference, 1e-13);
    check_same(Problem(d, 2, 16.0, false), Order::Recurrent, Order::Reference, 1e-13);
  }
}

TEST_CASE("recurrent backward matches central finite differences") {
  Problem p(GlaDims{1, 5, 2, 3, 4}, 7, 1.0);
  const Grads gr = run_backward(p, Order::Reference);
  const Grads gf = run_backward(p, Order::Recurrent);
  auto f = [&] {
    Forward fw = run_forward(p, Order::Recurrent);
    return loss(fw.o, fw.ht, p.dout, p.dht);
  };
  // Central differences with h = 1e-5 on an O(1) smooth function: error ~h^2 + 1e-16/h ~ 1e-10.
  CHECK(finite_difference_error(p.q, gr.dq, f) < 1e-8);
  CHECK(finite_difference_error(p.k, gr.dk, f) < 1e-8);
  CHECK(finite_difference_error(p.v, gr.dv, f) < 1e-8);
  CHECK(finite_difference_error(p.g, gr.dg, f) < 1e-8);
  CHECK(finite_difference_error(p.h0, gr.dh0, f) < 1e-8);
  CHECK(finite_difference_error(p.g, gf.dg, f) < 1e-8);
  CHECK(finite_difference_error(p.h0, gf.dh0, f) < 1e-8);
}

TEST_CASE("chunked equals recurrent: outputs, final state and every gradient") {
  // T not a multiple of the chunk, K != V, head sizes that are not SIMD multiples.
  for (GlaDims d : {GlaDims{2, 63, 2, 16, 32}, GlaDims{1, 1, 3, 8, 8}, GlaDims{2, 130, 1, 32, 24},
                    GlaDims{1, 130, 2, 60, 100}, GlaDims{1, 70, 1, 100, 60}}) {
    CAPTURE(d.T);
    CAPTURE(d.K);
    CAPTURE(d.V);
    check_same(Problem(d, 11), Order::Chunked, Order::Recurrent, 1e-10);
    check_same(Problem(d, 12, 16.0, false), Order::Chunked, Order::Recurrent, 1e-10);
  }
}

TEST_CASE("chunked equals recurrent on both drivers: split by sequence and split by chunk") {
  // B*H >= 8 runs one task per sequence; fewer, longer sequences go through the chained scan over
  // chunks (kernels/scan.h). K = V = 128 also cuts every GEMM into column panels.
  for (GlaDims d : {GlaDims{4, 100, 2, 16, 24}, GlaDims{1, 300, 1, 24, 16}, GlaDims{1, 130, 2, 20, 36},
                    GlaDims{1, 200, 1, 128, 128}, GlaDims{8, 70, 1, 128, 96}}) {
    CAPTURE(d.B * d.H);
    CAPTURE(d.T);
    check_same(Problem(d, 13), Order::Chunked, Order::Recurrent, 1e-10, 32);
    check_same(Problem(d, 14, 16.0, false), Order::Chunked, Order::Recurrent, 1e-10, 32);
  }
}

TEST_CASE("a backward given the forward's saved states equals one that recomputes them, bit for bit") {
  // Both drivers (B*H >= 8 by sequence, fewer by chunk), a ragged last chunk, with and without
  // initial state; float64 and float32 (whose GEMMs round differently).
  for (GlaDims d : {GlaDims{4, 70, 2, 8, 12}, GlaDims{1, 130, 2, 20, 36}, GlaDims{1, 5, 3, 16, 4}}) {
    for (bool with_state : {true, false}) {
      const Problem p(d, 21, 16.0, with_state);
      for (int64_t chunk : {3, 32}) {
        CAPTURE(d.B * d.H);
        CAPTURE(chunk);
        const Forward f = run_forward(p, Order::Chunked, chunk);
        const Grads gr = run_backward(p, Order::Chunked, chunk);
        Buf saved(size_t(gla_chunked_saved_size(d, chunk))), o(p.nv()), ht(p.ns());
        const double *q = p.q.data(), *k = p.k.data(), *v = p.v.data(), *g = p.g.data();
        gla_chunked_forward<double>(d, q, k, v, g, p.h0p(), o.data(), ht.data(), p.scale, chunk, saved.data());
        CHECK(o == f.o);
        CHECK(ht == f.ht);
        Grads gs{Buf(p.nk()), Buf(p.nk()), Buf(p.nv()), Buf(p.nk()), Buf(p.ns())};
        gla_chunked_backward<double>(d, q, k, v, g, p.h0p(), p.dout.data(), p.dhtp(), gs.dq.data(), gs.dk.data(),
                                     gs.dv.data(), gs.dg.data(), gs.dh0.data(), p.scale, chunk, saved.data());
        CHECK(gs.dq == gr.dq);
        CHECK(gs.dk == gr.dk);
        CHECK(gs.dv == gr.dv);
        CHECK(gs.dg == gr.dg);
        CHECK(gs.dh0 == gr.dh0);

        const auto qf = f32(p.q), kf = f32(p.k), vf = f32(p.v), gf = f32(p.g), h0f = f32(p.h0), df = f32(p.dout),
                   dhtf = f32(p.dht);
        const float* h0p = with_state ? h0f.data() : nullptr;
        const float* dhtp = with_state ? dhtf.data() : nullptr;
        auto grads = [&](const float* kept) {
          std::vector<std::vector<float>> out{std::vector<float>(p.nk()), std::vector<float>(p.nk()),
                                              std::vector<float>(p.nv()), std::vector<float>(p.nk()),
                                              std::vector<float>(p.ns())};
          gla_chunked_backward<float>(d, qf.data(), kf.data(), vf.data(), gf.data(), h0p, df.data(), dhtp,
                                      out[0].data(), out[1].data(), out[2].data(), out[3].data(), out[4].data(),
                                      float(p.scale), chunk, kept);
          return out;
        };
        std::vector<float> kept(size_t(gla_chunked_saved_size(d, chunk))), of(p.nv()), htf(p.ns());
        gla_chunked_forward<float>(d, qf.data(), kf.data(), vf.data(), gf.data(), h0p, of.data(), htf.data(),
                                   float(p.scale), chunk, kept.data());
        check_bit_identical(grads(kept.data()), grads(nullptr));
      }
    }
  }
}

TEST_CASE("null final state and null initial-state gradient leave every other output unchanged") {
  // Both chunked drivers, the recurrent and the complex kernels.
  for (GlaDims d : {GlaDims{4, 100, 2, 8, 12}, GlaDims{1, 300, 1, 8, 12}}) {
    CAPTURE(d.B * d.H);
    const Problem p(d, 15);
    for (Order order : {Order::Recurrent, Order::Chunked}) {
      const Forward f = run_forward(p, order, 32);
      const Grads gr = run_backward(p, order, 32);
      Buf o(p.nv()), dq(p.nk()), dk(p.nk()), dv(p.nv()), dg(p.nk());
      const double *q = p.q.data(), *k = p.k.data(), *v = p.v.data(), *g = p.g.data();
      if (order == Order::Chunked) {
        gla_chunked_forward<double>(d, q, k, v, g, p.h0p(), o.data(), nullptr, p.scale, 32);
        gla_chunked_backward<double>(d, q, k, v, g, p.h0p(), p.dout.data(), p.dhtp(), dq.data(), dk.data(),
                                     dv.data(), dg.data(), nullptr, p.scale, 32);
      } else {
        gla_recurrent_forward<double>(d, q, k, v, g, p.h0p(), o.data(), nullptr, p.scale);
        gla_recurrent_backward<double>(d, q, k, v, g, p.h0p(), p.dout.data(), p.dhtp(), dq.data(), dk.data(),
                                       dv.data(), dg.data(), nullptr, p.scale);
      }
      CHECK(o == f.o);
      CHECK(dq == gr.dq);
      CHECK(dk == gr.dk);
      CHECK(dv == gr.dv);
      CHECK(dg == gr.dg);
    }
    const ComplexProblem c(d, 16);
    const Forward fc = complex_forward(c, false);
    const ComplexGrads gc = complex_backward(c, false);
    Buf o(p.nv()), dq(p.nk()), dk(p.nk()), dv(p.nv()), dg(c.nr()), dth(c.nr());
    const Problem& cp = c.p;
    gla_complex_recurrent_forward<double>(d, cp.q.data(), cp.k.data(), cp.v.data(), c.g.data(),
                                          c.dtheta.data(), cp.h0p(), o.data(), nullptr, cp.scale);
    gla_complex_recurrent_backward<double>(d, cp.q.data(), cp.k.data(), cp.v.data(), c.g.data(),
                                           c.dtheta.data(), cp.h0p(), cp.dout.data(), cp.dhtp(), dq.data(),
                                           dk.data(), dv.data(), dg.data(), dth.data(), nullptr, cp.scale);
    CHECK(o == fc.o);
    CHECK(dq == gc.dq);
    CHECK(dk == gc.dk);
    CHECK(dv == gc.dv);
    CHECK(dg == gc.dg);
    CHECK(dth == gc.ddtheta);
  }
}

TEST_CASE("chunked equals recurrent for any chunk size") {
  const Problem p(GlaDims{1, 150, 2, 24, 20}, 21);
  for (int64_t chunk : {1, 7, 16, 17, 33, 64, 100, 200}) {
    CAPTURE(chunk);
    check_same(p, Order::Chunked, Order::Recurrent, 1e-10, chunk);
  }
}

TEST_CASE("chunked equals recurrent across gate strengths, logsigmoid(x)/normalizer") {
  for (double normalizer : {0.1, 0.5, 1.0, 4.0, 16.0}) {
    CAPTURE(normalizer);
    check_same(Problem(GlaDims{1, 130, 2, 32, 32}, 31, normalizer), Order::Chunked, Order::Recurrent,
               1e-10);
  }
}

TEST_CASE("strong decays (g down to -30 per step) stay finite and match") {
  Problem p(GlaDims{1, 130, 2, 32, 16}, 41);
  Rng rng(42);
  p.g = rng.uniform(p.nk(), -30.0, 0.0);
  check_same(p, Order::Chunked, Order::Recurrent, 1e-10);
  // Every gate at -30: the true dg is ~exp(-30) times the other gradients. The chunked dg is a
  // within-chunk reverse sum of q ⊙ dq - k ⊙ dk (as in fla's chunk_gla), whose terms cancel, so it
  // is accurate to rounding relative to |q ⊙ dq|, not to |dg| itself. Everything else matches as usual.
  for (auto& x : p.g) x = -30.0;
  const Forward fc = run_forward(p, Order::Chunked), fr = run_forward(p, Order::Recurrent);
  const Grads gc = run_backward(p, Order::Chunked), gr = run_backward(p, Order::Recurrent);
  CHECK(rel_rmse(fc.o, fr.o) <= 1e-10);
  CHECK(rel_rmse(fc.ht, fr.ht) <= 1e-10);
  CHECK(rel_rmse(gc.dq, gr.dq) <= 1e-10);
  CHECK(rel_rmse(gc.dk, gr.dk) <= 1e-10);
  CHECK(rel_rmse(gc.dv, gr.dv) <= 1e-10);
  CHECK(rel_rmse(gc.dh0, gr.dh0) <= 1e-10);
  CHECK(all_finite(gc.dg));
  Buf qdq(p.nk()), diff(p.nk());
  for (size_t i = 0; i < qdq.size(); ++i) qdq[i] = p.q[i] * gr.dq[i], diff[i] = gc.dg[i] - gr.dg[i];
  CHECK(norm(diff) / norm(qdq) <= 1e-14);
  MESSAGE("all-(-30) gates: |dg| / |q*dq| = ", norm(gr.dg) / norm(qdq), ", dg error / |q*dq| = ",
          norm(diff) / norm(qdq));
}

TEST_CASE("splitting a sequence and carrying the state equals one pass, forward and backward") {
  const GlaDims d{2, 100, 2, 12, 20};
  const Problem p(d, 51);
  for (Order order : {Order::Recurrent, Order::Chunked})
    for (int64_t split : {37, 64, 99}) {
      CAPTURE(split);
      const int64_t chunk = 16;
      const Forward whole = run_forward(p, order, chunk);
      const Grads gwhole = run_backward(p, order, chunk);
      Problem p1 = p, p2 = p;
      p1.d.T = split;
      p2.d.T = d.T - split;
      for (auto [part, t0, t1] : {std::tuple{&p1, int64_t(0), split}, std::tuple{&p2, split, d.T}}) {
        part->q = slice_time(p.q, d, t0, t1, d.K);
        part->k = slice_time(p.k, d, t0, t1, d.K);
        part->g = slice_time(p.g, d, t0, t1, d.K);
        part->v = slice_time(p.v, d, t0, t1, d.V);
        part->dout = slice_time(p.dout, d, t0, t1, d.V);
      }
      // Forward: the first part's final state is the second part's initial state.
      const Forward f1 = run_forward(p1, order, chunk);
      p2.h0 = f1.ht;
      const Forward f2 = run_forward(p2, order, chunk);
      CHECK(rel_rmse(concat_time(f1.o, f2.o, d.B, p1.d.T, p2.d.T, d.H * d.V), whole.o) <= 1e-12);
      CHECK(rel_rmse(f2.ht, whole.ht) <= 1e-12);
      // Backward: the second part's initial-state gradient is the first part's final-state gradient.
      const Grads g2 = run_backward(p2, order, chunk);
      p1.dht = g2.dh0;
      const Grads g1 = run_backward(p1, order, chunk);
      const int64_t T1 = p1.d.T, T2 = p2.d.T, HK = d.H * d.K, HV = d.H * d.V;
      CHECK(rel_rmse(concat_time(g1.dq, g2.dq, d.B, T1, T2, HK), gwhole.dq) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dk, g2.dk, d.B, T1, T2, HK), gwhole.dk) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dv, g2.dv, d.B, T1, T2, HV), gwhole.dv) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dg, g2.dg, d.B, T1, T2, HK), gwhole.dg) <= 1e-12);
      CHECK(rel_rmse(g1.dh0, gwhole.dh0) <= 1e-12);
    }
}

TEST_CASE("one-token decoding steps with a carried state equal one pass") {
  const GlaDims d{1, 12, 2, 8, 6};
  const Problem p(d, 61);
  const Forward whole = run_forward(p, Order::Recurrent);
  Buf state = p.h0, o;
  for (int64_t t = 0; t < d.T; ++t) {
    Problem step = p;
    step.d.T = 1;
    step.q = slice_time(p.q, d, t, t + 1, d.K);
    step.k = slice_time(p.k, d, t, t + 1, d.K);
    step.g = slice_time(p.g, d, t, t + 1, d.K);
    step.v = slice_time(p.v, d, t, t + 1, d.V);
    step.h0 = state;
    const Forward f = run_forward(step, Order::Recurrent);
    o.insert(o.end(), f.o.begin(), f.o.end());
    state = f.ht;
  }
  CHECK(rel_rmse(o, whole.o) <= 1e-13);
  CHECK(rel_rmse(state, whole.ht) <= 1e-13);
}

TEST_CASE("bad sizes throw rotor::Error naming the op") {
  double x[8] = {};
  const GlaDims no_keys{1, 2, 1, 0, 2}, ok{1, 2, 1, 2, 2}, odd_keys{1, 1, 1, 3, 1};
  auto recurrent = [&] { gla_recurrent_forward<double>(no_keys, x, x, x, x, nullptr, x, nullptr, 1.0); };
  auto chunk_zero = [&] { gla_chunked_forward<double>(ok, x, x, x, x, nullptr, x, nullptr, 1.0, 0); };
  auto complex_odd = [&] {
    gla_complex_recurrent_forward<double>(odd_keys, x, x, x, x, x, nullptr, x, nullptr, 1.0);
  };
  CHECK(error_message(recurrent).starts_with("[gla_recurrent_forward]"));
  CHECK(error_message(chunk_zero).starts_with("[gla_chunked_forward]"));
  CHECK(error_message(complex_odd).starts_with("[gla_complex_recurrent_forward]"));
}

TEST_CASE("an empty sequence passes the state through") {
  const Problem p(GlaDims{2, 0, 3, 4, 5}, 65);
  for (Order order : {Order::Reference, Order::Recurrent, Order::Chunked}) {
    const Forward f = run_forward(p, order);
    const Grads gr = run_backward(p, order);
    CHECK(f.ht == p.h0);
    CHECK(gr.dh0 == p.dht);
  }
}

TEST_CASE("float32 kernels agree with the float64 reference") {
  // float32 rounding (6e-8) accumulated over ~K + C terms per output: 1e-5 leaves a wide margin.
  // Value widths of several batches, of exactly one AVX-512 batch (16) and of less (8), which
  // the recurrent kernels keep in registers.
  for (GlaDims d : {GlaDims{1, 100, 2, 32, 24}, GlaDims{2, 40, 2, 8, 16}, GlaDims{2, 40, 2, 4, 8}}) {
    CAPTURE(d.V);
    const Problem p(d, 71);
    const Forward ref = run_forward(p, Order::Reference);
    const Grads gref = run_backward(p, Order::Reference);
    const auto q = f32(p.q), k = f32(p.k), v = f32(p.v), g = f32(p.g), h0 = f32(p.h0), dout = f32(p.dout),
               dht = f32(p.dht);
    for (bool chunked : {false, true}) {
      CAPTURE(chunked);
      std::vector<float> o(p.nv()), ht(p.ns()), dq(p.nk()), dk(p.nk()), dv(p.nv()), dg(p.nk()), dh0(p.ns());
      const float scale = float(p.scale);
      const float *Q = q.data(), *Kp = k.data(), *Vp = v.data(), *G = g.data(), *H0 = h0.data();
      if (chunked) {
        gla_chunked_forward<float>(d, Q, Kp, Vp, G, H0, o.data(), ht.data(), scale);
        gla_chunked_backward<float>(d, Q, Kp, Vp, G, H0, dout.data(), dht.data(), dq.data(), dk.data(),
                                    dv.data(), dg.data(), dh0.data(), scale);
      } else {
        gla_recurrent_forward<float>(d, Q, Kp, Vp, G, H0, o.data(), ht.data(), scale);
        gla_recurrent_backward<float>(d, Q, Kp, Vp, G, H0, dout.data(), dht.data(), dq.data(), dk.data(),
                                      dv.data(), dg.data(), dh0.data(), scale);
      }
      CHECK(rel_rmse(f64(o), ref.o) <= 1e-5);
      CHECK(rel_rmse(f64(ht), ref.ht) <= 1e-5);
      CHECK(rel_rmse(f64(dq), gref.dq) <= 1e-5);
      CHECK(rel_rmse(f64(dk), gref.dk) <= 1e-5);
      CHECK(rel_rmse(f64(dv), gref.dv) <= 1e-5);
      CHECK(rel_rmse(f64(dg), gref.dg) <= 1e-5);
      CHECK(rel_rmse(f64(dh0), gref.dh0) <= 1e-5);
    }
  }
}

// The per-sequence state scratch is carved in 64-byte slices: a K x V state whose size in bytes
// is not a multiple of 64 must still fit (with assertions on this aborted in Scratch::take).
TEST_CASE("recurrent and complex kernels take states whose byte size is not a multiple of 64") {
  for (GlaDims d : {GlaDims{1, 5, 2, 2, 3}, GlaDims{2, 4, 1, 6, 5}}) {
    CAPTURE(d.K);
    CAPTURE(d.V);
    const Problem p(d, 91);
    const Forward ref = run_forward(p, Order::Reference), rec = run_forward(p, Order::Recurrent);
    CHECK(rel_rmse(rec.o, ref.o) <= 1e-13);
    CHECK(rel_rmse(rec.ht, ref.ht) <= 1e-13);
    const Grads gref = run_backward(p, Order::Reference), grec = run_backward(p, Order::Recurrent);
    CHECK(rel_rmse(grec.dq, gref.dq) <= 1e-13);
    CHECK(rel_rmse(grec.dh0, gref.dh0) <= 1e-13);
    const ComplexProblem c(d, 92);
    const Forward fa = complex_forward(c, false), fb = complex_forward(c, true);
    CHECK(rel_rmse(fa.o, fb.o) <= 1e-13);
    CHECK(rel_rmse(fa.ht, fb.ht) <= 1e-13);
    // float32: 3 x 5 x 4 = 60 bytes.
    const std::vector<float> x(size_t(d.B * d.T * d.H * std::max(d.K, d.V)), 0.5f), g(x.size(), -0.1f);
    std::vector<float> o(x.size()), ht(size_t(d.B * d.H * d.K * d.V));
    gla_recurrent_forward<float>(d, x.data(), x.data(), x.data(), g.data(), nullptr, o.data(), ht.data(), 0.5f);
    CHECK(std::isfinite(ht.back()));
  }
}

TEST_CASE("complex recurrent kernel equals its reference loop") {
  for (GlaDims d : {GlaDims{2, 33, 2, 16, 24}, GlaDims{1, 40, 1, 60, 100}, GlaDims{1, 1, 1, 2, 1}}) {
    CAPTURE(d.K);
    const ComplexProblem c(d, 81);
    const Forward fa = complex_forward(c, false), fb = complex_forward(c, true);
    const ComplexGrads ga = complex_backward(c, false), gb = complex_backward(c, true);
    CHECK(rel_rmse(fa.o, fb.o) <= 1e-13);
    CHECK(rel_rmse(fa.ht, fb.ht) <= 1e-13);
    CHECK(rel_rmse(ga.dq, gb.dq) <= 1e-13);
    CHECK(rel_rmse(ga.dk, gb.dk) <= 1e-13);
    CHECK(rel_rmse(ga.dv, gb.dv) <= 1e-13);
    CHECK(rel_rmse(ga.dg, gb.dg) <= 1e-13);
    CHECK(rel_rmse(ga.ddtheta, gb.ddtheta) <= 1e-13);
    CHECK(rel_rmse(ga.dh0, gb.dh0) <= 1e-13);
  }
}

TEST_CASE("complex gradients by hand: one step, one pair, one value column") {
  // z_q = 1 - 2i, z_k = 3 + i, v = 2, gamma = 1/2, dtheta = pi/2 (c = -i/2), h0 = 1 + 2i, scale 1.
  // h1 = c h0 + z_k v = (1 - i/2) + (6 + 2i) = 7 + 1.5i;  o = Re(conj(z_q) h1) = 7 - 3 = 4.
  // dL/dz_q = h1 -> (7, 1.5); dL/dz_k = v z_q -> (2, -4); dL/dv = Re(conj(z_q) z_k) = 1.
  // conj(z_q) c = 1 - i/2, so o = Re h0 + Re h0 ... = h0r + h0i/2 + ...: dL/dh0 = (1, 0.5).
  // dL/dg = Re(conj(z_q) c h0) = Re((1 - i/2)(1 + 2i)) = 2;
  // dL/ddtheta = Re(conj(z_q) (-i c) h0) = Re(-i (2 + 1.5i)) = 1.5.
  const GlaDims d{1, 1, 1, 2, 1};
  const double q[] = {1, -2}, k[] = {3, 1}, v[] = {2}, h0[] = {1, 2};
  const double g[] = {std::log(0.5)}, dth[] = {M_PI / 2};
  const double dout[] = {1};
  double o[1], ht[2], dq[2], dk[2], dv[1], dg[1], ddth[1], dh0[2];
  for (bool reference : {false, true}) {
    CAPTURE(reference);
    (reference ? gla_complex_recurrent_forward_reference<double> : gla_complex_recurrent_forward<double>)(
        d, q, k, v, g, dth, h0, o, ht, 1.0);
    (reference ? gla_complex_recurrent_backward_reference<double> : gla_complex_recurrent_backward<double>)(
        d, q, k, v, g, dth, h0, dout, nullptr, dq, dk, dv, dg, ddth, dh0, 1.0);
    CHECK(o[0] == doctest::Approx(4.0).epsilon(1e-14));
    CHECK(ht[0] == doctest::Approx(7.0).epsilon(1e-14));
    CHECK(ht[1] == doctest::Approx(1.5).epsilon(1e-14));
    CHECK(dq[0] == doctest::Approx(7.0).epsilon(1e-14));
    CHECK(dq[1] == doctest::Approx(1.5).epsilon(1e-14));
    CHECK(dk[0] == doctest::Approx(2.0).epsilon(1e-14));
    CHECK(dk[1] == doctest::Approx(-4.0).epsilon(1e-14));
    CHECK(dv[0] == doctest::Approx(1.0).epsilon(1e-14));
    CHECK(dg[0] == doctest::Approx(2.0).epsilon(1e-14));
    CHECK(ddth[0] == doctest::Approx(1.5).epsilon(1e-14));
    CHECK(dh0[0] == doctest::Approx(1.0).epsilon(1e-14));
    CHECK(dh0[1] == doctest::Approx(0.5).epsilon(1e-14));
  }
}

TEST_CASE("complex backward matches central finite differences") {
  ComplexProblem c(GlaDims{1, 5, 2, 4, 3}, 91);
  const ComplexGrads gr = complex_backward(c, false);
  auto f = [&] {
    const Forward fw = complex_forward(c, false);
    return loss(fw.o, fw.ht, c.p.dout, c.p.dht);
  };
  CHECK(finite_difference_error(c.p.q, gr.dq, f) < 1e-8);
  CHECK(finite_difference_error(c.p.k, gr.dk, f) < 1e-8);
  CHECK(finite_difference_error(c.p.v, gr.dv, f) < 1e-8);
  CHECK(finite_difference_error(c.g, gr.dg, f) < 1e-8);
  CHECK(finite_difference_error(c.dtheta, gr.ddtheta, f) < 1e-8);
  CHECK(finite_difference_error(c.p.h0, gr.dh0, f) < 1e-8);
}

TEST_CASE("the RoPE trick: real GLA on rotated q, k with tied decays equals complex GLA") {
  // docs/gla.md. Rotate q, k by theta_t = cumsum(dtheta) (half-split, docs/rotations.md), give both coordinates of a
  // pair the gate g[r], run real GLA; the complex recurrence on unrotated q, k must agree, with the
  // real state S_t = rotate(h_t, theta_t) (theta_{-1} = 0, so h0 is shared). Then the gradients:
  // the complex ones must equal the real ones chained back through the rotation.
  for (GlaDims d : {GlaDims{2, 45, 2, 16, 12}, GlaDims{1, 70, 1, 60, 20}}) {
    CAPTURE(d.K);
    const int64_t R = d.K / 2;
    const ComplexProblem c(d, 101);
    const Buf theta = cumsum_time(c.dtheta, d, R);
    Problem real = c.p;
    rotate(real.q, theta, d);
    rotate(real.k, theta, d);
    for (int64_t row = 0; row < d.B * d.T * d.H; ++row)
      for (int64_t r = 0; r < R; ++r) real.g[row * d.K + r] = real.g[row * d.K + r + R] = c.g[row * R + r];
    // theta_{T-1} per (b, h), laid out like a one-step (B,1,H,R) tensor, for the state rotation.
    const Buf theta_last = slice_time(theta, GlaDims{d.B, d.T, d.H, R, 0}, d.T - 1, d.T, R);
    // The real final-state gradient dht rotated back to the complex frame: dL/dh_T = rot(dht, -theta).
    // States are (B,H,K,V): rotate each column j of each (b,h) block by theta_last[b,h].
    auto rotate_state = [&](const Buf& S, double sign) {
      Buf out = S;
      for (int64_t bh = 0; bh < d.B * d.H; ++bh)
        for (int64_t r = 0; r < R; ++r) {
          const double th = theta_last[bh * R + r], cs = std::cos(th), sn = sign * std::sin(th);
          for (int64_t j = 0; j < d.V; ++j) {
            const double a = S[(bh * d.K + r) * d.V + j], b = S[(bh * d.K + r + R) * d.V + j];
            out[(bh * d.K + r) * d.V + j] = a * cs - b * sn;
            out[(bh * d.K + r + R) * d.V + j] = a * sn + b * cs;
          }
        }
      return out;
    };
    ComplexProblem cc = c;
    // The same loss on both sides: sum(S_T * dht) = sum(h_T * rot(dht, -theta_{T-1})).
    cc.p.dht = rotate_state(c.p.dht, -1.0);

    for (bool chunked : {false, true}) {
      CAPTURE(chunked);
      const Order order = chunked ? Order::Chunked : Order::Recurrent;
      const Forward fr = run_forward(real, order, 16);
      const Grads gr = run_backward(real, order, 16);
      for (bool reference : {false, true}) {
        CAPTURE(reference);
        const Forward fc = complex_forward(cc, reference);
        CHECK(rel_rmse(fc.o, fr.o) <= 1e-10);
        CHECK(rel_rmse(rotate_state(fc.ht, 1.0), fr.ht) <= 1e-10);
        const ComplexGrads gc = complex_backward(cc, reference);
        // dq, dk: the real gradients rotated back by -theta_t; dv and dh0 unchanged.
        Buf dq = gr.dq, dk = gr.dk;
        rotate(dq, theta, d, -1.0);
        rotate(dk, theta, d, -1.0);
        CHECK(rel_rmse(gc.dq, dq) <= 1e-10);
        CHECK(rel_rmse(gc.dk, dk) <= 1e-10);
        CHECK(rel_rmse(gc.dv, gr.dv) <= 1e-10);
        CHECK(rel_rmse(gc.dh0, gr.dh0) <= 1e-10);
        // dg of a pair: the sum over its two tied coordinates.
        Buf dg(c.nr());
        for (int64_t row = 0; row < d.B * d.T * d.H; ++row)
          for (int64_t r = 0; r < R; ++r) dg[row * R + r] = gr.dg[row * d.K + r] + gr.dg[row * d.K + r + R];
        CHECK(rel_rmse(gc.dg, dg) <= 1e-10);
        // dtheta_s = sum_{t >= s} dL/dtheta_t. The real run sees theta through the rotations of q_t
        // and k_t only. The complex loss holds its final-state weight rot(dht, -theta_{T-1}) fixed:
        // L_c = L_real - sum(rot(h_T, theta_{T-1}) * dht) + const near the base point, hence the
        // extra term with the sign flipped (gx = -dht).
        Buf dth_t(c.nr(), 0.0);
        for (int64_t row = 0; row < d.B * d.T * d.H; ++row) {
          rotation_angle_grad(&c.p.q[row * d.K], &gr.dq[row * d.K], R, &dth_t[row * R], &theta[row * R]);
          rotation_angle_grad(&c.p.k[row * d.K], &gr.dk[row * d.K], R, &dth_t[row * R], &theta[row * R]);
        }
        for (int64_t b = 0; b < d.B; ++b)
          for (int64_t h = 0; h < d.H; ++h)
            for (int64_t j = 0; j < d.V; ++j) {
              const int64_t bh = b * d.H + h, row = (b * d.T + d.T - 1) * d.H + h;
              Buf x(d.K), gx(d.K);
              for (int64_t i = 0; i < d.K; ++i) {
                x[i] = fc.ht[(bh * d.K + i) * d.V + j];
                gx[i] = -c.p.dht[(bh * d.K + i) * d.V + j];
              }
              rotation_angle_grad(x.data(), gx.data(), R, &dth_t[row * R], &theta[row * R]);
            }
        Buf dtheta(c.nr(), 0.0);
        for (int64_t b = 0; b < d.B; ++b)
          for (int64_t t = d.T - 1; t >= 0; --t)
            for (int64_t i = 0; i < d.H * R; ++i) {
              const size_t at = size_t((b * d.T + t) * d.H * R + i);
              dtheta[at] = dth_t[at] + (t + 1 < d.T ? dtheta[at + size_t(d.H * R)] : 0.0);
            }
        CHECK(rel_rmse(gc.ddtheta, dtheta) <= 1e-10);
      }
    }
  }
}

TEST_CASE("results are bit-identical on 1 and 2 threads") {
  // float32; B*H = 8 splits by sequence, B*H = 2 by chunk (chained scan), both with enough work
  // that two threads really share it.
  for (GlaDims d : {GlaDims{2, 200, 4, 32, 32}, GlaDims{1, 700, 2, 32, 32}}) {
    CAPTURE(d.B * d.H);
    const Problem p(d, 111);
    const auto q = f32(p.q), k = f32(p.k), v = f32(p.v), g = f32(p.g), h0 = f32(p.h0), dout = f32(p.dout),
               dht = f32(p.dht);
    // Complex inputs: per-pair gates (half of g's values) and angle increments.
    const std::vector<float> gp(g.begin(), g.begin() + g.size() / 2);
    const std::vector<float> th = f32(Rng(5).uniform(g.size() / 2, -1, 1));
    const float *Q = q.data(), *Kp = k.data(), *Vp = v.data(), *G = g.data(), *H0 = h0.data();
    const float *DO = dout.data(), *DHT = dht.data();
    auto run = [&](int threads) {
      rotor::set_num_threads(threads);
      std::vector<std::vector<float>> out;
      auto buf = [&](size_t n) -> float* { return out.emplace_back(n).data(); };
      const float s = float(p.scale);
      gla_chunked_forward<float>(d, Q, Kp, Vp, G, H0, buf(p.nv()), buf(p.ns()), s);
      gla_chunked_backward<float>(d, Q, Kp, Vp, G, H0, DO, DHT, buf(p.nk()), buf(p.nk()), buf(p.nv()),
                                  buf(p.nk()), buf(p.ns()), s);
      gla_recurrent_forward<float>(d, Q, Kp, Vp, G, H0, buf(p.nv()), buf(p.ns()), s);
      gla_recurrent_backward<float>(d, Q, Kp, Vp, G, H0, DO, DHT, buf(p.nk()), buf(p.nk()), buf(p.nv()),
                                    buf(p.nk()), buf(p.ns()), s);
      gla_complex_recurrent_forward<float>(d, Q, Kp, Vp, gp.data(), th.data(), H0, buf(p.nv()), buf(p.ns()),
                                           s);
      gla_complex_recurrent_backward<float>(d, Q, Kp, Vp, gp.data(), th.data(), H0, DO, DHT, buf(p.nk()),
                                            buf(p.nk()), buf(p.nv()), buf(gp.size()), buf(gp.size()),
                                            buf(p.ns()), s);
      rotor::set_num_threads(0);
      return out;
    };
    check_bit_identical(run(1), run(2));
  }
}

}  // TEST_SUITE
