// Parallel inclusive scans along time: a blocked driver that any associative recurrence can
// reuse, and the generic elementwise scan built on it. Instantiations: scan_cumsum.h (prefix
// sums), scan_linear_recurrence.h (h_t = a_t h_{t-1} + b_t, real and complex).
//
// Layout: x: (B, T, C) row-major. B independent sequences, T time steps, C independent channels
// contiguous in memory ([B,T,H,R] with H*R = C; C = 1 is a plain row).
//
// How the driver works (a chained blocked scan, in the spirit of StreamScan / decoupled look-back):
//   a lane is one independent sequence (here: one (b, block of channels)); time is cut into blocks
//   whose length depends only on T and the bytes per step (ScanPlan, never the thread count).
//   Blocks are handed out in order through a ticket counter; each block
//     1. reduces its own steps to an aggregate and publishes it,
//     2. takes the carry published by the block before it (or, if that block is late, rebuilds it
//        from the nearest published carry and the published or recomputed aggregates),
//        folds its aggregate into it and publishes the result for the block after,
//     3. rescans its steps from the incoming carry (the block is still in cache from step 1).
//   A memory-bound scan thus moves the same bytes as a serial loop. The carry of block k is
//   always fold(carry of block k-1, aggregate of block k), whoever computes it, so the results
//   are bit-identical on 1 and N threads. Small problems run the same blocks in order on the
//   calling thread.
//   Variant chained_scan_fixup (used by cumsum): step 1 writes the block's outputs as if it
//   started the sequence, step 3 only corrects them with the carry, so the heavy pass streams
//   the inputs once and the second is a cheap pass over cached outputs.
//
// Reusing the driver for your own element type, e.g. GLA's chunk states (docs/gla.md):
//   Carry = what flows between blocks (the state S: carry_width = K*V floats per lane),
//   Agg   = a block's composed transition (A, U): agg_width = K + K*V floats (A is diagonal).
//   ScanPlan plan = plan_scan(lanes = B*H, steps = number of chunks, bytes_per_step, reverse);
//   chained_scan<Carry, Agg>(plan, carry_width, agg_width,
//     reduce(lane, t_lo, t_hi, Agg* agg),     // agg := composition of steps [t_lo, t_hi)
//     fold(lane, const Carry* prev, const Agg* agg, Carry* next),  // next := agg applied to prev
//     rescan(lane, t_lo, t_hi, const Carry* carry));  // write the outputs of [t_lo, t_hi)
//   Contracts:
//   - prev / carry are nullptr for a lane's first block: use the initial state there (or none).
//   - reverse plans run blocks from the end of time; iterate [t_lo, t_hi) backwards yourself.
//   - reduce must be a deterministic function of (lane, t_lo, t_hi) that writes only agg: it may
//     run more than once for a block, on any thread. fold writes only next. rescan runs exactly
//     once per block and owns that block's outputs; it may overwrite the block's own inputs
//     (in-place scans: the driver lets it start only once no thread is re-reducing them), and
//     may read other blocks' inputs only if nothing writes them.
//   - callbacks run concurrently on different blocks and must not start parallel work themselves.
//   - if producing a step's element is costly (GLA's U_c = sum_j (k_j decayed)^T v_j), compute the
//     elements first in an ordinary parallel loop (they are independent) and let the scan compose
//     stored elements.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/core/storage.h"

namespace rotor::kernels {

// ---------------------------------------------------------------------------------------------
// Block partition
// ---------------------------------------------------------------------------------------------

struct ScanPlan {
  int64_t lanes = 0;    // independent sequences
  int64_t steps = 0;    // T
  int64_t block = 0;    // steps per block (the last block in time may be shorter)
  int64_t nblocks = 0;  // blocks per lane
  bool reverse = false;
  bool parallel = false;  // false: the same blocks run in order on the calling thread

  // Time range [t_lo, t_hi) of the k-th block in processing order (k = 0 is the end of time
  // when reverse).
  std::pair<int64_t, int64_t> range(int64_t k) const {
    int64_t j = reverse ? nblocks - 1 - k : k;
    int64_t lo = j * block;
    return {lo, std::min(lo + block, steps)};
  }
};

// Sizes in bytes that shape the partition (constants, never the thread count). A block's
// traffic is lane bytes / kScanBlocksPerLane, within [kScanMinBlockBytes, kScanMaxBlockBytes]:
// big enough that block boundaries are rare (with two threads each boundary costs about a
// microsecond of cache lines moving between cores), small enough to stay in L2 and to give
// mid-sized scans several blocks.
constexpr int64_t kScanBlocksPerLane = 32;
constexpr int64_t kScanMinBlockBytes = int64_t(128) << 10;
constexpr int64_t kScanMaxBlockBytes = int64_t(512) << 10;
constexpr int64_t kScanParallelBytes = int64_t(256) << 10;  // below this the scan runs serially
constexpr int64_t kScanLanesNoSplit = 16;  // this many lanes already keep all threads busy
constexpr int64_t kScanStepAlign = 64;     // block lengths are multiples of this (SIMD along T)

// bytes_per_step: bytes one lane reads and writes per time step (sizes blocks for the cache).
ScanPlan plan_scan(int64_t lanes, int64_t steps, int64_t bytes_per_step, bool reverse);

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

namespace detail {
// Calls process(ctx, ticket) for tickets 0..n-1, each exactly once, handing them out in
// increasing order (in parallel when asked, else in order on the calling thread).
void run_tickets(int64_t n, bool parallel, void* ctx, void (*process)(void* ctx, int64_t ticket));
// Test hook: hand tickets out last-first on the calling thread, so that no carry is ever
// published in time and every block takes the rebuild path of a late predecessor.
void scan_test_reverse_tickets(bool on);

// Per-block state word: the aggregate, then the carry, become readable (release/acquire).
// kBusy: the owner is overwriting the block's inputs (scan-then-fixup of an in-place scan).
// The bits from kReader up count threads re-reducing the block's inputs for a late owner.
enum : int { kAggReady = 1, kCarryReady = 2, kBusy = 4, kReader = 256 };
struct alignas(64) Flag {  // one cache line each: neighbours are written by other threads
  int bits = 0;
};
inline bool has(Flag& f, int bit) { return std::atomic_ref<int>(f.bits).load(std::memory_order_acquire) & bit; }
inline void publish(Flag& f, int bit) { std::atomic_ref<int>(f.bits).fetch_or(bit, std::memory_order_release); }
// Registers a reader of the block's inputs unless its aggregate is out or its owner is
// overwriting them (then false). The owner waits for readers to leave before overwriting.
inline bool enter_reader(Flag& f) {
  std::atomic_ref<int> r(f.bits);
  for (int s = r.load(std::memory_order_acquire); !(s & (kAggReady | kBusy));)
    if (r.compare_exchange_weak(s, s + kReader, std::memory_order_acq_rel)) return true;
  return false;
}
inline void leave_reader(Flag& f) { std::atomic_ref<int>(f.bits).fetch_sub(kReader, std::memory_order_release); }
void wait_no_readers(Flag& f);
// Spins until `bit` is set or `micros` have passed; true if set.
bool wait_for(Flag& f, int bit, double micros);
// Spins (yielding after a while) until `bit` is set.
void wait_until(Flag& f, int bit);

// Slot stride (in elements) that keeps slots written by different threads on different cache
// lines, whatever the base alignment.
template <class X>
int64_t padded_width(int64_t width) {
  const int64_t line = (64 + int64_t(sizeof(X)) - 1) / int64_t(sizeof(X));
  return (width + line - 1) / line * line + line;
}
double now_micros();

// The slots of one scan. Trivial element types live in recycled rotor::Storage memory (a scan
// per layer per step must not page-fault and zero-fill fresh pages); others in vectors.
template <class Carry, class Agg>
struct SlotMemory {
  static constexpr bool kTrivial = std::is_trivially_default_constructible_v<Carry> &&
                                   std::is_trivially_destructible_v<Carry> &&
                                   std::is_trivially_default_constructible_v<Agg> && std::is_trivially_destructible_v<Agg>;
  Flag* flags = nullptr;
  Carry* carries = nullptr;
  Agg* aggs = nullptr;
  std::shared_ptr<Storage> storage;
  std::vector<Flag> flag_vec;
  std::vector<Carry> carry_vec;
  std::vector<Agg> agg_vec;

  SlotMemory(int64_t nflags, int64_t ncarries, int64_t naggs) {
    if (nflags == 0) return;
    if constexpr (kTrivial) {
      auto up = [](size_t bytes) { return (bytes + 63) / 64 * 64; };
      const size_t fb = up(size_t(nflags) * sizeof(Flag)), cb = up(size_t(ncarries) * sizeof(Carry));
      storage = Storage::allocate(fb + cb + size_t(naggs) * sizeof(Agg));
      char* base = static_cast<char*>(storage->data());
      flags = new (base) Flag[size_t(nflags)];
      carries = reinterpret_cast<Carry*>(base + fb);
      aggs = reinterpret_cast<Agg*>(base + fb + cb);
    } else {
      flag_vec.resize(size_t(nflags));
      carry_vec.resize(size_t(ncarries));
      agg_vec.resize(size_t(naggs));
      flags = flag_vec.data(), carries = carry_vec.data(), aggs = agg_vec.data();
    }
  }
};
}  // namespace detail

namespace detail {
// The driver behind chained_scan (Fixup = false: first = reduce, second = rescan) and
// chained_scan_fixup (Fixup = true: first = scan_local, second = fixup).
template <bool Fixup, class Carry, class Agg, class Reduce, class Fold, class First, class Second>
void run_chained(const ScanPlan& plan, int64_t carry_width, int64_t agg_width, Reduce& reduce, Fold& fold,
                 First& first, Second& second) {
  if (plan.lanes <= 0 || plan.steps <= 0) return;
  const int64_t nb = plan.nblocks;
  // Block k < nb-1 of a lane owns slot (lane, k): its aggregate and the carry it passes on.
  // Time is only cut when lanes are few, so lanes * nb stays small.
  const int64_t slots = nb > 1 ? plan.lanes * (nb - 1) : 0;
  const int64_t cstride = padded_width<Carry>(carry_width), astride = padded_width<Agg>(agg_width);
  SlotMemory<Carry, Agg> mem(slots, slots * cstride, slots * astride);

  struct Ctx {
    const ScanPlan& plan;
    int64_t carry_width, agg_width, cstride, astride;
    Carry* carries;
    Agg* aggs;
    Flag* flags;
    Reduce& reduce;
    Fold& fold;
    First& first;
    Second& second;

    Carry* carry(int64_t slot) const { return carries + slot * cstride; }
    Agg* agg(int64_t slot) const { return aggs + slot * astride; }

    // The carry entering block k of a lane (nullptr for k = 0). patience: microseconds to wait
    // for its owner before rebuilding it here; scratch holds a rebuilt carry.
    const Carry* carry_into(int64_t lane, int64_t k, double patience, std::vector<Carry>& scratch) const {
      if (k == 0) return nullptr;
      const int64_t base = lane * (plan.nblocks - 1);
      if (wait_for(flags[base + k - 1], kCarryReady, patience)) return carry(base + k - 1);
      // Walk back to the nearest published carry, then fold forward through the late blocks.
      int64_t j = k - 1;
      while (j > 0 && !has(flags[base + j - 1], kCarryReady)) --j;
      const Carry* c = j > 0 ? carry(base + j - 1) : nullptr;  // the carry entering block j
      scratch.resize(size_t(2 * carry_width));
      std::vector<Agg> own;
      for (int64_t m = j, flip = 0; m < k; ++m, flip ^= 1) {
        Flag& f = flags[base + m];
        if (has(f, kCarryReady)) {  // published meanwhile: the same bits
          c = carry(base + m);
          continue;
        }
        const Agg* a = agg(base + m);
        if (enter_reader(f)) {  // aggregate not out yet: reduce the block here
          own.resize(size_t(agg_width));
          auto [lo, hi] = plan.range(m);
          reduce(lane, lo, hi, own.data());
          leave_reader(f);
          a = own.data();
        } else {
          wait_until(f, kAggReady);  // out, or being computed by its (running) owner
        }
        Carry* next = scratch.data() + flip * carry_width;
        fold(lane, c, a, next);
        c = next;
      }
      return c;
    }
  } ctx{plan, carry_width, agg_width, cstride, astride, mem.carries, mem.aggs, mem.flags, reduce, fold, first, second};

  auto process = [](void* p, int64_t ticket) {
    Ctx& c = *static_cast<Ctx*>(p);
    const int64_t nb = c.plan.nblocks;
    const int64_t lane = ticket / nb, k = ticket % nb;
    auto [lo, hi] = c.plan.range(k);
    const int64_t slot = lane * (nb - 1) + k;  // valid for k < nb - 1
    const bool passes_on = k + 1 < nb;
    std::vector<Carry> scratch;
    std::vector<Agg> last_agg;
    const Carry* prev;
    if (passes_on || Fixup) {
      Agg* agg = c.agg(slot);
      if (!passes_on) {  // the last block's aggregate is of no use, but scan_local writes one
        last_agg.resize(size_t(c.agg_width));
        agg = last_agg.data();
      } else if (Fixup) {  // scan_local may overwrite the inputs: keep re-reducers out
        publish(c.flags[slot], kBusy);
        wait_no_readers(c.flags[slot]);
      }
      const double start = now_micros();
      c.first(lane, lo, hi, agg);
      if (passes_on) publish(c.flags[slot], kAggReady);
      // The block before started earlier and does the same work: allow it about as long again.
      const double patience = 5 + 2 * (now_micros() - start);
      prev = c.carry_into(lane, k, patience, scratch);
      if (passes_on) {
        c.fold(lane, prev, static_cast<const Agg*>(agg), c.carry(slot));
        publish(c.flags[slot], kCarryReady);
        if (!Fixup) wait_no_readers(c.flags[slot]);  // before the rescan may overwrite the inputs
      }
    } else {
      prev = c.carry_into(lane, k, 50, scratch);
    }
    c.second(lane, lo, hi, prev);
  };
  run_tickets(plan.lanes * nb, plan.parallel, &ctx, process);
}
}  // namespace detail

// Runs the blocks of `plan` (see the top of this file): reduce, fold, rescan. A block's carry
// is always fold(carry of the block before, its own aggregate), so the bits never depend on
// timing. When the block before is late (its thread was likely preempted), a block does not
// sit waiting: it rebuilds the missing carry from the nearest published one, reducing the late
// blocks itself if their aggregates are not out yet.
template <class Carry, class Agg, class Reduce, class Fold, class Rescan>
void chained_scan(const ScanPlan& plan, int64_t carry_width, int64_t agg_width, Reduce&& reduce, Fold&& fold,
                  Rescan&& rescan) {
  detail::run_chained<false, Carry, Agg>(plan, carry_width, agg_width, reduce, fold, reduce, rescan);
}

// The scan-then-fixup variant, for recurrences whose outputs are cheap to correct afterwards
// (prefix sums: y = carry + local prefix). Each block first runs
//   scan_local(lane, t_lo, t_hi, Agg* agg)  // write the outputs as if the block started the
//                                            // sequence, and its aggregate into agg
// streaming its inputs once, then, once the carry is known,
//   fixup(lane, t_lo, t_hi, const Carry* carry)  // correct the outputs (carry nullptr: first block)
// while they are still in cache. reduce (aggregate only) serves threads rebuilding a late carry;
// it must give the same bits as the aggregate scan_local writes.
template <class Carry, class Agg, class Reduce, class Fold, class ScanLocal, class Fixup>
void chained_scan_fixup(const ScanPlan& plan, int64_t carry_width, int64_t agg_width, Reduce&& reduce,
                        Fold&& fold, ScanLocal&& scan_local, Fixup&& fixup) {
  detail::run_chained<true, Carry, Agg>(plan, carry_width, agg_width, reduce, fold, scan_local, fixup);
}

// ---------------------------------------------------------------------------------------------
// Generic elementwise scan
// ---------------------------------------------------------------------------------------------

// The lanes of a (B, T, C) scan: lane = (sequence b, block of channels). Channels are kept
// whole when a row is small, else cut in fixed blocks so lanes stay cache-friendly.
constexpr int64_t kScanChannelBytes = 2048;
struct ChannelLanes {
  int64_t T, C;
  int64_t cw;       // channels per lane (the last channel block may be narrower)
  int64_t cblocks;  // channel blocks per sequence
  int64_t count;    // lanes = B * cblocks
  ChannelLanes(int64_t B, int64_t T_, int64_t C_, int64_t elem_bytes) : T(T_), C(C_) {
    cw = std::max<int64_t>(1, std::min<int64_t>(C, kScanChannelBytes / std::max<int64_t>(elem_bytes, 1)));
    cblocks = (C + cw - 1) / cw;
    count = B * cblocks;
  }
  int64_t batch(int64_t lane) const { return lane / cblocks; }
  int64_t first_channel(int64_t lane) const { return (lane % cblocks) * cw; }
  int64_t channels(int64_t lane) const { return std::min(cw, C - first_channel(lane)); }
  // Offset of (b, t=0, c0) in a (B, T, C) array and of (b, c0) in a (B, C) array.
  int64_t base(int64_t lane) const { return batch(lane) * T * C + first_channel(lane); }
  int64_t state(int64_t lane) const { return batch(lane) * C + first_channel(lane); }
};

// x, y: (B, T, C). Inclusive scan along T of every (b, c) with an associative operator
// combine(earlier, later) -> E (need not be commutative):
//   forward:  y_t = x_0 ∘ x_1 ∘ ... ∘ x_t
//   reverse:  y_t = x_{T-1} ∘ x_{T-2} ∘ ... ∘ x_t   (the forward scan of the time-reversed sequence)
// where a ∘ b = combine(a, b). E must be default-constructible and copyable. y may alias x.
// WRITES y.
template <class E, class Combine>
void associative_scan(const E* x, E* y, int64_t B, int64_t T, int64_t C, bool reverse, Combine&& combine) {
  ROTOR_CHECK(B >= 0 && T >= 0 && C >= 0, "associative_scan", "negative size B=", B, " T=", T, " C=", C);
  if (B == 0 || T == 0 || C == 0) return;
  const ChannelLanes L(B, T, C, int64_t(sizeof(E)));
  ScanPlan plan = plan_scan(L.count, T, 2 * L.cw * int64_t(sizeof(E)), reverse);
  auto reduce = [&](int64_t lane, int64_t lo, int64_t hi, E* agg) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    int64_t t0 = reverse ? hi - 1 : lo, dt = reverse ? -1 : 1;
    for (int64_t c = 0; c < n; ++c) agg[c] = x[base + t0 * C + c];
    for (int64_t i = 1; i < hi - lo; ++i) {
      const E* row = x + base + (t0 + i * dt) * C;
      for (int64_t c = 0; c < n; ++c) agg[c] = combine(agg[c], row[c]);
    }
  };
  auto fold = [&](int64_t lane, const E* prev, const E* agg, E* next) {
    const int64_t n = L.channels(lane);
    for (int64_t c = 0; c < n; ++c) next[c] = prev ? combine(prev[c], agg[c]) : agg[c];
  };
  auto rescan = [&](int64_t lane, int64_t lo, int64_t hi, const E* carry) {
    const int64_t base = L.base(lane), n = L.channels(lane);
    int64_t t0 = reverse ? hi - 1 : lo, dt = reverse ? -1 : 1;
    const E* prev = carry;
    for (int64_t i = 0; i < hi - lo; ++i) {
      int64_t off = base + (t0 + i * dt) * C;
      for (int64_t c = 0; c < n; ++c) y[off + c] = prev ? combine(prev[c], x[off + c]) : x[off + c];
      prev = y + off;
    }
  };
  chained_scan<E, E>(plan, L.cw, L.cw, reduce, fold, rescan);
}

// Plain sequential loop: the oracle for associative_scan.
template <class E, class Combine>
void associative_scan_reference(const E* x, E* y, int64_t B, int64_t T, int64_t C, bool reverse,
                                Combine&& combine) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < T; ++i) {
        int64_t t = reverse ? T - 1 - i : i, prev = reverse ? t + 1 : t - 1;
        const int64_t off = (b * T + t) * C + c;
        y[off] = i == 0 ? x[off] : combine(y[(b * T + prev) * C + c], x[off]);
      }
}

}  // namespace rotor::kernels
