#include "rotor/kernels/conv1d.h"

#include <algorithm>
#include <vector>

#include "rotor/core/parallel.h"
#include "rotor/kernels/blas.h"

namespace rotor::kernels {
namespace {

// cols (Cg*K, Lout): cols[c*K + j, t] = x[c, t*stride + j*dilation - pad_left] of one (batch, group).
template <class T>
void im2col(const T* x, T* cols, int64_t Cg, const Conv1dShape& s) {
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t j = 0; j < s.K; ++j) {
      T* row = cols + (c * s.K + j) * s.Lout;
      const T* xc = x + c * s.L;
      for (int64_t t = 0; t < s.Lout; ++t) {
        const int64_t at = t * s.stride + j * s.dilation - s.pad_left;
        row[t] = at >= 0 && at < s.L ? xc[at] : T(0);
      }
    }
}

// The adjoint of im2col: dx[c, at] += dcols[c*K + j, t]; dx (Cg, L) zeroed first.
template <class T>
void col2im(const T* dcols, T* dx, int64_t Cg, const Conv1dShape& s) {
  std::fill(dx, dx + Cg * s.L, T(0));
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t j = 0; j < s.K; ++j) {
      const T* row = dcols + (c * s.K + j) * s.Lout;
      T* xc = dx + c * s.L;
      for (int64_t t = 0; t < s.Lout; ++t) {
        const int64_t at = t * s.stride + j * s.dilation - s.pad_left;
        if (at >= 0 && at < s.L) xc[at] += row[t];
      }
    }
}

}  // namespace

template <class T>
void conv1d_forward(const T* x, const T* w, const T* bias, T* y, const Conv1dShape& s) {
  const int64_t Cg = s.Cin / s.G, Cog = s.Cout / s.G, CK = Cg * s.K;
  parallel_blocks(s.B * s.G, [&](int64_t bg) {
    const int64_t b = bg / s.G, g = bg % s.G;
    T* yb = y + (b * s.Cout + g * Cog) * s.Lout;
    if (bias)
      for (int64_t o = 0; o < Cog; ++o) std::fill(yb + o * s.Lout, yb + (o + 1) * s.Lout, bias[g * Cog + o]);
    if (s.Lout == 0 || Cog == 0) return;
    if (CK == 0) {
      if (!bias) std::fill(yb, yb + Cog * s.Lout, T(0));
      return;
    }
    std::vector<T> cols(size_t(CK * s.Lout));
    im2col(x + (b * s.Cin + g * Cg) * s.L, cols.data(), Cg, s);
    gemm_serial<T>(false, false, Cog, s.Lout, CK, T(1), w + g * Cog * CK, CK, cols.data(), s.Lout,
                   bias ? T(1) : T(0), yb, s.Lout);
  });
}

template <class T>
void conv1d_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, const Conv1dShape& s) {
  const int64_t Cg = s.Cin / s.G, Cog = s.Cout / s.G, CK = Cg * s.K;
  if (dx)  // dcols = w_g^T dy_bg, then back through im2col; each task owns its channels of dx
    parallel_blocks(s.B * s.G, [&](int64_t bg) {
      const int64_t b = bg / s.G, g = bg % s.G;
      T* dxb = dx + (b * s.Cin + g * Cg) * s.L;
      if (s.Lout == 0 || Cog == 0 || CK == 0) return std::fill(dxb, dxb + Cg * s.L, T(0));
      std::vector<T> dcols(size_t(CK * s.Lout));
      gemm_serial<T>(true, false, CK, s.Lout, Cog, T(1), w + g * Cog * CK, CK, dy + (b * s.Cout + g * Cog) * s.Lout,
                     s.Lout, T(0), dcols.data(), s.Lout);
      col2im(dcols.data(), dxb, Cg, s);
    });
  if (dw)  // dw_g = sum over batches of dy_bg cols_bg^T, batches in order
    parallel_blocks(s.G, [&](int64_t g) {
      T* dwg = dw + g * Cog * CK;
      std::fill(dwg, dwg + Cog * CK, T(0));
      if (s.Lout == 0 || Cog == 0 || CK == 0) return;
      std::vector<T> cols(size_t(CK * s.Lout));
      for (int64_t b = 0; b < s.B; ++b) {
        im2col(x + (b * s.Cin + g * Cg) * s.L, cols.data(), Cg, s);
        gemm_serial<T>(false, true, Cog, CK, s.Lout, T(1), dy + (b * s.Cout + g * Cog) * s.Lout, s.Lout, cols.data(),
                       s.Lout, T(1), dwg, CK);
      }
    });
  if (dbias)
    for (int64_t o = 0; o < s.Cout; ++o) {
      T acc = 0;
      for (int64_t b = 0; b < s.B; ++b)
        for (int64_t t = 0; t < s.Lout; ++t) acc += dy[(b * s.Cout + o) * s.Lout + t];
      dbias[o] = acc;
    }
}

template <class T>
void conv1d_forward_reference(const T* x, const T* w, const T* bias, T* y, const Conv1dShape& s) {
  const int64_t Cg = s.Cin / s.G, Cog = s.Cout / s.G;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t t = 0; t < s.Lout; ++t) {
        T acc = bias ? bias[o] : T(0);
        const int64_t g = o / Cog;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t j = 0; j < s.K; ++j) {
            const int64_t at = t * s.stride + j * s.dilation - s.pad_left;
            if (at >= 0 && at < s.L) acc += w[(o * Cg + c) * s.K + j] * x[(b * s.Cin + g * Cg + c) * s.L + at];
          }
        y[(b * s.Cout + o) * s.Lout + t] = acc;
      }
}

#define ROTOR_INSTANTIATE(T)                                                                     \
  template void conv1d_forward<T>(const T*, const T*, const T*, T*, const Conv1dShape&);        \
  template void conv1d_backward<T>(const T*, const T*, const T*, T*, T*, T*, const Conv1dShape&); \
  template void conv1d_forward_reference<T>(const T*, const T*, const T*, T*, const Conv1dShape&);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
