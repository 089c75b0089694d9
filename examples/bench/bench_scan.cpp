// Group "scan": one long sequence (B = 1, T = 2^22, C = 1), the case where all parallelism has
// to come from cutting time into blocks, then the same floats laid out as (B, T, C) =
// (4, 4096, 256). Bandwidth counts each array read or written once (cumsum: 8 bytes per float
// step; recurrence: a and b read, h written, 12 bytes), also as a ratio of the triad; the
// speedup divides the median 1-thread time by the median all-threads time.
// On a shared machine the second core is often busy: run it as `chrt -r 1 build/examples/bench
// --filter scan` (or on an idle machine) for figures that mean something.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench.h"
#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"
#include "rotor/kernels/scan_cumsum.h"
#include "rotor/kernels/scan_linear_recurrence.h"

namespace bench {

void bench_scan(Bench& b) {
  const int64_t T = int64_t(1) << 22;
  Buffer bx(T, [](int64_t i) { return float(i % 7) - 3.f; }), ba(T, [](int64_t) { return 0.999f; }),
      by(T, [](int64_t) { return 0.f; });
  float *x = bx.data, *a = ba.data, *y = by.data;

  // Times fn on one thread and on all threads, alternating so that both see the same machine
  // (it is shared: a drift between two separate series would show up as a speedup); reports
  // the bandwidth on all threads, on one, and the ratio of the median times.
  auto measure = [&](const std::string& name, double bytes, const std::function<void()>& fn) {
    std::vector<double> one, all;
    for (int r = 0; r < 15; ++r) {
      rotor::set_num_threads(1);
      one.push_back(time_median(fn, 1));
      rotor::set_num_threads(0);
      all.push_back(time_median(fn, 1));
    }
    std::sort(one.begin(), one.end());
    std::sort(all.begin(), all.end());
    b.report_bandwidth(name + "_1t", bytes, one[one.size() / 2]);
    b.report_bandwidth(name, bytes, all[all.size() / 2]);
    b.report(name + "_speedup_2v1", one[one.size() / 2] / all[all.size() / 2], "ratio");
  };
  // The machine's own limit for this traffic: a parallel elementwise pass over the same floats
  // (one read stream, one ordinary-store stream, as in cumsum; std::copy would use non-temporal
  // stores) with no dependence along time, so its speedup bounds the scan's.
  measure("scan.stream", 8.0 * double(T), [&] {
    rotor::parallel_for(T, rotor::kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) y[i] = x[i] + 1.f;
    });
  });
  measure("scan.cumsum", 8.0 * double(T),
          [&] { rotor::kernels::cumsum_forward<float>(x, nullptr, y, 1, T, 1, false); });
  measure("scan.cumsum_reverse", 8.0 * double(T),
          [&] { rotor::kernels::cumsum_forward<float>(x, nullptr, y, 1, T, 1, true); });
  measure("scan.linrec", 12.0 * double(T),
          [&] { rotor::kernels::linear_recurrence_forward<float>(a, x, nullptr, y, nullptr, 1, T, 1); });
  // The same number of floats as Selective RoPE lays them out: (B, T, H*R) = (4, 4096, 256),
  // vectorized across channels; few sequences, so time is still cut into blocks.
  measure("scan.cumsum_rows", 8.0 * double(T),
          [&] { rotor::kernels::cumsum_forward<float>(x, nullptr, y, 4, 4096, 256, false); });
}

}  // namespace bench
