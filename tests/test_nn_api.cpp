// The PyTorch-style API of nn/: losses against float64 loops of their definitions, SGD against a
// loop of PyTorch's update equations, the initialisers' moments against their formulas.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <filesystem>
#include <string>

#include "rotor/nn/checkpoint.h"
#include "rotor/nn/containers.h"
#include "rotor/nn/init.h"
#include "rotor/nn/layers.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/optim.h"
#include "rotor/nn/sampling.h"
#include "rotor/nn/trainer.h"

using namespace rotor;
using namespace rotor::nn;

namespace {
std::vector<double> vals(const Tensor& t) {
  return core::contiguous(core::to_dtype(t.detach(), DType::Float64)).to_vector<double>();
}

struct TempPath {
  std::string path;
  TempPath() {
    char tmpl[] = "/tmp/rotor_nn_api_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempPath() { std::filesystem::remove_all(path); }
};

// log(1 + e^-x) by cases in long double: the reference the stable form must match.
double softplus_neg_ref(double x) {
  const long double lx = x;
  return double(lx > 0 ? std::log1p(std::exp(-lx)) : -lx + std::log1p(std::exp(lx)));
}
}  // namespace

TEST_CASE("mse_loss matches a float64 loop for every reduction") {
  Generator gen(1);
  Tensor x = randn({5, 7}, gen), y = randn({5, 7}, gen);
  const std::vector<double> xv = vals(x), yv = vals(y);
  double s = 0;
  std::vector<double> each;
  for (size_t i = 0; i < xv.size(); ++i) each.push_back((xv[i] - yv[i]) * (xv[i] - yv[i])), s += each.back();
  CHECK(mse_loss(x, y).item() == doctest::Approx(s / 35).epsilon(1e-5));
  CHECK(mse_loss(x, y, Reduction::Sum).item() == doctest::Approx(s).epsilon(1e-5));
  const std::vector<double> none = vals(mse_loss(x, y, Reduction::None));
  REQUIRE(none.size() == each.size());
  for (size_t i = 0; i < each.size(); ++i) CHECK(none[i] == doctest::Approx(each[i]).epsilon(1e-6));
  CHECK_THROWS_AS(mse_loss(x, randn({5, 1}, gen)), Error);
  CHECK_THROWS_AS(mse_loss(x, to_dtype(y, DType::Float64)), Error);
  CHECK(reduction_from_name("sum") == Reduction::Sum);
  CHECK_THROWS_AS(reduction_from_name("avg"), Error);
}

TEST_CASE("binary_cross_entropy_with_logits matches a float64 loop, stays finite for large logits") {
  Generator gen(2);
  const int64_t N = 6, C = 4;
  // Logits out to ±200: log(sigmoid(-200)) is -inf in float64 if computed naively.
  Tensor x = rand({N, C}, gen, DType::Float64, -200.0, 200.0);
  Tensor y = rand({N, C}, gen, DType::Float64, 0.0, 1.0);
  Tensor pw = rand({C}, gen, DType::Float64, 0.5, 3.0), w = rand({N, 1}, gen, DType::Float64, 0.1, 2.0);
  const std::vector<double> xv = vals(x), yv = vals(y), pv = vals(pw), wv = vals(w);
  std::vector<double> plain, weighted;
  double plain_sum = 0, weighted_sum = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const double xi = xv[size_t(i * C + c)], yi = yv[size_t(i * C + c)];
      // -[y log σ(x) + (1-y) log(1-σ(x))] with log σ(x) = -softplus(-x), log(1-σ(x)) = -x - softplus(-x)
      const double l = yi * softplus_neg_ref(xi) + (1 - yi) * (xi + softplus_neg_ref(xi));
      const double lw = wv[size_t(i)] * (pv[size_t(c)] * yi * softplus_neg_ref(xi) + (1 - yi) * (xi + softplus_neg_ref(xi)));
      plain.push_back(l), weighted.push_back(lw);
      plain_sum += l, weighted_sum += lw;
    }
  CHECK(binary_cross_entropy_with_logits(x, y).item() == doctest::Approx(plain_sum / double(N * C)).epsilon(1e-12));
  CHECK(binary_cross_entropy_with_logits(x, y, Reduction::Sum, w, pw).item() ==
        doctest::Approx(weighted_sum).epsilon(1e-12));
  const std::vector<double> none = vals(binary_cross_entropy_with_logits(x, y, Reduction::None, w, pw));
  for (size_t i = 0; i < none.size(); ++i) CHECK(none[i] == doctest::Approx(weighted[i]).epsilon(1e-12));
  // float32 at ±200: finite, and the gradient is σ(x) - y.
  Tensor x32 = to_dtype(x, DType::Float32).requires_grad_();
  Tensor loss = binary_cross_entropy_with_logits(x32, to_dtype(y, DType::Float32), Reduction::Sum);
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  const std::vector<double> g = vals(x32.grad());
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(1 / (1 + std::exp(-xv[i])) - yv[i]).epsilon(1e-5));
  CHECK_THROWS_AS(binary_cross_entropy_with_logits(x, y, Reduction::Mean, Tensor(), ones({C + 1}, DType::Float64)), Error);
}

namespace {
// PyTorch's SGD, written out in float64 for one parameter vector.
struct SgdRef {
  std::vector<double> p, buf;
  bool started = false;
  void step(const std::vector<double>& g, double lr, const SGDOptions& o) {
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + o.weight_decay * p[i];
      if (o.momentum != 0) {
        buf[i] = started ? o.momentum * buf[i] + (1 - o.dampening) * d : d;
        d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
    started = true;
  }
};
}  // namespace

TEST_CASE("SGD follows PyTorch's update equations: plain, momentum, dampening, nesterov, weight decay") {
  for (const SGDOptions& o : {SGDOptions{}, SGDOptions{0.9, 0.0, 0.0, false}, SGDOptions{0.8, 0.3, 0.01, false},
                              SGDOptions{0.9, 0.0, 0.05, true}}) {
    Generator gen(3);
    Tensor w = randn({3, 5}, gen, DType::Float64).requires_grad_();
    SgdRef ref{vals(w), std::vector<double>(15, 0.0)};
    SGD opt({{"w", w, true}}, o);
    for (int t = 0; t < 6; ++t) {
      // The loss Σ sin(w)·c has gradient cos(w)·c: it changes with w, so the order of terms shows.
      Tensor c = randn({3, 5}, gen, DType::Float64);
      opt.zero_grad();
      sum(sin(w) * c).backward();
      const std::vector<double> gw = vals(w.grad());
      const double lr = 0.1 / (t + 1);
      opt.step(lr);
      ref.step(gw, lr, o);
    }
    const std::vector<double> got = vals(w);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(ref.p[i]).epsilon(1e-13));
    CHECK(opt.state()[0].step == 6);
  }
  Tensor w = zeros({2}).requires_grad_();
  CHECK_THROWS_AS(SGD({{"w", w, true}}, SGDOptions{0.0, 0.0, 0.0, true}), Error);
  CHECK_THROWS_AS(SGD({{"w", w, true}}, SGDOptions{0.9, 0.5, 0.0, true}), Error);
}

TEST_CASE("SGD applies weight decay only to parameters flagged for it and skips those without a gradient") {
  Tensor a = ones({2}, DType::Float64).requires_grad_(), b = ones({2}, DType::Float64).requires_grad_();
  SGD opt({{"a", a, true}, {"b", b, false}}, SGDOptions{0.0, 0.0, 0.5, false});
  sum(a * 0.0).backward();
  sum(b * 0.0).backward();
  opt.step(0.1);
  CHECK(vals(a)[0] == doctest::Approx(1 - 0.1 * 0.5));
  CHECK(vals(b)[0] == 1.0);
  Tensor c = ones({2}, DType::Float64).requires_grad_();
  SGD momentum({{"c", c, true}}, SGDOptions{0.9});
  momentum.step(0.1);  // no gradient: untouched, the buffer not started
  CHECK(vals(c)[0] == 1.0);
  CHECK(momentum.state()[0].step == 0);
}

TEST_CASE("SGD state round-trips through its state dict and resumes bit-identically") {
  auto run = [](int split, bool reload) {
    Generator gen(5);
    Tensor w = randn({4}, gen, DType::Float64).requires_grad_();
    auto make = [&] { return SGD({{"w", w, true}}, SGDOptions{0.9, 0.1, 0.01, false}); };
    SGD opt = make();
    for (int t = 0; t < 5; ++t) {
      if (t == split && reload) {
        NamedTensors saved = opt.state_dict();
        for (auto& [n, s] : saved) s = clone(s);
        opt = make();
        opt.load_state_dict(saved);
      }
      opt.zero_grad();
      sum(square(w) * double(t + 1)).backward();
      opt.step(0.05);
    }
    return vals(w);
  };
  CHECK(run(3, true) == run(3, false));
  Tensor w = zeros({4}).requires_grad_();
  SGD opt({{"w", w, true}}, SGDOptions{0.9});
  CHECK_THROWS_AS(opt.load_state_dict({{"w.step", scalar_tensor(1.0, DType::Int64)}}), Error);
  CHECK_THROWS_AS(opt.load_state_dict({{"w.step", scalar_tensor(1.0, DType::Int64)}, {"w.momentum_buffer", zeros({5})}}),
                  Error);
}

namespace {
struct Moments {
  double mean = 0, var = 0, min = 1e300, max = -1e300;
};
Moments moments(const Tensor& t) {
  Moments m;
  const std::vector<double> v = vals(t);
  for (double x : v) m.mean += x, m.min = std::min(m.min, x), m.max = std::max(m.max, x);
  m.mean /= double(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= double(v.size() - 1);
  return m;
}
}  // namespace

TEST_CASE("initialisers draw with PyTorch's fans and gains (moments of 64k draws)") {
  Generator gen(7);
  Tensor w = zeros({256, 64, 4});  // fan_in 256, fan_out 1024, as a conv weight [out, in, k]
  CHECK(fan_in(w) == 256);
  CHECK(fan_out(w) == 1024);
  CHECK(fan_in(zeros({10, 3})) == 3);
  CHECK(fan_out(zeros({10, 3})) == 10);
  CHECK_THROWS_AS(fan_out(zeros({10})), Error);
  CHECK(calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK(calculate_gain("leaky_relu") == doctest::Approx(std::sqrt(2.0 / (1 + 1e-4))));
  CHECK(calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
  CHECK(calculate_gain("selu") == 0.75);
  CHECK_THROWS_AS(calculate_gain("swish"), Error);
  // Expected standard deviations; a uniform U(±b) has std b/√3. 65536 draws: the sample std is
  // within ~0.3% (1σ); 2% is > 6σ.
  struct Case {
    const char* name;
    double std;
    double bound;  // > 0 for the uniform ones
  };
  const double sum_fans = 256 + 1024;
  for (const Case& c : {Case{"kaiming_uniform", std::sqrt(2.0 / 256), std::sqrt(6.0 / 256)},
                        Case{"kaiming_normal", std::sqrt(2.0 / 256), 0},
                        Case{"kaiming_normal_fan_out_relu", std::sqrt(2.0 / 1024), 0},
                        Case{"kaiming_uniform_a_sqrt5", 1.0 / std::sqrt(3.0 * 256), 1.0 / std::sqrt(256.0)},
                        Case{"xavier_uniform", std::sqrt(2.0 / sum_fans), std::sqrt(6.0 / sum_fans)},
                        Case{"xavier_normal_tanh", 5.0 / 3.0 * std::sqrt(2.0 / sum_fans), 0}}) {
    const std::string n = c.name;
    if (n == "kaiming_uniform") kaiming_uniform_(w, gen);
    if (n == "kaiming_normal") kaiming_normal_(w, gen);
    if (n == "kaiming_normal_fan_out_relu") kaiming_normal_(w, gen, 0.0, "fan_out", "relu");
    if (n == "kaiming_uniform_a_sqrt5") kaiming_uniform_(w, gen, std::sqrt(5.0));
    if (n == "xavier_uniform") xavier_uniform_(w, gen);
    if (n == "xavier_normal_tanh") xavier_normal_(w, gen, calculate_gain("tanh"));
    const Moments m = moments(w);
    INFO(n, ": mean ", m.mean, " std ", std::sqrt(m.var), " expected ", c.std);
    CHECK(std::abs(m.mean) < 0.02 * c.std);
    CHECK(std::sqrt(m.var) == doctest::Approx(c.std).epsilon(0.02));
    if (c.bound > 0) {
      CHECK(m.max <= c.bound);
      CHECK(m.min >= -c.bound);
      CHECK(m.max > 0.99 * c.bound);
    }
  }
  normal_(w, gen, 3.0, 0.5);
  const Moments m = moments(w);
  CHECK(m.mean == doctest::Approx(3.0).epsilon(0.01));
  CHECK(std::sqrt(m.var) == doctest::Approx(0.5).epsilon(0.02));
  uniform_(w, gen, -2.0, 4.0);
  const Moments u = moments(w);
  CHECK(u.mean == doctest::Approx(1.0).epsilon(0.02));
  CHECK(std::sqrt(u.var) == doctest::Approx(6.0 / std::sqrt(12.0)).epsilon(0.02));
  CHECK(u.min >= -2.0);
  CHECK(u.max < 4.0);
  ones_(w);
  CHECK(moments(w).min == 1.0);
  CHECK(moments(w).max == 1.0);
  constant_(w, -0.5);
  CHECK(moments(w).mean == -0.5);
  zeros_(w);
  CHECK(moments(w).max == 0.0);
  CHECK_THROWS_AS(kaiming_uniform_(w, gen, 0.0, "fan_avg"), Error);
  CHECK_THROWS_AS(kaiming_normal_(w, gen, 0.0, "fan_in", "gelu"), Error);
}

// ---- containers ----

TEST_CASE("Sequential and ModuleList name children 0, 1, ... as PyTorch does") {
  Generator gen(1);
  Sequential seq;
  seq.emplace_back<Linear>(3, 4, true, gen);
  seq.append([](const Tensor& x) { return relu(x); });
  Linear& last = seq.emplace_back<Linear>(4, 2, false, gen);
  std::vector<std::string> names;
  for (const Parameter& p : seq.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight"});
  CHECK(seq.size() == 3);
  CHECK(&seq.at<Linear>(2) == &last);
  CHECK_THROWS_AS(seq[1], Error);  // a function, not a module
  CHECK_THROWS_AS(seq[3], Error);
  // forward is the composition, by hand.
  Tensor x = randn({5, 3}, gen);
  const Linear& first = seq.at<Linear>(0);
  CHECK(max(abs(seq.forward(x) - last.forward(relu(first.forward(x))))).item() == 0.0);

  ModuleList list;
  list.emplace_back<Linear>(2, 2, true, gen);
  list.append(std::make_shared<Sequential>()).emplace_back<Linear>(2, 3, false, gen);
  names.clear();
  for (const Parameter& p : list.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.0.weight"});
  CHECK(list.size() == 2);
  int64_t n = 0;
  for (const auto& m : list) n += m->num_parameters();
  CHECK(n == 6 + 6);
  CHECK_THROWS_AS(list.at<Linear>(1), Error);
  list.eval();
  CHECK(!list[1].training());
}

// ---- any Module through Trainer and checkpoints ----

namespace {
// y = sin(2x) on [-1, 1] by a 2-layer tanh MLP.
struct Mlp : Module {
  Sequential net;
  explicit Mlp(uint64_t seed, int64_t hidden = 32) {
    Generator gen(seed);
    net.emplace_back<Linear>(1, hidden, true, gen);
    net.append([](const Tensor& x) { return tanh(x); });
    net.emplace_back<Linear>(hidden, 1, true, gen);
    register_module("net", net);
    initialize(*this, InitScheme::Torch, gen);  // PyTorch's Linear init: U(±1/√fan_in)
  }
  Tensor forward(const Tensor& x) const { return net.forward(x); }
};

TokenData sine_data(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = rand({n, 1}, gen, DType::Float32, -1.0, 1.0);
  return {x, sin(x * 2.0)};
}

TrainConfig regression_train(int64_t steps) {
  TrainConfig c;
  c.steps = steps;
  c.lr = 1e-2;
  c.warmup = 10;
  c.weight_decay = 0.0;
  return c;
}

LossFn mse_of(const Mlp& m) {
  return [&m](const TokenData& b) { return BatchLoss{mse_loss(m.forward(b.inputs), b.labels), {}}; };
}

double eval_mse(const Mlp& m, const TokenData& d) {
  NoGradGuard ng;
  return mse_loss(m.forward(d.inputs), d.labels).item();
}

std::vector<std::vector<float>> params_of(const Module& m) {
  std::vector<std::vector<float>> out;
  for (const Parameter& p : m.named_parameters()) out.push_back(core::contiguous(p.value.detach()).to_vector<float>());
  return out;
}
}  // namespace

TEST_CASE("Trainer trains a user-defined MLP regressing sin(2x); checkpoints round-trip and resume exactly") {
  const TokenData train = sine_data(256, 1), test = sine_data(128, 2);
  Mlp model(3);
  const double before = eval_mse(model, test);
  BatchLoader loader(train, 32, 4);
  Trainer trainer(model, loader, regression_train(400), mse_of(model));
  CHECK(trainer.language_model == nullptr);
  for (int i = 0; i < 400; ++i) trainer.step();
  const double after = eval_mse(model, test);
  INFO("test mse before ", before, ", after ", after);
  // Measured over init seeds 3, 4, 5: test mse 0.34-0.99 before, 0.008-0.010 after (the target's
  // variance is ~0.6).
  CHECK(after < 0.02);
  CHECK(after < 0.05 * before);

  TempPath dir;
  const std::string path = dir.path + "/mlp.safetensors";
  save_model(path, model, trainer.step_count());
  Mlp other(99);
  CHECK(params_of(other) != params_of(model));
  load_parameters(other, path);
  CHECK(params_of(other) == params_of(model));
  CHECK(eval_mse(other, test) == eval_mse(model, test));
  CHECK_THROWS_AS(load_model(path), Error);  // no model config: not a LanguageModel file
  Mlp wider(5, 16);
  CHECK_THROWS_WITH_AS(load_parameters(wider, path), doctest::Contains("shape"), Error);

  // 60 steps straight against 30, save, a fresh process's objects, resume, 30 more.
  auto run = [&](bool split) {
    Mlp m(7);
    BatchLoader l(train, 32, 8);
    Trainer t(m, l, regression_train(60), mse_of(m));
    for (int i = 0; i < 30; ++i) t.step();
    if (!split) {
      for (int i = 0; i < 30; ++i) t.step();
      return params_of(m);
    }
    t.save(dir.path + "/run.safetensors");
    Mlp m2(1234);
    BatchLoader l2(train, 32, 8);
    Trainer t2(m2, l2, regression_train(60), mse_of(m2));
    t2.resume(dir.path + "/run.safetensors");
    CHECK(t2.step_count() == 30);
    for (int i = 0; i < 30; ++i) t2.step();
    return params_of(m2);
  };
  CHECK(run(true) == run(false));
}

TEST_CASE("Trainer on a module: gradient accumulation gives the gradient of the whole batch") {
  const TokenData train = sine_data(64, 3);
  auto run = [&](int64_t accum) {
    Mlp m(11);
    BatchLoader l(train, 16, 2);
    TrainConfig c = regression_train(5);
    c.grad_accum = accum;
    Trainer t(m, l, c, mse_of(m));
    double loss = 0;
    for (int i = 0; i < 5; ++i) loss = t.step().loss;
    return std::pair{params_of(m), loss};
  };
  const auto [a, la] = run(1);
  const auto [b, lb] = run(4);
  CHECK(lb == doctest::Approx(la).epsilon(1e-5));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) CHECK(b[i][j] == doctest::Approx(a[i][j]).epsilon(1e-4));
}

// ---- sampling ----

TEST_CASE("sample_token: greedy, temperature, top-k and top-p draw from the truncated distribution") {
  const std::vector<double> logits = {1.0, 3.0, 0.5, 2.5, -1.0, 2.5};
  Generator gen(1);
  CHECK(sample_token(logits, {0.0, 0, 1.0}, gen) == 1);
  CHECK(sample_token(logits, {5.0, 1, 1.0}, gen) == 1);    // top-1 is greedy
  CHECK(sample_token(logits, {5.0, 0, 1e-9}, gen) == 1);   // a tiny nucleus is the top token
  CHECK(sample_token(std::vector<double>{2.0, 2.0}, {0.0, 0, 1.0}, gen) == 0);  // ties to the lower id
  // The expected distribution, written independently: softmax(l / T), keep the top k, renormalise,
  // keep the most likely until the kept mass reaches p.
  const double T = 0.9, p = 0.8;
  const int64_t k = 4;
  std::vector<std::pair<double, int64_t>> probs;
  double z = 0;
  for (size_t i = 0; i < logits.size(); ++i) z += std::exp(logits[i] / T);
  for (size_t i = 0; i < logits.size(); ++i) probs.push_back({std::exp(logits[i] / T) / z, int64_t(i)});
  std::stable_sort(probs.begin(), probs.end(), [](auto& a, auto& b) { return a.first > b.first; });
  probs.resize(size_t(k));
  double zk = 0;
  for (auto& q : probs) zk += q.first;
  std::vector<double> expected(logits.size(), 0.0);
  double mass = 0;
  for (auto& [q, id] : probs) {
    if (mass >= p) break;
    expected[size_t(id)] = q / zk;
    mass += q / zk;
  }
  for (double& e : expected) e /= mass;
  CHECK(expected[4] == 0.0);  // truncated by top-k
  CHECK(expected[2] == 0.0);  // truncated by top-k
  const int n = 40000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) counts[size_t(sample_token(logits, {T, k, p}, gen))]++;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double sd = std::sqrt(expected[i] * (1 - expected[i]) / n);
    INFO("token ", i, ": ", counts[i] / double(n), " expected ", expected[i]);
    CHECK(std::abs(counts[i] / double(n) - expected[i]) <= 5 * sd + 1e-12);
  }
  // Seeded: the same draws again.
  Generator a(5), b(5);
  for (int i = 0; i < 50; ++i) CHECK(sample_token(logits, {1.0, 0, 0.9}, a) == sample_token(logits, {1.0, 0, 0.9}, b));
  CHECK(sample_token(from_vector<float>({0.f, 4.f, 1.f}), {0.0, 0, 1.0}, gen) == 1);
  CHECK_THROWS_AS(sample_token(logits, {-1.0, 0, 1.0}, gen), Error);
  CHECK_THROWS_AS(sample_token(logits, {1.0, -1, 1.0}, gen), Error);
  CHECK_THROWS_AS(sample_token(logits, {1.0, 0, 0.0}, gen), Error);
  CHECK_THROWS_AS(sample_token(logits, {1.0, 0, 1.5}, gen), Error);
  CHECK_THROWS_AS(sample_token(std::vector<double>{1.0, NAN}, {1.0, 0, 1.0}, gen), Error);
}

// ---- LayerNorm and Dropout modules ----

TEST_CASE("LayerNorm module matches a float64 loop and names its parameters as PyTorch") {
  Generator gen(4);
  LayerNorm ln(6, 1e-5);
  {
    NoGradGuard ng;
    copy_(ln.weight, rand({6}, gen, DType::Float32, 0.5, 1.5));
    copy_(ln.bias, rand({6}, gen, DType::Float32, -0.5, 0.5));
  }
  Tensor x = randn({3, 6}, gen) * 3.0 + 1.0;
  const std::vector<double> xv = vals(x), w = vals(ln.weight), b = vals(ln.bias), y = vals(ln.forward(x));
  for (int r = 0; r < 3; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < 6; ++c) mean += xv[size_t(r * 6 + c)] / 6;
    for (int c = 0; c < 6; ++c) var += (xv[size_t(r * 6 + c)] - mean) * (xv[size_t(r * 6 + c)] - mean) / 6;
    for (int c = 0; c < 6; ++c) {
      const double want = (xv[size_t(r * 6 + c)] - mean) / std::sqrt(var + 1e-5) * w[size_t(c)] + b[size_t(c)];
      CHECK(y[size_t(r * 6 + c)] == doctest::Approx(want).epsilon(1e-5));
    }
  }
  std::vector<std::string> names;
  for (const Parameter& p : ln.named_parameters()) names.push_back(p.name + (p.weight_decay ? "+wd" : ""));
  CHECK(names == std::vector<std::string>{"weight", "bias"});  // norms do not decay
  CHECK(LayerNorm(6, 1e-5, false).num_parameters() == 0);
  CHECK(LayerNorm(6, 1e-5, true, false).named_parameters().size() == 1);
  CHECK_THROWS_AS(LayerNorm(0), Error);
}

TEST_CASE("Dropout module: a seeded mask in training mode, the identity in eval mode") {
  Tensor x = ones({200, 100});
  Dropout drop(0.25, 3);
  const std::vector<double> y = vals(drop.forward(x));
  int64_t zeros_seen = 0;
  for (double v : y) {
    if (v == 0.0) ++zeros_seen;
    else CHECK(v == doctest::Approx(1 / 0.75));
  }
  // 20000 draws at p = 0.25: the zero fraction is within 0.006 (2σ); 0.02 is > 6σ.
  CHECK(std::abs(double(zeros_seen) / 20000 - 0.25) < 0.02);
  Dropout again(0.25, 3);
  CHECK(vals(again.forward(x)) == y);
  CHECK(vals(drop.forward(x)) != y);  // the generator moved on
  Sequential seq;
  seq.emplace_back<Dropout>(0.5, 1);
  seq.eval();
  CHECK(vals(seq.forward(x)) == vals(x));
  CHECK_THROWS_AS(Dropout(1.5), Error);
}
