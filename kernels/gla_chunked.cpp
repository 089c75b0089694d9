// Chunked GLA (docs/gla.md): the sequence is cut into chunks of C steps. Inside a chunk, with
// b_i the within-chunk cumulative log-decay (b_i = g_0 + ... + g_i),
//
//     o_i = (scale q_i ⊙ exp(b_i)) S + sum_{j<=i} A_ij v_j,   A_ij = scale sum_k q_ik k_jk exp(b_ik - b_jk)
//     S  <- diag(exp b_last) S + sum_j (k_j ⊙ exp(b_last - b_j))^T v_j
//
// Every decay exp(b_i - b_j), i >= j, is evaluated as the product of the step decays exp(g_u),
// j < u <= i: factors <= 1, never a division by a cumulative decay, so strong gates underflow
// harmlessly instead of overflowing, and one exp per input element is all it costs.
// A is built in sub-blocks of kSub rows: the block of rows I against the columns before it is one
// GEMM of (q ⊙ exp(b - b_n)) and (k ⊙ exp(b_n - b)), n the first row of I, both factors <= 1;
// the diagonal sub-blocks are exact per-pair loops over running products of step decays.
//
// Two drivers over the same chunk steps: one task per sequence (b, h) when there are enough
// sequences, else the chunk states come from the chained blocked scan of kernels/scan.h and the
// chunks of one sequence run in parallel. Either way the work partition depends only on the sizes,
// so results are bit-identical on any number of threads. The per-chunk GEMMs are small and kept
// on the calling thread (serial_gemm). Backward needs the state entering every chunk: a forward
// given `saved` keeps them there; without it the backward recomputes them with the same
// arithmetic (so both ways give the same bits).
#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <cmath>

#include "rotor/kernels/blas.h"
#include "rotor/kernels/gla.h"
#include "rotor/kernels/gla_common.h"
#include "rotor/kernels/scan.h"

namespace rotor::kernels {
using namespace gla_simd;
using namespace gla_common;
namespace {

constexpr int64_t kSub = 16;

// Scratch for one chunk of up to C rows; every (rows x K) buffer has leading dimension K.
template <class T>
struct Chunk {
  int64_t C, K, V, L = 0;
  T scale;
  // step_i = exp(g_i); gam_i = exp(b_i); el_i = exp(b_last - b_i); lam = exp(b_last);
  // qg = scale q ⊙ gam; kl = k ⊙ el; A the intra-chunk scores; al, qs, be, ks the factors of one
  // off-diagonal row block, ksT = ks transposed (K x C); tmp a GEMM result.
  T *step, *gam, *el, *lam, *qg, *kl, *A, *al, *qs, *be, *ks, *ksT, *tmp;

  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C * K, C * K, C * K, K, C * K, C * K, C * C, kSub * K, kSub * K, C * K,
                                C * K, K * C, C * std::max(K, V));
  }
  Chunk(Scratch<T>& m, int64_t C_, int64_t K_, int64_t V_, T scale_)
      : C(C_), K(K_), V(V_), scale(scale_), step(m.take(C * K)), gam(m.take(C * K)), el(m.take(C * K)),
        lam(m.take(K)), qg(m.take(C * K)), kl(m.take(C * K)), A(m.take(C * C)), al(m.take(kSub * K)),
        qs(m.take(kSub * K)), be(m.take(C * K)), ks(m.take(C * K)), ksT(m.take(K * C)),
        tmp(m.take(C * std::max(K, V))) {}

  T* row(T* x, int64_t i) const { return x + i * K; }

  // The decays of a chunk of `rows` steps, kl, and with `queries` also qg. One pass forward in
  // time (step, gam, qg), one backward (el, kl).
  void prepare(int64_t rows, Rows<const T> q, Rows<const T> k, Rows<const T> g, bool queries) {
    L = rows;
    const T s = scale;
    for (int64_t i = 0; i < L; ++i) {
      const T *gi = g.row(i), *qi = q.row(i), *prev = i > 0 ? row(gam, i - 1) : nullptr;
      T *st = row(step, i), *ga = row(gam, i), *qo = row(qg, i);
      for (int64_t j = 0; j < K; j += width<T>) {
        const int64_t n = K - j;
        const Vec<T> e = xsimd::exp(load(gi + j, n));
        const Vec<T> c = i == 0 ? e : e * load(prev + j, n);
        store(st + j, e, n);
        store(ga + j, c, n);
        if (queries) store(qo + j, s * c * load(qi + j, n), n);
      }
    }
    std::copy(row(gam, L - 1), row(gam, L), lam);
    for (int64_t i = L - 1; i >= 0; --i) {
      const T *ki = k.row(i), *next = row(el, i + 1), *st = row(step, i + 1);  // unread when i = L-1
      T *e = row(el, i), *ko = row(kl, i);
      for (int64_t j = 0; j < K; j += width<T>) {
        const int64_t n = K - j;
        const Vec<T> c = i == L - 1 ? Vec<T>(T(1)) : load(next + j, n) * load(st + j, n);
        store(e + j, c, n);
        store(ko + j, c * load(ki + j, n), n);
      }
    }
  }

  // For the row block [n, e), n >= 1: al_i = exp(b_i - b_n), qs = q ⊙ al (rows of the block) and
  // be_j = exp(b_n - b_j), ks = k ⊙ be (rows j < n), and ks transposed into ksT: the block's
  // scores qs ksᵀ are then a plain product (OpenBLAS multiplies A·B up to twice as fast as A·Bᵀ
  // at these sizes).
  void off_diagonal_factors(int64_t n, int64_t e, Rows<const T> q, Rows<const T> k) {
    auto mul = [](auto x, auto y) { return x * y; };
    std::fill(al, al + K, T(1));
    for (int64_t i = n + 1; i < e; ++i) map(K, row(al, i - n), mul, row(al, i - n - 1), row(step, i));
    for (int64_t i = n; i < e; ++i) map(K, row(qs, i - n), mul, row(al, i - n), q.row(i));
    std::copy(row(step, n), row(step, n + 1), row(be, n - 1));
    for (int64_t j = n - 2; j >= 0; --j) map(K, row(be, j), mul, row(be, j + 1), row(step, j + 1));
    for (int64_t j = 0; j < n; ++j) map(K, row(ks, j), mul, row(be, j), k.row(j));
    transpose(ks, K, n, K, ksT, C);
  }

  // A (L x L, leading dimension C, zero above the diagonal) for the prepared chunk.
  void scores(Rows<const T> q, Rows<const T> k) {
    std::fill(A, A + C * C, T(0));
    for (int64_t n = 0; n < L; n += kSub) {
      const int64_t e = std::min(L, n + kSub);
      if (n > 0) {
        off_diagonal_factors(n, e, q, k);
        serial_gemm<T>(false, false, e - n, n, K, scale, qs, K, ksT, C, T(0), &A[n * C], C);
      }
      diagonal_block<false>(n, e, q, k, nullptr, Rows<T>{}, Rows<T>{});
    }
  }

  // The diagonal sub-block [n, e): A_ij = scale sum_k q_ik k_jk exp(b_ik - b_jk) for n <= j <= i,
  // exp(b_i - b_j) being a running product of step decays (all <= 1). With kGrad, also the score
  // gradient dA (scale folded in) pushed to dq_i += dA_ij k_j ⊙ exp(b_i - b_j) and
  // dk_j += dA_ij q_i ⊙ exp(b_i - b_j). Sums over k are kept per j, reduced once per row.
  template <bool kGrad>
  void diagonal_block(int64_t n, int64_t e, Rows<const T> q, Rows<const T> k, const T* dA, Rows<T> dq, Rows<T> dk) {
    constexpr int64_t W = width<T>;
    for (int64_t i = n; i < e; ++i) {
      Vec<T> acc[kSub];
      for (auto& a : acc) a = Vec<T>(T(0));
      const T* qi = q.row(i);
      for (int64_t kk = 0; kk < K; kk += W) {
        const int64_t nk = K - kk;
        const Vec<T> qv = load(qi + kk, nk);
        Vec<T> dec(T(1)), dqv(T(0));
        for (int64_t j = i; j >= n; --j) {
          const Vec<T> kd = load(k.row(j) + kk, nk) * dec;
          acc[j - n] = xsimd::fma(qv, kd, acc[j - n]);
          if constexpr (kGrad) {
            const Vec<T> w(dA[i * C + j]);
            dqv = xsimd::fma(w, kd, dqv);
            T* dkj = dk.row(j) + kk;
            store(dkj, xsimd::fma(w, qv * dec, load(dkj, nk)), nk);
          }
          dec *= load(step + j * K + kk, nk);
        }
        if constexpr (kGrad) store(dq.row(i) + kk, load(dq.row(i) + kk, nk) + dqv, nk);
      }
      for (int64_t j = n; j <= i; ++j) A[i * C + j] = scale * sum(acc[j - n]);
    }
  }
};

// S <- diag(v) S, S of K rows of length V.
template <class T>
void scale_rows(T* S, const T* v, int64_t K, int64_t V) {
  for (int64_t i = 0; i < K; ++i) {
    const T l = v[i];
    map(V, S + i * V, [l](auto x) { return l * x; }, S + i * V);
  }
}

// Arguments of one call, and the rows of sequence bh, chunk c in the strided (B,T,H,D) layouts.
// Backward-only pointers are null in the forward and the other way round.
template <class T>
struct Args {
  const GlaDims& d;
  int64_t C;
  T scale;
  const T *q, *k, *v, *g, *h0, *dout, *dht;
  T *o, *ht, *dq, *dk, *dv, *dg, *dh0;

  int64_t chunks() const { return (d.T + C - 1) / C; }
  int64_t rows(int64_t c) const { return std::min(C, d.T - c * C); }
  int64_t KV() const { return d.K * d.V; }
  template <class P>
  Rows<P> at(P* x, int64_t bh, int64_t c, int64_t D) const {
    return {x + Seq(d, bh).x(c * C, D), d.H * D};
  }
  int64_t state(int64_t bh) const { return bh * KV(); }
  // Prefetches the inputs of chunk c that a pass reads: k, g, v always, q and dout on request.
  void prefetch(int64_t bh, int64_t c, bool queries, bool grads) const {
    if (c < 0 || c >= chunks()) return;
    for (const T* x : {queries ? q : nullptr, k, g})
      if (x) prefetch_rows(at(x, bh, c, d.K).p, d.H * d.K, d.K, rows(c));
    for (const T* x : {v, grads ? dout : nullptr})
      if (x) prefetch_rows(at(x, bh, c, d.V).p, d.H * d.V, d.V, rows(c));
  }
};

// S <- diag(lam) S + kl^T v for a prepared chunk of L rows.
template <class T>
void update_state(const Chunk<T>& ch, int64_t L, Rows<const T> v, T* S) {
  scale_rows(S, ch.lam, ch.K, ch.V);
  serial_gemm<T>(true, false, ch.K, ch.V, L, T(1), ch.kl, ch.K, v.p, v.ld, T(1), S, ch.V);
}

// Forward of chunk c of sequence bh: o = qg S + A v, then S <- diag(lam) S + kl^T v unless the
// caller has no use for it (advance = false).
template <class T>
void forward_chunk(const Args<T>& a, Chunk<T>& ch, int64_t bh, int64_t c, T* S, bool advance = true) {
  const int64_t K = a.d.K, V = a.d.V, L = a.rows(c);
  const auto q = a.at(a.q, bh, c, K), k = a.at(a.k, bh, c, K), g = a.at(a.g, bh, c, K);
  const auto v = a.at(a.v, bh, c, V);
  const auto o = a.at(a.o, bh, c, V);
  ch.prepare(L, q, k, g, true);
  ch.scores(q, k);
  serial_gemm<T>(false, false, L, V, K, T(1), ch.qg, K, S, V, T(0), o.p, o.ld);
  // o += A v, row block by row block over the columns up to the block's end (A is lower triangular).
  for (int64_t n = 0; n < L; n += kSub) {
    const int64_t e = std::min(L, n + kSub);
    serial_gemm<T>(false, false, e - n, V, e, T(1), &ch.A[n * ch.C], ch.C, v.p, v.ld, T(1), o.row(n), o.ld);
  }
  if (advance) update_state(ch, L, v, S);
}

// S <- the state after chunk c, as forward_chunk computes it, without the outputs.
template <class T>
void advance_state(const Args<T>& a, Chunk<T>& ch, int64_t bh, int64_t c, T* S) {
  const int64_t K = a.d.K, V = a.d.V, L = a.rows(c);
  const auto k = a.at(a.k, bh, c, K), g = a.at(a.g, bh, c, K), v = a.at(a.v, bh, c, V);
  ch.prepare(L, k, k, g, false);
  update_state(ch, L, v, S);
}

// The state map of chunk c, S_out = diag(lam) S_in + U: writes lam (K) and U = kl^T v (K x V).
template <class T>
void chunk_state_map(const Args<T>& a, Chunk<T>& ch, int64_t bh, int64_t c, T* lam, T* U) {
  const int64_t K = a.d.K, V = a.d.V, L = a.rows(c);
  const auto k = a.at(a.k, bh, c, K), g = a.at(a.g, bh, c, K), v = a.at(a.v, bh, c, V);
  ch.prepare(L, k, k, g, false);
  std::copy(ch.lam, ch.lam + K, lam);
  serial_gemm<T>(true, false, K, V, L, T(1), ch.kl, K, v.p, v.ld, T(0), U, V);
}

// The state-gradient map of chunk c, dS_in = diag(lam) dS_out + W: writes lam and W = qg^T do.
template <class T>
void chunk_gradient_map(const Args<T>& a, Chunk<T>& ch, int64_t bh, int64_t c, T* lam, T* W) {
  const int64_t K = a.d.K, V = a.d.V, L = a.rows(c);
  const auto q = a.at(a.q, bh, c, K), k = a.at(a.k, bh, c, K), g = a.at(a.g, bh, c, K);
  const auto dout = a.at(a.dout, bh, c, V);
  ch.prepare(L, q, k, g, true);
  std::copy(ch.lam, ch.lam + K, lam);
  serial_gemm<T>(true, false, K, V, L, T(1), ch.qg, K, dout.p, dout.ld, T(0), W, V);
}

// Buffers of the chunk backward beyond Chunk's own. The products of rows with rows (do vᵀ,
// do S_inᵀ, v dSᵀ) take the second factor transposed: OpenBLAS's kernels multiply a row-major
// A·Bᵀ at about half the speed of A·B at these sizes (64 x 64 x 64: 92 against 157 GFLOP/s on
// one core).
template <class T>
struct BackwardScratch {
  T *dA, *db, *vT, *sT, *dsT;
  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C * C, K, V * C, K * V, K * V);
  }
  BackwardScratch(Scratch<T>& m, int64_t C, int64_t K, int64_t V)
      : dA(m.take(C * C)), db(m.take(K)), vT(m.take(V * C)), sT(m.take(K * V)), dsT(m.take(K * V)) {}
};

// Backward of chunk c of sequence bh, given the states entering (S_in) and leaving (S_out) it.
// On entry dS = dL/dS_out; on exit dL/dS_in. Writes dq, dk, dv, dg of the chunk's rows.
template <class T>
void backward_chunk(const Args<T>& a, Chunk<T>& ch, BackwardScratch<T>& w, int64_t bh, int64_t c,
                    const T* S_in, const T* S_out, T* dS) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C, L = a.rows(c);
  const T scale = a.scale;
  const auto q = a.at(a.q, bh, c, K), k = a.at(a.k, bh, c, K), g = a.at(a.g, bh, c, K);
  const auto v = a.at(a.v, bh, c, V);
  const auto dout = a.at(a.dout, bh, c, V);
  const auto dv = a.at(a.dv, bh, c, V);
  // dq and dk are accumulated in place, in the output rows.
  const auto dq = a.at(a.dq, bh, c, K), dk = a.at(a.dk, bh, c, K), dg = a.at(a.dg, bh, c, K);
  T *dA = w.dA, *db = w.db;
  ch.prepare(L, q, k, g, true);
  transpose(v.p, v.ld, L, V, w.vT, C);
  transpose(S_in, V, K, V, w.sT, K);
  transpose(dS, V, K, V, w.dsT, K);
  // dA = scale do v^T, the gradient of the scores (scale folded in), on and below the diagonal
  // sub-blocks only: entries above the diagonal are never read.
  for (int64_t n = 0; n < L; n += kSub) {
    const int64_t e = std::min(L, n + kSub);
    serial_gemm<T>(false, false, e - n, e, V, scale, dout.row(n), dout.ld, w.vT, C, T(0), &dA[n * C], C);
  }
  // Inter-chunk parts: dq = scale gam ⊙ (do S_in^T), dk = el ⊙ (v dS^T).
  serial_gemm<T>(false, false, L, K, V, T(1), dout.p, dout.ld, w.sT, K, T(0), dq.p, dq.ld);
  serial_gemm<T>(false, false, L, K, V, T(1), v.p, v.ld, w.dsT, K, T(0), dk.p, dk.ld);
  for (int64_t i = 0; i < L; ++i) {
    map(K, dq.row(i), [scale](auto x, auto e) { return scale * x * e; }, dq.row(i), ch.row(ch.gam, i));
    map(K, dk.row(i), [](auto x, auto e) { return x * e; }, dk.row(i), ch.row(ch.el, i));
  }
  // Intra-chunk parts, sub-block by sub-block, building A on the way.
  std::fill(ch.A, ch.A + C * C, T(0));
  for (int64_t n = 0; n < L; n += kSub) {
    const int64_t e = std::min(L, n + kSub), m = e - n;
    if (n > 0) {
      ch.off_diagonal_factors(n, e, q, k);
      serial_gemm<T>(false, false, m, n, K, scale, ch.qs, K, ch.ksT, C, T(0), &ch.A[n * C], C);
      // dq_I += al ⊙ (dA_I,<n ks), dk_<n += be ⊙ (dA_I,<n^T qs).
      serial_gemm<T>(false, false, m, K, n, T(1), &dA[n * C], C, ch.ks, K, T(0), ch.tmp, K);
      for (int64_t i = n; i < e; ++i)
        map(K, dq.row(i), [](auto acc, auto x, auto f) { return acc + x * f; }, dq.row(i),
            ch.row(ch.tmp, i - n), ch.row(ch.al, i - n));
      serial_gemm<T>(true, false, n, K, m, T(1), &dA[n * C], C, ch.qs, K, T(0), ch.tmp, K);
      for (int64_t j = 0; j < n; ++j)
        map(K, dk.row(j), [](auto acc, auto x, auto f) { return acc + x * f; }, dk.row(j),
            ch.row(ch.tmp, j), ch.row(ch.be, j));
    }
    ch.template diagonal_block<true>(n, e, q, k, dA, dq, dk);
  }
  // dv = kl dS + A^T do, the second by column block of A over the rows from the block's start.
  serial_gemm<T>(false, false, L, V, K, T(1), ch.kl, K, dS, V, T(0), dv.p, dv.ld);
  for (int64_t n = 0; n < L; n += kSub) {
    const int64_t e = std::min(L, n + kSub);
    serial_gemm<T>(true, false, e - n, V, L - n, T(1), &ch.A[n * C + n], C, dout.row(n), dout.ld, T(1),
                   dv.row(n), dv.ld);
  }
  // dg: reverse within-chunk cumsum of q ⊙ dq - k ⊙ dk, plus the output state's term dS ⊙ S_out.
  for (int64_t i = 0; i < K; ++i)
    db[i] = map_sum<T>(V, [](auto x, auto y) { return x * y; }, &dS[i * V], S_out + i * V);
  for (int64_t i = L - 1; i >= 0; --i)
    map(K, dg.row(i), [](auto acc, auto qq, auto gq, auto kk, auto gk) { return acc + qq * gq - kk * gk; },
        i == L - 1 ? db : dg.row(i + 1), q.row(i), dq.row(i), k.row(i), dk.row(i));
  // dS <- diag(lam) dS + qg^T do: the gradient of the state entering this chunk.
  scale_rows(dS, ch.lam, K, V);
  serial_gemm<T>(true, false, K, V, L, T(1), ch.qg, K, dout.p, dout.ld, T(1), dS, V);
}

// ---- sequence-parallel driver: one task per sequence (b, h) ----------------------------------

template <class T>
void forward_sequences(const Args<T>& a, T* saved) {
  const int64_t K = a.d.K, V = a.d.V, KV = K * V, nc = a.chunks();
  parallel_for(a.d.B * a.d.H, sequences_per_block(a.d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(a.C, K, V) + Scratch<T>::elements(KV));
    Chunk<T> ch(mem, a.C, K, V, a.scale);
    T* S = mem.take(KV);
    for (int64_t bh = lo; bh < hi; ++bh) {
      T* states = saved ? saved + bh * (nc + 1) * KV : nullptr;
      copy_state(S, a.h0 ? a.h0 + a.state(bh) : nullptr, KV);
      for (int64_t c = 0; c < nc; ++c) {
        a.prefetch(bh, c + 1, true, false);
        if (states) std::copy(S, S + KV, states + c * KV);
        forward_chunk(a, ch, bh, c, S);
      }
      if (states) std::copy(S, S + KV, states + nc * KV);
      if (a.ht) std::copy(S, S + KV, a.ht + a.state(bh));
    }
  });
}

template <class T>
void backward_sequences(const Args<T>& a, const T* saved) {
  const int64_t K = a.d.K, V = a.d.V, KV = K * V, nc = a.chunks();
  parallel_for(a.d.B * a.d.H, sequences_per_block(a.d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(a.C, K, V) + BackwardScratch<T>::elements(a.C, K, V) +
                   Scratch<T>::elements(saved ? 0 : (nc + 1) * KV, KV));
    Chunk<T> ch(mem, a.C, K, V, a.scale);
    BackwardScratch<T> w(mem, a.C, K, V);
    // states + c KV = state entering chunk c; states + nc KV = final state.
    T *local = saved ? nullptr : mem.take((nc + 1) * KV), *dS = mem.take(KV);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const T* states = saved ? saved + bh * (nc + 1) * KV : local;
      if (!saved) {  // the forward's state updates again, without the outputs
        copy_state(local, a.h0 ? a.h0 + a.state(bh) : nullptr, KV);
        for (int64_t c = 0; c < nc; ++c) {
          a.prefetch(bh, c + 1, false, false);
          T* S = local + (c + 1) * KV;
          std::copy(S - KV, S, S);
          advance_state(a, ch, bh, c, S);
        }
      }
      copy_state(dS, a.dht ? a.dht + a.state(bh) : nullptr, KV);
      for (int64_t c = nc - 1; c >= 0; --c) {
        a.prefetch(bh, c - 1, true, true);
        backward_chunk(a, ch, w, bh, c, states + c * KV, states + (c + 1) * KV, dS);
      }
      if (a.dh0) std::copy(dS, dS + KV, a.dh0 + a.state(bh));
    }
  });
}

// ---- chunk-parallel driver: few long sequences --------------------------------------------------
//
// The chunk maps S_out = diag(lam) S_in + U compose associatively, so the states come out of the
// chained blocked scan of kernels/scan.h (one chunk per block): each block first composes its own
// map, waits for the state its predecessor publishes, publishes its own, and then runs its chunks.
// That costs one extra state map per chunk, so it only pays when there are too few sequences.

constexpr int64_t kGlaSequencesNoSplit = 8;  // from this many sequences on, split by sequence

template <class T>
bool split_by_chunks(const Args<T>& a) {
  return a.d.B * a.d.H < kGlaSequencesNoSplit && a.chunks() >= 4;
}

inline ScanPlan chunk_plan(int64_t lanes, int64_t chunks, bool reverse) {
  ScanPlan p;
  p.lanes = lanes;
  p.steps = chunks;
  p.block = 1;
  p.nblocks = chunks;
  p.reverse = reverse;
  p.parallel = lanes * chunks > 1;
  return p;
}

// The state entering every chunk, states: (B*H, chunks+1, K, V) with the final state last.
// With `forward`, also the outputs o (and ht).
template <class T>
void chunk_scan_states(const Args<T>& a, T* states, bool forward) {
  const int64_t K = a.d.K, V = a.d.V, KV = K * V;
  const int64_t lanes = a.d.B * a.d.H, nc = a.chunks();
  auto initial = [&](int64_t bh) { return a.h0 ? a.h0 + a.state(bh) : nullptr; };
  auto scratch = [&] { return Scratch<T>(Chunk<T>::elements(a.C, K, V) + Scratch<T>::elements(KV, K, KV)); };
  // agg = [lam (K) | U (K V)] of one chunk; carry = the state after it.
  auto reduce = [&](int64_t bh, int64_t lo, int64_t, T* agg) {
    Scratch<T> mem = scratch();
    Chunk<T> ch(mem, a.C, K, V, a.scale);
    chunk_state_map(a, ch, bh, lo, agg, agg + K);
  };
  auto fold = [&](int64_t bh, const T* prev, const T* agg, T* next) {
    copy_state(next, prev ? prev : initial(bh), KV);
    scale_rows(next, agg, K, V);
    map(KV, next, [](auto x, auto u) { return x + u; }, next, agg + K);
  };
  // Only the last chunk needs its own state map: every other block's outgoing state is the carry
  // that the scan hands to the next block.
  // The final state comes from forward_chunk's own update (advance_state without outputs), so
  // that a forward keeping the states and a backward recomputing them agree bit for bit.
  auto rescan = [&](int64_t bh, int64_t lo, int64_t, const T* carry) {
    const bool last = lo == nc - 1;
    T* slot = states ? states + (bh * (nc + 1) + lo) * KV : nullptr;
    if (!forward && !last) {
      copy_state(slot, carry ? carry : initial(bh), KV);
      return;
    }
    Scratch<T> mem = scratch();
    Chunk<T> ch(mem, a.C, K, V, a.scale);
    T* S = slot ? slot : mem.take(KV);
    copy_state(S, carry ? carry : initial(bh), KV);
    if (!last) {
      forward_chunk(a, ch, bh, lo, S, false);
      return;
    }
    T* final_state = slot ? slot + KV : S;
    if (final_state != S) std::copy(S, S + KV, final_state);
    if (forward) forward_chunk(a, ch, bh, lo, final_state, true);
    else advance_state(a, ch, bh, lo, final_state);
    if (a.ht) std::copy(final_state, final_state + KV, a.ht + a.state(bh));
  };
  chained_scan<T, T>(chunk_plan(lanes, nc, false), KV, K + KV, reduce, fold, rescan);
}

template <class T>
void backward_chunks(const Args<T>& a, const T* saved) {
  const int64_t K = a.d.K, V = a.d.V, KV = K * V;
  const int64_t lanes = a.d.B * a.d.H, nc = a.chunks();
  Scratch<T> state_mem(Scratch<T>::elements(saved ? 0 : lanes * (nc + 1) * KV));
  const T* states = saved;
  if (!saved) {
    T* local = state_mem.take(size_t(lanes * (nc + 1) * KV));
    chunk_scan_states(a, local, false);
    states = local;
  }
  auto final_grad = [&](int64_t bh) { return a.dht ? a.dht + a.state(bh) : nullptr; };
  auto scratch = [&] {
    return Scratch<T>(Chunk<T>::elements(a.C, K, V) + BackwardScratch<T>::elements(a.C, K, V) +
                      Scratch<T>::elements(KV));
  };
  // Reverse scan of dS: agg = [lam | W] of one chunk, carry = dL/dS entering it.
  auto reduce = [&](int64_t bh, int64_t lo, int64_t, T* agg) {
    Scratch<T> mem = scratch();
    Chunk<T> ch(mem, a.C, K, V, a.scale);
    chunk_gradient_map(a, ch, bh, lo, agg, agg + K);
  };
  auto fold = [&](int64_t bh, const T* prev, const T* agg, T* next) {
    copy_state(next, prev ? prev : final_grad(bh), KV);
    scale_rows(next, agg, K, V);
    map(KV, next, [](auto x, auto u) { return x + u; }, next, agg + K);
  };
  auto rescan = [&](int64_t bh, int64_t lo, int64_t, const T* carry) {
    Scratch<T> mem = scratch();
    Chunk<T> ch(mem, a.C, K, V, a.scale);
    BackwardScratch<T> w(mem, a.C, K, V);
    T* dS = mem.take(KV);
    copy_state(dS, carry ? carry : final_grad(bh), KV);
    const T* S = states + (bh * (nc + 1) + lo) * KV;
    backward_chunk(a, ch, w, bh, lo, S, S + KV, dS);
    if (lo == 0 && a.dh0) std::copy(dS, dS + KV, a.dh0 + a.state(bh));
  };
  chained_scan<T, T>(chunk_plan(lanes, nc, true), KV, K + KV, reduce, fold, rescan);
}

void check_chunk(const GlaDims& d, int64_t chunk, const char* op) {
  check_dims(d, op);
  ROTOR_CHECK(chunk >= 1, op, "chunk size must be >= 1, got ", chunk);
}

}  // namespace

template <class T>
void gla_chunked_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                         const T* h0, T* o, T* ht, T scale, int64_t chunk, T* saved) {
  check_chunk(d, chunk, "gla_chunked_forward");
  const Args<T> a{d, chunk, scale, q, k, v, g, h0, nullptr, nullptr,
                  o, ht, nullptr, nullptr, nullptr, nullptr, nullptr};
  if (d.T == 0) {  // nothing to run: the final state is the initial one
    for (int64_t bh = 0; ht && bh < d.B * d.H; ++bh)
      copy_state(ht + a.state(bh), h0 ? h0 + a.state(bh) : nullptr, a.KV());
    return;
  }
  if (split_by_chunks(a)) chunk_scan_states<T>(a, saved, true);
  else forward_sequences(a, saved);
}

template <class T>
void gla_chunked_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                          const T* h0, const T* dout, const T* dht, T* dq, T* dk, T* dv, T* dg,
                          T* dh0, T scale, int64_t chunk, const T* saved) {
  check_chunk(d, chunk, "gla_chunked_backward");
  const Args<T> a{d, chunk, scale, q, k, v, g, h0, dout, dht, nullptr, nullptr, dq, dk, dv, dg, dh0};
  if (d.T == 0) {
    for (int64_t bh = 0; dh0 && bh < d.B * d.H; ++bh)
      copy_state(dh0 + a.state(bh), dht ? dht + a.state(bh) : nullptr, a.KV());
    return;
  }
  if (split_by_chunks(a)) backward_chunks(a, saved);
  else backward_sequences(a, saved);
}

int64_t gla_chunked_saved_size(const GlaDims& d, int64_t chunk) {
  check_chunk(d, chunk, "gla_chunked_saved_size");
  return d.B * d.H * ((d.T + chunk - 1) / chunk + 1) * d.K * d.V;
}

template void gla_chunked_forward<float>(const GlaDims&, const float*, const float*, const float*,
                                         const float*, const float*, float*, float*, float, int64_t, float*);
template void gla_chunked_forward<double>(const GlaDims&, const double*, const double*,
                                          const double*, const double*, const double*, double*,
                                          double*, double, int64_t, double*);
template void gla_chunked_backward<float>(const GlaDims&, const float*, const float*, const float*,
                                          const float*, const float*, const float*, const float*,
                                          float*, float*, float*, float*, float*, float, int64_t,
                                          const float*);
template void gla_chunked_backward<double>(const GlaDims&, const double*, const double*,
                                           const double*, const double*, const double*,
                                           const double*, const double*, double*, double*, double*,
                                           double*, double*, double, int64_t, const double*);

}  // namespace rotor::kernels
