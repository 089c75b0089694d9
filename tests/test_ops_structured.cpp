// layer_norm, dropout, multinomial, scatter_add / index_add, sort / topk and conv1d against
// plain float64 loops written here; the random ops by statistics of a fixed seed with bounds
// derived from the sample size.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "core_test_util.h"
#include "rotor/autograd/fused.h"

using namespace rotor;
using namespace testutil;

namespace {

Tensor leaf(const Tensor& t) { return core::clone(t).requires_grad_(); }
std::vector<double> grad_values(const Tensor& t) { return values(t.grad()); }

// Strides of a row-major shape, for the loops below.
int64_t at3(const Shape& s, int64_t a, int64_t b, int64_t c) { return (a * s[1] + b) * s[2] + c; }

}  // namespace

// ---- layer_norm ----

namespace {
// Row-wise (x - mean) / sqrt(var + eps) * w + b in double, var biased.
std::vector<double> ref_layer_norm(const std::vector<double>& x, int64_t D, const std::vector<double>* w,
                                   const std::vector<double>* b, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / size_t(D); ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mu += x[r * D + j];
    mu /= double(D);
    for (int64_t j = 0; j < D; ++j) var += (x[r * D + j] - mu) * (x[r * D + j] - mu);
    var /= double(D);
    for (int64_t j = 0; j < D; ++j)
      y[r * D + j] = (x[r * D + j] - mu) / std::sqrt(var + eps) * (w ? (*w)[j] : 1.0) + (b ? (*b)[j] : 0.0);
  }
  return y;
}
}  // namespace

TEST_CASE("layer_norm matches a float64 loop, with and without weight and bias, in any layout") {
  Generator g(1);
  for (DType dtype : {DType::Float64, DType::Float32})
    for (Layout layout : {Layout::Contiguous, Layout::Transposed, Layout::Stepped}) {
      Tensor x = make({3, 4, 7}, dtype, layout, g, -3.0, 5.0);
      Tensor w = make({7}, dtype, Layout::Contiguous, g), b = make({7}, dtype, Layout::Contiguous, g);
      std::vector<double> xv = values(x), wv = values(w), bv = values(b);
      const Tol tol = dtype == DType::Float64 ? Tol{1e-13, 1e-13} : Tol{2e-6, 2e-6};
      check_values(layer_norm(x, w, b), ref_layer_norm(xv, 7, &wv, &bv, 1e-5), tol, "layer_norm");
      check_values(layer_norm(x), ref_layer_norm(xv, 7, nullptr, nullptr, 1e-5), tol, "layer_norm plain");
      check_values(layer_norm(x, w, Tensor(), 0.5), ref_layer_norm(xv, 7, &wv, nullptr, 0.5), tol, "layer_norm w");
      check_values(layer_norm(x, Tensor(), b), ref_layer_norm(xv, 7, nullptr, &bv, 1e-5), tol, "layer_norm b");
    }
}

TEST_CASE("layer_norm's gradients equal those of its composition from ordinary ops") {
  Generator g(2);
  Tensor x0 = randn({5, 6}, g, DType::Float64) * 3.0 + 1.0, w0 = randn({6}, g, DType::Float64),
         b0 = randn({6}, g, DType::Float64), up = randn({5, 6}, g, DType::Float64);
  Tensor x = leaf(x0), w = leaf(w0), b = leaf(b0);
  (layer_norm(x, w, b) * up).backward(ones({5, 6}, DType::Float64));
  Tensor x2 = leaf(x0), w2 = leaf(w0), b2 = leaf(b0);
  Tensor c = x2 - mean(x2, {-1}, true);
  ((c * rsqrt(mean(square(c), {-1}, true) + 1e-5) * w2 + b2) * up).backward(ones({5, 6}, DType::Float64));
  check_values(x.grad(), grad_values(x2), Tol{1e-12, 1e-12}, "dx");
  check_values(w.grad(), grad_values(w2), Tol{1e-12, 1e-12}, "dw");
  check_values(b.grad(), grad_values(b2), Tol{1e-12, 1e-12}, "db");
}

TEST_CASE("layer_norm over a single element is the bias, and its input gradient is exactly zero") {
  Generator g(19);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    Tensor x = leaf(randn({6, 1}, g, dtype)), w = leaf(randn({1}, g, dtype)), b = leaf(randn({1}, g, dtype));
    Tensor y = layer_norm(x, w, b);
    check_values(y, std::vector<double>(6, values(b)[0]), Tol{}, "y");
    (y * randn({6, 1}, g, dtype)).backward(ones({6, 1}, dtype));
    check_values(x.grad(), std::vector<double>(6, 0.0), Tol{}, "dx");
    check_values(w.grad(), {0.0}, Tol{}, "dw");
  }
}

TEST_CASE("layer_norm rejects mismatched weight, bias and dtypes") {
  check_error([] { layer_norm(ones({2, 3}), ones({4})); }, {"[layer_norm]", "weight [4]", "[2, 3]"});
  check_error([] { layer_norm(ones({2, 3}), Tensor(), ones({2})); }, {"[layer_norm]", "bias [2]"});
  check_error([] { layer_norm(ones({2, 3}), ones({3}, DType::Float64)); }, {"[layer_norm]", "float64"});
  check_error([] { layer_norm(scalar_tensor(1.0)); }, {"[layer_norm]", "0-d"});
}

// ---- dropout ----

TEST_CASE("dropout zeroes a fraction p, scales the rest by 1/(1-p), and is a function of the seed") {
  Generator g(3);
  const int64_t n = 200000;
  Tensor x = rand({n}, g, DType::Float64, 1.0, 2.0);  // never zero
  for (double p : {0.1, 0.5, 0.8}) {
    Generator a(42), b(42);
    Tensor y = dropout(x, p, true, a);
    CHECK(same_bits(y, dropout(x, p, true, b)));
    CHECK(a.offset() == uint64_t(n));  // one counter per element
    std::vector<double> xv = values(x), yv = values(y);
    int64_t zeros_seen = 0;
    bool scaled = true;
    for (int64_t i = 0; i < n; ++i) {
      if (yv[size_t(i)] == 0) ++zeros_seen;
      else scaled &= std::fabs(yv[size_t(i)] - xv[size_t(i)] / (1 - p)) <= 1e-15 * yv[size_t(i)];
    }
    CHECK(scaled);
    // The count of zeros is Binomial(n, p): 6 standard deviations (a fixed seed, so this either
    // always passes or always fails).
    CHECK(std::fabs(double(zeros_seen) / double(n) - p) <= 6 * std::sqrt(p * (1 - p) / double(n)));
  }
  Generator c(42), d(43);
  CHECK(!same_bits(dropout(x, 0.5, true, c), dropout(x, 0.5, true, d)));
}

TEST_CASE("dropout: eval mode and p = 0 are the identity, p = 1 gives zeros, p outside [0, 1] is an error") {
  Generator g(4);
  Tensor x = randn({4, 5}, g);
  CHECK(dropout(x, 0.5, false, g).impl() == x.impl());
  CHECK(dropout(x, 0.0, true, g).impl() == x.impl());
  const uint64_t before = g.offset();
  dropout(x, 0.5, false, g);
  CHECK(g.offset() == before);  // eval mode draws nothing
  for (double v : values(dropout(x, 1.0, true, g))) CHECK(v == 0.0);
  check_error([&] { dropout(x, -0.1, true, g); }, {"[dropout]", "-0.1"});
  check_error([&] { dropout(x, 1.5, false, g); }, {"[dropout]", "1.5"});
  check_error([&] { dropout(ones({2}, DType::Int64), 0.5, true, g); }, {"[dropout]", "int64"});
}

TEST_CASE("dropout's gradient is the same mask: 1/(1-p) where kept, 0 where dropped") {
  Generator g(5);
  Tensor x = leaf(rand({1000}, g, DType::Float64, 1.0, 2.0));
  Generator gen(9);
  Tensor y = dropout(x, 0.3, true, gen);
  sum(y).backward();
  std::vector<double> yv = values(y), gv = grad_values(x);
  for (size_t i = 0; i < yv.size(); ++i) CHECK(gv[i] == (yv[i] == 0 ? 0.0 : 1.0 / 0.7));
}

TEST_CASE("dropout and multinomial give the same bits on one thread and on all") {
  Generator g(6);
  Tensor x = randn({300, 700}, g);
  Tensor probs = rand({64, 50}, g);
  const int64_t threads = num_threads();
  Generator a(1), b(1);
  set_num_threads(1);
  Tensor y1 = dropout(x, 0.25, true, a), m1 = multinomial(probs, 30, false, a);
  set_num_threads(threads);
  Tensor y2 = dropout(x, 0.25, true, b), m2 = multinomial(probs, 30, false, b);
  CHECK(same_bits(y1, y2));
  CHECK(same_bits(m1, m2));
}

// ---- multinomial ----

TEST_CASE("multinomial with replacement follows the normalised weights") {
  // Weights, not probabilities: normalised by their sum; a zero weight is never drawn.
  const std::vector<double> w = {1.0, 0.0, 3.0, 6.0, 0.5};
  const double total = 10.5;
  const int64_t n = 200000;
  for (DType dtype : {DType::Float64, DType::Float32}) {
    Generator gen(7);
    Tensor s = multinomial(core::to_dtype(from_vector(w), dtype), n, true, gen);
    REQUIRE(s.shape() == Shape{n});
    CHECK(s.dtype() == DType::Int64);
    std::vector<int64_t> count(w.size(), 0);
    for (double v : values(s)) ++count[size_t(v)];
    CHECK(count[1] == 0);
    for (size_t k = 0; k < w.size(); ++k) {
      const double p = w[k] / total, f = double(count[k]) / double(n);
      INFO("category ", k, ": frequency ", f, ", probability ", p);
      CHECK(std::fabs(f - p) <= 6 * std::sqrt(p * (1 - p) / double(n)) + 1e-12);
    }
  }
}

TEST_CASE("multinomial without replacement: distinct draws, in the order of successive draws") {
  // P(first = i, second = j) = p_i p_j / (1 - p_i): 60000 rows of the same weights, two draws each.
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  const int64_t rows = 60000, K = 4;
  std::vector<double> w;
  for (int64_t r = 0; r < rows; ++r) w.insert(w.end(), p.begin(), p.end());
  Generator gen(8);
  Tensor s = multinomial(from_vector(w, {rows, K}), 2, false, gen);
  REQUIRE(s.shape() == (Shape{rows, 2}));
  std::vector<double> sv = values(s);
  std::map<std::pair<int64_t, int64_t>, int64_t> count;
  bool distinct = true;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t a = int64_t(sv[size_t(2 * r)]), b = int64_t(sv[size_t(2 * r + 1)]);
    distinct &= a != b;
    ++count[{a, b}];
  }
  CHECK(distinct);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j) {
      if (i == j) continue;
      const double q = p[size_t(i)] * p[size_t(j)] / (1 - p[size_t(i)]), f = double(count[{i, j}]) / double(rows);
      INFO("pair ", i, ", ", j, ": frequency ", f, ", probability ", q);
      CHECK(std::fabs(f - q) <= 6 * std::sqrt(q * (1 - q) / double(rows)));
    }
  // All K draws of a row are a permutation of the categories.
  Generator g2(9);
  Tensor all = multinomial(rand({50, 9}, g2, DType::Float64, 0.1, 1.0), 9, false, g2);
  std::vector<double> av = values(all);
  for (int64_t r = 0; r < 50; ++r) {
    std::set<int64_t> seen;
    for (int64_t k = 0; k < 9; ++k) seen.insert(int64_t(av[size_t(r * 9 + k)]));
    CHECK(seen.size() == 9);
  }
}

TEST_CASE("multinomial is a function of the seed and checks its weights") {
  Tensor probs = from_vector<double>({0.2, 0.3, 0.5});
  Generator a(10), b(10), c(11);
  Tensor x = multinomial(probs, 50, true, a);
  CHECK(same_bits(x, multinomial(probs, 50, true, b)));
  CHECK(!same_bits(x, multinomial(probs, 50, true, c)));
  CHECK(a.offset() == 50);
  Generator g(0);
  check_error([&] { multinomial(from_vector<double>({0.5, -0.1}), 1, true, g); }, {"[multinomial]", "-0.1"});
  check_error([&] { multinomial(from_vector<double>({0.5, NAN}), 1, true, g); }, {"[multinomial]", "not finite"});
  check_error([&] { multinomial(zeros({2, 3}), 1, true, g); }, {"[multinomial]", "row 0", "no positive"});
  check_error([&] { multinomial(probs, 4, false, g); }, {"[multinomial]", "4 samples", "3 categories"});
  check_error([&] { multinomial(from_vector<double>({0.5, 0.0, 0.5}), 3, false, g); }, {"[multinomial]", "2 categories"});
  check_error([&] { multinomial(probs, 0, true, g); }, {"[multinomial]", "positive"});
  check_error([&] { multinomial(ones({2, 2, 2}), 1, true, g); }, {"[multinomial]", "[2, 2, 2]"});
  check_error([&] { multinomial(ones({3}, DType::Int64), 1, true, g); }, {"[multinomial]", "int64"});
}

// ---- scatter_add and index_add ----

TEST_CASE("scatter_add and index_add match loops, repeated indices summed, gradients gathered") {
  Generator g(12);
  for (int64_t dim : {0, 1, 2}) {
    const Shape xs = {4, 5, 3};
    Shape is = {3, 4, 2};  // smaller than x off dim; along dim, any length
    is[size_t(dim)] = 7;
    Shape ss = is;
    ss[0] += 1;  // src larger than index in dim 0: the extra part is not read
    Tensor x = leaf(randn(xs, g, DType::Float64)), src = leaf(randn(ss, g, DType::Float64));
    Tensor idx = randint(0, xs[size_t(dim)], is, g);  // 7 draws from at most 5: repeats
    Tensor up = randn(xs, g, DType::Float64);
    Tensor y = scatter_add(x, dim, idx, src);
    std::vector<double> ref = values(x), sv = values(src), iv = values(idx), uv = values(up);
    std::vector<double> dsrc(sv.size(), 0.0);
    for (int64_t a = 0; a < is[0]; ++a)
      for (int64_t b = 0; b < is[1]; ++b)
        for (int64_t c = 0; c < is[2]; ++c) {
          int64_t t[3] = {a, b, c};
          t[dim] = int64_t(iv[size_t(at3(is, a, b, c))]);
          ref[size_t(at3(xs, t[0], t[1], t[2]))] += sv[size_t(at3(ss, a, b, c))];
          dsrc[size_t(at3(ss, a, b, c))] = uv[size_t(at3(xs, t[0], t[1], t[2]))];
        }
    check_values(y, ref, Tol{1e-14, 1e-14}, "scatter_add");
    (y * up).backward(ones(xs, DType::Float64));
    check_values(x.grad(), uv, Tol{}, "scatter_add dx");
    check_values(src.grad(), dsrc, Tol{}, "scatter_add dsrc");
  }
  for (int64_t dim : {0, 1}) {
    const Shape xs = {4, 5};
    Shape ss = xs;
    ss[size_t(dim)] = 9;
    Tensor x = leaf(randn(xs, g, DType::Float64)), src = leaf(randn(ss, g, DType::Float64));
    Tensor idx = randint(0, xs[size_t(dim)], {9}, g), up = randn(xs, g, DType::Float64);
    Tensor y = index_add(x, dim, idx, src, 2.5);
    std::vector<double> ref = values(x), sv = values(src), iv = values(idx), uv = values(up), dsrc(sv.size());
    for (int64_t i = 0; i < 9; ++i)
      for (int64_t o = 0; o < xs[size_t(1 - dim)]; ++o) {
        const int64_t to = int64_t(iv[size_t(i)]);
        const int64_t xi = dim == 0 ? to * 5 + o : o * 5 + to, si = dim == 0 ? i * 5 + o : o * 9 + i;
        ref[size_t(xi)] += 2.5 * sv[size_t(si)];
        dsrc[size_t(si)] = 2.5 * uv[size_t(xi)];
      }
    check_values(y, ref, Tol{1e-14, 1e-14}, "index_add");
    (y * up).backward(ones(xs, DType::Float64));
    check_values(x.grad(), uv, Tol{}, "index_add dx");
    check_values(src.grad(), dsrc, Tol{1e-15, 0}, "index_add dsrc");
  }
}

TEST_CASE("scatter_add and index_add check indices, shapes and dtypes with rotor::Error") {
  Tensor x = zeros({3, 4});
  check_error([&] { scatter_add(x, 1, from_vector<int64_t>({0, 4}, {1, 2}), ones({1, 2})); },
              {"[scatter_add]", "index 4", "[0, 4)"});
  check_error([&] { scatter_add(x, 0, from_vector<int64_t>({-1}, {1, 1}), ones({1, 1})); }, {"[scatter_add]", "-1"});
  check_error([&] { scatter_add(x, 0, from_vector<int64_t>({0, 1}, {1, 2}), ones({1, 1})); }, {"[scatter_add]", "larger"});
  check_error([&] { scatter_add(x, 0, from_vector<int64_t>({0}, {1}), ones({1})); }, {"[scatter_add]", "dims"});
  check_error([&] { scatter_add(x, 2, zeros({1, 1}, DType::Int64), ones({1, 1})); }, {"[scatter_add]"});
  check_error([&] { scatter_add(x, 0, zeros({1, 1}, DType::Int64), ones({1, 1}, DType::Float64)); },
              {"[scatter_add]", "float64"});
  check_error([&] { scatter_add(x, 0, zeros({1, 1}), ones({1, 1})); }, {"[scatter_add]", "int64"});
  check_error([&] { index_add(x, 0, from_vector<int64_t>({1, 3}), ones({2, 4})); }, {"[index_add]", "index 3", "[0, 3)"});
  check_error([&] { index_add(x, 1, from_vector<int64_t>({1, 3}), ones({3, 3})); }, {"[index_add]", "[3, 3]", "[3, 2]"});
  check_error([&] { index_add(x, 0, zeros({1, 1}, DType::Int64), ones({1, 4})); }, {"[index_add]", "1-D"});
}

// ---- sort and topk ----

namespace {
// Stable sort of each line along the last dim of a [R, N] tensor: positions, by a loop.
std::vector<int64_t> ref_order(const std::vector<double>& v, int64_t R, int64_t N, bool descending) {
  std::vector<int64_t> out;
  for (int64_t r = 0; r < R; ++r) {
    std::vector<int64_t> o(static_cast<size_t>(N));
    std::iota(o.begin(), o.end(), int64_t(0));
    auto key = [&](int64_t i) { return v[size_t(r * N + i)]; };
    // Insertion sort: stable by construction, NaN above every number.
    auto less = [&](int64_t a, int64_t b) {
      const double x = key(a), y = key(b);
      if (std::isnan(x) || std::isnan(y)) return descending ? (std::isnan(x) && !std::isnan(y)) : (!std::isnan(x) && std::isnan(y));
      return descending ? x > y : x < y;
    };
    for (int64_t i = 1; i < N; ++i)
      for (int64_t j = i; j > 0 && less(o[size_t(j)], o[size_t(j - 1)]); --j) std::swap(o[size_t(j)], o[size_t(j - 1)]);
    out.insert(out.end(), o.begin(), o.end());
  }
  return out;
}
}  // namespace

TEST_CASE("sort is stable in both directions, along any dim, for floats with NaN and for int64") {
  Generator g(13);
  for (bool descending : {false, true})
    for (int64_t dim : {0, 1, 2}) {
      // Values from {0, 1, 2, 3}: many ties, which a stable sort keeps in position order.
      Tensor x = core::to_dtype(randint(0, 4, {5, 6, 7}, g), DType::Float64);
      Tensor xt = contiguous(transpose(x, dim, 2));  // the sorted dim last, for the loop
      const int64_t N = xt.size(2), R = xt.numel() / N;
      std::vector<double> xv = values(xt);
      std::vector<int64_t> order = ref_order(xv, R, N, descending);
      auto [vals, idx] = sort(x, dim, descending);
      std::vector<double> rv, ri;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < N; ++i) {
          ri.push_back(double(order[size_t(r * N + i)]));
          rv.push_back(xv[size_t(r * N + order[size_t(r * N + i)])]);
        }
      check_values(transpose(idx, dim, 2), ri, Tol{}, "sort indices");
      check_values(transpose(vals, dim, 2), rv, Tol{}, "sort values");
      auto [ivals, iidx] = sort(core::to_dtype(x, DType::Int64), dim, descending);
      CHECK(ivals.dtype() == DType::Int64);
      check_values(transpose(iidx, dim, 2), ri, Tol{}, "sort int64 indices");
    }
  Tensor withnan = from_vector<double>({2, NAN, -1, 5, NAN, 0});
  check_values(sort(withnan).indices, {2, 5, 0, 3, 1, 4}, Tol{}, "ascending, NaN last");
  check_values(sort(withnan, 0, true).indices, {1, 4, 3, 0, 5, 2}, Tol{}, "descending, NaN first");
}

TEST_CASE("topk is the first k of the stable sort (sorted) or those k in index order") {
  Generator g(14);
  Tensor x = core::to_dtype(randint(0, 5, {6, 9}, g), DType::Float32);
  std::vector<double> xv = values(x);
  for (bool largest : {true, false})
    for (int64_t k : {0, 1, 4, 9}) {
      std::vector<int64_t> order = ref_order(xv, 6, 9, largest);
      std::vector<double> ri, rv, ui, uv;
      for (int64_t r = 0; r < 6; ++r) {
        std::vector<int64_t> first(order.begin() + r * 9, order.begin() + r * 9 + k);
        for (int64_t i : first) ri.push_back(double(i)), rv.push_back(xv[size_t(r * 9 + i)]);
        std::sort(first.begin(), first.end());
        for (int64_t i : first) ui.push_back(double(i)), uv.push_back(xv[size_t(r * 9 + i)]);
      }
      auto [vals, idx] = topk(x, k, -1, largest);
      REQUIRE(vals.shape() == (Shape{6, k}));
      check_values(idx, ri, Tol{}, "topk indices");
      check_values(vals, rv, Tol{}, "topk values");
      auto [uvals, uidx] = topk(x, k, 1, largest, false);
      check_values(uidx, ui, Tol{}, "topk unsorted indices");
      check_values(uvals, uv, Tol{}, "topk unsorted values");
    }
  check_error([&] { topk(x, 10); }, {"[topk]", "k = 10", "size 9"});
  check_error([&] { topk(x, -1, 0); }, {"[topk]", "k = -1"});
  check_error([&] { sort(x, 2); }, {"[sort]"});
}

TEST_CASE("sort and topk send the values' gradient back to the positions they came from") {
  Generator g(15);
  Tensor x = leaf(randn({4, 7}, g, DType::Float64));
  auto [vals, idx] = topk(x, 3, 1);
  Tensor up = randn({4, 3}, g, DType::Float64);
  (vals * up).backward(ones({4, 3}, DType::Float64));
  std::vector<double> ref(28, 0.0), iv = values(idx), uv = values(up);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t i = 0; i < 3; ++i) ref[size_t(r * 7 + int64_t(iv[size_t(r * 3 + i)]))] += uv[size_t(r * 3 + i)];
  check_values(x.grad(), ref, Tol{}, "topk dx");
  Tensor y = leaf(randn({5, 3}, g, DType::Float64));
  auto [sv, si] = sort(y, 0, true);
  Tensor up2 = randn({5, 3}, g, DType::Float64);
  (sv * up2).backward(ones({5, 3}, DType::Float64));
  std::vector<double> ref2(15), sidx = values(si), u2 = values(up2);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t c = 0; c < 3; ++c) ref2[size_t(int64_t(sidx[size_t(i * 3 + c)]) * 3 + c)] = u2[size_t(i * 3 + c)];
  check_values(y.grad(), ref2, Tol{}, "sort dx");
  CHECK(!idx.requires_grad());
}

// ---- conv1d ----

namespace {
// y[b, o, t] = bias[o] + sum_{c, j} w[o, c, j] x[b, g*Cg + c, t*stride + j*dilation - pad_left].
std::vector<double> ref_conv(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t pad_left,
                             int64_t Lout, int64_t dilation, int64_t groups) {
  const std::vector<double> xv = values(x), wv = values(w), bv = bias.defined() ? values(bias) : std::vector<double>();
  const int64_t B = x.size(0), Cin = x.size(1), L = x.size(2), Cout = w.size(0), K = w.size(2);
  const int64_t Cg = Cin / groups, Cog = Cout / groups;
  std::vector<double> y;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < Cout; ++o)
      for (int64_t t = 0; t < Lout; ++t) {
        double acc = bv.empty() ? 0.0 : bv[size_t(o)];
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t j = 0; j < K; ++j) {
            const int64_t at = t * stride + j * dilation - pad_left;
            if (at >= 0 && at < L)
              acc += wv[size_t((o * Cg + c) * K + j)] * xv[size_t((b * Cin + (o / Cog) * Cg + c) * L + at)];
          }
        y.push_back(acc);
      }
  return y;
}
}  // namespace

TEST_CASE("conv1d matches a loop: full, grouped, depthwise, with stride, padding, dilation and bias") {
  Generator g(16);
  struct Case {
    int64_t B, Cin, L, Cout, K, stride, padding, dilation, groups;
  };
  for (const Case& c : {Case{2, 3, 10, 4, 3, 1, 0, 1, 1}, Case{1, 4, 9, 6, 2, 2, 1, 1, 2}, Case{3, 5, 8, 5, 4, 1, 3, 1, 5},
                        Case{2, 4, 11, 8, 3, 3, 2, 2, 4}, Case{1, 2, 5, 3, 5, 1, 0, 1, 1}, Case{2, 6, 7, 3, 1, 1, 0, 1, 3}})
    for (DType dtype : {DType::Float64, DType::Float32})
      for (bool with_bias : {true, false}) {
        Tensor x = make({c.B, c.Cin, c.L}, dtype, Layout::Transposed, g);
        Tensor w = make({c.Cout, c.Cin / c.groups, c.K}, dtype, Layout::Contiguous, g);
        Tensor b = with_bias ? make({c.Cout}, dtype, Layout::Contiguous, g) : Tensor();
        const int64_t Lout = (c.L + 2 * c.padding - c.dilation * (c.K - 1) - 1) / c.stride + 1;
        Tensor y = conv1d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
        REQUIRE(y.shape() == (Shape{c.B, c.Cout, Lout}));
        const Tol tol = dtype == DType::Float64 ? Tol{1e-13, 1e-13} : Tol{1e-5, 1e-5};
        check_values(y, ref_conv(x, w, b, c.stride, c.padding, Lout, c.dilation, c.groups), tol, "conv1d");
        Tensor yc = conv1d_causal(x, w, b, c.stride, c.dilation, c.groups);
        const int64_t Lc = (c.L - 1) / c.stride + 1;
        REQUIRE(yc.shape() == (Shape{c.B, c.Cout, Lc}));
        check_values(yc, ref_conv(x, w, b, c.stride, c.dilation * (c.K - 1), Lc, c.dilation, c.groups), tol,
                     "conv1d_causal");
      }
}

TEST_CASE("conv1d_causal: output t reads inputs up to t only; depthwise runs causal_conv1d, same values and gradients") {
  Generator g(17);
  const int64_t B = 2, C = 5, T = 9, K = 4;
  Tensor x0 = randn({B, C, T}, g, DType::Float64), w0 = randn({C, 1, K}, g, DType::Float64),
         b0 = randn({C}, g, DType::Float64), up = randn({B, C, T}, g, DType::Float64);
  // Changing x at t0 leaves every output before t0 unchanged.
  Tensor y = conv1d_causal(x0, w0, b0, 1, 1, C);
  Tensor x1 = core::clone(x0);
  core::copy_into(core::narrow(x1, 2, 6, 1), full({B, C, 1}, 100.0, DType::Float64));
  Tensor y1 = conv1d_causal(x1, w0, b0, 1, 1, C);
  CHECK(same_bits(narrow(y, 2, 0, 6), narrow(y1, 2, 0, 6)));
  CHECK(!same_bits(narrow(y, 2, 6, 1), narrow(y1, 2, 6, 1)));
  // The fused path (depthwise, stride 1) against the general one: conv1d with k-1 zeros on both
  // sides, first T outputs; and against causal_conv1d in its own [B, T, C] layout.
  Tensor xa = leaf(x0), wa = leaf(w0), ba = leaf(b0), xb = leaf(x0), wb = leaf(w0), bb = leaf(b0);
  Tensor ya = conv1d_causal(xa, wa, ba, 1, 1, C), yb = narrow(conv1d(xb, wb, bb, 1, K - 1, 1, C), 2, 0, T);
  check_values(ya, values(yb), Tol{1e-14, 1e-14}, "fused vs general");
  check_values(ya, values(transpose(causal_conv1d(transpose(x0, 1, 2), w0, b0, Tensor(), false), 1, 2)), Tol{},
               "vs causal_conv1d");
  (ya * up).backward(ones({B, C, T}, DType::Float64));
  (yb * up).backward(ones({B, C, T}, DType::Float64));
  check_values(xa.grad(), grad_values(xb), Tol{1e-13, 1e-13}, "dx");
  check_values(wa.grad(), grad_values(wb), Tol{1e-13, 1e-13}, "dw");
  check_values(ba.grad(), grad_values(bb), Tol{1e-13, 1e-13}, "db");
}

TEST_CASE("conv1d gives the same bits on one thread and on all, and rejects bad shapes") {
  Generator g(18);
  Tensor x = randn({8, 16, 300}, g), w = randn({32, 8, 5}, g), up = randn({8, 32, 296}, g);
  const int64_t threads = num_threads();
  Tensor grads[2][2];
  for (int p = 0; p < 2; ++p) {
    set_num_threads(p ? threads : 1);
    Tensor xl = leaf(x), wl = leaf(w);
    (conv1d(xl, wl, Tensor(), 1, 0, 1, 2) * up).backward(ones(up.shape()));
    grads[p][0] = xl.grad(), grads[p][1] = wl.grad();
  }
  set_num_threads(threads);
  CHECK(same_bits(grads[0][0], grads[1][0]));
  CHECK(same_bits(grads[0][1], grads[1][1]));
  check_error([] { conv1d(ones({2, 3, 5}), ones({4, 2, 3})); }, {"[conv1d]", "[4, 2, 3]", "[4, 3, k >= 1]"});
  check_error([] { conv1d(ones({2, 3, 5}), ones({4, 1, 3}), Tensor(), 1, 0, 1, 3); }, {"[conv1d]", "groups 3", "C_out 4"});
  check_error([] { conv1d(ones({2, 3, 2}), ones({4, 3, 3})); }, {"[conv1d]", "length 2", "span 3"});
  check_error([] { conv1d(ones({3, 5}), ones({4, 3, 3})); }, {"[conv1d]", "[3, 5]"});
  check_error([] { conv1d(ones({2, 3, 5}), ones({4, 3, 3}), ones({3})); }, {"[conv1d]", "bias [3]"});
  check_error([] { conv1d(ones({2, 3, 5}), ones({4, 3, 3}), Tensor(), 0); }, {"[conv1d]", "stride 0"});
  check_error([] { conv1d_causal(ones({2, 3, 5}), ones({4, 3, 3}, DType::Float64)); }, {"[conv1d_causal]", "float64"});
}
