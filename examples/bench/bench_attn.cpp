// Group "attn": tiled causal softmax attention (kernels/attention.h) at the sizes the language
// models train with, float32, all threads.
//
// FLOPs counted (the FlashAttention convention): the forward does two (T × T × D) products, halved
// by the causal mask, so 2 · 2·B·H·(T²/2)·D; the backward does five, counted as 2.5 × the forward.
// Softmax exponentials and the backward's recomputation are not counted, so the ratio to raw sgemm
// is the fraction of matrix-multiply peak that reaches useful work.
#include <string>
#include <vector>

#include "bench.h"
#include "rotor/core/generator.h"
#include "rotor/kernels/attention.h"

namespace bench {
namespace {

void run(Bench& b, int64_t B, int64_t T, int64_t H, int64_t D) {
  const rotor::kernels::AttentionDims d{B, T, T, H, D, D};
  const size_t n = size_t(B * T * H * D);
  rotor::Generator gen(7);
  auto fill = [&](std::vector<float>& x) {
    for (auto& e : x) e = float(gen.next_normal());
  };
  std::vector<float> q(n), k(n), v(n), o(n), dout(n), dq(n), dk(n), dv(n), lse(size_t(B * H * T));
  fill(q), fill(k), fill(v), fill(dout);
  const float scale = float(rotor::kernels::attention_default_scale(D));

  auto forward = [&] {
    rotor::kernels::attention_forward<float>(o.data(), lse.data(), q.data(), k.data(), v.data(), d, scale);
  };
  auto backward = [&] {
    rotor::kernels::attention_backward<float>(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                                              v.data(), o.data(), lse.data(), d, scale);
  };
  const double fwd_flops = 2.0 * 2.0 * double(B * H) * (double(T) * double(T) / 2) * double(D);
  const std::string tag = "attn_B" + std::to_string(B) + "_T" + std::to_string(T) + "_H" + std::to_string(H) +
                          "_D" + std::to_string(D);

  const double t_fwd = time_median(forward, 7);
  b.report(tag + "_fwd_ms", t_fwd * 1e3, "ms");
  b.report_gflops(tag + "_fwd", fwd_flops, t_fwd, 512);
  const double t_both = time_median([&] { forward(), backward(); }, 5);
  b.report(tag + "_fwd_bwd_ms", t_both * 1e3, "ms");
  b.report_gflops(tag + "_fwd_bwd", 3.5 * fwd_flops, t_both, 512);
}

}  // namespace

void bench_attn(Bench& b) {
  run(b, 4, 1024, 8, 64);
  run(b, 32, 256, 8, 16);
}

}  // namespace bench
