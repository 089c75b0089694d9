// Tiled causal softmax attention with an online softmax (FlashAttention-2), forward and backward.
//
// Every tile keeps the keys along the SIMD lanes: the scores S = q kᵀ are a (queries × keys) tile
// computed against a packed kᵀ, the softmax of a row works on whole vectors, and all five tile
// products go through one register-blocked xsimd kernel (attention_tile.h). That kernel replaced
// per-tile cblas_sgemm calls, which measured 1.5–1.7× slower on one core at D = 64, T = 256..2048
// (OpenBLAS packs and dispatches on every small tile); it also keeps OpenBLAS's own threads out of
// the TBB tasks, and its fixed fma order makes the bits independent of the thread count.
#include "rotor/kernels/attention.h"
// First: it includes the intrinsics headers under a diagnostic pragma (see there).
#include "rotor/kernels/attention_tile.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "rotor/core/error.h"
#include "rotor/core/parallel.h"
#include "rotor/core/storage.h"

namespace rotor::kernels {

void attention_check_dims(const char* op, const AttentionDims& d, bool causal) {
  ROTOR_CHECK(d.B >= 0 && d.Tq >= 0 && d.H >= 1 && d.D >= 1 && d.Dv >= 1, op,
              "bad sizes B=", d.B, " Tq=", d.Tq, " H=", d.H, " D=", d.D, " Dv=", d.Dv);
  ROTOR_CHECK(d.Tk >= 1, op, "needs at least one key, got Tk=", d.Tk);
  ROTOR_CHECK(!causal || d.Tk >= d.Tq, op,
              "causal attention aligns queries to the end of the keys and needs Tk >= Tq, got Tq=", d.Tq,
              " Tk=", d.Tk);
}

namespace {

using attention_tile::gemm_bcast;
using attention_tile::kLanes;
using attention_tile::round_up;
using attention_tile::Vec;

// Query tiles of 64 rows; key tiles of 256 in the forward (fewer per-row softmax reductions per
// multiply-add) and 64 in the backward (its dkᵀ, dvᵀ accumulators stay in L1).
constexpr int64_t kQueryTile = 64;
constexpr int64_t kForwardKeyTile = 256;
constexpr int64_t kKeyTile = 64;
// The causal triangle is trimmed in blocks of this many query rows.
constexpr int64_t kRowBlock = 16;
// Calls with fewer multiply-adds than this run on the calling thread.
constexpr double kSerialWork = double(1 << 20);
// Heads are split into groups of query tiles (forward) or key tiles (backward) until there are
// about this many tasks; the count depends on the sizes only, never on the threads.
constexpr int64_t kMinTasks = 16;

template <class F>
void run_blocks(int64_t n, bool parallel, F&& body) {
  if (parallel) {
    rotor::parallel_blocks(n, body);
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

bool worth_threads(const AttentionDims& d) {
  return double(d.B) * double(d.H) * double(d.Tq) * double(d.Tk) * double(d.D + d.Dv) > kSerialWork;
}

// Number of keys, from the start of the tile at j0, that query i may attend to (can be <= 0).
inline int64_t allowed_keys(int64_t i, int64_t j0, int64_t nk, int64_t offset, bool causal) {
  return causal ? std::min(nk, i + offset - j0 + 1) : nk;
}

// One row of the online softmax over a key tile. On entry s[0:npad] holds the raw scores q_i·k_j,
// of which the first `allowed` are visible; on exit it holds exp(scale·s − m') (zero where masked),
// with the running max m and sum l updated to the new max m'. Returns the factor exp(m − m') by
// which the row's earlier output accumulator must be rescaled. Needs scale > 0.
template <class T>
T online_softmax_row(T* s, int64_t npad, int64_t allowed, T scale, T& m, T& l) {
  constexpr int64_t W = kLanes<T>;
  constexpr T inf = std::numeric_limits<T>::infinity();
  if (allowed <= 0) {
    std::fill(s, s + npad, T(0));
    return T(1);
  }
  std::fill(s + allowed, s + npad, -inf);  // exp turns these into exact zeros
  Vec<T> vmax(-inf);
  for (int64_t j = 0; j < npad; j += W) vmax = xsimd::max(vmax, Vec<T>::load_unaligned(s + j));
  const T m_new = std::max(m, scale * reduce_max(vmax));
  const Vec<T> vscale(scale), vm(m_new);
  Vec<T> vsum(T(0));
  for (int64_t j = 0; j < npad; j += W) {
    const Vec<T> p = xsimd::exp(xsimd::fms(Vec<T>::load_unaligned(s + j), vscale, vm));
    p.store_unaligned(s + j);
    vsum += p;
  }
  const T alpha = std::exp(m - m_new);
  l = l * alpha + xsimd::hadd(vsum);
  m = m_new;
  return alpha;
}

// dst[c*ldd + j] = src[j*lds + c] for j < rows, c < cols: keys become the columns of a tile.
// Blocks of 16 source rows keep the reads on 16 cache lines and write whole lines.
template <class T>
void pack_transposed(T* dst, int64_t ldd, const T* src, int64_t lds, int64_t rows, int64_t cols) {
  constexpr int64_t R = 16;
  for (int64_t j0 = 0; j0 < rows; j0 += R) {
    const int64_t nr = std::min(R, rows - j0);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t j = 0; j < nr; ++j) dst[c * ldd + j0 + j] = src[(j0 + j) * lds + c];
  }
}

// dst[j*ldd + c] = src[j*lds + c] for j < rows, c < cols.
template <class T>
void pack_rows(T* dst, int64_t ldd, const T* src, int64_t lds, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < rows; ++j) std::memcpy(dst + j * ldd, src + j * lds, size_t(cols) * sizeof(T));
}

// Scratch for one task: one cached, 64-byte aligned block (rotor::Storage recycles it, so large
// tasks do not page-fault fresh memory) carved into uninitialised arrays of the given sizes.
template <class T, size_t N>
std::array<T*, N> task_scratch(std::shared_ptr<rotor::Storage>& hold, const int64_t (&sizes)[N]) {
  constexpr int64_t align = 64 / int64_t(sizeof(T));
  int64_t total = 0;
  for (int64_t n : sizes) total += round_up(n, align);
  hold = rotor::Storage::allocate(size_t(total) * sizeof(T));
  std::array<T*, N> arrays;
  T* next = static_cast<T*>(hold->data());
  for (size_t i = 0; i < N; ++i) {
    arrays[i] = next;
    next += round_up(sizes[i], align);
  }
  return arrays;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Forward: one task per (b, h, group of query tiles). A task first packs the keys its queries see,
// tile by tile and zero-padded — kᵀ as contiguous (D × Bk) blocks, v as (Bk × Dv') rows — so every
// tile product streams contiguous memory (rows of k in place lie H·D apart and alias in L1), then
// runs the online softmax over the key tiles for each of its query tiles. With enough heads a group
// is a whole head and its keys are packed once; otherwise the query tiles are dealt round-robin to
// groups (the causal work grows with the tile index) and each group packs its own prefix.

template <class T>
void attention_forward(T* o, T* lse, const T* q, const T* k, const T* v, const AttentionDims& d, T scale,
                       bool causal) {
  attention_check_dims("attention_forward", d, causal);
  ROTOR_CHECK(scale > 0, "attention_forward", "needs scale > 0, got ", scale);
  if (d.B == 0 || d.Tq == 0) return;
  constexpr int64_t W = kLanes<T>;
  constexpr int64_t Bq = kQueryTile, Bk = kForwardKeyTile;
  const int64_t BH = d.B * d.H;
  const int64_t ldq = d.H * d.D, ldv = d.H * d.Dv;
  const int64_t Dvp = round_up(d.Dv, W);
  const int64_t offset = causal ? d.Tk - d.Tq : 0;
  const int64_t nqt = (d.Tq + Bq - 1) / Bq;
  const int64_t groups = std::clamp<int64_t>((kMinTasks + BH - 1) / BH, 1, nqt);

  run_blocks(BH * groups, worth_threads(d), [&](int64_t task) {
    const int64_t bh = task / groups, g = task % groups, b = bh / d.H, h = bh % d.H;
    const T* qb = q + b * d.Tq * ldq + h * d.D;
    const T* kb = k + b * d.Tk * ldq + h * d.D;
    const T* vb = v + b * d.Tk * ldv + h * d.Dv;

    // Keys seen by the group's last (largest) query tile, packed.
    const int64_t last_tile = g + (nqt - 1 - g) / groups * groups;
    const int64_t nkeys = causal ? std::min(d.Tq, (last_tile + 1) * Bq) + offset : d.Tk;
    const int64_t nkt = (nkeys + Bk - 1) / Bk;
    std::shared_ptr<rotor::Storage> hold;
    auto [kt, vp, s, acc, m, l] =
        task_scratch<T>(hold, {nkt * d.D * Bk, nkt * Bk * Dvp, Bq * Bk, Bq * Dvp, Bq, Bq});
    std::fill(kt + (nkt - 1) * d.D * Bk, kt + nkt * d.D * Bk, T(0));
    std::fill(vp + nkeys * Dvp, vp + nkt * Bk * Dvp, T(0));
    for (int64_t t = 0; t < nkt; ++t)
      pack_transposed(kt + t * d.D * Bk, Bk, kb + t * Bk * ldq, ldq, std::min(Bk, nkeys - t * Bk), d.D);
    pack_rows(vp, Dvp, vb, ldv, nkeys, d.Dv);
    if (Dvp != d.Dv)
      for (int64_t j = 0; j < nkeys; ++j) std::fill(vp + j * Dvp + d.Dv, vp + (j + 1) * Dvp, T(0));

    for (int64_t tile = g; tile < nqt; tile += groups) {
      const int64_t i0 = tile * Bq, nq = std::min(Bq, d.Tq - i0);
      const T* qi = qb + i0 * ldq;
      std::fill(acc, acc + nq * Dvp, T(0));
      std::fill(m, m + nq, -std::numeric_limits<T>::infinity());
      std::fill(l, l + nq, T(0));
      const int64_t kend = causal ? i0 + nq + offset : d.Tk;  // keys past kend are masked for every row
      for (int64_t j0 = 0; j0 < kend; j0 += Bk) {
        const int64_t nk = std::min(Bk, kend - j0);
        // Blocks of rows, each as wide as its last (most-seeing) row: trims the masked triangle.
        for (int64_t r0 = 0; r0 < nq; r0 += kRowBlock) {
          const int64_t nr = std::min(kRowBlock, nq - r0);
          const int64_t width = allowed_keys(i0 + r0 + nr - 1, j0, nk, offset, causal);
          if (width <= 0) continue;  // no row of the block sees this key tile
          const int64_t ncp = round_up(width, W);
          T* sr = s + r0 * Bk;
          T* accr = acc + r0 * Dvp;
          gemm_bcast<T>(nr, ncp, d.D, qi + r0 * ldq, ldq, 1, kt + j0 * d.D, Bk, sr, Bk, false);
          for (int64_t i = 0; i < nr; ++i) {
            const int64_t allowed = allowed_keys(i0 + r0 + i, j0, nk, offset, causal);
            const T alpha = online_softmax_row(sr + i * Bk, ncp, allowed, scale, m[r0 + i], l[r0 + i]);
            if (alpha != T(1))
              for (int64_t c = 0; c < Dvp; ++c) accr[i * Dvp + c] *= alpha;
          }
          gemm_bcast<T>(nr, Dvp, ncp, sr, Bk, 1, vp + j0 * Dvp, Dvp, accr, Dvp, true);
        }
      }
      for (int64_t i = 0; i < nq; ++i) {
        T* oi = o + (b * d.Tq + i0 + i) * ldv + h * d.Dv;
        const T inv = T(1) / l[i];
        for (int64_t c = 0; c < d.Dv; ++c) oi[c] = acc[i * Dvp + c] * inv;
        if (lse) lse[bh * d.Tq + i0 + i] = m[i] + std::log(l[i]);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Backward: one task per (b, h, group of key tiles). A task walks its key tiles; for each it walks
// the query tiles that see it, recomputes P = exp(scale·S − lse) from the saved lse, and
//   dv_tile += Pᵀ do,   dS = P ⊙ (do vᵀ − Δ),   dk_tile += dSᵀ q,   dq_partial += dS k
// with Δ_i = do_i·o_i. dk and dv of a key tile have one owner, so they are plain sums; dq gets one
// partial per group, summed afterwards in group order. The number of groups depends only on the
// sizes (1 when B·H alone gives enough tasks), so the bits do not depend on the thread count.

template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* o,
                        const T* lse, const AttentionDims& d, T scale, bool causal) {
  attention_check_dims("attention_backward", d, causal);
  if (d.B == 0) return;
  const int64_t ldq = d.H * d.D, ldv = d.H * d.Dv;
  if (d.Tq == 0) {  // no query sees any key
    std::fill(dk, dk + d.B * d.Tk * ldq, T(0));
    std::fill(dv, dv + d.B * d.Tk * ldv, T(0));
    return;
  }
  constexpr int64_t W = kLanes<T>;
  constexpr int64_t Bk = kKeyTile;
  const int64_t BH = d.B * d.H;
  const int64_t Dp = round_up(d.D, W);
  const int64_t offset = causal ? d.Tk - d.Tq : 0;
  const int64_t nkt = (d.Tk + Bk - 1) / Bk;
  const int64_t groups = std::clamp<int64_t>((kMinTasks + BH - 1) / BH, 1, nkt);
  const bool parallel = worth_threads(d);

  auto partial_storage = rotor::Storage::allocate(size_t(BH * groups * d.Tq * Dp) * sizeof(T));
  T* partial = static_cast<T*>(partial_storage->data());

  run_blocks(BH * groups, parallel, [&](int64_t task) {
    const int64_t bh = task / groups, g = task % groups, b = bh / d.H, h = bh % d.H;
    const T* qb = q + b * d.Tq * ldq + h * d.D;
    const T* dob = dout + b * d.Tq * ldv + h * d.Dv;
    const T* ob = o + b * d.Tq * ldv + h * d.Dv;
    const T* kb = k + b * d.Tk * ldq + h * d.D;
    const T* vb = v + b * d.Tk * ldv + h * d.Dv;
    const T* lse_b = lse + bh * d.Tq;
    T* dq_acc = partial + task * d.Tq * Dp;
    std::fill(dq_acc, dq_acc + d.Tq * Dp, T(0));

    std::shared_ptr<rotor::Storage> hold;
    auto [delta, kt, vt, kp, p, ds, dkt, dvt] = task_scratch<T>(
        hold, {d.Tq, d.D * Bk, d.Dv * Bk, Bk * Dp, kQueryTile * Bk, kQueryTile * Bk, d.D * Bk, d.Dv * Bk});
    for (int64_t i = 0; i < d.Tq; ++i) {
      T s = 0;
      for (int64_t c = 0; c < d.Dv; ++c) s += dob[i * ldv + c] * ob[i * ldv + c];
      delta[i] = s;
    }

    for (int64_t tile = g; tile < nkt; tile += groups) {
      const int64_t j0 = tile * Bk, nk = std::min(Bk, d.Tk - j0), nkp = round_up(nk, W);
      std::fill(kt, kt + d.D * Bk, T(0));
      std::fill(vt, vt + d.Dv * Bk, T(0));
      std::fill(kp, kp + Bk * Dp, T(0));
      std::fill(dkt, dkt + d.D * Bk, T(0));
      std::fill(dvt, dvt + d.Dv * Bk, T(0));
      pack_transposed(kt, Bk, kb + j0 * ldq, ldq, nk, d.D);
      pack_transposed(vt, Bk, vb + j0 * ldv, ldv, nk, d.Dv);
      pack_rows(kp, Dp, kb + j0 * ldq, ldq, nk, d.D);

      const int64_t first_query = causal ? std::max<int64_t>(0, j0 - offset) : 0;
      for (int64_t i0 = first_query / kQueryTile * kQueryTile; i0 < d.Tq; i0 += kQueryTile) {
        const int64_t nq = std::min(kQueryTile, d.Tq - i0);
        const int64_t r_first = std::max<int64_t>(0, first_query - i0);  // rows before it see no key here
        const T* qi = qb + i0 * ldq;
        const T* doi = dob + i0 * ldv;
        // Blocks of rows, each as wide as its last (most-seeing) row: trims the masked triangle.
        for (int64_t r0 = r_first; r0 < nq; r0 += kRowBlock) {
          const int64_t nr = std::min(kRowBlock, nq - r0);
          const int64_t ncp = round_up(allowed_keys(i0 + r0 + nr - 1, j0, nk, offset, causal), W);
          gemm_bcast<T>(nr, ncp, d.D, qi + r0 * ldq, ldq, 1, kt, Bk, p + r0 * Bk, Bk, false);
          gemm_bcast<T>(nr, ncp, d.Dv, doi + r0 * ldv, ldv, 1, vt, Bk, ds + r0 * Bk, Bk, false);
          for (int64_t i = r0; i < r0 + nr; ++i) {
            T* pi = p + i * Bk;
            T* dsi = ds + i * Bk;
            const int64_t allowed = allowed_keys(i0 + i, j0, nk, offset, causal);
            const Vec<T> vscale(scale), vlse(lse_b[i0 + i]), vdelta(delta[i0 + i]);
            for (int64_t j = 0; j < allowed; j += W) {
              const Vec<T> pj = xsimd::exp(xsimd::fms(Vec<T>::load_unaligned(pi + j), vscale, vlse));
              pj.store_unaligned(pi + j);
              (pj * (Vec<T>::load_unaligned(dsi + j) - vdelta)).store_unaligned(dsi + j);
            }
            std::fill(pi + allowed, pi + nkp, T(0));
            std::fill(dsi + allowed, dsi + nkp, T(0));
          }
          gemm_bcast<T>(nr, Dp, ncp, ds + r0 * Bk, Bk, 1, kp, Dp, dq_acc + (i0 + r0) * Dp, Dp, true);
        }
        const int64_t nr = nq - r_first;
        gemm_bcast<T>(d.Dv, nkp, nr, doi + r_first * ldv, 1, ldv, p + r_first * Bk, Bk, dvt, Bk, true);
        gemm_bcast<T>(d.D, nkp, nr, qi + r_first * ldq, 1, ldq, ds + r_first * Bk, Bk, dkt, Bk, true);
      }

      for (int64_t j = 0; j < nk; ++j) {
        T* dkj = dk + (b * d.Tk + j0 + j) * ldq + h * d.D;
        T* dvj = dv + (b * d.Tk + j0 + j) * ldv + h * d.Dv;
        for (int64_t c = 0; c < d.D; ++c) dkj[c] = scale * dkt[c * Bk + j];
        for (int64_t c = 0; c < d.Dv; ++c) dvj[c] = dvt[c * Bk + j];
      }
    }
  });

  run_blocks(BH, parallel, [&](int64_t bh) {
    const int64_t b = bh / d.H, h = bh % d.H;
    const T* part = partial + bh * groups * d.Tq * Dp;
    for (int64_t i = 0; i < d.Tq; ++i) {
      T* dqi = dq + (b * d.Tq + i) * ldq + h * d.D;
      for (int64_t c = 0; c < d.D; ++c) {
        T s = part[i * Dp + c];
        for (int64_t g = 1; g < groups; ++g) s += part[(g * d.Tq + i) * Dp + c];
        dqi[c] = scale * s;
      }
    }
  });
}

#define ROTOR_INSTANTIATE(T)                                                                                    \
  template void attention_forward<T>(T*, T*, const T*, const T*, const T*, const AttentionDims&, T, bool);    \
  template void attention_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, const T*, \
                                      const AttentionDims&, T, bool);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
