// The benchmark harness behind examples/bench. Every figure rotor reports is paired with a
// reference measured in the same run on the same machine — the memory triad bandwidth and
// raw cblas_sgemm throughput — because shared machines drift and only ratios travel.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace bench {

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

// Median wall time in seconds of fn() over `repeats` runs after one warm-up run.
double time_median(const std::function<void()>& fn, int repeats = 5);

// Benchmark groups (one file each), selected with --filter NAME.
void bench_core(Bench& b);
void bench_rope(Bench& b);
void bench_attn(Bench& b);
void bench_gla(Bench& b);
void bench_scan(Bench& b);
void bench_train(Bench& b);

}  // namespace bench
