// World over MPI: non-blocking alltoall and allgather on bytes. The gradient buckets use two
// communicators, one per kind of collective, because their alltoalls and allgathers interleave
// in an order that depends on timing, and MPI wants every rank to start the collectives of one
// communicator in the same order (within each kind, every rank goes in bucket order).
// MPI's C API only: the deprecated C++ bindings are not used.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/nn/distributed_transport.h"

namespace rotor::detail {

namespace {

// A rank that leaves by exit() (a flag error every rank meets alike) still finalizes, so the
// launcher waits for every rank's message instead of killing the slower ones.
void finalize_at_exit() {
  int started = 0, finished = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finished);
  if (started && !finished) MPI_Finalize();
}

int as_int(int64_t bytes, const char* what) {
  ROTOR_CHECK(bytes >= 0 && bytes <= INT_MAX, "World", what, " of ", bytes, " bytes exceeds MPI's int count");
  return int(bytes);
}

class MpiTransport final : public Transport {
 public:
  MpiTransport(int& argc, char**& argv) {
    int provided = 0;
    // Only the main thread calls MPI (the backward's hooks run on it too).
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_dup(MPI_COMM_WORLD, &scatter_);
    MPI_Comm_dup(MPI_COMM_WORLD, &gather_);
    MPI_Comm_dup(MPI_COMM_WORLD, &control_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    std::atexit(finalize_at_exit);
  }
  ~MpiTransport() override {
    int finished = 0;
    MPI_Finalized(&finished);
    if (finished) return;
    MPI_Comm_free(&scatter_);
    MPI_Comm_free(&gather_);
    MPI_Comm_free(&control_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  int64_t alltoall_start(const void* send, void* recv, int64_t bytes) override {
    MPI_Request r;
    const int n = as_int(bytes, "an alltoall block");
    MPI_Ialltoall(send, n, MPI_BYTE, recv, n, MPI_BYTE, scatter_, &r);
    return keep(r);
  }
  int64_t allgather_start(void* data, int64_t bytes) override {
    MPI_Request r;
    const int n = as_int(bytes, "an allgather block");
    MPI_Iallgather(MPI_IN_PLACE, 0, MPI_BYTE, data, n, MPI_BYTE, gather_, &r);
    return keep(r);
  }
  bool test(int64_t id) override {
    int done = 0;
    MPI_Test(&requests_[size_t(id)], &done, MPI_STATUS_IGNORE);
    if (done) release(id);
    return done != 0;
  }
  void wait(int64_t id) override {
    MPI_Wait(&requests_[size_t(id)], MPI_STATUS_IGNORE);
    release(id);
  }
  void allgather(const void* send, void* recv, int64_t bytes) override {
    const int n = as_int(bytes, "an allgather block");
    MPI_Allgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, control_);
  }
  void allgatherv(const void* send, int64_t bytes, void* recv, const int64_t* counts, const int64_t* offsets) override {
    std::vector<int> c(static_cast<size_t>(size_)), o(static_cast<size_t>(size_));
    for (int p = 0; p < size_; ++p) {
      c[size_t(p)] = as_int(counts[p], "an allgatherv block");
      o[size_t(p)] = as_int(offsets[p], "an allgatherv total");
    }
    MPI_Allgatherv(send, as_int(bytes, "an allgatherv block"), MPI_BYTE, recv, c.data(), o.data(), MPI_BYTE, control_);
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int64_t keep(MPI_Request r) {
    if (free_.empty()) {
      requests_.push_back(r);
      return int64_t(requests_.size()) - 1;
    }
    const int64_t id = free_.back();
    free_.pop_back();
    requests_[size_t(id)] = r;
    return id;
  }
  void release(int64_t id) { free_.push_back(id); }

  int rank_ = 0, size_ = 1, local_size_ = 1;
  MPI_Comm scatter_, gather_, control_;
  std::vector<MPI_Request> requests_;
  std::vector<int64_t> free_;
};

}  // namespace

bool mpi_built() { return true; }

std::unique_ptr<Transport> mpi_transport(int& argc, char**& argv) {
  // Run directly (not by a launcher), the program is one process: MPI is not started at all,
  // which saves the second a singleton MPI_Init takes.
  bool launched = false;
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) launched = launched || std::getenv(var);
  if (!launched) return nullptr;
  return std::make_unique<MpiTransport>(argc, argv);
}

}  // namespace rotor::detail
