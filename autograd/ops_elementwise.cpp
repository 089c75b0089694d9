// Elementwise ops: forward through kernels/elementwise, backward from library ops, and a
// gradcheck case for each. Broadcast gradients are summed back by the engine, not here.
#include <cmath>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"
#include "rotor/kernels/elementwise.h"

namespace rotor {

using kernels::Binary;
using kernels::Unary;

namespace {
Tensor scalar_like(const Tensor& t, double v) { return scalar_tensor(v, t.dtype()); }

// x in dtype d: x itself when it already is (no graph node), else a differentiable conversion,
// so the gradient of a promoted input comes back in its own dtype.
Tensor as_dtype(const Tensor& x, DType d) { return x.dtype() == d ? x : to_dtype(x, d); }

// The operands of a binary op in their common dtype (kDefaultFloat at least when to_float).
std::pair<Tensor, Tensor> promoted(const Tensor& a, const Tensor& b, bool to_float = false) {
  ROTOR_CHECK(a.defined() && b.defined(), "promote", "undefined operand");
  DType d = result_type(a, b);
  if (to_float && !is_floating(d)) d = kDefaultFloat;
  return {as_dtype(a, d), as_dtype(b, d)};
}

// A scalar operand as the 0-d tensor PyTorch wraps it in: of a's dtype when that holds it, of
// the promoted dtype otherwise (int64 tensor * 2.5 -> float32).
Tensor scalar_operand(const Tensor& a, const Scalar& s) {
  ROTOR_CHECK(a.defined(), "scalar op", "undefined tensor");
  return scalar_tensor(s, result_type(a, s));
}
}  // namespace

// ---- binary ----

static const OpDef kAdd{"add"}, kSub{"sub"}, kMul{"mul"}, kDiv{"div"}, kPow{"pow"}, kPowScalar{"pow_scalar"},
    kMaximum{"maximum"}, kMinimum{"minimum"};

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  Tensor out = kernels::binary(Binary::Add, a, b);
  if (needs_grad({a, b})) record(kAdd, {a, b}, {out}, [](const TensorList& g, auto&) { return TensorList{g[0], g[0]}; });
  return out;
}

Tensor sub(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  Tensor out = kernels::binary(Binary::Sub, a, b);
  if (needs_grad({a, b}))
    record(kSub, {a, b}, {out}, [](const TensorList& g, const std::vector<bool>& needs) {
      return TensorList{g[0], needs[1] ? neg(g[0]) : Tensor()};
    });
  return out;
}

Tensor mul(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  Tensor out = kernels::binary(Binary::Mul, a, b);
  if (needs_grad({a, b}))
    // Each factor is needed only for the other's gradient: x * 0.5 keeps nothing of x alive.
    record(kMul, {a, b}, {out},
           [sa = save_if(b.requires_grad(), a), sb = save_if(a.requires_grad(), b)](const TensorList& g,
                                                                                     const std::vector<bool>& needs) {
      return TensorList{needs[0] ? mul(g[0], sb.get()) : Tensor(), needs[1] ? mul(g[0], sa.get()) : Tensor()};
    });
  return out;
}

Tensor div(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in, true);
  Tensor out = kernels::binary(Binary::Div, a, b);
  if (needs_grad({a, b}))
    record(kDiv, {a, b}, {out},
           [so = save_if(b.requires_grad(), out), sb = save(b)](const TensorList& g, const std::vector<bool>& needs) {
      Tensor ga = div(g[0], sb.get());
      return TensorList{needs[0] ? ga : Tensor(), needs[1] ? neg(mul(ga, so.get())) : Tensor()};
    });
  return out;
}

namespace {
void check_int_exponent(const Tensor& e) {
  if (e.dtype() != DType::Int64) return;
  for (int64_t v : e.to_vector<int64_t>())
    ROTOR_CHECK(v >= 0, "pow", "an integer tensor to the negative integer power ", v, "; convert to float first");
}
}  // namespace

Tensor pow(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  check_int_exponent(b);
  Tensor out = kernels::binary(Binary::Pow, a, b);
  if (needs_grad({a, b}))
    record(kPow, {a, b}, {out},
           [sa = save(a), sb = save(b), so = save(out)](const TensorList& g, const std::vector<bool>& needs) {
             const Tensor &x = sa.get(), &e = sb.get(), &y = so.get();
             Tensor ga, gb;
             if (needs[0]) ga = mul(g[0], mul(e, pow(x, sub(e, scalar_like(e, 1.0)))));
             // d/de x^e = x^e log x; where x == 0 and e >= 0 the limit is 0, not NaN.
             if (needs[1]) {
               Tensor zero = scalar_like(x, 0.0);
               Tensor safe = where(logical_and(eq(x, zero), ge(e, zero)), zero, mul(y, log(x)));
               gb = mul(g[0], safe);
             }
             return TensorList{ga, gb};
           });
  return out;
}

Tensor pow(const Tensor& a_in, Scalar exponent) {
  Tensor e = scalar_operand(a_in, exponent);
  Tensor a = as_dtype(a_in, e.dtype());
  check_int_exponent(e);
  Tensor out = kernels::binary(Binary::Pow, a, e);
  if (needs_grad({a}))
    record(kPowScalar, {a}, {out}, [sa = save(a), p = exponent.to_double()](const TensorList& g, auto&) {
      return TensorList{mul(g[0], mul(pow(sa.get(), p - 1.0), p))};
    });
  return out;
}

namespace {
// Gradient of maximum/minimum: the chosen side takes it, ties split it evenly (as PyTorch).
Tensor choose_grad(const Tensor& g, const Tensor& mine, const Tensor& other, bool want_max) {
  Tensor win = want_max ? gt(mine, other) : lt(mine, other);
  Tensor zero = scalar_like(g, 0.0);
  return add(where(win, g, zero), where(eq(mine, other), mul(g, 0.5), zero));
}
}  // namespace

Tensor maximum(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  Tensor out = kernels::binary(Binary::Maximum, a, b);
  if (needs_grad({a, b}))
    record(kMaximum, {a, b}, {out}, [sa = save(a), sb = save(b)](const TensorList& g, const std::vector<bool>& n) {
      return TensorList{n[0] ? choose_grad(g[0], sa.get(), sb.get(), true) : Tensor(),
                        n[1] ? choose_grad(g[0], sb.get(), sa.get(), true) : Tensor()};
    });
  return out;
}

Tensor minimum(const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  Tensor out = kernels::binary(Binary::Minimum, a, b);
  if (needs_grad({a, b}))
    record(kMinimum, {a, b}, {out}, [sa = save(a), sb = save(b)](const TensorList& g, const std::vector<bool>& n) {
      return TensorList{n[0] ? choose_grad(g[0], sa.get(), sb.get(), false) : Tensor(),
                        n[1] ? choose_grad(g[0], sb.get(), sa.get(), false) : Tensor()};
    });
  return out;
}

// ---- unary: one table row per op, derivative in terms of the input x and the output y ----

namespace {
struct UnaryRule {
  OpDef op;
  Unary kernel;
  bool saves_x, saves_y;
  Tensor (*grad)(const Tensor& g, const Tensor& x, const Tensor& y);
};

bool keeps_integers(Unary k) {
  return k == Unary::Neg || k == Unary::Abs || k == Unary::Sign || k == Unary::Square || k == Unary::Relu;
}

Tensor unary_op(const UnaryRule& rule, const Tensor& x_in) {
  ROTOR_CHECK(x_in.defined(), rule.op.name, "undefined input");
  const Tensor x = is_floating(x_in.dtype()) || keeps_integers(rule.kernel) ? x_in : as_dtype(x_in, kDefaultFloat);
  Tensor y = kernels::unary(rule.kernel, x);
  if (needs_grad({x}))
    record(rule.op, {x}, {y},
           [&rule, sx = rule.saves_x ? save(x) : SavedTensor(), sy = rule.saves_y ? save(y) : SavedTensor()](
               const TensorList& g, auto&) { return TensorList{rule.grad(g[0], sx.get(), sy.get())}; });
  return y;
}

const UnaryRule kNeg{OpDef("neg"), Unary::Neg, false, false, [](auto& g, auto&, auto&) { return neg(g); }};
const UnaryRule kAbs{OpDef("abs"), Unary::Abs, true, false,
                     [](auto& g, auto& x, auto&) { return mul(g, kernels::unary(Unary::Sign, x)); }};
const UnaryRule kSquare{OpDef("square"), Unary::Square, true, false, [](auto& g, auto& x, auto&) { return mul(g, mul(x, 2.0)); }};
const UnaryRule kReciprocal{OpDef("reciprocal"), Unary::Reciprocal, false, true,
                            [](auto& g, auto&, auto& y) { return neg(mul(g, square(y))); }};
const UnaryRule kExp{OpDef("exp"), Unary::Exp, false, true, [](auto& g, auto&, auto& y) { return mul(g, y); }};
const UnaryRule kLog{OpDef("log"), Unary::Log, true, false, [](auto& g, auto& x, auto&) { return div(g, x); }};
const UnaryRule kLog1p{OpDef("log1p"), Unary::Log1p, true, false, [](auto& g, auto& x, auto&) { return div(g, add(x, 1.0)); }};
const UnaryRule kSqrt{OpDef("sqrt"), Unary::Sqrt, false, true, [](auto& g, auto&, auto& y) { return div(mul(g, 0.5), y); }};
const UnaryRule kRsqrt{OpDef("rsqrt"), Unary::Rsqrt, false, true,
                       [](auto& g, auto&, auto& y) { return mul(g, mul(pow(y, 3.0), -0.5)); }};
const UnaryRule kSin{OpDef("sin"), Unary::Sin, true, false, [](auto& g, auto& x, auto&) { return mul(g, cos(x)); }};
const UnaryRule kCos{OpDef("cos"), Unary::Cos, true, false, [](auto& g, auto& x, auto&) { return neg(mul(g, sin(x))); }};
const UnaryRule kTanh{OpDef("tanh"), Unary::Tanh, false, true,
                      [](auto& g, auto&, auto& y) { return mul(g, 1.0 - square(y)); }};
const UnaryRule kSigmoid{OpDef("sigmoid"), Unary::Sigmoid, false, true,
                         [](auto& g, auto&, auto& y) { return mul(g, mul(y, 1.0 - y)); }};
const UnaryRule kSilu{OpDef("silu"), Unary::Silu, true, false, [](auto& g, auto& x, auto&) {
                        Tensor s = sigmoid(x);
                        return mul(g, mul(s, 1.0 + mul(x, 1.0 - s)));
                      }};
const UnaryRule kSoftplus{OpDef("softplus"), Unary::Softplus, true, false,
                          [](auto& g, auto& x, auto&) { return mul(g, sigmoid(x)); }};
const UnaryRule kLogSigmoid{OpDef("logsigmoid"), Unary::LogSigmoid, true, false,
                            [](auto& g, auto& x, auto&) { return mul(g, sigmoid(neg(x))); }};
const UnaryRule kRelu{OpDef("relu"), Unary::Relu, true, false, [](auto& g, auto& x, auto&) {
                        return where(gt(x, scalar_like(x, 0.0)), g, scalar_like(g, 0.0));
                      }};
// d/dx erf(x) = 2/sqrt(pi) exp(-x^2).
const UnaryRule kErf{OpDef("erf"), Unary::Erf, true, false, [](auto& g, auto& x, auto&) {
                       return mul(g, mul(exp(neg(square(x))), 1.1283791670955125739));
                     }};
const UnaryRule kSign{OpDef("sign"), Unary::Sign, false, false, [](auto& g, auto&, auto&) { return zeros_like(g); }};
// d/dx x Phi(x) = Phi(x) + x phi(x).
const UnaryRule kGelu{OpDef("gelu"), Unary::Gelu, true, false, [](auto& g, auto& x, auto&) {
                        Tensor cdf = mul(add(erf(mul(x, 0.70710678118654752440)), 1.0), 0.5);
                        Tensor pdf = mul(exp(mul(square(x), -0.5)), 0.39894228040143267794);
                        return mul(g, add(cdf, mul(x, pdf)));
                      }};
// With u = k (x + c x^3), t = tanh u: d/dx x/2 (1 + t) = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2).
const UnaryRule kGeluTanh{OpDef("gelu_tanh"), Unary::GeluTanh, true, false, [](auto& g, auto& x, auto&) {
                            const double k = 0.79788456080286535588, c = 0.044715;
                            Tensor x2 = square(x);
                            Tensor t = tanh(mul(mul(x, add(mul(x2, c), 1.0)), k));
                            Tensor du = mul(add(mul(x2, 3 * c), 1.0), k);
                            return mul(g, add(mul(add(t, 1.0), 0.5), mul(mul(x, 0.5), mul(1.0 - square(t), du))));
                          }};
}  // namespace

Tensor neg(const Tensor& x) { return unary_op(kNeg, x); }
Tensor abs(const Tensor& x) { return unary_op(kAbs, x); }
Tensor square(const Tensor& x) { return unary_op(kSquare, x); }
Tensor reciprocal(const Tensor& x) { return unary_op(kReciprocal, x); }
Tensor exp(const Tensor& x) { return unary_op(kExp, x); }
Tensor log(const Tensor& x) { return unary_op(kLog, x); }
Tensor log1p(const Tensor& x) { return unary_op(kLog1p, x); }
Tensor sqrt(const Tensor& x) { return unary_op(kSqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(kRsqrt, x); }
Tensor sin(const Tensor& x) { return unary_op(kSin, x); }
Tensor cos(const Tensor& x) { return unary_op(kCos, x); }
Tensor tanh(const Tensor& x) { return unary_op(kTanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(kSigmoid, x); }
Tensor silu(const Tensor& x) { return unary_op(kSilu, x); }
Tensor softplus(const Tensor& x) { return unary_op(kSoftplus, x); }
Tensor logsigmoid(const Tensor& x) { return unary_op(kLogSigmoid, x); }
Tensor relu(const Tensor& x) { return unary_op(kRelu, x); }
Tensor erf(const Tensor& x) { return unary_op(kErf, x); }
Tensor sign(const Tensor& x) { return unary_op(kSign, x); }

Tensor gelu(const Tensor& x, std::string_view approximate) {
  if (approximate == "none") return unary_op(kGelu, x);
  if (approximate == "tanh") return unary_op(kGeluTanh, x);
  ROTOR_FAIL("gelu", "approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}

Tensor isnan(const Tensor& x) { return kernels::classify(kernels::Classify::IsNan, x); }
Tensor isfinite(const Tensor& x) { return kernels::classify(kernels::Classify::IsFinite, x); }

static const OpDef kClamp{"clamp"};

Tensor clamp(const Tensor& x_in, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  ROTOR_CHECK(x_in.defined(), "clamp", "undefined tensor");
  ROTOR_CHECK(lo || hi, "clamp", "needs a min or a max (shape ", shape_str(x_in.shape()), ")");
  DType d = x_in.dtype();
  if (lo) d = promote_types(d, result_type(x_in, *lo));
  if (hi) d = promote_types(d, result_type(x_in, *hi));
  Tensor x = as_dtype(x_in, d);
  Tensor out = x;
  if (lo) out = kernels::binary(Binary::Maximum, out, scalar_tensor(*lo, d));
  if (hi) out = kernels::binary(Binary::Minimum, out, scalar_tensor(*hi, d));
  if (out.is_same(x)) out = core::clone(x);
  if (needs_grad({x}))
    // As PyTorch: the gradient passes where min <= x <= max, bounds included.
    record(kClamp, {x}, {out}, [sx = save(x), lo, hi](const TensorList& g, auto&) {
      const Tensor& xv = sx.get();
      Tensor pass = ones(xv.shape(), DType::Bool);
      if (lo) pass = logical_and(pass, ge(xv, *lo));
      if (hi) pass = logical_and(pass, le(xv, *hi));
      return TensorList{where(pass, g[0], 0)};
    });
  return out;
}

// ---- comparisons, where, masks ----

namespace {
Tensor compare_promoted(kernels::Compare op, const Tensor& a, const Tensor& b) {
  ROTOR_CHECK(a.defined() && b.defined(), "compare", "undefined operand");
  DType d = result_type(a, b);
  return kernels::compare(op, core::to_dtype(a, d), core::to_dtype(b, d));
}
Tensor compare_promoted(kernels::Compare op, const Tensor& a, const Scalar& b) { return compare_promoted(op, a, scalar_operand(a, b)); }
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare_promoted(kernels::Compare::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare_promoted(kernels::Compare::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare_promoted(kernels::Compare::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare_promoted(kernels::Compare::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare_promoted(kernels::Compare::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare_promoted(kernels::Compare::Ge, a, b); }
Tensor eq(const Tensor& a, Scalar b) { return compare_promoted(kernels::Compare::Eq, a, b); }
Tensor ne(const Tensor& a, Scalar b) { return compare_promoted(kernels::Compare::Ne, a, b); }
Tensor lt(const Tensor& a, Scalar b) { return compare_promoted(kernels::Compare::Lt, a, b); }
Tensor le(const Tensor& a, Scalar b) { return compare_promoted(kernels::Compare::Le, a, b); }
Tensor gt(const Tensor& a, Scalar b) { return compare_promoted(kernels::Compare::Gt, a, b); }
Tensor ge(const Tensor& a, Scalar b) { return compare_promoted(kernels::Compare::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return kernels::logical(kernels::Logical::And, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return kernels::logical(kernels::Logical::Or, a, b); }
Tensor logical_not(const Tensor& a) { return kernels::logical_not(a); }

static const OpDef kWhere{"where"};

Tensor where(const Tensor& cond, const Tensor& a_in, const Tensor& b_in) {
  auto [a, b] = promoted(a_in, b_in);
  Tensor out = kernels::where(cond, a, b);
  if (needs_grad({a, b}))
    record(kWhere, {a, b}, {out}, [sc = save(cond)](const TensorList& g, const std::vector<bool>& needs) {
      Tensor zero = scalar_like(g[0], 0.0);
      return TensorList{needs[0] ? where(sc.get(), g[0], zero) : Tensor(),
                        needs[1] ? where(sc.get(), zero, g[0]) : Tensor()};
    });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, Scalar b) { return where(cond, a, scalar_operand(a, b)); }
Tensor where(const Tensor& cond, Scalar a, const Tensor& b) { return where(cond, scalar_operand(b, a), b); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  ROTOR_CHECK(x.defined(), "masked_fill", "undefined tensor");
  ROTOR_CHECK(can_cast(result_type(x, value), x.dtype()), "masked_fill", "value ", value.to_double(),
              " does not fit the ", dtype_name(x.dtype()), " tensor of shape ", shape_str(x.shape()));
  return where(mask, scalar_tensor(value, x.dtype()), x);
}

Tensor tril_mask(int64_t rows, int64_t cols, int64_t k) { return kernels::triangle_mask(rows, cols, k, true); }
Tensor triu_mask(int64_t rows, int64_t cols, int64_t k) { return kernels::triangle_mask(rows, cols, k, false); }

Tensor tril(const Tensor& x, int64_t k) {
  ROTOR_CHECK(x.dim() >= 2, "tril", "needs at least 2 dims, got shape ", shape_str(x.shape()));
  return where(tril_mask(x.size(-2), x.size(-1), k), x, scalar_like(x, 0.0));
}

Tensor triu(const Tensor& x, int64_t k) {
  ROTOR_CHECK(x.dim() >= 2, "triu", "needs at least 2 dims, got shape ", shape_str(x.shape()));
  return where(triu_mask(x.size(-2), x.size(-1), k), x, scalar_like(x, 0.0));
}

// ---- operators ----

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor add(const Tensor& a, Scalar b) { return add(a, scalar_operand(a, b)); }
Tensor sub(const Tensor& a, Scalar b) { return sub(a, scalar_operand(a, b)); }
Tensor mul(const Tensor& a, Scalar b) { return mul(a, scalar_operand(a, b)); }
Tensor div(const Tensor& a, Scalar b) { return div(a, scalar_operand(a, b)); }
Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
Tensor operator+(Scalar a, const Tensor& b) { return add(scalar_operand(b, a), b); }
Tensor operator-(Scalar a, const Tensor& b) { return sub(scalar_operand(b, a), b); }
Tensor operator*(Scalar a, const Tensor& b) { return mul(scalar_operand(b, a), b); }
Tensor operator/(Scalar a, const Tensor& b) { return div(scalar_operand(b, a), b); }

Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, Scalar b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, Scalar b) { return ne(a, b); }
Tensor operator<(const Tensor& a, Scalar b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, Scalar b) { return le(a, b); }
Tensor operator>(const Tensor& a, Scalar b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, Scalar b) { return ge(a, b); }
// A scalar on the left is the mirrored comparison: 0 < a is a > 0.
Tensor operator==(Scalar a, const Tensor& b) { return eq(b, a); }
Tensor operator!=(Scalar a, const Tensor& b) { return ne(b, a); }
Tensor operator<(Scalar a, const Tensor& b) { return gt(b, a); }
Tensor operator<=(Scalar a, const Tensor& b) { return ge(b, a); }
Tensor operator>(Scalar a, const Tensor& b) { return lt(b, a); }
Tensor operator>=(Scalar a, const Tensor& b) { return le(b, a); }
Tensor operator&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
Tensor operator|(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
Tensor operator^(const Tensor& a, const Tensor& b) { return kernels::logical(kernels::Logical::Xor, a, b); }
Tensor operator~(const Tensor& a) { return logical_not(a); }

// ---- in place ----

namespace {
void check_inplace(const Tensor& dst, const char* op) {
  ROTOR_CHECK(dst.defined(), op, "undefined destination");
  ROTOR_CHECK(!(grad_enabled() && dst.requires_grad()), op, "in-place update of a tensor of shape ",
              shape_str(dst.shape()), " that requires grad; wrap it in a NoGradGuard (or detach it)");
}

// src in dst's dtype, after checking that the op's result (of dtype `result`) may be written there.
Tensor fit_source(const Tensor& dst, const Tensor& src, DType result, const char* op) {
  ROTOR_CHECK(src.defined(), op, "undefined source");
  ROTOR_CHECK(can_cast(result, dst.dtype()), op, "the result is ", dtype_name(result), " and cannot be written into the ",
              dtype_name(dst.dtype()), " tensor of shape ", shape_str(dst.shape()));
  return core::to_dtype(src, dst.dtype());
}
}  // namespace

Tensor add_(const Tensor& dst, const Tensor& src, Scalar alpha) {
  check_inplace(dst, "add_");
  DType result = result_type(dst, src);
  if (alpha.is_floating() && !is_floating(result)) result = kDefaultFloat;  // int64 dst += 0.5 * src
  kernels::axpy_(dst, fit_source(dst, src, result, "add_"), alpha.to_double());
  return dst;
}

Tensor mul_(const Tensor& dst, const Tensor& src) {
  check_inplace(dst, "mul_");
  kernels::binary_(Binary::Mul, dst, fit_source(dst, src, result_type(dst, src), "mul_"));
  return dst;
}

Tensor mul_(const Tensor& dst, Scalar value) {
  check_inplace(dst, "mul_");
  return mul_(dst, scalar_operand(dst, value));
}

Tensor fill_(const Tensor& dst, Scalar value) {
  check_inplace(dst, "fill_");
  core::copy_into(dst, scalar_tensor(value, dst.dtype()));
  return dst;
}

Tensor zero_(const Tensor& dst) { return fill_(dst, 0); }

Tensor copy_(const Tensor& dst, const Tensor& src) {
  check_inplace(dst, "copy_");
  core::copy_into(dst, src);
  return dst;
}

// ---- gradcheck cases: broadcasting in both directions, transposed and sliced inputs ----

ROTOR_GRADCHECK({"add", {input({3, 1, 4}), transposed({5, 4})}, [](auto& x) { return TensorList{add(x[0], x[1])}; }});
ROTOR_GRADCHECK({"sub", {sliced({2, 3}), input({3})}, [](auto& x) { return TensorList{sub(x[0], x[1])}; }});
ROTOR_GRADCHECK({"mul", {input({4, 1}), transposed({3, 5})}, [](auto& x) {
                   return TensorList{mul(x[0], slice(x[1], 0, 0, 1))};
                 }});
ROTOR_GRADCHECK({"mul_broadcast", {input({2, 3, 4}), input({3, 1})}, [](auto& x) { return TensorList{x[0] * x[1]}; }});
ROTOR_GRADCHECK({"div", {input({3, 4}), input({4}, 0.5, 2.0)}, [](auto& x) { return TensorList{div(x[0], x[1])}; }});
ROTOR_GRADCHECK({"pow", {input({3, 4}, 0.5, 2.0), transposed({3, 4}, -1.5, 1.5)},
                 [](auto& x) { return TensorList{pow(x[0], x[1])}; }});
ROTOR_GRADCHECK({"pow_scalar", {sliced({3, 4}, 0.5, 2.0)}, [](auto& x) { return TensorList{pow(x[0], 2.5)}; }});
// maximum/minimum are not differentiable at ties; random inputs have none.
ROTOR_GRADCHECK({"maximum", {input({3, 4}), input({4})}, [](auto& x) { return TensorList{maximum(x[0], x[1])}; }});
ROTOR_GRADCHECK({"minimum", {transposed({4, 3}), input({4, 1})}, [](auto& x) { return TensorList{minimum(x[0], x[1])}; }});
ROTOR_GRADCHECK({"scalar_operators", {input({2, 3})}, [](auto& x) {
                   return TensorList{(2.0 - x[0]) * 3.0 + x[0] / 4.0 - 1.0 / (x[0] + 3.0)};
                 }});

// Mixed dtypes: int64 and bool operands promote to the float inputs' dtype.
ROTOR_GRADCHECK({"promote_int_bool", {input({3, 4}), input({4})}, [](auto& x) {
                   Tensor ids = arange(1, 5);                  // int64 [4]
                   Tensor mask = (x[1] > 0.0).detach();       // bool [4]
                   return TensorList{x[0] * ids + mask * x[1] + where(mask, x[0], 2) / ids + pow(x[1], 2)};
                 }});

ROTOR_GRADCHECK({"neg", {transposed({3, 4})}, [](auto& x) { return TensorList{-x[0]}; }});
ROTOR_GRADCHECK({"abs", {sliced({3, 4})}, [](auto& x) { return TensorList{abs(x[0])}; }});
ROTOR_GRADCHECK({"square", {input({5})}, [](auto& x) { return TensorList{square(x[0])}; }});
ROTOR_GRADCHECK({"reciprocal", {input({2, 3}, 0.5, 2.0)}, [](auto& x) { return TensorList{reciprocal(x[0])}; }});
ROTOR_GRADCHECK({"exp", {transposed({3, 4})}, [](auto& x) { return TensorList{exp(x[0])}; }});
ROTOR_GRADCHECK({"log", {sliced({3, 4}, 0.5, 2.0)}, [](auto& x) { return TensorList{log(x[0])}; }});
ROTOR_GRADCHECK({"log1p", {input({3, 4}, -0.5, 2.0)}, [](auto& x) { return TensorList{log1p(x[0])}; }});
ROTOR_GRADCHECK({"sqrt", {transposed({3, 4}, 0.5, 2.0)}, [](auto& x) { return TensorList{sqrt(x[0])}; }});
ROTOR_GRADCHECK({"rsqrt", {input({3, 4}, 0.5, 2.0)}, [](auto& x) { return TensorList{rsqrt(x[0])}; }});
ROTOR_GRADCHECK({"sin", {input({3, 4}, -4.0, 4.0)}, [](auto& x) { return TensorList{sin(x[0])}; }});
ROTOR_GRADCHECK({"cos", {sliced({3, 4}, -4.0, 4.0)}, [](auto& x) { return TensorList{cos(x[0])}; }});
ROTOR_GRADCHECK({"tanh", {input({3, 4}, -3.0, 3.0)}, [](auto& x) { return TensorList{tanh(x[0])}; }});
ROTOR_GRADCHECK({"sigmoid", {transposed({3, 4}, -5.0, 5.0)}, [](auto& x) { return TensorList{sigmoid(x[0])}; }});
ROTOR_GRADCHECK({"silu", {input({3, 4}, -5.0, 5.0)}, [](auto& x) { return TensorList{silu(x[0])}; }});
ROTOR_GRADCHECK({"softplus", {input({3, 4}, -30.0, 30.0)}, [](auto& x) { return TensorList{softplus(x[0])}; }});
ROTOR_GRADCHECK({"logsigmoid", {sliced({3, 4}, -30.0, 30.0)}, [](auto& x) { return TensorList{logsigmoid(x[0])}; }});
ROTOR_GRADCHECK({"relu", {input({3, 4})}, [](auto& x) { return TensorList{relu(x[0])}; }});
ROTOR_GRADCHECK({"erf", {input({3, 4}, -3.0, 3.0)}, [](auto& x) { return TensorList{erf(x[0])}; }});
ROTOR_GRADCHECK({"sign", {sliced({3, 4})}, [](auto& x) { return TensorList{sign(x[0]) + x[0]}; }});
ROTOR_GRADCHECK({"gelu", {transposed({3, 4}, -4.0, 4.0)}, [](auto& x) { return TensorList{gelu(x[0])}; }});
ROTOR_GRADCHECK({"gelu_tanh", {input({3, 4}, -4.0, 4.0)}, [](auto& x) { return TensorList{gelu(x[0], "tanh")}; }});
// Random inputs do not land on the bounds, where clamp is not differentiable.
ROTOR_GRADCHECK({"clamp", {input({4, 5}, -2.0, 2.0)}, [](auto& x) {
                   return TensorList{clamp(x[0], -0.5, 0.7), clamp(x[0], std::nullopt, 0.25), clamp(x[0], -1)};
                 }});

ROTOR_GRADCHECK({"where", {input({3, 4}), transposed({3, 4})}, [](auto& x) {
                   Tensor cond = gt(x[0], scalar_like(x[0], 0.0)).detach();
                   return TensorList{where(cond, x[0], x[1])};
                 }});
ROTOR_GRADCHECK({"masked_fill", {input({4, 4})}, [](auto& x) {
                   return TensorList{masked_fill(x[0], triu_mask(4, 4, 1), -3.0)};
                 }});
ROTOR_GRADCHECK({"tril_triu", {input({2, 3, 4})}, [](auto& x) { return TensorList{tril(x[0], 1), triu(x[0], -1)}; }});

}  // namespace rotor
