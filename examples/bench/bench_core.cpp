// Group "core": elementwise ops on 64 MB tensors against the triad (bytes read + written),
// matmul at 512^3 and 1024^3 against raw cblas_sgemm at the same size.
#include "rotor/autograd/ops.h"
#include "bench.h"

namespace bench {

void bench_core(Bench& b) {
  using namespace rotor;
  NoGradGuard no_grad;
  Generator gen(0);
  const int64_t n = int64_t(16) << 20;  // 16 Mi floats = 64 MB per tensor
  Tensor x = rand({n}, gen), y = rand({n}, gen);
  const double bytes2 = 3.0 * double(n) * 4, bytes1 = 2.0 * double(n) * 4;
  b.report_bandwidth("core.add", bytes2, time_median([&] { add(x, y); }, 9));
  b.report_bandwidth("core.mul", bytes2, time_median([&] { mul(x, y); }, 9));
  b.report_bandwidth("core.exp", bytes1, time_median([&] { exp(x); }, 9));

  for (int64_t s : {512, 1024}) {
    Tensor a = rand({s, s}, gen), c = rand({s, s}, gen);
    double sec = time_median([&] { matmul(a, c); }, s <= 512 ? 21 : 7);
    b.report_gflops("core.matmul_" + std::to_string(s), 2.0 * double(s * s * s), sec, int(s));
  }
}

}  // namespace bench
