// Plain scalar GLA loops, straight from docs/gla.md: the oracles the fast kernels are tested
// against. Backward stores every state (O(T K V) memory) — fine for the small shapes of tests.
#include <cmath>
#include <vector>

#include "rotor/kernels/gla.h"

namespace rotor::kernels {
namespace {

// Offsets of element (b,t,h,0) in a (B,T,H,D) tensor and of (b,h,0,0) in a (B,H,K,V) state.
int64_t at(const GlaDims& d, int64_t b, int64_t t, int64_t h, int64_t D) {
  return ((b * d.T + t) * d.H + h) * D;
}
int64_t state_at(const GlaDims& d, int64_t b, int64_t h) { return (b * d.H + h) * d.K * d.V; }

}  // namespace

template <class T>
void gla_recurrent_forward_reference(const GlaDims& d, const T* q, const T* k, const T* v,
                                     const T* g, const T* h0, T* o, T* ht, T scale) {
  const int64_t K = d.K, V = d.V;
  std::vector<T> S(K * V);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < K * V; ++i) S[i] = h0 ? h0[state_at(d, b, h) + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const T* qt = q + at(d, b, t, h, K);
        const T* kt = k + at(d, b, t, h, K);
        const T* gt = g + at(d, b, t, h, K);
        const T* vt = v + at(d, b, t, h, V);
        T* ot = o + at(d, b, t, h, V);
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < V; ++j) S[i * V + j] = std::exp(gt[i]) * S[i * V + j] + kt[i] * vt[j];
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
void gla_recurrent_backward_reference(const GlaDims& d, const T* q, const T* k, const T* v,
                                      const T* g, const T* h0, const T* dout, const T* dht, T* dq,
                                      T* dk, T* dv, T* dg, T* dh0, T scale) {
  const int64_t K = d.K, V = d.V, KV = K * V;
  // states[t+1] = S_t, states[0] = S_{-1}
  std::vector<T> states((d.T + 1) * KV), dS(KV);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < KV; ++i) states[i] = h0 ? h0[state_at(d, b, h) + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const T* kt = k + at(d, b, t, h, K);
        const T* gt = g + at(d, b, t, h, K);
        const T* vt = v + at(d, b, t, h, V);
        const T* prev = &states[t * KV];
        T* cur = &states[(t + 1) * KV];
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < V; ++j) cur[i * V + j] = std::exp(gt[i]) * prev[i * V + j] + kt[i] * vt[j];
      }
      for (int64_t i = 0; i < KV; ++i) dS[i] = dht ? dht[state_at(d, b, h) + i] : T(0);
      for (int64_t t = d.T - 1; t >= 0; --t) {
        const T* qt = q + at(d, b, t, h, K);
        const T* kt = k + at(d, b, t, h, K);
        const T* gt = g + at(d, b, t, h, K);
        const T* vt = v + at(d, b, t, h, V);
        const T* dot = dout + at(d, b, t, h, V);
        const T* prev = &states[t * KV];
        const T* cur = &states[(t + 1) * KV];
        T* dqt = dq + at(d, b, t, h, K);
        T* dkt = dk + at(d, b, t, h, K);
        T* dgt = dg + at(d, b, t, h, K);
        T* dvt = dv + at(d, b, t, h, V);
        // o_t = scale q_t S_t: dS_t gains scale q_t^T do_t, dq_t = scale S_t do_t.
        for (int64_t i = 0; i < K; ++i) {
          T acc = 0;
          for (int64_t j = 0; j < V; ++j) {
            dS[i * V + j] += scale * qt[i] * dot[j];
            acc += cur[i * V + j] * dot[j];
          }
          dqt[i] = scale * acc;
        }
        // S_t = diag(a_t) S_{t-1} + k_t^T v_t.
        for (int64_t i = 0; i < K; ++i) {
          T acc_k = 0, acc_g = 0;
          for (int64_t j = 0; j < V; ++j) {
            acc_k += dS[i * V + j] * vt[j];
            acc_g += dS[i * V + j] * prev[i * V + j];
          }
          dkt[i] = acc_k;
          dgt[i] = std::exp(gt[i]) * acc_g;
        }
        for (int64_t j = 0; j < V; ++j) {
          T acc = 0;
          for (int64_t i = 0; i < K; ++i) acc += kt[i] * dS[i * V + j];
          dvt[j] = acc;
        }
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < V; ++j) dS[i * V + j] *= std::exp(gt[i]);
      }
      if (dh0)
        for (int64_t i = 0; i < KV; ++i) dh0[state_at(d, b, h) + i] = dS[i];
    }
}

// Complex form: rows r (real) and r+R (imaginary) of the state; c_t = exp(g_t - i dtheta_t).
template <class T>
void gla_complex_recurrent_forward_reference(const GlaDims& d, const T* q, const T* k, const T* v,
                                             const T* g, const T* dtheta, const T* h0, T* o, T* ht,
                                             T scale) {
  const int64_t K = d.K, V = d.V, R = K / 2;
  std::vector<T> S(K * V);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < K * V; ++i) S[i] = h0 ? h0[state_at(d, b, h) + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const T* qt = q + at(d, b, t, h, K);
        const T* kt = k + at(d, b, t, h, K);
        const T* gt = g + at(d, b, t, h, R);
        const T* tht = dtheta + at(d, b, t, h, R);
        const T* vt = v + at(d, b, t, h, V);
        T* ot = o + at(d, b, t, h, V);
        for (int64_t j = 0; j < V; ++j) ot[j] = 0;
        for (int64_t r = 0; r < R; ++r) {
          const T cr = std::exp(gt[r]) * std::cos(tht[r]), ci = -std::exp(gt[r]) * std::sin(tht[r]);
          T* re = &S[r * V];
          T* im = &S[(r + R) * V];
          for (int64_t j = 0; j < V; ++j) {
            const T nr = cr * re[j] - ci * im[j] + kt[r] * vt[j];
            const T ni = cr * im[j] + ci * re[j] + kt[r + R] * vt[j];
            re[j] = nr;
            im[j] = ni;
            ot[j] += scale * (qt[r] * nr + qt[r + R] * ni);
          }
        }
      }
      if (ht)
        for (int64_t i = 0; i < K * V; ++i) ht[state_at(d, b, h) + i] = S[i];
    }
}

// With G = dL/dRe + i dL/dIm: y = c x gives G_x = conj(c) G_y and G_c = sum conj(x) G_y;
// c = exp(g - i dtheta) gives dg = Re(conj(c) G_c), ddtheta = -Im(conj(c) G_c).
template <class T>
void gla_complex_recurrent_backward_reference(const GlaDims& d, const T* q, const T* k,
                                              const T* v, const T* g, const T* dtheta,
                                              const T* h0, const T* dout, const T* dht, T* dq,
                                              T* dk, T* dv, T* dg, T* ddtheta, T* dh0, T scale) {
  const int64_t K = d.K, V = d.V, R = K / 2, KV = K * V;
  std::vector<T> states((d.T + 1) * KV), dS(KV);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < KV; ++i) states[i] = h0 ? h0[state_at(d, b, h) + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const T* kt = k + at(d, b, t, h, K);
        const T* gt = g + at(d, b, t, h, R);
        const T* tht = dtheta + at(d, b, t, h, R);
        const T* vt = v + at(d, b, t, h, V);
        const T* prev = &states[t * KV];
        T* cur = &states[(t + 1) * KV];
        for (int64_t r = 0; r < R; ++r) {
          const T cr = std::exp(gt[r]) * std::cos(tht[r]), ci = -std::exp(gt[r]) * std::sin(tht[r]);
          for (int64_t j = 0; j < V; ++j) {
            const T pr = prev[r * V + j], pi = prev[(r + R) * V + j];
            cur[r * V + j] = cr * pr - ci * pi + kt[r] * vt[j];
            cur[(r + R) * V + j] = cr * pi + ci * pr + kt[r + R] * vt[j];
          }
        }
      }
      for (int64_t i = 0; i < KV; ++i) dS[i] = dht ? dht[state_at(d, b, h) + i] : T(0);
      for (int64_t t = d.T - 1; t >= 0; --t) {
        const T* qt = q + at(d, b, t, h, K);
        const T* kt = k + at(d, b, t, h, K);
        const T* gt = g + at(d, b, t, h, R);
        const T* tht = dtheta + at(d, b, t, h, R);
        const T* vt = v + at(d, b, t, h, V);
        const T* dot = dout + at(d, b, t, h, V);
        const T* prev = &states[t * KV];
        const T* cur = &states[(t + 1) * KV];
        T* dqt = dq + at(d, b, t, h, K);
        T* dkt = dk + at(d, b, t, h, K);
        T* dvt = dv + at(d, b, t, h, V);
        T* dgt = dg + at(d, b, t, h, R);
        T* dtht = ddtheta + at(d, b, t, h, R);
        // o_t = scale Re(conj(z_q) h_t): G_h += scale do z_q, G_zq = scale sum_j do_j h_t[:, j].
        for (int64_t r = 0; r < R; ++r) {
          T accr = 0, acci = 0;
          for (int64_t j = 0; j < V; ++j) {
            dS[r * V + j] += scale * dot[j] * qt[r];
            dS[(r + R) * V + j] += scale * dot[j] * qt[r + R];
            accr += dot[j] * cur[r * V + j];
            acci += dot[j] * cur[(r + R) * V + j];
          }
          dqt[r] = scale * accr;
          dqt[r + R] = scale * acci;
        }
        for (int64_t j = 0; j < V; ++j) dvt[j] = 0;
        for (int64_t r = 0; r < R; ++r) {
          const T cr = std::exp(gt[r]) * std::cos(tht[r]), ci = -std::exp(gt[r]) * std::sin(tht[r]);
          T gkr = 0, gki = 0, gcr = 0, gci = 0;
          for (int64_t j = 0; j < V; ++j) {
            const T Gr = dS[r * V + j], Gi = dS[(r + R) * V + j];
            const T pr = prev[r * V + j], pi = prev[(r + R) * V + j];
            gkr += Gr * vt[j];
            gki += Gi * vt[j];
            dvt[j] += kt[r] * Gr + kt[r + R] * Gi;
            gcr += pr * Gr + pi * Gi;  // conj(prev) * G
            gci += pr * Gi - pi * Gr;
            dS[r * V + j] = cr * Gr + ci * Gi;  // conj(c) * G
            dS[(r + R) * V + j] = cr * Gi - ci * Gr;
          }
          dkt[r] = gkr;
          dkt[r + R] = gki;
          // conj(c) G_c
          const T wr = cr * gcr + ci * gci, wi = cr * gci - ci * gcr;
          dgt[r] = wr;
          dtht[r] = -wi;
        }
      }
      if (dh0)
        for (int64_t i = 0; i < KV; ++i) dh0[state_at(d, b, h) + i] = dS[i];
    }
}

#define ROTOR_GLA_REFERENCE(T)                                                                       \
  template void gla_recurrent_forward_reference<T>(const GlaDims&, const T*, const T*, const T*,     \
                                                   const T*, const T*, T*, T*, T);                   \
  template void gla_recurrent_backward_reference<T>(const GlaDims&, const T*, const T*, const T*,    \
                                                    const T*, const T*, const T*, const T*, T*, T*,  \
                                                    T*, T*, T*, T);                                  \
  template void gla_complex_recurrent_forward_reference<T>(const GlaDims&, const T*, const T*,       \
                                                           const T*, const T*, const T*, const T*,   \
                                                           T*, T*, T);                               \
  template void gla_complex_recurrent_backward_reference<T>(                                         \
      const GlaDims&, const T*, const T*, const T*, const T*, const T*, const T*, const T*,          \
      const T*, T*, T*, T*, T*, T*, T*, T);
ROTOR_GLA_REFERENCE(float)
ROTOR_GLA_REFERENCE(double)
#undef ROTOR_GLA_REFERENCE

}  // namespace rotor::kernels
