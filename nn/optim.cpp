#include "rotor/kernels/simd.h"  // first: see there on the intrinsics headers
#include "rotor/nn/optim.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "rotor/core/parallel.h"

namespace rotor::nn {

namespace {
constexpr int64_t kBlock = 1 << 15;  // elements per task; fixed, so sums do not depend on threads

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double wd, const AdamWOptions& o, int64_t t) {
  const double bc1 = 1.0 - std::pow(o.beta1, double(t)), bc2 = 1.0 - std::pow(o.beta2, double(t));
  const T decay = T(1.0 - lr * wd), b1 = T(o.beta1), b2 = T(o.beta2), one_b1 = T(1.0 - o.beta1),
          one_b2 = T(1.0 - o.beta2), step_size = T(lr / bc1), inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2)), eps = T(o.eps);
  // SIMD batches, the last one partial (zero lanes past the end), with the fused multiply-adds
  // spelled out: the rounding does not depend on what the compiler contracts.
  using B = kernels::Batch<T>;
  constexpr int64_t W = kernels::batch_size<T>();
  parallel_for(n, kBlock, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i += W) {
      const int64_t k = std::min(W, hi - i);
      const B gi = kernels::load_first(g + i, k), mo = kernels::load_first(m + i, k),
              vo = kernels::load_first(v + i, k), po = kernels::load_first(p + i, k);
      const B mi = xsimd::fma(B(one_b1), gi, B(b1) * mo);
      const B vi = xsimd::fma(B(one_b2) * gi, gi, B(b2) * vo);
      const B denom = xsimd::fma(xsimd::sqrt(vi), B(inv_sqrt_bc2), B(eps));
      const B pi = xsimd::fma(po, B(decay), -((B(step_size) * mi) / denom));
      kernels::store_first(m + i, mi, k);
      kernels::store_first(v + i, vi, k);
      kernels::store_first(p + i, pi, k);
    }
  });
}
}  // namespace

AdamW::AdamW(std::vector<Parameter> params, const AdamWOptions& options) : options_(options) {
  ROTOR_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1, "AdamW",
              "betas must be in [0, 1), got ", options.beta1, ", ", options.beta2);
  ROTOR_CHECK(options.eps >= 0 && options.weight_decay >= 0, "AdamW", "eps and weight_decay must be >= 0");
  for (Parameter& p : params) {
    if (!p.value.requires_grad()) continue;
    ROTOR_CHECK(is_floating(p.value.dtype()) && p.value.is_contiguous(), "AdamW", "parameter '", p.name,
                "' must be a contiguous float tensor");
    state_.push_back({p, 0, zeros(p.value.shape(), p.value.dtype()), zeros(p.value.shape(), p.value.dtype())});
  }
}

void AdamW::step(double lr) {
  NoGradGuard no_grad;
  for (State& s : state_) {
    Tensor g = s.param.value.grad();
    if (!g.defined()) continue;
    ROTOR_CHECK(g.shape() == s.param.value.shape(), "AdamW", "gradient of '", s.param.name, "' has shape ",
                shape_str(g.shape()), ", parameter ", shape_str(s.param.value.shape()));
    g = core::contiguous(core::to_dtype(g, s.param.value.dtype()));
    s.step += 1;
    const double wd = s.param.weight_decay ? options_.weight_decay : 0.0;
    dispatch_float(s.param.value.dtype(), "AdamW", [&](auto tag) {
      using T = decltype(tag);
      adamw_update<T>(s.param.value.data<T>(), g.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(),
                      s.param.value.numel(), lr, wd, options_, s.step);
    });
    s.param.value.storage()->bump_version();
  }
}

void AdamW::zero_grad() {
  for (State& s : state_) s.param.value.zero_grad();
}

NamedTensors AdamW::state_dict() const {
  NamedTensors out;
  for (const State& s : state_) {
    out.emplace_back(s.param.name + ".step", scalar_tensor(double(s.step), DType::Int64));
    out.emplace_back(s.param.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.param.name + ".exp_avg_sq", s.exp_avg_sq);
  }
  return out;
}

void AdamW::load_state_dict(const NamedTensors& tensors) {
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
    ROTOR_FAIL("AdamW", "optimizer state has no tensor '", name, "'");
  };
  auto check = [&](const std::string& name, const Tensor& t, const Shape& shape, DType dtype) {
    ROTOR_CHECK(t.shape() == shape && t.dtype() == dtype, "AdamW", "optimizer state '", name, "' is ",
                dtype_name(t.dtype()), " ", shape_str(t.shape()), ", expected ", dtype_name(dtype), " ",
                shape_str(shape));
  };
  ROTOR_CHECK(tensors.size() == 3 * state_.size(), "AdamW", "optimizer state has ", tensors.size(),
              " tensors, expected ", 3 * state_.size(), " (3 per parameter): was it saved for another model?");
  // Validate everything before changing anything.
  for (const State& s : state_) {
    const std::string& n = s.param.name;
    check(n + ".step", find(n + ".step"), {}, DType::Int64);
    check(n + ".exp_avg", find(n + ".exp_avg"), s.exp_avg.shape(), s.exp_avg.dtype());
    check(n + ".exp_avg_sq", find(n + ".exp_avg_sq"), s.exp_avg_sq.shape(), s.exp_avg_sq.dtype());
  }
  for (State& s : state_) {
    const std::string& n = s.param.name;
    s.step = find(n + ".step").item<int64_t>();
    core::copy_into(s.exp_avg, find(n + ".exp_avg"));
    core::copy_into(s.exp_avg_sq, find(n + ".exp_avg_sq"));
  }
}

namespace {
template <class T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double wd, const SGDOptions& o, bool first) {
  const T w = T(wd), mu = T(o.momentum), damp = T(1.0 - o.dampening), rate = T(lr);
  const bool momentum = o.momentum != 0.0;
  parallel_for(n, kBlock, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T d = g[i];
      if (wd != 0.0) d += w * p[i];
      if (momentum) {
        const T b = first ? d : mu * buf[i] + damp * d;
        buf[i] = b;
        d = o.nesterov ? d + mu * b : b;
      }
      p[i] -= rate * d;
    }
  });
}
}  // namespace

SGD::SGD(std::vector<Parameter> params, const SGDOptions& options) : options_(options) {
  ROTOR_CHECK(options.momentum >= 0 && options.dampening >= 0 && options.dampening <= 1 && options.weight_decay >= 0,
              "SGD", "momentum and weight_decay must be >= 0 and dampening in [0, 1], got momentum ", options.momentum,
              ", dampening ", options.dampening, ", weight_decay ", options.weight_decay);
  ROTOR_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), "SGD",
              "nesterov momentum requires a momentum > 0 and zero dampening");
  for (Parameter& p : params) {
    if (!p.value.requires_grad()) continue;
    ROTOR_CHECK(is_floating(p.value.dtype()) && p.value.is_contiguous(), "SGD", "parameter '", p.name,
                "' must be a contiguous float tensor");
    state_.push_back({p, 0, zeros(p.value.shape(), p.value.dtype())});
  }
}

void SGD::step(double lr) {
  NoGradGuard no_grad;
  for (State& s : state_) {
    Tensor g = s.param.value.grad();
    if (!g.defined()) continue;
    ROTOR_CHECK(g.shape() == s.param.value.shape(), "SGD", "gradient of '", s.param.name, "' has shape ",
                shape_str(g.shape()), ", parameter ", shape_str(s.param.value.shape()));
    g = core::contiguous(core::to_dtype(g, s.param.value.dtype()));
    const double wd = s.param.weight_decay ? options_.weight_decay : 0.0;
    dispatch_float(s.param.value.dtype(), "SGD", [&](auto tag) {
      using T = decltype(tag);
      sgd_update<T>(s.param.value.data<T>(), g.data<T>(), s.momentum_buffer.data<T>(), s.param.value.numel(), lr, wd,
                    options_, s.step == 0);
    });
    s.step += 1;
    s.param.value.storage()->bump_version();
  }
}

void SGD::zero_grad() {
  for (State& s : state_) s.param.value.zero_grad();
}

NamedTensors SGD::state_dict() const {
  NamedTensors out;
  for (const State& s : state_) {
    out.emplace_back(s.param.name + ".step", scalar_tensor(double(s.step), DType::Int64));
    out.emplace_back(s.param.name + ".momentum_buffer", s.momentum_buffer);
  }
  return out;
}

void SGD::load_state_dict(const NamedTensors& tensors) {
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
    ROTOR_FAIL("SGD", "optimizer state has no tensor '", name, "'");
  };
  ROTOR_CHECK(tensors.size() == 2 * state_.size(), "SGD", "optimizer state has ", tensors.size(),
              " tensors, expected ", 2 * state_.size(), " (2 per parameter): was it saved for another model?");
  for (const State& s : state_) {
    const std::string& n = s.param.name;
    const Tensor& step = find(n + ".step");
    const Tensor& buf = find(n + ".momentum_buffer");
    ROTOR_CHECK(step.dim() == 0 && step.dtype() == DType::Int64, "SGD", "optimizer state '", n,
                ".step' must be a 0-d int64 tensor");
    ROTOR_CHECK(buf.shape() == s.momentum_buffer.shape() && buf.dtype() == s.momentum_buffer.dtype(), "SGD",
                "optimizer state '", n, ".momentum_buffer' is ", dtype_name(buf.dtype()), " ", shape_str(buf.shape()),
                ", expected ", dtype_name(s.momentum_buffer.dtype()), " ", shape_str(s.momentum_buffer.shape()));
  }
  for (State& s : state_) {
    s.step = find(s.param.name + ".step").item<int64_t>();
    core::copy_into(s.momentum_buffer, find(s.param.name + ".momentum_buffer"));
  }
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup) return lr * double(step + 1) / double(warmup);
  const double span = double(std::max<int64_t>(1, total - warmup));
  const double progress = std::min(1.0, double(step - warmup) / span);
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

double clip_grad_norm(const TensorList& params, double max_norm) {
  NoGradGuard no_grad;
  double total = 0;
  TensorList grads;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    ROTOR_CHECK(g.is_contiguous(), "clip_grad_norm", "gradients must be contiguous");
    grads.push_back(g);
    dispatch_float(g.dtype(), "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* x = g.data<T>();
      const int64_t n = g.numel(), nb = (n + kBlock - 1) / kBlock;
      std::vector<double> partial(size_t(nb), 0.0);
      parallel_blocks(nb, [&](int64_t b) {
        double s = 0;
        for (int64_t i = b * kBlock, e = std::min(n, (b + 1) * kBlock); i < e; ++i) s += double(x[i]) * double(x[i]);
        partial[size_t(b)] = s;
      });
      for (double s : partial) total += s;
    });
  }
  const double norm = std::sqrt(total);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double coef = max_norm / (norm + 1e-6);
    for (Tensor& g : grads) {
      mul_(g, coef);
    }
  }
  return norm;
}

}  // namespace rotor::nn
