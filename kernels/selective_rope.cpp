#include "rotor/kernels/selective_rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/kernels/rotary_simd.h"

namespace rotor::kernels {

namespace {

using simd::Batch;

// Below this many (b,t,h,d) elements the kernels run on the calling thread.
constexpr int64_t kSerialWork = int64_t(1) << 16;
// With fewer sequences than this, work is split along time too (chunks become the work items).
constexpr int64_t kBatchItems = 8;

int64_t num_chunks(int64_t T) { return (T + kPhaseChunk - 1) / kPhaseChunk; }

// Runs body(i) for i in [0, n): in parallel over fixed items when the problem is big enough.
template <class F>
void for_items(int64_t n, int64_t work, F&& body) {
  if (work < kSerialWork) {
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
    parallel_blocks(n, body);
  }
}

// dst[i] = a[i] + b[i] over n elements (a or b null reads as zero).
template <class T>
void add_rows(T* dst, const T* a, const T* b, int64_t n) {
  const int64_t W = simd::kWidth<T>;
  for (int64_t i = 0; i < n; i += W) {
    const int64_t m = std::min(W, n - i);
    const Batch<T> x = a ? simd::load_n(a + i, m) : Batch<T>(T(0));
    const Batch<T> y = b ? simd::load_n(b + i, m) : Batch<T>(T(0));
    simd::store_n(dst + i, x + y, m);
  }
}

// The chunk prefixes P (B, nc+1, H·R) of the summation order in the header: P[b][0] = offset,
// P[b][c+1] = P[b][c] + S_c with S_c summed left to right from zero.
template <class T>
std::vector<T> phase_prefixes(const T* phi, const T* offset, const RopeShape& sh) {
  const int64_t HR = sh.H * (sh.D / 2), nc = num_chunks(sh.T);
  std::vector<T> P(size_t(sh.B * (nc + 1) * HR), T(0));
  for_items(sh.B * nc, sh.B * sh.T * HR, [&](int64_t item) {
    const int64_t b = item / nc, c = item % nc, W = simd::kWidth<T>;
    T* S = P.data() + (b * (nc + 1) + c + 1) * HR;
    const int64_t t0 = c * kPhaseChunk, t1 = std::min(sh.T, t0 + kPhaseChunk);
    const T* rows = phi + (b * sh.T + t0) * HR;
    // Column by column, the sum in a register: per element the same left-to-right order as
    // the running sum of forward_chunk.
    for (int64_t i = 0; i < HR; i += W) {
      const int64_t n = std::min(W, HR - i);
      Batch<T> s(T(0));
      for (int64_t t = 0; t < t1 - t0; ++t) s += simd::load_n(rows + t * HR + i, n);
      simd::store_n(S + i, s, n);
    }
  });
  for (int64_t b = 0; b < sh.B; ++b) {
    T* Pb = P.data() + b * (nc + 1) * HR;
    add_rows(Pb, offset ? offset + b * HR : nullptr, static_cast<const T*>(nullptr), HR);
    for (int64_t c = 0; c < nc; ++c) add_rows(Pb + (c + 1) * HR, Pb + c * HR, Pb + (c + 1) * HR, HR);
  }
  return P;
}

// ---------------------------------------------------------------------------------------------
// Forward

template <class T>
struct ForwardArgs {
  T* q_out;
  T* k_out;
  const T* q;
  const T* k;
  const T* phi;
  const T* tau;
  RopeShape sh;
};

// The chunk workers are kept out of line so that every path runs the same machine code: the
// compiler may fuse a multiply and an add differently in each inlined copy, which would change
// low bits between the serial and the parallel paths. They copy their arguments to locals first:
// a vector store may alias anything, and fields read through a reference would be reloaded.
//
// Rotates the rows of chunk c of sequence b. P (H·R) holds the chunk's prefix on entry and the
// next chunk's on return; run (H·R) is scratch for the within-chunk running sum.
template <RotaryLayout L, class T>
[[gnu::noinline]] void forward_chunk(const ForwardArgs<T>& a, int64_t b, int64_t c, T* P, T* run) {
  T* const q_out = a.q_out;
  T* const k_out = a.k_out;
  const T* const q = a.q;
  const T* const k = a.k;
  const T* const tau = a.tau;
  const int64_t Tn = a.sh.T, H = a.sh.H, D = a.sh.D, R = D / 2, HR = H * R, HD = H * D;
  constexpr int64_t W = simd::kWidth<T>;
  const int64_t t0 = c * kPhaseChunk, t1 = std::min(Tn, t0 + kPhaseChunk);
  const T* phi = a.phi + (b * Tn + t0) * HR;
  std::fill(run, run + HR, T(0));
  simd::dispatch_full<T>(R, [&](auto full) {
    for (int64_t t = t0; t < t1; ++t, phi += HR) {
      const int64_t row = b * Tn + t;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t at = row * HD + h * D;
        for (int64_t j = 0; j < R; j += W) {
          const int64_t n = decltype(full)::value ? W : std::min(W, R - j), x = h * R + j;
          const Batch<T> sum = simd::load_n(run + x, n) + simd::load_n(phi + x, n);
          simd::store_n(run + x, sum, n);
          Batch<T> s, cs;
          simd::sincos(simd::load_n(tau + j, n) * (simd::load_n(P + x, n) + sum), s, cs);
          simd::rotate_pairs<L>(q_out + at, q + at, R, j, n, cs, s);
          if (k) simd::rotate_pairs<L>(k_out + at, k + at, R, j, n, cs, s);
        }
      }
    }
  });
  add_rows(P, P, run, HR);
}

template <RotaryLayout L, class T>
void forward_impl(const ForwardArgs<T>& a, T* final_offset, const T* offset) {
  const RopeShape& sh = a.sh;
  const int64_t HR = sh.H * (sh.D / 2), nc = num_chunks(sh.T), work = sh.B * sh.T * sh.H * sh.D;
  if (sh.B >= kBatchItems || nc < 2) {
    // One item per sequence, walking its time steps in order.
    for_items(sh.B, work, [&](int64_t b) {
      std::vector<T> P(size_t(2 * HR));
      add_rows(P.data(), offset ? offset + b * HR : nullptr, static_cast<const T*>(nullptr), HR);
      for (int64_t c = 0; c < nc; ++c) forward_chunk<L>(a, b, c, P.data(), P.data() + HR);
      if (final_offset) std::copy(P.begin(), P.begin() + HR, final_offset + b * HR);
    });
    return;
  }
  // Few sequences: a pre-pass sums φ per chunk, then every chunk starts from its prefix.
  const std::vector<T> prefix = phase_prefixes(a.phi, offset, sh);
  for_items(sh.B * nc, work, [&](int64_t item) {
    const int64_t b = item / nc, c = item % nc;
    std::vector<T> P(prefix.begin() + (b * (nc + 1) + c) * HR, prefix.begin() + (b * (nc + 1) + c + 1) * HR);
    P.resize(size_t(2 * HR));
    forward_chunk<L>(a, b, c, P.data(), P.data() + HR);
  });
  if (final_offset)
    for (int64_t b = 0; b < sh.B; ++b)
      std::copy_n(prefix.begin() + (b * (nc + 1) + nc) * HR, HR, final_offset + b * HR);
}

// ---------------------------------------------------------------------------------------------
// Backward

template <class T>
struct BackwardArgs {
  T* dq;
  T* dk;
  const T* dq_out;
  const T* dk_out;
  const T* dfinal;
  const T* q;
  const T* k;
  const T* phi;
  const T* tau;
  RopeShape sh;
  bool need_dtheta;  // dphi, dtemperature or doffset wanted
  bool need_suffix;  // dphi or doffset wanted
};

// Per-item scratch for backward_chunk.
template <class T>
struct BackwardScratch {
  std::vector<T> run, acc, rows;  // running sum of φ, Σ_t Φ⊙dθ (H·R each); dΦ rows (C × H·R)
  BackwardScratch(int64_t HR, bool need_rows) : run(size_t(HR)), acc(size_t(HR)) {
    if (need_rows) rows.resize(size_t(kPhaseChunk * HR));
  }
};

// Chunk c of sequence b, phases recomputed from the prefix P (H·R).
//  - writes dq, dk rows;
//  - when a.need_suffix: leaves in `drows` (C × H·R, the chunk's dphi rows or scratch) the reverse
//    running sums of dΦ within the chunk, plus the carry G if G is not null, then G += chunk total
//    (as G ← drows[t0] = total + G); otherwise stores the chunk total in `total`;
//  - when dtau is not null: dtau (R) = Σ_{t in chunk, h} Φ ⊙ dθ.
template <RotaryLayout L, class T>
[[gnu::noinline]] void backward_chunk(const BackwardArgs<T>& a, int64_t b, int64_t c, const T* P, T* drows, T* G,
                                      T* total, T* dtau, BackwardScratch<T>& scratch) {
  T* const dq = a.dq;
  T* const dk = a.dk;
  const T* const dq_out = a.dq_out;
  const T* const dk_out = a.dk_out;
  const T* const tau = a.tau;
  const bool need_dtheta = a.need_dtheta, need_suffix = a.need_suffix;
  const T* const q = need_dtheta ? a.q : nullptr;
  const T* const k = need_dtheta ? a.k : nullptr;
  const bool do_q = dq_out && (dq || need_dtheta), do_k = dk_out && (dk || need_dtheta);
  const int64_t Tn = a.sh.T, H = a.sh.H, D = a.sh.D, R = D / 2, HR = H * R, HD = H * D;
  constexpr int64_t W = simd::kWidth<T>;
  const int64_t t0 = c * kPhaseChunk, t1 = std::min(Tn, t0 + kPhaseChunk);
  const T* const dfinal = a.dfinal ? a.dfinal + b * HR : nullptr;
  T* const run = scratch.run.data();
  T* const acc = scratch.acc.data();
  std::fill(run, run + HR, T(0));
  std::fill(acc, acc + HR, T(0));

  simd::dispatch_full<T>(R, [&](auto full) {
    const T* phi = a.phi + (b * Tn + t0) * HR;
    for (int64_t t = t0; t < t1; ++t, phi += HR) {
      const int64_t row = b * Tn + t;
      T* const dphase = drows + (t - t0) * HR;
      const T* const dfinal_t = (t == Tn - 1) ? dfinal : nullptr;
      if (dq && !dq_out) std::fill_n(dq + row * HD, HD, T(0));
      if (dk && !dk_out) std::fill_n(dk + row * HD, HD, T(0));
      for (int64_t h = 0; h < H; ++h) {
        const int64_t at = row * HD + h * D;
        for (int64_t j = 0; j < R; j += W) {
          const int64_t n = decltype(full)::value ? W : std::min(W, R - j), x = h * R + j;
          const Batch<T> sum = simd::load_n(run + x, n) + simd::load_n(phi + x, n);
          simd::store_n(run + x, sum, n);
          const Batch<T> Phi = simd::load_n(P + x, n) + sum;
          const Batch<T> tau_j = simd::load_n(tau + j, n);
          Batch<T> s, cs;
          simd::sincos(tau_j * Phi, s, cs);
          Batch<T> dth_q(T(0)), dth_k(T(0));
          if (do_q)
            dth_q = simd::unrotate_pairs<L>(dq ? dq + at : nullptr, dq_out + at, q ? q + at : nullptr, R, j, n, cs, s);
          if (do_k)
            dth_k = simd::unrotate_pairs<L>(dk ? dk + at : nullptr, dk_out + at, k ? k + at : nullptr, R, j, n, cs, s);
          if (!need_dtheta) continue;
          const Batch<T> dth = dth_q + dth_k;
          if (need_suffix) {
            Batch<T> dPhi = tau_j * dth;
            if (dfinal_t) dPhi += simd::load_n(dfinal_t + x, n);
            simd::store_n(dphase + x, dPhi, n);
          }
          if (dtau) simd::store_n(acc + x, xsimd::fma(Phi, dth, simd::load_n(acc + x, n)), n);
        }
      }
    }

    if (!need_suffix) return;
    // Reverse running sum within the chunk, while its rows are still in cache:
    // run += dΦ_t, then dphi_t = run + G (or run alone, G added later by the caller).
    std::fill(run, run + HR, T(0));
    for (int64_t t = t1 - 1; t >= t0; --t) {
      T* const d = drows + (t - t0) * HR;
      for (int64_t i = 0; i < HR; i += W) {
        const int64_t n = decltype(full)::value ? W : std::min(W, HR - i);
        const Batch<T> r = simd::load_n(run + i, n) + simd::load_n(d + i, n);
        simd::store_n(run + i, r, n);
        simd::store_n(d + i, G ? r + simd::load_n(G + i, n) : r, n);
      }
    }
  });

  if (need_suffix) {
    if (G)
      std::copy_n(drows, HR, G);
    else
      std::copy_n(run, HR, total);
  }
  if (dtau) {
    std::fill(dtau, dtau + R, T(0));
    for (int64_t h = 0; h < H; ++h) add_rows(dtau, dtau, acc + h * R, R);
  }
}

template <RotaryLayout L, class T>
void backward_impl(const BackwardArgs<T>& a, T* dphi, T* dtemperature, T* doffset, const T* offset) {
  const RopeShape& sh = a.sh;
  const int64_t R = sh.D / 2, HR = sh.H * R, nc = num_chunks(sh.T), work = sh.B * sh.T * sh.H * sh.D;
  const std::vector<T> prefix = phase_prefixes(a.phi, offset, sh);
  auto P_at = [&](int64_t b, int64_t c) { return prefix.data() + (b * (nc + 1) + c) * HR; };
  // Φ⊙dθ partials per (sequence, chunk), reduced in a fixed order at the end.
  std::vector<T> dtau_parts(dtemperature ? size_t(sh.B * nc * R) : 0);
  auto dtau_at = [&](int64_t b, int64_t c) { return dtemperature ? dtau_parts.data() + (b * nc + c) * R : nullptr; };
  const bool scratch_rows = a.need_suffix && !dphi;
  auto drows_at = [&](int64_t b, int64_t c, BackwardScratch<T>& s) {
    return dphi ? dphi + (b * sh.T + c * kPhaseChunk) * HR : s.rows.data();
  };

  if (sh.B >= kBatchItems || nc < 2) {
    // One item per sequence: chunks last to first, carrying G = Σ of dΦ over later chunks.
    for_items(sh.B, work, [&](int64_t b) {
      BackwardScratch<T> scratch(HR, scratch_rows);
      std::vector<T> G(size_t(HR), T(0));
      for (int64_t c = nc - 1; c >= 0; --c)
        backward_chunk<L, T>(a, b, c, P_at(b, c), drows_at(b, c, scratch), a.need_suffix ? G.data() : nullptr, nullptr,
                             dtau_at(b, c), scratch);
      if (doffset) std::copy(G.begin(), G.end(), doffset + b * HR);
    });
  } else {
    // Few sequences: every chunk is an item; its rows get the carry G_{c+1} in a second pass.
    std::vector<T> G(a.need_suffix ? size_t(sh.B * (nc + 1) * HR) : 0, T(0));  // G[b][c] = Σ_{c' >= c} totals
    auto G_at = [&](int64_t b, int64_t c) { return G.data() + (b * (nc + 1) + c) * HR; };
    for_items(sh.B * nc, work, [&](int64_t item) {
      const int64_t b = item / nc, c = item % nc;
      BackwardScratch<T> scratch(HR, scratch_rows);
      backward_chunk<L, T>(a, b, c, P_at(b, c), drows_at(b, c, scratch), nullptr, a.need_suffix ? G_at(b, c) : nullptr,
                           dtau_at(b, c), scratch);
    });
    if (a.need_suffix) {
      for (int64_t b = 0; b < sh.B; ++b)
        for (int64_t c = nc - 1; c >= 0; --c) add_rows(G_at(b, c), G_at(b, c), G_at(b, c + 1), HR);
      if (dphi)
        for_items(sh.B * nc, sh.B * sh.T * HR, [&](int64_t item) {
          const int64_t b = item / nc, c = item % nc;
          const int64_t t1 = std::min(sh.T, (c + 1) * kPhaseChunk);
          for (int64_t t = c * kPhaseChunk; t < t1; ++t) {
            T* d = dphi + (b * sh.T + t) * HR;
            add_rows(d, d, G_at(b, c + 1), HR);
          }
        });
      if (doffset)
        for (int64_t b = 0; b < sh.B; ++b) std::copy_n(G_at(b, 0), HR, doffset + b * HR);
    }
  }

  if (dtemperature) {
    std::fill(dtemperature, dtemperature + R, T(0));
    for (int64_t b = 0; b < sh.B; ++b)
      for (int64_t c = 0; c < nc; ++c) add_rows(dtemperature, dtemperature, dtau_at(b, c), R);
  }
}

void check_selective(const char* op, const RopeShape& sh, const void* phi, const void* temperature) {
  simd::check_rope_shape(op, sh);
  ROTOR_CHECK(phi && temperature, op, "phi and temperature are required");
}

}  // namespace

template <class T>
void selective_rope_forward(T* q_out, T* k_out, T* final_offset, const T* q, const T* k, const T* phi,
                            const T* temperature, const T* offset, RopeShape shape, RotaryLayout layout) {
  const char* op = "selective_rope_forward";
  check_selective(op, shape, phi, temperature);
  ROTOR_CHECK(q && q_out, op, "q and q_out are required");
  ROTOR_CHECK(!k == !k_out, op, "k and k_out must both be given or both be null");
  const int64_t HR = shape.H * (shape.D / 2);
  if (shape.T == 0 || shape.H == 0) {
    if (final_offset) add_rows(final_offset, offset, static_cast<const T*>(nullptr), shape.B * HR);
    return;
  }
  const ForwardArgs<T> a{q_out, k_out, q, k, phi, temperature, shape};
  if (layout == RotaryLayout::HalfSplit)
    forward_impl<RotaryLayout::HalfSplit>(a, final_offset, offset);
  else
    forward_impl<RotaryLayout::Interleaved>(a, final_offset, offset);
}

template <class T>
void selective_rope_backward(T* dq, T* dk, T* dphi, T* dtemperature, T* doffset, const T* dq_out, const T* dk_out,
                             const T* dfinal_offset, const T* q, const T* k, const T* phi, const T* temperature,
                             const T* offset, RopeShape shape, RotaryLayout layout) {
  const char* op = "selective_rope_backward";
  check_selective(op, shape, phi, temperature);
  const bool need_dtheta = dphi || dtemperature || doffset;
  ROTOR_CHECK(!(need_dtheta && dq_out && !q), op, "q is required to differentiate the angles when dq_out is given");
  ROTOR_CHECK(!(need_dtheta && dk_out && !k), op, "k is required to differentiate the angles when dk_out is given");
  const int64_t R = shape.D / 2, HR = shape.H * R;
  if (shape.T == 0 || shape.H == 0) {
    if (dtemperature) std::fill(dtemperature, dtemperature + R, T(0));
    if (doffset) add_rows(doffset, dfinal_offset, static_cast<const T*>(nullptr), shape.B * HR);
    const int64_t n = shape.B * shape.T * shape.H * shape.D;
    if (dq) std::fill_n(dq, n, T(0));
    if (dk) std::fill_n(dk, n, T(0));
    return;
  }
  const BackwardArgs<T> a{dq, dk,  dq_out,      dk_out, dfinal_offset, q,
                          k,  phi, temperature, shape,  need_dtheta,   bool(dphi || doffset)};
  if (layout == RotaryLayout::HalfSplit)
    backward_impl<RotaryLayout::HalfSplit>(a, dphi, dtemperature, doffset, offset);
  else
    backward_impl<RotaryLayout::Interleaved>(a, dphi, dtemperature, doffset, offset);
}

// ---------------------------------------------------------------------------------------------
// Unfused references

template <class T>
void selective_rope_forward_reference(T* q_out, T* k_out, T* final_offset, const T* q, const T* k, const T* phi,
                                      const T* temperature, const T* offset, RopeShape sh, RotaryLayout layout) {
  check_selective("selective_rope_forward_reference", sh, phi, temperature);
  const int64_t R = sh.D / 2, HR = sh.H * R;
  std::vector<T> Phi(static_cast<size_t>(HR));
  for (int64_t b = 0; b < sh.B; ++b) {
    for (int64_t i = 0; i < HR; ++i) Phi[i] = offset ? offset[b * HR + i] : T(0);
    for (int64_t t = 0; t < sh.T; ++t)
      for (int64_t h = 0; h < sh.H; ++h)
        for (int64_t r = 0; r < R; ++r) {
          const int64_t row = b * sh.T + t;
          T& acc = Phi[h * R + r];
          acc += phi[row * HR + h * R + r];
          const T theta = temperature[r] * acc;
          const T c = std::cos(theta), s = std::sin(theta);
          const int64_t at = (row * sh.H + h) * sh.D;
          const int64_t ia = at + simd::re_index(layout, r), ib = at + simd::im_index(layout, R, r);
          for (int which = 0; which < 2; ++which) {
            const T* x = which ? k : q;
            T* out = which ? k_out : q_out;
            if (!x) continue;
            const T re = x[ia], im = x[ib];
            out[ia] = re * c - im * s;
            out[ib] = re * s + im * c;
          }
        }
    if (final_offset) std::copy(Phi.begin(), Phi.end(), final_offset + b * HR);
  }
}

template <class T>
void selective_rope_backward_reference(T* dq, T* dk, T* dphi, T* dtemperature, T* doffset, const T* dq_out,
                                       const T* dk_out, const T* dfinal_offset, const T* q, const T* k, const T* phi,
                                       const T* temperature, const T* offset, RopeShape sh, RotaryLayout layout) {
  check_selective("selective_rope_backward_reference", sh, phi, temperature);
  const int64_t R = sh.D / 2, HR = sh.H * R;
  std::vector<T> Phi(static_cast<size_t>(HR)), dPhi(static_cast<size_t>(sh.T * HR)), tmp(static_cast<size_t>(HR));
  if (dtemperature) std::fill(dtemperature, dtemperature + R, T(0));
  for (int64_t b = 0; b < sh.B; ++b) {
    for (int64_t i = 0; i < HR; ++i) Phi[i] = offset ? offset[b * HR + i] : T(0);
    for (int64_t t = 0; t < sh.T; ++t) {
      const int64_t row = b * sh.T + t;
      for (int64_t h = 0; h < sh.H; ++h)
        for (int64_t r = 0; r < R; ++r) {
          T& acc = Phi[h * R + r];
          acc += phi[row * HR + h * R + r];
          const T theta = temperature[r] * acc;
          const T c = std::cos(theta), s = std::sin(theta);
          const int64_t at = (row * sh.H + h) * sh.D;
          const int64_t ia = at + simd::re_index(layout, r), ib = at + simd::im_index(layout, R, r);
          T dtheta = 0;
          for (int which = 0; which < 2; ++which) {
            const T* g = which ? dk_out : dq_out;
            const T* x = which ? k : q;
            T* dx = which ? dk : dq;
            const T g0 = g ? g[ia] : T(0), g1 = g ? g[ib] : T(0);
            if (g && x) dtheta += g0 * (-x[ia] * s - x[ib] * c) + g1 * (x[ia] * c - x[ib] * s);
            if (dx) {
              dx[ia] = g0 * c + g1 * s;
              dx[ib] = -g0 * s + g1 * c;
            }
          }
          dPhi[t * HR + h * R + r] = temperature[r] * dtheta;
          if (dtemperature) dtemperature[r] += acc * dtheta;
        }
    }
    // Reverse running sum; the final-offset gradient enters at t = T-1.
    for (int64_t i = 0; i < HR; ++i) tmp[i] = dfinal_offset ? dfinal_offset[b * HR + i] : T(0);
    for (int64_t t = sh.T - 1; t >= 0; --t)
      for (int64_t i = 0; i < HR; ++i) {
        tmp[i] += dPhi[t * HR + i];
        if (dphi) dphi[(b * sh.T + t) * HR + i] = tmp[i];
      }
    if (doffset) std::copy(tmp.begin(), tmp.end(), doffset + b * HR);
  }
}

// ---------------------------------------------------------------------------------------------
// Temperatures

template <class T>
void rotary_temperature(T* temperature, TemperatureType type, double theta, int64_t D, double temp_max) {
  const char* op = "rotary_temperature";
  ROTOR_CHECK(D > 0 && D % 2 == 0, op, "D must be positive and even, got ", D);
  const int64_t R = D / 2;
  if (type == TemperatureType::Rope) {
    ROTOR_CHECK(theta >= 1.0, op, "the rope temperature needs theta >= 1, got ", theta);
    for (int64_t r = 0; r < R; ++r) temperature[r] = T(temp_max / std::pow(theta, double(2 * r) / double(D)));
    return;
  }
  ROTOR_CHECK(theta > 0.0 && theta < 1.0, op, "the rfa temperature needs 0 < theta < 1, got ", theta);
  ROTOR_CHECK(R >= 2, op, "the rfa temperature needs D >= 4 (its maximum is 0 for one pair), got D=", D);
  std::vector<double> t(static_cast<size_t>(R));
  const double pi = 3.14159265358979323846;
  for (int64_t r = 0; r < R; ++r) {
    const double w = theta * pi * double(r) / double(R - 1);
    t[r] = std::sqrt((1 - std::cos(w)) / (1 + std::cos(w)));
  }
  const double mx = *std::max_element(t.begin(), t.end());
  for (int64_t r = 0; r < R; ++r) temperature[r] = T(temp_max * t[r] / mx);
}

#define ROTOR_INSTANTIATE(T)                                                                                           \
  template void selective_rope_forward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, RopeShape,     \
                                          RotaryLayout);                                                               \
  template void selective_rope_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*,       \
                                           const T*, const T*, const T*, RopeShape, RotaryLayout);                     \
  template void selective_rope_forward_reference<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,      \
                                                    RopeShape, RotaryLayout);                                          \
  template void selective_rope_backward_reference<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*,       \
                                                     const T*, const T*, const T*, const T*, RopeShape, RotaryLayout); \
  template void rotary_temperature<T>(T*, TemperatureType, double, int64_t, double);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
