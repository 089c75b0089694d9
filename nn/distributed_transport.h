// The collectives World needs from MPI, behind an interface so that only
// distributed_mpi.cpp includes <mpi.h> (and a build without MPI compiles
// distributed_nompi.cpp instead). Internal to nn/distributed.cpp.
#pragma once
#include <cstdint>
#include <memory>

namespace rotor::detail {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_size() const = 0;
  virtual int64_t alltoall_start(const void* send, void* recv, int64_t bytes) = 0;
  virtual int64_t allgather_start(void* data, int64_t bytes) = 0;
  virtual bool test(int64_t request) = 0;
  virtual void wait(int64_t request) = 0;
  // Blocking: `bytes` from every rank, in rank order, into recv (size·bytes).
  virtual void allgather(const void* send, void* recv, int64_t bytes) = 0;
  // Blocking: counts[p] bytes from rank p at recv + offsets[p].
  virtual void allgatherv(const void* send, int64_t bytes, void* recv, const int64_t* counts,
                          const int64_t* offsets) = 0;
  [[noreturn]] virtual void abort(int code) = 0;
};

// The job the MPI launcher started this process in, or nullptr when there is none (the
// program was run directly). Throws rotor::Error when MPI is needed but unavailable.
std::unique_ptr<Transport> mpi_transport(int& argc, char**& argv);
bool mpi_built();

}  // namespace rotor::detail
