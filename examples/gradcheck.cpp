// examples/gradcheck — every differentiable op and layer in rotor, checked against float64
// central differences. Run it to see the table; read it to learn to check your own function.
//
//   build/examples/gradcheck                 the whole registry
//   build/examples/gradcheck matmul rope     only cases whose name contains "matmul" or "rope"
//   build/examples/gradcheck --list          the names of the cases
//
// Exit status: 1 when a case fails, 2 for a bad argument (a filter that matches no case).
#include <cstdio>
#include <string>
#include <vector>

#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/ops.h"

using namespace rotor;

static const char* kUsage = R"(usage: gradcheck [--list] [FILTER...]
  Checks the analytical gradients of every differentiable op and layer against float64 central
  differences and prints a table. FILTER keeps the cases whose name contains it (any of several).
  --list     print the case names, one per line, and exit
  --help     this text
)";

int main(int argc, char** argv) {
  bool list = false;
  std::vector<std::string> filters;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a == "--list") {
      list = true;
    } else if (a.rfind("-", 0) == 0) {
      std::fprintf(stderr, "error: unknown flag %s\n\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      filters.push_back(a);
    }
  }
  auto selected = [&](const GradcheckCase& c) {
    if (filters.empty()) return true;
    for (const std::string& f : filters)
      if (c.name.find(f) != std::string::npos) return true;
    return false;
  };
  for (const std::string& f : filters) {
    bool any = false;
    for (const GradcheckCase& c : gradcheck_registry()) any |= c.name.find(f) != std::string::npos;
    if (!any) {
      std::fprintf(stderr, "error: no gradcheck case matches '%s' (gradcheck --list shows all %zu)\n", f.c_str(),
                   gradcheck_registry().size());
      return 2;
    }
  }
  if (list) {
    for (const GradcheckCase& c : gradcheck_registry())
      if (selected(c)) std::printf("%s\n", c.name.c_str());
    return 0;
  }

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
    if (!selected(c)) continue;
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
