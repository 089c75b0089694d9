// Tutorial step 6 — Selective RoPE step by step (docs/tutorial/06_selective_rope.md,
// docs/selective_rope.md).
//
//   build/examples/tutorial_06_selective_rope
//
// One head of size 4 (two rotation pairs), five tokens. We print the angle increments φ the
// module computes from the input, the accumulated phases Φ, the angles θ = τ ⊙ Φ, and the
// rotated q and k — then rebuild the rotation by hand, check that it keeps norms and that the
// score q'_t · k'_s depends on θ_t − θ_s only, and feed the sequence in two pieces.
#include <cmath>
#include <cstdio>

#include "rotor/rotor.h"

using namespace rotor;

// Prints a [1, T, 1, n] (or [1, T, n]) tensor as T rows.
void print_rows(const char* name, const Tensor& x) {
  const std::vector<double> v = to_dtype(contiguous(x), DType::Float64).to_vector<double>();
  const int64_t T = x.size(1), n = x.numel() / T;
  std::printf("%s\n", name);
  for (int64_t t = 0; t < T; ++t) {
    std::printf("  t=%lld ", (long long)t);
    for (int64_t j = 0; j < n; ++j) std::printf(" %8.4f", v[size_t(t * n + j)]);
    std::printf("\n");
  }
}

int main() {
  Generator gen(3);
  const int64_t T = 5, D = 4, model_dim = 4;

  nn::SelectiveRopeConfig config;
  config.phi_proj_rank = 2;
  config.use_bias = true;  // φ += exp(b), b = 0: every increment starts near 1
  config.temp_theta = 100;   // τ_r = 100^(-2r/D): pair 0 turns at rate 1, pair 1 at rate 0.1
  nn::SelectiveRoPE rope(D, model_dim, /*num_heads=*/1, config, gen);
  {
    // A trained model's projection is far from its N(0, 0.02) start; make it matter here.
    NoGradGuard no_grad;
    mul_(rope.phi_down->weight, 40.0);
    mul_(rope.phi_up->weight, 40.0);
    mul_(rope.phi_conv1d->weight, 25.0);
  }

  Tensor x = randn({1, T, model_dim}, gen);  // the layer input
  Tensor q = randn({1, T, 1, D}, gen), k = randn({1, T, 1, D}, gen);

  // Steps 1-5: normalise, project, convolve, add the bias (no gate here).
  auto [phi, history] = rope.phase_increments(x, Tensor());
  print_rows("phi (angle increments, one column per pair)", phi);

  // Step 6: accumulate. Step 7: scale by the temperature.
  Tensor Phi = cumsum(phi, 1);
  print_rows("Phi = cumsum(phi)", Phi);
  std::printf("tau =");
  for (double tau : to_dtype(rope.temperature, DType::Float64).to_vector<double>()) std::printf(" %.4f", tau);
  std::printf("\n");
  Tensor theta = Phi * reshape(rope.temperature, {1, 1, 1, D / 2});
  print_rows("theta = tau * Phi", theta);

  // Step 8: rotate q and k. The module does steps 1-8 in one call.
  nn::SelectiveRoPE::Output out = rope.forward(q, k, x);
  print_rows("q", q);
  print_rows("q' (rotated)", out.q);

  // The same rotation by hand: pair r is (x[r], x[r+2]), turned by theta_r.
  const std::vector<double> qv = to_dtype(q, DType::Float64).to_vector<double>(),
                            qr = to_dtype(out.q, DType::Float64).to_vector<double>(),
                            kv = to_dtype(k, DType::Float64).to_vector<double>(),
                            kr = to_dtype(out.k, DType::Float64).to_vector<double>(),
                            th = to_dtype(theta, DType::Float64).to_vector<double>();
  double worst = 0, norm_change = 0;
  for (int64_t t = 0; t < T; ++t) {
    double n0 = 0, n1 = 0;
    for (int64_t r = 0; r < D / 2; ++r) {
      const double a = qv[size_t(t * D + r)], b = qv[size_t(t * D + r + 2)], c = std::cos(th[size_t(t * 2 + r)]),
                   s = std::sin(th[size_t(t * 2 + r)]);
      worst = std::max({worst, std::abs(a * c - b * s - qr[size_t(t * D + r)]),
                        std::abs(a * s + b * c - qr[size_t(t * D + r + 2)])});
      n0 += a * a + b * b;
      n1 += qr[size_t(t * D + r)] * qr[size_t(t * D + r)] + qr[size_t(t * D + r + 2)] * qr[size_t(t * D + r + 2)];
    }
    norm_change = std::max(norm_change, std::abs(std::sqrt(n1) - std::sqrt(n0)));
  }
  std::printf("rotation by hand matches: %s; |q'| - |q| at most 1e-6: %s\n", worst < 1e-5 ? "yes" : "no",
              norm_change < 1e-6 ? "yes" : "no");

  // q'_t . k'_s = Re sum_r z_q,t conj(z_k,s) e^{i(theta_t - theta_s)}: relative angles only.
  const int64_t t = 4, s = 1;
  double dot = 0, relative = 0;
  for (int64_t i = 0; i < D; ++i) dot += qr[size_t(t * D + i)] * kr[size_t(s * D + i)];
  for (int64_t r = 0; r < D / 2; ++r) {
    const double d = th[size_t(t * 2 + r)] - th[size_t(s * 2 + r)];
    const double zr = qv[size_t(t * D + r)] * kv[size_t(s * D + r)] + qv[size_t(t * D + r + 2)] * kv[size_t(s * D + r + 2)];
    const double zi = qv[size_t(t * D + r + 2)] * kv[size_t(s * D + r)] - qv[size_t(t * D + r)] * kv[size_t(s * D + r + 2)];
    relative += zr * std::cos(d) - zi * std::sin(d);
  }
  std::printf("q'_4 . k'_1 = %.4f, from theta_4 - theta_1 alone: %.4f\n", dot, relative);

  // Streaming: three tokens, then two more with the cache; the angles continue exactly.
  auto first = rope.forward(narrow(q, 1, 0, 3), narrow(k, 1, 0, 3), narrow(x, 1, 0, 3));
  auto rest = rope.forward(narrow(q, 1, 3, 2), narrow(k, 1, 3, 2), narrow(x, 1, 3, 2), &first.cache);
  const double gap = max(abs(concat({first.q, rest.q}, 1) - out.q)).item();
  std::printf("in two pieces: largest difference %s 1e-6\n", gap < 1e-6 ? "below" : "above");
}
