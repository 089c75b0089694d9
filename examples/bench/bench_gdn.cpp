// Group "gdn": the gated delta rule, forward + backward, chunked and recurrent (float32).
//
// Throughput is counted with a fixed yardstick, whatever the chunk size: the FLOPs of the
// chunked forward with C = 64 done as dense matrix products (eight per chunk, docs/gated_deltanet.md),
//     forward = B H T · 2 (3·64·K + 2·64·V + 3·K·V),   forward + backward = 3 × forward,
// reported as a ratio of raw sgemm at n = 512 (the harness reference, as for GLA) and of raw
// sgemm on 64 x 64 x 64 products, the size the chunked form is made of, both measured in the
// same run. The scaling lines time chunked forward + backward per token from T = 512 to 16384 at
// B·H = 16: the chunked form is linear in T, so the time per token should stay flat.
#include <cblas.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bench.h"
#include "rotor/kernels/gated_delta.h"

namespace bench {
namespace {

using rotor::kernels::GlaDims;

struct GdnData {
  GlaDims d;
  std::vector<float> q, k, v, g, beta, h0, o, ht, dout, dht, dq, dk, dv, dg, dbeta, dh0, saved;
  explicit GdnData(GlaDims dims) : d(dims) {
    const size_t nt = size_t(d.B * d.T * d.H), nk = nt * size_t(d.K), nv = nt * size_t(d.V),
                 ns = size_t(d.B * d.H * d.K * d.V);
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.f, 1.f);
    auto fill = [&](std::vector<float>& x, size_t n) {
      x.resize(n);
      for (auto& e : x) e = normal(gen);
    };
    fill(q, nk), fill(k, nk), fill(v, nv), fill(g, nt), fill(beta, nt), fill(h0, ns), fill(dout, nv), fill(dht, ns);
    // The layer's inputs: unit q and k per head, g = -softplus(x) / 8 (A in the init's range),
    // beta = sigmoid(x).
    for (std::vector<float>* x : {&q, &k})
      for (size_t r = 0; r < nt; ++r) {
        float s = 0;
        for (int64_t i = 0; i < d.K; ++i) s += (*x)[r * d.K + i] * (*x)[r * d.K + i];
        for (int64_t i = 0; i < d.K; ++i) (*x)[r * d.K + i] /= std::sqrt(s);
      }
    for (auto& x : g) x = -std::log1p(std::exp(x)) / 8.f;
    for (auto& x : beta) x = 1.f / (1.f + std::exp(-x));
    o.resize(nv), ht.resize(ns), dq.resize(nk), dk.resize(nk), dv.resize(nv), dg.resize(nt), dbeta.resize(nt),
        dh0.resize(ns);
    saved.resize(size_t(rotor::kernels::gated_delta_chunked_saved_size(d)));
  }
  float scale() const { return 1.f / std::sqrt(float(d.K)); }

  // As in training: the forward keeps its chunks for the backward.
  void chunked_forward() {
    rotor::kernels::gated_delta_chunked_forward<float>(d, q.data(), k.data(), v.data(), g.data(), beta.data(),
                                                       h0.data(), o.data(), ht.data(), scale(), 64, saved.data());
  }
  void chunked_backward() {
    rotor::kernels::gated_delta_chunked_backward<float>(d, q.data(), k.data(), v.data(), g.data(), beta.data(),
                                                        h0.data(), dout.data(), dht.data(), dq.data(), dk.data(),
                                                        dv.data(), dg.data(), dbeta.data(), dh0.data(), scale(), 64,
                                                        saved.data());
  }
  void recurrent_forward() {
    rotor::kernels::gated_delta_recurrent_forward<float>(d, q.data(), k.data(), v.data(), g.data(), beta.data(),
                                                         h0.data(), o.data(), ht.data(), scale());
  }
  void recurrent_backward() {
    rotor::kernels::gated_delta_recurrent_backward<float>(d, q.data(), k.data(), v.data(), g.data(), beta.data(),
                                                          h0.data(), dout.data(), dht.data(), dq.data(), dk.data(),
                                                          dv.data(), dg.data(), dbeta.data(), dh0.data(), scale());
  }
};

double yardstick_flops(const GlaDims& d) {
  const double C = 64, K = double(d.K), V = double(d.V);
  return 3.0 * double(d.B * d.H * d.T) * 2.0 * (3 * C * K + 2 * C * V + 3 * K * V);
}

// Raw sgemm rate on independent 64 x 64 x 64 products, one stream of them per thread.
double sgemm64_gflops(Bench& b) {
  constexpr int n = 64, per_task = 64, tasks = 64;
  std::vector<float> a(size_t(tasks) * n * n, 0.5f), bm(size_t(tasks) * n * n, 0.25f), c(size_t(tasks) * n * n);
  const double sec = time_median([&] {
    rotor::parallel_for(tasks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t)
        for (int r = 0; r < per_task; ++r)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, &a[size_t(t) * n * n], n,
                      &bm[size_t(t) * n * n], n, 0.f, &c[size_t(t) * n * n], n);
    });
  }, 9);
  const double g = 2.0 * n * n * n * per_task * tasks / sec / 1e9;
  b.report("sgemm_64x64x64", g, "GFLOP/s");
  return g;
}

}  // namespace

void bench_gdn(Bench& b) {
  GdnData x(GlaDims{4, 1024, 4, 64, 64});
  const double flops = yardstick_flops(x.d);

  const double cf = time_median([&] { x.chunked_forward(); }, 9);
  const double cb = time_median([&] { x.chunked_backward(); }, 9);
  const double cfb = time_median([&] { x.chunked_forward(), x.chunked_backward(); }, 9);
  b.report("gdn_chunked_fwd_ms", cf * 1e3, "ms");
  b.report("gdn_chunked_bwd_ms", cb * 1e3, "ms");
  b.report("gdn_chunked_fwd_bwd_ms", cfb * 1e3, "ms");
  b.report_gflops("gdn_chunked_fwd_bwd", flops, cfb, 512);
  b.report("gdn_chunked_fwd_bwd_vs_sgemm64", flops / cfb / 1e9 / sgemm64_gflops(b), "ratio", "sgemm_64x64x64");

  const double rfb = time_median([&] { x.recurrent_forward(), x.recurrent_backward(); }, 3);
  b.report("gdn_recurrent_fwd_bwd_ms", rfb * 1e3, "ms");
  b.report_gflops("gdn_recurrent_fwd_bwd", flops, rfb, 512);

  // Scaling in T at B·H = 16: time per token (B·T tokens of H heads each) of chunked fwd + bwd.
  for (int64_t T : {512, 2048, 16384}) {
    GdnData s(GlaDims{4, T, 4, 64, 64});
    const double sec = time_median([&] { s.chunked_forward(), s.chunked_backward(); }, T >= 16384 ? 3 : 5);
    b.report("gdn_chunked_fwd_bwd_T" + std::to_string(T) + "_us_per_token", sec * 1e6 / double(4 * T), "us");
  }
}

}  // namespace bench
