// The benchmark harness behind examples/bench. Every figure rotor reports is paired with a
// reference measured in the same run on the same machine — the memory triad bandwidth and
// raw cblas_sgemm throughput — because shared machines drift and only ratios travel.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"
#include "rotor/kernels/blas.h"

namespace bench {

// n floats in rotor's 64-byte aligned storage, element i set to value(i) in parallel (so the
// pages are first touched by the threads that will use them).
struct Buffer {
  std::shared_ptr<rotor::Storage> storage;
  float* data;
  Buffer(int64_t n, const std::function<float(int64_t)>& value)
      : storage(rotor::Storage::allocate(size_t(n) * sizeof(float))), data(static_cast<float*>(storage->data())) {
    rotor::parallel_for(n, rotor::kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) data[i] = value(i);
    });
  }
};

class Bench {
 public:
  explicit Bench(bool json) : json_(json) {}

  // References, measured once on first use (the triad over >= 256 MB, sgemm at n^3).
  double triad_gbs();
  double sgemm_gflops(int n);

  // One result line: text, or one JSON object {"name","value","unit"[,"ratio_of"]}.
  void report(const std::string& name, double value, const std::string& unit,
              const std::string& ratio_of = "");
  // A throughput and its ratio to a reference in one call.
  void report_bandwidth(const std::string& name, double bytes, double seconds);
  void report_gflops(const std::string& name, double flops, double seconds, int sgemm_n);

 private:
  bool json_;
  double triad_ = 0;
  std::vector<std::pair<int, double>> sgemm_;
};

// Median time in seconds of fn() over `repeats` runs after one warm-up run: wall time, or
// with use_cpu_time(true) the CPU time of the process (user + sys over its threads), which on
// a shared machine counts only the time rotor was running, not the time it waited for a core.
double time_median(const std::function<void()>& fn, int repeats = 5);
void use_cpu_time(bool on);
bool using_cpu_time();

// The raw-BLAS time of a step's products: each distinct shape timed with raw cblas_sgemm on
// packed operands, on one OpenBLAS thread and on all of rotor's threads; a shape counts the
// better of the all-thread time and the one-thread time divided by the thread count
// (independent products side by side). `distinct` receives the number of distinct shapes.
double raw_gemm_seconds(const std::vector<rotor::kernels::GemmShape>& shapes, int& distinct);

// Benchmark groups (one file each), selected with --filter NAME.
void bench_core(Bench& b);
void bench_rope(Bench& b);
void bench_attn(Bench& b);
void bench_gla(Bench& b);
void bench_gdn(Bench& b);
void bench_scan(Bench& b);
void bench_train(Bench& b);
void bench_toy(Bench& b);

}  // namespace bench
