// Elementwise ops of autograd/ops.h against plain double loops: every unary and binary op on
// random shapes (size-0 and size-1 dims included) in every memory layout, broadcasting in every
// direction, float32 and float64, int64 where supported; comparisons, logic, where, masks; and
// the SIMD building blocks under them (partial batches, row sums).
// First: it includes the intrinsics headers under a diagnostic pragma (see there).
#include "rotor/kernels/gla_simd.h"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core_test_util.h"

using namespace rotor;
using namespace testutil;

namespace {

// ---- tolerance table ----
// u is the unit roundoff of the dtype (2^-24 for float32, 2^-53 for float64). The reference is
// computed in double from the very values the op saw, so it carries no input error.
//  * exact ops (neg, abs, relu, maximum, minimum, int64): equality.
//  * one IEEE rounding (add, sub, mul, div, square, sqrt, reciprocal): 2u, i.e. the op's rounding
//    plus the reference's own.
//  * xsimd transcendentals (exp, log, log1p, sin, cos, tanh; cephes-style, documented at 1-2 ulp):
//    8u relative, plus 8u absolute where the result crosses zero (log near 1, sin, cos, tanh).
//  * composites of 3-4 such steps (rsqrt, sigmoid, silu, softplus, logsigmoid): 16u.
// For float32 this is 1.2e-7 .. 9.5e-7 relative, for float64 2.2e-16 .. 1.8e-15.
Tol ulps(DType d, double rel, double abs = 0) { return {rel * unit_roundoff(d), abs * unit_roundoff(d)}; }

struct UnaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&);
  double (*ref)(double);
  double lo, hi;        // input range
  double rel_u, abs_u;  // tolerance in units of u
  bool int64;           // also defined on int64
};

double ref_sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
// Exact rewrites of log(1 + e^x) and -log(1 + e^-x) that never overflow, written differently from
// rotor's max/min form so the reference is independent.
double ref_softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double ref_logsigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }

const UnaryCase kUnary[] = {
    {"neg", [](const Tensor& x) { return rotor::neg(x); }, [](double x) { return -x; }, -3, 3, 0, 0, true},
    {"abs", [](const Tensor& x) { return rotor::abs(x); }, [](double x) { return std::fabs(x); }, -3, 3, 0, 0, true},
    {"square", [](const Tensor& x) { return rotor::square(x); }, [](double x) { return x * x; }, -3, 3, 2, 0, true},
    {"reciprocal", [](const Tensor& x) { return rotor::reciprocal(x); }, [](double x) { return 1 / x; }, 0.2, 4, 2, 0,
     false},
    {"exp", [](const Tensor& x) { return rotor::exp(x); }, [](double x) { return std::exp(x); }, -20, 20, 8, 0, false},
    {"log", [](const Tensor& x) { return rotor::log(x); }, [](double x) { return std::log(x); }, 0.01, 50, 8, 8, false},
    {"log1p", [](const Tensor& x) { return rotor::log1p(x); }, [](double x) { return std::log1p(x); }, -0.9, 5, 8, 8,
     false},
    {"sqrt", [](const Tensor& x) { return rotor::sqrt(x); }, [](double x) { return std::sqrt(x); }, 0, 50, 2, 0, false},
    {"rsqrt", [](const Tensor& x) { return rotor::rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.01, 50, 16,
     0, false},
    {"sin", [](const Tensor& x) { return rotor::sin(x); }, [](double x) { return std::sin(x); }, -10, 10, 8, 8, false},
    {"cos", [](const Tensor& x) { return rotor::cos(x); }, [](double x) { return std::cos(x); }, -10, 10, 8, 8, false},
    {"tanh", [](const Tensor& x) { return rotor::tanh(x); }, [](double x) { return std::tanh(x); }, -6, 6, 8, 8, false},
    {"sigmoid", [](const Tensor& x) { return rotor::sigmoid(x); }, ref_sigmoid, -30, 30, 16, 0, false},
    {"silu", [](const Tensor& x) { return rotor::silu(x); }, [](double x) { return x * ref_sigmoid(x); }, -30, 30, 16,
     0, false},
    {"softplus", [](const Tensor& x) { return rotor::softplus(x); }, ref_softplus, -30, 30, 16, 0, false},
    {"logsigmoid", [](const Tensor& x) { return rotor::logsigmoid(x); }, ref_logsigmoid, -30, 30, 16, 0, false},
    {"relu", [](const Tensor& x) { return rotor::relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, -3, 3, 0, 0,
     true},
};

constexpr DType kFloatTypes[] = {DType::Float32, DType::Float64};

void check_unary(const UnaryCase& c, const Tensor& x, const std::string& what) {
  Tensor y = c.fn(x);
  REQUIRE(y.shape() == x.shape());
  CHECK(y.dtype() == x.dtype());
  std::vector<double> ref;
  for (double v : values(x)) ref.push_back(c.ref(v));
  check_values(y, ref, ulps(x.dtype(), c.rel_u, c.abs_u), what);
}

}  // namespace

TEST_CASE("unary ops match double references on random shapes in every layout") {
  Generator g(101);
  for (const UnaryCase& c : kUnary)
    for (DType dt : kFloatTypes)
      for (Layout l : kLayouts)
        for (int trial = 0; trial < 3; ++trial) {
          Shape s = random_shape(g, 0, 4);
          check_unary(c, make(s, dt, l, g, c.lo, c.hi), std::string(c.name) + " " + layout_name(l));
        }
}

TEST_CASE("unary ops on large tensors (SIMD body, ragged tail, threaded loop)") {
  // 3 * 2^15 + 5 elements: several parallel blocks, and a tail that is not a multiple of any
  // batch width. The stepped layout goes through the gathering loads.
  Generator g(102);
  for (const UnaryCase& c : kUnary)
    for (DType dt : kFloatTypes) {
      check_unary(c, make({3 * 32768 + 5}, dt, Layout::Contiguous, g, c.lo, c.hi), std::string(c.name) + " large");
      check_unary(c, make({97, 1013}, dt, Layout::Stepped, g, c.lo, c.hi), std::string(c.name) + " large stepped");
    }
}

TEST_CASE("neg, abs, square and relu are exact on int64; other unary ops compute in float32") {
  Generator g(103);
  for (const UnaryCase& c : kUnary) {
    Tensor x = make({4, 5}, DType::Int64, Layout::Transposed, g, -1000, 1000);
    if (c.int64) {
      Tensor y = c.fn(x);
      CHECK(y.dtype() == DType::Int64);
      check_values(y, [&] {
        std::vector<double> r;
        for (double v : values(x)) r.push_back(c.ref(v));
        return r;
      }(), Tol{}, c.name);
    } else {  // as PyTorch: integers become the default float dtype first
      Tensor y = c.fn(x);
      CHECK(y.dtype() == DType::Float32);
      CHECK_MESSAGE(same_bits(y, c.fn(core::to_dtype(x, DType::Float32))), c.name);
    }
  }
}

TEST_CASE("logsigmoid, softplus and sigmoid are finite and exact at extreme inputs") {
  // The exact values: logsigmoid(x) = -log(1 + e^-x); at x = 1e4 it is -e^-1e4 (0 in any
  // float), at -1e4 it is -1e4; at +-100 it is -3.7e-44 and -100 - 3.7e-44.
  for (DType dt : kFloatTypes) {
    Tensor x = from_vector<double>({1e4, -1e4, 100, -100, 0, 30, -30}, {7});
    x = core::to_dtype(x, dt);
    std::vector<double> xs = values(x);
    const Tol tol = ulps(dt, 16);
    for (auto [name, fn, ref] : {std::tuple{"logsigmoid", &rotor::logsigmoid, &ref_logsigmoid},
                                 std::tuple{"softplus", &rotor::softplus, &ref_softplus},
                                 std::tuple{"sigmoid", &rotor::sigmoid, &ref_sigmoid}}) {
      Tensor y = fn(x);
      std::vector<double> r;
      for (double v : xs) r.push_back(ref(v));
      for (double v : values(y)) CHECK_MESSAGE(std::isfinite(v), name, " gave ", v);
      check_values(y, r, tol, std::string(name) + " extremes");
    }
    CHECK(values(rotor::logsigmoid(x))[1] == -1e4);
    CHECK(values(rotor::softplus(x))[0] == 1e4);
  }
}

// ---- binary ----

namespace {

struct BinaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
  double lo_a, hi_a, lo_b, hi_b;
  double rel_u;  // tolerance in units of u (pow computes its own)
  bool int64;
};

const BinaryCase kBinary[] = {
    {"add", [](const Tensor& a, const Tensor& b) { return rotor::add(a, b); }, [](double a, double b) { return a + b; },
     -3, 3, -3, 3, 2, true},
    {"sub", [](const Tensor& a, const Tensor& b) { return rotor::sub(a, b); }, [](double a, double b) { return a - b; },
     -3, 3, -3, 3, 2, true},
    {"mul", [](const Tensor& a, const Tensor& b) { return rotor::mul(a, b); }, [](double a, double b) { return a * b; },
     -3, 3, -3, 3, 2, true},
    {"div", [](const Tensor& a, const Tensor& b) { return rotor::div(a, b); }, [](double a, double b) { return a / b; },
     -3, 3, 0.25, 3, 2, false},
    {"pow", [](const Tensor& a, const Tensor& b) { return rotor::pow(a, b); },
     [](double a, double b) { return std::pow(a, b); }, 0.1, 4, -3, 3, 0, false},
    {"maximum", [](const Tensor& a, const Tensor& b) { return rotor::maximum(a, b); },
     [](double a, double b) { return std::max(a, b); }, -3, 3, -3, 3, 0, true},
    {"minimum", [](const Tensor& a, const Tensor& b) { return rotor::minimum(a, b); },
     [](double a, double b) { return std::min(a, b); }, -3, 3, -3, 3, 0, true},
};

// pow is exp(b log a) inside xsimd: the rounding of b*log(a) is amplified by |b log a|, so the
// bound is (8 + 4|b ln a|) u: a few ulp from exp and log, plus the amplified product error.
Tol pow_tol(DType dt, double a, double b) { return ulps(dt, 8 + 4 * std::fabs(b * std::log(a))); }

void check_binary(const BinaryCase& c, const Tensor& a, const Tensor& b, const std::string& what) {
  Tensor out = c.fn(a, b);
  Shape expect = broadcast_shapes(a.shape(), b.shape(), "test");
  REQUIRE_MESSAGE(out.shape() == expect, what, ": got ", shape_str(out.shape()), " expected ", shape_str(expect));
  CHECK(out.dtype() == a.dtype());
  std::vector<double> ref;
  std::vector<Tol> tols;
  for_each_index(expect, [&](const Index& i) {
    double x = read_at(a, broadcast_index(i, a.shape())), y = read_at(b, broadcast_index(i, b.shape()));
    ref.push_back(c.ref(x, y));
    tols.push_back(a.dtype() == DType::Int64 ? Tol{}
                   : std::string(c.name) == "pow" ? pow_tol(a.dtype(), x, y)
                                                  : ulps(a.dtype(), c.rel_u));
  });
  check_values(out, ref, [&](int64_t i) { return tols[size_t(i)]; }, what);
}

}  // namespace

TEST_CASE("binary ops broadcast in every direction over every layout") {
  Generator g(201);
  for (const BinaryCase& c : kBinary)
    for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
      if (dt == DType::Int64 && !c.int64) continue;
      for (Bcast mode : kBroadcasts)
        for (int trial = 0; trial < 4; ++trial) {
          Shape out = random_shape(g, mode == Bcast::RankExtension ? 1 : 0, 4);
          auto [sa, sb] = broadcast_pair(out, mode, g);
          Layout la = kLayouts[pick(g, 0, 6)], lb = kLayouts[pick(g, 0, 6)];
          double scale = dt == DType::Int64 ? 100 : 1;
          Tensor a = make(sa, dt, la, g, c.lo_a * scale, c.hi_a * scale);
          Tensor b = make(sb, dt, lb, g, c.lo_b * scale, c.hi_b * scale);
          check_binary(c, a, b,
                       std::string(c.name) + " " + bcast_name(mode) + " " + shape_str(sa) + " " + layout_name(la) +
                           " with " + shape_str(sb) + " " + layout_name(lb));
        }
    }
}

TEST_CASE("binary ops on large broadcast operands (threaded, row and column broadcasts)") {
  Generator g(202);
  for (const BinaryCase& c : kBinary)
    for (DType dt : kFloatTypes) {
      Tensor a = make({301, 257}, dt, Layout::Contiguous, g, c.lo_a, c.hi_a);
      Tensor row = make({257}, dt, Layout::Stepped, g, c.lo_b, c.hi_b);
      Tensor col = make({301, 1}, dt, Layout::Contiguous, g, c.lo_b, c.hi_b);
      Tensor at = make({301, 257}, dt, Layout::Transposed, g, c.lo_b, c.hi_b);
      check_binary(c, a, row, std::string(c.name) + " large row");
      check_binary(c, a, col, std::string(c.name) + " large column");
      check_binary(c, a, at, std::string(c.name) + " large transposed");
    }
}

TEST_CASE("tensor-scalar ops and operators take the scalar in the tensor's dtype") {
  Generator g(203);
  for (DType dt : kFloatTypes) {
    Tensor x = make({3, 5}, dt, Layout::Transposed, g, 0.5, 2.0);
    std::vector<double> xs = values(x);
    const Tol tol = ulps(dt, 2);
    auto expect = [&](auto f) {
      std::vector<double> r;
      for (double v : xs) r.push_back(f(v));
      return r;
    };
    // 0.75, 1.5 and 3 are exact in both dtypes, so the references need no rounding of the scalar.
    check_values(add(x, 0.75), expect([](double v) { return v + 0.75; }), tol, "add scalar");
    check_values(sub(x, 1.5), expect([](double v) { return v - 1.5; }), tol, "sub scalar");
    check_values(mul(x, 3.0), expect([](double v) { return v * 3; }), tol, "mul scalar");
    check_values(div(x, 0.75), expect([](double v) { return v / 0.75; }), tol, "div scalar");
    check_values(1.5 - x, expect([](double v) { return 1.5 - v; }), tol, "scalar - tensor");
    check_values(3.0 / x, expect([](double v) { return 3 / v; }), tol, "scalar / tensor");
    check_values(0.75 * x + 1.5, expect([](double v) { return 0.75 * v + 1.5; }), ulps(dt, 4), "scalar * tensor + s");
    check_values(-x, expect([](double v) { return -v; }), Tol{}, "unary minus");
    std::vector<Tol> ptol;
    for (double v : xs) ptol.push_back(pow_tol(dt, v, 2.5));
    check_values(rotor::pow(x, 2.5), expect([](double v) { return std::pow(v, 2.5); }),
                 [&](int64_t i) { return ptol[size_t(i)]; }, "pow scalar exponent");
    check_values(rotor::pow(x, -1.0), expect([](double v) { return 1 / v; }), ulps(dt, 8), "pow -1");
    CHECK(add(x, 0.75).dtype() == dt);
  }
}

TEST_CASE("pow follows std::pow at a zero or negative base") {
  for (DType dt : kFloatTypes) {
    const double inf = std::numeric_limits<double>::infinity();
    Tensor a = core::to_dtype(from_vector<double>({0, 0, 0, 0, -2, -2, -2, -8, 2, 5}), dt);
    Tensor b = core::to_dtype(from_vector<double>({0, 2, 1, -1, 3, 2, 0.5, 1.0 / 3, 0, 0}), dt);
    std::vector<double> ref;
    std::vector<double> av = values(a), bv = values(b);
    for (size_t i = 0; i < av.size(); ++i) ref.push_back(std::pow(av[i], bv[i]));
    CHECK(ref[0] == 1);
    CHECK(ref[3] == inf);
    check_values(rotor::pow(a, b), ref, ulps(dt, 8), "pow special bases");
    // Scalar exponents and the large-tensor SIMD body take the same path.
    Tensor zeros_big = zeros({1000}, dt);
    for (double v : values(rotor::pow(zeros_big, 0.0))) REQUIRE(v == 1);
    for (double v : values(rotor::pow(zeros_big, -2.0))) REQUIRE(v == inf);
  }
}

TEST_CASE("the gradient of pow(x, 1) at x = 0 is 1") {
  // d/dx x^e = e x^(e-1): at e = 1 it needs 0^0 = 1.
  Tensor x = zeros({3}, DType::Float64);
  x.requires_grad_();
  sum(rotor::pow(x, 1.0)).backward();
  for (double v : values(x.grad())) CHECK(v == 1);
  Tensor y = zeros({2}, DType::Float64), e = ones({2}, DType::Float64);
  y.requires_grad_();
  sum(rotor::pow(y, e)).backward();
  for (double v : values(y.grad())) CHECK(v == 1);
}

TEST_CASE("int64 add, sub, mul, maximum, minimum and pow are exact; div is true division") {
  Tensor a = from_vector<int64_t>({int64_t(1) << 40, -7, 3, 0}), b = from_vector<int64_t>({3, 2, -5, 9});
  CHECK(add(a, b).to_vector<int64_t>() == std::vector<int64_t>{(int64_t(1) << 40) + 3, -5, -2, 9});
  CHECK(mul(a, b).to_vector<int64_t>() == std::vector<int64_t>{3 * (int64_t(1) << 40), -14, -15, 0});
  CHECK(sub(a, b).to_vector<int64_t>() == std::vector<int64_t>{(int64_t(1) << 40) - 3, -9, 8, -9});
  CHECK(maximum(a, b).to_vector<int64_t>() == std::vector<int64_t>{int64_t(1) << 40, 2, 3, 9});
  CHECK(minimum(a, b).to_vector<int64_t>() == std::vector<int64_t>{3, -7, -5, 0});
  CHECK(div(a, b).dtype() == DType::Float32);
  CHECK(div(a, b).to_vector<float>() ==
        std::vector<float>{float(double(int64_t(1) << 40) / 3), -3.5f, float(3.0 / -5), 0.0f});
  Tensor e = from_vector<int64_t>({1, 3, 2, 0});
  CHECK(rotor::pow(a, e).to_vector<int64_t>() == std::vector<int64_t>{int64_t(1) << 40, -343, 9, 1});
  CHECK(contains(error_of([&] { rotor::pow(a, b); }), "[pow]"));  // b has a negative exponent
}

// ---- comparisons, logic, where, masks ----

TEST_CASE("comparisons broadcast and agree with double comparisons, ties included") {
  Generator g(301);
  using Cmp = Tensor (*)(const Tensor&, const Tensor&);
  const std::pair<const char*, Cmp> ops[] = {{"eq", &eq}, {"ne", &ne}, {"lt", &lt},
                                             {"le", &le}, {"gt", &gt}, {"ge", &ge}};
  auto ref = [](int op, double x, double y) {
    switch (op) {
      case 0: return x == y;
      case 1: return x != y;
      case 2: return x < y;
      case 3: return x <= y;
      case 4: return x > y;
      default: return x >= y;
    }
  };
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (Bcast mode : kBroadcasts)
      for (int op = 0; op < 6; ++op) {
        Shape out = random_shape(g, mode == Bcast::RankExtension ? 1 : 0, 4);
        auto [sa, sb] = broadcast_pair(out, mode, g);
        // Values from {0, 1, 2}: plenty of ties. Floats are floored copies of uniforms.
        auto small = [&](const Shape& s, Layout l) {
          Tensor t = make(s, DType::Int64, l, g, 0, 3);
          return core::to_dtype(t, dt);
        };
        Tensor a = small(sa, kLayouts[pick(g, 0, 6)]), b = small(sb, Layout::Transposed);
        Tensor r = ops[op].second(a, b);
        REQUIRE(r.shape() == broadcast_shapes(sa, sb, "test"));
        CHECK(r.dtype() == DType::Bool);
        std::vector<double> expect;
        for_each_index(r.shape(), [&](const Index& i) {
          expect.push_back(ref(op, read_at(a, broadcast_index(i, sa)), read_at(b, broadcast_index(i, sb))));
        });
        check_values(r, expect, Tol{}, std::string(ops[op].first) + " " + bcast_name(mode));
      }
}

TEST_CASE("logical and, or, not on broadcast bool tensors") {
  Generator g(302);
  for (Bcast mode : kBroadcasts) {
    Shape out = random_shape(g, mode == Bcast::RankExtension ? 1 : 0, 4);
    auto [sa, sb] = broadcast_pair(out, mode, g);
    Tensor a = make(sa, DType::Bool, Layout::Permuted, g), b = make(sb, DType::Bool, Layout::Stepped, g);
    std::vector<double> r_and, r_or, r_not;
    Shape s = broadcast_shapes(sa, sb, "test");
    for_each_index(s, [&](const Index& i) {
      bool x = read_at(a, broadcast_index(i, sa)) != 0, y = read_at(b, broadcast_index(i, sb)) != 0;
      r_and.push_back(x && y);
      r_or.push_back(x || y);
    });
    for (double v : values(a)) r_not.push_back(v == 0);
    check_values(logical_and(a, b), r_and, Tol{}, std::string("and ") + bcast_name(mode));
    check_values(logical_or(a, b), r_or, Tol{}, std::string("or ") + bcast_name(mode));
    check_values(logical_not(a), r_not, Tol{}, "not");
  }
  CHECK(contains(error_of([] { logical_and(ones({2}), ones({2})); }), "bool"));
}

TEST_CASE("where broadcasts condition and both branches, for floats and int64") {
  Generator g(303);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (int trial = 0; trial < 12; ++trial) {
      Shape out = random_shape(g, 0, 4);
      Shape sc = pick(g, 0, 2) ? ones_in(out, g) : out;
      auto [sa, sb] = broadcast_pair(out, kBroadcasts[trial % 6], g);
      Tensor c = make(sc, DType::Bool, kLayouts[pick(g, 0, 6)], g);
      Tensor a = make(sa, dt, kLayouts[pick(g, 0, 6)], g, -50, 50), b = make(sb, dt, Layout::Contiguous, g, -50, 50);
      Tensor r = where(c, a, b);
      Shape s = broadcast_shapes(broadcast_shapes(sc, sa, "t"), sb, "t");
      REQUIRE(r.shape() == s);
      std::vector<double> expect;
      for_each_index(s, [&](const Index& i) {
        expect.push_back(read_at(c, broadcast_index(i, sc)) != 0 ? read_at(a, broadcast_index(i, sa))
                                                                  : read_at(b, broadcast_index(i, sb)));
      });
      check_values(r, expect, Tol{}, "where");
    }
}

TEST_CASE("masked_fill writes the value where the broadcast mask is set") {
  Generator g(304);
  for (DType dt : kFloatTypes) {
    Tensor x = make({2, 3, 4}, dt, Layout::ViewOfView, g);
    Tensor mask = make({3, 1}, DType::Bool, Layout::Contiguous, g);
    Tensor r = masked_fill(x, mask, -7.5);
    std::vector<double> expect;
    for_each_index(x.shape(), [&](const Index& i) {
      expect.push_back(read_at(mask, broadcast_index(i, mask.shape())) != 0 ? -7.5 : read_at(x, i));
    });
    check_values(r, expect, Tol{}, "masked_fill");
    // -inf, the usual attention fill value, survives the conversion to float32.
    Tensor r2 = masked_fill(x, mask, -std::numeric_limits<double>::infinity());
    CHECK(std::isinf(values(r2)[0]) == (read_at(mask, {0, 0}) != 0));
  }
}

TEST_CASE("tril, triu and their masks on batched, non-square and strided inputs") {
  Generator g(305);
  for (int64_t k = -3; k <= 3; ++k)
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{4, 6}, {6, 4}, {5, 5}, {1, 3}, {0, 2}}) {
      Tensor lo = tril_mask(rows, cols, k), up = triu_mask(rows, cols, k);
      REQUIRE(lo.shape() == Shape{rows, cols});
      CHECK(lo.dtype() == DType::Bool);
      std::vector<double> rlo, rup;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) rlo.push_back(j <= i + k), rup.push_back(j >= i + k);
      check_values(lo, rlo, Tol{}, "tril_mask k=" + std::to_string(k));
      check_values(up, rup, Tol{}, "triu_mask k=" + std::to_string(k));

      for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
        Tensor x = make({2, rows, cols}, dt, Layout::Transposed, g, -9, 9);
        std::vector<double> tl, tu;
        for_each_index(x.shape(), [&](const Index& i) {
          double v = read_at(x, i);
          tl.push_back(i[2] <= i[1] + k ? v : 0.0);
          tu.push_back(i[2] >= i[1] + k ? v : 0.0);
        });
        check_values(tril(x, k), tl, Tol{}, "tril");
        check_values(triu(x, k), tu, Tol{}, "triu");
      }
    }
}

// ---- in place ----

TEST_CASE("in-place ops write through strided views, broadcast the source and bump the version") {
  Generator g(306);
  for (DType dt : kFloatTypes) {
    Tensor base = make({4, 6}, dt, Layout::Contiguous, g);
    Tensor dst = slice(transpose(base, 0, 1), 0, 1, 6, 2);  // [3, 4], strides (2, 6)
    const std::vector<double> before = values(dst), base_before = values(base);
    Tensor src = make({4}, dt, Layout::Stepped, g);
    const std::vector<double> sv = values(src);
    uint64_t version = base.storage()->version();

    add_(dst, src, -2.5);  // dst += -2.5 * src, src broadcast over rows
    CHECK(base.storage()->version() > version);
    std::vector<double> expect;
    for (size_t i = 0; i < before.size(); ++i) expect.push_back(before[i] + -2.5 * sv[i % 4]);
    check_values(dst, expect, ulps(dt, 4), "add_ with alpha");

    const std::vector<double> mid = values(dst);
    mul_(dst, src);
    expect.clear();
    for (size_t i = 0; i < mid.size(); ++i) expect.push_back(mid[i] * sv[i % 4]);
    check_values(dst, expect, ulps(dt, 2), "mul_");

    mul_(dst, 0.5);
    for (double& v : expect) v *= 0.5;
    check_values(dst, expect, ulps(dt, 2), "mul_ scalar");

    copy_(dst, src);
    expect.clear();
    for (size_t i = 0; i < before.size(); ++i) expect.push_back(sv[i % 4]);
    check_values(dst, expect, Tol{}, "copy_");

    // Elements of base outside the view are untouched.
    for_each_index(base.shape(), [&](const Index& i) {
      const bool in_view = i[1] % 2 == 1;
      if (!in_view) CHECK(read_at(base, i) == base_before[size_t(linear_index(i, base.shape()))]);
    });

    fill_(dst, 3.25);
    for (double v : values(dst)) CHECK(v == 3.25);
    zero_(dst);
    for (double v : values(dst)) CHECK(v == 0);
    version = base.storage()->version();
    fill_(dst, 1.0);
    CHECK(base.storage()->version() > version);
  }
  // In place on a tensor that requires grad is refused while grad mode is on.
  Tensor w = ones({3});
  w.requires_grad_();
  CHECK(contains(error_of([&] { add_(w, ones({3})); }), "[add_]"));
  {
    NoGradGuard guard;
    add_(w, ones({3}));
  }
  CHECK(values(w) == std::vector<double>{2, 2, 2});
}

TEST_CASE("maximum, minimum, relu, softplus and logsigmoid propagate NaN from either side") {
  // As NumPy and PyTorch: a NaN input must not be swallowed (relu(NaN) = 0 would hide a
  // diverging run), and maximum(a, b) must not depend on the operand order.
  const double nan = std::nan("");
  for (DType dt : kFloatTypes)
    for (int64_t n : {1, 7, 16, 37}) {  // scalar tails and SIMD bodies
      for (int64_t at = 0; at < n; at += 3) {
        Tensor x = core::clone(core::to_dtype(arange(0.0, double(n), 1.0, DType::Float64), dt));
        core::copy_into(core::narrow(x, 0, at, 1), scalar_tensor(nan, dt));
        Tensor other = full({n}, 2.5, dt);
        for (auto [name, y] : {std::pair{"maximum(x, c)", maximum(x, other)}, {"maximum(c, x)", maximum(other, x)},
                               {"minimum(x, c)", minimum(x, other)}, {"minimum(c, x)", minimum(other, x)},
                               {"relu", relu(x)}, {"softplus", softplus(x)}, {"logsigmoid", logsigmoid(x)}}) {
          std::vector<double> v = values(y);
          for (int64_t i = 0; i < n; ++i)
            CHECK_MESSAGE(std::isnan(v[size_t(i)]) == (i == at), name, " n=", n, " nan at ", at, " index ", i, ": ",
                          v[size_t(i)]);
        }
      }
    }
}

// ---- partial batches (kernels/simd.h) ----
// A row shorter than a batch is loaded and stored with masks where the ISA has them: every lane
// count from 0 to the batch size, against a plain loop, with sentinels past the end.
namespace {

template <class T>
void check_partial_lanes() {
  using rotor::kernels::Batch;
  constexpr int64_t W = int64_t(Batch<T>::size);
  for (int64_t n = 0; n <= W; ++n) {
    CAPTURE(n);
    std::vector<T> src(size_t(2 * W)), dst(size_t(2 * W), T(-7));
    for (int64_t j = 0; j < 2 * W; ++j) src[size_t(j)] = T(j + 1);
    alignas(64) T lanes[W];
    rotor::kernels::load_first(src.data(), n).store_aligned(lanes);
    for (int64_t j = 0; j < W; ++j) CHECK(lanes[j] == (j < n ? T(j + 1) : T(0)));
    rotor::kernels::store_first(dst.data(), Batch<T>::load_unaligned(src.data()), n);
    for (int64_t j = 0; j < 2 * W; ++j) CHECK(dst[size_t(j)] == (j < n ? T(j + 1) : T(-7)));
  }
}

}  // namespace

TEST_CASE("partial batches load the first n lanes (others zero) and store exactly n") {
  check_partial_lanes<float>();
  check_partial_lanes<double>();
}

// The horizontal sums of a full set of batches (kernels/gla_simd.h), against a plain loop; the
// values are small integers, so every summation order gives the exact sum.
namespace {

template <class T>
void check_row_sums() {
  using rotor::kernels::gla_simd::Vec;
  constexpr int64_t W = rotor::kernels::gla_simd::width<T>;
  Vec<T> rows[W];
  alignas(64) T x[W];
  for (int64_t r = 0; r < W; ++r) {
    for (int64_t j = 0; j < W; ++j) x[j] = T((r * 37 + j * 11) % 23) - T(9);
    rows[r] = Vec<T>::load_aligned(x);
  }
  alignas(64) T got[W];
  rotor::kernels::gla_simd::row_sums(rows).store_aligned(got);
  for (int64_t r = 0; r < W; ++r) {
    T want = 0;
    for (int64_t j = 0; j < W; ++j) want += T((r * 37 + j * 11) % 23) - T(9);
    CHECK(got[r] == want);
  }
}

}  // namespace

TEST_CASE("row sums of a full set of batches: lane r is the sum of batch r") {
  check_row_sums<float>();
  check_row_sums<double>();
}

// kernels/simd.h's transpose and reduce_max against plain loops: tiles of 16 and the edges
// around them, strided rows.
namespace {

template <class T>
void check_transpose() {
  for (int64_t rows : {1, 15, 16, 17, 33, 64})
    for (int64_t cols : {1, 7, 16, 31, 48}) {
      CAPTURE(rows);
      CAPTURE(cols);
      const int64_t lds = cols + 3, ldd = rows + 5;
      std::vector<T> src(size_t(rows * lds)), dst(size_t(cols * ldd), T(-1));
      for (size_t i = 0; i < src.size(); ++i) src[i] = T(i % 1000) + T(0.5);
      rotor::kernels::transpose(src.data(), lds, rows, cols, dst.data(), ldd);
      int64_t wrong = 0;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < ldd; ++r)
          wrong += dst[size_t(c * ldd + r)] != (r < rows ? src[size_t(r * lds + c)] : T(-1));
      CHECK(wrong == 0);
    }
}

template <class T>
void check_reduce_max() {
  using B = rotor::kernels::Batch<T>;
  constexpr int64_t W = rotor::kernels::batch_size<T>();
  alignas(64) T x[W];
  for (int64_t top = 0; top < W; ++top) {
    for (int64_t j = 0; j < W; ++j) x[j] = T(-100) + T(j % 5);
    x[top] = T(7.25);
    CHECK(rotor::kernels::reduce_max(B::load_aligned(x)) == T(7.25));
  }
}

}  // namespace

TEST_CASE("transpose and reduce_max equal plain loops") {
  check_transpose<float>();
  check_transpose<double>();
  check_reduce_max<float>();
  check_reduce_max<double>();
}
