// Complex-valued GLA recurrence (the RoPE trick of docs/gla.md), per pair r and value column j:
//
//     h_t[r,j] = c_t[r] h_{t-1}[r,j] + z_{k,t}[r] v_t[j],   c_t = exp(g_t - i dtheta_t)
//     o_t[j]   = scale Re( sum_r conj(z_{q,t}[r]) h_t[r,j] )
//
// Rows r and r+R of the (K,V) state block hold Re h and Im h. Vectorised along V, parallel over
// sequences; backward checkpoints states every ~sqrt(T) steps like the real recurrent kernel.
// Complex gradients G = dL/dRe + i dL/dIm: y = c x gives G_x = conj(c) G_y, G_c = sum conj(x) G_y.
#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <cmath>

#include "rotor/kernels/gla.h"
#include "rotor/kernels/gla_common.h"

namespace rotor::kernels {
using namespace gla_simd;
using namespace gla_common;
namespace {

// h <- c ⊙ p + z_k v^T from the previous state p = P (P == S: in place); writes
// o = scale Re(conj(z_q)^T h) when o != nullptr.
template <class T>
void complex_step_forward(int64_t R, int64_t V, const T* P, T* S, const T* q, const T* k, const T* v,
                          const T* g, const T* dtheta, T* o, T scale) {
  if (o) std::fill(o, o + V, T(0));
  for (int64_t r = 0; r < R; ++r) {
    const T gamma = std::exp(g[r]);
    const T cr = gamma * std::cos(dtheta[r]), ci = -gamma * std::sin(dtheta[r]);
    const T kr = k[r], ki = k[r + R];
    T* re = S + r * V;
    T* im = S + (r + R) * V;
    const T* pre = P + r * V;
    const T* pim = P + (r + R) * V;
    const T qr = o ? scale * q[r] : T(0), qi = o ? scale * q[r + R] : T(0);
    for (int64_t j = 0; j < V; j += width<T>) {
      const int64_t n = V - j;
      const Vec<T> x = load(pre + j, n), y = load(pim + j, n), vv = load(v + j, n);
      const Vec<T> nr = cr * x - ci * y + kr * vv;
      const Vec<T> ni = cr * y + ci * x + ki * vv;
      store(re + j, nr, n);
      store(im + j, ni, n);
      if (o) store(o + j, load(o + j, n) + qr * nr + qi * ni, n);
    }
  }
}

// One backward step at time t: dS holds G(h_t) without the o_t term on entry, G(h_{t-1}) on exit.
template <class T>
void complex_step_backward(int64_t R, int64_t V, T* dS, const T* cur, const T* prev, const T* q,
                           const T* k, const T* v, const T* g, const T* dtheta, const T* dout,
                           T* dq, T* dk, T* dv, T* dg, T* ddtheta, T scale) {
  std::fill(dv, dv + V, T(0));
  for (int64_t r = 0; r < R; ++r) {
    const T gamma = std::exp(g[r]);
    const T cr = gamma * std::cos(dtheta[r]), ci = -gamma * std::sin(dtheta[r]);
    const T qr = scale * q[r], qi = scale * q[r + R], kr = k[r], ki = k[r + R];
    T* Gre = dS + r * V;
    T* Gim = dS + (r + R) * V;
    const T *Hre = cur + r * V, *Him = cur + (r + R) * V;
    const T *Pre = prev + r * V, *Pim = prev + (r + R) * V;
    Vec<T> aqr(T(0)), aqi(T(0)), akr(T(0)), aki(T(0)), acr(T(0)), aci(T(0));
    for (int64_t j = 0; j < V; j += width<T>) {
      const int64_t n = V - j;
      const Vec<T> dov = load(dout + j, n), vv = load(v + j, n);
      const Vec<T> Gr = load(Gre + j, n) + qr * dov, Gi = load(Gim + j, n) + qi * dov;
      const Vec<T> pr = load(Pre + j, n), pi = load(Pim + j, n);
      aqr += dov * load(Hre + j, n);
      aqi += dov * load(Him + j, n);
      akr += Gr * vv;
      aki += Gi * vv;
      acr += pr * Gr + pi * Gi;
      aci += pr * Gi - pi * Gr;
      store(dv + j, load(dv + j, n) + kr * Gr + ki * Gi, n);
      store(Gre + j, cr * Gr + ci * Gi, n);
      store(Gim + j, cr * Gi - ci * Gr, n);
    }
    dq[r] = scale * sum(aqr);
    dq[r + R] = scale * sum(aqi);
    dk[r] = sum(akr);
    dk[r + R] = sum(aki);
    const T gcr = sum(acr), gci = sum(aci);
    dg[r] = cr * gcr + ci * gci;         // Re(conj(c) G_c)
    ddtheta[r] = -(cr * gci - ci * gcr);  // -Im(conj(c) G_c)
  }
}

void check_complex_dims(const GlaDims& d, const char* op) {
  check_dims(d, op);
  ROTOR_CHECK(d.K % 2 == 0, op, "K must be even (pairs of the half-split layout), got K=", d.K);
}

}  // namespace

template <class T>
void gla_complex_recurrent_forward(const GlaDims& d, const T* q, const T* k, const T* v, const T* g,
                                   const T* dtheta, const T* h0, T* o, T* ht, T scale) {
  check_complex_dims(d, "gla_complex_recurrent_forward");
  const int64_t K = d.K, V = d.V, R = K / 2;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Scratch<T>::elements(K * V));
    T* S = mem.take(K * V);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      copy_state(S, h0 ? h0 + s.state() : nullptr, K * V);
      for (int64_t t = 0; t < d.T; ++t)
        complex_step_forward(R, V, S, S, q + s.x(t, K), k + s.x(t, K), v + s.x(t, V),
                             g + s.x(t, R), dtheta + s.x(t, R), o + s.x(t, V), scale);
      if (ht) std::copy(S, S + K * V, ht + s.state());
    }
  });
}

template <class T>
void gla_complex_recurrent_backward(const GlaDims& d, const T* q, const T* k, const T* v,
                                    const T* g, const T* dtheta, const T* h0, const T* dout,
                                    const T* dht, T* dq, T* dk, T* dv, T* dg, T* ddtheta, T* dh0,
                                    T scale) {
  check_complex_dims(d, "gla_complex_recurrent_backward");
  const int64_t K = d.K, V = d.V, R = K / 2, KV = K * V;
  const int64_t seg = segment_length(d.T), nseg = (d.T + seg - 1) / seg;
  parallel_for(d.B * d.H, sequences_per_block(d), [&](int64_t lo, int64_t hi) {
    Scratch<T> mem(Scratch<T>::elements(nseg * KV, (seg + 1) * KV, KV));
    T *checkpoints = mem.take(nseg * KV), *states = mem.take((seg + 1) * KV), *dS = mem.take(KV);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const Seq s(d, bh);
      auto step = [&](int64_t t, const T* P, T* S) {
        complex_step_forward<T>(R, V, P, S, nullptr, k + s.x(t, K), v + s.x(t, V), g + s.x(t, R),
                                dtheta + s.x(t, R), nullptr, scale);
      };
      T* S = dS;  // dS is free until the backward sweep
      copy_state(S, h0 ? h0 + s.state() : nullptr, KV);
      for (int64_t t = 0; t < d.T; ++t) {
        if (t % seg == 0) std::copy(S, S + KV, checkpoints + (t / seg) * KV);
        step(t, S, S);
      }
      copy_state(dS, dht ? dht + s.state() : nullptr, KV);
      for (int64_t c = nseg - 1; c >= 0; --c) {
        const int64_t t0 = c * seg, t1 = std::min(d.T, t0 + seg);
        std::copy(checkpoints + c * KV, checkpoints + (c + 1) * KV, states);
        for (int64_t t = t0; t < t1; ++t) {
          T* next = states + (t - t0 + 1) * KV;
          step(t, next - KV, next);
        }
        for (int64_t t = t1 - 1; t >= t0; --t)
          complex_step_backward(R, V, dS, states + (t - t0 + 1) * KV, states + (t - t0) * KV,
                                q + s.x(t, K), k + s.x(t, K), v + s.x(t, V), g + s.x(t, R),
                                dtheta + s.x(t, R), dout + s.x(t, V), dq + s.x(t, K), dk + s.x(t, K),
                                dv + s.x(t, V), dg + s.x(t, R), ddtheta + s.x(t, R), scale);
      }
      if (dh0) std::copy(dS, dS + KV, dh0 + s.state());
    }
  });
}

template void gla_complex_recurrent_forward<float>(const GlaDims&, const float*, const float*,
                                                   const float*, const float*, const float*,
                                                   const float*, float*, float*, float);
template void gla_complex_recurrent_forward<double>(const GlaDims&, const double*, const double*,
                                                    const double*, const double*, const double*,
                                                    const double*, double*, double*, double);
template void gla_complex_recurrent_backward<float>(const GlaDims&, const float*, const float*,
                                                    const float*, const float*, const float*,
                                                    const float*, const float*, const float*,
                                                    float*, float*, float*, float*, float*, float*,
                                                    float);
template void gla_complex_recurrent_backward<double>(const GlaDims&, const double*, const double*,
                                                     const double*, const double*, const double*,
                                                     const double*, const double*, const double*,
                                                     double*, double*, double*, double*, double*,
                                                     double*, double);

}  // namespace rotor::kernels
