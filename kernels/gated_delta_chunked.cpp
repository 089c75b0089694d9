// Chunked gated delta rule (docs/gated_deltanet.md), the WY/UT form. Per chunk of L <= C rows with
// incoming state S (K x V), b_i = g_0 + ... + g_i the within-chunk cumulative log-decay (float64),
// gam_i = exp(b_i), lam_i = exp(b_{L-1} - b_i) and Gam_ij = exp(b_i - b_j) for j <= i (0 above):
//
//     M = I + strict_tril(diag(beta) (K K^T ⊙ Gam))          unit lower triangular, L x L
//     W = M^-1 diag(beta) (gam ⊙ K),  U = M^-1 diag(beta) V  (M^-1 by forward substitution)
//     D = U - W S                                            the values actually written
//     O = (scale gam ⊙ Q) S + (scale Q K^T ⊙ Gam) D
//     S <- gam_{L-1} S + (lam ⊙ K)^T D
//
// Every exponent is a difference b_i - b_j with j <= i, or b_i, or b_{L-1} - b_i: all <= 0.
// Backward walks the chunks last to first with the incoming state, M^-1, [W | U] and D of each
// chunk, kept by the forward (or recomputed by a first pass), and everything else recomputed.
// Parallel over sequences (b, h); the small GEMMs stay on the calling thread, so
// results are bit-identical on any number of threads.
#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <cmath>
#include <vector>

#include "rotor/kernels/gated_delta.h"
#include "rotor/kernels/gla_common.h"

namespace rotor::kernels {
using namespace gla_simd;
using namespace gla_common;
namespace {

template <class T>
T dot(int64_t n, const T* x, const T* y) {
  return map_sum<T>(n, [](auto a, auto b) { return a * b; }, x, y);
}

// Arguments of one call, and the rows of sequence bh, chunk c in the strided layouts.
template <class T>
struct Args {
  const GlaDims& d;
  int64_t C;
  T scale;
  const T *q, *k, *v, *g, *beta, *h0, *dout, *dht;
  T *o, *ht, *dq, *dk, *dv, *dg, *dbeta, *dh0;

  int64_t chunks() const { return (d.T + C - 1) / C; }
  int64_t rows(int64_t c) const { return std::min(C, d.T - c * C); }
  int64_t KV() const { return d.K * d.V; }
  template <class P>
  Rows<P> at(P* x, int64_t bh, int64_t c, int64_t D) const {
    return {x + Seq(d, bh).x(c * C, D), d.H * D};
  }
  int64_t state(int64_t bh) const { return bh * KV(); }
  // Prefetches the inputs of chunk c (and with `grads` the output gradient) into L2.
  void prefetch(int64_t bh, int64_t c, bool grads) const {
    if (c < 0 || c >= chunks()) return;
    for (const T* x : {q, k}) prefetch_rows(at(x, bh, c, d.K).p, d.H * d.K, d.K, rows(c));
    for (const T* x : {v, grads ? dout : nullptr})
      if (x) prefetch_rows(at(x, bh, c, d.V).p, d.H * d.V, d.V, rows(c));
  }
};

template <class T>
struct Inputs {
  Rows<const T> q, k, v, g, beta;
};

template <class T>
Inputs<T> inputs(const Args<T>& a, int64_t bh, int64_t c) {
  const int64_t K = a.d.K, V = a.d.V;
  return {a.at(a.q, bh, c, K), a.at(a.k, bh, c, K), a.at(a.v, bh, c, V), a.at(a.g, bh, c, 1),
          a.at(a.beta, bh, c, 1)};
}

// What the backward needs of chunk c of one sequence: the state S (K x V) entering it and its
// written values D (L x V) as one block SD = [S; D] ((K + C) x V), so that O = [qg | Sc] SD is one
// product; Minv (C x C); and W, U as one block WU = [W | U] (C x (K + V)), so that
// WU = Minv [kb | vb] is one product. A sequence's chunks lie one after the other.
struct ChunkStore {
  int64_t C, K, V;
  int64_t sd() const { return (K + C) * V; }
  int64_t per_chunk() const { return sd() + C * C + C * (K + V); }
  template <class T>
  T* SD(T* base, int64_t c) const { return base + c * per_chunk(); }
  template <class T>
  T* Minv(T* base, int64_t c) const { return SD(base, c) + sd(); }
  template <class T>
  T* WU(T* base, int64_t c) const { return Minv(base, c) + C * C; }
};

// Scratch of one chunk of up to C rows. Layouts (row-major):
//   Gam (C x C)      exp(b_i - b_j) on and below the diagonal, 0 above
//   KQ  (2C x K)     rows [0, L) k, rows [L, 2L) q (contiguous copies of the strided inputs)
//   KQK (2C x C)     rows [0, L) K K^T, rows [L, 2L) Q K^T
//   A   (C x C)      beta_i Gam_ij KK_ij below the diagonal, 0 elsewhere
//   QS  (C x (K+C))  [qg | Sc]: qg = scale gam ⊙ q, Sc = scale Q K^T ⊙ Gam
//   KVb (C x (K+V))  [kb | vb]: kb = beta gam ⊙ k, vb = beta ⊙ v
//   kl  (C x K)      lam ⊙ k
template <class T>
struct Chunk {
  int64_t C, K, V, L = 0;
  T scale;
  std::vector<double> b;  // cumulative log-decay
  T *gam, *lam, *Gam, *KQ, *KQK, *A, *QS, *KVb, *kl;

  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C, C, C * C, 2 * C * K, 2 * C * C, C * C, C * (K + C), C * (K + V), C * K);
  }
  Chunk(Scratch<T>& m, int64_t C_, int64_t K_, int64_t V_, T scale_)
      : C(C_), K(K_), V(V_), scale(scale_), b(size_t(C_)), gam(m.take(C)), lam(m.take(C)), Gam(m.take(C * C)),
        KQ(m.take(2 * C * K)), KQK(m.take(2 * C * C)), A(m.take(C * C)), QS(m.take(C * (K + C))),
        KVb(m.take(C * (K + V))), kl(m.take(C * K)) {}

  int64_t ldqs() const { return K + C; }
  int64_t ldkv() const { return K + V; }
  const T* k_row(int64_t i) const { return KQ + i * K; }
  const T* q_row(int64_t i) const { return KQ + (L + i) * K; }
  // Columns [0, n) that a loop over j <= i of row i touches: i + 1 rounded up to whole SIMD
  // batches (no partial loads), but never beyond L, the columns this chunk has written.
  int64_t through(int64_t i) const { return std::min(L, (i + width<T>) / width<T> * width<T>); }

  // Everything of a chunk of `rows` steps that does not depend on the incoming state; the query
  // side (Q K^T, QS) only with `queries`.
  void prepare(int64_t rows, const Inputs<T>& in, bool queries) {
    L = rows;
    double acc = 0;
    for (int64_t i = 0; i < L; ++i) b[size_t(i)] = acc += double(*in.g.row(i));
    for (int64_t i = 0; i < L; ++i) {
      gam[i] = std::exp(T(b[size_t(i)]));
      lam[i] = std::exp(T(b[size_t(L - 1)] - b[size_t(i)]));
      T* r = Gam + i * C;
      const int64_t n = through(i);
      for (int64_t j = 0; j < n; ++j) r[j] = j <= i ? T(b[size_t(i)] - b[size_t(j)]) : T(0);
      map(n, r, [](auto x) { return xsimd::exp(x); }, r);
      std::fill(r + i + 1, r + L, T(0));
    }
    for (int64_t i = 0; i < L; ++i) {
      std::copy(in.k.row(i), in.k.row(i) + K, KQ + i * K);
      if (queries) std::copy(in.q.row(i), in.q.row(i) + K, KQ + (L + i) * K);
    }
    // K K^T on its own (not stacked with Q K^T): the same call with or without queries, so the
    // forward and the backward's recomputation agree bit for bit.
    serial_gemm<T>(false, true, L, L, K, T(1), KQ, K, KQ, K, T(0), KQK, C);
    if (queries) serial_gemm<T>(false, true, L, L, K, T(1), q_row(0), K, KQ, K, T(0), KQK + L * C, C);
    for (int64_t i = 0; i < L; ++i) {
      const T bi = *in.beta.row(i), bg = bi * gam[i], li = lam[i];
      T* r = A + i * C;
      map(through(i), r, [bi](auto x, auto y) { return bi * x * y; }, Gam + i * C, KQK + i * C);
      std::fill(r + i, r + L, T(0));
      T* kv = KVb + i * ldkv();
      map(K, kv, [bg](auto x) { return bg * x; }, k_row(i));
      map(V, kv + K, [bi](auto x) { return bi * x; }, in.v.row(i));
      map(K, kl + i * K, [li](auto x) { return li * x; }, k_row(i));
      if (!queries) continue;
      const T s = scale * gam[i], sc = scale;
      T* qs = QS + i * ldqs();
      map(K, qs, [s](auto x) { return s * x; }, q_row(i));
      map(L, qs + K, [sc](auto x, auto y) { return sc * x * y; }, KQK + (L + i) * C, Gam + i * C);
    }
  }

  // Minv = (I + A)^-1 by forward substitution: row i is e_i - sum_{m<i} A_im (row m of Minv).
  // Row m is zero beyond column m, so each update runs over the batches up to column m.
  void solve(T* Minv) const {
    for (int64_t i = 0; i < L; ++i) {
      T* r = Minv + i * C;
      std::fill(r, r + L, T(0));
      for (int64_t m = 0; m < i; ++m) {
        const T a = A[i * C + m];
        map(through(m), r, [a](auto x, auto y) { return x - a * y; }, r, Minv + m * C);
      }
      r[i] = T(1);
    }
  }

  // WU = Minv [kb | vb], then D = U - W S (SD = [S; D]).
  void values(const T* Minv, T* SD, T* WU) const {
    serial_gemm<T>(false, false, L, K + V, L, T(1), Minv, C, KVb, ldkv(), T(0), WU, ldkv());
    T* D = SD + K * V;
    for (int64_t i = 0; i < L; ++i) std::copy(WU + i * ldkv() + K, WU + (i + 1) * ldkv(), D + i * V);
    serial_gemm<T>(false, false, L, V, K, T(-1), WU, ldkv(), SD, V, T(1), D, V);
  }

  // O = [qg | Sc] [S; D].
  void output(const T* SD, Rows<T> o) const {
    serial_gemm<T>(false, false, L, V, K + L, T(1), QS, ldqs(), SD, V, T(0), o.p, o.ld);
  }

  // next = gam_{L-1} S + kl^T D (next may be S itself).
  void advance(const T* SD, T* next) const {
    const T last = gam[L - 1];
    map(K * V, next, [last](auto x) { return last * x; }, SD);
    serial_gemm<T>(true, false, K, V, L, T(1), kl, K, SD + K * V, V, T(1), next, V);
  }
};

// Buffers of the chunk backward beyond Chunk's own:
//   dWD (C x (K+V)) [dW | dD];  YdSc (C x (K+C)) [dO S^T | dO D^T];  dVK (C x (K+V)) Minv^T dWD.
template <class T>
struct BackwardScratch {
  T *dWD, *X, *YdSc, *dQ, *dK, *dVK, *dA, *erow, *col, *dSn, *db;
  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C * (K + V), C * K, C * (K + C), C * K, C * K, C * (K + V), C * C, C, C, K * V, C);
  }
  BackwardScratch(Scratch<T>& m, int64_t C, int64_t K, int64_t V)
      : dWD(m.take(C * (K + V))), X(m.take(C * K)), YdSc(m.take(C * (K + C))), dQ(m.take(C * K)),
        dK(m.take(C * K)), dVK(m.take(C * (K + V))), dA(m.take(C * C)), erow(m.take(C)), col(m.take(C)),
        dSn(m.take(K * V)), db(m.take(C)) {}
};

// For the strictly lower part E of a C x C matrix given row by row (row(i, e) writes row i of E
// into e over `through(i)` columns), adds to db_i the row sums and takes away the column sums:
// the gradient of log-decays b when E_ij = dGam_ij Gam_ij, Gam_ij = exp(b_i - b_j).
template <class T, class Row>
void pairwise_decay_gradient(const Chunk<T>& ch, BackwardScratch<T>& w, Row&& row) {
  const int64_t L = ch.L;
  std::fill(w.col, w.col + L, T(0));
  for (int64_t i = 0; i < L; ++i) {
    const int64_t n = ch.through(i);
    row(i, w.erow);
    w.erow[i] = T(0);  // Gam_ii = 1 has no gradient; dropping it avoids a cancelling pair
    w.db[i] += map_sum<T>(n, [](auto x) { return x; }, w.erow);
    map(n, w.col, [](auto c, auto x) { return c + x; }, w.col, w.erow);
  }
  for (int64_t j = 0; j < L; ++j) w.db[j] -= w.col[j];
}

// Backward of one chunk given its SD = [S_in; D], Minv and WU. On entry dS = dL/dS_out; on exit
// dL/dS_in. Writes dq, dk, dv, dg, dbeta of the chunk's rows.
template <class T>
void backward_chunk(const Args<T>& a, Chunk<T>& ch, BackwardScratch<T>& w, int64_t bh, int64_t c, const T* SD,
                    const T* Minv, const T* WU, T* dS) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C, L = a.rows(c), ldkv = ch.ldkv(), ldqs = ch.ldqs();
  const T scale = a.scale;
  const Inputs<T> in = inputs(a, bh, c);
  const auto dout = a.at(a.dout, bh, c, V);
  const auto dv = a.at(a.dv, bh, c, V);
  const auto dq = a.at(a.dq, bh, c, K), dk = a.at(a.dk, bh, c, K);
  const auto dg = a.at(a.dg, bh, c, 1), dbeta = a.at(a.dbeta, bh, c, 1);
  ch.prepare(L, in, true);
  const T *S = SD, *D = SD + K * V, *Sc = ch.QS + K;
  T *db = w.db, *dK = w.dK, *dQ = w.dQ, *X = w.X, *dW = w.dWD, *dD = w.dWD + K;
  T *Y = w.YdSc, *G = w.YdSc + K;  // G: the score gradient dSc, then scale dSc ⊙ Gam
  std::fill(db, db + L, T(0));

  // Through S_out = gam_{L-1} S + kl^T D: dD = kl dS, d kl = D dS^T, d gam_{L-1} = <S, dS>.
  serial_gemm<T>(false, false, L, V, K, T(1), ch.kl, K, dS, V, T(0), dD, ldkv);
  serial_gemm<T>(false, true, L, K, V, T(1), D, V, dS, V, T(0), X, K);
  for (int64_t i = 0; i < L; ++i) {
    const T li = ch.lam[i];
    map(K, dK + i * K, [li](auto x) { return li * x; }, X + i * K);
    if (i == L - 1) continue;  // lam_{L-1} = 1: no gradient (and no cancelling pair)
    const T t = li * dot(K, ch.k_row(i), X + i * K);  // lam_i = exp(b_{L-1} - b_i)
    db[i] -= t;
    db[L - 1] += t;
  }
  db[L - 1] += ch.gam[L - 1] * dot(K * V, S, dS);

  // Through O = qg S + Sc D: dD += Sc^T dO and [d qg | dSc] = dO [S; D]^T.
  serial_gemm<T>(true, false, L, V, L, T(1), Sc, ldqs, dout.p, dout.ld, T(1), dD, ldkv);
  serial_gemm<T>(false, true, L, K + L, V, T(1), dout.p, dout.ld, SD, V, T(0), w.YdSc, ldqs);
  pairwise_decay_gradient(ch, w, [&](int64_t i, T* e) {
    map(ch.through(i), e, [](auto x, auto y) { return x * y; }, G + i * ldqs, Sc + i * ldqs);
  });
  for (int64_t i = 0; i < L; ++i)
    map(L, G + i * ldqs, [scale](auto x, auto y) { return scale * x * y; }, G + i * ldqs, ch.Gam + i * C);
  serial_gemm<T>(false, false, L, K, L, T(1), G, ldqs, ch.k_row(0), K, T(0), dQ, K);
  serial_gemm<T>(true, false, L, K, L, T(1), G, ldqs, ch.q_row(0), K, T(1), dK, K);
  for (int64_t i = 0; i < L; ++i) {
    const T s = scale * ch.gam[i];
    map(K, dQ + i * K, [s](auto acc, auto x) { return acc + s * x; }, dQ + i * K, Y + i * ldqs);
    db[i] += s * dot(K, ch.q_row(i), Y + i * ldqs);
  }
  // dS_in = gam_{L-1} dS + qg^T dO - W^T dD.
  const T last = ch.gam[L - 1];
  map(K * V, w.dSn, [last](auto x) { return last * x; }, dS);
  serial_gemm<T>(true, false, K, V, L, T(1), ch.QS, ldqs, dout.p, dout.ld, T(1), w.dSn, V);
  serial_gemm<T>(true, false, K, V, L, T(-1), WU, ldkv, dD, ldkv, T(1), w.dSn, V);

  // Through D = U - W S and [W | U] = Minv [kb | vb]: dW = -dD S^T, [d kb | d vb] = Minv^T [dW | dD].
  serial_gemm<T>(false, true, L, K, V, T(-1), dD, ldkv, S, V, T(0), dW, ldkv);
  serial_gemm<T>(true, false, L, K + V, L, T(1), Minv, C, w.dWD, ldkv, T(0), w.dVK, ldkv);
  for (int64_t i = 0; i < L; ++i) {
    const T bi = *in.beta.row(i), gi = ch.gam[i], bg = bi * gi;
    const T* dkb = w.dVK + i * ldkv;
    map(V, dv.row(i), [bi](auto x) { return bi * x; }, dkb + K);
    const T t = dot(K, ch.k_row(i), dkb);
    *dbeta.row(i) = dot(V, in.v.row(i), dkb + K) + gi * t;
    map(K, dK + i * K, [bg](auto acc, auto x) { return acc + bg * x; }, dK + i * K, dkb);
    db[i] += bg * t;
  }
  // Through Minv = (I + A)^-1: dA = strict_lower(-Minv^T dMinv Minv^T) with dMinv = [dW | dD] [kb | vb]^T,
  // which is -[d kb | d vb] [W | U]^T (Minv [kb | vb] = [W | U]).
  serial_gemm<T>(false, true, L, L, K + V, T(-1), w.dVK, ldkv, WU, ldkv, T(0), w.dA, C);
  // A_ij = beta_i Gam_ij KK_ij: dbeta_i += sum_j dA_ij Gam_ij KK_ij; F = d KK = beta_i dA ⊙ Gam.
  for (int64_t i = 0; i < L; ++i) {
    T* r = w.dA + i * C;
    map(ch.through(i), r, [](auto x, auto y) { return x * y; }, r, ch.Gam + i * C);
    std::fill(r + i, r + L, T(0));
    *dbeta.row(i) += dot(ch.through(i), r, ch.KQK + i * C);
  }
  pairwise_decay_gradient(ch, w, [&](int64_t i, T* e) {
    const T bi = *in.beta.row(i);
    map(ch.through(i), e, [bi](auto x, auto y) { return bi * x * y; }, w.dA + i * C, ch.KQK + i * C);
  });
  // dk += (F + F^T) k: F strictly lower, so F + F^T is its mirror image filled in.
  for (int64_t i = 0; i < L; ++i) {
    T* r = w.dA + i * C;
    const T bi = *in.beta.row(i);
    for (int64_t j = 0; j < i; ++j) w.dA[j * C + i] = r[j] *= bi;
  }
  serial_gemm<T>(false, false, L, K, L, T(1), w.dA, C, ch.k_row(0), K, T(1), dK, K);

  // b = cumsum(g): dg is the reverse cumulative sum of db.
  T acc = 0;
  for (int64_t i = L - 1; i >= 0; --i) {
    acc += db[i];
    *dg.row(i) = acc;
    std::copy(dQ + i * K, dQ + (i + 1) * K, dq.row(i));
    std::copy(dK + i * K, dK + (i + 1) * K, dk.row(i));
  }
  std::copy(w.dSn, w.dSn + K * V, dS);
}

template <class T>
void forward_sequences(const Args<T>& a, T* saved) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C, nc = a.chunks();
  const ChunkStore st{C, K, V};
  parallel_for(a.d.B * a.d.H, sequences_per_block(a.d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(C, K, V) + Scratch<T>::elements(saved ? 0 : st.per_chunk()));
    Chunk<T> ch(mem, C, K, V, a.scale);
    T* local = saved ? nullptr : mem.take(st.per_chunk());  // one chunk's store, reused
    for (int64_t bh = lo; bh < hi; ++bh) {
      T* base = saved ? saved + bh * nc * st.per_chunk() : local;
      auto chunk = [&](int64_t c) { return saved ? c : 0; };
      copy_state(st.SD(base, 0), a.h0 ? a.h0 + a.state(bh) : nullptr, K * V);
      for (int64_t c = 0; c < nc; ++c) {
        T *SD = st.SD(base, chunk(c)), *Minv = st.Minv(base, chunk(c)), *WU = st.WU(base, chunk(c));
        a.prefetch(bh, c + 1, false);
        ch.prepare(a.rows(c), inputs(a, bh, c), true);
        ch.solve(Minv);
        ch.values(Minv, SD, WU);
        ch.output(SD, a.at(a.o, bh, c, V));
        if (c + 1 < nc) ch.advance(SD, st.SD(base, chunk(c + 1)));
        else if (a.ht) ch.advance(SD, a.ht + a.state(bh));
      }
    }
  });
}

template <class T>
void backward_sequences(const Args<T>& a, const T* saved) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C, KV = K * V, nc = a.chunks();
  const ChunkStore st{C, K, V};
  parallel_for(a.d.B * a.d.H, sequences_per_block(a.d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(C, K, V) + BackwardScratch<T>::elements(C, K, V) +
                   Scratch<T>::elements(saved ? 0 : nc * st.per_chunk(), KV));
    Chunk<T> ch(mem, C, K, V, a.scale);
    BackwardScratch<T> w(mem, C, K, V);
    T *local = saved ? nullptr : mem.take(nc * st.per_chunk()), *dS = mem.take(KV);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const T* base = saved ? saved + bh * nc * st.per_chunk() : local;
      if (!saved) {  // the forward's chunk pass again, without the outputs
        copy_state(st.SD(local, 0), a.h0 ? a.h0 + a.state(bh) : nullptr, KV);
        for (int64_t c = 0; c < nc; ++c) {
          a.prefetch(bh, c + 1, false);
          ch.prepare(a.rows(c), inputs(a, bh, c), false);
          ch.solve(st.Minv(local, c));
          ch.values(st.Minv(local, c), st.SD(local, c), st.WU(local, c));
          if (c + 1 < nc) ch.advance(st.SD(local, c), st.SD(local, c + 1));
        }
      }
      copy_state(dS, a.dht ? a.dht + a.state(bh) : nullptr, KV);
      for (int64_t c = nc - 1; c >= 0; --c) {
        a.prefetch(bh, c - 1, true);
        if (c > 0) prefetch_rows(st.SD(base, c - 1), 0, st.per_chunk(), 1);  // long sequences: from memory
        backward_chunk(a, ch, w, bh, c, st.SD(base, c), st.Minv(base, c), st.WU(base, c), dS);
      }
      if (a.dh0) std::copy(dS, dS + KV, a.dh0 + a.state(bh));
    }
  });
}

void check_chunk(const GlaDims& d, int64_t chunk, const char* op) {
  check_dims(d, op);
  ROTOR_CHECK(chunk >= 1, op, "chunk size must be >= 1, got ", chunk);
}

}  // namespace

int64_t gated_delta_chunked_saved_size(const GlaDims& d, int64_t chunk) {
  check_chunk(d, chunk, "gated_delta_chunked_saved_size");
  const int64_t nc = (d.T + chunk - 1) / chunk;
  return d.B * d.H * nc * ChunkStore{chunk, d.K, d.V}.per_chunk();
}

template <class T>
void gated_delta_chunked_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                 const T* beta, const T* h0, T* o, T* ht, T scale, int64_t chunk, T* saved) {
  check_chunk(d, chunk, "gated_delta_chunked_forward");
  const Args<T> a{d, chunk, scale, q, k, v, g, beta, h0, nullptr, nullptr,
                  o, ht, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  if (d.T == 0) {  // nothing to run: the final state is the initial one
    for (int64_t bh = 0; ht && bh < d.B * d.H; ++bh)
      copy_state(ht + a.state(bh), h0 ? h0 + a.state(bh) : nullptr, a.KV());
    return;
  }
  forward_sequences(a, saved);
}

template <class T>
void gated_delta_chunked_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                  const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                  T* dv, T* dg, T* dbeta, T* dh0, T scale, int64_t chunk, const T* saved) {
  check_chunk(d, chunk, "gated_delta_chunked_backward");
  const Args<T> a{d, chunk, scale, q, k, v, g, beta, h0, dout, dht, nullptr, nullptr, dq, dk, dv, dg, dbeta, dh0};
  if (d.T == 0) {
    for (int64_t bh = 0; dh0 && bh < d.B * d.H; ++bh)
      copy_state(dh0 + a.state(bh), dht ? dht + a.state(bh) : nullptr, a.KV());
    return;
  }
  backward_sequences(a, saved);
}

#define ROTOR_GATED_DELTA_CHUNKED(T)                                                                          \
  template void gated_delta_chunked_forward<T>(const GlaDims&, const T*, const T*, const T*, const T*,       \
                                               const T*, const T*, T*, T*, T, int64_t, T*);                  \
  template void gated_delta_chunked_backward<T>(const GlaDims&, const T*, const T*, const T*, const T*,      \
                                                const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                                T*, T, int64_t, const T*);
ROTOR_GATED_DELTA_CHUNKED(float)
ROTOR_GATED_DELTA_CHUNKED(double)
#undef ROTOR_GATED_DELTA_CHUNKED

}  // namespace rotor::kernels
