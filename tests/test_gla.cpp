// Suite "gla": the three GLA evaluation orders (recurrent, chunked, complex) against each other,
// against plain reference loops, against central finite differences and against the RoPE-trick
// identity of MATH.md §3. All comparisons in float64 unless said otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "kernels/gla.h"

using namespace rotor::kernels;

namespace {

using Buf = std::vector<double>;

double rel_rmse(const Buf& a, const Buf& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double norm(const Buf& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

bool all_finite(const Buf& a) {
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

double logsigmoid(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::abs(x))); }

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

// L = sum(o * dout) + sum(ht * dht), the scalar whose gradients the backward kernels return.
double loss(const Buf& o, const Buf& ht, const Buf& dout, const Buf& dht) {
  double l = 0;
  for (size_t i = 0; i < o.size(); ++i) l += o[i] * dout[i];
  for (size_t i = 0; i < ht.size(); ++i) l += ht[i] * dht[i];
  return l;
}

// Central differences of f with respect to every entry of x; compares with `analytic`.
// Relative error against the largest |gradient| (entries near zero are compared absolutely).
double finite_difference_error(Buf& x, const Buf& analytic, const std::function<double()>& f) {
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

}  // namespace

TEST_SUITE("gla") {

TEST_CASE("recurrent kernel equals the reference loop, forward and backward") {
  for (GlaDims d : {GlaDims{2, 37, 3, 16, 24}, GlaDims{1, 50, 2, 60, 100}, GlaDims{1, 1, 1, 5, 3}}) {
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

}  // TEST_SUITE
