// Group "core": elementwise ops against the triad, matmul against raw sgemm.
#include "bench.h"

namespace bench {
void bench_core(Bench& b) { b.triad_gbs(); b.sgemm_gflops(512); }
}  // namespace bench
