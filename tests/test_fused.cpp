// Each fused op against its unfused twin built from ordinary ops: values and every gradient,
// with a random upstream gradient on every output.
#include <doctest/doctest.h>

#include "rotor/autograd/attention.h"
#include "rotor/autograd/fused.h"
#include "rotor/autograd/gla.h"
#include "rotor/autograd/rope.h"
#include "rotor/autograd/scan.h"
#include "rotor/core/parallel.h"

using namespace rotor;

namespace {
using Fn = std::function<TensorList(const TensorList&)>;

double max_abs(const Tensor& t) { return max(abs(core::to_dtype(t, DType::Float64))).item(); }

// Runs fn on fresh leaf copies of inputs with upstream gradients `ups`; returns outputs + grads.
std::pair<TensorList, TensorList> run(const Fn& fn, const TensorList& inputs, const TensorList& ups) {
  TensorList leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.defined() ? core::clone(t).requires_grad_() : Tensor());
  TensorList outs = fn(leaves);
  backward(outs, ups);
  TensorList grads;
  for (const Tensor& t : leaves) grads.push_back(t.defined() ? t.grad() : Tensor());
  return {outs, grads};
}

// max |fused - twin| <= tol * max |twin| for every output and gradient.
void compare(const Fn& fused, const Fn& twin, const TensorList& inputs, double tol, uint64_t seed = 9) {
  TensorList probe = twin(inputs);
  Generator gen(seed);
  TensorList ups;
  for (const Tensor& o : probe) ups.push_back(randn(o.shape(), gen, o.dtype()));
  auto [fo, fg] = run(fused, inputs, ups);
  auto [to, tg] = run(twin, inputs, ups);
  for (size_t i = 0; i < to.size(); ++i) {
    INFO("output ", i);
    CHECK(max_abs(fo[i] - to[i]) <= tol * max_abs(to[i]));
  }
  for (size_t i = 0; i < tg.size(); ++i) {
    if (!tg[i].defined()) continue;
    INFO("gradient of input ", i);
    REQUIRE(fg[i].defined());
    CHECK(max_abs(fg[i] - tg[i]) <= tol * max_abs(tg[i]));
  }
}

// Per-dtype tolerance: float64 agrees to rounding, float32 to a few ulps of accumulated sums.
double tolerance(DType d) { return d == DType::Float64 ? 1e-12 : 2e-5; }
}  // namespace

TEST_CASE("fused selective_rope equals its twin, every gradient included") {
  for (DType d : {DType::Float32, DType::Float64}) {
    Generator gen(1);
    const int64_t B = 2, T = 150, H = 3, D = 10;  // T spans several 64-step phase chunks
    TensorList in = {randn({B, T, H, D}, gen, d), randn({B, T, H, D}, gen, d), rand({B, T, H, D / 2}, gen, d, 0.0, 0.3),
                     rand({1, 1, 1, D / 2}, gen, d, 0.1, 1.0), randn({B, H, D / 2}, gen, d)};
    auto fused = [](const TensorList& x) {
      auto r = selective_rope(x[0], x[1], x[2], x[3], x[4]);
      return TensorList{r.q, r.k, r.final_offset};
    };
    auto twin = [](const TensorList& x) {
      auto r = selective_rope_unfused(x[0], x[1], x[2], x[3], x[4]);
      return TensorList{r.q, r.k, r.final_offset};
    };
    compare(fused, twin, in, tolerance(d));
  }
}

TEST_CASE("fused rope equals its twin") {
  for (DType d : {DType::Float32, DType::Float64}) {
    Generator gen(2);
    TensorList in = {randn({2, 33, 2, 8}, gen, d), randn({2, 33, 2, 8}, gen, d)};
    Tensor f = rope_frequencies(8, 10000.0, d);
    auto fused = [f](const TensorList& x) {
      auto r = rope(x[0], x[1], f, 17);
      return TensorList{r.q, r.k};
    };
    auto twin = [f](const TensorList& x) { return TensorList{rope_unfused(x[0], f, 17), rope_unfused(x[1], f, 17)}; };
    compare(fused, twin, in, tolerance(d));
  }
}

TEST_CASE("fused ops name themselves in shape errors") {
  Tensor q = zeros({1, 4, 2, 6}), phi = zeros({1, 4, 2, 2});
  CHECK_THROWS_WITH_AS(selective_rope(q, q, phi, ones({3})), doctest::Contains("[selective_rope] phi [1, 4, 2, 2]"),
                       Error);
  CHECK_THROWS_WITH_AS(rope(q, zeros({1, 4, 2, 4}), rope_frequencies(6, 1e4)), doctest::Contains("[rope]"), Error);
}

TEST_CASE("fused attention equals its twin: training, streaming and non-causal shapes") {
  struct Case {
    int64_t B, Tq, Tk, H, D, Dv;
    bool causal;
  };
  for (DType d : {DType::Float32, DType::Float64})
    for (Case c : {Case{2, 70, 70, 3, 8, 8, true}, Case{1, 5, 80, 2, 6, 4, true}, Case{1, 1, 33, 2, 4, 4, true},
                   Case{2, 9, 4, 1, 4, 3, false}}) {
      Generator gen(3);
      TensorList in = {randn({c.B, c.Tq, c.H, c.D}, gen, d) * 2.0, randn({c.B, c.Tk, c.H, c.D}, gen, d) * 2.0,
                       randn({c.B, c.Tk, c.H, c.Dv}, gen, d)};
      const bool causal = c.causal;
      auto fused = [causal](const TensorList& x) { return TensorList{attention(x[0], x[1], x[2], -1, causal)}; };
      auto twin = [causal](const TensorList& x) { return TensorList{attention_unfused(x[0], x[1], x[2], -1, causal)}; };
      INFO("Tq ", c.Tq, " Tk ", c.Tk, " causal ", causal);
      compare(fused, twin, in, tolerance(d));
    }
}

TEST_CASE("fused GLA, recurrent and chunked, equals its twin with states in and out") {
  for (DType d : {DType::Float32, DType::Float64})
    for (int64_t T : {1, 63, 70}) {
      Generator gen(4);
      const int64_t B = 2, H = 2, K = 6, V = 5;
      TensorList in = {randn({B, T, H, K}, gen, d), randn({B, T, H, K}, gen, d), randn({B, T, H, V}, gen, d),
                       logsigmoid(randn({B, T, H, K}, gen, d) * 3.0) / 4.0, randn({B, H, K, V}, gen, d)};
      auto twin = [](const TensorList& x) {
        auto r = gla_unfused(x[0], x[1], x[2], x[3], -1, x[4]);
        return TensorList{r.o, r.final_state};
      };
      auto recurrent = [](const TensorList& x) {
        auto r = gla_recurrent(x[0], x[1], x[2], x[3], -1, x[4]);
        return TensorList{r.o, r.final_state};
      };
      auto chunked = [](const TensorList& x) {
        auto r = gla_chunked(x[0], x[1], x[2], x[3], -1, x[4], 16);
        return TensorList{r.o, r.final_state};
      };
      INFO("T = ", T, " dtype ", dtype_name(d));
      compare(recurrent, twin, in, tolerance(d));
      compare(chunked, twin, in, tolerance(d));
    }
}

TEST_CASE("the RoPE trick: GLA on Selective-RoPE-rotated q, k with pair-tied decays is the complex recurrence") {
  // docs/gla.md: both give o_t = scale Σ_{s≤t} (Π γ) (q'_t · k'_s) v_s. Gradients must agree too.
  Generator gen(5);
  const int64_t B = 2, T = 40, H = 2, K = 8, R = K / 2, V = 3;
  const DType d = DType::Float64;
  TensorList in = {randn({B, T, H, K}, gen, d), randn({B, T, H, K}, gen, d), randn({B, T, H, V}, gen, d),
                   logsigmoid(randn({B, T, H, R}, gen, d)), rand({B, T, H, R}, gen, d, -0.5, 0.5)};
  auto real_side = [R](const TensorList& x) {
    // θ_t = Σ_{s≤t} dθ_s: Selective RoPE with φ = dθ and unit temperature; decays tied per pair.
    auto rot = selective_rope(x[0], x[1], x[4], ones({R}, x[0].dtype()));
    Tensor g = concat({x[3], x[3]}, -1);
    return TensorList{gla_chunked(rot.q, rot.k, x[2], g, -1, Tensor(), 16).o};
  };
  auto complex_side = [](const TensorList& x) {
    return TensorList{gla_complex_recurrent(x[0], x[1], x[2], x[3], x[4]).o};
  };
  compare(real_side, complex_side, in, 1e-10);
}

TEST_CASE("rotate equals complex multiplication written with ordinary ops, in both layouts") {
  for (DType d : {DType::Float32, DType::Float64}) {
    Generator gen(6);
    TensorList in = {randn({4, 3, 10}, gen, d), rand({4, 3, 5}, gen, d, -20.0, 20.0)};
    // (a + ib) e^{iθ} = (a cos θ - b sin θ) + i (a sin θ + b cos θ)
    auto half_twin = [](const TensorList& x) {
      Tensor a = narrow(x[0], -1, 0, 5), b = narrow(x[0], -1, 5, 5), c = cos(x[1]), s = sin(x[1]);
      return TensorList{concat({a * c - b * s, a * s + b * c}, -1)};
    };
    auto inter_twin = [](const TensorList& x) {
      Tensor pairs = reshape(x[0], {4, 3, 5, 2});
      Tensor a = select(pairs, -1, 0), b = select(pairs, -1, 1), c = cos(x[1]), s = sin(x[1]);
      return TensorList{reshape(stack({a * c - b * s, a * s + b * c}, -1), {4, 3, 10})};
    };
    compare([](const TensorList& x) { return TensorList{rotate(x[0], x[1])}; }, half_twin, in, tolerance(d));
    compare([](const TensorList& x) { return TensorList{rotate(x[0], x[1], RotaryLayout::Interleaved)}; }, inter_twin,
            in, tolerance(d));
  }
}

TEST_CASE("linear recurrences on the scan equal step-by-step loops of ordinary ops") {
  for (DType d : {DType::Float32, DType::Float64}) {
    Generator gen(8);
    const int64_t B = 2, T = 300, C = 5;
    TensorList real_in = {rand({B, T, C}, gen, d, -1.0, 1.0), randn({B, T, C}, gen, d), randn({B, C}, gen, d)};
    auto real_twin = [T](const TensorList& x) {
      Tensor h = x[2];
      TensorList hs;
      for (int64_t t = 0; t < T; ++t) hs.push_back(h = select(x[0], 1, t) * h + select(x[1], 1, t));
      return TensorList{stack(hs, 1), h};
    };
    auto real_fused = [](const TensorList& x) {
      auto r = linear_recurrence(x[0], x[1], x[2]);
      return TensorList{r.h, r.final_state};
    };
    compare(real_fused, real_twin, real_in, tolerance(d));

    // Complex: (a_re + i a_im)(h_re + i h_im) + b, written out in real arithmetic.
    TensorList cplx_in = {rand({B, T, C, 2}, gen, d, -0.7, 0.7), randn({B, T, C, 2}, gen, d), randn({B, C, 2}, gen, d)};
    auto cplx_twin = [T](const TensorList& x) {
      Tensor hr = select(x[2], -1, 0), hi = select(x[2], -1, 1);
      TensorList hs;
      for (int64_t t = 0; t < T; ++t) {
        Tensor at = select(x[0], 1, t), bt = select(x[1], 1, t);
        Tensor ar = select(at, -1, 0), ai = select(at, -1, 1);
        Tensor nr = ar * hr - ai * hi + select(bt, -1, 0), ni = ar * hi + ai * hr + select(bt, -1, 1);
        hr = nr, hi = ni;
        hs.push_back(stack({hr, hi}, -1));
      }
      return TensorList{stack(hs, 1), stack({hr, hi}, -1)};
    };
    auto cplx_fused = [](const TensorList& x) {
      auto r = complex_linear_recurrence(x[0], x[1], x[2]);
      return TensorList{r.h, r.final_state};
    };
    compare(cplx_fused, cplx_twin, cplx_in, tolerance(d));
  }
}

TEST_CASE("cumsum runs on the scan: a long single sequence matches a double-precision running sum") {
  Generator gen(9);
  const int64_t T = 1 << 20;
  Tensor x = rand({T}, gen, DType::Float64, -1.0, 1.0);
  std::vector<double> v = x.to_vector<double>(), y = cumsum(x, 0).to_vector<double>(), r = cumsum(x, 0, true).to_vector<double>();
  long double run = 0, worst = 0, back = 0;
  for (int64_t t = 0; t < T; ++t) worst = std::max<long double>(worst, std::abs((run += v[size_t(t)]) - y[size_t(t)]));
  for (int64_t t = T - 1; t >= 0; --t) worst = std::max<long double>(worst, std::abs((back += v[size_t(t)]) - r[size_t(t)]));
  CHECK(double(worst) < 1e-10);  // 2^20 additions of O(1) terms: ~1e-13 of accumulated rounding
}

TEST_CASE("fused layer ops equal their twins: linear, swiglu, gated_rms_norm, l2_norm, causal_conv1d") {
  for (DType d : {DType::Float32, DType::Float64}) {
    INFO("dtype ", dtype_name(d));
    Generator gen(10);
    // Row counts and widths that leave ragged SIMD tails; a transposed (strided) input for linear.
    TensorList lin = {randn({3, 7, 37}, gen, d), randn({21, 37}, gen, d), randn({21}, gen, d)};
    compare([](const TensorList& x) { return TensorList{linear(x[0], x[1], x[2]), linear(transpose(x[0], 0, 1), x[1])}; },
            [](const TensorList& x) {
              return TensorList{linear_unfused(x[0], x[1], x[2]), linear_unfused(transpose(x[0], 0, 1), x[1])};
            },
            lin, tolerance(d));
    compare([](const TensorList& x) { return TensorList{swiglu(x[0])}; },
            [](const TensorList& x) { return TensorList{swiglu_unfused(x[0])}; }, {randn({5, 9, 2 * 21}, gen, d) * 3.0},
            tolerance(d));
    TensorList norm_in = {randn({300, 19}, gen, d), rand({19}, gen, d, 0.5, 1.5), randn({300, 19}, gen, d) * 2.0};
    compare([](const TensorList& x) { return TensorList{gated_rms_norm(x[0], x[1], x[2], 1e-5)}; },
            [](const TensorList& x) { return TensorList{gated_rms_norm_unfused(x[0], x[1], x[2], 1e-5)}; }, norm_in,
            tolerance(d));
    compare([](const TensorList& x) { return TensorList{l2_norm(x[0], 1e-6)}; },
            [](const TensorList& x) { return TensorList{l2_norm_unfused(x[0], 1e-6)}; }, {norm_in[0]}, tolerance(d));
    for (int64_t T : {1, 3, 40}) {
      INFO("T ", T);
      TensorList conv = {randn({3, T, 21}, gen, d), randn({21, 1, 4}, gen, d), randn({21}, gen, d), randn({3, 3, 21}, gen, d)};
      for (bool act : {false, true}) {
        compare([act](const TensorList& x) { return TensorList{causal_conv1d(x[0], x[1], x[2], x[3], act)}; },
                [act](const TensorList& x) { return TensorList{causal_conv1d_unfused(x[0], x[1], x[2], x[3], act)}; },
                conv, tolerance(d));
        compare([act](const TensorList& x) { return TensorList{causal_conv1d(x[0], x[1], Tensor(), Tensor(), act)}; },
                [act](const TensorList& x) {
                  return TensorList{causal_conv1d_unfused(x[0], x[1], Tensor(), Tensor(), act)};
                },
                {conv[0], conv[1]}, tolerance(d));
      }
    }
  }
}

TEST_CASE("fused layer ops give the same bits on one thread and on many") {
  Generator gen(11);
  TensorList in = {randn({64, 33, 40}, gen), randn({40, 1, 4}, gen), randn({64 * 33, 2 * 300}, gen),
                   randn({64 * 33 * 4, 16}, gen), rand({16}, gen, DType::Float32, 0.5, 1.5), randn({700, 40}, gen)};
  auto run_all = [&] {
    TensorList leaves;
    for (const Tensor& t : in) leaves.push_back(core::clone(t).requires_grad_());
    TensorList outs = {causal_conv1d(leaves[0], leaves[1], Tensor(), Tensor(), true), swiglu(leaves[2]),
                       gated_rms_norm(leaves[3], leaves[4], leaves[3] * 0.5, 1e-5), linear(leaves[5], select(leaves[0], 0, 0))};
    Tensor loss;
    for (const Tensor& o : outs) loss = loss.defined() ? loss + sum(o * o) : sum(o * o);
    loss.backward();
    TensorList r = outs;
    for (const Tensor& l : leaves) r.push_back(l.grad());
    return r;
  };
  set_num_threads(1);
  TensorList one = run_all();
  set_num_threads(0);
  TensorList many = run_all();
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("tensor ", i);
    CHECK(max_abs(one[i] - many[i]) == 0.0);
  }
}
