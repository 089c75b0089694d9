// Cross-entropy fused with log-softmax, row by row: the loss of a language model's head.
// Rows whose label is ignore_index are skipped entirely (no exp), which matters for tasks such
// as MQAR where most positions carry no label.
#pragma once
#include <cstdint>

namespace rotor::kernels {

// logits: (N, V) contiguous; labels: (N) with values in [0, V) or == ignore_index.
// Writes, for valid rows, m[n] = max_v logits[n, v], ls[n] = log Σ_v exp(logits[n, v] - m[n])
// and loss[n] = (m[n] - logits[n, labels[n]]) + ls[n]; 0 for all three on ignored rows. The
// log-sum-exp stays split as m + ls so that logits of magnitude 1e4 in float32 lose nothing
// to the rounding of m + ls (x - m is exact for nearby values). When dlogits is not null it
// also WRITES
//   dlogits[n, :] = scale · (softmax(logits[n]) - onehot(labels[n]))   (valid rows)
//   dlogits[n, :] = 0                                                  (ignored rows)
// while the row is still in cache (one pass for max + sum-exp, one pass for the gradient).
// Rows are split in fixed blocks: the bits do not depend on the thread count.
template <class T>
void cross_entropy_forward(const T* logits, const int64_t* labels, int64_t N, int64_t V, int64_t ignore_index,
                           T* m, T* ls, T* loss, T* dlogits = nullptr, T scale = T(1));

// dlogits = scale · (exp(logits - m - ls) - onehot) on valid rows, 0 on ignored rows
// (WRITES), from the m and ls of the forward.
template <class T>
void cross_entropy_backward(const T* logits, const int64_t* labels, const T* m, const T* ls, int64_t N, int64_t V,
                            int64_t ignore_index, T scale, T* dlogits);

// Plain loops (two passes, std::exp): the oracle of the fast kernels.
template <class T>
void cross_entropy_forward_reference(const T* logits, const int64_t* labels, int64_t N, int64_t V,
                                     int64_t ignore_index, T* m, T* ls, T* loss);
template <class T>
void cross_entropy_backward_reference(const T* logits, const int64_t* labels, const T* m, const T* ls, int64_t N,
                                      int64_t V, int64_t ignore_index, T scale, T* dlogits);

// correct[n] = (first argmax of logits[n] == labels[n]) on valid rows; valid[n] = label != ignore.
// Returns (correct count, valid count).
struct AccuracyCount {
  int64_t correct = 0;
  int64_t count = 0;
};
template <class T>
AccuracyCount argmax_accuracy(const T* logits, const int64_t* labels, int64_t N, int64_t V, int64_t ignore_index);

}  // namespace rotor::kernels
