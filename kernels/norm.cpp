// One row kernel serves the three norms: the weight and the gate are optional (null = ones),
// and inv_n is 1/D (RMS) or 1 (L2). Rows are SIMD batches along D; a task is a fixed block of
// rows, which is also the unit of dw's partial sums.
#include "rotor/kernels/gla_simd.h"  // first: see kernels/simd.h on the intrinsics headers

#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/kernels/norm.h"

namespace rotor::kernels {
using namespace gla_simd;

namespace {
constexpr int64_t kRowBlock = 256;  // rows per task, and per partial sum of dw

template <class V>
V sigmoid_of(const V& g) {
  return V(1) / (V(1) + xsimd::exp(-g));
}

template <class T>
void norm_forward(const T* x, const T* w, const T* gate, T* y, T* rstd, int64_t N, int64_t D, T inv_n, T eps) {
  parallel_blocks((N + kRowBlock - 1) / kRowBlock, [&](int64_t b) {
    for (int64_t n = b * kRowBlock; n < std::min(N, (b + 1) * kRowBlock); ++n) {
      const T* xr = x + n * D;
      const T r = T(1) / std::sqrt(map_sum<T>(D, [](auto v) { return v * v; }, xr) * inv_n + eps);
      rstd[n] = r;
      T* yr = y + n * D;
      if (gate) {
        const T* gr = gate + n * D;
        map(D, yr, [r](auto v, auto wv, auto g) { return v * r * wv * (g * sigmoid_of(g)); }, xr, w, gr);
      } else if (w) {
        map(D, yr, [r](auto v, auto wv) { return v * r * wv; }, xr, w);
      } else {
        map(D, yr, [r](auto v) { return v * r; }, xr);
      }
    }
  });
}

// u = dy * w * silu(gate) is the gradient reaching the plain normalised row x * rstd.
template <class T>
void norm_backward(const T* x, const T* w, const T* gate, const T* rstd, const T* dy, T* dx, T* dw, T* dgate,
                   int64_t N, int64_t D, T inv_n) {
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<T> partial(dw ? size_t(blocks * D) : 0, T(0));
  std::vector<T> ones(w ? 0 : size_t(D), T(1));
  const T* wv = w ? w : ones.data();
  parallel_blocks(blocks, [&](int64_t b) {
    T* pw = dw ? partial.data() + b * D : nullptr;
    for (int64_t n = b * kRowBlock; n < std::min(N, (b + 1) * kRowBlock); ++n) {
      const T *xr = x + n * D, *gr = dy + n * D, *gt = gate ? gate + n * D : nullptr;
      const T r = rstd[n];
      T* out = dx + n * D;
      T dot;
      if (gt) {
        dot = map_sum<T>(D, [](auto xv, auto g, auto ww, auto a) { return xv * g * ww * (a * sigmoid_of(a)); }, xr, gr,
                         wv, gt);
      } else {
        dot = map_sum<T>(D, [](auto xv, auto g, auto ww) { return xv * g * ww; }, xr, gr, wv);
      }
      const T c = r * r * r * dot * inv_n;
      for (int64_t j = 0; j < D; j += width<T>) {
        const int64_t m = D - j;
        const Vec<T> xv = load(xr + j, m), g = load(gr + j, m), ww = load(wv + j, m);
        Vec<T> s(T(1));
        if (gt) {
          const Vec<T> a = load(gt + j, m), sg = sigmoid_of(a);
          s = a * sg;
          // dgate = dy * x * rstd * w * silu'(a), silu'(a) = sg * (1 + a * (1 - sg))
          store(dgate + n * D + j, g * xv * r * ww * (sg * (Vec<T>(T(1)) + a * (Vec<T>(T(1)) - sg))), m);
        }
        store(out + j, r * ww * g * s - c * xv, m);
        if (pw) store(pw + j, load(pw + j, m) + g * xv * r * s, m);
      }
    }
  });
  if (!dw) return;
  for (int64_t d = 0; d < D; ++d) dw[d] = 0;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t d = 0; d < D; ++d) dw[d] += partial[size_t(b * D + d)];
}
}  // namespace

template <class T>
void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t D, T eps) {
  norm_forward<T>(x, w, nullptr, y, rstd, N, D, T(1) / T(D), eps);
}
template <class T>
void rms_norm_backward(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, int64_t N, int64_t D) {
  norm_backward<T>(x, w, nullptr, rstd, dy, dx, dw, nullptr, N, D, T(1) / T(D));
}
template <class T>
void gated_rms_norm_forward(const T* x, const T* w, const T* gate, T* y, T* rstd, int64_t N, int64_t D, T eps) {
  norm_forward<T>(x, w, gate, y, rstd, N, D, T(1) / T(D), eps);
}
template <class T>
void gated_rms_norm_backward(const T* x, const T* w, const T* gate, const T* rstd, const T* dy, T* dx, T* dw,
                             T* dgate, int64_t N, int64_t D) {
  norm_backward<T>(x, w, gate, rstd, dy, dx, dw, dgate, N, D, T(1) / T(D));
}
template <class T>
void l2_norm_forward(const T* x, T* y, T* rstd, int64_t N, int64_t D, T eps) {
  norm_forward<T>(x, nullptr, nullptr, y, rstd, N, D, T(1), eps);
}
template <class T>
void l2_norm_backward(const T* x, const T* rstd, const T* dy, T* dx, int64_t N, int64_t D) {
  norm_backward<T>(x, nullptr, nullptr, rstd, dy, dx, nullptr, nullptr, N, D, T(1));
}

// Layer norm: plain loops, two passes per row (a SIMD tail padded with zeros would add
// (0 - mean)^2 to the variance).
template <class T>
void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t N, int64_t D, T eps) {
  parallel_blocks((N + kRowBlock - 1) / kRowBlock, [&](int64_t blk) {
    for (int64_t n = blk * kRowBlock; n < std::min(N, (blk + 1) * kRowBlock); ++n) {
      const T* xr = x + n * D;
      T s = 0;
      for (int64_t j = 0; j < D; ++j) s += xr[j];
      const T mu = s / T(D);
      T ss = 0;
      for (int64_t j = 0; j < D; ++j) ss += (xr[j] - mu) * (xr[j] - mu);
      const T r = T(1) / std::sqrt(ss / T(D) + eps);
      mean[n] = mu, rstd[n] = r;
      T* yr = y + n * D;
      for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mu) * r * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
    }
  });
}

template <class T>
void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx, T* dw, T* db,
                         int64_t N, int64_t D) {
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<T> pw(dw ? size_t(blocks * D) : 0, T(0)), pb(db ? size_t(blocks * D) : 0, T(0));
  parallel_blocks(blocks, [&](int64_t blk) {
    // g and xh computed once and kept: recomputed, a contracted multiply-add could round them
    // differently, and g - mean(g) would not vanish where it must (D = 1).
    std::vector<T> gs(static_cast<size_t>(D)), xhs(static_cast<size_t>(D));
    for (int64_t n = blk * kRowBlock; n < std::min(N, (blk + 1) * kRowBlock); ++n) {
      const T *xr = x + n * D, *gr = dy + n * D;
      const T mu = mean[n], r = rstd[n];
      T sg = 0, sgx = 0;
      for (int64_t j = 0; j < D; ++j) {
        const T g = gr[j] * (w ? w[j] : T(1)), xh = (xr[j] - mu) * r;
        gs[size_t(j)] = g, xhs[size_t(j)] = xh;
        sg += g, sgx += g * xh;
      }
      sg /= T(D), sgx /= T(D);
      T* out = dx + n * D;
      for (int64_t j = 0; j < D; ++j) {
        const T g = gs[size_t(j)], xh = xhs[size_t(j)];
        out[j] = r * ((g - sg) - xh * sgx);
        if (dw) pw[size_t(blk * D + j)] += gr[j] * xh;
        if (db) pb[size_t(blk * D + j)] += gr[j];
      }
    }
  });
  for (int64_t d = 0; d < D; ++d) {
    if (dw) dw[d] = 0;
    if (db) db[d] = 0;
  }
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t d = 0; d < D; ++d) {
      if (dw) dw[d] += pw[size_t(blk * D + d)];
      if (db) db[d] += pb[size_t(blk * D + d)];
    }
}

#define ROTOR_INSTANTIATE(T)                                                                                      \
  template void rms_norm_forward<T>(const T*, const T*, T*, T*, int64_t, int64_t, T);                          \
  template void rms_norm_backward<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t, int64_t);        \
  template void gated_rms_norm_forward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, T);          \
  template void gated_rms_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, int64_t, \
                                           int64_t);                                                              \
  template void l2_norm_forward<T>(const T*, T*, T*, int64_t, int64_t, T);                                     \
  template void l2_norm_backward<T>(const T*, const T*, const T*, T*, int64_t, int64_t);                      \
  template void layer_norm_forward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, T);         \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, int64_t,  \
                                       int64_t);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
