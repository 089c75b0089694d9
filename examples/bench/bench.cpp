#include "bench.h"

#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <tuple>
#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"

namespace bench {

namespace {
bool cpu_clock = false;
double now_seconds() {
  if (!cpu_clock) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

void use_cpu_time(bool on) { cpu_clock = on; }
bool using_cpu_time() { return cpu_clock; }

double time_median(const std::function<void()>& fn, int repeats) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const double start = now_seconds();
    fn();
    t.push_back(now_seconds() - start);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double Bench::triad_gbs() {
  if (triad_ > 0) return triad_;
  // a = b + s*c over three 96 MB float arrays, threads over fixed blocks like rotor's kernels.
  const int64_t n = int64_t(24) << 20;
  Buffer ba(n, [](int64_t) { return 0.f; }), bb(n, [](int64_t) { return 1.f; }), bc(n, [](int64_t) { return 2.f; });
  float *a = ba.data, *b = bb.data, *c = bc.data;
  const float s = 3.f;
  double sec = time_median([&] {
    rotor::parallel_for(n, rotor::kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) a[i] = b[i] + s * c[i];
    });
  }, 7);
  triad_ = 3.0 * double(n) * 4 / sec / 1e9;
  report("triad", triad_, "GB/s");
  return triad_;
}

double Bench::sgemm_gflops(int n) {
  for (auto& [size, g] : sgemm_)
    if (size == n) return g;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  // The machine's limit: OpenBLAS on all of rotor's threads (inside rotor it runs on one).
  openblas_set_num_threads(rotor::num_threads());
  double sec = time_median([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f,
                c.data(), n);
  }, n <= 512 ? 21 : 7);
  openblas_set_num_threads(1);
  double g = 2.0 * n * n * n / sec / 1e9;
  sgemm_.push_back({n, g});
  report("sgemm_" + std::to_string(n), g, "GFLOP/s");
  return g;
}

void Bench::report(const std::string& name, double value, const std::string& unit, const std::string& ratio_of) {
  if (json_) {
    std::printf("{\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"", name.c_str(), value, unit.c_str());
    if (!ratio_of.empty()) std::printf(", \"ratio_of\": \"%s\"", ratio_of.c_str());
    std::printf("}\n");
  } else if (!ratio_of.empty()) {
    std::printf("%-40s %10.3f  (of %s)\n", name.c_str(), value, ratio_of.c_str());
  } else {
    std::printf("%-40s %10.3f  %s\n", name.c_str(), value, unit.c_str());
  }
  std::fflush(stdout);
}

void Bench::report_bandwidth(const std::string& name, double bytes, double seconds) {
  double gbs = bytes / seconds / 1e9;
  double ref = triad_gbs();
  report(name, gbs, "GB/s");
  report(name + "_vs_triad", gbs / ref, "ratio", "triad");
}

void Bench::report_gflops(const std::string& name, double flops, double seconds, int sgemm_n) {
  double g = flops / seconds / 1e9;
  double ref = sgemm_gflops(sgemm_n);
  report(name, g, "GFLOP/s");
  report(name + "_vs_sgemm", g / ref, "ratio", "sgemm");
}

namespace {
// Seconds of one raw cblas_sgemm of this shape on packed operands, on the current OpenBLAS threads.
double raw_sgemm_seconds(const rotor::kernels::GemmShape& s) {
  const int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
  std::vector<float> a(size_t(s.m * s.k), 0.5f), b(size_t(s.k * s.n), 0.25f), c(size_t(s.m * s.n));
  const double work = std::max(1.0, double(s.m) * double(s.n) * double(s.k));
  const int reps = int(std::clamp(2e7 / work, 1.0, 2000.0));  // ~0.1-1 ms per timed run
  const double sec = time_median([&] {
    for (int r = 0; r < reps; ++r)
      cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans,
                  blasint(s.m), blasint(s.n), blasint(s.k), 1.f, a.data(), blasint(lda), b.data(), blasint(ldb),
                  0.f, c.data(), blasint(s.n));
  }, 7);
  return sec / reps;
}

}  // namespace

double raw_gemm_seconds(const std::vector<rotor::kernels::GemmShape>& shapes, int& distinct) {
  std::map<std::tuple<bool, bool, int64_t, int64_t, int64_t>, int64_t> count;
  for (const auto& s : shapes) count[{s.trans_a, s.trans_b, s.m, s.n, s.k}] += 1;
  distinct = int(count.size());
  const int threads = rotor::num_threads();
  double total = 0;
  for (const auto& [key, n] : count) {
    const auto [ta, tb, m, nn, k] = key;
    const rotor::kernels::GemmShape s{ta, tb, m, nn, k, false};
    openblas_set_num_threads(1);
    const double one = raw_sgemm_seconds(s) / threads;
    openblas_set_num_threads(threads);
    const double all = threads > 1 ? raw_sgemm_seconds(s) : one;
    total += double(n) * std::min(one, all);
  }
  openblas_set_num_threads(1);
  return total;
}

}  // namespace bench
