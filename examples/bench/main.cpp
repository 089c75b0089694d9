// examples/bench — rotor's kernels against this machine's own limits, measured in one run.
//
//   build/examples/bench                  every group, as a table
//   build/examples/bench --filter core    one group
//   build/examples/bench --json           one JSON object per line: name, value, unit, ratio_of
//   build/examples/bench --cpu-time --threads 1   on a shared machine: time by CPU time, one thread
//
// Ratios (unit "ratio") divide rotor's throughput by the memory triad bandwidth or the raw
// cblas_sgemm rate measured just before, so they mean the same on a busy or an idle machine.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"
#include "rotor/kernels/blas.h"

int main(int argc, char** argv) {
  bool json = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!std::strcmp(argv[i], "--cpu-time")) bench::use_cpu_time(true);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc && std::atoi(argv[i + 1]) > 0)
      rotor::set_num_threads(std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench [--json] [--filter core] [--cpu-time] [--threads N]\n");
      return 2;
    }
  }
  struct Group {
    const char* name;
    void (*run)(bench::Bench&);
  };
  const std::vector<Group> groups = {
      {"core", bench::bench_core},
      {"rope", bench::bench_rope},
      {"attn", bench::bench_attn},
      {"gla", bench::bench_gla},
      {"gdn", bench::bench_gdn},
      {"scan", bench::bench_scan},
      {"train", bench::bench_train},
      {"toy", bench::bench_toy},
  };
  if (!json)
    std::printf("OpenBLAS kernels: %s, threads: %d, clock: %s\n", rotor::kernels::blas_core_name().c_str(),
                rotor::num_threads(), bench::using_cpu_time() ? "process CPU time" : "wall");
  bench::Bench b(json);
  bool ran = false;
  for (const auto& g : groups) {
    if (!filter.empty() && filter != g.name) continue;
    if (!json) std::printf("== %s\n", g.name);
    g.run(b);
    ran = true;
  }
  if (!ran) {
    std::fprintf(stderr, "bench: no group named '%s'\n", filter.c_str());
    return 2;
  }
  return 0;
}
