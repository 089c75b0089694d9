// Tutorial step 3 — checking gradients, and writing your own op with its backward
// (docs/tutorial/03_custom_op.md).
//
//   build/examples/tutorial_03_custom_op
//
// gradcheck compares the gradients autograd computes with central differences in float64.
// It checks compositions of rotor's ops, and it is how you check an op of your own: here
// softsign(x) = x / (1 + |x|), with a hand-written backward 1 / (1 + |x|)^2 — and a wrong one,
// to see what a failure looks like.
#include <cstdio>

#include "rotor/rotor.h"

using namespace rotor;

// An op is an OpDef (its name, for error messages and the registry), a forward computed
// without recording, and a backward recorded when an input needs a gradient.
static const OpDef kSoftsign("softsign");

Tensor softsign(const Tensor& x, bool wrong_backward = false) {
  Tensor out;
  {
    NoGradGuard no_grad;  // the forward's own ops must not record: this op is one node
    out = x / (1.0 + abs(x));
  }
  if (needs_grad({x}))
    record(kSoftsign, {x}, {out}, [x = save(x), wrong_backward](const TensorList& grads, const std::vector<bool>&) {
      Tensor d = 1.0 + abs(x.get());
      // One gradient per input: d out / d x = 1 / (1 + |x|)^2, times the upstream gradient.
      return TensorList{wrong_backward ? grads[0] / d : grads[0] / (d * d)};
    });
  return out;
}

// The registry holds a case for every op rotor ships; a case for yours looks the same.
ROTOR_GRADCHECK({"softsign", {input({3, 4})}, [](const TensorList& x) { return TensorList{softsign(x[0])}; }});

int main() {
  Generator gen(0);
  Tensor x = randn({3, 4}, gen, DType::Float64);
  Tensor w = randn({4, 2}, gen, DType::Float64);

  // 1. A composition of built-in ops: the whole 3x4 + 4x2 -> 3x2 Jacobian, both ways.
  GradcheckReport r = gradcheck([](const TensorList& in) { return TensorList{tanh(matmul(in[0], in[1]))}; }, {x, w});
  std::printf("tanh(x @ w): %s, method %s, largest error below 1e-8: %s\n", r.passed ? "passed" : "FAILED",
              r.method.c_str(), r.max_abs_error() < 1e-8 ? "yes" : "no");

  // 2. Our op, with the right backward ...
  GradcheckReport good = gradcheck([](const TensorList& in) { return TensorList{softsign(in[0])}; }, {x});
  std::printf("softsign: %s, largest error below 1e-8: %s\n", good.passed ? "passed" : "FAILED",
              good.max_abs_error() < 1e-8 ? "yes" : "no");

  // ... and with a wrong one: the check fails and says by how much.
  GradcheckReport bad = gradcheck([](const TensorList& in) { return TensorList{softsign(in[0], true)}; }, {x});
  std::printf("softsign with 1/(1+|x|) as its derivative: %s, largest error %.3f\n", bad.passed ? "passed" : "FAILED",
              bad.max_abs_error());

  // 3. Large inputs are checked along random directions instead of the full Jacobian.
  Tensor big = randn({64, 64}, gen, DType::Float64);
  GradcheckReport dirs = gradcheck([](const TensorList& in) { return TensorList{softsign(in[0])}; }, {big});
  std::printf("softsign on 64x64: %s, method %s\n", dirs.passed ? "passed" : "FAILED", dirs.method.c_str());

  // 4. Our registry case runs like rotor's own (build/examples/gradcheck runs them all).
  for (const GradcheckCase& c : gradcheck_registry())
    if (c.name == "softsign") std::printf("registry case '%s': %s\n", c.name.c_str(), run_case(c).passed ? "passed" : "FAILED");
}
