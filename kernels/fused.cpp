#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/kernels/fused.h"

namespace rotor::kernels {
using namespace gla_simd;

namespace {
template <class V>
V sigmoid_of(const V& g) {
  return V(1) / (V(1) + xsimd::exp(-g));
}
// Rows per task for a row length: about kParallelGrain elements.
int64_t row_grain(int64_t len) { return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, len)); }
}  // namespace

template <class T>
void swiglu_forward(const T* h, T* y, int64_t N, int64_t I) {
  parallel_for(N, row_grain(2 * I), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n)
      map(I, y + n * I, [](auto a, auto u) { return a * sigmoid_of(a) * u; }, h + n * 2 * I, h + n * 2 * I + I);
  });
}

template <class T>
void swiglu_backward(const T* h, const T* dy, T* dh, int64_t N, int64_t I) {
  parallel_for(N, row_grain(2 * I), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const T *a = h + n * 2 * I, *u = a + I, *g = dy + n * I;
      T *da = dh + n * 2 * I, *du = da + I;
      for (int64_t j = 0; j < I; j += width<T>) {
        const int64_t m = I - j;
        const Vec<T> av = load(a + j, m), uv = load(u + j, m), gv = load(g + j, m), s = sigmoid_of(av);
        store(da + j, gv * uv * (s * (Vec<T>(T(1)) + av * (Vec<T>(T(1)) - s))), m);
        store(du + j, gv * av * s, m);
      }
    }
  });
}

namespace {
// Row p of the padded input [history ; x] of sequence b: p < W-1 is history (or zeros).
template <class T>
struct Padded {
  const T *x, *history;
  int64_t T_, C, W;
  const T* row(int64_t b, int64_t p, const T* zeros) const {
    if (p >= W - 1) return x + (b * T_ + p - (W - 1)) * C;
    return history ? history + (b * (W - 1) + p) * C : zeros;
  }
};

// The taps as (W, C), so that one tap of consecutive channels is one SIMD load.
template <class T>
std::vector<T> taps_by_offset(const T* w, int64_t C, int64_t W) {
  std::vector<T> wt(size_t(W * C));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < W; ++j) wt[size_t(j * C + c)] = w[c * W + j];
  return wt;
}

// z = bias + sum_j wt[j] * xp[t + j] for one row t, channels [c, c + m).
template <class T>
Vec<T> conv_at(const Padded<T>& xp, const T* wt, const T* bias, const T* zeros, int64_t b, int64_t t, int64_t c,
               int64_t m) {
  Vec<T> z = bias ? load(bias + c, m) : Vec<T>(T(0));
  for (int64_t j = 0; j < xp.W; ++j) z += load(wt + j * xp.C + c, m) * load(xp.row(b, t + j, zeros) + c, m);
  return z;
}
}  // namespace

template <class T>
void short_conv_forward(const T* x, const T* w, const T* bias, const T* history, T* y, int64_t B, int64_t T_,
                        int64_t C, int64_t W, bool silu) {
  const Padded<T> xp{x, history, T_, C, W};
  const std::vector<T> zeros(size_t(C), T(0)), wt = taps_by_offset(w, C, W);
  parallel_for(B * T_, row_grain(C * W), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / T_, t = r % T_;
      for (int64_t c = 0; c < C; c += width<T>) {
        const int64_t m = C - c;
        const Vec<T> z = conv_at(xp, wt.data(), bias, zeros.data(), b, t, c, m);
        store(y + r * C + c, silu ? z * sigmoid_of(z) : z, m);
      }
    }
  });
}

template <class T>
void short_conv_backward(const T* x, const T* w, const T* bias, const T* history, const T* dy, T* dx, T* dw,
                         T* dbias, T* dhistory, int64_t B, int64_t T_, int64_t C, int64_t W, bool silu) {
  const Padded<T> xp{x, history, T_, C, W};
  const std::vector<T> zeros(size_t(C), T(0)), wt = taps_by_offset(w, C, W);
  const int64_t P = T_ + W - 1;  // padded rows
  // One task per sequence; its dw and dbias go to a partial of its own, summed in order below.
  std::vector<T> part_w(dw ? size_t(B * C * W) : 0, T(0)), part_b(dbias ? size_t(B * C) : 0, T(0));
  parallel_blocks(B, [&](int64_t b) {
    std::vector<T> dz(size_t(T_ * C));
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t c = 0; c < C; c += width<T>) {
        const int64_t m = C - c;
        Vec<T> g = load(dy + (b * T_ + t) * C + c, m);
        if (silu) {
          const Vec<T> z = conv_at(xp, wt.data(), bias, zeros.data(), b, t, c, m), s = sigmoid_of(z);
          g = g * (s * (Vec<T>(T(1)) + z * (Vec<T>(T(1)) - s)));
        }
        store(dz.data() + t * C + c, g, m);
      }
    // d xp[p] = sum_j w[:, j] * dz[p - j], rows p of the history first.
    for (int64_t p = 0; p < P; ++p) {
      T* out = p >= W - 1 ? dx + (b * T_ + p - (W - 1)) * C : (dhistory ? dhistory + (b * (W - 1) + p) * C : nullptr);
      if (!out) continue;
      for (int64_t c = 0; c < C; c += width<T>) {
        const int64_t m = C - c;
        Vec<T> acc(T(0));
        for (int64_t j = 0; j < W; ++j) {
          const int64_t t = p - j;
          if (t < 0 || t >= T_) continue;
          acc += load(wt.data() + j * C + c, m) * load(dz.data() + t * C + c, m);
        }
        store(out + c, acc, m);
      }
    }
    // dw[c, j] = sum_t dz[t, c] * xp[t + j, c];  dbias[c] = sum_t dz[t, c].
    if (dw)
      for (int64_t j = 0; j < W; ++j)
        for (int64_t c = 0; c < C; c += width<T>) {
          const int64_t m = C - c;
          Vec<T> acc(T(0));
          for (int64_t t = 0; t < T_; ++t) acc += load(dz.data() + t * C + c, m) * load(xp.row(b, t + j, zeros.data()) + c, m);
          alignas(64) T buf[width<T>];
          acc.store_aligned(buf);
          for (int64_t i = 0; i < std::min(m, width<T>); ++i) part_w[size_t((b * C + c + i) * W + j)] = buf[i];
        }
    if (dbias)
      for (int64_t c = 0; c < C; c += width<T>) {
        const int64_t m = C - c;
        Vec<T> acc(T(0));
        for (int64_t t = 0; t < T_; ++t) acc += load(dz.data() + t * C + c, m);
        store(part_b.data() + b * C + c, acc, m);
      }
  });
  if (dw) {
    std::fill(dw, dw + C * W, T(0));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < C * W; ++i) dw[i] += part_w[size_t(b * C * W + i)];
  }
  if (dbias) {
    std::fill(dbias, dbias + C, T(0));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) dbias[c] += part_b[size_t(b * C + c)];
  }
}

#define ROTOR_INSTANTIATE(T)                                                                                     \
  template void swiglu_forward<T>(const T*, T*, int64_t, int64_t);                                              \
  template void swiglu_backward<T>(const T*, const T*, T*, int64_t, int64_t);                                   \
  template void short_conv_forward<T>(const T*, const T*, const T*, const T*, T*, int64_t, int64_t, int64_t,    \
                                      int64_t, bool);                                                            \
  template void short_conv_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, T*, int64_t, \
                                       int64_t, int64_t, int64_t, bool);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
