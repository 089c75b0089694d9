#include "rotor/nn/distributed.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "rotor/core/parallel.h"
#include "rotor/nn/distributed_transport.h"

namespace rotor::nn {

// ---- World ----

namespace {
// What rank 0 writes when the launcher stops the job: prepared in advance, because a signal
// handler may only call async-signal-safe functions (write, _exit).
char g_stop_message[2048];
size_t g_stop_length = 0;

void on_sigterm(int) {
  if (g_stop_length) [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, g_stop_message, g_stop_length);
  ::_exit(128 + SIGTERM);
}
}  // namespace

World::World() = default;

World::World(int& argc, char**& argv) : transport_(detail::mpi_transport(argc, argv)) {
  if (!transport_) return;
  rank_ = transport_->rank();
  size_ = transport_->size();
  local_size_ = transport_->local_size();
  if (size_ > 1 && rank_ == 0) {
    set_stop_note("");
    std::signal(SIGTERM, on_sigterm);
    // Leaving by exit() (after a message of its own), rank 0 has nothing to add if stopped.
    std::atexit([] { std::signal(SIGTERM, SIG_DFL); });
  }
}

World::~World() {
  // From here on a SIGTERM is no longer news: every rank has reported what it had to.
  if (size_ > 1 && rank_ == 0) std::signal(SIGTERM, SIG_DFL);
}

bool World::built_with_mpi() { return detail::mpi_built(); }

void World::set_stop_note(const std::string& note) {
  std::string m = "[mpi] rank 0: the launcher is stopping the job: another rank died or failed (its message and "
                  "the launcher's are above or below)";
  if (!note.empty()) m += "; " + note;
  m += '\n';
  g_stop_length = std::min(m.size(), sizeof g_stop_message);
  std::memcpy(g_stop_message, m.data(), g_stop_length);
}

World::Request World::alltoall_start(const void* send, void* recv, int64_t bytes) {
  if (size_ == 1) {
    if (send != recv) std::memmove(recv, send, size_t(bytes));
    return -1;
  }
  return transport_->alltoall_start(send, recv, bytes);
}

World::Request World::allgather_start(void* data, int64_t bytes) {
  return size_ == 1 ? -1 : transport_->allgather_start(data, bytes);
}

bool World::test(Request r) { return r < 0 || transport_->test(r); }

void World::wait(Request r) {
  if (r >= 0) transport_->wait(r);
}

std::vector<std::string> World::allgather(const std::string& mine) {
  if (size_ == 1) return {mine};
  std::vector<int64_t> counts(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
  const int64_t n = int64_t(mine.size());
  transport_->allgather(&n, counts.data(), sizeof n);
  int64_t total = 0;
  for (int p = 0; p < size_; ++p) {
    offsets[size_t(p)] = total;
    total += counts[size_t(p)];
  }
  std::string all(size_t(total), '\0');
  transport_->allgatherv(mine.data(), n, all.data(), counts.data(), offsets.data());
  std::vector<std::string> out;
  for (int p = 0; p < size_; ++p) out.push_back(all.substr(size_t(offsets[size_t(p)]), size_t(counts[size_t(p)])));
  return out;
}

void World::together(const std::function<void()>& fn) {
  if (size_ == 1) return fn();
  std::string error;  // "" when this rank succeeded; else "!" + the message
  try {
    fn();
  } catch (const std::exception& e) {
    error = std::string("!") + e.what();
  }
  const std::vector<std::string> all = allgather(error);
  std::string report;
  int failed = 0;
  for (int p = 0; p < size_; ++p) {
    if (all[size_t(p)].empty()) continue;
    ++failed;
    report += detail::concat("\n  rank ", p, ": ", all[size_t(p)].substr(1));
  }
  if (failed == size_ && std::all_of(all.begin(), all.end(), [&](const std::string& m) { return m == all[0]; }))
    throw CollectiveError(detail::concat("[mpi] every rank failed alike: ", all[0].substr(1)));
  if (failed) throw CollectiveError(detail::concat("[mpi] ", failed, " of ", size_, " ranks failed:", report));
}

void World::check_same(const std::string& what, const std::string& value) {
  const std::vector<std::string> all = allgather(value);
  std::string differ;
  for (int p = 1; p < size_; ++p)
    if (all[size_t(p)] != all[0]) differ += detail::concat(differ.empty() ? "" : ", ", p);
  if (!differ.empty())
    throw CollectiveError(detail::concat("[mpi] the ranks disagree on ", what, ": rank(s) ", differ, " differ from rank 0"));
}

void World::abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (size_ > 1) transport_->abort(code);
  std::exit(code);
}

// ---- GradientReducer ----

struct GradientReducer::Slot {
  Tensor param;
  size_t bucket = 0;
  int64_t offset = 0;  // of its gradient in the bucket
  int64_t flag = 0;    // of its "had a gradient" count in the bucket
};

struct GradientReducer::Bucket {
  DType dtype = DType::Float32;
  std::vector<size_t> slots;
  int64_t numel = 0;  // gradients, then one flag per slot
  int64_t chunk = 0;  // elements per rank: numel rounded up to size·chunk
  Tensor sum;         // [size·chunk]: this rank's sum, then the total
  Tensor recv;        // [size·chunk]: chunk `rank` of every rank, in rank order
  int64_t pending = 0;
  enum Stage { Filling, Scattering, Gathering, Done } stage = Filling;
  World::Request request = -1;
  int64_t chunk_bytes() const { return chunk * int64_t(dtype_size(dtype)); }
};

GradientReducer::GradientReducer(const TensorList& params, World& world, int64_t bucket_bytes, bool overlap)
    : world_(world), overlap_(overlap) {
  ROTOR_CHECK(bucket_bytes > 0, "GradientReducer", "bucket_bytes must be positive, got ", bucket_bytes);
  // Reverse order: the backward finishes the last layers first.
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const Tensor& p = *it;
    if (!p.requires_grad()) continue;
    ROTOR_CHECK(p.dtype() == DType::Float32 || p.dtype() == DType::Float64, "GradientReducer",
                "parameters must be float32 or float64, got ", dtype_name(p.dtype()));
    ROTOR_CHECK(!slot_of_.count(p.impl()), "GradientReducer", "a parameter is listed twice");
    const bool fresh = buckets_.empty() || buckets_.back().dtype != p.dtype() ||
                       buckets_.back().numel * int64_t(dtype_size(p.dtype())) >= bucket_bytes;
    if (fresh) {
      buckets_.emplace_back();
      buckets_.back().dtype = p.dtype();
    }
    Bucket& b = buckets_.back();
    slot_of_[p.impl()] = slots_.size();
    b.slots.push_back(slots_.size());
    slots_.push_back(Slot{p, buckets_.size() - 1, b.numel, 0});
    b.numel += p.numel();
  }
  const int64_t R = world.size();
  for (Bucket& b : buckets_) {
    for (size_t k = 0; k < b.slots.size(); ++k) slots_[b.slots[k]].flag = b.numel + int64_t(k);
    b.numel += int64_t(b.slots.size());
    b.chunk = (b.numel + R - 1) / R;
    ROTOR_CHECK(b.chunk_bytes() <= INT32_MAX, "GradientReducer", "a bucket of ", b.numel,
                " elements is too large to send in one piece: use smaller parameters or more ranks");
    b.sum = zeros({R * b.chunk}, b.dtype);
    if (R > 1) b.recv = zeros({R * b.chunk}, b.dtype);
  }
}

GradientReducer::~GradientReducer() {
  // A step abandoned by an exception may leave requests in flight; their buffers live here.
  for (Bucket& b : buckets_)
    if (b.stage == Bucket::Scattering || b.stage == Bucket::Gathering) world_.wait(b.request);
}

int64_t GradientReducer::num_buckets() const { return int64_t(buckets_.size()); }

int64_t GradientReducer::bytes() const {
  int64_t n = 0;
  for (const Bucket& b : buckets_) n += b.numel * int64_t(dtype_size(b.dtype));
  return n;
}

void GradientReducer::begin_step() {
  for (Bucket& b : buckets_) {
    ROTOR_CHECK(b.stage == Bucket::Filling || b.stage == Bucket::Done, "GradientReducer",
                "begin_step while the last step's reduction is still in flight");
    std::memset(b.sum.raw_data(), 0, size_t(b.sum.numel()) * dtype_size(b.dtype));
    b.pending = int64_t(b.slots.size());
    b.stage = Bucket::Filling;
  }
  next_post_ = 0;
}

LeafHook GradientReducer::hook(bool last) {
  return [this, last](const Tensor& leaf) { leaf_done(leaf, last); };
}

void GradientReducer::leaf_done(const Tensor& leaf, bool last) {
  auto it = slot_of_.find(leaf.impl());
  if (it == slot_of_.end()) return;
  Slot& s = slots_[it->second];
  Bucket& b = buckets_[s.bucket];
  if (Tensor g = leaf.grad(); g.defined()) {
    ROTOR_CHECK(g.shape() == s.param.shape(), "GradientReducer", "gradient of shape ", shape_str(g.shape()),
                " for a parameter of shape ", shape_str(s.param.shape()));
    g = core::contiguous(core::to_dtype(g, b.dtype));
    dispatch_float(b.dtype, "GradientReducer", [&](auto tag) {
      using T = decltype(tag);
      T* acc = b.sum.data<T>() + s.offset;
      const T* x = g.data<T>();
      parallel_for(g.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) acc[i] += x[i];
      });
      b.sum.data<T>()[s.flag] += T(1);
    });
    Tensor(leaf).zero_grad();  // the sum holds it now
  }
  if (!last) return;
  b.pending -= 1;
  if (overlap_) {
    post_ready(false);
    progress();
  }
}

void GradientReducer::post_ready(bool all) {
  while (next_post_ < buckets_.size() && (all || buckets_[next_post_].pending == 0)) {
    Bucket& b = buckets_[next_post_++];
    if (world_.size() == 1) {
      b.stage = Bucket::Done;
      continue;
    }
    b.request = world_.alltoall_start(b.sum.raw_data(), b.recv.raw_data(), b.chunk_bytes());
    b.stage = Bucket::Scattering;
  }
}

void GradientReducer::reduce_chunk(Bucket& b) {
  // Chunk `rank` of every rank, added in rank order: ((c_0 + c_1) + c_2) + ...
  const int64_t R = world_.size(), c = b.chunk;
  dispatch_float(b.dtype, "GradientReducer", [&](auto tag) {
    using T = decltype(tag);
    T* out = b.sum.data<T>() + world_.rank() * c;
    const T* in = b.recv.data<T>();
    std::memcpy(out, in, size_t(c) * sizeof(T));
    for (int64_t p = 1; p < R; ++p)
      for (int64_t i = 0; i < c; ++i) out[i] += in[p * c + i];
  });
}

void GradientReducer::progress() {
  // Allgathers start in bucket order too: stop at the first bucket whose alltoall is not done.
  for (size_t i = 0; i < next_post_; ++i) {
    Bucket& b = buckets_[i];
    if (b.stage == Bucket::Scattering) {
      if (!world_.test(b.request)) return;
      reduce_chunk(b);
      b.request = world_.allgather_start(b.sum.raw_data(), b.chunk_bytes());
      b.stage = Bucket::Gathering;
    }
    if (b.stage == Bucket::Gathering && world_.test(b.request)) b.stage = Bucket::Done;
  }
}

void GradientReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  post_ready(true);
  for (Bucket& b : buckets_) {
    if (b.stage != Bucket::Scattering) continue;
    world_.wait(b.request);
    reduce_chunk(b);
    b.request = world_.allgather_start(b.sum.raw_data(), b.chunk_bytes());
    b.stage = Bucket::Gathering;
  }
  for (Bucket& b : buckets_) {
    if (b.stage == Bucket::Gathering) world_.wait(b.request);
    b.stage = Bucket::Done;
  }
  for (Slot& s : slots_) {
    const Bucket& b = buckets_[s.bucket];
    dispatch_float(b.dtype, "GradientReducer", [&](auto tag) {
      using T = decltype(tag);
      const T* sum = b.sum.data<T>();
      if (sum[s.flag] == T(0)) return;  // no rank had a gradient: leave .grad undefined
      Tensor g = Tensor::empty(s.param.shape(), b.dtype);
      std::memcpy(g.data<T>(), sum + s.offset, size_t(g.numel()) * sizeof(T));
      s.param.impl()->grad = g.impl_ptr();
    });
  }
  finish_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace rotor::nn
