// The autograd engine: the classic reverse-mode bugs one test each, the gradcheck registry,
// and memory behaviour over many steps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "core_test_util.h"

using namespace rotor;
using testutil::error_of;

namespace {
std::vector<double> grad_of(const Tensor& t) { return core::to_dtype(t.grad(), DType::Float64).to_vector<double>(); }
}  // namespace

TEST_CASE("a value used twice accumulates both contributions") {
  Tensor a = from_vector<double>({1.5, -2.0}).requires_grad_();
  Tensor b = a + a;
  Tensor c = sum(b * b);
  c.backward();
  // c = sum(4 a^2), dc/da = 8 a
  CHECK(grad_of(a) == std::vector<double>{12.0, -16.0});
}

TEST_CASE("a diamond sums the gradients of both paths") {
  Tensor x = from_vector<double>({0.3, 1.1, -0.7}).requires_grad_();
  Tensor top = exp(x), bottom = sin(x);
  sum(top * bottom).backward();
  std::vector<double> xs = {0.3, 1.1, -0.7}, g = grad_of(x);
  for (size_t i = 0; i < xs.size(); ++i)
    CHECK(g[i] == doctest::Approx(std::exp(xs[i]) * (std::sin(xs[i]) + std::cos(xs[i]))).epsilon(1e-14));
}

TEST_CASE("a chain 100000 ops deep runs backward and is destroyed without recursion") {
  Tensor x = from_vector<double>({1.0}).requires_grad_();
  {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.00001;
    y.backward();
  }  // the whole chain is freed here
  CHECK(grad_of(x)[0] == doctest::Approx(std::pow(1.00001, 100000)).epsilon(1e-9));
}

TEST_CASE("leaf gradients accumulate across backward calls until zero_grad") {
  Tensor w = from_vector<double>({2.0, 3.0}).requires_grad_();
  sum(w * w).backward();
  sum(w * w).backward();
  CHECK(grad_of(w) == std::vector<double>{8.0, 12.0});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  sum(w * 3.0).backward();
  CHECK(grad_of(w) == std::vector<double>{3.0, 3.0});
}

TEST_CASE("no_grad records nothing and detach stops the gradient") {
  Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK(grad_enabled());
  Tensor z = sum(x * x.detach());  // d/dx = x (the detached factor is a constant)
  z.backward();
  CHECK(grad_of(x) == std::vector<double>{1.0, 2.0});
  CHECK_FALSE(x.detach().requires_grad());
}

TEST_CASE("backward through a view of a view reaches the base") {
  Tensor base = from_vector<double>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4}).requires_grad_();
  Tensor v = select(transpose(slice(base, 1, 1, 4), 0, 1), 0, 1);  // column 2 of base
  sum(v * v).backward();
  std::vector<double> g = grad_of(base), expect(12, 0.0);
  for (int r = 0; r < 3; ++r) expect[size_t(r * 4 + 2)] = 2.0 * (r * 4 + 2);
  CHECK(g == expect);
}

TEST_CASE("modifying a saved tensor in place is caught at backward time") {
  Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor y = exp(x);  // saves its output
  Tensor loss = sum(y);
  {
    NoGradGuard guard;
    add_(y, ones_like(y));
  }
  std::string msg = error_of([&] { loss.backward(); });
  CHECK(msg.find("[backward]") != std::string::npos);
  CHECK(msg.find("modified in place") != std::string::npos);
}

TEST_CASE("mul keeps only the factor the other gradient needs") {
  Tensor w = from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor c = from_vector<double>({3.0, 5.0});
  Tensor loss = sum(mul(w, c));
  {
    NoGradGuard guard;
    add_(w, ones_like(w));  // w itself is not needed: dL/dw = c
  }
  loss.backward();
  CHECK(grad_of(w) == std::vector<double>{3.0, 5.0});

  Tensor loss2 = sum(mul(w, c));
  {
    NoGradGuard guard;
    add_(c, ones_like(c));  // c is needed for dL/dw
  }
  CHECK(error_of([&] { loss2.backward(); }).find("modified in place") != std::string::npos);
}

TEST_CASE("in-place update of a tensor that requires grad is refused in grad mode") {
  Tensor w = from_vector<double>({1.0}).requires_grad_();
  CHECK(error_of([&] { add_(w, ones_like(w)); }).find("[add_]") != std::string::npos);
  NoGradGuard guard;
  add_(w, ones_like(w));
  CHECK(w.item<double>() == 2.0);
}

TEST_CASE("backward on a non-scalar needs an explicit gradient") {
  Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor y = x * 3.0;
  CHECK(error_of([&] { y.backward(); }).find("one-element output") != std::string::npos);
  y.backward(from_vector<double>({1.0, -1.0}));
  CHECK(grad_of(x) == std::vector<double>{3.0, -3.0});
}

TEST_CASE("a second backward needs retain_graph on the first") {
  Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
  Tensor loss = sum(exp(x));
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  CHECK(grad_of(x)[1] == doctest::Approx(2 * std::exp(2.0)));
  std::string msg = error_of([&] { loss.backward(); });
  CHECK(msg.find("retain_graph") != std::string::npos);
}

TEST_CASE("backward on a tensor without history is an error") {
  Tensor x = ones({2});
  CHECK(error_of([&] { sum(x).backward(); }).find("does not require grad") != std::string::npos);
}

TEST_CASE("gradcheck fails a wrong gradient") {
  // An op whose backward is off by a factor: gradcheck must notice.
  static const OpDef kBroken{"broken_square_test_only"};
  auto broken = [](const TensorList& in) {
    Tensor y = core::clone(in[0] * in[0].detach());
    if (needs_grad({in[0]}))
      record(kBroken, {in[0]}, {y}, [s = save(in[0])](const TensorList& g, auto&) {
        return TensorList{g[0] * s.get() * 2.1};
      });
    return TensorList{y};
  };
  Generator gen(3);
  GradcheckReport small = gradcheck(broken, {randn({3}, gen, DType::Float64)});
  CHECK(small.method == "jacobian");
  CHECK_FALSE(small.passed);
  GradcheckReport large = gradcheck(broken, {randn({600}, gen, DType::Float64)});
  CHECK(large.method == "directions");
  CHECK_FALSE(large.passed);
  CHECK(large.max_rel_error() > 0.01);
}

TEST_CASE("gradcheck passes a right gradient in both modes") {
  Generator gen(4);
  auto f = [](const TensorList& in) { return TensorList{sum(tanh(in[0]) * in[1], {1})}; };
  CHECK(gradcheck(f, {randn({4, 5}, gen, DType::Float64), randn({5}, gen, DType::Float64)}).passed);
  GradcheckReport big = gradcheck(f, {randn({40, 30}, gen, DType::Float64), randn({30}, gen, DType::Float64)});
  CHECK(big.method == "directions");
  CHECK(big.passed);
}

TEST_CASE("every registry case passes gradcheck in float64") {
  REQUIRE(gradcheck_registry().size() >= 40);
  for (const GradcheckCase& c : gradcheck_registry()) {
    GradcheckReport r = run_case(c);
    INFO(c.name, ": ", r.summary());
    CHECK(r.passed);
  }
}

TEST_CASE("every differentiable op has a gradcheck case of its own") {
  // An op is covered by a case named after it ("exp", or "matmul_batched" for matmul) whose
  // forward records it; being used inside some other case is not enough.
  std::map<std::string, std::set<std::string>> traced_by_case;
  for (const GradcheckCase& c : gradcheck_registry()) {
    std::vector<std::string> traced;
    set_op_tracer(&traced);
    Generator gen(7);
    TensorList inputs = make_inputs(c, DType::Float64, gen);
    BuiltCase built = build_case(c, DType::Float64, gen);
    for (Tensor& t : inputs) t = core::clone(t).requires_grad_();
    built.fn(inputs);
    set_op_tracer(nullptr);
    traced_by_case[c.name].insert(traced.begin(), traced.end());
  }
  for (const OpDef* op : all_ops()) {
    const std::string name = op->name;
    if (name.find("test_only") != std::string::npos) continue;
    bool covered = false;
    for (const auto& [case_name, ops] : traced_by_case)
      covered |= (case_name == name || case_name.starts_with(name + "_")) && ops.count(name) == 1;
    INFO("op without a gradcheck case of its own: ", name);
    CHECK(covered);
  }
  // The registry is filled by static initializers in every part of the library: a few cases
  // from each part must be there.
  for (const char* name : {"exp", "matmul", "selective_rope", "gla_chunked", "attention", "linear_recurrence",
                           "cross_entropy", "GatedLinearAttention", "LM_hybrid_selective_rope"})
    CHECK_MESSAGE(traced_by_case.count(name) == 1, "missing registry case ", name);
}

TEST_CASE("float32 and float64 gradients of every registry case agree to float32 precision") {
  for (const GradcheckCase& c : gradcheck_registry()) {
    std::vector<std::vector<double>> grads[2];
    for (int p = 0; p < 2; ++p) {
      Generator gen(99);
      const DType dtype = p ? DType::Float32 : DType::Float64;
      TensorList inputs = make_inputs(c, dtype, gen);
      BuiltCase built = build_case(c, dtype, gen);
      for (Tensor& t : inputs) t = core::clone(t).requires_grad_();
      TensorList leaves = inputs;
      leaves.insert(leaves.end(), built.parameters.begin(), built.parameters.end());
      TensorList outs = built.fn(inputs), roots, ups;
      Generator wgen(5);
      for (const Tensor& o : outs) {
        if (!o.requires_grad()) continue;
        roots.push_back(o);
        ups.push_back(core::to_dtype(randn(o.shape(), wgen, DType::Float64), o.dtype()));
      }
      backward(roots, ups);
      for (const Tensor& t : leaves) {
        grads[p].push_back(t.grad().defined() ? grad_of(t) : std::vector<double>(size_t(t.numel()), 0.0));
        t.impl()->grad.reset();
      }
    }
    for (size_t i = 0; i < grads[0].size(); ++i) {
      double scale = 1e-30, worst = 0.0;
      for (double v : grads[0][i]) scale = std::max(scale, std::abs(v));
      for (size_t e = 0; e < grads[0][i].size(); ++e) worst = std::max(worst, std::abs(grads[0][i][e] - grads[1][i][e]));
      // float32 rounds at 6e-8 relative; single ops stay below ~2.5e-7 of the gradient's scale
      // (logsumexp is the worst), whole 2-layer models below ~5e-6: the default 2e-6 and the
      // models' 2e-5 leave room for rounding, not for a bug.
      INFO(c.name, " input ", i, ": max |g32 - g64| = ", worst, " at scale ", scale);
      CHECK(worst <= c.options.float32_agreement * scale);
    }
  }
}

TEST_CASE("10000 training steps on a small model keep the live allocations flat") {
  Generator gen(1);
  Tensor w1 = (randn({8, 16}, gen) * 0.1).requires_grad_();
  Tensor b1 = zeros({16}).requires_grad_();
  Tensor w2 = (randn({16, 1}, gen) * 0.1).requires_grad_();
  Tensor x = randn({32, 8}, gen), target = randn({32, 1}, gen);
  auto step = [&] {
    Tensor h = tanh(matmul(x, w1) + b1);
    Tensor loss = mean(square(matmul(h, w2) - target));
    loss.backward();
    NoGradGuard guard;
    for (Tensor* p : {&w1, &b1, &w2}) {
      add_(*p, p->grad(), -0.01);
      p->zero_grad();
    }
    return loss.item<float>();
  };
  float first = step();
  for (int i = 0; i < 100; ++i) step();
  const MemoryStats before = memory_stats();
  float last = 0;
  for (int i = 0; i < 10000; ++i) last = step();
  const MemoryStats after = memory_stats();
  CHECK(after.live_storages == before.live_storages);
  CHECK(after.live_bytes == before.live_bytes);
  CHECK(last < first);  // and the steps did train
}
