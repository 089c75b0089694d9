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
// Backward walks the chunks last to first with the incoming state, M^-1 and D of each chunk kept
// from a first pass (K x V + L x L + L x V per chunk of the sequence in flight) and everything
// else recomputed. Parallel over sequences (b, h); the small GEMMs stay on the calling thread, so
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
};

// Scratch of one chunk of up to C rows; (rows x K) buffers have leading dimension K, (rows x V)
// buffers V, (rows x rows) buffers C.
template <class T>
struct Chunk {
  int64_t C, K, V, L = 0;
  T scale;
  std::vector<double> b;  // cumulative log-decay
  // gam, lam: the decays above; Gam the pairwise decays; KK = K K^T; kg = gam ⊙ k, kl = lam ⊙ k,
  // kb = beta ⊙ kg, vb = beta ⊙ v; W; Sc = scale Q K^T ⊙ Gam; qg = scale gam ⊙ q.
  T *gam, *lam, *Gam, *KK, *Sc, *kg, *kl, *kb, *vb, *W, *qg;

  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C, C, C * C, C * C, C * C, C * K, C * K, C * K, C * V, C * K, C * K);
  }
  Chunk(Scratch<T>& m, int64_t C_, int64_t K_, int64_t V_, T scale_)
      : C(C_), K(K_), V(V_), scale(scale_), b(size_t(C_)), gam(m.take(C)), lam(m.take(C)), Gam(m.take(C * C)),
        KK(m.take(C * C)), Sc(m.take(C * C)), kg(m.take(C * K)), kl(m.take(C * K)), kb(m.take(C * K)),
        vb(m.take(C * V)), W(m.take(C * K)), qg(m.take(C * K)) {}

  // Decays, the scaled keys and values, and K K^T of a chunk of `rows` steps.
  void prepare(int64_t rows, Rows<const T> k, Rows<const T> v, Rows<const T> g, Rows<const T> beta) {
    L = rows;
    double acc = 0;
    for (int64_t i = 0; i < L; ++i) b[size_t(i)] = acc += double(*g.row(i));
    for (int64_t i = 0; i < L; ++i) {
      gam[i] = std::exp(T(b[size_t(i)]));
      lam[i] = std::exp(T(b[size_t(L - 1)] - b[size_t(i)]));
      T* r = Gam + i * C;
      for (int64_t j = 0; j <= i; ++j) r[j] = T(b[size_t(i)] - b[size_t(j)]);
      map(i + 1, r, [](auto x) { return xsimd::exp(x); }, r);
      std::fill(r + i + 1, r + C, T(0));
    }
    for (int64_t i = 0; i < L; ++i) {
      const T gi = gam[i], li = lam[i], bi = *beta.row(i);
      map(K, kg + i * K, [gi](auto x) { return gi * x; }, k.row(i));
      map(K, kl + i * K, [li](auto x) { return li * x; }, k.row(i));
      map(K, kb + i * K, [bi](auto x) { return bi * x; }, kg + i * K);
      map(V, vb + i * V, [bi](auto x) { return bi * x; }, v.row(i));
    }
    serial_gemm<T>(false, true, L, L, K, T(1), k.p, k.ld, k.p, k.ld, T(0), KK, C);
  }

  // Minv = M^-1 by forward substitution: row i of M^-1 is e_i - sum_{m<i} A_im (row m of M^-1),
  // A_im = beta_i Gam_im KK_im. Rows have nonzeros only up to the diagonal; zeros above.
  void solve(Rows<const T> beta, T* Minv) const {
    for (int64_t i = 0; i < L; ++i) {
      T* r = Minv + i * C;
      std::fill(r, r + C, T(0));
      const T bi = *beta.row(i);
      for (int64_t m = 0; m < i; ++m) {
        const T a = bi * Gam[i * C + m] * KK[i * C + m];
        map(m + 1, r, [a](auto x, auto y) { return x - a * y; }, r, Minv + m * C);
      }
      r[i] = T(1);
    }
  }

  // W = Minv kb and D = Minv vb - W S.
  void values(const T* Minv, const T* S, T* D) {
    serial_gemm<T>(false, false, L, K, L, T(1), Minv, C, kb, K, T(0), W, K);
    serial_gemm<T>(false, false, L, V, L, T(1), Minv, C, vb, V, T(0), D, V);
    serial_gemm<T>(false, false, L, V, K, T(-1), W, K, S, V, T(1), D, V);
  }

  // Sc = scale Q K^T ⊙ Gam (zero above the diagonal) and qg = scale gam ⊙ q.
  void scores(Rows<const T> q, Rows<const T> k) {
    serial_gemm<T>(false, true, L, L, K, scale, q.p, q.ld, k.p, k.ld, T(0), Sc, C);
    for (int64_t i = 0; i < L; ++i) {
      map(L, Sc + i * C, [](auto x, auto y) { return x * y; }, Sc + i * C, Gam + i * C);
      const T s = scale * gam[i];
      map(K, qg + i * K, [s](auto x) { return s * x; }, q.row(i));
    }
  }

  // S <- gam_{L-1} S + kl^T D.
  void advance(T* S, const T* D) const {
    const T last = gam[L - 1];
    map(K * V, S, [last](auto x) { return last * x; }, S);
    serial_gemm<T>(true, false, K, V, L, T(1), kl, K, D, V, T(1), S, V);
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

// Buffers of the chunk backward beyond Chunk's own.
template <class T>
struct BackwardScratch {
  T *dD, *X, *dSc, *dQ, *dK, *dW, *dMinv, *tmp, *dVb, *dSn, *db;
  static size_t elements(int64_t C, int64_t K, int64_t V) {
    return Scratch<T>::elements(C * V, C * K, C * C, C * K, C * K, C * K, C * C, C * C, C * V, K * V, C);
  }
  BackwardScratch(Scratch<T>& m, int64_t C, int64_t K, int64_t V)
      : dD(m.take(C * V)), X(m.take(C * K)), dSc(m.take(C * C)), dQ(m.take(C * K)), dK(m.take(C * K)),
        dW(m.take(C * K)), dMinv(m.take(C * C)), tmp(m.take(C * C)), dVb(m.take(C * V)), dSn(m.take(K * V)),
        db(m.take(C)) {}
};

// Backward of one chunk given its incoming state S, its Minv and D. On entry dS = dL/dS_out; on
// exit dL/dS_in. Writes dq, dk, dv, dg, dbeta of the chunk's rows.
template <class T>
void backward_chunk(const Args<T>& a, Chunk<T>& ch, BackwardScratch<T>& w, int64_t bh, int64_t c, const T* S,
                    const T* Minv, const T* D, T* dS) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C, L = a.rows(c);
  const T scale = a.scale;
  const Inputs<T> in = inputs(a, bh, c);
  const auto dout = a.at(a.dout, bh, c, V), dv = a.at(a.dv, bh, c, V);
  const auto dq = a.at(a.dq, bh, c, K), dk = a.at(a.dk, bh, c, K);
  const auto dg = a.at(a.dg, bh, c, 1), dbeta = a.at(a.dbeta, bh, c, 1);
  ch.prepare(L, in.k, in.v, in.g, in.beta);
  serial_gemm<T>(false, false, L, K, L, T(1), Minv, C, ch.kb, K, T(0), ch.W, K);
  ch.scores(in.q, in.k);
  T *db = w.db, *dK = w.dK, *dQ = w.dQ, *X = w.X;
  std::fill(db, db + L, T(0));

  // Through S_out = gam_{L-1} S + kl^T D: dD = kl dS, d kl = D dS^T.
  serial_gemm<T>(false, false, L, V, K, T(1), ch.kl, K, dS, V, T(0), w.dD, V);
  serial_gemm<T>(false, true, L, K, V, T(1), D, V, dS, V, T(0), X, K);
  // lam_i = exp(b_{L-1} - b_i) sends lam_i dlam_i to b_{L-1} and takes it from b_i (nothing for
  // i = L-1, whose lam is the constant 1: skipping it avoids a cancelling pair).
  for (int64_t i = 0; i < L; ++i) {
    const T li = ch.lam[i];
    map(K, dK + i * K, [li](auto x) { return li * x; }, X + i * K);
    if (i == L - 1) continue;
    const T t = li * dot(K, in.k.row(i), X + i * K);
    db[i] -= t;
    db[L - 1] += t;
  }
  db[L - 1] += ch.gam[L - 1] * dot(K * V, S, dS);

  // Through O = qg S + Sc D: dD += Sc^T dO, dSc = dO D^T, d qg = dO S^T.
  serial_gemm<T>(true, false, L, V, L, T(1), ch.Sc, C, dout.p, dout.ld, T(1), w.dD, V);
  serial_gemm<T>(false, true, L, L, V, T(1), dout.p, dout.ld, D, V, T(0), w.dSc, C);
  for (int64_t i = 0; i < L; ++i) {
    T* r = w.dSc + i * C;
    for (int64_t j = 0; j < i; ++j) {  // Gam_ii = 1 has no gradient
      const T e = r[j] * ch.Sc[i * C + j];  // dGam_ij Gam_ij
      db[i] += e;
      db[j] -= e;
    }
    for (int64_t j = 0; j <= i; ++j) r[j] *= scale * ch.Gam[i * C + j];
    std::fill(r + i + 1, r + C, T(0));
  }
  serial_gemm<T>(false, false, L, K, L, T(1), w.dSc, C, in.k.p, in.k.ld, T(0), dQ, K);
  serial_gemm<T>(true, false, L, K, L, T(1), w.dSc, C, in.q.p, in.q.ld, T(1), dK, K);
  serial_gemm<T>(false, true, L, K, V, T(1), dout.p, dout.ld, S, V, T(0), X, K);
  for (int64_t i = 0; i < L; ++i) {
    const T s = scale * ch.gam[i];
    map(K, dQ + i * K, [s](auto acc, auto x) { return acc + s * x; }, dQ + i * K, X + i * K);
    db[i] += s * dot(K, in.q.row(i), X + i * K);
  }
  // dS_in = gam_{L-1} dS + qg^T dO - W^T dD.
  const T last = ch.gam[L - 1];
  map(K * V, w.dSn, [last](auto x) { return last * x; }, dS);
  serial_gemm<T>(true, false, K, V, L, T(1), ch.qg, K, dout.p, dout.ld, T(1), w.dSn, V);
  serial_gemm<T>(true, false, K, V, L, T(-1), ch.W, K, w.dD, V, T(1), w.dSn, V);

  // Through D = Minv vb - W S, W = Minv kb: dW = -dD S^T, dMinv = dD vb^T + dW kb^T,
  // d vb = Minv^T dD, d kb = Minv^T dW.
  serial_gemm<T>(false, true, L, K, V, T(-1), w.dD, V, S, V, T(0), w.dW, K);
  serial_gemm<T>(false, true, L, L, V, T(1), w.dD, V, ch.vb, V, T(0), w.dMinv, C);
  serial_gemm<T>(false, true, L, L, K, T(1), w.dW, K, ch.kb, K, T(1), w.dMinv, C);
  serial_gemm<T>(true, false, L, V, L, T(1), Minv, C, w.dD, V, T(0), w.dVb, V);
  serial_gemm<T>(true, false, L, K, L, T(1), Minv, C, w.dW, K, T(0), X, K);  // X = d kb
  for (int64_t i = 0; i < L; ++i) {
    const T bi = *in.beta.row(i), gi = ch.gam[i];
    map(V, dv.row(i), [bi](auto x) { return bi * x; }, w.dVb + i * V);
    T dbi = dot(V, in.v.row(i), w.dVb + i * V) + dot(K, ch.kg + i * K, X + i * K);
    const T bg = bi * gi;  // d k_i += gam_i beta_i d kb_i;  d gam_i = beta_i <k_i, d kb_i>
    map(K, dK + i * K, [bg](auto acc, auto x) { return acc + bg * x; }, dK + i * K, X + i * K);
    db[i] += bg * dot(K, in.k.row(i), X + i * K);
    *dbeta.row(i) = dbi;
  }
  // Through Minv = M^-1: dM = -Minv^T dMinv Minv^T, of which the strictly lower part is dA.
  for (int64_t i = 0; i < L; ++i) std::fill(w.dMinv + i * C + i, w.dMinv + (i + 1) * C, T(0));
  serial_gemm<T>(true, false, L, L, L, T(1), Minv, C, w.dMinv, C, T(0), w.tmp, C);
  serial_gemm<T>(false, true, L, L, L, T(-1), w.tmp, C, Minv, C, T(0), w.dMinv, C);
  // Through A_ij = beta_i Gam_ij KK_ij (j < i): F = d KK = beta ⊙ dA ⊙ Gam, dk += (F + F^T) k.
  for (int64_t i = 0; i < L; ++i) {
    T* r = w.dMinv + i * C;
    const T bi = *in.beta.row(i);
    T dbi = 0;
    for (int64_t j = 0; j < i; ++j) {
      const T P = ch.Gam[i * C + j] * ch.KK[i * C + j];
      dbi += r[j] * P;
      const T e = bi * r[j] * P;  // dGam_ij Gam_ij
      db[i] += e;
      db[j] -= e;
      r[j] *= bi * ch.Gam[i * C + j];
    }
    std::fill(r + i, r + C, T(0));
    *dbeta.row(i) += dbi;
  }
  serial_gemm<T>(false, false, L, K, L, T(1), w.dMinv, C, in.k.p, in.k.ld, T(1), dK, K);
  serial_gemm<T>(true, false, L, K, L, T(1), w.dMinv, C, in.k.p, in.k.ld, T(1), dK, K);

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
void forward_sequences(const Args<T>& a) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C;
  parallel_for(a.d.B * a.d.H, sequences_per_block(a.d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(C, K, V) + Scratch<T>::elements(K * V, C * C, C * V));
    Chunk<T> ch(mem, C, K, V, a.scale);
    T *S = mem.take(K * V), *Minv = mem.take(C * C), *D = mem.take(C * V);
    for (int64_t bh = lo; bh < hi; ++bh) {
      copy_state(S, a.h0 ? a.h0 + a.state(bh) : nullptr, K * V);
      for (int64_t c = 0; c < a.chunks(); ++c) {
        const Inputs<T> in = inputs(a, bh, c);
        const auto o = a.at(a.o, bh, c, V);
        ch.prepare(a.rows(c), in.k, in.v, in.g, in.beta);
        ch.solve(in.beta, Minv);
        ch.values(Minv, S, D);
        ch.scores(in.q, in.k);
        const int64_t L = ch.L;
        serial_gemm<T>(false, false, L, V, K, T(1), ch.qg, K, S, V, T(0), o.p, o.ld);
        serial_gemm<T>(false, false, L, V, L, T(1), ch.Sc, C, D, V, T(1), o.p, o.ld);
        if (c + 1 < a.chunks() || a.ht) ch.advance(S, D);
      }
      if (a.ht) std::copy(S, S + K * V, a.ht + a.state(bh));
    }
  });
}

template <class T>
void backward_sequences(const Args<T>& a) {
  const int64_t K = a.d.K, V = a.d.V, C = a.C, KV = K * V, nc = a.chunks();
  parallel_for(a.d.B * a.d.H, sequences_per_block(a.d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Chunk<T>::elements(C, K, V) + BackwardScratch<T>::elements(C, K, V) +
                   Scratch<T>::elements((nc + 1) * KV, nc * C * C, nc * C * V, KV));
    Chunk<T> ch(mem, C, K, V, a.scale);
    BackwardScratch<T> w(mem, C, K, V);
    // Per chunk c: the state entering it, its Minv and its D.
    T *states = mem.take((nc + 1) * KV), *Minvs = mem.take(nc * C * C), *Ds = mem.take(nc * C * V);
    T* dS = mem.take(KV);
    for (int64_t bh = lo; bh < hi; ++bh) {
      copy_state(states, a.h0 ? a.h0 + a.state(bh) : nullptr, KV);
      for (int64_t c = 0; c < nc; ++c) {
        const Inputs<T> in = inputs(a, bh, c);
        T *S = states + (c + 1) * KV, *Minv = Minvs + c * C * C, *D = Ds + c * C * V;
        std::copy(S - KV, S, S);
        ch.prepare(a.rows(c), in.k, in.v, in.g, in.beta);
        ch.solve(in.beta, Minv);
        ch.values(Minv, S, D);
        ch.advance(S, D);
      }
      copy_state(dS, a.dht ? a.dht + a.state(bh) : nullptr, KV);
      for (int64_t c = nc - 1; c >= 0; --c)
        backward_chunk(a, ch, w, bh, c, states + c * KV, Minvs + c * C * C, Ds + c * C * V, dS);
      if (a.dh0) std::copy(dS, dS + KV, a.dh0 + a.state(bh));
    }
  });
}

void check_chunk(const GlaDims& d, int64_t chunk, const char* op) {
  check_dims(d, op);
  ROTOR_CHECK(chunk >= 1, op, "chunk size must be >= 1, got ", chunk);
}

}  // namespace

template <class T>
void gated_delta_chunked_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                 const T* beta, const T* h0, T* o, T* ht, T scale, int64_t chunk) {
  check_chunk(d, chunk, "gated_delta_chunked_forward");
  const Args<T> a{d, chunk, scale, q, k, v, g, beta, h0, nullptr, nullptr,
                  o, ht, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  if (d.T == 0) {  // nothing to run: the final state is the initial one
    for (int64_t bh = 0; ht && bh < d.B * d.H; ++bh)
      copy_state(ht + a.state(bh), h0 ? h0 + a.state(bh) : nullptr, a.KV());
    return;
  }
  forward_sequences(a);
}

template <class T>
void gated_delta_chunked_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                  const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                  T* dv, T* dg, T* dbeta, T* dh0, T scale, int64_t chunk) {
  check_chunk(d, chunk, "gated_delta_chunked_backward");
  const Args<T> a{d, chunk, scale, q, k, v, g, beta, h0, dout, dht, nullptr, nullptr, dq, dk, dv, dg, dbeta, dh0};
  if (d.T == 0) {
    for (int64_t bh = 0; dh0 && bh < d.B * d.H; ++bh)
      copy_state(dh0 + a.state(bh), dht ? dht + a.state(bh) : nullptr, a.KV());
    return;
  }
  backward_sequences(a);
}

#define ROTOR_GATED_DELTA_CHUNKED(T)                                                                          \
  template void gated_delta_chunked_forward<T>(const GlaDims&, const T*, const T*, const T*, const T*,       \
                                               const T*, const T*, T*, T*, T, int64_t);                      \
  template void gated_delta_chunked_backward<T>(const GlaDims&, const T*, const T*, const T*, const T*,      \
                                                const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                                T*, T, int64_t);
ROTOR_GATED_DELTA_CHUNKED(float)
ROTOR_GATED_DELTA_CHUNKED(double)
#undef ROTOR_GATED_DELTA_CHUNKED

}  // namespace rotor::kernels
