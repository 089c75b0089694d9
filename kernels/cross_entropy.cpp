#include "rotor/kernels/simd.h"  // first: see there on the intrinsics headers
#include "rotor/kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "rotor/core/parallel.h"

namespace rotor::kernels {
namespace {

constexpr int64_t kRowsPerBlock = 8;  // a fixed partition of rows into parallel tasks

// (max, log Σ exp(x - max)) in one pass: per lane a running max m and a sum s relative to it.
// Four batches share one max update, so the rescaling exp is paid once per 4W elements.
template <class T>
std::pair<T, T> row_logsumexp(const T* x, int64_t n) {
  constexpr int64_t W = batch_size<T>();
  const T lowest = std::numeric_limits<T>::lowest();  // not -inf: exp(m - m) stays defined
  Batch<T> m(lowest), s(T(0));
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    Batch<T> a = Batch<T>::load_unaligned(x + i), b = Batch<T>::load_unaligned(x + i + W),
             c = Batch<T>::load_unaligned(x + i + 2 * W), d = Batch<T>::load_unaligned(x + i + 3 * W);
    Batch<T> mn = xsimd::max(m, xsimd::max(xsimd::max(a, b), xsimd::max(c, d)));
    s = s * xsimd::exp(m - mn) + ((xsimd::exp(a - mn) + xsimd::exp(b - mn)) + (xsimd::exp(c - mn) + xsimd::exp(d - mn)));
    m = mn;
  }
  for (; i + W <= n; i += W) {
    Batch<T> a = Batch<T>::load_unaligned(x + i);
    Batch<T> mn = xsimd::max(m, a);
    s = s * xsimd::exp(m - mn) + xsimd::exp(a - mn);
    m = mn;
  }
  alignas(64) T ml[W], sl[W];
  m.store_aligned(ml);
  s.store_aligned(sl);
  T mx = ml[0];
  for (int64_t j = 1; j < W; ++j) mx = std::max(mx, ml[j]);
  for (int64_t j = i; j < n; ++j) mx = std::max(mx, x[j]);
  T total = 0;
  for (int64_t j = 0; j < W; ++j) total += sl[j] * std::exp(ml[j] - mx);
  for (int64_t j = i; j < n; ++j) total += std::exp(x[j] - mx);
  return {mx, std::log(total)};
}

// d[v] = scale · exp((x[v] - m) - ls), vectorised.
template <class T>
void row_softmax_scaled(const T* x, int64_t n, T m, T ls, T scale, T* d) {
  constexpr int64_t W = batch_size<T>();
  const Batch<T> mb(m), lb(ls), sc(scale);
  int64_t i = 0;
  for (; i + W <= n; i += W) (sc * xsimd::exp((Batch<T>::load_unaligned(x + i) - mb) - lb)).store_unaligned(d + i);
  for (; i < n; ++i) d[i] = scale * std::exp((x[i] - m) - ls);
}

// dlogits of one row: scale · (softmax(x) - onehot(label)), zero for an ignored row.
template <class T>
void write_row_grad(const T* x, int64_t label, int64_t V, int64_t ignore_index, T m, T ls, T scale, T* d) {
  if (label == ignore_index) {
    std::fill(d, d + V, T(0));
    return;
  }
  row_softmax_scaled(x, V, m, ls, scale, d);
  d[label] -= scale;
}

// body(r) for every row: on the calling thread for small problems, else over a fixed partition
// of rows into blocks.
void for_rows(int64_t N, int64_t V, const auto& body) {
  if (N * V <= kParallelGrain) {
    for (int64_t r = 0; r < N; ++r) body(r);
    return;
  }
  parallel_blocks((N + kRowsPerBlock - 1) / kRowsPerBlock, [&](int64_t b) {
    for (int64_t r = b * kRowsPerBlock, hi = std::min(N, r + kRowsPerBlock); r < hi; ++r) body(r);
  });
}

}  // namespace

template <class T>
void cross_entropy_forward(const T* logits, const int64_t* labels, int64_t N, int64_t V, int64_t ignore_index,
                           T* m, T* ls, T* loss, T* dlogits, T scale) {
  for_rows(N, V, [&](int64_t r) {
    const T* x = logits + r * V;
    if (labels[r] == ignore_index) {
      m[r] = ls[r] = loss[r] = T(0);
    } else {
      const auto [mx, l] = row_logsumexp(x, V);
      m[r] = mx;
      ls[r] = l;
      loss[r] = (mx - x[labels[r]]) + l;
    }
    if (dlogits) write_row_grad(x, labels[r], V, ignore_index, m[r], ls[r], scale, dlogits + r * V);
  });
}

template <class T>
void cross_entropy_backward(const T* logits, const int64_t* labels, const T* m, const T* ls, int64_t N, int64_t V,
                            int64_t ignore_index, T scale, T* dlogits) {
  for_rows(N, V, [&](int64_t r) {
    write_row_grad(logits + r * V, labels[r], V, ignore_index, m[r], ls[r], scale, dlogits + r * V);
  });
}

template <class T>
void cross_entropy_forward_reference(const T* logits, const int64_t* labels, int64_t N, int64_t V,
                                     int64_t ignore_index, T* m, T* ls, T* loss) {
  for (int64_t r = 0; r < N; ++r) {
    const T* x = logits + r * V;
    if (labels[r] == ignore_index) {
      m[r] = ls[r] = loss[r] = T(0);
      continue;
    }
    T mx = x[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, x[v]);
    T s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(x[v] - mx);
    m[r] = mx;
    ls[r] = std::log(s);
    loss[r] = (mx - x[labels[r]]) + ls[r];
  }
}

template <class T>
void cross_entropy_backward_reference(const T* logits, const int64_t* labels, const T* m, const T* ls, int64_t N,
                                      int64_t V, int64_t ignore_index, T scale, T* dlogits) {
  for (int64_t r = 0; r < N; ++r)
    for (int64_t v = 0; v < V; ++v)
      dlogits[r * V + v] = labels[r] == ignore_index
                               ? T(0)
                               : scale * (std::exp((logits[r * V + v] - m[r]) - ls[r]) - T(v == labels[r] ? 1 : 0));
}

namespace {
// The first index of the row's largest element, as the plain loop finds it; the vector pass finds
// the largest value, then the first element equal to it. A row with a NaN takes the plain loop.
template <class T>
int64_t row_argmax(const T* x, int64_t V) {
  constexpr int64_t W = batch_size<T>();
  int64_t i = 0;
  T m = x[0];
  bool nan = false;
  if (V >= W) {
    Batch<T> vm = Batch<T>::load_unaligned(x);
    auto vnan = vm != vm;
    for (i = W; i + W <= V; i += W) {
      const Batch<T> a = Batch<T>::load_unaligned(x + i);
      vm = xsimd::max(vm, a);
      vnan = vnan || (a != a);
    }
    nan = xsimd::any(vnan);
    m = reduce_max(vm);
  }
  for (; i < V; ++i) {
    nan = nan || x[i] != x[i];
    m = std::max(m, x[i]);
  }
  if (!nan)
    for (int64_t v = 0; v < V; ++v)
      if (x[v] == m) return v;
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (x[v] > x[best]) best = v;
  return best;
}
}  // namespace

template <class T>
AccuracyCount argmax_accuracy(const T* logits, const int64_t* labels, int64_t N, int64_t V, int64_t ignore_index) {
  AccuracyCount acc;
  for (int64_t r = 0; r < N; ++r) {
    if (labels[r] == ignore_index) continue;
    acc.count += 1;
    acc.correct += row_argmax(logits + r * V, V) == labels[r];
  }
  return acc;
}

#define ROTOR_INSTANTIATE(T)                                                                                     \
  template void cross_entropy_forward<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*, T*, T*, T*, T); \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const T*, const T*, int64_t, int64_t, int64_t,  \
                                          T, T*);                                                                   \
  template void cross_entropy_forward_reference<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*, T*,     \
                                                   T*);                                                             \
  template void cross_entropy_backward_reference<T>(const T*, const int64_t*, const T*, const T*, int64_t, int64_t, \
                                                    int64_t, T, T*);                                                \
  template AccuracyCount argmax_accuracy<T>(const T*, const int64_t*, int64_t, int64_t, int64_t);
ROTOR_INSTANTIATE(float)
ROTOR_INSTANTIATE(double)
#undef ROTOR_INSTANTIATE

}  // namespace rotor::kernels
