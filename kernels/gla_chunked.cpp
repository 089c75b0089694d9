// Chunked GLA (MATH.md §3): the sequence is cut into chunks of C steps. Inside a chunk, with
// b_i the within-chunk cumulative log-decay (b_i = g_0 + ... + g_i),
//
//     o_i = (scale q_i ⊙ exp(b_i)) S + sum_{j<=i} A_ij v_j,   A_ij = scale sum_k q_ik k_jk exp(b_ik - b_jk)
//     S  <- diag(exp b_last) S + sum_j (k_j ⊙ exp(b_last - b_j))^T v_j
//
// Every decay is exp of a difference b_i - b_j with i >= j, or a product of such factors, all <= 1:
// no division by a cumulative decay, so strong gates underflow harmlessly instead of overflowing.
// A is built in sub-blocks of kSub rows: the block of rows I against the columns before it is one
// GEMM of (q ⊙ exp(b - b_n)) and (k ⊙ exp(b_n - b)), n the first row of I; the diagonal sub-blocks
// are exact per-pair loops over running products of step decays.
//
// Parallel over sequences (b, h): one sequence is one task, so results do not depend on the
// thread count. The per-chunk GEMMs are small (<= C x max(K,V) x max(K,V)) and run on the calling
// thread inside OpenBLAS.
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

// Row-major C = alpha op(A) op(B) + beta C.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t Kd, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const auto oa = ta ? CblasTrans : CblasNoTrans, ob = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, oa, ob, int(M), int(N), int(Kd), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
  else
    cblas_dgemm(CblasRowMajor, oa, ob, int(M), int(N), int(Kd), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
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
  std::vector<T> b, step, qg, el, kl, lam, A, al, qs, be, ks, tmp, ebuf;
  Chunk(int64_t C_, int64_t K_, int64_t V_, T scale_)
      : C(C_), K(K_), V(V_), scale(scale_), b(C * K), step(C * K), qg(C * K), el(C * K),
        kl(C * K), lam(K), A(C * C), al(kSub * K), qs(kSub * K), be(C * K), ks(C * K),
        tmp(C * std::max(K, V)), ebuf(K) {}

  T* B_(int64_t i) { return &b[i * K]; }

  // b = cumsum(g), step_i = exp(b_i - b_{i-1}), el_i = exp(b_last - b_i), kl = k ⊙ el,
  // lam = exp(b_last). With `queries`, also qg = scale q ⊙ exp(b).
  void prepare(int64_t rows, Rows<const T> q, Rows<const T> k, Rows<const T> g, bool queries) {
    L = rows;
    for (int64_t i = 0; i < L; ++i) {
      T* bi = B_(i);
      if (i == 0) std::copy(g.row(0), g.row(0) + K, bi);
      else map(K, bi, [](auto prev, auto x) { return prev + x; }, B_(i - 1), g.row(i));
      if (i == 0) exp_row(K, &step[0], bi);
      else map(K, &step[i * K], [](auto x, auto y) { return xsimd::exp(x - y); }, bi, B_(i - 1));
    }
    const T* last = B_(L - 1);
    exp_row(K, lam.data(), last);
    for (int64_t i = 0; i < L; ++i) {
      map(K, &el[i * K], [](auto l, auto x) { return xsimd::exp(l - x); }, last, B_(i));
      map(K, &kl[i * K], [](auto e, auto x) { return e * x; }, &el[i * K], k.row(i));
      if (queries) {
        const T s = scale;
        map(K, &qg[i * K], [s](auto x, auto y) { return s * y * xsimd::exp(x); }, B_(i), q.row(i));
      }
    }
  }

  // For row block [n, e) with n >= 1: al = exp(b_i - b_n), qs = q ⊙ al (rows of the block) and
  // be = exp(b_n - b_j), ks = k ⊙ be (rows j < n).
  void off_diagonal_factors(int64_t n, int64_t e, Rows<const T> q, Rows<const T> k) {
    const T* bn = B_(n);
    for (int64_t i = n; i < e; ++i) {
      T* a = &al[(i - n) * K];
      map(K, a, [](auto x, auto y) { return xsimd::exp(x - y); }, B_(i), bn);
      map(K, &qs[(i - n) * K], [](auto x, auto y) { return x * y; }, a, q.row(i));
    }
    for (int64_t j = 0; j < n; ++j) {
      T* w = &be[j * K];
      map(K, w, [](auto x, auto y) { return xsimd::exp(x - y); }, bn, B_(j));
      map(K, &ks[j * K], [](auto x, auto y) { return x * y; }, w, k.row(j));
    }
  }

  // Row i of the diagonal sub-block starting at n: calls f(j, e) for j = i down to n, with
  // e = exp(b_i - b_j) as a running product of step decays in ebuf.
  template <class F>
  void diagonal_pairs(int64_t n, int64_t i, F&& f) {
    std::fill(ebuf.begin(), ebuf.end(), T(1));
    for (int64_t j = i; j >= n; --j) {
      f(j, ebuf.data());
      if (j > n) map(K, ebuf.data(), [](auto x, auto y) { return x * y; }, ebuf.data(), &step[j * K]);
    }
  }

  // A (L x L, leading dimension C, zero above the diagonal) for the prepared chunk.
  void scores(Rows<const T> q, Rows<const T> k) {
    std::fill(A.begin(), A.end(), T(0));
    for (int64_t n = 0; n < L; n += kSub) {
      const int64_t e = std::min(L, n + kSub);
      if (n > 0) {
        off_diagonal_factors(n, e, q, k);
        gemm<T>(false, true, e - n, n, K, scale, qs.data(), K, ks.data(), K, T(0), &A[n * C], C);
      }
      diagonal_scores(n, e, q, k);
    }
  }

  void diagonal_scores(int64_t n, int64_t e, Rows<const T> q, Rows<const T> k) {
    for (int64_t i = n; i < e; ++i) {
      const T* qi = q.row(i);
      diagonal_pairs(n, i, [&](int64_t j, const T* dec) {
        A[i * C + j] = scale * map_sum<T>(K, [](auto x, auto y, auto z) { return x * y * z; }, qi,
                                          k.row(j), dec);
      });
    }
  }
};

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
  gemm<T>(true, false, K, V, ch.L, T(1), ch.kl.data(), K, v.p, v.ld, T(1), S, V);
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
    Chunk<T> ch(C, K, V, scale);
    std::vector<T> S(K * V);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      copy_state(S.data(), h0 ? h0 + s.state() : nullptr, K * V);
      for (int64_t t0 = 0; t0 < d.T; t0 += C) {
        const int64_t L = std::min(C, d.T - t0);
        const Rows<const T> qr{q + s.x(t0, K), ldk}, kr{k + s.x(t0, K), ldk}, gr{g + s.x(t0, K), ldk},
            vr{v + s.x(t0, V), ldv};
        T* oc = o + s.x(t0, V);
        ch.prepare(L, qr, kr, gr, true);
        ch.scores(qr, kr);
        gemm<T>(false, false, L, V, K, T(1), ch.qg.data(), K, S.data(), V, T(0), oc, ldv);
        gemm<T>(false, false, L, V, L, T(1), ch.A.data(), C, vr.p, ldv, T(1), oc, ldv);
        advance_state(ch, S.data(), vr);
      }
      if (ht) std::copy(S.begin(), S.end(), ht + s.state());
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
    Chunk<T> ch(C, K, V, scale);
    // states[c] = state entering chunk c; states[nchunks] = final state.
    std::vector<T> states((nchunks + 1) * KV), dS(KV), dA(C * C), dqc(C * K), dkc(C * K), db(K);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      auto rows_at = [&](int64_t t0) {
        struct {
          Rows<const T> q, k, g, v, dout;
        } r{{q + s.x(t0, K), ldk}, {k + s.x(t0, K), ldk}, {g + s.x(t0, K), ldk}, {v + s.x(t0, V), ldv},
            {dout + s.x(t0, V), ldv}};
        return r;
      };
      copy_state(states.data(), h0 ? h0 + s.state() : nullptr, KV);
      for (int64_t c = 0; c < nchunks; ++c) {
        const int64_t t0 = c * C, L = std::min(C, d.T - t0);
        auto r = rows_at(t0);
        ch.prepare(L, r.q, r.k, r.g, false);
        std::copy(&states[c * KV], &states[(c + 1) * KV], &states[(c + 1) * KV]);
        advance_state(ch, &states[(c + 1) * KV], r.v);
      }
      copy_state(dS.data(), dht ? dht + s.state() : nullptr, KV);
      for (int64_t c = nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * C, L = std::min(C, d.T - t0);
        auto r = rows_at(t0);
        const T* S_in = &states[c * KV];
        const T* S_out = &states[(c + 1) * KV];
        ch.prepare(L, r.q, r.k, r.g, true);
        // dA = scale tril(do v^T): the gradient of the scores (scale folded in).
        gemm<T>(false, true, L, L, V, scale, r.dout.p, ldv, r.v.p, ldv, T(0), dA.data(), C);
        for (int64_t i = 0; i < L; ++i) std::fill(&dA[i * C + i + 1], &dA[i * C + L], T(0));
        // Inter-chunk parts: dq = scale exp(b) ⊙ (do S_in^T), dk = el ⊙ (v dS^T).
        gemm<T>(false, true, L, K, V, T(1), r.dout.p, ldv, S_in, V, T(0), dqc.data(), K);
        gemm<T>(false, true, L, K, V, T(1), r.v.p, ldv, dS.data(), V, T(0), dkc.data(), K);
        for (int64_t i = 0; i < L; ++i) {
          const T sc = scale;
          map(K, &dqc[i * K], [sc](auto x, auto bb) { return sc * x * xsimd::exp(bb); }, &dqc[i * K],
              ch.B_(i));
          map(K, &dkc[i * K], [](auto x, auto e) { return x * e; }, &dkc[i * K], &ch.el[i * K]);
        }
        // Intra-chunk parts, sub-block by sub-block, building A on the way.
        std::fill(ch.A.begin(), ch.A.end(), T(0));
        for (int64_t n = 0; n < L; n += kSub) {
          const int64_t e = std::min(L, n + kSub), m = e - n;
          if (n > 0) {
            ch.off_diagonal_factors(n, e, r.q, r.k);
            gemm<T>(false, true, m, n, K, scale, ch.qs.data(), K, ch.ks.data(), K, T(0), &ch.A[n * C], C);
            T* tmp = ch.tmp.data();
            gemm<T>(false, false, m, K, n, T(1), &dA[n * C], C, ch.ks.data(), K, T(0), tmp, K);
            for (int64_t i = n; i < e; ++i)
              map(K, &dqc[i * K], [](auto acc, auto x, auto a) { return acc + x * a; }, &dqc[i * K],
                  &tmp[(i - n) * K], &ch.al[(i - n) * K]);
            gemm<T>(true, false, n, K, m, T(1), &dA[n * C], C, ch.qs.data(), K, T(0), tmp, K);
            for (int64_t j = 0; j < n; ++j)
              map(K, &dkc[j * K], [](auto acc, auto x, auto w) { return acc + x * w; }, &dkc[j * K],
                  &tmp[j * K], &ch.be[j * K]);
          }
          for (int64_t i = n; i < e; ++i) {
            const T* qi = r.q.row(i);
            ch.diagonal_pairs(n, i, [&](int64_t j, const T* dec) {
              const T* kj = r.k.row(j);
              ch.A[i * C + j] =
                  scale * map_sum<T>(K, [](auto x, auto y, auto z) { return x * y * z; }, qi, kj, dec);
              const T w = dA[i * C + j];
              map(K, &dqc[i * K], [w](auto acc, auto x, auto z) { return acc + w * x * z; }, &dqc[i * K],
                  kj, dec);
              map(K, &dkc[j * K], [w](auto acc, auto x, auto z) { return acc + w * x * z; }, &dkc[j * K],
                  qi, dec);
            });
          }
        }
        // dv = A^T do + kl dS.
        T* dvc = dv + s.x(t0, V);
        gemm<T>(true, false, L, V, L, T(1), ch.A.data(), C, r.dout.p, ldv, T(0), dvc, ldv);
        gemm<T>(false, false, L, V, K, T(1), ch.kl.data(), K, dS.data(), V, T(1), dvc, ldv);
        // dg: reverse within-chunk cumsum of q ⊙ dq - k ⊙ dk, plus the chunk's output state term.
        for (int64_t i = 0; i < K; ++i)
          db[i] = map_sum<T>(V, [](auto x, auto y) { return x * y; }, &dS[i * V], S_out + i * V);
        for (int64_t i = L - 1; i >= 0; --i) {
          map(K, db.data(),
              [](auto acc, auto qq, auto gq, auto kk, auto gk) { return acc + qq * gq - kk * gk; },
              db.data(), r.q.row(i), &dqc[i * K], r.k.row(i), &dkc[i * K]);
          std::copy(db.begin(), db.end(), dg + s.x(t0 + i, K));
          std::copy(&dqc[i * K], &dqc[(i + 1) * K], dq + s.x(t0 + i, K));
          std::copy(&dkc[i * K], &dkc[(i + 1) * K], dk + s.x(t0 + i, K));
        }
        // dS <- diag(lam) dS + qg^T do: the gradient of the state entering this chunk.
        for (int64_t i = 0; i < K; ++i) {
          const T l = ch.lam[i];
          map(V, &dS[i * V], [l](auto x) { return l * x; }, &dS[i * V]);
        }
        gemm<T>(true, false, K, V, L, T(1), ch.qg.data(), K, r.dout.p, ldv, T(1), dS.data(), V);
      }
      if (dh0) std::copy(dS.begin(), dS.end(), dh0 + s.state());
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
