#include "rotor/kernels/scan.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "rotor/core/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ROTOR_SPIN_PAUSE() _mm_pause()
#else
#define ROTOR_SPIN_PAUSE() ((void)0)
#endif

namespace rotor::kernels {

ScanPlan plan_scan(int64_t lanes, int64_t steps, int64_t bytes_per_step, bool reverse) {
  ScanPlan p;
  p.lanes = lanes;
  p.steps = steps;
  p.reverse = reverse;
  if (lanes <= 0 || steps <= 0) return p;
  bytes_per_step = std::max<int64_t>(bytes_per_step, 1);
  p.block = steps;
  // Few lanes: cut time into cache-sized blocks so that threads can share a lane.
  if (lanes < kScanLanesNoSplit) {
    const int64_t bytes = std::clamp(steps * bytes_per_step / kScanBlocksPerLane, kScanMinBlockBytes, kScanMaxBlockBytes);
    int64_t block = bytes / bytes_per_step;
    block = std::max<int64_t>(kScanStepAlign, block / kScanStepAlign * kScanStepAlign);
    if (block < steps) p.block = block;
  }
  p.nblocks = (steps + p.block - 1) / p.block;
  p.parallel = lanes * p.nblocks > 1 && lanes * steps * bytes_per_step >= kScanParallelBytes;
  return p;
}

namespace detail {

namespace {
std::atomic<bool> reverse_tickets{false};
}

void scan_test_reverse_tickets(bool on) { reverse_tickets.store(on); }

void run_tickets(int64_t n, bool parallel, void* ctx, void (*process)(void*, int64_t)) {
  if (reverse_tickets.load(std::memory_order_relaxed)) {
    for (int64_t i = n - 1; i >= 0; --i) process(ctx, i);
    return;
  }
  if (!parallel || n <= 1) {
    for (int64_t i = 0; i < n; ++i) process(ctx, i);
    return;
  }
  // Workers pull tickets in order; how many there are only affects speed, never the results.
  std::atomic<int64_t> next{0};
  int64_t workers = std::min<int64_t>(n, std::max(1, rotor::num_threads()));
  rotor::parallel_blocks(workers, [&](int64_t) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) process(ctx, i);
  });
}

double now_micros() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void wait_no_readers(Flag& f) {
  std::atomic_ref<int> r(f.bits);
  while (r.load(std::memory_order_acquire) >= kReader) ROTOR_SPIN_PAUSE();
}

void wait_until(Flag& f, int bit) {
  for (int spin = 0; !has(f, bit); ++spin) {
    if (spin < 4096) ROTOR_SPIN_PAUSE();
    else std::this_thread::yield();
  }
}

bool wait_for(Flag& f, int bit, double micros) {
  if (has(f, bit)) return true;
  const double deadline = now_micros() + micros;
  for (;;) {
    for (int spin = 0; spin < 32; ++spin) {
      if (has(f, bit)) return true;
      ROTOR_SPIN_PAUSE();
    }
    if (now_micros() > deadline) return has(f, bit);
  }
}

}  // namespace detail
}  // namespace rotor::kernels
