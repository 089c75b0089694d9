// Chunked GLA (MATH.md §3): the sequence is cut into chunks of C steps. Inside a chunk, with
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
// Parallel over sequences (b, h): one sequence is one task, so results do not depend on the
// thread count. The per-chunk GEMMs are small and kept on the calling thread (see gemm below).
#include "kernels/gla_simd.h"  // first: its pragma must precede the intrinsics headers

#include <cblas.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/gla.h"
#include "kernels/gla_common.h"

namespace rotor::kernels {
using namespace gla_simd;
using namespace gla_common;
namespace {

constexpr int64_t kSub = 16;

// OpenBLAS hands a GEMM to its own thread pool once M*N*K exceeds 65536 * GEMM_MULTITHREAD_THRESHOLD
// (4 in Debian's build). Called from inside oneTBB tasks that oversubscribes the cores badly
// (measured: K = V = 128 forward+backward 10x slower on 2 threads than on 1), so every GEMM here is
// cut into column panels of at most this much work. Cutting along N leaves each element's sum unchanged.
constexpr int64_t kSerialGemmWork = int64_t(1) << 18;

// Row-major C = alpha op(A) op(B) + beta C, on the calling thread.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t Kd, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const auto oa = ta ? CblasTrans : CblasNoTrans, ob = tb ? CblasTrans : CblasNoTrans;
  const int64_t panel = std::max<int64_t>(1, kSerialGemmWork / std::max<int64_t>(1, M * Kd));
  for (int64_t n0 = 0; n0 < N; n0 += panel) {
    const int n = int(std::min(panel, N - n0));
    const T* Bp = B + (tb ? n0 * ldb : n0);
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, oa, ob, int(M), n, int(Kd), alpha, A, int(lda), Bp, int(ldb), beta, C + n0,
                  int(ldc));
    else
      cblas_dgemm(CblasRowMajor, oa, ob, int(M), n, int(Kd), alpha, A, int(lda), Bp, int(ldb), beta, C + n0,
                  int(ldc));
  }
}

// Views of one sequence's rows in the (B,T,H,D) layouts: row t at p + t * ld.
template <class T>
struct Rows {
  T* p;
  int64_t ld;
  T* row(int64_t t) const { return p + t * ld; }
};

// Scratch for one chunk of up to C rows; every (rows x K) buffer has leading dimension K.
template <class T>
struct Chunk {
  int64_t C, K, V, L = 0;
  T scale;
  // step_i = exp(g_i); gam_i = exp(b_i); el_i = exp(b_last - b_i); lam = exp(b_last);
  // qg = scale q ⊙ gam; kl = k ⊙ el; A the intra-chunk scores; al, qs, be, ks the factors of one
  // off-diagonal row block; tmp a GEMM result.
  T *step, *gam, *el, *lam, *qg, *kl, *A, *al, *qs, *be, *ks, *tmp;

  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C * K, C * K, C * K, K, C * K, C * K, C * C, kSub * K, kSub * K, C * K,
                                C * K, C * std::max(K, V));
  }
  Chunk(Scratch<T>& m, int64_t C_, int64_t K_, int64_t V_, T scale_)
      : C(C_), K(K_), V(V_), scale(scale_), step(m.take(C * K)), gam(m.take(C * K)), el(m.take(C * K)),
        lam(m.take(K)), qg(m.take(C * K)), kl(m.take(C * K)), A(m.take(C * C)), al(m.take(kSub * K)),
        qs(m.take(kSub * K)), be(m.take(C * K)), ks(m.take(C * K)), tmp(m.take(C * std::max(K, V))) {}

  T* row(T* x, int64_t i) const { return x + i * K; }

  // The decays of a chunk of `rows` steps, kl, and with `queries` also qg.
  void prepare(int64_t rows, Rows<const T> q, Rows<const T> k, Rows<const T> g, bool queries) {
    L = rows;
    auto mul = [](auto x, auto y) { return x * y; };
    for (int64_t i = 0; i < L; ++i) {
      exp_row(K, row(step, i), g.row(i));
      if (i == 0) std::copy(step, step + K, gam);
      else map(K, row(gam, i), mul, row(gam, i - 1), row(step, i));
    }
    std::copy(row(gam, L - 1), row(gam, L), lam);
    std::fill(row(el, L - 1), row(el, L), T(1));
    for (int64_t i = L - 2; i >= 0; --i) map(K, row(el, i), mul, row(el, i + 1), row(step, i + 1));
    const T s = scale;
    for (int64_t i = 0; i < L; ++i) {
      map(K, row(kl, i), mul, row(el, i), k.row(i));
      if (queries) map(K, row(qg, i), [s](auto x, auto y) { return s * x * y; }, row(gam, i), q.row(i));
    }
  }

  // For the row block [n, e), n >= 1: al_i = exp(b_i - b_n), qs = q ⊙ al (rows of the block) and
  // be_j = exp(b_n - b_j), ks = k ⊙ be (rows j < n).
  void off_diagonal_factors(int64_t n, int64_t e, Rows<const T> q, Rows<const T> k) {
    auto mul = [](auto x, auto y) { return x * y; };
    std::fill(al, al + K, T(1));
    for (int64_t i = n + 1; i < e; ++i) map(K, row(al, i - n), mul, row(al, i - n - 1), row(step, i));
    for (int64_t i = n; i < e; ++i) map(K, row(qs, i - n), mul, row(al, i - n), q.row(i));
    std::copy(row(step, n), row(step, n + 1), row(be, n - 1));
    for (int64_t j = n - 2; j >= 0; --j) map(K, row(be, j), mul, row(be, j + 1), row(step, j + 1));
    for (int64_t j = 0; j < n; ++j) map(K, row(ks, j), mul, row(be, j), k.row(j));
  }

  // A (L x L, leading dimension C, zero above the diagonal) for the prepared chunk.
  void scores(Rows<const T> q, Rows<const T> k) {
    std::fill(A, A + C * C, T(0));
    for (int64_t n = 0; n < L; n += kSub) {
      const int64_t e = std::min(L, n + kSub);
      if (n > 0) {
        off_diagonal_factors(n, e, q, k);
        gemm<T>(false, true, e - n, n, K, scale, qs, K, ks, K, T(0), &A[n * C], C);
      }
      diagonal_block<false>(n, e, q, k, nullptr, nullptr, nullptr);
    }
  }

  // The diagonal sub-block [n, e): A_ij = scale sum_k q_ik k_jk exp(b_ik - b_jk) for n <= j <= i,
  // exp(b_i - b_j) being a running product of step decays (all <= 1). With kGrad, also the score
  // gradient dA (scale folded in) pushed to dq_i += dA_ij k_j ⊙ exp(b_i - b_j) and
  // dk_j += dA_ij q_i ⊙ exp(b_i - b_j). Sums over k are kept per j, reduced once per row.
  template <bool kGrad>
  void diagonal_block(int64_t n, int64_t e, Rows<const T> q, Rows<const T> k, const T* dA, T* dq, T* dk) {
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
            T* dkj = dk + j * K + kk;
            store(dkj, xsimd::fma(w, qv * dec, load(dkj, nk)), nk);
          }
          dec *= load(step + j * K + kk, nk);
        }
        if constexpr (kGrad) store(dq + i * K + kk, load(dq + i * K + kk, nk) + dqv, nk);
      }
      for (int64_t j = n; j <= i; ++j) A[i * C + j] = scale * sum(acc[j - n]);
    }
  }
};

// Asks for rows [t0, t1) of a strided view ahead of use: a sequence's rows are H*D apart, a
// pattern the hardware prefetchers pick up late.
template <class T>
void prefetch_rows(const T* p, int64_t ld, int64_t D, int64_t rows) {
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t j = 0; j < D; j += 64 / int64_t(sizeof(T))) __builtin_prefetch(p + t * ld + j);
}

template <class T>
void copy_state(T* dst, const T* src, int64_t n) {
  if (src) std::copy(src, src + n, dst);
  else std::fill(dst, dst + n, T(0));
}

// S <- diag(lam) S + kl^T v for the prepared chunk.
template <class T>
void advance_state(Chunk<T>& ch, T* S, Rows<const T> v) {
  const int64_t K = ch.K, V = ch.V;
  for (int64_t i = 0; i < K; ++i) {
    const T l = ch.lam[i];
    map(V, S + i * V, [l](auto x) { return l * x; }, S + i * V);
  }
  gemm<T>(true, false, K, V, ch.L, T(1), ch.kl, K, v.p, v.ld, T(1), S, V);
}

void check_chunk(const GlaDims& d, int64_t chunk, const char* op) {
  check_dims(d, op);
  ROTOR_CHECK(chunk >= 1, op, "chunk size must be >= 1, got ", chunk);
}

}  // namespace

template <class T>
void gla_chunked_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                         const T* h0, T* o, T* ht, T scale, int64_t chunk) {
  check_chunk(d, chunk, "gla_chunked_forward");
  const int64_t K = d.K, V = d.V, C = chunk, ldk = d.H * K, ldv = d.H * V;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(C, K, V) + Scratch<T>::elements(K * V));
    Chunk<T> ch(mem, C, K, V, scale);
    T* S = mem.take(K * V);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      copy_state(S, h0 ? h0 + s.state() : nullptr, K * V);
      for (int64_t t0 = 0; t0 < d.T; t0 += C) {
        const int64_t L = std::min(C, d.T - t0);
        const Rows<const T> qr{q + s.x(t0, K), ldk}, kr{k + s.x(t0, K), ldk}, gr{g + s.x(t0, K), ldk},
            vr{v + s.x(t0, V), ldv};
        T* oc = o + s.x(t0, V);
        if (t0 + C < d.T) {
          const int64_t next = std::min(C, d.T - t0 - C);
          for (const T* x : {q, k, g}) prefetch_rows(x + s.x(t0 + C, K), ldk, K, next);
          prefetch_rows(v + s.x(t0 + C, V), ldv, V, next);
        }
        ch.prepare(L, qr, kr, gr, true);
        ch.scores(qr, kr);
        gemm<T>(false, false, L, V, K, T(1), ch.qg, K, S, V, T(0), oc, ldv);
        gemm<T>(false, false, L, V, L, T(1), ch.A, C, vr.p, ldv, T(1), oc, ldv);
        advance_state(ch, S, vr);
      }
      if (ht) std::copy(S, S + K * V, ht + s.state());
    }
  });
}

template <class T>
void gla_chunked_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                          const T* h0, const T* dout, const T* dht, T* dq, T* dk, T* dv, T* dg,
                          T* dh0, T scale, int64_t chunk) {
  check_chunk(d, chunk, "gla_chunked_backward");
  const int64_t K = d.K, V = d.V, KV = K * V, C = chunk, ldk = d.H * K, ldv = d.H * V;
  const int64_t nchunks = (d.T + C - 1) / C;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(C, K, V) +
                   Scratch<T>::elements((nchunks + 1) * KV, KV, C * C, C * K, C * K, K));
    Chunk<T> ch(mem, C, K, V, scale);
    // states + c KV = state entering chunk c; states + nchunks KV = final state.
    T *states = mem.take((nchunks + 1) * KV), *dS = mem.take(KV), *dA = mem.take(C * C),
      *dqc = mem.take(C * K), *dkc = mem.take(C * K), *db = mem.take(K);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      auto rows_at = [&](int64_t t0) {
        struct {
          Rows<const T> q, k, g, v, dout;
        } r{{q + s.x(t0, K), ldk}, {k + s.x(t0, K), ldk}, {g + s.x(t0, K), ldk}, {v + s.x(t0, V), ldv},
            {dout + s.x(t0, V), ldv}};
        return r;
      };
      copy_state(states, h0 ? h0 + s.state() : nullptr, KV);
      for (int64_t c = 0; c < nchunks; ++c) {
        const int64_t t0 = c * C, L = std::min(C, d.T - t0);
        auto r = rows_at(t0);
        if (t0 + C < d.T) {
          const int64_t next = std::min(C, d.T - t0 - C);
          for (const T* x : {k, g}) prefetch_rows(x + s.x(t0 + C, K), ldk, K, next);
          prefetch_rows(v + s.x(t0 + C, V), ldv, V, next);
        }
        ch.prepare(L, r.q, r.k, r.g, false);
        std::copy(&states[c * KV], &states[(c + 1) * KV], &states[(c + 1) * KV]);
        advance_state(ch, &states[(c + 1) * KV], r.v);
      }
      copy_state(dS, dht ? dht + s.state() : nullptr, KV);
      for (int64_t c = nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * C, L = std::min(C, d.T - t0);
        auto r = rows_at(t0);
        if (c > 0) {
          for (const T* x : {q, k, g}) prefetch_rows(x + s.x(t0 - C, K), ldk, K, C);
          for (const T* x : {v, dout}) prefetch_rows(x + s.x(t0 - C, V), ldv, V, C);
        }
        const T* S_in = &states[c * KV];
        const T* S_out = &states[(c + 1) * KV];
        ch.prepare(L, r.q, r.k, r.g, true);
        // dA = scale tril(do v^T): the gradient of the scores (scale folded in).
        gemm<T>(false, true, L, L, V, scale, r.dout.p, ldv, r.v.p, ldv, T(0), dA, C);
        for (int64_t i = 0; i < L; ++i) std::fill(&dA[i * C + i + 1], &dA[i * C + L], T(0));
        // Inter-chunk parts: dq = scale exp(b) ⊙ (do S_in^T), dk = el ⊙ (v dS^T).
        gemm<T>(false, true, L, K, V, T(1), r.dout.p, ldv, S_in, V, T(0), dqc, K);
        gemm<T>(false, true, L, K, V, T(1), r.v.p, ldv, dS, V, T(0), dkc, K);
        for (int64_t i = 0; i < L; ++i) {
          const T sc = scale;
          map(K, &dqc[i * K], [sc](auto x, auto e) { return sc * x * e; }, &dqc[i * K], ch.row(ch.gam, i));
          map(K, &dkc[i * K], [](auto x, auto e) { return x * e; }, &dkc[i * K], ch.row(ch.el, i));
        }
        // Intra-chunk parts, sub-block by sub-block, building A on the way.
        std::fill(ch.A, ch.A + C * C, T(0));
        for (int64_t n = 0; n < L; n += kSub) {
          const int64_t e = std::min(L, n + kSub), m = e - n;
          if (n > 0) {
            ch.off_diagonal_factors(n, e, r.q, r.k);
            gemm<T>(false, true, m, n, K, scale, ch.qs, K, ch.ks, K, T(0), &ch.A[n * C], C);
            T* tmp = ch.tmp;
            gemm<T>(false, false, m, K, n, T(1), &dA[n * C], C, ch.ks, K, T(0), tmp, K);
            for (int64_t i = n; i < e; ++i)
              map(K, &dqc[i * K], [](auto acc, auto x, auto a) { return acc + x * a; }, &dqc[i * K],
                  &tmp[(i - n) * K], &ch.al[(i - n) * K]);
            gemm<T>(true, false, n, K, m, T(1), &dA[n * C], C, ch.qs, K, T(0), tmp, K);
            for (int64_t j = 0; j < n; ++j)
              map(K, &dkc[j * K], [](auto acc, auto x, auto w) { return acc + x * w; }, &dkc[j * K],
                  &tmp[j * K], &ch.be[j * K]);
          }
          ch.template diagonal_block<true>(n, e, r.q, r.k, dA, dqc, dkc);
        }
        // dv = A^T do + kl dS.
        T* dvc = dv + s.x(t0, V);
        gemm<T>(true, false, L, V, L, T(1), ch.A, C, r.dout.p, ldv, T(0), dvc, ldv);
        gemm<T>(false, false, L, V, K, T(1), ch.kl, K, dS, V, T(1), dvc, ldv);
        // dg: reverse within-chunk cumsum of q ⊙ dq - k ⊙ dk, plus the chunk's output state term.
        for (int64_t i = 0; i < K; ++i)
          db[i] = map_sum<T>(V, [](auto x, auto y) { return x * y; }, &dS[i * V], S_out + i * V);
        for (int64_t i = L - 1; i >= 0; --i) {
          map(K, db,
              [](auto acc, auto qq, auto gq, auto kk, auto gk) { return acc + qq * gq - kk * gk; },
              db, r.q.row(i), &dqc[i * K], r.k.row(i), &dkc[i * K]);
          std::copy(db, db + K, dg + s.x(t0 + i, K));
          std::copy(&dqc[i * K], &dqc[(i + 1) * K], dq + s.x(t0 + i, K));
          std::copy(&dkc[i * K], &dkc[(i + 1) * K], dk + s.x(t0 + i, K));
        }
        // dS <- diag(lam) dS + qg^T do: the gradient of the state entering this chunk.
        for (int64_t i = 0; i < K; ++i) {
          const T l = ch.lam[i];
          map(V, &dS[i * V], [l](auto x) { return l * x; }, &dS[i * V]);
        }
        gemm<T>(true, false, K, V, L, T(1), ch.qg, K, r.dout.p, ldv, T(1), dS, V);
      }
      if (dh0) std::copy(dS, dS + KV, dh0 + s.state());
    }
  });
}

template void gla_chunked_forward<float>(const GlaDims&, const float*, const float*, const float*,
                                         const float*, const float*, float*, float*, float, int64_t);
template void gla_chunked_forward<double>(const GlaDims&, const double*, const double*,
                                          const double*, const double*, const double*, double*,
                                          double*, double, int64_t);
template void gla_chunked_backward<float>(const GlaDims&, const float*, const float*, const float*,
                                          const float*, const float*, const float*, const float*,
                                          float*, float*, float*, float*, float*, float, int64_t);
template void gla_chunked_backward<double>(const GlaDims&, const double*, const double*,
                                           const double*, const double*, const double*,
                                           const double*, const double*, double*, double*, double*,
                                           double*, double*, double, int64_t);

}  // namespace rotor::kernels
