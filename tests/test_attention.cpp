// Suite "attention": the tiled FlashAttention-style kernels against the plain O(T²) loops, finite
// differences, and identities of causal attention (streaming, decoding, thread count).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/core/generator.h"
#include "rotor/core/parallel.h"
#include "rotor/kernels/attention.h"

using namespace rotor;
using kernels::AttentionDims;

namespace {

template <class T>
constexpr double eps = std::numeric_limits<T>::epsilon();

struct Inputs {
  AttentionDims d;
  bool causal = true;
  std::vector<double> q, k, v, dout;
};

int64_t q_size(const AttentionDims& d) { return d.B * d.Tq * d.H * d.D; }
int64_t k_size(const AttentionDims& d) { return d.B * d.Tk * d.H * d.D; }
int64_t v_size(const AttentionDims& d) { return d.B * d.Tk * d.H * d.Dv; }
int64_t o_size(const AttentionDims& d) { return d.B * d.Tq * d.H * d.Dv; }
int64_t lse_size(const AttentionDims& d) { return d.B * d.H * d.Tq; }

std::vector<double> normal(int64_t n, Generator& gen, double stddev = 1.0) {
  std::vector<double> x(static_cast<size_t>(n));
  for (auto& e : x) e = stddev * gen.next_normal();
  return x;
}

Inputs make_inputs(const AttentionDims& d, bool causal, uint64_t seed, double qk_std = 1.0) {
  Generator gen(seed);
  return {d, causal, normal(q_size(d), gen, qk_std), normal(k_size(d), gen, qk_std), normal(v_size(d), gen),
          normal(o_size(d), gen)};
}

template <class T, class S>
std::vector<T> cast(const std::vector<S>& x) {
  return std::vector<T>(x.begin(), x.end());
}

// Every output of one forward + backward, in double whatever the precision it was computed in.
struct Outputs {
  std::vector<double> o, lse, dq, dk, dv;
};

template <class T>
Outputs run_tiled(const Inputs& in) {
  const AttentionDims& d = in.d;
  const T scale = T(kernels::attention_default_scale(d.D));
  auto q = cast<T>(in.q), k = cast<T>(in.k), v = cast<T>(in.v), dout = cast<T>(in.dout);
  std::vector<T> o(size_t(o_size(d))), lse(size_t(lse_size(d)));
  std::vector<T> dq(size_t(q_size(d))), dk(size_t(k_size(d))), dv(size_t(v_size(d)));
  kernels::attention_forward<T>(o.data(), lse.data(), q.data(), k.data(), v.data(), d, scale, in.causal);
  kernels::attention_backward<T>(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), o.data(),
                                 lse.data(), d, scale, in.causal);
  return {cast<double>(o), cast<double>(lse), cast<double>(dq), cast<double>(dk), cast<double>(dv)};
}

// The plain loops in float64 on the inputs rounded to T, so only the kernel's own rounding differs.
template <class T>
Outputs run_reference(const Inputs& in) {
  const AttentionDims& d = in.d;
  auto round = [](const std::vector<double>& x) { return cast<double>(cast<T>(x)); };
  auto q = round(in.q), k = round(in.k), v = round(in.v), dout = round(in.dout);
  const double scale = double(T(kernels::attention_default_scale(d.D)));
  Outputs r;
  r.o.resize(size_t(o_size(d)));
  r.lse.resize(size_t(lse_size(d)));
  r.dq.resize(size_t(q_size(d)));
  r.dk.resize(size_t(k_size(d)));
  r.dv.resize(size_t(v_size(d)));
  kernels::attention_forward_reference<double>(r.o.data(), r.lse.data(), q.data(), k.data(), v.data(), d, scale,
                                               in.causal);
  kernels::attention_backward_reference<double>(r.dq.data(), r.dk.data(), r.dv.data(), dout.data(), q.data(),
                                                k.data(), v.data(), d, scale, in.causal);
  return r;
}

// max |a − b| / max |b|: one relative error for a whole tensor, blind to tiny entries.
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    ref = std::max(ref, std::abs(b[i]));
  }
  return ref > 0 ? diff / ref : diff;
}

bool all_finite(const std::vector<double>& x) {
  return std::all_of(x.begin(), x.end(), [](double e) { return std::isfinite(e); });
}

void check_close(const Outputs& got, const Outputs& want, double tol) {
  CHECK(rel_err(got.o, want.o) <= tol);
  CHECK(rel_err(got.lse, want.lse) <= tol);
  CHECK(rel_err(got.dq, want.dq) <= tol);
  CHECK(rel_err(got.dk, want.dk) <= tol);
  CHECK(rel_err(got.dv, want.dv) <= tol);
}

std::string describe(const Inputs& in) {
  const auto& d = in.d;
  return "B=" + std::to_string(d.B) + " Tq=" + std::to_string(d.Tq) + " Tk=" + std::to_string(d.Tk) +
         " H=" + std::to_string(d.H) + " D=" + std::to_string(d.D) + " Dv=" + std::to_string(d.Dv) +
         (in.causal ? " causal" : " full");
}

// Shapes that hit every edge of the tiling: T below, at and across the 64-query and 64/256-key
// tiles, head sizes that are not SIMD multiples, Dv != D, several heads, streaming (Tq < Tk, with
// offsets that are not tile multiples), decoding (Tq = 1), non-causal with Tq > Tk, and B·H small
// enough that heads split into groups of query tiles (forward) or key tiles (backward).
const std::vector<std::pair<AttentionDims, bool>> kShapes = {
    {{1, 1, 1, 1, 10, 10}, true},     {{2, 7, 7, 3, 10, 12}, true},     {{1, 65, 65, 2, 60, 60}, true},
    {{2, 200, 200, 2, 16, 24}, true}, {{1, 64, 64, 1, 64, 64}, true},   {{1, 65, 130, 2, 64, 64}, true},
    {{1, 130, 200, 1, 33, 7}, true},  {{2, 1, 200, 3, 64, 64}, true},   {{3, 129, 129, 1, 16, 16}, true},
    {{2, 70, 100, 2, 10, 10}, false}, {{1, 100, 30, 2, 8, 16}, false}, {{1, 300, 300, 2, 64, 64}, true},
    {{1, 200, 530, 1, 16, 16}, true}, {{1, 100, 300, 1, 8, 8}, false},
};

}  // namespace

// Tolerances: in float64 the tiled and plain loops differ only by rounding in sums of at most
// T·D terms of O(1) size (~1e-15 observed), so 1e-12 relative is wide but still catches any real
// error. In float32 the kernel rounds every product and sum to 2^-24 ≈ 6e-8 while the reference
// runs in float64: ~1e-6 is typical, and 1e-5 bounds sums of a few hundred terms with the
// cancellation in dS = P (dP − Δ).
TEST_CASE("tiled attention matches the plain loops in float64") {
  for (const auto& [d, causal] : kShapes) {
    Inputs in = make_inputs(d, causal, 11);
    CAPTURE(describe(in));
    check_close(run_tiled<double>(in), run_reference<double>(in), 1e-12);
  }
}

TEST_CASE("tiled attention matches the plain loops in float32") {
  for (const auto& [d, causal] : kShapes) {
    Inputs in = make_inputs(d, causal, 12);
    CAPTURE(describe(in));
    check_close(run_tiled<float>(in), run_reference<float>(in), 1e-5);
  }
}

TEST_CASE("attention_forward without lse writes the same o") {
  Inputs in = make_inputs({2, 70, 90, 2, 16, 16}, true, 13);
  const auto& d = in.d;
  auto q = cast<float>(in.q), k = cast<float>(in.k), v = cast<float>(in.v);
  std::vector<float> o1(size_t(o_size(d))), o2(o1.size()), lse(size_t(lse_size(d)));
  kernels::attention_forward<float>(o1.data(), lse.data(), q.data(), k.data(), v.data(), d, 0.25f);
  kernels::attention_forward<float>(o2.data(), nullptr, q.data(), k.data(), v.data(), d, 0.25f);
  CHECK(o1 == o2);
}

TEST_CASE("attention_backward writes its outputs rather than accumulating into them") {
  Inputs in = make_inputs({2, 70, 90, 2, 16, 8}, true, 14);
  const auto& d = in.d;
  Outputs clean = run_tiled<double>(in);
  std::vector<double> o(size_t(o_size(d))), lse(size_t(lse_size(d)));
  const double scale = kernels::attention_default_scale(d.D), nan = std::numeric_limits<double>::quiet_NaN();
  kernels::attention_forward<double>(o.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), d, scale);
  std::vector<double> dq(size_t(q_size(d)), nan), dk(size_t(k_size(d)), nan), dv(size_t(v_size(d)), nan);
  kernels::attention_backward<double>(dq.data(), dk.data(), dv.data(), in.dout.data(), in.q.data(), in.k.data(),
                                      in.v.data(), o.data(), lse.data(), d, scale);
  CHECK(dq == clean.dq);
  CHECK(dk == clean.dk);
  CHECK(dv == clean.dv);
}

// Central differences of L = Σ o ⊙ dout in float64 with step h: truncation O(h²) ≈ 1e-10 and
// cancellation ε/h ≈ 1e-11, so 1e-8 relative leaves ~100x margin over the 1e-10 observed.
TEST_CASE("attention backward matches central finite differences in float64") {
  const std::vector<std::pair<AttentionDims, bool>> shapes = {
      {{2, 5, 7, 2, 3, 4}, true}, {{1, 6, 6, 1, 5, 2}, true}, {{1, 4, 3, 2, 3, 3}, false}};
  for (const auto& [d, causal] : shapes) {
    Inputs in = make_inputs(d, causal, 21);
    CAPTURE(describe(in));
    const double scale = kernels::attention_default_scale(d.D);
    auto loss = [&](const Inputs& x) {
      std::vector<double> o(size_t(o_size(d)));
      kernels::attention_forward<double>(o.data(), nullptr, x.q.data(), x.k.data(), x.v.data(), d, scale, causal);
      double s = 0;
      for (size_t i = 0; i < o.size(); ++i) s += o[i] * x.dout[i];
      return s;
    };
    Outputs got = run_tiled<double>(in);
    const double h = 1e-5;
    auto numeric = [&](std::vector<double> Inputs::*field) {
      std::vector<double> g((in.*field).size());
      for (size_t i = 0; i < g.size(); ++i) {
        Inputs plus = in, minus = in;
        (plus.*field)[i] += h;
        (minus.*field)[i] -= h;
        g[i] = (loss(plus) - loss(minus)) / (2 * h);
      }
      return g;
    };
    CHECK(rel_err(got.dq, numeric(&Inputs::q)) <= 1e-8);
    CHECK(rel_err(got.dk, numeric(&Inputs::k)) <= 1e-8);
    CHECK(rel_err(got.dv, numeric(&Inputs::v)) <= 1e-8);
  }
}

// Logits of magnitude ~1e3 overflow exp unless the running max is subtracted. A computed logit
// carries an absolute rounding error of order √D·ε·L (L the largest |logit|; D·ε·L at worst), which
// the exponential turns into a relative error of the probabilities, so the tolerance is √D·ε·L:
// 1.8e-12 in float64 and 1e-3 in float32 at L = 1e3, D = 64 — the conditioning of the problem.
template <class T>
void check_large_logits() {
  const AttentionDims d{2, 100, 100, 2, 64, 64};
  const double L = 1000;
  Inputs in = make_inputs(d, true, 31);
  // Scale q and k so that the largest |scale · q·k| over visible pairs is L.
  double largest = 0;
  const double scale = kernels::attention_default_scale(d.D);
  const int64_t ld = d.H * d.D;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < d.Tq; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          double s = 0;
          for (int64_t c = 0; c < d.D; ++c)
            s += in.q[(b * d.Tq + i) * ld + h * d.D + c] * in.k[(b * d.Tk + j) * ld + h * d.D + c];
          largest = std::max(largest, std::abs(scale * s));
        }
  const double c = std::sqrt(L / largest);
  for (auto& e : in.q) e *= c;
  for (auto& e : in.k) e *= c;
  Outputs got = run_tiled<T>(in), want = run_reference<T>(in);
  CHECK(all_finite(got.o));
  CHECK(all_finite(got.lse));
  CHECK(all_finite(got.dq));
  CHECK(all_finite(got.dk));
  CHECK(all_finite(got.dv));
  check_close(got, want, std::sqrt(double(d.D)) * eps<T> * L);
  // lse is of size L itself, so its relative error above says little: bound it absolutely.
  double lse_err = 0;
  for (size_t i = 0; i < got.lse.size(); ++i) lse_err = std::max(lse_err, std::abs(got.lse[i] - want.lse[i]));
  CHECK(lse_err <= std::sqrt(double(d.D)) * eps<T> * L);
}

TEST_CASE("large logits stay finite and match the reference") {
  SUBCASE("float64") { check_large_logits<double>(); }
  SUBCASE("float32") { check_large_logits<float>(); }
}

// Queries aligned to the end of the keys: processing [0, T1) against keys [0, T1), then [T1, T)
// against all T keys, or one query at a time against the growing prefix (decoding), computes the
// same rows as all T queries at once. Both paths round the same sums, hence the ε-level tolerance.
TEST_CASE("streaming chunks and decoding steps equal the full causal attention") {
  const AttentionDims full{2, 150, 150, 2, 24, 20};
  Inputs in = make_inputs(full, true, 41);
  const double scale = kernels::attention_default_scale(full.D);
  const int64_t ldq = full.H * full.D, ldv = full.H * full.Dv;
  std::vector<double> o(size_t(o_size(full))), lse(size_t(lse_size(full)));
  kernels::attention_forward<double>(o.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), full, scale);

  // Attention of queries [t0, t1) against keys [0, t1), written into full-size o and lse.
  auto chunk = [&](int64_t t0, int64_t t1, std::vector<double>& oc, std::vector<double>& lc) {
    const AttentionDims d{1, t1 - t0, t1, full.H, full.D, full.Dv};
    for (int64_t b = 0; b < full.B; ++b) {
      std::vector<double> ob(size_t(o_size(d))), lb(size_t(lse_size(d)));
      kernels::attention_forward<double>(ob.data(), lb.data(), in.q.data() + (b * full.Tq + t0) * ldq,
                                         in.k.data() + b * full.Tk * ldq, in.v.data() + b * full.Tk * ldv, d, scale);
      std::copy(ob.begin(), ob.end(), oc.begin() + (b * full.Tq + t0) * ldv);
      for (int64_t h = 0; h < full.H; ++h)
        std::copy(lb.begin() + h * d.Tq, lb.begin() + (h + 1) * d.Tq, lc.begin() + (b * full.H + h) * full.Tq + t0);
    }
  };
  SUBCASE("two chunks") {
    std::vector<double> oc(o.size()), lc(lse.size());
    chunk(0, 70, oc, lc);
    chunk(70, 150, oc, lc);
    CHECK(rel_err(oc, o) <= 4 * eps<double>);
    CHECK(rel_err(lc, lse) <= 4 * eps<double>);
  }
  SUBCASE("one query at a time") {
    std::vector<double> oc(o.size()), lc(lse.size());
    for (int64_t t = 0; t < full.Tq; ++t) chunk(t, t + 1, oc, lc);
    CHECK(rel_err(oc, o) <= 4 * eps<double>);
    CHECK(rel_err(lc, lse) <= 4 * eps<double>);
  }
}

// The partition into tasks depends only on the sizes, so 1 and 2 threads give the same bits.
// B·H = 1 makes the backward split the head's key tiles into groups with a dq reduction.
TEST_CASE("attention is bit-identical on 1 and 2 threads") {
  for (const AttentionDims& d : {AttentionDims{2, 300, 300, 3, 64, 64}, AttentionDims{1, 500, 500, 1, 16, 16}}) {
    Inputs in = make_inputs(d, true, 51);
    CAPTURE(describe(in));
    set_num_threads(1);
    Outputs one = run_tiled<float>(in);
    set_num_threads(2);
    Outputs two = run_tiled<float>(in);
    set_num_threads(0);
    CHECK(one.o == two.o);
    CHECK(one.lse == two.lse);
    CHECK(one.dq == two.dq);
    CHECK(one.dk == two.dk);
    CHECK(one.dv == two.dv);
  }
}

TEST_CASE("attention rejects sizes it cannot serve") {
  std::vector<float> buf(4096);
  float* p = buf.data();
  CHECK_THROWS_AS(kernels::attention_forward<float>(p, p, p, p, p, {1, 5, 4, 1, 8, 8}, 1.f, true), Error);
  CHECK_THROWS_AS(kernels::attention_forward<float>(p, p, p, p, p, {1, 5, 0, 1, 8, 8}, 1.f, false), Error);
  CHECK_THROWS_AS(kernels::attention_backward<float>(p, p, p, p, p, p, p, p, p, {1, 2, 2, 1, 0, 8}, 1.f), Error);
  CHECK_NOTHROW(kernels::attention_forward<float>(p, p, p, p, p, {1, 5, 4, 1, 8, 8}, 1.f, false));
}
