// Reference-counted, 64-byte aligned memory shared by a tensor and all its views.
//
// Large buffers are recycled through a size-class cache: a fresh 64 MB allocation would
// otherwise be page-faulted on first touch, which costs more than the op that fills it.
// The live counters count storages in use, not cached blocks, so a training loop that frees
// what it allocates keeps them flat.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace rotor {

class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Wraps memory the caller keeps alive for the storage's lifetime (no ownership).
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

  // Incremented by every in-place write; autograd compares it with the value it saw when it
  // saved a tensor.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Storage(void* data, size_t nbytes, size_t capacity, bool owned)
      : data_(data), nbytes_(nbytes), capacity_(capacity), owned_(owned) {}
  void* data_;
  size_t nbytes_;
  size_t capacity_;
  bool owned_;
  std::atomic<uint64_t> version_{0};
};

struct MemoryStats {
  int64_t live_storages = 0;  // storages currently alive
  int64_t live_bytes = 0;     // bytes they hold
  int64_t peak_bytes = 0;     // maximum of live_bytes since the last reset_peak_memory()
  int64_t cached_bytes = 0;   // freed blocks kept for reuse
};

MemoryStats memory_stats();
void reset_peak_memory();
void release_cached_memory();

}  // namespace rotor
