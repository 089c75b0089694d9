#include "rotor/autograd/gradcheck.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "rotor/autograd/ops.h"
#include "rotor/core/view.h"

namespace rotor {
namespace {

// A leaf copy of t with the same shape, strides and offset over a private copy of its storage.
Tensor private_leaf(const Tensor& t) {
  auto storage = Storage::allocate(t.storage()->nbytes());
  std::memcpy(storage->data(), t.storage()->data(), t.storage()->nbytes());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage;
  impl->shape = t.shape();
  impl->strides = t.strides();
  impl->offset = t.offset();
  impl->dtype = t.dtype();
  Tensor leaf(impl);
  leaf.requires_grad_(true);
  return leaf;
}

// Element i (row-major over the shape) of a strided float64 tensor.
double& element(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.shape()[size_t(d)]) * t.strides()[size_t(d)];
    i /= t.shape()[size_t(d)];
  }
  return t.data<double>()[off];
}

std::vector<double> values(const Tensor& t) { return core::to_dtype(t, DType::Float64).to_vector<double>(); }

TensorList evaluate(const TensorFn& fn, const TensorList& inputs) {
  NoGradGuard no_grad;
  return fn(inputs);
}

// <outputs, weights>, the scalar whose gradient gradcheck compares.
double weighted_sum(const TensorList& outs, const std::vector<std::vector<double>>& weights) {
  double s = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    std::vector<double> v = values(outs[k]);
    for (size_t j = 0; j < v.size(); ++j) s += v[j] * weights[k][j];
  }
  return s;
}

void compare(GradcheckInputReport& r, double analytic, double numeric, const GradcheckOptions& o) {
  double err = std::abs(analytic - numeric);
  if (!(err <= o.atol + o.rtol * std::abs(numeric))) r.passed = false;  // NaN fails too
  r.max_abs_error = std::max(r.max_abs_error, std::isnan(err) ? INFINITY : err);
  // Relative to |numeric|, but not below atol/rtol: a tiny derivative matched to 1e-10 is not
  // a large relative error.
  double rel = err / std::max(std::abs(numeric), o.atol / o.rtol);
  r.max_rel_error = std::max(r.max_rel_error, std::isnan(rel) ? INFINITY : rel);
}

}  // namespace

double GradcheckReport::max_abs_error() const {
  double m = 0;
  for (auto& r : inputs) m = std::max(m, r.max_abs_error);
  return m;
}

double GradcheckReport::max_rel_error() const {
  double m = 0;
  for (auto& r : inputs) m = std::max(m, r.max_rel_error);
  return m;
}

std::string GradcheckReport::summary() const {
  std::ostringstream s;
  s << (passed ? "passed" : "FAILED") << " (" << method << ")";
  for (size_t i = 0; i < inputs.size(); ++i)
    s << "; input " << i << " " << shape_str(inputs[i].shape) << ": max abs " << inputs[i].max_abs_error
      << ", max rel " << inputs[i].max_rel_error;
  return s.str();
}

GradcheckReport gradcheck(const TensorFn& fn, const TensorList& inputs_in, const GradcheckOptions& o) {
  return gradcheck(fn, inputs_in, {}, o);
}

GradcheckReport gradcheck(const TensorFn& fn, const TensorList& inputs_in, const TensorList& parameters,
                          const GradcheckOptions& o) {
  // `inputs` holds every leaf that is perturbed: private copies of the inputs, then the
  // parameters themselves. fn only ever sees the input copies.
  TensorList inputs, fn_inputs;
  int64_t total_in = 0;
  for (const Tensor& t : inputs_in) {
    ROTOR_CHECK(t.defined() && t.dtype() == DType::Float64, "gradcheck", "inputs must be float64 tensors");
    inputs.push_back(private_leaf(t));
    total_in += t.numel();
  }
  fn_inputs = inputs;
  for (const Tensor& p : parameters) {
    ROTOR_CHECK(p.defined() && p.dtype() == DType::Float64 && p.requires_grad() && p.is_leaf(), "gradcheck",
                "parameters must be float64 leaves that require grad");
    inputs.push_back(p);
    total_in += p.numel();
  }
  TensorList outs = evaluate(fn, fn_inputs);
  int64_t total_out = 0;
  for (const Tensor& t : outs) {
    ROTOR_CHECK(t.defined() && t.dtype() == DType::Float64, "gradcheck", "outputs must be float64 tensors");
    total_out += t.numel();
  }

  GradcheckReport report;
  for (const Tensor& t : inputs) report.inputs.push_back({t.shape()});
  Generator gen(o.seed);

  // Analytical gradient of <outputs, w> with respect to every input.
  auto analytic = [&](const std::vector<std::vector<double>>& w) {
    for (Tensor& t : inputs) t.zero_grad();
    TensorList out = fn(fn_inputs), roots, grads;
    for (size_t k = 0; k < out.size(); ++k) {
      if (!out[k].requires_grad()) continue;  // an output independent of the inputs
      roots.push_back(out[k]);
      grads.push_back(from_vector(w[k], out[k].shape()));
    }
    std::vector<std::vector<double>> g;
    if (!roots.empty()) backward(roots, grads);
    for (const Tensor& t : inputs) g.push_back(t.grad().defined() ? values(t.grad()) : std::vector<double>(size_t(t.numel()), 0.0));
    return g;
  };
  auto numeric = [&](const std::vector<std::vector<double>>& w, size_t i, const std::vector<double>& dir) {
    const Tensor& x = inputs[i];
    std::vector<double> saved(size_t(x.numel()));
    for (int64_t e = 0; e < x.numel(); ++e) saved[size_t(e)] = element(x, e);
    auto at = [&](double step) {
      for (int64_t e = 0; e < x.numel(); ++e) element(x, e) = saved[size_t(e)] + step * dir[size_t(e)];
      return weighted_sum(evaluate(fn, fn_inputs), w);
    };
    double d = (at(o.eps) - at(-o.eps)) / (2 * o.eps);
    for (int64_t e = 0; e < x.numel(); ++e) element(x, e) = saved[size_t(e)];
    return d;
  };

  std::vector<std::vector<double>> zero_w;
  for (const Tensor& t : outs) zero_w.emplace_back(size_t(t.numel()), 0.0);

  if (total_in <= o.full_jacobian_limit && total_out <= o.full_jacobian_limit) {
    report.method = "jacobian";
    // Columns of the numerical Jacobian: perturb one input element, difference every output.
    auto flat_outputs = [&] {
      std::vector<double> all;
      for (const Tensor& t : evaluate(fn, fn_inputs)) {
        std::vector<double> v = values(t);
        all.insert(all.end(), v.begin(), v.end());
      }
      return all;
    };
    std::vector<std::vector<std::vector<double>>> columns(inputs.size());  // [input][element][output]
    for (size_t i = 0; i < inputs.size(); ++i)
      for (int64_t e = 0; e < inputs[i].numel(); ++e) {
        double& x = element(inputs[i], e);
        const double saved = x;
        x = saved + o.eps;
        std::vector<double> plus = flat_outputs();
        x = saved - o.eps;
        std::vector<double> minus = flat_outputs();
        x = saved;
        for (size_t j = 0; j < plus.size(); ++j) plus[j] = (plus[j] - minus[j]) / (2 * o.eps);
        columns[i].push_back(std::move(plus));
      }
    // Rows of the analytical Jacobian: one backward per output element.
    int64_t row = 0;
    for (size_t k = 0; k < outs.size(); ++k)
      for (int64_t j = 0; j < outs[k].numel(); ++j, ++row) {
        auto w = zero_w;
        w[k][size_t(j)] = 1.0;
        auto g = analytic(w);
        for (size_t i = 0; i < inputs.size(); ++i)
          for (int64_t e = 0; e < inputs[i].numel(); ++e)
            compare(report.inputs[i], g[i][size_t(e)], columns[i][size_t(e)][size_t(row)], o);
      }
  } else {
    report.method = "directions";
    // Random output weights, then random input directions: <grad, d> against the difference.
    auto w = zero_w;
    for (auto& v : w)
      for (double& x : v) x = gen.next_normal();
    auto g = analytic(w);
    for (size_t i = 0; i < inputs.size(); ++i)
      for (int r = 0; r < o.directions; ++r) {
        std::vector<double> dir(size_t(inputs[i].numel()));
        double proj = 0;
        for (size_t e = 0; e < dir.size(); ++e) {
          dir[e] = gen.next_normal();
          proj += dir[e] * g[i][e];
        }
        compare(report.inputs[i], proj, numeric(w, i, dir), o);
      }
  }
  for (auto& r : report.inputs) report.passed = report.passed && r.passed;
  for (Tensor& p : inputs) p.zero_grad();
  return report;
}

BuiltCase build_case(const GradcheckCase& c, DType dtype, Generator& gen) {
  if (c.build) return c.build(dtype, gen);
  return {c.fn, {}};
}

GradcheckReport run_case(const GradcheckCase& c, TensorList* inputs_out) {
  Generator gen(1234);
  TensorList inputs = make_inputs(c, DType::Float64, gen);
  BuiltCase built = build_case(c, DType::Float64, gen);
  if (inputs_out) *inputs_out = inputs;
  return gradcheck(built.fn, inputs, built.parameters, c.options);
}

TensorList make_inputs(const GradcheckCase& c, DType dtype, Generator& gen) {
  TensorList out;
  for (const InputSpec& s : c.inputs) {
    Tensor t;
    if (s.layout == Layout::Transposed && s.shape.size() >= 2) {
      Shape stored = s.shape;
      std::swap(stored[stored.size() - 1], stored[stored.size() - 2]);
      t = core::transpose(rand(stored, gen, dtype, s.lo, s.hi), -1, -2);
    } else if (s.layout == Layout::Sliced && !s.shape.empty()) {
      Shape stored = s.shape;
      stored.back() *= 2;
      t = core::slice(rand(stored, gen, dtype, s.lo, s.hi), -1, 0, stored.back(), 2);
    } else {
      t = rand(s.shape, gen, dtype, s.lo, s.hi);
    }
    out.push_back(t);
  }
  return out;
}

std::vector<GradcheckCase>& gradcheck_registry() {
  static std::vector<GradcheckCase> cases;
  return cases;
}

}  // namespace rotor
