// clamp, gelu, erf, sign, isnan/isfinite, eye, arange, flip, repeat, pad, var/std and prod
// against plain double loops over the inputs (every memory layout, float32 and float64), and
// their gradients against closed forms the loops compute independently.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "core_test_util.h"

using namespace rotor;
using namespace testutil;

namespace {
Tol ulps(DType d, double rel, double abs = 0) { return {rel * unit_roundoff(d), abs * unit_roundoff(d)}; }

// Row-major multi-index of linear position i in shape.
Index unravel(int64_t i, const Shape& shape) {
  Index idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}
}  // namespace

TEST_CASE("erf, gelu (exact and tanh), sign against double references in every layout") {
  Generator g(11);
  const struct {
    const char* name;
    Tensor (*fn)(const Tensor&);
    double (*ref)(double);
    double rel_u, abs_u;
  } cases[] = {
      // xsimd's erf is within ~20 ulp in float64 (measured 4e-15 near |erf| = 1).
      {"erf", [](const Tensor& x) { return rotor::erf(x); }, [](double x) { return std::erf(x); }, 32, 32},
      // x Phi(x) written with erfc, which is accurate where 1 + erf(x) cancels (x << 0).
      {"gelu", [](const Tensor& x) { return gelu(x); }, [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); },
       32, 64},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); },
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }, 16, 16},
      {"sign", [](const Tensor& x) { return rotor::sign(x); }, [](double x) { return double((x > 0) - (x < 0)); }, 0, 0},
  };
  for (const auto& c : cases)
    for (DType dt : {DType::Float32, DType::Float64})
      for (Layout l : kLayouts) {
        Tensor x = make({5, 7}, dt, l, g, -5.0, 5.0);
        Tensor y = c.fn(x);
        CHECK(y.dtype() == dt);
        std::vector<double> ref;
        for (double v : values(x)) ref.push_back(c.ref(v));
        check_values(y, ref, ulps(dt, c.rel_u, c.abs_u), std::string(c.name) + " " + layout_name(l));
      }
  // sign keeps int64 and maps 0 to 0; erf of integers is float32.
  Tensor i = from_vector<int64_t>({-7, 0, 3});
  CHECK(sign(i).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 1});
  CHECK(sign(from_vector<double>({0.0, -0.0})).to_vector<double>() == std::vector<double>{0, 0});
  CHECK(rotor::erf(i).dtype() == DType::Float32);
  CHECK(contains(error_of([&] { gelu(i, "exact"); }), "[gelu]"));
  // Limits: gelu(x) -> x for large x, -> 0 for very negative x, and erf saturates at +-1.
  Tensor big = from_vector<double>({-40, 40});
  check_values(gelu(big), {0, 40}, Tol{1e-15, 1e-300}, "gelu tails");
  check_values(rotor::erf(big), {-1, 1}, Tol{}, "erf tails");
}

TEST_CASE("gelu, erf and sign gradients match their closed forms") {
  Generator g(12);
  Tensor x = rand({40}, g, DType::Float64, -4.0, 4.0).requires_grad_();
  const std::vector<double> xv = values(x);
  auto grad_of = [&](Tensor y) {
    x.zero_grad();
    sum(y).backward();
    return x.grad();
  };
  std::vector<double> de, dg, dt;
  for (double v : xv) {
    de.push_back(2 / std::sqrt(M_PI) * std::exp(-v * v));
    const double pdf = std::exp(-v * v / 2) / std::sqrt(2 * M_PI);
    dg.push_back(0.5 * std::erfc(-v / std::sqrt(2.0)) + v * pdf);
    // d/dx of the tanh form, by central differences in long double (an independent route).
    auto f = [](long double u) {
      return 0.5L * u * (1 + std::tanh(std::sqrt(2.0L / M_PI) * (u + 0.044715L * u * u * u)));
    };
    const long double h = 1e-6L;
    dt.push_back(double((f(v + h) - f(v - h)) / (2 * h)));
  }
  check_values(grad_of(rotor::erf(x)), de, Tol{1e-14, 1e-15}, "erf'");
  check_values(grad_of(gelu(x)), dg, Tol{1e-14, 1e-15}, "gelu'");
  check_values(grad_of(gelu(x, "tanh")), dt, Tol{1e-8, 1e-9}, "gelu_tanh'");
  check_values(grad_of(sign(x)), std::vector<double>(xv.size(), 0.0), Tol{}, "sign'");
}

TEST_CASE("isnan and isfinite") {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x = core::to_dtype(from_vector<double>({1.0, nan, inf, -inf, 0.0, -nan, 1e300}), dt);
    const bool big_is_inf = dt == DType::Float32;  // 1e300 overflows to inf in float32
    CHECK(isnan(x).dtype() == DType::Bool);
    check_values(isnan(x), {0, 1, 0, 0, 0, 1, 0}, Tol{}, "isnan");
    check_values(isfinite(x), {1, 0, 0, 0, 1, 0, big_is_inf ? 0.0 : 1.0}, Tol{}, "isfinite");
    check_values(isnan(core::transpose(reshape(core::to_dtype(arange(6), dt), {2, 3}), 0, 1)), std::vector<double>(6, 0),
                 Tol{}, "isnan transposed");
  }
  Tensor i = from_vector<int64_t>({1, 2});
  check_values(isnan(i), {0, 0}, Tol{}, "isnan int64");
  check_values(isfinite(i), {1, 1}, Tol{}, "isfinite int64");
}

TEST_CASE("clamp: values, bounds included in the gradient, dtypes and NaN") {
  Generator g(13);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Layout l : kLayouts) {
      Tensor x = make({4, 6}, dt, l, g, -2.0, 2.0);
      std::vector<double> both, lo_only, hi_only;
      for (double v : values(x)) {
        both.push_back(std::min(std::max(v, double(float(-0.5))), double(float(0.75))));
        lo_only.push_back(std::max(v, 0.0));
        hi_only.push_back(std::min(v, 1.0));
      }
      check_values(clamp(x, -0.5, 0.75), both, dt == DType::Float32 ? Tol{} : Tol{1e-7, 0}, "clamp both");
      check_values(clamp(x, 0.0), lo_only, Tol{}, "clamp min");
      check_values(clamp(x, std::nullopt, 1), hi_only, Tol{}, "clamp max");
    }
  // The gradient passes where min <= x <= max, the bounds themselves included (as PyTorch).
  Tensor x = from_vector<double>({-2, -1, 0, 1, 2}).requires_grad_();
  sum(clamp(x, -1, 1) * from_vector<double>({1, 2, 3, 4, 5})).backward();
  check_values(x.grad(), {0, 2, 3, 4, 0}, Tol{}, "clamp gradient");
  // min > max gives max everywhere; NaN stays NaN.
  check_values(clamp(from_vector<double>({-5, 0, 5}), 2, 1), {1, 1, 1}, Tol{}, "min > max");
  CHECK(std::isnan(clamp(from_vector<double>({std::nan("")}), 0, 1).item<double>()));
  // int64 with integer bounds stays int64; a floating bound promotes to float32.
  Tensor i = from_vector<int64_t>({-3, 0, 9});
  CHECK(clamp(i, -1, 5).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 5});
  CHECK(clamp(i, 0.5).dtype() == DType::Float32);
  check_values(clamp(i, 0.5), {0.5, 0.5, 9}, Tol{}, "int64 clamp 0.5");
  CHECK(contains(error_of([&] { clamp(i, std::nullopt, std::nullopt); }), "[clamp]"));
}

TEST_CASE("eye and arange") {
  for (auto [n, m] : {std::pair<int64_t, int64_t>{3, -1}, {2, 4}, {4, 2}, {0, 3}}) {
    Tensor e = eye(n, m, DType::Float64);
    const int64_t cols = m < 0 ? n : m;
    REQUIRE(e.shape() == Shape{n, cols});
    std::vector<double> ref;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < cols; ++c) ref.push_back(r == c ? 1 : 0);
    check_values(e, ref, Tol{}, "eye");
  }
  CHECK(eye(2).dtype() == DType::Float32);
  CHECK(eye(2, 2, DType::Int64).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 1});
  CHECK(contains(error_of([] { eye(-1); }), "[eye]"));
  // dtype inferred as PyTorch: integers give int64, any floating argument float32.
  CHECK(arange(5).dtype() == DType::Int64);
  CHECK(arange(1, 10, 3).to_vector<int64_t>() == std::vector<int64_t>{1, 4, 7});
  CHECK(arange(5, 0, -2).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 1});
  Tensor f = arange(0, 1, 0.25);
  CHECK(f.dtype() == DType::Float32);
  check_values(f, {0, 0.25, 0.5, 0.75}, Tol{}, "arange 0.25");
  CHECK(arange(0.0, 3.0).dtype() == DType::Float32);
  CHECK(arange(3, DType::Float64).dtype() == DType::Float64);
  CHECK(arange(0, 0).numel() == 0);
  const int64_t big = int64_t(1) << 60;  // integer steps are exact past 2^53
  CHECK(arange(big, big + 3).to_vector<int64_t>() == std::vector<int64_t>{big, big + 1, big + 2});
}

TEST_CASE("flip reverses the given dims of any layout") {
  Generator g(14);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (Layout l : kLayouts) {
      const Shape shape{3, 4, 2};
      Tensor x = make(shape, dt, l, g, -5, 5);
      for (const std::vector<int64_t>& dims : {std::vector<int64_t>{0}, {-1}, {0, 2}, {1, 0, 2}, {}}) {
        Tensor y = flip(x, dims);
        REQUIRE(y.shape() == shape);
        std::vector<double> ref;
        for (int64_t i = 0; i < x.numel(); ++i) {
          Index idx = unravel(i, shape);
          for (int64_t d : dims) {
            const size_t dd = size_t(d < 0 ? d + 3 : d);
            idx[dd] = shape[dd] - 1 - idx[dd];
          }
          ref.push_back(read_at(x, idx));
        }
        check_values(y, ref, Tol{}, std::string("flip ") + layout_name(l) + " " + shape_str(dims));
      }
    }
  CHECK(flip(zeros({0, 3}), {0}).shape() == Shape{0, 3});
  CHECK(contains(error_of([] { flip(zeros({2}), {1}); }), "[flip]"));
}

TEST_CASE("repeat tiles like torch.Tensor.repeat") {
  Generator g(15);
  for (Layout l : kLayouts) {
    Tensor x = make({2, 3}, DType::Float64, l, g);
    for (const std::vector<int64_t>& sizes : {std::vector<int64_t>{1, 1}, {2, 3}, {3, 1, 2}, {2, 0}, {1, 2, 1, 1}}) {
      Tensor y = repeat(x, sizes);
      Shape expect;
      const size_t lead = sizes.size() - 2;
      for (size_t d = 0; d < sizes.size(); ++d) expect.push_back(sizes[d] * (d < lead ? 1 : x.shape()[d - lead]));
      REQUIRE(y.shape() == expect);
      std::vector<double> ref;
      for (int64_t i = 0; i < y.numel(); ++i) {
        Index o = unravel(i, expect);
        ref.push_back(read_at(x, {o[lead] % 2, o[lead + 1] % 3}));
      }
      check_values(y, ref, Tol{}, std::string("repeat ") + layout_name(l) + " " + shape_str(sizes));
    }
  }
  // The gradient of each element is the number of its copies (times the upstream gradient).
  Tensor x = ones({2, 2}, DType::Float64).requires_grad_();
  sum(repeat(x, {3, 2})).backward();
  check_values(x.grad(), {6, 6, 6, 6}, Tol{}, "repeat gradient");
  CHECK(contains(error_of([] { repeat(zeros({2, 2}), {2}); }), "[repeat]"));
}

TEST_CASE("pad: constant value, last dim first, negative pads crop") {
  Generator g(16);
  for (DType dt : {DType::Float32, DType::Int64})
    for (Layout l : kLayouts) {
      const Shape shape{2, 3, 4};
      Tensor x = make(shape, dt, l, g, -5, 5);
      for (const std::vector<int64_t>& pads :
           {std::vector<int64_t>{1, 2}, {0, 0, 2, 1}, {-1, 2, 1, -2}, {1, 1, 1, 1, 1, 1}, {-4, 0}, {}}) {
        Tensor y = pad(x, pads, 7);
        Shape expect = shape;
        std::vector<int64_t> left(3, 0);
        for (size_t k = 0; k < pads.size() / 2; ++k) {
          left[2 - k] = pads[2 * k];
          expect[2 - k] += pads[2 * k] + pads[2 * k + 1];
        }
        REQUIRE(y.shape() == expect);
        std::vector<double> ref;
        for (int64_t i = 0; i < y.numel(); ++i) {
          Index o = unravel(i, expect), src(3);
          bool inside = true;
          for (size_t d = 0; d < 3; ++d) {
            src[d] = o[d] - left[d];
            inside = inside && src[d] >= 0 && src[d] < shape[d];
          }
          ref.push_back(inside ? read_at(x, src) : 7.0);
        }
        check_values(y, ref, Tol{}, std::string("pad ") + layout_name(l) + " " + shape_str(pads));
      }
    }
  // The gradient is the window of the upstream gradient that x landed in.
  Tensor x = ones({2, 3}, DType::Float64).requires_grad_();
  Tensor w = reshape(to_dtype(arange(12), DType::Float64), {3, 4});
  sum(pad(x, {-1, 2, 1, 0}) * w).backward();  // out [3, 4]: row 0 padding, cols = x[:, 1:] then 2 pads
  check_values(x.grad(), {0, 4, 5, 0, 8, 9}, Tol{}, "pad gradient");
  CHECK(contains(error_of([] { pad(zeros({2}), {1}); }), "[pad]"));
  CHECK(contains(error_of([] { pad(zeros({2}), {1, 1, 1, 1}); }), "[pad]"));
  CHECK(contains(error_of([] { pad(zeros({2}), {-2, -1}); }), "[pad]"));
  CHECK(contains(error_of([] { pad(zeros({2}, DType::Int64), {1, 1}, 0.5); }), "[pad]"));
}

TEST_CASE("var and std with PyTorch's correction, over any dims") {
  Generator g(17);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Layout l : kLayouts) {
      const Shape shape{3, 4, 5};
      Tensor x = make(shape, dt, l, g, -2.0, 3.0);
      const std::vector<double> v = values(x);
      for (const std::vector<int64_t>& dims : {std::vector<int64_t>{}, {1}, {0, 2}, {-1}})
        for (double correction : {0.0, 1.0, 2.5}) {
          // Group elements by the kept dims' index (row-major over the kept dims).
          std::vector<bool> red(3, dims.empty());
          for (int64_t d : dims) red[size_t(d < 0 ? d + 3 : d)] = true;
          Shape kept;
          for (size_t d = 0; d < 3; ++d)
            if (!red[d]) kept.push_back(shape[d]);
          const int64_t groups = shape_numel(kept);
          std::vector<std::vector<double>> members(static_cast<size_t>(groups));
          for (int64_t i = 0; i < x.numel(); ++i) {
            Index idx = unravel(i, shape);
            int64_t k = 0;
            for (size_t d = 0; d < 3; ++d)
              if (!red[d]) k = k * shape[d] + idx[d];
            members[size_t(k)].push_back(v[size_t(i)]);
          }
          std::vector<double> rv, rs;
          for (const auto& m : members) {
            double mu = 0, ss = 0;
            for (double e : m) mu += e;
            mu /= double(m.size());
            for (double e : m) ss += (e - mu) * (e - mu);
            rv.push_back(ss / (double(m.size()) - correction));
            rs.push_back(std::sqrt(rv.back()));
          }
          const std::string what = std::string(layout_name(l)) + " dims " + shape_str(dims) + " correction " +
                                   std::to_string(correction);
          Tensor tv = var(x, dims, correction);
          CHECK(tv.dtype() == dt);
          // Absolute terms for groups of equal values (the expanded layout), whose exact variance
          // is 0: the mean's rounding leaves deviations of about u |x| (|x| < 3), squared in var.
          const double u = unit_roundoff(dt);
          check_values(tv, rv, Tol{64 * u, 64 * 9 * u * u}, "var " + what);
          check_values(rotor::std(x, dims, correction), rs, ulps(dt, 64, 16 * 3), "std " + what);
          CHECK(var(x, dims, correction, true).dim() == 3);
        }
    }
  // One element: the unbiased estimate divides by zero (NaN, as PyTorch), the population one is 0.
  Tensor one = from_vector<double>({3.0});
  CHECK(std::isnan(var(one).item<double>()));
  CHECK(var(one, {}, 0).item<double>() == 0);
  CHECK(std::isinf(var(from_vector<double>({1.0, 2.0}), {}, 2).item<double>()));
  CHECK(contains(error_of([] { var(ones({2}), {}, -1); }), "[var]"));
}

TEST_CASE("prod and its gradient with zeros") {
  Generator g(18);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Layout l : kLayouts) {
      Tensor x = make({3, 4, 2}, dt, l, g, 0.5, 1.5);
      const std::vector<double> v = values(x);
      std::vector<double> r1(6, 1.0);  // over dim 1: groups (i, k)
      double all = 1;
      for (int64_t i = 0; i < 24; ++i) {
        Index idx = unravel(i, {3, 4, 2});
        r1[size_t(idx[0] * 2 + idx[2])] *= v[size_t(i)];
        all *= v[size_t(i)];
      }
      check_values(prod(x, {1}), r1, ulps(dt, 8), std::string("prod dim 1 ") + layout_name(l));
      check_values(prod(x), {all}, ulps(dt, 32), std::string("prod all ") + layout_name(l));
      CHECK(prod(x, {-2}, true).shape() == Shape{3, 1, 2});
    }
  CHECK(prod(from_vector<int64_t>({3, -2, 5})).item<int64_t>() == -30);
  // Rows with no zero, one zero and two zeros: the gradient is the product of the others.
  const std::vector<double> rows = {2, 3, 4, 0, 3, 4, 0, 3, 0};
  Tensor x = from_vector<double>(rows, {3, 3}).requires_grad_();
  sum(prod(x, {1})).backward();
  std::vector<double> expect;
  for (int r = 0; r < 3; ++r)
    for (int j = 0; j < 3; ++j) {
      double p = 1;
      for (int k = 0; k < 3; ++k)
        if (k != j) p *= rows[size_t(r * 3 + k)];
      expect.push_back(p);
    }
  check_values(x.grad(), expect, Tol{}, "prod gradient with zeros");
  CHECK(contains(error_of([] { prod(ones({2}), {1}); }), "[prod]"));
}
