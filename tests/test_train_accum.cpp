// Suite "train", part 4: gradient accumulation. K micro-batches give the update of the whole
// batch (float64, against plain training), their gradients are summed in micro-batch order bit
// for bit (float32, against a hand-written loop: the property data parallelism relies on), and
// the backward's leaf hook fires once per leaf with its final gradient.
#include <doctest/doctest.h>

#include <cmath>

#include "core_test_util.h"
#include "rotor/nn/distributed.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/trainer.h"
#include "train_test_util.h"

using namespace rotor;
using namespace rotor::nn;
using testutil::ragged_mqar;
using testutil::same_bits;
using testutil::tiny_selective_config;

namespace {
TrainConfig accum_train(int64_t grad_accum) {
  TrainConfig t;
  t.steps = 4;
  t.lr = 1e-2;
  t.warmup = 1;
  t.grad_clip = 0.5;  // active on a fresh model
  t.grad_accum = grad_accum;
  return t;
}

struct Run {
  Generator init{11};
  LanguageModel model;
  BatchLoader loader;
  Trainer trainer;
  Run(const TokenData& data, int64_t grad_accum, DType dtype)
      : model(tiny_selective_config(), init, dtype), loader(data, 12, 3), trainer(model, loader, accum_train(grad_accum)) {}
};

int64_t labelled(const TokenData& d) {
  int64_t n = 0;
  for (int64_t i = 0; i < d.labels.numel(); ++i) n += d.labels.data<int64_t>()[i] != kIgnoreIndex;
  return n;
}
}  // namespace

TEST_CASE("grad_accum K: losses, norms and weights of the whole batch (float64), whatever K") {
  const TokenData data = ragged_mqar(24);
  {  // the micro-batches of the first batch differ in labelled positions
    BatchLoader probe(data, 12, 3);
    const TokenData b = probe.next();
    CHECK(labelled(b.rows(0, 3)) != labelled(b.rows(3, 6)));
  }
  Run plain(data, 1, DType::Float64);
  std::vector<StepStats> expected;
  for (int s = 0; s < 4; ++s) expected.push_back(plain.trainer.step());
  CHECK(expected[0].grad_norm > 0.5);  // clipping took part
  for (int64_t K : {2, 3, 4, 6}) {
    INFO("grad_accum " << K);
    Run acc(data, K, DType::Float64);
    for (int s = 0; s < 4; ++s) {
      const StepStats got = acc.trainer.step();
      CHECK(got.loss == doctest::Approx(expected[size_t(s)].loss).epsilon(1e-12));
      CHECK(got.accuracy == expected[size_t(s)].accuracy);
      CHECK(got.grad_norm == doctest::Approx(expected[size_t(s)].grad_norm).epsilon(1e-11));
      CHECK(got.tokens == expected[size_t(s)].tokens);
    }
    auto a = plain.model.named_parameters(), b = acc.model.named_parameters();
    for (size_t i = 0; i < a.size(); ++i) {
      INFO(a[i].name);
      const std::vector<double> x = testutil::values(a[i].value), y = testutil::values(b[i].value);
      double worst = 0;
      for (size_t j = 0; j < x.size(); ++j) worst = std::max(worst, std::abs(x[j] - y[j]));
      CHECK(worst < 1e-10);
    }
  }
}

TEST_CASE("grad_accum K: the gradient is ((g_0 + g_1) + ...) + g_K-1, bit for bit, as a loop computes it") {
  const TokenData data = ragged_mqar(24);
  const int64_t K = 3;
  Run acc(data, K, DType::Float32);
  acc.trainer.step();

  // The reference: each micro-batch's backward alone, weighted by its share of the labels,
  // added into float32 sums in micro-batch order, then the same clipping and AdamW step.
  Generator init(11);
  LanguageModel model(tiny_selective_config(), init);
  BatchLoader loader(data, 12, 3);
  const TrainConfig tc = accum_train(K);
  AdamW opt(model.named_parameters(), AdamWOptions{tc.beta1, tc.beta2, tc.eps, tc.weight_decay});
  const TokenData batch = loader.next();
  const TensorList params = model.parameters();
  std::vector<std::vector<float>> sum(params.size());
  for (size_t i = 0; i < params.size(); ++i) sum[i].assign(size_t(params[i].numel()), 0.0f);
  for (int64_t m = 0; m < K; ++m) {
    const TokenData micro = batch.rows(m * 4, (m + 1) * 4);
    opt.zero_grad();
    Tensor loss = cross_entropy(model.forward(micro.inputs), micro.labels);
    loss.backward(scalar_tensor(double(labelled(micro)) / double(labelled(batch))));
    for (size_t i = 0; i < params.size(); ++i)
      if (Tensor g = params[i].grad(); g.defined())
        for (size_t j = 0; j < sum[i].size(); ++j) sum[i][j] += g.data<float>()[j];
  }
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor g = from_vector<float>(sum[i], params[i].shape());
    params[i].impl()->grad = g.impl_ptr();
  }
  clip_grad_norm(params, tc.grad_clip);
  opt.step(LrSchedule{tc.lr, tc.warmup, tc.steps, tc.min_lr}.at(0));

  auto a = acc.model.named_parameters(), b = model.named_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(same_bits(a[i].value, b[i].value));
  }
}

TEST_CASE("grad_accum: a batch that does not split evenly and a non-finite loss are errors before any update") {
  const TokenData data = ragged_mqar(24);
  Generator init(1);
  LanguageModel model(tiny_selective_config(), init);
  BatchLoader loader(data, 12, 3);
  CHECK_THROWS_WITH_AS(Trainer(model, loader, accum_train(5)), doctest::Contains("does not split"), Error);
  CHECK_THROWS_AS(Trainer(model, loader, accum_train(0)), Error);

  Trainer trainer(model, loader, accum_train(2));
  {
    NoGradGuard ng;
    model.lm_head.weight.data<float>()[3] = NAN;
  }
  std::vector<Tensor> before;
  for (const Tensor& p : model.parameters()) before.push_back(core::clone(p));
  CHECK_THROWS_WITH_AS(trainer.step(), doctest::Contains("loss is not finite"), TrainingDiverged);
  CHECK(trainer.step_count() == 0);
  const TensorList after = model.parameters();
  for (size_t i = 0; i < after.size(); ++i) CHECK(same_bits(after[i], before[i]));
}

TEST_CASE("backward's leaf hook: once per leaf, when its gradient is final") {
  Generator gen(5);
  Tensor a = randn({3}, gen, DType::Float64).requires_grad_(), b = randn({3}, gen, DType::Float64).requires_grad_();
  Tensor c = randn({3}, gen, DType::Float64).requires_grad_();
  // a reaches the loss through three edges, b and c through one each.
  Tensor y = sum(add(mul(a, a), mul(a, b))) + sum(mul(c, zeros({3}, DType::Float64)));
  std::vector<std::pair<const TensorImpl*, std::vector<double>>> seen;
  rotor::backward({y}, {}, false, [&](const Tensor& leaf) {
    seen.emplace_back(leaf.impl(), leaf.grad().defined() ? testutil::values(leaf.grad()) : std::vector<double>{});
  });
  REQUIRE(seen.size() == 3);
  for (const Tensor& t : {a, b, c}) {
    int calls = 0;
    for (const auto& [impl, grad] : seen)
      if (impl == t.impl()) {
        ++calls;
        CHECK(grad == testutil::values(t.grad()));  // what it saw is the final gradient
      }
    CHECK(calls == 1);
  }
  const std::vector<double> va = testutil::values(a), vb = testutil::values(b), ga = testutil::values(a.grad());
  for (size_t i = 0; i < 3; ++i) CHECK(ga[i] == doctest::Approx(2 * va[i] + vb[i]));
}
