#include "rotor/kernels/blas.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "rotor/core/iter.h"
#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"
#include "rotor/core/view.h"

// OpenBLAS's runtime kernel selection (DYNAMIC_ARCH builds, as Debian's): exported, not in cblas.h.
extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace rotor::kernels {

namespace {
// A CPU newer than the OpenBLAS release (Debian 12's 0.3.21 on a 5th-generation Xeon, say) gets
// OpenBLAS's generic "Prescott" SSE3 kernels, 3-4x slower than the machine allows. When that
// happens on a CPU with AVX2 or AVX-512, select the matching kernels, as OPENBLAS_CORETYPE
// would; a user's own OPENBLAS_CORETYPE is left alone.
std::string g_core_note;

void select_blas_kernels() {
  const char* config = openblas_get_config();
  if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !config || !std::strstr(config, "DYNAMIC_ARCH")) return;
  if (std::getenv("OPENBLAS_CORETYPE") || std::strcmp(openblas_get_corename(), "Prescott") != 0) return;
  __builtin_cpu_init();
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 0);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  g_core_note = std::string(" (OpenBLAS took this CPU for Prescott; rotor selected ") + core + ")";
}

// Runs before any rotor code: librotor's static initialisers run after OpenBLAS's own.
[[maybe_unused]] const bool kBlasReady = [] {
  select_blas_kernels();
  openblas_set_num_threads(1);
  return true;
}();

// Work (m * n * k multiply-adds) of one slice of a long inner dimension: 20-60 µs of one core,
// well above the cost of a task. Products under two of them stay on the calling thread.
constexpr double kGemmBlockWork = double(int64_t(1) << 20);
// Work of one block of C, 16 times more (0.1-1 ms of one core): every block is its own OpenBLAS
// call, which packs its rows of op(A) and its columns of op(B) again; at [2048 x 64]·[64 x 256]
// on one core 32 row blocks took 1.35x the time of one call, 8 blocks 1.09x, 2 blocks 1.02x. On
// OpenBLAS's SkylakeX kernels C cut this way also rounds as one call does (blocks stay above its
// small-matrix path, which sums in another order).
constexpr double kGemmRowBlockWork = 16 * kGemmBlockWork;
constexpr int64_t kMaxGemmBlocks = 64;
// Blocks a grid reaches for by cutting the shorter side too: enough for 8 cores.
constexpr int64_t kMinGemmGrid = 8;
// Rows or columns of one block, at least (past the first cut in two): on one core, blocks of 128
// rows took 1.04-1.20x the time of one call at the language model head's shapes ([8192 x 128] by
// [128 x 8192], its two gradients), 256 rows 0.98-1.07x. And the depth of one slice of the inner
// dimension.
constexpr int64_t kMinGemmSide = 256, kMinGemmDepth = 256, kMaxGemmSlices = 8;

std::atomic<std::vector<GemmShape>*> g_tracer{nullptr};
std::mutex g_tracer_mutex;

template <class T>
void trace(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  if (std::vector<GemmShape>* out = g_tracer.load(std::memory_order_relaxed)) {
    std::lock_guard lock(g_tracer_mutex);
    out->push_back({ta, tb, m, n, k, std::is_same_v<T, double>});
  }
}

void blas_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, blasint(m),
              blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}

void blas_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
               const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, blasint(m),
              blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
}
}  // namespace

void set_gemm_tracer(std::vector<GemmShape>* shapes) { g_tracer.store(shapes); }

template <class T>
void gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
                 int64_t ldb, T beta, T* c, int64_t ldc) {
  trace<T>(ta, tb, m, n, k);
  blas_call(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

namespace {
// A side of `side` cut into about `blocks` equal pieces, multiples of 16 (at least 16):
// {piece length, piece count}.
std::pair<int64_t, int64_t> even_cut(int64_t side, int64_t blocks) {
  const int64_t step = std::max<int64_t>(16, ((side + blocks - 1) / blocks + 15) / 16 * 16);
  return {step, (side + step - 1) / step};
}

// C = alpha op(A) op(B) + beta C for a small C with a long inner dimension (a weight gradient:
// C = dYᵀ X over every token), cut along k: slice 0 goes into C with the caller's beta, the
// others into partials (from the storage pool) added in slice order. Cutting C instead would
// repack the whole of op(B) for every block.
template <class T>
void gemm_k_slices(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc, double work) {
  int64_t slices = std::min({kMaxGemmSlices, int64_t(work / kGemmBlockWork), k / kMinGemmDepth});
  const int64_t depth = ((k + slices - 1) / slices + 15) / 16 * 16;
  slices = (k + depth - 1) / depth;
  const auto block = Storage::allocate(size_t((slices - 1) * m * n) * sizeof(T));
  T* partial = static_cast<T*>(block->data());
  parallel_blocks(slices, [&](int64_t i) {
    const int64_t lo = i * depth, len = std::min(k, lo + depth) - lo;
    const T* ai = a + (ta ? lo * lda : lo);
    const T* bi = b + (tb ? lo : lo * ldb);
    if (i == 0) blas_call(ta, tb, m, n, len, alpha, ai, lda, bi, ldb, beta, c, ldc);
    else blas_call(ta, tb, m, n, len, alpha, ai, lda, bi, ldb, T(0), partial + (i - 1) * m * n, n);
  });
  parallel_for(m, std::max<int64_t>(1, kParallelGrain / (n * slices)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r)
      for (int64_t s = 1; s < slices; ++s) {
        const T* p = partial + (s - 1) * m * n + r * n;
        T* cr = c + r * ldc;
        for (int64_t j = 0; j < n; ++j) cr[j] += p[j];
      }
  });
}
}  // namespace

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  trace<T>(ta, tb, m, n, k);
  const double work = double(m) * double(n) * double(k);
  if (work < 2 * kGemmBlockWork || m <= 0 || n <= 0) {
    blas_call(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (k >= 4 * std::max(m, n) && k >= 2 * kMinGemmDepth) {
    gemm_k_slices(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
    return;
  }
  // Otherwise cut C into blocks, multiples of 16 rows and columns (whole SIMD tiles for OpenBLAS):
  // the longer side into as many as the work asks for, at least two, each at least kMinGemmSide
  // long; the shorter side too only while that gives fewer than kMinGemmGrid blocks (a square C
  // of 1024 becomes 4 x 2 blocks). The count follows from the sizes alone.
  const bool rows_first = m >= n;
  const int64_t first = rows_first ? m : n, second = rows_first ? n : m;
  const int64_t want = std::clamp<int64_t>(int64_t(work / kGemmRowBlockWork), 2, kMaxGemmBlocks);
  const auto [step1, count1] = even_cut(first, std::clamp<int64_t>(first / kMinGemmSide, 2, want));
  const int64_t grid = std::min(want, kMinGemmGrid);
  const auto [step2, count2] =
      even_cut(second, std::clamp<int64_t>(second / kMinGemmSide, 1, (grid + count1 - 1) / count1));
  parallel_blocks(count1 * count2, [&](int64_t i) {
    const int64_t lo1 = (i / count2) * step1, len1 = std::min(first, lo1 + step1) - lo1;
    const int64_t lo2 = (i % count2) * step2, len2 = std::min(second, lo2 + step2) - lo2;
    const int64_t r0 = rows_first ? lo1 : lo2, rows = rows_first ? len1 : len2;
    const int64_t c0 = rows_first ? lo2 : lo1, cols = rows_first ? len2 : len1;
    blas_call(ta, tb, rows, cols, k, alpha, a + (ta ? r0 : r0 * lda), lda, b + (tb ? c0 * ldb : c0), ldb, beta,
              c + r0 * ldc + c0, ldc);
  });
}

template void gemm_serial<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                 const float*, int64_t, float, float*, int64_t);
template void gemm_serial<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                  const double*, int64_t, double, double*, int64_t);
template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

std::string blas_core_name() { return openblas_get_corename() + g_core_note; }

namespace {

// How a [rows, cols] matrix view (the last two dims) reaches BLAS.
struct MatrixLayout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0;
};

MatrixLayout blas_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  // Size-1 dims may carry any stride; treat them as packed.
  if (cols == 1) col_stride = 1;
  if (rows == 1) row_stride = std::max<int64_t>(cols, 1);
  if (col_stride == 1 && row_stride >= std::max<int64_t>(cols, 1)) return {true, false, row_stride};
  if (cols > 1 && rows == 1) return {false};
  if (row_stride == 1 && col_stride >= std::max<int64_t>(rows, 1)) return {true, true, col_stride};
  return {false};
}

MatrixLayout layout_of(const Tensor& t) {
  const int64_t d = t.dim();
  return blas_layout(t.shape()[d - 2], t.shape()[d - 1], t.strides()[d - 2], t.strides()[d - 1]);
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  ROTOR_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul", "operands must have at least one dim, got ",
              shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
  ROTOR_CHECK(a_in.dtype() == b_in.dtype(), "matmul", "dtype mismatch: ", dtype_name(a_in.dtype()), " vs ",
              dtype_name(b_in.dtype()));
  Tensor a = a_in.dim() == 1 ? core::unsqueeze(a_in, 0) : a_in;
  Tensor b = b_in.dim() == 1 ? core::unsqueeze(b_in, 1) : b_in;
  const int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1];
  const int64_t kb = b.shape()[b.dim() - 2], n = b.shape()[b.dim() - 1];
  ROTOR_CHECK(k == kb, "matmul", "inner dims differ: ", shape_str(a_in.shape()), " @ ", shape_str(b_in.shape()));
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");

  if (!layout_of(a).ok) a = core::contiguous(a);
  if (!layout_of(b).ok) b = core::contiguous(b);
  MatrixLayout la = layout_of(a), lb = layout_of(b);

  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const int64_t nbatch = shape_numel(batch);

  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    T* c = out.data<T>();
    if (out.numel() == 0) return;
    if (k == 0) {
      std::fill(c, c + out.numel(), T(0));
      return;
    }
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    Strides sa = broadcast_strides(batch_a, Strides(a.strides().begin(), a.strides().end() - 2), batch);
    Strides sb = broadcast_strides(batch_b, Strides(b.strides().begin(), b.strides().end() - 2), batch);

    // One tall GEMM when b is shared across the batch and a's batch rows stack evenly.
    bool b_shared = std::all_of(sb.begin(), sb.end(), [](int64_t s) { return s == 0; });
    if (b_shared && !la.trans && nbatch > 1 && shape_numel(batch_a) == nbatch) {
      if (auto flat = core::try_view(a, Shape{nbatch * m, k})) {
        MatrixLayout lf = layout_of(*flat);
        if (lf.ok && !lf.trans) {
          gemm<T>(false, lb.trans, nbatch * m, n, k, T(1), static_cast<const T*>(flat->raw_data()), lf.ld, bp,
                  lb.ld, T(0), c, n);
          return;
        }
      }
    }
    // Otherwise one GEMM per batch entry, side by side on the pool (a large one splits further).
    StridedLoop<2> loop(batch, {sa, sb});
    std::vector<std::array<int64_t, 2>> offsets;
    offsets.reserve(size_t(nbatch));
    loop.for_runs(0, nbatch, [&](const std::array<int64_t, 2>& off, int64_t len) {
      for (int64_t i = 0; i < len; ++i)
        offsets.push_back({off[0] + i * loop.inner_stride(0), off[1] + i * loop.inner_stride(1)});
    });
    auto one = [&](int64_t i) {
      gemm<T>(la.trans, lb.trans, m, n, k, T(1), ap + offsets[size_t(i)][0], la.ld, bp + offsets[size_t(i)][1],
              lb.ld, T(0), c + i * m * n, n);
    };
    parallel_blocks(nbatch, one);
  });
  if (a_in.dim() == 1) out = core::squeeze(out, out.dim() - 2);
  if (b_in.dim() == 1) out = core::squeeze(out, out.dim() - 1);
  return out;
}

}  // namespace rotor::kernels
