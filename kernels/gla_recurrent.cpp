// Recurrent GLA: the step loop of docs/gla.md, vectorised along the value dimension and parallel
// over sequences (b, h). Backward keeps O(sqrt(T)) states: checkpoints every ~sqrt(T) steps, and
// one segment of states recomputed at a time, so dg_t = exp(g_t) ⊙ rowsum(dS_t ⊙ S_{t-1}) is
// taken directly (no division by a decay, no long cancelling sums).
#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <cmath>

#include "rotor/kernels/gla.h"
#include "rotor/kernels/gla_common.h"

namespace rotor::kernels {
using namespace gla_simd;
using namespace gla_common;
namespace {

// One step S <- diag(exp g) P + k^T v from the previous state P (P == S: in place); writes
// o = scale q S when o != nullptr.
// a = exp(g_t), the decays of this step.
template <class T>
void step_forward(int64_t K, int64_t V, const T* P, T* S, const T* q, const T* k, const T* v, const T* a_, T* o,
                  T scale) {
  // One whole batch of values (heads of 16 floats on AVX-512): o stays in a register across the
  // rows instead of a store and a reload per row, whose latency chained the steps. Same fused
  // multiply-adds as the general loop; a partial batch keeps the general loop (the compiler
  // fuses its tail differently, so a register version would change the bits of 8-wide heads).
  if (o && V == width<T>) {
    const Vec<T> vv = load(v, V);
    Vec<T> acc(T(0));
    for (int64_t i = 0; i < K; ++i) {
      const Vec<T> si = xsimd::fma(Vec<T>(a_[i]), load(P + i * V, V), k[i] * vv);
      store(S + i * V, si, V);
      acc = xsimd::fma(Vec<T>(scale * q[i]), si, acc);
    }
    store(o, acc, V);
    return;
  }
  if (o) std::fill(o, o + V, T(0));
  for (int64_t i = 0; i < K; ++i) {
    const T a = a_[i], ki = k[i];
    T* Si = S + i * V;
    map(V, Si, [&](auto s, auto vv) { return a * s + ki * vv; }, P + i * V, v);
    if (o) {
      const T qi = scale * q[i];
      map(V, o, [&](auto acc, auto s) { return acc + qi * s; }, o, Si);
    }
  }
}

// One backward step at time t. On entry dS is dL/dS_t without the o_t term; on exit dL/dS_{t-1}.
// cur = S_t, prev = S_{t-1}, a = exp(g_t); dv is written. The row sums that make dq, dk and dg
// are reduced a batch of rows at a time (row_sums).
template <class T>
void step_backward(int64_t K, int64_t V, T* dS, const T* cur, const T* prev, const T* q,
                   const T* k, const T* v, const T* a_, const T* dout, T* dq, T* dk, T* dv,
                   T* dg, T scale) {
  constexpr int64_t W = width<T>;
  Vec<T> acc_q[W], acc_k[W], acc_g[W];
  auto reduce_rows = [&](int64_t i0, int64_t rows) {
    store(dq + i0, scale * row_sums(acc_q), rows);
    store(dk + i0, row_sums(acc_k), rows);
    store(dg + i0, load(a_ + i0, rows) * row_sums(acc_g), rows);
  };
  if (V <= W) {  // one batch of values: dv stays in a register across rows (as o in step_forward)
    const Vec<T> dov = load(dout, V), vv = load(v, V);
    Vec<T> dvacc(T(0));
    for (int64_t i0 = 0; i0 < K; i0 += W) {
      const int64_t rows = std::min(W, K - i0);
      for (int64_t r = 0; r < W; ++r) {
        Vec<T> sq(T(0)), sk(T(0)), sg(T(0));
        if (r < rows) {
          const int64_t i = i0 + r;
          T* dSi = dS + i * V;
          const Vec<T> d = xsimd::fma(Vec<T>(scale * q[i]), dov, load(dSi, V));
          sq = xsimd::fma(load(cur + i * V, V), dov, sq);  // from zero, as the general loop below
          sk = xsimd::fma(d, vv, sk);
          sg = xsimd::fma(d, load(prev + i * V, V), sg);
          dvacc = xsimd::fma(Vec<T>(k[i]), d, dvacc);
          store(dSi, a_[i] * d, V);
        }
        acc_q[r] = sq, acc_k[r] = sk, acc_g[r] = sg;
      }
      reduce_rows(i0, rows);
    }
    store(dv, dvacc, V);
    return;
  }
  std::fill(dv, dv + V, T(0));
  for (int64_t i0 = 0; i0 < K; i0 += W) {
    const int64_t rows = std::min(W, K - i0);
    for (int64_t r = 0; r < W; ++r) {
      Vec<T> sq(T(0)), sk(T(0)), sg(T(0));
      if (r < rows) {
        const int64_t i = i0 + r;
        const T a = a_[i], qi = scale * q[i], ki = k[i];
        T* dSi = dS + i * V;
        const T* Si = cur + i * V;
        const T* Pi = prev + i * V;
        for (int64_t j = 0; j < V; j += W) {
          const int64_t n = V - j;
          const Vec<T> d = load(dSi + j, n) + qi * load(dout + j, n);
          sq += load(Si + j, n) * load(dout + j, n);
          sk += d * load(v + j, n);
          sg += d * load(Pi + j, n);
          store(dv + j, load(dv + j, n) + ki * d, n);
          store(dSi + j, a * d, n);
        }
      }
      acc_q[r] = sq, acc_k[r] = sk, acc_g[r] = sg;
    }
    reduce_rows(i0, rows);
  }
}

// a[i] = exp(g[i]) for i < K.
template <class T>
void decays(int64_t K, const T* g, T* a) {
  map(K, a, [](auto x) { return xsimd::exp(x); }, g);
}

}  // namespace

template <class T>
void gla_recurrent_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                           const T* h0, T* o, T* ht, T scale) {
  check_dims(d, "gla_recurrent_forward");
  const int64_t K = d.K, V = d.V;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Scratch<T>::elements(K * V, K));
    T *S = mem.take(K * V), *a = mem.take(K);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      copy_state(S, h0 ? h0 + s.state() : nullptr, K * V);
      for (int64_t t = 0; t < d.T; ++t) {
        decays(K, g + s.x(t, K), a);
        step_forward(K, V, S, S, q + s.x(t, K), k + s.x(t, K), v + s.x(t, V), a, o + s.x(t, V), scale);
      }
      if (ht) std::copy(S, S + K * V, ht + s.state());
    }
  });
}

template <class T>
void gla_recurrent_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                            const T* h0, const T* dout, const T* dht, T* dq, T* dk, T* dv, T* dg,
                            T* dh0, T scale) {
  check_dims(d, "gla_recurrent_backward");
  const int64_t K = d.K, V = d.V, KV = K * V;
  // A short sequence whose states all fit in a few hundred kB is one segment: no pass 1.
  const bool whole = (d.T + 1) * KV <= (int64_t(1) << 15);
  const int64_t seg = whole ? std::max<int64_t>(1, d.T) : segment_length(d.T), nseg = (d.T + seg - 1) / seg;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Scratch<T>::elements(nseg * KV, (seg + 1) * KV, KV, d.T * K));
    T *checkpoints = mem.take(nseg * KV), *states = mem.take((seg + 1) * KV), *dS = mem.take(KV),
      *decay = mem.take(d.T * K);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      // exp(g) once per sequence: the passes below use each decay up to three times.
      for (int64_t t = 0; t < d.T; ++t) decays(K, g + s.x(t, K), decay + t * K);
      // Pass 1: the state entering every segment.
      T* S = dS;  // dS is free until pass 2
      copy_state(S, h0 ? h0 + s.state() : nullptr, KV);
      if (nseg == 1) std::copy(S, S + KV, checkpoints);
      else
        for (int64_t t = 0; t < d.T; ++t) {
          if (t % seg == 0) std::copy(S, S + KV, checkpoints + (t / seg) * KV);
          step_forward<T>(K, V, S, S, nullptr, k + s.x(t, K), v + s.x(t, V), decay + t * K, nullptr, scale);
        }
      // Pass 2: segments last to first, states of one segment recomputed from its checkpoint.
      copy_state(dS, dht ? dht + s.state() : nullptr, KV);
      for (int64_t c = nseg - 1; c >= 0; --c) {
        const int64_t t0 = c * seg, t1 = std::min(d.T, t0 + seg);
        std::copy(checkpoints + c * KV, checkpoints + (c + 1) * KV, states);
        for (int64_t t = t0; t < t1; ++t) {
          T* next = states + (t - t0 + 1) * KV;
          step_forward<T>(K, V, next - KV, next, nullptr, k + s.x(t, K), v + s.x(t, V), decay + t * K, nullptr,
                          scale);
        }
        for (int64_t t = t1 - 1; t >= t0; --t)
          step_backward(K, V, dS, states + (t - t0 + 1) * KV, states + (t - t0) * KV,
                        q + s.x(t, K), k + s.x(t, K), v + s.x(t, V), decay + t * K, dout + s.x(t, V),
                        dq + s.x(t, K), dk + s.x(t, K), dv + s.x(t, V), dg + s.x(t, K), scale);
      }
      if (dh0) std::copy(dS, dS + KV, dh0 + s.state());
    }
  });
}

template void gla_recurrent_forward<float>(const GlaDims&, const float*, const float*, const float*,
                                           const float*, const float*, float*, float*, float);
template void gla_recurrent_forward<double>(const GlaDims&, const double*, const double*,
                                            const double*, const double*, const double*, double*,
                                            double*, double);
template void gla_recurrent_backward<float>(const GlaDims&, const float*, const float*,
                                            const float*, const float*, const float*, const float*,
                                            const float*, float*, float*, float*, float*, float*,
                                            float);
template void gla_recurrent_backward<double>(const GlaDims&, const double*, const double*,
                                             const double*, const double*, const double*,
                                             const double*, const double*, double*, double*,
                                             double*, double*, double*, double);

}  // namespace rotor::kernels
