// The runs of a study spread over the ranks of an mpirun job: run i goes to rank i % R, each
// rank runs its share one at a time, and rank 0 gathers every run's files to build the table.
// A run is a child process (examples/train); it must not believe it is a rank of the job, so it
// starts without the launcher's environment.
#pragma once
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rotor/core/io.h"
#include "rotor/nn/distributed.h"

namespace examples {

// This process's environment without the MPI launcher's variables, for execve in a child.
class ChildEnvironment {
 public:
  ChildEnvironment() {
    for (char** e = environ; *e; ++e) {
      const std::string v = *e;
      if (v.rfind("OMPI_", 0) == 0 || v.rfind("PMIX_", 0) == 0 || v.rfind("PMI_", 0) == 0) continue;
      vars_.push_back(v);
    }
    for (std::string& v : vars_) pointers_.push_back(v.data());
    pointers_.push_back(nullptr);
  }
  char** envp() { return pointers_.data(); }

 private:
  std::vector<std::string> vars_;
  std::vector<char*> pointers_;
};

// Threads per run when R runs share this host's cores.
inline int threads_per_run(const rotor::nn::World& world, int threads) {
  if (threads > 0) return threads;
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  return int(std::max<long>(1, cores / std::max(1, world.local_size())));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every rank sends the files of the runs it made (paths and contents); rank 0 writes those it
// lacks or holds otherwise (atomically), so the summary sees every run, with or without a
// directory shared between the hosts. `extra` travels with the files (e.g. seconds per run).
inline std::vector<std::string> gather_runs(rotor::nn::World& world, const std::vector<std::string>& paths,
                                            const std::string& extra = "") {
  std::string pack;
  auto put = [&](const std::string& s) {
    const uint64_t n = s.size();
    pack.append(reinterpret_cast<const char*>(&n), sizeof n);
    pack += s;
  };
  put(extra);
  for (const std::string& p : paths) {
    std::ifstream probe(p, std::ios::binary);
    if (!probe) continue;
    put(p);
    put(read_file(p));
  }
  const std::vector<std::string> all = world.allgather(pack);
  std::vector<std::string> extras;
  for (const std::string& part : all) {
    size_t at = 0;
    auto get = [&] {
      uint64_t n = 0;
      std::memcpy(&n, part.data() + at, sizeof n);
      at += sizeof n;
      std::string s = part.substr(at, n);
      at += n;
      return s;
    };
    extras.push_back(get());
    while (at < part.size()) {
      const std::string path = get(), bytes = get();
      if (world.is_root() && read_file(path) != bytes) rotor::io::write_atomic(path, "study", bytes);
    }
  }
  return extras;
}

}  // namespace examples
