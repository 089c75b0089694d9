// Recurrent gated delta rule: the step loop of docs/gated_deltanet.md, vectorised along the value
// dimension and parallel over sequences (b, h). One step reads the K x V state twice:
//
//     pass 1:  S <- exp(g) S,  r = S^T k            u = v - r
//     pass 2:  S <- S + beta k u^T,  o = scale S^T q
//
// Backward keeps O(sqrt(T)) states: checkpoints every ~sqrt(T) steps, and one segment of states
// (with the u of each step) recomputed at a time, so every gradient is taken from the exact
// states (no inversion of a step, which is singular for beta = 1).
#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <cmath>

#include "rotor/kernels/gated_delta.h"
#include "rotor/kernels/gla_common.h"

namespace rotor::kernels {
using namespace gla_simd;
using namespace gla_common;
namespace {

// One step from P to S (P == S: in place); writes u = v - (exp(g) P)^T k, and o = scale S^T q
// when o != nullptr.
template <class T>
void step_forward(int64_t K, int64_t V, const T* P, T* S, const T* q, const T* k, const T* v, T g, T beta, T* u,
                  T* o, T scale) {
  const T a = std::exp(g);
  std::copy(v, v + V, u);
  for (int64_t i = 0; i < K; ++i) {
    const T ki = k[i];
    T* Si = S + i * V;
    map(V, Si, [a](auto p) { return a * p; }, P + i * V);
    map(V, u, [ki](auto acc, auto s) { return acc - ki * s; }, u, Si);
  }
  if (o) std::fill(o, o + V, T(0));
  for (int64_t i = 0; i < K; ++i) {
    const T bk = beta * k[i];
    T* Si = S + i * V;
    map(V, Si, [bk](auto s, auto uu) { return s + bk * uu; }, Si, u);
    if (o) {
      const T qi = scale * q[i];
      map(V, o, [qi](auto acc, auto s) { return acc + qi * s; }, o, Si);
    }
  }
}

// One backward step at time t. On entry dS is dL/dS_t without the o_t term; on exit dL/dS_{t-1}.
// cur = S_t, prev = S_{t-1}, u = u_t; du is V of scratch. Writes dq, dk, dv and dg, dbeta.
template <class T>
void step_backward(int64_t K, int64_t V, T* dS, const T* cur, const T* prev, const T* u, const T* q,
                   const T* k, T g, T beta, const T* dout, T* dq, T* dk, T* dv, T* dg, T* dbeta, T* du,
                   T scale) {
  const T a = std::exp(g);
  // Pass A: the o_t term joins dS; dq; dk's write term beta dS u; du = beta dS^T k.
  std::fill(du, du + V, T(0));
  for (int64_t i = 0; i < K; ++i) {
    const T qi = scale * q[i], ki = k[i];
    T* dSi = dS + i * V;
    const T* Si = cur + i * V;
    Vec<T> acc_q(T(0)), acc_k(T(0));
    for (int64_t j = 0; j < V; j += width<T>) {
      const int64_t n = V - j;
      const Vec<T> d = load(dSi + j, n) + qi * load(dout + j, n);
      acc_q += load(Si + j, n) * load(dout + j, n);
      acc_k += d * load(u + j, n);
      store(du + j, load(du + j, n) + ki * d, n);
      store(dSi + j, d, n);
    }
    dq[i] = scale * sum(acc_q);
    dk[i] = beta * sum(acc_k);
  }
  *dbeta = map_sum<T>(V, [](auto x, auto y) { return x * y; }, du, u);
  map(V, du, [beta](auto x) { return beta * x; }, du);
  std::copy(du, du + V, dv);
  // Pass B, through P = exp(g) S_{t-1} and u = v - P^T k: dP = dS - k du^T, dk -= P du,
  // dg = <dP, P>, dS_{t-1} = exp(g) dP.
  Vec<T> acc_g(T(0));
  for (int64_t i = 0; i < K; ++i) {
    const T ki = k[i];
    T* dSi = dS + i * V;
    const T* Pi = prev + i * V;
    Vec<T> acc_k(T(0));
    for (int64_t j = 0; j < V; j += width<T>) {
      const int64_t n = V - j;
      const Vec<T> p = a * load(Pi + j, n), duj = load(du + j, n);
      const Vec<T> dP = load(dSi + j, n) - ki * duj;
      acc_k += p * duj;
      acc_g += dP * p;
      store(dSi + j, a * dP, n);
    }
    dk[i] -= sum(acc_k);
  }
  *dg = sum(acc_g);
}

}  // namespace

template <class T>
void gated_delta_recurrent_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                   const T* beta, const T* h0, T* o, T* ht, T scale) {
  check_dims(d, "gated_delta_recurrent_forward");
  const int64_t K = d.K, V = d.V;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Scratch<T>::elements(K * V, V));
    T *S = mem.take(K * V), *u = mem.take(V);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      copy_state(S, h0 ? h0 + s.state() : nullptr, K * V);
      for (int64_t t = 0; t < d.T; ++t)
        step_forward(K, V, S, S, q + s.x(t, K), k + s.x(t, K), v + s.x(t, V), g[s.x(t, 1)], beta[s.x(t, 1)], u,
                     o + s.x(t, V), scale);
      if (ht) std::copy(S, S + K * V, ht + s.state());
    }
  });
}

template <class T>
void gated_delta_recurrent_backward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                    const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                    T* dv, T* dg, T* dbeta, T* dh0, T scale) {
  check_dims(d, "gated_delta_recurrent_backward");
  const int64_t K = d.K, V = d.V, KV = K * V;
  const int64_t seg = segment_length(d.T), nseg = (d.T + seg - 1) / seg;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Scratch<T>::elements(nseg * KV, (seg + 1) * KV, seg * V, KV, V));
    T *checkpoints = mem.take(nseg * KV), *states = mem.take((seg + 1) * KV), *us = mem.take(seg * V);
    T *dS = mem.take(KV), *du = mem.take(V);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      // Pass 1: the state entering every segment.
      T* S = dS;  // dS is free until pass 2
      copy_state(S, h0 ? h0 + s.state() : nullptr, KV);
      for (int64_t t = 0; t < d.T; ++t) {
        if (t % seg == 0) std::copy(S, S + KV, checkpoints + (t / seg) * KV);
        step_forward<T>(K, V, S, S, nullptr, k + s.x(t, K), v + s.x(t, V), g[s.x(t, 1)], beta[s.x(t, 1)], du,
                        nullptr, scale);
      }
      // Pass 2: segments last to first, states of one segment recomputed from its checkpoint.
      copy_state(dS, dht ? dht + s.state() : nullptr, KV);
      for (int64_t c = nseg - 1; c >= 0; --c) {
        const int64_t t0 = c * seg, t1 = std::min(d.T, t0 + seg);
        std::copy(checkpoints + c * KV, checkpoints + (c + 1) * KV, states);
        for (int64_t t = t0; t < t1; ++t) {
          T* next = states + (t - t0 + 1) * KV;
          step_forward<T>(K, V, next - KV, next, nullptr, k + s.x(t, K), v + s.x(t, V), g[s.x(t, 1)],
                          beta[s.x(t, 1)], us + (t - t0) * V, nullptr, scale);
        }
        for (int64_t t = t1 - 1; t >= t0; --t)
          step_backward(K, V, dS, states + (t - t0 + 1) * KV, states + (t - t0) * KV, us + (t - t0) * V,
                        q + s.x(t, K), k + s.x(t, K), g[s.x(t, 1)], beta[s.x(t, 1)], dout + s.x(t, V),
                        dq + s.x(t, K), dk + s.x(t, K), dv + s.x(t, V), dg + s.x(t, 1), dbeta + s.x(t, 1), du,
                        scale);
      }
      if (dh0) std::copy(dS, dS + KV, dh0 + s.state());
    }
  });
}

#define ROTOR_GATED_DELTA_RECURRENT(T)                                                                         \
  template void gated_delta_recurrent_forward<T>(const GlaDims&, const T*, const T*, const T*, const T*,      \
                                                 const T*, const T*, T*, T*, T);                               \
  template void gated_delta_recurrent_backward<T>(const GlaDims&, const T*, const T*, const T*, const T*,     \
                                                  const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                                  T*, T);
ROTOR_GATED_DELTA_RECURRENT(float)
ROTOR_GATED_DELTA_RECURRENT(double)
#undef ROTOR_GATED_DELTA_RECURRENT

}  // namespace rotor::kernels
