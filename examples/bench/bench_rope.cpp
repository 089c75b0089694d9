// Group "rope": fused Selective RoPE at the paper's attention shape (B=8, T=2048, H=8, D=64,
// float32) against the memory triad. The kernels are memory-bound by design — one pass, sin/cos
// recomputed — so the figure to watch is the bandwidth ratio. Minimal bytes:
//   forward   reads q, k, phi, writes q', k'
//   backward  reads dq', dk', q, k, phi, writes dq, dk, dphi
// For scale, PyTorch eager needs ~40 ms forward and > 500 ms forward+backward at this shape.
#include <cstdint>
#include <memory>

#include "bench.h"
#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"
#include "rotor/kernels/selective_rope.h"

namespace bench {

namespace {

// A cheap deterministic pattern in [lo, hi).
Buffer pattern(int64_t n, float lo, float hi) {
  return Buffer(n, [=](int64_t i) { return lo + (hi - lo) * float((i * 2654435761u) % 1000) / 1000.f; });
}

}  // namespace

void bench_rope(Bench& b) {
  using namespace rotor::kernels;
  const RopeShape sh{8, 2048, 8, 64};
  const int64_t n = sh.B * sh.T * sh.H * sh.D, np = n / 2, R = sh.D / 2;
  const int64_t no = sh.B * sh.H * R;  // offsets
  Buffer q = pattern(n, -1, 1), k = pattern(n, -1, 1), phi = pattern(np, 0, 1), qo = pattern(n, 0, 0),
         ko = pattern(n, 0, 0);
  Buffer dqo = pattern(n, -1, 1), dko = pattern(n, -1, 1), dq = pattern(n, 0, 0), dk = pattern(n, 0, 0),
         dphi = pattern(np, 0, 0);
  Buffer tau = pattern(R, 0, 0), offset = pattern(no, 0, 0), final_offset = pattern(no, 0, 0);
  Buffer dtau = pattern(R, 0, 0), doffset = pattern(no, 0, 0);
  rotary_temperature(tau.data, TemperatureType::Rope, 500000.0, sh.D);

  auto forward = [&] {
    selective_rope_forward(qo.data, ko.data, final_offset.data, q.data, k.data, phi.data, tau.data, offset.data, sh);
  };
  auto backward = [&] {
    selective_rope_backward(dq.data, dk.data, dphi.data, dtau.data, doffset.data, dqo.data, dko.data,
                            static_cast<const float*>(nullptr), q.data, k.data, phi.data, tau.data, offset.data, sh);
  };
  const double fwd_bytes = 4.0 * (4 * n + np);      // q, k, phi in; q', k' out
  const double bwd_bytes = 4.0 * (6 * n + 2 * np);  // dq', dk', q, k, phi in; dq, dk, dphi out

  const double t_fwd = time_median(forward, 11);
  b.report("selective_rope_fwd_B8_T2048_H8_D64", t_fwd * 1e3, "ms");
  b.report_bandwidth("selective_rope_fwd", fwd_bytes, t_fwd);

  const double t_bwd = time_median(backward, 11);
  b.report("selective_rope_bwd_B8_T2048_H8_D64", t_bwd * 1e3, "ms");
  b.report_bandwidth("selective_rope_bwd", bwd_bytes, t_bwd);

  const double t_both = time_median([&] { forward(), backward(); }, 11);
  b.report("selective_rope_fwd_bwd_B8_T2048_H8_D64", t_both * 1e3, "ms");
  b.report_bandwidth("selective_rope_fwd_bwd", fwd_bytes + bwd_bytes, t_both);

  // One long sequence: the along-time path (chunk pre-pass, then chunks as work items).
  const RopeShape one{1, 8 * 2048, 8, 64};
  const double t_one = time_median(
      [&] {
        selective_rope_forward(qo.data, ko.data, final_offset.data, q.data, k.data, phi.data, tau.data, offset.data,
                               one);
      },
      11);
  b.report_bandwidth("selective_rope_fwd_B1_T16384", fwd_bytes, t_one);
}

}  // namespace bench
