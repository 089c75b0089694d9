// Plain scalar loops of the gated delta rule, straight from docs/gated_deltanet.md: the oracles the
// fast kernels are tested against. One step, with S the K x V state:
//
//     S <- exp(g) S;  u = v - S^T k;  S <- S + beta k u^T;  o = scale S^T q
//
// Backward stores every state (O(T K V) memory), fine for the small shapes of tests.
#include <cmath>
#include <vector>

#include "rotor/kernels/gated_delta.h"

namespace rotor::kernels {
namespace {

// Offsets of element (b,t,h,0) in a (B,T,H,D) tensor and of (b,h,0,0) in a (B,H,K,V) state.
int64_t at(const GlaDims& d, int64_t b, int64_t t, int64_t h, int64_t D) { return ((b * d.T + t) * d.H + h) * D; }
int64_t state_at(const GlaDims& d, int64_t b, int64_t h) { return (b * d.H + h) * d.K * d.V; }

// The step from prev to cur (both K x V); writes u = v - (exp(g) prev)^T k.
template <class T>
void step(int64_t K, int64_t V, const T* prev, T* cur, const T* k, const T* v, T g, T beta, T* u) {
  const T a = std::exp(g);
  for (int64_t j = 0; j < V; ++j) {
    T r = 0;
    for (int64_t i = 0; i < K; ++i) r += a * prev[i * V + j] * k[i];
    u[j] = v[j] - r;
  }
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < V; ++j) cur[i * V + j] = a * prev[i * V + j] + beta * k[i] * u[j];
}

}  // namespace

template <class T>
void gated_delta_forward_reference(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                   const T* beta, const T* h0, T* o, T* ht, T scale) {
  const int64_t K = d.K, V = d.V;
  std::vector<T> S(K * V), next(K * V), u(V);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < K * V; ++i) S[i] = h0 ? h0[state_at(d, b, h) + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const int64_t s = at(d, b, t, h, 1);
        step(K, V, S.data(), next.data(), k + at(d, b, t, h, K), v + at(d, b, t, h, V), g[s], beta[s], u.data());
        S.swap(next);
        const T* qt = q + at(d, b, t, h, K);
        T* ot = o + at(d, b, t, h, V);
        for (int64_t j = 0; j < V; ++j) {
          T acc = 0;
          for (int64_t i = 0; i < K; ++i) acc += scale * qt[i] * S[i * V + j];
          ot[j] = acc;
        }
      }
      if (ht)
        for (int64_t i = 0; i < K * V; ++i) ht[state_at(d, b, h) + i] = S[i];
    }
}

template <class T>
void gated_delta_backward_reference(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                    const T* beta, const T* h0, const T* dout, const T* dht, T* dq, T* dk,
                                    T* dv, T* dg, T* dbeta, T* dh0, T scale) {
  const int64_t K = d.K, V = d.V, KV = K * V;
  // states[t+1] = S_t, states[0] = S_{-1}; us[t] = u_t.
  std::vector<T> states((d.T + 1) * KV), us(d.T * V), dS(KV), du(V);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < KV; ++i) states[i] = h0 ? h0[state_at(d, b, h) + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const int64_t s = at(d, b, t, h, 1);
        step(K, V, &states[t * KV], &states[(t + 1) * KV], k + at(d, b, t, h, K), v + at(d, b, t, h, V), g[s],
             beta[s], &us[t * V]);
      }
      for (int64_t i = 0; i < KV; ++i) dS[i] = dht ? dht[state_at(d, b, h) + i] : T(0);
      for (int64_t t = d.T - 1; t >= 0; --t) {
        const int64_t s = at(d, b, t, h, 1);
        const T *qt = q + at(d, b, t, h, K), *kt = k + at(d, b, t, h, K), *dot = dout + at(d, b, t, h, V);
        const T *prev = &states[t * KV], *cur = &states[(t + 1) * KV], *u = &us[t * V];
        const T a = std::exp(g[s]), bt = beta[s];
        T *dqt = dq + at(d, b, t, h, K), *dkt = dk + at(d, b, t, h, K), *dvt = dv + at(d, b, t, h, V);
        // o = scale S_t^T q: dq = scale S_t do, and dS_t gains scale q do^T.
        for (int64_t i = 0; i < K; ++i) {
          T acc = 0;
          for (int64_t j = 0; j < V; ++j) {
            dS[i * V + j] += scale * qt[i] * dot[j];
            acc += cur[i * V + j] * dot[j];
          }
          dqt[i] = scale * acc;
        }
        // S_t = P + beta k u^T with P = a S_{t-1} and u = v - P^T k.
        // du = beta dS^T k; dk = beta dS u - P du; dP = dS - k du^T; dbeta = <dS, k u^T>.
        T db = 0;
        for (int64_t j = 0; j < V; ++j) {
          T acc = 0;
          for (int64_t i = 0; i < K; ++i) acc += dS[i * V + j] * kt[i];
          du[j] = bt * acc;
          db += acc * u[j];
          dvt[j] = du[j];
        }
        dbeta[s] = db;
        T dgs = 0;
        for (int64_t i = 0; i < K; ++i) {
          T acc = 0;
          for (int64_t j = 0; j < V; ++j) {
            const T P = a * prev[i * V + j];
            acc += bt * dS[i * V + j] * u[j] - P * du[j];
            const T dP = dS[i * V + j] - kt[i] * du[j];
            dgs += dP * P;                 // dg = <dP, P>, P = exp(g) S_{t-1}
            dS[i * V + j] = a * dP;        // dS_{t-1} = exp(g) dP
          }
          dkt[i] = acc;
        }
        dg[s] = dgs;
      }
      if (dh0)
        for (int64_t i = 0; i < KV; ++i) dh0[state_at(d, b, h) + i] = dS[i];
    }
}

#define ROTOR_GATED_DELTA_REFERENCE(T)                                                                          \
  template void gated_delta_forward_reference<T>(const GlaDims&, const T*, const T*, const T*, const T*,       \
                                                 const T*, const T*, T*, T*, T);                                \
  template void gated_delta_backward_reference<T>(const GlaDims&, const T*, const T*, const T*, const T*,      \
                                                  const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                                  T*, T);
ROTOR_GATED_DELTA_REFERENCE(float)
ROTOR_GATED_DELTA_REFERENCE(double)
#undef ROTOR_GATED_DELTA_REFERENCE

}  // namespace rotor::kernels
