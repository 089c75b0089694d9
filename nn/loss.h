// The training loss and its metric. Labels follow PyTorch: int64 class ids, positions whose
// label is ignore_index (-100) count for nothing.
#pragma once
#include "rotor/autograd/ops.h"

namespace rotor::nn {

constexpr int64_t kIgnoreIndex = -100;

// Mean over valid positions of -log softmax(logits)[label], one fused autograd node.
// logits: [..., V] float32/float64 (e.g. [N, V] or [B, T, V]); labels: int64 [...] (logits'
// shape without the last dim), each in [0, V) or == ignore_index. Returns a 0-d tensor.
// Stable for any finite logits (the row maximum is subtracted inside the log-sum-exp).
// When every label is ignored the loss is 0 and its gradient is 0 (not 0/0 = NaN): an empty
// batch contributes nothing. The backward is (softmax - onehot) / count on valid rows and 0
// on ignored rows, computed row by row in the forward while the row is in cache, so the node
// keeps the gradient instead of the logits.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, int64_t ignore_index = kIgnoreIndex);

// Positions where the first argmax of the logits equals the label, over the same valid
// positions as cross_entropy.
struct Accuracy {
  int64_t correct = 0;
  int64_t count = 0;
  double value() const { return count ? double(correct) / double(count) : 0.0; }  // 0 when nothing is labelled
};
Accuracy token_accuracy(const Tensor& logits, const Tensor& labels, int64_t ignore_index = kIgnoreIndex);

// Exact-sequence accuracy: of the rows of labels [B, T] with at least one valid position, those
// whose every valid position is predicted right (first argmax of logits [B, T, V] == label).
Accuracy sequence_accuracy(const Tensor& logits, const Tensor& labels, int64_t ignore_index = kIgnoreIndex);

}  // namespace rotor::nn
