// Suite "train", part 1: the fused cross-entropy and accuracy against float64 plain loops,
// AdamW against a hand-written loop, the schedule, gradient clipping.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "rotor/core/parallel.h"
#include "rotor/kernels/cross_entropy.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/optim.h"

using namespace rotor;
using namespace rotor::nn;

namespace {

// Loss and dloss/dlogits of the mean cross-entropy from the given values, in long double
// (64-bit mantissa): accurate enough to judge float64 results for logits of magnitude 1e4.
struct Reference {
  double loss = 0;
  std::vector<double> grad;
  int64_t count = 0;
};
Reference reference_ce(const std::vector<double>& x, const std::vector<int64_t>& y, int64_t V) {
  using LD = long double;
  const int64_t N = int64_t(y.size());
  Reference r;
  r.grad.assign(x.size(), 0.0);
  for (int64_t n = 0; n < N; ++n) r.count += y[size_t(n)] != kIgnoreIndex;
  LD loss = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (y[size_t(n)] == kIgnoreIndex) continue;
    LD m = -INFINITY;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, LD(x[size_t(n * V + v)]));
    LD s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(LD(x[size_t(n * V + v)]) - m);
    const LD lse = m + std::log(s);
    loss += (lse - LD(x[size_t(n * V + y[size_t(n)])])) / LD(r.count);
    for (int64_t v = 0; v < V; ++v)
      r.grad[size_t(n * V + v)] =
          double((std::exp(LD(x[size_t(n * V + v)]) - lse) - LD(v == y[size_t(n)])) / LD(r.count));
  }
  r.loss = double(loss);
  return r;
}

std::vector<double> as_double(const Tensor& t) {
  Tensor d = core::to_dtype(core::contiguous(t), DType::Float64);
  return d.to_vector<double>();
}

// Labels in [0, V) with about one in four ignored.
Tensor random_labels(int64_t N, int64_t V, Generator& gen, double ignored = 0.25) {
  std::vector<int64_t> y(static_cast<size_t>(N));
  for (auto& v : y) v = gen.next_uniform() < ignored ? kIgnoreIndex : gen.next_int(0, V);
  return from_vector<int64_t>(y);
}

// Checks loss and gradient of cross_entropy on `logits` against the float64 reference.
void check_against_reference(const Tensor& logits_in, const Tensor& labels, double loss_rtol, double grad_atol) {
  Tensor logits = core::clone(logits_in).requires_grad_();
  const int64_t V = logits.size(-1);
  Tensor loss = cross_entropy(logits, labels);
  Reference ref = reference_ce(as_double(logits), labels.to_vector<int64_t>(), V);
  CHECK(loss.dim() == 0);
  CHECK(std::abs(loss.item() - ref.loss) <= loss_rtol * std::abs(ref.loss) + 1e-300);
  loss.backward();
  std::vector<double> g = as_double(logits.grad());
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - ref.grad[i]));
  INFO("worst gradient error ", worst);
  CHECK(worst <= grad_atol);
}

}  // namespace

TEST_CASE("cross_entropy matches a float64 loop: float64 and float32, ragged V, ignored rows") {
  Generator gen(1);
  const int64_t N = 37, V = 1003;  // V not a multiple of any SIMD width
  Tensor labels = random_labels(N, V, gen);
  Tensor x64 = randn({N, V}, gen, DType::Float64, 0.0, 3.0);
  check_against_reference(x64, labels, 1e-13, 1e-15);
  // float32: the loss is ~log V ≈ 7, float32 rounding of the sum-exp gives ~1e-7 relative;
  // gradient entries are ≤ 1/count with float32 rounding of exp.
  Tensor x32 = core::to_dtype(x64, DType::Float32);
  check_against_reference(x32, labels, 2e-6, 4e-8);
}

TEST_CASE("cross_entropy is stable for logits of magnitude 1e4") {
  Generator gen(2);
  const int64_t N = 16, V = 517;
  Tensor labels = random_labels(N, V, gen, 0.1);
  for (DType dt : {DType::Float64, DType::Float32}) {
    // Large spread (softmax nearly one-hot) and large common offset (a naive exp overflows).
    Tensor spread = core::to_dtype(rand({N, V}, gen, DType::Float64, -1e4, 1e4), dt);
    Tensor offset = core::to_dtype(add(randn({N, V}, gen, DType::Float64), 1e4), dt);
    for (const Tensor& x : {spread, offset}) {
      Tensor l = cross_entropy(x, labels);
      REQUIRE(std::isfinite(l.item()));
      check_against_reference(x, labels, dt == DType::Float64 ? 1e-13 : 2e-6, dt == DType::Float64 ? 1e-15 : 4e-8);
    }
  }
}

TEST_CASE("cross_entropy is one autograd node reading the logits directly") {
  Tensor x = zeros({3, 4}).requires_grad_();
  Tensor l = cross_entropy(x, from_vector<int64_t>({1, kIgnoreIndex, 3}));
  REQUIRE(l.impl()->grad_fn);
  CHECK(std::string(l.impl()->grad_fn->op->name) == "cross_entropy");
  REQUIRE(l.impl()->grad_fn->inputs.size() == 1);
  CHECK(l.impl()->grad_fn->inputs[0].leaf.get() == x.impl());
  NoGradGuard ng;
  CHECK_FALSE(cross_entropy(x, from_vector<int64_t>({1, 2, 3})).requires_grad());
}

TEST_CASE("cross_entropy over [B, T, V] equals the flattened [N, V] and scales with the upstream gradient") {
  Generator gen(3);
  Tensor x = randn({3, 5, 11}, gen, DType::Float64);
  Tensor y = random_labels(15, 11, gen);
  Tensor a = core::clone(x).requires_grad_(), b = core::clone(reshape(x, {15, 11})).requires_grad_();
  Tensor la = cross_entropy(a, reshape(y, {3, 5})), lb = cross_entropy(b, y);
  CHECK(la.item() == lb.item());
  (la * 3.0).backward();
  lb.backward();
  std::vector<double> ga = as_double(a.grad()), gb = as_double(b.grad());
  for (size_t i = 0; i < ga.size(); ++i) CHECK(ga[i] == doctest::Approx(3.0 * gb[i]).epsilon(1e-14));
}

TEST_CASE("an all-ignored batch gives loss 0, gradient 0 and accuracy count 0") {
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor y = from_vector<int64_t>({kIgnoreIndex, kIgnoreIndex});
  Tensor l = cross_entropy(x, y);
  CHECK(l.item() == 0.0);
  l.backward();
  for (float g : x.grad().to_vector<float>()) CHECK(g == 0.0f);
  Accuracy a = token_accuracy(x, y);
  CHECK(a.count == 0);
  CHECK(a.value() == 0.0);
}

TEST_CASE("cross_entropy rejects labels out of range and mismatched shapes") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(cross_entropy(x, from_vector<int64_t>({0, 3})), Error);
  CHECK_THROWS_AS(cross_entropy(x, from_vector<int64_t>({-1, 0})), Error);
  CHECK_THROWS_AS(cross_entropy(x, from_vector<int64_t>({0, 1, 2})), Error);
  CHECK_THROWS_AS(cross_entropy(x, from_vector<float>({0, 1})), Error);
  CHECK_NOTHROW(cross_entropy(x, from_vector<int64_t>({2, -7}), -7));  // custom ignore index
}

TEST_CASE("fast cross-entropy kernels agree with the reference kernels and are thread-count independent") {
  Generator gen(4);
  const int64_t N = 64, V = 8192;  // the training hot path, large enough to run in parallel
  Tensor y = random_labels(N, V, gen, 0.5);
  const int64_t* yp = y.data<int64_t>();
  {
    // float64, so that rounding of the reference's plain serial sum stays far below the bound.
    Tensor x = randn({N, V}, gen, DType::Float64, 0.0, 4.0);
    const double* xp = x.data<double>();
    std::vector<double> m(N), ls(N), loss(N), m_ref(N), ls_ref(N), loss_ref(N), d(size_t(N * V)),
        d_ref(size_t(N * V)), d_bwd(size_t(N * V));
    kernels::cross_entropy_forward<double>(xp, yp, N, V, kIgnoreIndex, m.data(), ls.data(), loss.data(), d.data(), 0.25);
    kernels::cross_entropy_forward_reference<double>(xp, yp, N, V, kIgnoreIndex, m_ref.data(), ls_ref.data(),
                                                     loss_ref.data());
    kernels::cross_entropy_backward_reference<double>(xp, yp, m_ref.data(), ls_ref.data(), N, V, kIgnoreIndex, 0.25,
                                                      d_ref.data());
    kernels::cross_entropy_backward<double>(xp, yp, m.data(), ls.data(), N, V, kIgnoreIndex, 0.25, d_bwd.data());
    for (int64_t n = 0; n < N; ++n) {
      CHECK(m[size_t(n)] == m_ref[size_t(n)]);
      CHECK(ls[size_t(n)] == doctest::Approx(ls_ref[size_t(n)]).epsilon(1e-13));
      CHECK(loss[size_t(n)] == doctest::Approx(loss_ref[size_t(n)]).epsilon(1e-13));
    }
    double worst = 0, worst_bwd = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      worst = std::max(worst, std::abs(d[i] - d_ref[i]));
      worst_bwd = std::max(worst_bwd, std::abs(d_bwd[i] - d_ref[i]));
    }
    // The reference's serial sum of V exps rounds to ~sqrt(V)·eps relative (V·eps at worst,
    // 2e-12): gradients ≤ 0.25 then agree to ~1e-15; the bound allows 100x that.
    CHECK(worst <= 1e-13);
    CHECK(worst_bwd <= 1e-13);
  }
  Tensor x = randn({N, V}, gen, DType::Float32, 0.0, 4.0);
  check_against_reference(x, y, 2e-6, 4e-8);  // float32 at the hot-path size
  Tensor xa = core::clone(x).requires_grad_(), xb = core::clone(x).requires_grad_();
  set_num_threads(1);
  Tensor l1 = cross_entropy(xa, y);
  l1.backward();
  set_num_threads(0);
  Tensor l2 = cross_entropy(xb, y);
  l2.backward();
  CHECK(l1.item<float>() == l2.item<float>());
  CHECK(xa.grad().to_vector<float>() == xb.grad().to_vector<float>());
}

TEST_CASE("token_accuracy counts first-argmax hits on labelled positions") {
  // Rows shorter and longer than a SIMD batch, many ties, and rows holding a NaN (every few rows,
  // at a varying place), where the vector path hands over to the plain loop.
  for (int64_t V : {7, 16, 37, 64, 100}) {
    for (DType dt : {DType::Float32, DType::Float64}) {
      CAPTURE(V);
      Generator gen(5);
      const int64_t N = 200;
      Tensor x = core::to_dtype(randint(0, 3, {N, V}, gen), DType::Float64);
      Tensor y = random_labels(N, V, gen);
      std::vector<double> xv = x.to_vector<double>();
      for (int64_t n = 0; n < N; n += 7) xv[size_t(n * V + (n / 7) % V)] = std::nan("");
      x = core::to_dtype(from_vector<double>(xv, {N, V}), dt);
      std::vector<int64_t> yv = y.to_vector<int64_t>();
      int64_t correct = 0, count = 0;
      for (int64_t n = 0; n < N; ++n) {
        if (yv[size_t(n)] == kIgnoreIndex) continue;
        int64_t best = 0;
        for (int64_t v = 1; v < V; ++v)
          if (xv[size_t(n * V + v)] > xv[size_t(n * V + best)]) best = v;
        ++count;
        correct += best == yv[size_t(n)];
      }
      Accuracy a = token_accuracy(x, y);
      CHECK(a.count == count);
      CHECK(a.correct == correct);
      CHECK(correct > 0);
    }
  }
}

// ---- AdamW ----

namespace {
// Two float64 parameters, one decayed and one not; the gradient of step s is a fixed function
// of s, applied through an ordinary backward.
struct Toy {
  Tensor w = from_vector<double>({0.5, -1.5, 2.0, 0.0}).requires_grad_();
  Tensor b = from_vector<double>({0.25, -0.75}).requires_grad_();
  std::vector<Parameter> params() { return {{"w", w, true}, {"b", b, false}}; }
};
std::vector<double> grad_at(int step, size_t n, uint64_t seed) {
  Generator gen(seed + uint64_t(step));
  std::vector<double> g(n);
  for (auto& v : g) v = gen.next_normal();
  return g;
}
void apply_grads(Toy& t, int step) {
  Tensor gw = from_vector<double>(grad_at(step, 4, 100)), gb = from_vector<double>(grad_at(step, 2, 200));
  Tensor loss = add(sum(mul(t.w, gw)), sum(mul(t.b, gb)));
  loss.backward();
}
// The textbook AdamW loop (Loshchilov & Hutter, as PyTorch implements it).
void reference_adamw(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                     const std::vector<double>& g, int t, double lr, double wd, const AdamWOptions& o) {
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] -= lr * wd * p[i];
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
    const double mhat = m[i] / (1 - std::pow(o.beta1, t)), vhat = v[i] / (1 - std::pow(o.beta2, t));
    p[i] -= lr * mhat / (std::sqrt(vhat) + o.eps);
  }
}
}  // namespace

TEST_CASE("AdamW matches a hand-written loop over several steps, with decay on w only") {
  Toy toy;
  AdamWOptions o{0.8, 0.95, 1e-8, 0.3};
  AdamW opt(toy.params(), o);
  std::vector<double> pw = toy.w.to_vector<double>(), pb = toy.b.to_vector<double>();
  std::vector<double> mw(4, 0), vw(4, 0), mb(2, 0), vb(2, 0);
  const double lrs[] = {0.1, 0.05, 0.2, 0.01, 0.07};
  for (int s = 0; s < 5; ++s) {
    apply_grads(toy, s);
    opt.step(lrs[s]);
    opt.zero_grad();
    reference_adamw(pw, mw, vw, grad_at(s, 4, 100), s + 1, lrs[s], o.weight_decay, o);
    reference_adamw(pb, mb, vb, grad_at(s, 2, 200), s + 1, lrs[s], 0.0, o);
    std::vector<double> w = toy.w.to_vector<double>(), b = toy.b.to_vector<double>();
    for (size_t i = 0; i < 4; ++i) CHECK(w[i] == doctest::Approx(pw[i]).epsilon(1e-13));
    for (size_t i = 0; i < 2; ++i) CHECK(b[i] == doctest::Approx(pb[i]).epsilon(1e-13));
  }
  CHECK(opt.state()[0].step == 5);
  std::vector<double> m = opt.state()[0].exp_avg.to_vector<double>();
  for (size_t i = 0; i < 4; ++i) CHECK(m[i] == doctest::Approx(mw[i]).epsilon(1e-13));
}

TEST_CASE("AdamW's first step moves every coordinate by lr (bias correction), decay multiplies by 1 - lr*wd") {
  Toy toy;
  std::vector<double> w0 = toy.w.to_vector<double>(), b0 = toy.b.to_vector<double>();
  AdamW opt(toy.params(), AdamWOptions{0.9, 0.999, 0.0, 0.5});
  apply_grads(toy, 0);
  opt.step(0.01);
  // Without bias correction the step would be (1-β1)/sqrt(1-β2) · lr ≈ 3.16 · lr.
  std::vector<double> b = toy.b.to_vector<double>(), gb = grad_at(0, 2, 200);
  for (size_t i = 0; i < 2; ++i) CHECK(b[i] == doctest::Approx(b0[i] - 0.01 * (gb[i] > 0 ? 1 : -1)).epsilon(1e-12));
  std::vector<double> w = toy.w.to_vector<double>(), gw = grad_at(0, 4, 100);
  for (size_t i = 0; i < 4; ++i)
    CHECK(w[i] == doctest::Approx(w0[i] * (1 - 0.01 * 0.5) - 0.01 * (gw[i] > 0 ? 1 : -1)).epsilon(1e-12));
}

TEST_CASE("AdamW skips parameters without a gradient and round-trips its state") {
  Toy toy;
  AdamW opt(toy.params(), AdamWOptions{});
  Tensor loss = sum(mul(toy.w, toy.w));  // b gets no gradient
  loss.backward();
  std::vector<double> b0 = toy.b.to_vector<double>();
  opt.step(0.1);
  CHECK(toy.b.to_vector<double>() == b0);
  CHECK(opt.state()[0].step == 1);
  CHECK(opt.state()[1].step == 0);

  Toy other;
  AdamW copy(other.params(), AdamWOptions{});
  copy.load_state_dict(opt.state_dict());
  CHECK(copy.state()[0].step == 1);
  CHECK(copy.state()[0].exp_avg_sq.to_vector<double>() == opt.state()[0].exp_avg_sq.to_vector<double>());
  NamedTensors bad = opt.state_dict();
  bad[1].second = zeros({3}, DType::Float64);
  CHECK_THROWS_WITH_AS(copy.load_state_dict(bad), doctest::Contains("w.exp_avg"), Error);
  bad = opt.state_dict();
  bad.pop_back();
  CHECK_THROWS_AS(copy.load_state_dict(bad), Error);
}

TEST_CASE("learning-rate schedule: linear warmup, cosine decay to the floor") {
  LrSchedule s{1e-3, 10, 110, 1e-4};
  CHECK(s.at(0) == doctest::Approx(1e-4));  // 1/10 of the peak
  CHECK(s.at(4) == doctest::Approx(5e-4));
  CHECK(s.at(9) == doctest::Approx(1e-3));
  CHECK(s.at(10) == doctest::Approx(1e-3));
  CHECK(s.at(60) == doctest::Approx(5.5e-4));  // halfway: cos(π/2) = 0
  CHECK(s.at(35) == doctest::Approx(1e-4 + 0.5 * 9e-4 * (1 + std::cos(std::numbers::pi / 4))));
  CHECK(s.at(110) == doctest::Approx(1e-4));
  CHECK(s.at(500) == doctest::Approx(1e-4));
  for (int64_t i = 10; i < 110; ++i) CHECK(s.at(i + 1) <= s.at(i));
  LrSchedule flat{2e-3, 0, 1, 0.0};
  CHECK(flat.at(0) == doctest::Approx(2e-3));
}

TEST_CASE("clip_grad_norm returns the global norm and scales gradients above the limit") {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({1}, DType::Float64).requires_grad_();
  auto set = [&] {
    a.zero_grad();
    b.zero_grad();
    sum(mul(a, from_vector<float>({3, 0}))).backward();
    sum(mul(b, from_vector<double>({4}))).backward();
  };
  set();
  CHECK(clip_grad_norm({a, b}, 10.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_vector<float>() == std::vector<float>{3, 0});  // below the limit: untouched
  CHECK(clip_grad_norm({a, b}, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_vector<float>()[0] == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(b.grad().to_vector<double>()[0] == doctest::Approx(0.8).epsilon(1e-6));
  set();
  CHECK(clip_grad_norm({a, b}, 0.0) == doctest::Approx(5.0));  // 0 disables clipping
  CHECK(b.grad().to_vector<double>()[0] == 4.0);
  Tensor c = zeros({1}).requires_grad_();
  sum(mul(c, from_vector<float>({INFINITY}))).backward();
  CHECK(std::isinf(clip_grad_norm({a, c}, 1.0)));
  CHECK(a.grad().to_vector<float>()[0] == 3.0f);  // non-finite: nothing scaled
}
