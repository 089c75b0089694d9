// Internal helpers shared by the GLA and gated delta rule kernel files: indexing one sequence (b, h)
// of the (B,T,H,D) and (B,H,K,V) layouts, argument checks, work partitioning and per-thread GEMMs.
#pragma once
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <memory>

#include "rotor/core/error.h"
#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"
#include "rotor/kernels/blas.h"
#include "rotor/kernels/gla.h"

namespace rotor::kernels::gla_common {

// One sequence (b, h): x(t, D) is the offset of element (b,t,h,0) of a (B,T,H,D) tensor,
// state() that of (b,h,0,0) of a (B,H,K,V) state.
struct Seq {
  const GlaDims& d;
  int64_t b, h;
  Seq(const GlaDims& dims, int64_t bh) : d(dims), b(bh / dims.H), h(bh % dims.H) {}
  int64_t x(int64_t t, int64_t D) const { return ((b * d.T + t) * d.H + h) * D; }
  int64_t state() const { return (b * d.H + h) * d.K * d.V; }
};

// Sequences per parallel block, from the problem size only: enough work that threading pays.
inline int64_t sequences_per_block(const GlaDims& d) {
  const int64_t work = std::max<int64_t>(1, d.T * d.K * d.V);
  return std::max<int64_t>(1, kParallelGrain / work);
}

// A view of one sequence's rows in the (B,T,H,D) layouts: row t at p + t * ld.
template <class T>
struct Rows {
  T* p;
  int64_t ld;
  T* row(int64_t t) const { return p + t * ld; }
};

// Asks for `rows` rows of a strided view ahead of use: a sequence's rows are H*D apart, a pattern
// the hardware prefetchers pick up late. Into L2 (locality 2): a chunk's inputs overflow L1.
template <class T>
void prefetch_rows(const T* p, int64_t ld, int64_t D, int64_t rows) {
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t j = 0; j < D; j += 64 / int64_t(sizeof(T))) __builtin_prefetch(p + t * ld + j, 0, 2);
}

// Steps between checkpoints of the recurrent backward: ~sqrt(T) minimises checkpoints + segment.
inline int64_t segment_length(int64_t T) {
  return std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(T)))));
}

// dst = src, or zeros when src is null (an absent initial state or state gradient).
template <class T>
void copy_state(T* dst, const T* src, int64_t n) {
  if (src) std::copy(src, src + n, dst);
  else std::fill(dst, dst + n, T(0));
}

inline void check_dims(const GlaDims& d, const char* op) {
  ROTOR_CHECK(d.B >= 0 && d.T >= 0 && d.H >= 0 && d.K > 0 && d.V > 0, op, "bad sizes B=", d.B,
              " T=", d.T, " H=", d.H, " K=", d.K, " V=", d.V);
}

// Scratch memory for one parallel block, carved from one rotor::Storage: the storage pool recycles
// it across calls, where fresh vectors would be page-faulted (and zeroed) on every call.
// Storage blocks are 64-byte aligned, and so is every slice; the memory is uninitialised.
template <class T>
class Scratch {
 public:
  explicit Scratch(size_t elements)
      : block_(Storage::allocate(std::max<size_t>(elements, 1) * sizeof(T))),
        next_(static_cast<T*>(block_->data())), end_(next_ + elements) {}
  T* take(size_t n) {
    T* p = next_;
    next_ += (n * sizeof(T) + 63) / 64 * 64 / sizeof(T);
    assert(next_ <= end_);
    return p;
  }
  // Elements to reserve for slices of sizes n... (each rounded up to 64 bytes).
  template <class... N>
  static size_t elements(N... n) {
    return (((size_t(n) * sizeof(T) + 63) / 64 * 64 / sizeof(T)) + ... + 0);
  }

 private:
  std::shared_ptr<Storage> block_;
  T* next_;
  T* end_;
};

// One GEMM on the calling thread: the chunked kernels call it from inside their parallel loops
// (OpenBLAS itself runs single-threaded inside rotor, see kernels/blas.h).
template <class T>
void serial_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t Kd, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  gemm_serial<T>(ta, tb, M, N, Kd, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace rotor::kernels::gla_common
