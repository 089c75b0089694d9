// Group "gla": gated linear attention, forward + backward, chunked and recurrent (float32). The
// chunked backward takes the chunk states its forward kept, as the autograd op does.
//
// Throughput is counted with a fixed yardstick, whatever the chunk size: the FLOPs of a chunked
// evaluation with C = 64 done as full dense matrix products,
//     forward = B H T (2·64·(K+V) + 4·K·V),   forward + backward = 3 × forward,
// and reported as a ratio of raw sgemm (n = 512, the harness reference) measured in the same run.
// The scaling lines time chunked forward + backward per token from T = 512 to 16384 at B·H = 16:
// chunked GLA is linear in T, so the time per token should stay flat.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench.h"
#include "rotor/kernels/gla.h"

namespace bench {
namespace {

using rotor::kernels::GlaDims;

struct GlaData {
  GlaDims d;
  std::vector<float> q, k, v, g, h0, o, ht, dout, dht, dq, dk, dv, dg, dh0;
  std::vector<float> saved;  // the chunk states, kept by the forward for the backward (as autograd does)
  explicit GlaData(GlaDims dims) : d(dims) {
    const size_t nk = size_t(d.B * d.T * d.H * d.K), nv = size_t(d.B * d.T * d.H * d.V),
                 ns = size_t(d.B * d.H * d.K * d.V);
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.f, 1.f);
    auto fill = [&](std::vector<float>& x, size_t n) {
      x.resize(n);
      for (auto& e : x) e = normal(gen);
    };
    fill(q, nk), fill(k, nk), fill(v, nv), fill(g, nk), fill(h0, ns), fill(dout, nv), fill(dht, ns);
    // The GLA layer's gates: logsigmoid(x) / 16.
    for (auto& x : g) x = (std::min(x, 0.f) - std::log1p(std::exp(-std::abs(x)))) / 16.f;
    saved.resize(size_t(rotor::kernels::gla_chunked_saved_size(d)));
    o.resize(nv), ht.resize(ns), dq.resize(nk), dk.resize(nk), dv.resize(nv), dg.resize(nk), dh0.resize(ns);
  }
  float scale() const { return 1.f / std::sqrt(float(d.K)); }

  void chunked_forward() {
    rotor::kernels::gla_chunked_forward<float>(d, q.data(), k.data(), v.data(), g.data(), h0.data(), o.data(),
                                               ht.data(), scale(), rotor::kernels::kGlaDefaultChunk, saved.data());
  }
  void chunked_backward() {
    rotor::kernels::gla_chunked_backward<float>(d, q.data(), k.data(), v.data(), g.data(), h0.data(),
                                                dout.data(), dht.data(), dq.data(), dk.data(), dv.data(),
                                                dg.data(), dh0.data(), scale(), rotor::kernels::kGlaDefaultChunk,
                                                saved.data());
  }
  void recurrent_forward() {
    rotor::kernels::gla_recurrent_forward<float>(d, q.data(), k.data(), v.data(), g.data(), h0.data(),
                                                 o.data(), ht.data(), scale());
  }
  void recurrent_backward() {
    rotor::kernels::gla_recurrent_backward<float>(d, q.data(), k.data(), v.data(), g.data(), h0.data(),
                                                  dout.data(), dht.data(), dq.data(), dk.data(), dv.data(),
                                                  dg.data(), dh0.data(), scale());
  }
};

double yardstick_flops(const GlaDims& d) {
  return 3.0 * double(d.B * d.H * d.T) * (2.0 * 64 * double(d.K + d.V) + 4.0 * double(d.K * d.V));
}

}  // namespace

void bench_gla(Bench& b) {
  GlaData x(GlaDims{4, 1024, 4, 64, 64});
  const double flops = yardstick_flops(x.d);

  const double cf = time_median([&] { x.chunked_forward(); }, 9);
  const double cb = time_median([&] { x.chunked_backward(); }, 9);
  const double cfb = time_median([&] { x.chunked_forward(), x.chunked_backward(); }, 9);
  b.report("gla_chunked_fwd_ms", cf * 1e3, "ms");
  b.report("gla_chunked_bwd_ms", cb * 1e3, "ms");
  b.report("gla_chunked_fwd_bwd_ms", cfb * 1e3, "ms");
  b.report_gflops("gla_chunked_fwd_bwd", flops, cfb, 512);

  const double rfb = time_median([&] { x.recurrent_forward(), x.recurrent_backward(); }, 3);
  b.report("gla_recurrent_fwd_bwd_ms", rfb * 1e3, "ms");
  b.report_gflops("gla_recurrent_fwd_bwd", flops, rfb, 512);

  // The complex recurrence of the RoPE trick at the same size (R = 32 pairs).
  {
    const size_t nr = x.g.size() / 2;
    std::vector<float> gp(x.g.begin(), x.g.begin() + nr), dth(nr, 0.1f), dgp(nr), ddth(nr);
    const double sec = time_median([&] {
      rotor::kernels::gla_complex_recurrent_forward<float>(x.d, x.q.data(), x.k.data(), x.v.data(), gp.data(),
                                                           dth.data(), x.h0.data(), x.o.data(), x.ht.data(),
                                                           x.scale());
      rotor::kernels::gla_complex_recurrent_backward<float>(
          x.d, x.q.data(), x.k.data(), x.v.data(), gp.data(), dth.data(), x.h0.data(), x.dout.data(),
          x.dht.data(), x.dq.data(), x.dk.data(), x.dv.data(), dgp.data(), ddth.data(), x.dh0.data(),
          x.scale());
    }, 3);
    b.report("gla_complex_recurrent_fwd_bwd_ms", sec * 1e3, "ms");
  }

  // Scaling in T at B·H = 16: time per token (of one sequence: B·T tokens of H heads each) of
  // chunked forward + backward.
  for (int64_t T : {512, 2048, 16384}) {
    GlaData s(GlaDims{4, T, 4, 64, 64});
    const double sec = time_median([&] { s.chunked_forward(), s.chunked_backward(); }, T >= 16384 ? 3 : 5);
    b.report("gla_chunked_fwd_bwd_T" + std::to_string(T) + "_us_per_token", sec * 1e6 / double(4 * T), "us");
  }
  // One long sequence (B·H = 1): the chunks of one sequence run in parallel on the chained scan.
  GlaData one(GlaDims{1, 16384, 1, 64, 64});
  const double sec = time_median([&] { one.chunked_forward(), one.chunked_backward(); }, 5);
  b.report("gla_chunked_fwd_bwd_BH1_T16384_ms", sec * 1e3, "ms");
  b.report_gflops("gla_chunked_fwd_bwd_BH1_T16384", yardstick_flops(one.d), sec, 512);
}

}  // namespace bench
