// Suite "gdn": the gated delta rule's kernels (recurrent, chunked WY form) against each other,
// against the plain reference loops, against central finite differences and against identities
// of docs/gated_deltanet.md. All comparisons in float64 unless said otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/gated_delta.h"
#include "sequence_test_util.h"

using namespace rotor::kernels;
using namespace rotor::test;

namespace {

// Inputs of one problem plus upstream gradients on o and on the final state: q, k unit vectors per
// head (as the layer makes them), g = -a softplus(x) like the layer's gate, beta = beta_max sigmoid(x).
struct Problem {
  GlaDims d;
  Buf q, k, v, g, beta, h0, dout, dht;
  double scale;
  Problem(GlaDims dims, uint64_t seed, double beta_max = 1.0, double gate = 1.0, bool with_state = true)
      : d(dims), scale(1.0 / std::sqrt(double(dims.K))) {
    Rng rng(seed);
    q = unit_rows(rng.normal(nk()), d.K);
    k = unit_rows(rng.normal(nk()), d.K);
    v = rng.normal(nv());
    g = rng.normal(nt(), 1.5);
    for (auto& x : g) x = -gate * std::log1p(std::exp(x - 2.0));
    beta = rng.normal(nt(), 1.5);
    for (auto& x : beta) x = beta_max / (1.0 + std::exp(-x));
    dout = rng.normal(nv());
    if (with_state) {
      h0 = rng.normal(ns());
      dht = rng.normal(ns());
    }
  }
  static Buf unit_rows(Buf x, int64_t D) {
    for (size_t r = 0; r < x.size() / size_t(D); ++r) {
      double s = 0;
      for (int64_t i = 0; i < D; ++i) s += x[r * D + i] * x[r * D + i];
      for (int64_t i = 0; i < D; ++i) x[r * D + i] /= std::sqrt(s);
    }
    return x;
  }
  size_t nt() const { return size_t(d.B * d.T * d.H); }
  size_t nk() const { return nt() * size_t(d.K); }
  size_t nv() const { return nt() * size_t(d.V); }
  size_t ns() const { return size_t(d.B * d.H * d.K * d.V); }
  const double* h0p() const { return h0.empty() ? nullptr : h0.data(); }
  const double* dhtp() const { return dht.empty() ? nullptr : dht.data(); }
};

struct Forward {
  Buf o, ht;
};
struct Grads {
  Buf dq, dk, dv, dg, dbeta, dh0;
};

enum class Order { Reference, Recurrent, Chunked };

Forward run_forward(const Problem& p, Order order, int64_t chunk = 64) {
  Forward f{Buf(p.nv()), Buf(p.ns())};
  const double *q = p.q.data(), *k = p.k.data(), *v = p.v.data(), *g = p.g.data(), *b = p.beta.data();
  if (order == Order::Reference)
    gated_delta_forward_reference<double>(p.d, q, k, v, g, b, p.h0p(), f.o.data(), f.ht.data(), p.scale);
  else if (order == Order::Recurrent)
    gated_delta_recurrent_forward<double>(p.d, q, k, v, g, b, p.h0p(), f.o.data(), f.ht.data(), p.scale);
  else
    gated_delta_chunked_forward<double>(p.d, q, k, v, g, b, p.h0p(), f.o.data(), f.ht.data(), p.scale, chunk);
  return f;
}

Grads run_backward(const Problem& p, Order order, int64_t chunk = 64) {
  Grads r{Buf(p.nk()), Buf(p.nk()), Buf(p.nv()), Buf(p.nt()), Buf(p.nt()), Buf(p.ns())};
  const double *q = p.q.data(), *k = p.k.data(), *v = p.v.data(), *g = p.g.data(), *b = p.beta.data();
  double *dq = r.dq.data(), *dk = r.dk.data(), *dv = r.dv.data(), *dg = r.dg.data(), *db = r.dbeta.data();
  if (order == Order::Reference)
    gated_delta_backward_reference<double>(p.d, q, k, v, g, b, p.h0p(), p.dout.data(), p.dhtp(), dq, dk, dv, dg,
                                           db, r.dh0.data(), p.scale);
  else if (order == Order::Recurrent)
    gated_delta_recurrent_backward<double>(p.d, q, k, v, g, b, p.h0p(), p.dout.data(), p.dhtp(), dq, dk, dv, dg,
                                           db, r.dh0.data(), p.scale);
  else
    gated_delta_chunked_backward<double>(p.d, q, k, v, g, b, p.h0p(), p.dout.data(), p.dhtp(), dq, dk, dv, dg,
                                         db, r.dh0.data(), p.scale, chunk);
  return r;
}

// The largest relative RMSE between two evaluation orders over o, the final state and every gradient.
double worst_difference(const Problem& p, Order a, Order b, int64_t chunk = 64) {
  const Forward fa = run_forward(p, a, chunk), fb = run_forward(p, b, chunk);
  const Grads ga = run_backward(p, a, chunk), gb = run_backward(p, b, chunk);
  double worst = 0;
  for (auto [x, y] : {std::pair{&fa.o, &fb.o}, {&fa.ht, &fb.ht}, {&ga.dq, &gb.dq}, {&ga.dk, &gb.dk},
                      {&ga.dv, &gb.dv}, {&ga.dg, &gb.dg}, {&ga.dbeta, &gb.dbeta}, {&ga.dh0, &gb.dh0}}) {
    REQUIRE(all_finite(*x));
    worst = std::max(worst, rel_rmse(*x, *y));
  }
  return worst;
}

}  // namespace

TEST_SUITE("gdn") {

TEST_CASE("one step by hand: decay, then the delta-rule write") {
  // K = 2, V = 1, S_{-1} = (1, 2)^T, g = log(1/2), beta = 1/2, k = (1, 0), v = 3, q = (1, 1), scale 1.
  // P = S/2 = (0.5, 1); u = v - P^T k = 2.5; S_0 = P + beta k u = (1.75, 1); o = q^T S_0 = 2.75.
  // Backward with do = 1: dS_0 = q = (1, 1); du = beta <dS_0, k> = 0.5; dv = 0.5;
  // dbeta = <dS_0, k> u = 2.5; dq = S_0 = (1.75, 1); dk = beta dS_0 u - P du = (1, 0.75);
  // dP = dS_0 - k du = (0.5, 1); dg = <dP, P> = 1.25; dS_{-1} = dP / 2 = (0.25, 0.5).
  const GlaDims d{1, 1, 1, 2, 1};
  const double q[] = {1, 1}, k[] = {1, 0}, v[] = {3}, g[] = {std::log(0.5)}, beta[] = {0.5}, h0[] = {1, 2};
  const double dout[] = {1};
  double o[1], ht[2], dq[2], dk[2], dv[1], dg[1], db[1], dh0[2];
  for (Order order : {Order::Reference, Order::Recurrent, Order::Chunked}) {
    CAPTURE(int(order));
    if (order == Order::Reference) {
      gated_delta_forward_reference<double>(d, q, k, v, g, beta, h0, o, ht, 1.0);
      gated_delta_backward_reference<double>(d, q, k, v, g, beta, h0, dout, nullptr, dq, dk, dv, dg, db, dh0, 1.0);
    } else if (order == Order::Recurrent) {
      gated_delta_recurrent_forward<double>(d, q, k, v, g, beta, h0, o, ht, 1.0);
      gated_delta_recurrent_backward<double>(d, q, k, v, g, beta, h0, dout, nullptr, dq, dk, dv, dg, db, dh0, 1.0);
    } else {
      gated_delta_chunked_forward<double>(d, q, k, v, g, beta, h0, o, ht, 1.0);
      gated_delta_chunked_backward<double>(d, q, k, v, g, beta, h0, dout, nullptr, dq, dk, dv, dg, db, dh0, 1.0);
    }
    const double want[] = {2.75, 1.75, 1, 1.75, 1, 1, 0.75, 0.5, 1.25, 2.5, 0.25, 0.5};
    const double got[] = {o[0], ht[0], ht[1], dq[0], dq[1], dk[0], dk[1], dv[0], dg[0], db[0], dh0[0], dh0[1]};
    for (int i = 0; i < 12; ++i) {
      CAPTURE(i);
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-14));
    }
  }
}

TEST_CASE("with beta = 1 and no decay the state recalls the value just written for its key") {
  // S_t = (I - k k^T) S_{t-1} + k v^T with |k| = 1 gives S_t^T k = v exactly, whatever S_{t-1}.
  for (Order order : {Order::Recurrent, Order::Chunked}) {
    Problem p(GlaDims{1, 9, 2, 8, 5}, 3);
    for (auto& x : p.g) x = 0;
    for (auto& x : p.beta) x = 1;
    p.q = p.k;  // read with the key of each step
    p.scale = 1;
    const Forward f = run_forward(p, order, 4);
    CHECK(rel_rmse(f.o, p.v) <= 1e-13);
  }
}

TEST_CASE("reference backward matches central finite differences") {
  for (double beta_max : {1.0, 2.0}) {
    CAPTURE(beta_max);
    Problem p(GlaDims{1, 6, 2, 3, 4}, 7, beta_max);
    const Grads gr = run_backward(p, Order::Reference);
    auto f = [&] {
      Forward fw = run_forward(p, Order::Reference);
      return loss(fw.o, fw.ht, p.dout, p.dht);
    };
    // h = 1e-5 on an O(1) smooth function: error ~h^2 + 1e-16/h ~ 1e-10.
    CHECK(finite_difference_error(p.q, gr.dq, f) < 1e-8);
    CHECK(finite_difference_error(p.k, gr.dk, f) < 1e-8);
    CHECK(finite_difference_error(p.v, gr.dv, f) < 1e-8);
    CHECK(finite_difference_error(p.g, gr.dg, f) < 1e-8);
    CHECK(finite_difference_error(p.beta, gr.dbeta, f) < 1e-8);
    CHECK(finite_difference_error(p.h0, gr.dh0, f) < 1e-8);
  }
}

TEST_CASE("recurrent kernel equals the reference loop, forward and backward") {
  for (GlaDims d : {GlaDims{2, 37, 3, 16, 24}, GlaDims{1, 50, 2, 60, 100}, GlaDims{1, 1, 1, 5, 3}}) {
    CAPTURE(d.T);
    CAPTURE(d.K);
    CHECK(worst_difference(Problem(d, 1), Order::Recurrent, Order::Reference) <= 1e-13);
    CHECK(worst_difference(Problem(d, 2, 2.0, 1.0, false), Order::Recurrent, Order::Reference) <= 1e-13);
  }
}

TEST_CASE("chunked equals recurrent: outputs, final state and every gradient, beta in (0,1) and (0,2)") {
  // T not a multiple of the chunk (odd lengths), K != V, head sizes that are not SIMD multiples.
  double worst = 0;
  for (GlaDims d : {GlaDims{2, 63, 2, 16, 32}, GlaDims{1, 1, 3, 8, 8}, GlaDims{2, 131, 1, 32, 24},
                    GlaDims{1, 129, 2, 60, 100}, GlaDims{1, 77, 1, 100, 60}, GlaDims{3, 200, 3, 64, 64}})
    for (double beta_max : {1.0, 2.0})
      for (bool state : {true, false}) {
        CAPTURE(d.T);
        CAPTURE(d.K);
        CAPTURE(d.V);
        CAPTURE(beta_max);
        CAPTURE(state);
        const double e = worst_difference(Problem(d, 11, beta_max, 1.0, state), Order::Chunked, Order::Recurrent);
        CHECK(e <= 1e-10);
        worst = std::max(worst, e);
      }
  MESSAGE("chunked vs recurrent, worst relative RMSE over o, ht and every gradient: ", worst);
}

TEST_CASE("chunked equals recurrent for any chunk size") {
  const Problem p(GlaDims{1, 150, 2, 24, 20}, 21);
  for (int64_t chunk : {1, 2, 7, 16, 17, 33, 64, 100, 200}) {
    CAPTURE(chunk);
    CHECK(worst_difference(p, Order::Chunked, Order::Recurrent, chunk) <= 1e-10);
  }
}

TEST_CASE("chunked equals recurrent across gate strengths, and with gates down to -30 per step") {
  for (double gate : {0.01, 0.3, 1.0, 4.0, 16.0}) {
    CAPTURE(gate);
    CHECK(worst_difference(Problem(GlaDims{1, 130, 2, 32, 32}, 31, 1.0, gate), Order::Chunked, Order::Recurrent) <=
          1e-10);
  }
  Problem p(GlaDims{1, 130, 2, 32, 16}, 41, 2.0);
  p.g = Rng(42).uniform(p.nt(), -30.0, 0.0);
  CHECK(worst_difference(p, Order::Chunked, Order::Recurrent) <= 1e-10);
  for (auto& x : p.g) x = -30.0;  // every step forgets all but exp(-30) of the state
  CHECK(worst_difference(p, Order::Chunked, Order::Recurrent) <= 1e-10);
}

TEST_CASE("splitting a sequence and carrying the state equals one pass, forward and backward") {
  const GlaDims d{2, 100, 2, 12, 20};
  const Problem p(d, 51, 2.0);
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
        part->g = slice_time(p.g, d, t0, t1, 1);
        part->beta = slice_time(p.beta, d, t0, t1, 1);
        part->v = slice_time(p.v, d, t0, t1, d.V);
        part->dout = slice_time(p.dout, d, t0, t1, d.V);
      }
      const Forward f1 = run_forward(p1, order, chunk);
      p2.h0 = f1.ht;
      const Forward f2 = run_forward(p2, order, chunk);
      CHECK(rel_rmse(concat_time(f1.o, f2.o, d.B, p1.d.T, p2.d.T, d.H * d.V), whole.o) <= 1e-12);
      CHECK(rel_rmse(f2.ht, whole.ht) <= 1e-12);
      const Grads g2 = run_backward(p2, order, chunk);
      p1.dht = g2.dh0;
      const Grads g1 = run_backward(p1, order, chunk);
      const int64_t T1 = p1.d.T, T2 = p2.d.T, HK = d.H * d.K, HV = d.H * d.V;
      CHECK(rel_rmse(concat_time(g1.dq, g2.dq, d.B, T1, T2, HK), gwhole.dq) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dk, g2.dk, d.B, T1, T2, HK), gwhole.dk) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dv, g2.dv, d.B, T1, T2, HV), gwhole.dv) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dg, g2.dg, d.B, T1, T2, d.H), gwhole.dg) <= 1e-12);
      CHECK(rel_rmse(concat_time(g1.dbeta, g2.dbeta, d.B, T1, T2, d.H), gwhole.dbeta) <= 1e-12);
      CHECK(rel_rmse(g1.dh0, gwhole.dh0) <= 1e-12);
    }
}

TEST_CASE("one-token decoding steps with a carried state equal one pass") {
  const GlaDims d{1, 12, 2, 8, 6};
  const Problem p(d, 61);
  const Forward whole = run_forward(p, Order::Chunked, 5);
  Buf state = p.h0, o;
  for (int64_t t = 0; t < d.T; ++t) {
    Problem step = p;
    step.d.T = 1;
    step.q = slice_time(p.q, d, t, t + 1, d.K);
    step.k = slice_time(p.k, d, t, t + 1, d.K);
    step.g = slice_time(p.g, d, t, t + 1, 1);
    step.beta = slice_time(p.beta, d, t, t + 1, 1);
    step.v = slice_time(p.v, d, t, t + 1, d.V);
    step.h0 = state;
    const Forward f = run_forward(step, Order::Recurrent);
    o.insert(o.end(), f.o.begin(), f.o.end());
    state = f.ht;
  }
  CHECK(rel_rmse(o, whole.o) <= 1e-12);
  CHECK(rel_rmse(state, whole.ht) <= 1e-12);
}

TEST_CASE("null final state and null initial-state gradient leave every other output unchanged") {
  const GlaDims d{2, 70, 2, 8, 12};
  const Problem p(d, 15);
  for (Order order : {Order::Recurrent, Order::Chunked}) {
    const Forward f = run_forward(p, order, 32);
    const Grads gr = run_backward(p, order, 32);
    Buf o(p.nv()), dq(p.nk()), dk(p.nk()), dv(p.nv()), dg(p.nt()), db(p.nt());
    const double *q = p.q.data(), *k = p.k.data(), *v = p.v.data(), *g = p.g.data(), *b = p.beta.data();
    if (order == Order::Chunked) {
      gated_delta_chunked_forward<double>(d, q, k, v, g, b, p.h0p(), o.data(), nullptr, p.scale, 32);
      gated_delta_chunked_backward<double>(d, q, k, v, g, b, p.h0p(), p.dout.data(), p.dhtp(), dq.data(), dk.data(),
                                           dv.data(), dg.data(), db.data(), nullptr, p.scale, 32);
    } else {
      gated_delta_recurrent_forward<double>(d, q, k, v, g, b, p.h0p(), o.data(), nullptr, p.scale);
      gated_delta_recurrent_backward<double>(d, q, k, v, g, b, p.h0p(), p.dout.data(), p.dhtp(), dq.data(),
                                             dk.data(), dv.data(), dg.data(), db.data(), nullptr, p.scale);
    }
    CHECK(o == f.o);
    CHECK(dq == gr.dq);
    CHECK(dk == gr.dk);
    CHECK(dv == gr.dv);
    CHECK(dg == gr.dg);
    CHECK(db == gr.dbeta);
  }
}

TEST_CASE("a backward given the forward's saved chunks equals one that recomputes them, bit for bit") {
  for (GlaDims d : {GlaDims{2, 70, 2, 8, 12}, GlaDims{1, 5, 3, 16, 4}}) {
    const Problem p(d, 17, 2.0);
    for (int64_t chunk : {3, 32}) {
      CAPTURE(chunk);
      const Forward f = run_forward(p, Order::Chunked, chunk);
      const Grads gr = run_backward(p, Order::Chunked, chunk);
      Buf saved(size_t(gated_delta_chunked_saved_size(d, chunk))), o(p.nv()), ht(p.ns());
      const double *q = p.q.data(), *k = p.k.data(), *v = p.v.data(), *g = p.g.data(), *b = p.beta.data();
      gated_delta_chunked_forward<double>(d, q, k, v, g, b, p.h0p(), o.data(), ht.data(), p.scale, chunk,
                                          saved.data());
      CHECK(o == f.o);
      CHECK(ht == f.ht);
      Grads gs{Buf(p.nk()), Buf(p.nk()), Buf(p.nv()), Buf(p.nt()), Buf(p.nt()), Buf(p.ns())};
      gated_delta_chunked_backward<double>(d, q, k, v, g, b, p.h0p(), p.dout.data(), p.dhtp(), gs.dq.data(),
                                           gs.dk.data(), gs.dv.data(), gs.dg.data(), gs.dbeta.data(), gs.dh0.data(),
                                           p.scale, chunk, saved.data());
      CHECK(gs.dq == gr.dq);
      CHECK(gs.dk == gr.dk);
      CHECK(gs.dv == gr.dv);
      CHECK(gs.dg == gr.dg);
      CHECK(gs.dbeta == gr.dbeta);
      CHECK(gs.dh0 == gr.dh0);
    }
  }
}

TEST_CASE("bad sizes throw rotor::Error naming the op") {
  double x[8] = {};
  const GlaDims no_keys{1, 2, 1, 0, 2}, ok{1, 2, 1, 2, 2};
  auto recurrent = [&] { gated_delta_recurrent_forward<double>(no_keys, x, x, x, x, x, nullptr, x, nullptr, 1.0); };
  auto backward = [&] {
    gated_delta_recurrent_backward<double>(no_keys, x, x, x, x, x, nullptr, x, nullptr, x, x, x, x, x, nullptr, 1.0);
  };
  auto chunk_zero = [&] { gated_delta_chunked_forward<double>(ok, x, x, x, x, x, nullptr, x, nullptr, 1.0, 0); };
  CHECK(error_message(recurrent).starts_with("[gated_delta_recurrent_forward]"));
  CHECK(error_message(backward).starts_with("[gated_delta_recurrent_backward]"));
  CHECK(error_message(chunk_zero).starts_with("[gated_delta_chunked_forward]"));
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
  // float32 rounding (6e-8) accumulated over ~K + C terms per output and the C x C solve: 2e-5
  // leaves a margin.
  const GlaDims d{1, 100, 2, 32, 24};
  const Problem p(d, 71, 2.0);
  const Forward ref = run_forward(p, Order::Reference);
  const Grads gref = run_backward(p, Order::Reference);
  const auto q = f32(p.q), k = f32(p.k), v = f32(p.v), g = f32(p.g), b = f32(p.beta), h0 = f32(p.h0),
             dout = f32(p.dout), dht = f32(p.dht);
  for (bool chunked : {false, true}) {
    CAPTURE(chunked);
    std::vector<float> o(p.nv()), ht(p.ns()), dq(p.nk()), dk(p.nk()), dv(p.nv()), dg(p.nt()), db(p.nt()),
        dh0(p.ns());
    const float s = float(p.scale);
    if (chunked) {
      gated_delta_chunked_forward<float>(d, q.data(), k.data(), v.data(), g.data(), b.data(), h0.data(), o.data(),
                                         ht.data(), s);
      gated_delta_chunked_backward<float>(d, q.data(), k.data(), v.data(), g.data(), b.data(), h0.data(),
                                          dout.data(), dht.data(), dq.data(), dk.data(), dv.data(), dg.data(),
                                          db.data(), dh0.data(), s);
    } else {
      gated_delta_recurrent_forward<float>(d, q.data(), k.data(), v.data(), g.data(), b.data(), h0.data(),
                                           o.data(), ht.data(), s);
      gated_delta_recurrent_backward<float>(d, q.data(), k.data(), v.data(), g.data(), b.data(), h0.data(),
                                            dout.data(), dht.data(), dq.data(), dk.data(), dv.data(), dg.data(),
                                            db.data(), dh0.data(), s);
    }
    CHECK(rel_rmse(f64(o), ref.o) <= 2e-5);
    CHECK(rel_rmse(f64(ht), ref.ht) <= 2e-5);
    CHECK(rel_rmse(f64(dq), gref.dq) <= 2e-5);
    CHECK(rel_rmse(f64(dk), gref.dk) <= 2e-5);
    CHECK(rel_rmse(f64(dv), gref.dv) <= 2e-5);
    CHECK(rel_rmse(f64(dg), gref.dg) <= 2e-5);
    CHECK(rel_rmse(f64(db), gref.dbeta) <= 2e-5);
    CHECK(rel_rmse(f64(dh0), gref.dh0) <= 2e-5);
  }
}

TEST_CASE("results are bit-identical on 1 and 2 threads") {
  const GlaDims d{2, 200, 4, 32, 32};
  const Problem p(d, 111);
  const auto q = f32(p.q), k = f32(p.k), v = f32(p.v), g = f32(p.g), b = f32(p.beta), h0 = f32(p.h0),
             dout = f32(p.dout), dht = f32(p.dht);
  auto run = [&](int threads) {
    rotor::set_num_threads(threads);
    std::vector<std::vector<float>> out;
    auto buf = [&](size_t n) -> float* { return out.emplace_back(n).data(); };
    const float s = float(p.scale);
    const float *Q = q.data(), *Kp = k.data(), *Vp = v.data(), *G = g.data(), *Bt = b.data(), *H0 = h0.data();
    gated_delta_chunked_forward<float>(d, Q, Kp, Vp, G, Bt, H0, buf(p.nv()), buf(p.ns()), s);
    gated_delta_chunked_backward<float>(d, Q, Kp, Vp, G, Bt, H0, dout.data(), dht.data(), buf(p.nk()), buf(p.nk()),
                                        buf(p.nv()), buf(p.nt()), buf(p.nt()), buf(p.ns()), s);
    gated_delta_recurrent_forward<float>(d, Q, Kp, Vp, G, Bt, H0, buf(p.nv()), buf(p.ns()), s);
    gated_delta_recurrent_backward<float>(d, Q, Kp, Vp, G, Bt, H0, dout.data(), dht.data(), buf(p.nk()),
                                          buf(p.nk()), buf(p.nv()), buf(p.nt()), buf(p.nt()), buf(p.ns()), s);
    rotor::set_num_threads(0);
    return out;
  };
  check_bit_identical(run(1), run(2));
}

}  // TEST_SUITE
