#include "rotor/kernels/norm.h"

#include <cmath>
#include <vector>

#include "rotor/core/parallel.h"

namespace rotor::kernels {

namespace {
constexpr int64_t kRowBlock = 256;  // rows per task, and per partial sum of dw
}

template <class T>
void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t D, T eps) {
  parallel_blocks((N + kRowBlock - 1) / kRowBlock, [&](int64_t b) {
    for (int64_t n = b * kRowBlock; n < std::min(N, (b + 1) * kRowBlock); ++n) {
      const T* xr = x + n * D;
      T ss = 0;
      for (int64_t d = 0; d < D; ++d) ss += xr[d] * xr[d];
      const T r = T(1) / std::sqrt(ss / T(D) + eps);
      rstd[n] = r;
      T* yr = y + n * D;
      for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] * r * w[d];
    }
  });
}

template <class T>
void rms_norm_backward(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, int64_t N, int64_t D) {
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<T> partial(size_t(blocks * D), T(0));
  parallel_blocks(blocks, [&](int64_t b) {
    T* pw = partial.data() + b * D;
    for (int64_t n = b * kRowBlock; n < std::min(N, (b + 1) * kRowBlock); ++n) {
      const T *xr = x + n * D, *gr = dy + n * D;
      const T r = rstd[n];
      T dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += w[d] * gr[d] * xr[d];
      const T c = r * r * r * dot / T(D);
      T* out = dx + n * D;
      for (int64_t d = 0; d < D; ++d) {
        out[d] = r * w[d] * gr[d] - c * xr[d];
        pw[d] += gr[d] * xr[d] * r;
      }
    }
  });
  for (int64_t d = 0; d < D; ++d) dw[d] = 0;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t d = 0; d < D; ++d) dw[d] += partial[size_t(b * D + d)];
}

#define ROTOR_INSTANTIATE(T)                                                                                   \
  template void rms_norm_forward<T>(const T*, const T*, T*, T*, int64_t, int64_t, T);                       \
  template void rms_norm_backward<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t, int64_t);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
