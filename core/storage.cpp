#include "rotor/core/storage.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace rotor {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kCacheLimit = size_t(4) << 30;  // keep at most 4 GiB of freed blocks

// Rounds a request to its size class: 64-byte steps below 64 KiB, then steps of 1/8 of the
// enclosing power of two (at most 12.5% slack), so nearby sizes share cached blocks.
size_t size_class(size_t n) {
  if (n < 64) n = 64;
  if (n <= (size_t(64) << 10)) return (n + 63) & ~size_t(63);
  size_t step = std::bit_floor(n) / 8;
  return (n + step - 1) / step * step;
}

struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t cached = 0;
  int64_t live_storages = 0, live_bytes = 0, peak_bytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: storages may outlive static destruction
  return *p;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  size_t cap = size_class(nbytes);
  void* data = nullptr;
  Pool& p = pool();
  {
    std::lock_guard lock(p.mutex);
    auto it = p.free_blocks.find(cap);
    if (it != p.free_blocks.end() && !it->second.empty()) {
      data = it->second.back();
      it->second.pop_back();
      p.cached -= cap;
    }
    p.live_storages += 1;
    p.live_bytes += int64_t(cap);
    if (p.live_bytes > p.peak_bytes) p.peak_bytes = p.live_bytes;
  }
  if (!data) {
    data = std::aligned_alloc(kAlignment, cap);
    if (!data) {
      std::lock_guard lock(p.mutex);
      p.live_storages -= 1;
      p.live_bytes -= int64_t(cap);
      throw std::bad_alloc();
    }
  }
  return std::shared_ptr<Storage>(new Storage(data, nbytes, cap, true));
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes) {
  return std::shared_ptr<Storage>(new Storage(data, nbytes, nbytes, false));
}

Storage::~Storage() {
  if (!owned_) return;
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  p.live_storages -= 1;
  p.live_bytes -= int64_t(capacity_);
  if (p.cached + capacity_ <= kCacheLimit) {
    p.free_blocks[capacity_].push_back(data_);
    p.cached += capacity_;
  } else {
    std::free(data_);
  }
}

MemoryStats memory_stats() {
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  return {p.live_storages, p.live_bytes, p.peak_bytes, int64_t(p.cached)};
}

void reset_peak_memory() {
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  p.peak_bytes = p.live_bytes;
}

void release_cached_memory() {
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  for (auto& [cap, blocks] : p.free_blocks)
    for (void* b : blocks) std::free(b);
  p.free_blocks.clear();
  p.cached = 0;
}

}  // namespace rotor
