// examples/gradcheck — every differentiable op and layer in rotor, checked against float64
// central differences. Run it to see the table; read it to learn to check your own function.
//
//   build/examples/gradcheck            the whole registry
//   build/examples/gradcheck matmul     only cases whose name contains "matmul"
//
// Exit status is non-zero when any case fails.
#include <cstdio>
#include <string>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"

using namespace rotor;

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";

  // 1. Your own function: any composition of rotor ops, any number of float64 inputs.
  Generator gen(0);
  Tensor x = randn({3, 4}, gen, DType::Float64);
  Tensor w = randn({4, 2}, gen, DType::Float64);
  auto mine = [](const TensorList& in) { return TensorList{sum(tanh(matmul(in[0], in[1])), {1})}; };
  GradcheckReport own = gradcheck(mine, {x, w});
  std::printf("sum(tanh(x @ w), 1): %s\n\n", own.summary().c_str());

  // 2. The registry: one case (or more) per op, with broadcasting and strided inputs.
  int failed = 0, count = 0;
  double worst_abs = 0, worst_rel = 0;
  std::printf("%-40s %-30s %12s %12s  %s\n", "case", "inputs", "max abs err", "max rel err", "result");
  for (const GradcheckCase& c : gradcheck_registry()) {
    if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
    TensorList inputs;
    GradcheckReport r = run_case(c, &inputs);
    std::string shapes;
    for (const Tensor& t : inputs) {
      if (!shapes.empty()) shapes += ' ';
      shapes += shape_str(t.shape());
    }
    if (r.inputs.size() > inputs.size()) shapes += " +" + std::to_string(r.inputs.size() - inputs.size()) + " params";
    std::printf("%-40s %-30s %12.2e %12.2e  %s\n", c.name.c_str(), shapes.c_str(), r.max_abs_error(),
                r.max_rel_error(), r.passed ? "pass" : "FAIL");
    ++count;
    failed += !r.passed;
    worst_abs = std::max(worst_abs, r.max_abs_error());
    worst_rel = std::max(worst_rel, r.max_rel_error());
  }
  std::printf("\n%d cases, %d failed; largest abs error %.2e, largest rel error %.2e\n", count, failed, worst_abs,
              worst_rel);
  return failed ? 1 : 0;
}
