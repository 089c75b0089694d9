// The plain O(T²) attention loops: one query row at a time, the whole probability row in a
// buffer. Slow and obviously right; the tests compare the tiled kernels against them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "rotor/kernels/attention.h"

namespace rotor::kernels {
namespace {

// Number of keys query i attends to.
int64_t visible_keys(const AttentionDims& d, int64_t i, bool causal) {
  return causal ? i + (d.Tk - d.Tq) + 1 : d.Tk;
}

// p[j] = softmax_j(scale · q_i·k_j) over the n visible keys; returns the logsumexp.
template <class T>
T softmax_row(T* p, const T* qi, const T* kb, int64_t n, const AttentionDims& d, T scale) {
  const int64_t ldk = d.H * d.D;
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    T s = 0;
    for (int64_t c = 0; c < d.D; ++c) s += qi[c] * kb[j * ldk + c];
    p[j] = scale * s;
    mx = std::max(mx, p[j]);
  }
  T sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += p[j] = std::exp(p[j] - mx);
  for (int64_t j = 0; j < n; ++j) p[j] /= sum;
  return mx + std::log(sum);
}

}  // namespace

template <class T>
void attention_forward_reference(T* o, T* lse, const T* q, const T* k, const T* v, const AttentionDims& d, T scale,
                                 bool causal) {
  attention_check_dims("attention_forward_reference", d, causal);
  const int64_t ldq = d.H * d.D, ldv = d.H * d.Dv;
  std::vector<T> p(size_t(d.Tk));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const T* kb = k + b * d.Tk * ldq + h * d.D;
      const T* vb = v + b * d.Tk * ldv + h * d.Dv;
      for (int64_t i = 0; i < d.Tq; ++i) {
        const int64_t n = visible_keys(d, i, causal);
        T l = softmax_row(p.data(), q + (b * d.Tq + i) * ldq + h * d.D, kb, n, d, scale);
        if (lse) lse[(b * d.H + h) * d.Tq + i] = l;
        T* oi = o + (b * d.Tq + i) * ldv + h * d.Dv;
        for (int64_t c = 0; c < d.Dv; ++c) {
          T acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += p[j] * vb[j * ldv + c];
          oi[c] = acc;
        }
      }
    }
}

// With P = softmax(S), S = scale·q kᵀ:  dv = Pᵀ do,  dP = do vᵀ,  dS_ij = P_ij (dP_ij − Σ_l P_il dP_il),
// dq = scale · dS k,  dk = scale · dSᵀ q.
template <class T>
void attention_backward_reference(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                                  const AttentionDims& d, T scale, bool causal) {
  attention_check_dims("attention_backward_reference", d, causal);
  const int64_t ldq = d.H * d.D, ldv = d.H * d.Dv;
  std::fill(dk, dk + d.B * d.Tk * ldq, T(0));
  std::fill(dv, dv + d.B * d.Tk * ldv, T(0));
  std::vector<T> p(size_t(d.Tk)), dp(size_t(d.Tk));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const T* kb = k + b * d.Tk * ldq + h * d.D;
      const T* vb = v + b * d.Tk * ldv + h * d.Dv;
      T* dkb = dk + b * d.Tk * ldq + h * d.D;
      T* dvb = dv + b * d.Tk * ldv + h * d.Dv;
      for (int64_t i = 0; i < d.Tq; ++i) {
        const int64_t n = visible_keys(d, i, causal);
        const T* qi = q + (b * d.Tq + i) * ldq + h * d.D;
        const T* doi = dout + (b * d.Tq + i) * ldv + h * d.Dv;
        softmax_row(p.data(), qi, kb, n, d, scale);
        T delta = 0;
        for (int64_t j = 0; j < n; ++j) {
          T s = 0;
          for (int64_t c = 0; c < d.Dv; ++c) s += doi[c] * vb[j * ldv + c];
          dp[j] = s;
          delta += p[j] * s;
        }
        T* dqi = dq + (b * d.Tq + i) * ldq + h * d.D;
        std::fill(dqi, dqi + d.D, T(0));
        for (int64_t j = 0; j < n; ++j) {
          const T ds = scale * p[j] * (dp[j] - delta);
          for (int64_t c = 0; c < d.Dv; ++c) dvb[j * ldv + c] += p[j] * doi[c];
          for (int64_t c = 0; c < d.D; ++c) {
            dqi[c] += ds * kb[j * ldq + c];
            dkb[j * ldq + c] += ds * qi[c];
          }
        }
      }
    }
}

#define ROTOR_INSTANTIATE(T)                                                                                    \
  template void attention_forward_reference<T>(T*, T*, const T*, const T*, const T*, const AttentionDims&, T,  \
                                               bool);                                                         \
  template void attention_backward_reference<T>(T*, T*, T*, const T*, const T*, const T*, const T*,            \
                                                const AttentionDims&, T, bool);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
