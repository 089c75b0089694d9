// The training loss and its metric. Labels follow PyTorch: int64 class ids, positions whose
// label is ignore_index (-100) count for nothing.
#pragma once
#include <string>

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

// How an elementwise loss reduces its per-element values (PyTorch's `reduction`).
enum class Reduction { Mean, Sum, None };
Reduction reduction_from_name(const std::string& name);  // "mean", "sum" or "none", else Error

// (input - target)², reduced. Shapes and dtypes must match (no broadcasting, as PyTorch warns
// about it). Differentiable in both.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// PyTorch's binary_cross_entropy_with_logits in its stable form:
//   ℓ = weight · ((1 − y)·x + (1 + (pos_weight − 1)·y) · softplus(−x)),  softplus(−x) = −logsigmoid(x)
// which never evaluates log(sigmoid(x)) or exp of a large number. target y in [0, 1] has the
// logits' shape; weight broadcasts to it, pos_weight to its last dim (one weight per class);
// either may be undefined. Differentiable in logits, target and the weights.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean, const Tensor& weight = Tensor(),
                                        const Tensor& pos_weight = Tensor());

}  // namespace rotor::nn
