// Numerical gradient checking, and the registry of cases that proves every differentiable op
// in rotor against central differences.
//
// Check your own function:
//   Generator gen(0);
//   Tensor x = randn({3, 4}, gen, DType::Float64);
//   auto report = gradcheck([](const TensorList& in) { return TensorList{tanh(in[0]) * in[0]}; }, {x});
//   std::cout << report.summary() << "\n";   // passed? max abs / rel error per input
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "rotor/autograd/node.h"
#include "rotor/core/generator.h"

namespace rotor {

using TensorFn = std::function<TensorList(const TensorList&)>;

struct GradcheckOptions {
  double eps = 1e-6;    // central-difference step
  double atol = 1e-6;   // |analytic - numeric| <= atol + rtol * |numeric|, per element
  double rtol = 1e-5;
  int64_t full_jacobian_limit = 256;  // inputs and outputs up to this many elements: full Jacobian
  int directions = 6;                 // otherwise: this many random directions per input
  uint64_t seed = 0;
  // For the registry's float32-vs-float64 test: max |g32 - g64| allowed, relative to max |g64|.
  // Deeper compositions accumulate more float32 rounding.
  double float32_agreement = 2e-6;
};

struct GradcheckInputReport {
  Shape shape;
  double max_abs_error = 0;
  double max_rel_error = 0;  // error / max(|numeric|, atol / rtol)
  bool passed = true;
};

struct GradcheckReport {
  bool passed = true;
  std::string method;  // "jacobian" or "directions"
  std::vector<GradcheckInputReport> inputs;
  double max_abs_error() const;
  double max_rel_error() const;
  std::string summary() const;
};

// Compares the analytical vector-Jacobian products of fn with float64 central differences.
// Every input must be float64; they are copied (keeping their strides) before perturbation.
GradcheckReport gradcheck(const TensorFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});

// The same for a function that also reads `parameters`: float64 leaves that require grad, such
// as a layer's weights. They are perturbed in place (and restored) and reported after the
// inputs.
GradcheckReport gradcheck(const TensorFn& fn, const TensorList& inputs, const TensorList& parameters,
                          const GradcheckOptions& options = {});

// ---- the registry ----

enum class Layout { Contiguous, Transposed, Sliced };

// How a registry case makes one differentiable input.
struct InputSpec {
  Shape shape;
  Layout layout = Layout::Contiguous;  // Transposed swaps the last two dims of the storage;
                                       // Sliced takes every other element of the last dim
  double lo = -1.0, hi = 1.0;          // uniform values in [lo, hi)
};
inline InputSpec input(Shape s, double lo = -1.0, double hi = 1.0) { return {std::move(s), Layout::Contiguous, lo, hi}; }
inline InputSpec transposed(Shape s, double lo = -1.0, double hi = 1.0) { return {std::move(s), Layout::Transposed, lo, hi}; }
inline InputSpec sliced(Shape s, double lo = -1.0, double hi = 1.0) { return {std::move(s), Layout::Sliced, lo, hi}; }

// A stateful case (a layer): builds, in a dtype, the function and the parameters it reads.
struct BuiltCase {
  TensorFn fn;
  TensorList parameters;
};
using CaseBuilder = std::function<BuiltCase(DType dtype, Generator& gen)>;

struct GradcheckCase {
  std::string name;
  std::vector<InputSpec> inputs;
  TensorFn fn;  // a plain function of the inputs (or empty when `build` is given)
  GradcheckOptions options = {};
  CaseBuilder build = {};  // a function with parameters of its own
};

// Makes the inputs of a case in the given dtype, from gen.
TensorList make_inputs(const GradcheckCase& c, DType dtype, Generator& gen);
// The case's function and parameters in a dtype (parameters empty for plain cases).
BuiltCase build_case(const GradcheckCase& c, DType dtype, Generator& gen);
// Runs a registry case in float64 with a fixed seed.
GradcheckReport run_case(const GradcheckCase& c, TensorList* inputs_out = nullptr);

std::vector<GradcheckCase>& gradcheck_registry();

struct GradcheckRegistration {
  explicit GradcheckRegistration(GradcheckCase c) { gradcheck_registry().push_back(std::move(c)); }
};

}  // namespace rotor

#define ROTOR_GRADCHECK_CAT2(a, b) a##b
#define ROTOR_GRADCHECK_CAT(a, b) ROTOR_GRADCHECK_CAT2(a, b)
// ROTOR_GRADCHECK({"name", {input({3, 4})}, [](const TensorList& x) { return TensorList{f(x[0])}; }});
#define ROTOR_GRADCHECK(...) \
  static const ::rotor::GradcheckRegistration ROTOR_GRADCHECK_CAT(rotor_gradcheck_, __COUNTER__)(::rotor::GradcheckCase __VA_ARGS__)
