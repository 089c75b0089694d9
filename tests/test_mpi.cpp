// Suite "mpi", part 1: run by mpirun on 2 and 3 ranks (tests/meson.build). The collectives of
// World, the gradient sum of GradientReducer against a loop over the ranks' gradients in rank
// order (bit for bit), a data-parallel Trainer against the one-process Trainer with
// grad_accum R that every rank also runs by itself (losses, norms and weights bit for bit),
// and the faults: a non-finite loss or an error on one rank stops every rank before any update.
// Every rank runs every case; each must call the same collectives in the same order.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

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
World* g_world = nullptr;

TrainConfig tiny_train(int64_t grad_accum, int64_t bucket_bytes, bool overlap) {
  TrainConfig t;
  t.steps = 4;
  t.lr = 1e-2;
  t.warmup = 1;
  t.grad_clip = 0.5;  // active on a fresh model
  t.grad_accum = grad_accum;
  t.bucket_bytes = bucket_bytes;
  t.overlap = overlap;
  return t;
}

// A gradient whose sum depends on the order of addition: magnitudes spread over 2^±20.
std::vector<float> rank_gradient(int rank, size_t param, int64_t n) {
  Generator g(uint64_t(1000 * rank + param));
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = float((g.next_uniform() - 0.5) * std::ldexp(1.0, int(g.next_uniform() * 40) - 20));
  return v;
}
}  // namespace

TEST_CASE("World: rank and size, allgather in rank order, together and check_same name the ranks") {
  World& w = *g_world;
  REQUIRE(w.size() >= 2);
  CHECK(w.rank() >= 0);
  CHECK(w.rank() < w.size());
  const std::vector<std::string> all = w.allgather(std::string(size_t(w.rank() + 1), char('a' + w.rank())));
  REQUIRE(all.size() == size_t(w.size()));
  for (int p = 0; p < w.size(); ++p) CHECK(all[size_t(p)] == std::string(size_t(p + 1), char('a' + p)));

  const int bad = w.size() - 1;
  std::string message;
  try {
    w.together([&] {
      if (w.rank() == bad) throw Error("boom on " + std::to_string(w.rank()));
    });
  } catch (const CollectiveError& e) {
    message = e.what();
  }
  CHECK(message.find("1 of " + std::to_string(w.size()) + " ranks failed") != std::string::npos);
  CHECK(message.find("rank " + std::to_string(bad) + ": boom on " + std::to_string(bad)) != std::string::npos);

  CHECK_THROWS_WITH_AS(w.together([] { throw Error("same everywhere"); }),
                       doctest::Contains("every rank failed alike: same everywhere"), CollectiveError);
  CHECK_NOTHROW(w.together([] {}));
  CHECK_NOTHROW(w.check_same("a constant", "x"));
  CHECK_THROWS_WITH_AS(w.check_same("the rank's parity", std::to_string(w.rank() == bad)),
                       doctest::Contains(("rank(s) " + std::to_string(bad) + " differ from rank 0").c_str()), CollectiveError);
}

TEST_CASE("GradientReducer: every rank gets ((g_0 + g_1) + ...) + g_R-1 bit for bit, in any bucketing") {
  World& w = *g_world;
  const int R = w.size();
  // Sizes that do not divide by R; one parameter no rank has a gradient for, one only the last rank has.
  const std::vector<Shape> shapes = {{7, 5}, {13}, {3, 3, 3}, {1}, {64, 3}, {5}};
  const size_t none = 3, last_only = 5;
  for (const int64_t bucket_bytes : {int64_t(1) << 20, int64_t(64), int64_t(4)})
    for (const bool overlap : {true, false}) {
      INFO("bucket_bytes " << bucket_bytes << ", overlap " << overlap << ", rank " << w.rank());
      TensorList params;
      for (const Shape& s : shapes) params.push_back(zeros(s).requires_grad_());
      GradientReducer reducer(params, w, bucket_bytes, overlap);
      CHECK(reducer.num_buckets() >= 1);
      for (int step = 0; step < 2; ++step) {
        reducer.begin_step();
        LeafHook hook = reducer.hook(true);
        for (size_t i = params.size(); i-- > 0;) {  // the backward's order: last parameter first
          if (i == none || (i == last_only && w.rank() != R - 1)) continue;
          params[i].impl()->grad = from_vector<float>(rank_gradient(w.rank() + step, i, params[i].numel()), params[i].shape()).impl_ptr();
          hook(params[i]);
        }
        reducer.finish();
        for (size_t i = 0; i < params.size(); ++i) {
          if (i == none) {
            CHECK_FALSE(params[i].grad().defined());
            continue;
          }
          std::vector<float> sum(size_t(params[i].numel()), 0.0f);
          for (int p = 0; p < R; ++p) {
            if (i == last_only && p != R - 1) continue;
            const std::vector<float> g = rank_gradient(p + step, i, params[i].numel());
            for (size_t j = 0; j < sum.size(); ++j) sum[j] += g[j];
          }
          REQUIRE(params[i].grad().defined());
          CHECK(same_bits(params[i].grad(), from_vector<float>(sum, params[i].shape())));
          params[i].zero_grad();
        }
      }
    }
}

// With grad_accum K > 1 on each rank, rank r first sums its own K micro-batches: the grouping
// (g_0 + g_1) + (g_2 + g_3) differs from one process's ((g_0 + g_1) + g_2) + g_3, so only K = 1
// is bit-identical; K = 2 is checked to rounding.
TEST_CASE("Trainer on R ranks: the losses, norms and weights of one process with grad_accum R, bit for bit") {
  World& w = *g_world;
  const int64_t R = w.size();
  const TokenData data = ragged_mqar(36);
  for (const int64_t K : {int64_t(1), int64_t(2)})
    for (const int64_t bucket_bytes : {int64_t(1) << 20, int64_t(256)})
      for (const bool overlap : {true, false}) {
        if (K == 2 && !overlap) continue;
        INFO("grad_accum " << K << " per rank, bucket_bytes " << bucket_bytes << ", overlap " << overlap << ", rank " << w.rank());
        Generator init_a(11), init_b(11);
        LanguageModel alone_model(tiny_selective_config(), init_a), dp_model(tiny_selective_config(), init_b);
        BatchLoader alone_loader(data, 12, 3), dp_loader(data, 12, 3);
        Trainer alone(alone_model, alone_loader, tiny_train(K * R, bucket_bytes, overlap));  // this process by itself
        Trainer dp(dp_model, dp_loader, tiny_train(K, bucket_bytes, overlap), &w);
        CHECK(dp.reduce_bytes() == alone.reduce_bytes());
        for (int s = 0; s < 4; ++s) {
          const StepStats a = alone.step(), b = dp.step();
          if (K == 1) {
            CHECK(a.loss == b.loss);  // exact: same bits
            CHECK(a.grad_norm == b.grad_norm);
          } else {
            CHECK(a.loss == doctest::Approx(b.loss).epsilon(1e-6));
            CHECK(a.grad_norm == doctest::Approx(b.grad_norm).epsilon(1e-5));
          }
          CHECK(a.accuracy == b.accuracy);
          CHECK(a.tokens == b.tokens);
        }
        const auto pa = alone_model.named_parameters(), pb = dp_model.named_parameters();
        for (size_t i = 0; i < pa.size(); ++i) {
          INFO(pa[i].name);
          if (K == 1) {
            CHECK(same_bits(pa[i].value, pb[i].value));
            continue;
          }
          const std::vector<double> x = testutil::values(pa[i].value), y = testutil::values(pb[i].value);
          double worst = 0;
          for (size_t j = 0; j < x.size(); ++j) worst = std::max(worst, std::abs(x[j] - y[j]));
          CHECK(worst < 1e-5);
        }
      }
}

TEST_CASE("Faults: a non-finite loss or an error on one rank stops every rank before the update") {
  World& w = *g_world;
  const int bad = w.size() - 1;
  const TokenData data = ragged_mqar(36);
  auto snapshot = [](const LanguageModel& m) {
    std::vector<Tensor> v;
    for (const Tensor& p : m.parameters()) v.push_back(core::clone(p));
    return v;
  };
  auto unchanged = [](const LanguageModel& m, const std::vector<Tensor>& before) {
    const TensorList now = m.parameters();
    for (size_t i = 0; i < now.size(); ++i)
      if (!same_bits(now[i], before[i])) return false;
    return true;
  };
  {  // NaN in one rank's weights: its loss is not finite
    Generator init(5);
    LanguageModel model(tiny_selective_config(), init);
    BatchLoader loader(data, 12, 3);
    Trainer trainer(model, loader, tiny_train(1, 1 << 20, true), &w);
    if (w.rank() == bad) {
      NoGradGuard ng;
      model.lm_head.weight.data<float>()[3] = NAN;
    }
    const std::vector<Tensor> before = snapshot(model);
    CHECK_THROWS_WITH_AS(trainer.step(), doctest::Contains(("loss is not finite on rank " + std::to_string(bad)).c_str()),
                         TrainingDiverged);
    CHECK(trainer.step_count() == 0);
    CHECK(unchanged(model, before));
  }
  {  // one rank's data holds a token outside the vocabulary: its forward throws
    TokenData mine{core::clone(data.inputs), core::clone(data.labels)};
    if (w.rank() == bad) mine.inputs.data<int64_t>()[0] = 999;
    for (int64_t i = 1; i < mine.inputs.numel() && w.rank() == bad; i += 17) mine.inputs.data<int64_t>()[i] = 999;
    Generator init(5);
    LanguageModel model(tiny_selective_config(), init);
    BatchLoader loader(mine, 12, 3);
    Trainer trainer(model, loader, tiny_train(1, 1 << 20, true), &w);
    const std::vector<Tensor> before = snapshot(model);
    std::string message;
    try {
      trainer.step();
    } catch (const CollectiveError& e) {
      message = e.what();
    }
    CHECK(message.find("step 1 failed on\n  rank " + std::to_string(bad) + ": ") != std::string::npos);
    CHECK(message.find("999") != std::string::npos);
    CHECK(trainer.step_count() == 0);
    CHECK(unchanged(model, before));
  }
}

int main(int argc, char** argv) {
  World world(argc, argv);
  g_world = &world;
  doctest::Context context(argc, argv);
  const int failed = context.run();
  // Every rank's verdict: one failing rank fails the test on all.
  const std::vector<std::string> verdicts = world.allgather(failed ? "1" : "0");
  int any = 0;
  for (const std::string& v : verdicts) any |= v == "1";
  if (world.rank() == 0) std::printf("mpi suite on %d ranks: %s\n", world.size(), any ? "FAILED" : "passed on every rank");
  return any;
}
