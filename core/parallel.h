// Thread-parallel loops on oneTBB with fixed partitioning: block boundaries depend only on
// the problem size and the grain, never on the number of threads, so every reduction built on
// them gives the same bits on 1 or N threads.
#pragma once
#include <cstdint>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace rotor {

// Below this many elements an elementwise loop runs on the calling thread.
constexpr int64_t kParallelGrain = int64_t(1) << 15;

// Calls body(lo, hi) over [0, n); ranges start and end on multiples of `grain` (or n).
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& body) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain) {
    body(int64_t(0), n);
    return;
  }
  int64_t blocks = (n + grain - 1) / grain;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks), [&](const tbb::blocked_range<int64_t>& r) {
    int64_t lo = r.begin() * grain, hi = r.end() * grain;
    body(lo, hi < n ? hi : n);
  });
}

// Calls body(b) once for every block index b in [0, blocks), in parallel when blocks > 1.
template <class F>
void parallel_blocks(int64_t blocks, F&& body) {
  if (blocks <= 0) return;
  if (blocks == 1) {
    body(int64_t(0));
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t b = r.begin(); b < r.end(); ++b) body(b);
  });
}

// Caps the worker threads of all later parallel loops (0 restores the default).
void set_num_threads(int n);
int num_threads();

}  // namespace rotor
