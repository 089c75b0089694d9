// Dtype promotion (PyTorch's result_type), comparison operators and in-place ops on temporaries.
// The expected dtypes are PyTorch's, written out as a table from its documented rules (category
// bool < integer < float; dimensioned tensors decide within a category, 0-d tensors and scalars
// only lift the category; a floating scalar lifts an integer tensor to the default float32).
// Values are checked against plain double loops over the inputs.
#include <doctest/doctest.h>

#include <cmath>

#include "core_test_util.h"

using namespace rotor;
using namespace testutil;

namespace {
constexpr DType F32 = DType::Float32, F64 = DType::Float64, I64 = DType::Int64, B = DType::Bool;

Tensor filled(Shape s, DType d, Generator& g) {
  if (d == B) return gt(rand(s, g, DType::Float64), 0.5);
  if (d == I64) return randint(-5, 6, s, g);
  return rand(s, g, d, -3.0, 3.0);
}
}  // namespace

TEST_CASE("promote_types and result_type follow PyTorch's table") {
  struct Row {
    DType a, b, dims, a_zero_dim, both_zero_dim;  // [n] op [n], [n] op 0-d b, 0-d op 0-d
  };
  const Row rows[] = {
      {F32, F32, F32, F32, F32}, {F32, F64, F64, F32, F64}, {F64, F32, F64, F64, F64}, {F32, I64, F32, F32, F32},
      {I64, F32, F32, F32, F32}, {I64, F64, F64, F64, F64}, {I64, I64, I64, I64, I64}, {I64, B, I64, I64, I64},
      {B, I64, I64, I64, I64},   {B, B, B, B, B},           {B, F64, F64, F64, F64},   {F64, B, F64, F64, F64},
  };
  Generator g(1);
  for (const Row& r : rows) {
    Tensor a = filled({3}, r.a, g), b = filled({3}, r.b, g);
    Tensor a0 = filled({}, r.a, g), b0 = filled({}, r.b, g);
    INFO(dtype_name(r.a), " with ", dtype_name(r.b));
    CHECK(result_type(a, b) == r.dims);
    CHECK(result_type(a, b0) == r.a_zero_dim);
    CHECK(result_type(a0, b0) == r.both_zero_dim);
    CHECK(promote_types(r.a, r.b) == r.dims);
  }
  // Scalars: never widen a float tensor; a floating scalar makes integers and bools float32.
  const struct {
    DType t;
    Scalar s;
    DType expect;
  } scalars[] = {{F32, 2.5, F32}, {F64, 2.5, F64}, {F32, 2, F32}, {I64, 2.5, F32}, {I64, 2.0, F32}, {I64, 2, I64},
                 {I64, int64_t(1) << 40, I64}, {B, 2, I64}, {B, 0.5, F32}, {B, true, B}, {I64, true, I64}};
  for (const auto& c : scalars) {
    INFO(dtype_name(c.t), " with a scalar ", c.s.to_double());
    CHECK(result_type(filled({2}, c.t, g), c.s) == c.expect);
    CHECK(result_type(filled({}, c.t, g), c.s) == c.expect);
  }
  CHECK(can_cast(F64, F32));
  CHECK(can_cast(I64, F32));
  CHECK_FALSE(can_cast(F32, I64));
  CHECK_FALSE(can_cast(I64, B));
  CHECK(can_cast(B, I64));
}

TEST_CASE("binary ops promote their operands and compute in the result dtype") {
  Generator g(2);
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  const struct {
    const char* name;
    Fn fn;
    double (*ref)(double, double);
  } ops[] = {{"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
             {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
             {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
             {"maximum", rotor::maximum, [](double a, double b) { return std::max(a, b); }},
             {"minimum", rotor::minimum, [](double a, double b) { return std::min(a, b); }}};
  const std::pair<DType, DType> pairs[] = {{F32, F64}, {F64, F32}, {I64, F32}, {F64, I64}, {I64, I64}, {B, F32}, {I64, B}};
  for (const auto& op : ops)
    for (auto [da, db] : pairs) {
      Tensor a = filled({4, 3}, da, g), b = filled({3}, db, g);
      Tensor out = op.fn(a, b);
      INFO(op.name, " ", dtype_name(da), " ", dtype_name(db));
      CHECK(out.dtype() == promote_types(da, db));
      std::vector<double> va = values(a), vb = values(b), expect;
      for (size_t i = 0; i < va.size(); ++i) {
        double r = op.ref(va[i], vb[i % 3]);
        expect.push_back(out.dtype() == F32 ? double(float(r)) : r);  // one rounding into the result dtype
      }
      check_values(out, expect, Tol{}, op.name);
    }
  // True division: integers give float32.
  Tensor i = from_vector<int64_t>({7, -3, 4}), j = from_vector<int64_t>({2, 2, 3});
  Tensor q = div(i, j);
  CHECK(q.dtype() == F32);
  check_values(q, {3.5, -1.5, double(float(4.0 / 3.0))}, Tol{}, "int / int");
  CHECK(div(i, 2).dtype() == F32);
  // Integer powers stay integer and exact past 2^53; negative integer exponents are refused.
  Tensor p = pow(from_vector<int64_t>({3, -2, 5}), 3);
  CHECK(p.dtype() == I64);
  CHECK(p.to_vector<int64_t>() == std::vector<int64_t>{27, -8, 125});
  CHECK(pow(from_vector<int64_t>({3}), 38).item<int64_t>() == 1350851717672992089);
  CHECK(pow(from_vector<int64_t>({4}), 0.5).dtype() == F32);
  CHECK(contains(error_of([&] { pow(i, from_vector<int64_t>({1, -1, 2})); }), "[pow]"));
  // Floating unary ops turn integers into float32; the integer ones keep int64.
  CHECK(exp(i).dtype() == F32);
  check_values(sqrt(from_vector<int64_t>({4, 9})), {2, 3}, Tol{}, "sqrt of int64");
  CHECK(abs(i).dtype() == I64);
  CHECK(relu(i).to_vector<int64_t>() == std::vector<int64_t>{7, 0, 4});
}

TEST_CASE("a scalar keeps a float tensor's dtype and lifts an integer tensor to float32") {
  Tensor i = from_vector<int64_t>({1, 2, -3});
  Tensor half = i * 2.5;  // the example: not a silent truncation to [2, 4, -7]
  CHECK(half.dtype() == F32);
  check_values(half, {2.5, 5, -7.5}, Tol{}, "int64 * 2.5");
  CHECK((i * 2).dtype() == I64);
  CHECK((i * 2).to_vector<int64_t>() == std::vector<int64_t>{2, 4, -6});
  CHECK((i + 0.5).dtype() == F32);
  check_values(1.0 - i, {0, -1, 4}, Tol{}, "1.0 - int64");
  CHECK((1 - i).dtype() == I64);
  check_values(i / 2, {0.5, 1, -1.5}, Tol{}, "int64 / 2");
  // Integer scalars stay exact beyond 2^53.
  const int64_t big = (int64_t(1) << 60) + 1;
  CHECK((from_vector<int64_t>({1}) + big).item<int64_t>() == big + 1);
  Tensor f = from_vector<float>({1.5f});
  CHECK((f * 0.1).dtype() == F32);
  CHECK((f * 0.1).item<float>() == 1.5f * float(0.1));
  CHECK((from_vector<double>({1.5}) * 2).dtype() == F64);
  Tensor mask = from_vector<bool>({true, false, true});
  check_values(mask * 2.5, {2.5, 0, 2.5}, Tol{}, "bool * 2.5");
  CHECK((mask + 1).dtype() == I64);
}

TEST_CASE("gradients of promoted inputs come back in each input's dtype") {
  Generator g(3);
  Tensor a = rand({2, 3}, g, F32).requires_grad_();
  Tensor b = rand({3}, g, F64).requires_grad_();
  Tensor ids = from_vector<int64_t>({1, -2, 3});
  Tensor out = sum(a * b + b * ids + a / ids);
  CHECK(out.dtype() == F64);
  out.backward();
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(a.grad().dtype() == F32);
  CHECK(b.grad().dtype() == F64);
  // d/da = b + 1/ids (computed in float64, rounded to float32); d/db = sum over rows of a + ids.
  std::vector<double> va = values(a), vb = values(b), ga, gb(3, 0.0);
  const double id[] = {1, -2, 3};
  for (size_t k = 0; k < va.size(); ++k) ga.push_back(double(float(vb[k % 3] + 1.0 / id[k % 3])));
  for (size_t k = 0; k < va.size(); ++k) gb[k % 3] += va[k];
  for (size_t c = 0; c < 3; ++c) gb[c] += 2 * id[c];
  // a / ids is a float32 op, a * b a float64 one: two float32 roundings in a's gradient.
  check_values(a.grad(), ga, Tol{3e-7, 0}, "float32 grad");
  check_values(b.grad(), gb, Tol{1e-15, 0}, "float64 grad");
}

TEST_CASE("comparison operators give bool tensors, promoting their operands") {
  Generator g(4);
  using Cmp = bool (*)(double, double);
  const struct {
    const char* name;
    Tensor (*tt)(const Tensor&, const Tensor&);
    Tensor (*ts)(const Tensor&, Scalar);
    Tensor (*st)(Scalar, const Tensor&);
    Cmp ref;
  } ops[] = {
      {"==", [](const Tensor& a, const Tensor& b) { return a == b; }, [](const Tensor& a, Scalar s) { return a == s; },
       [](Scalar s, const Tensor& b) { return s == b; }, [](double x, double y) { return x == y; }},
      {"!=", [](const Tensor& a, const Tensor& b) { return a != b; }, [](const Tensor& a, Scalar s) { return a != s; },
       [](Scalar s, const Tensor& b) { return s != b; }, [](double x, double y) { return x != y; }},
      {"<", [](const Tensor& a, const Tensor& b) { return a < b; }, [](const Tensor& a, Scalar s) { return a < s; },
       [](Scalar s, const Tensor& b) { return s < b; }, [](double x, double y) { return x < y; }},
      {"<=", [](const Tensor& a, const Tensor& b) { return a <= b; }, [](const Tensor& a, Scalar s) { return a <= s; },
       [](Scalar s, const Tensor& b) { return s <= b; }, [](double x, double y) { return x <= y; }},
      {">", [](const Tensor& a, const Tensor& b) { return a > b; }, [](const Tensor& a, Scalar s) { return a > s; },
       [](Scalar s, const Tensor& b) { return s > b; }, [](double x, double y) { return x > y; }},
      {">=", [](const Tensor& a, const Tensor& b) { return a >= b; }, [](const Tensor& a, Scalar s) { return a >= s; },
       [](Scalar s, const Tensor& b) { return s >= b; }, [](double x, double y) { return x >= y; }},
  };
  for (const auto& op : ops)
    for (auto [da, db] : {std::pair{F32, F32}, {F64, F32}, {I64, F64}, {I64, I64}}) {
      INFO(op.name, " ", dtype_name(da), " ", dtype_name(db));
      // Integers drawn so that ties occur; floats compared with themselves rounded.
      Tensor a = da == I64 ? randint(-2, 3, {5, 4}, g) : core::to_dtype(randint(-2, 3, {5, 4}, g), da);
      Tensor b = db == I64 ? randint(-2, 3, {4}, g) : core::to_dtype(randint(-2, 3, {4}, g), db);
      std::vector<double> va = values(a), vb = values(b), tt, ts, st;
      for (size_t i = 0; i < va.size(); ++i) {
        tt.push_back(op.ref(va[i], vb[i % 4]));
        ts.push_back(op.ref(va[i], 0.5));
        st.push_back(op.ref(0.0, va[i]));
      }
      Tensor r = op.tt(a, b);
      CHECK(r.dtype() == B);
      CHECK(r.shape() == Shape{5, 4});
      check_values(r, tt, Tol{}, "tensor op tensor");
      check_values(op.ts(a, 0.5), ts, Tol{}, "tensor op 0.5");  // int64 compared with 0.5 as a float
      check_values(op.st(0, a), st, Tol{}, "0 op tensor");
    }
  // a == 0.0 on floats, and the mask ops on its result.
  Tensor x = from_vector<double>({0.0, -1.0, 0.0, 2.0});
  Tensor z = x == 0.0, pos = x > 0.0;
  check_values(z, {1, 0, 1, 0}, Tol{}, "== 0.0");
  check_values(z | pos, {1, 0, 1, 1}, Tol{}, "|");
  check_values(z & pos, {0, 0, 0, 0}, Tol{}, "&");
  check_values(~z, {0, 1, 0, 1}, Tol{}, "~");
  check_values(z ^ (x <= 0.0), {0, 1, 0, 0}, Tol{}, "^");
  CHECK(contains(error_of([&] { (void)(x & z); }), "[logical]"));
  // NaN compares unequal to everything, itself included.
  Tensor nan = from_vector<float>({std::nanf("")});
  CHECK_FALSE((nan == nan).item<bool>());
  CHECK((nan != nan).item<bool>());
}

TEST_CASE("where promotes its branches and takes scalars") {
  Tensor c = from_vector<bool>({true, false, true});
  Tensor a = from_vector<int64_t>({1, 2, 3});
  Tensor b = from_vector<float>({0.5f, 1.5f, 2.5f});
  Tensor w = where(c, a, b);
  CHECK(w.dtype() == F32);
  check_values(w, {1, 1.5, 3}, Tol{}, "where int64/float32");
  check_values(where(c, b, 0.0), {0.5, 0, 2.5}, Tol{}, "where tensor/scalar");
  check_values(where(c, -1, a), {-1, 2, -1}, Tol{}, "where scalar/tensor");
  CHECK(where(c, -1, a).dtype() == I64);
  CHECK(masked_fill(a, c, 7).to_vector<int64_t>() == std::vector<int64_t>{7, 2, 7});
  CHECK(contains(error_of([&] { masked_fill(a, c, 0.5); }), "[masked_fill]"));
}

TEST_CASE("in-place ops take temporaries and write the shared storage") {
  Tensor w = from_vector<float>({1, 2, 3}).requires_grad_();
  sum(w * w).backward();
  {
    NoGradGuard no_grad;
    mul_(w.grad(), 0.5);  // a temporary handle on w's gradient
    add_(w.detach(), w.grad(), -1.0);
    fill_(slice(w.detach(), 0, 2, 3), 10);
  }
  check_values(w.grad(), {1, 2, 3}, Tol{}, "grad scaled in place");
  check_values(w, {0, 0, 10}, Tol{}, "w updated through temporaries");
  Tensor base = zeros({2, 3}, I64);
  Tensor r = add_(select(base, 0, 1), from_vector<int64_t>({1, 2, 3}), 2);
  CHECK(r.shape() == Shape{3});
  CHECK(base.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 2, 4, 6});
  mul_(mul_(select(base, 0, 1), 3), 2);  // chained
  CHECK(base.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 12, 24, 36});
  // Mixed dtypes: the result is cast into dst when PyTorch allows it, refused otherwise.
  Tensor f = zeros({2});
  add_(f, from_vector<double>({0.1, 0.2}));
  check_values(f, {double(float(0.1)), double(float(0.2))}, Tol{}, "float32 += float64");
  add_(f, from_vector<int64_t>({1, 1}));
  CHECK(f.dtype() == F32);
  CHECK(contains(error_of([&] { add_(base, ones({3})); }), "[add_]"));
  CHECK(contains(error_of([&] { add_(base, base, 0.5); }), "[add_]"));
  CHECK(contains(error_of([&] { mul_(base, 0.5); }), "[mul_]"));
  CHECK(contains(error_of([&] { mul_(zeros({2}, B), from_vector<int64_t>({1, 2})); }), "[mul_]"));
}
