// Data parallelism: the processes of a job (ranks), and the sum of their gradients in a fixed
// order, bucket by bucket while the backward still runs.
//
// The reduction is deterministic by construction: every gradient element is summed as
// ((g_0 + g_1) + g_2) + ... in rank order, the grouping a single process gets when it
// accumulates the same micro-batches one after another. So R ranks give bit-identical results
// to one process with --grad-accum R (docs in README, "Training on several processes").
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "rotor/autograd/node.h"
#include "rotor/core/error.h"

namespace rotor::detail {
class Transport;  // the MPI calls (distributed_mpi.cpp)
}

namespace rotor::nn {

// An error every rank of the job throws together, with the same message (a rank that failed,
// ranks that disagree): one rank, rank 0, is enough to report it.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// The ranks of this job: MPI's world when rotor is built with MPI and the program was started
// by an MPI launcher (mpirun), else this process alone (rank 0 of 1). Make one, early in main;
// its destructor shuts MPI down. Every collective below must be called by every rank in the same
// order (MPI's rule).
class World {
 public:
  World();                            // this process alone
  World(int& argc, char**& argv);     // joins the launcher's job, if there is one
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_size() const { return local_size_; }  // ranks on this host, to share its cores
  bool is_root() const { return rank_ == 0; }
  static bool built_with_mpi();

  // Non-blocking collectives on bytes; the buffers must live until test() or wait() says done.
  using Request = int64_t;
  // Sends the bytes at send + p·bytes to rank p; rank p's arrive at recv + p·bytes.
  Request alltoall_start(const void* send, void* recv, int64_t bytes);
  // In place: this rank's block at data + rank·bytes reaches every rank's data + rank·bytes.
  Request allgather_start(void* data, int64_t bytes);
  bool test(Request r);  // true once done (the request is then gone)
  void wait(Request r);

  // Blocking: every rank's string, in rank order.
  std::vector<std::string> allgather(const std::string& mine);

  // Runs fn on every rank. If it throws on any rank, every rank throws one CollectiveError that names the
  // failed ranks and their messages (alone, the error propagates unchanged). Use it around any
  // step a rank can fail on its own (reading files, a save on rank 0) so that no rank is left
  // waiting for the others.
  void together(const std::function<void()>& fn);
  // Throws CollectiveError on every rank unless `value` is the same everywhere.
  void check_same(const std::string& what, const std::string& value);

  // The line rank 0 prints if the launcher stops the job (SIGTERM: another rank died or failed
  // outside a collective), e.g. where the last checkpoint is.
  void set_stop_note(const std::string& note);
  // Ends every rank of the job now (MPI_Abort); alone, exits.
  [[noreturn]] void abort(int code);

 private:
  std::unique_ptr<detail::Transport> transport_;
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

// Sums a step's gradients: over this rank's micro-batches as each backward produces them, then
// over the ranks. Parameters are grouped in buckets of about bucket_bytes, in reverse order
// (the order the backward finishes them); with overlap, a bucket is sent as soon as its last
// gradient exists, while the backward of earlier layers runs on.
//
// A bucket of n elements is reduced like a ring all-reduce's two halves: every rank sends chunk
// p (n/R elements) to rank p (alltoall), rank p adds the R chunks it holds in rank order, and
// every rank gathers the R summed chunks (allgather): 2(R-1)/R·n elements in and out per rank.
class GradientReducer {
 public:
  GradientReducer(const TensorList& params, World& world, int64_t bucket_bytes, bool overlap);
  ~GradientReducer();

  void begin_step();
  // The backward hook for one micro-batch of this rank; `last`: the step's last on this rank,
  // whose gradients can be sent. Each finished .grad is added to the step's sum and released.
  LeafHook hook(bool last);
  // Sends what is left, waits, and sets each parameter's .grad to the total (undefined where no
  // micro-batch of any rank had a gradient, as a plain backward leaves it).
  void finish();

  // Time the last finish() took: the communication the backward did not hide.
  double finish_seconds() const { return finish_seconds_; }
  int64_t num_buckets() const;
  int64_t bytes() const;  // gradient bytes each rank contributes per step

 private:
  struct Slot;
  struct Bucket;
  void leaf_done(const Tensor& leaf, bool last);
  void post_ready(bool all);  // starts buckets in index order (the order every rank uses)
  void progress();
  void reduce_chunk(Bucket& b);

  World& world_;
  bool overlap_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> slot_of_;
  size_t next_post_ = 0;  // buckets [0, next_post_) have started
  double finish_seconds_ = 0;
};

}  // namespace rotor::nn
