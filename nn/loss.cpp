#include "rotor/nn/loss.h"

#include <tuple>

#include "rotor/autograd/gradcheck.h"
#include "rotor/kernels/cross_entropy.h"

namespace rotor::nn {

namespace {
// Flattens logits to [N, V] (contiguous) and labels to [N], checking shapes and label range.
std::pair<Tensor, Tensor> rows_of(const Tensor& logits, const Tensor& labels, int64_t ignore_index, const char* op) {
  ROTOR_CHECK(logits.dim() >= 1, op, "logits must have a class dim, got shape ", shape_str(logits.shape()));
  ROTOR_CHECK(labels.dtype() == DType::Int64, op, "labels must be int64, got ", dtype_name(labels.dtype()));
  Shape want(logits.shape().begin(), logits.shape().end() - 1);
  ROTOR_CHECK(labels.shape() == want, op, "labels ", shape_str(labels.shape()), " do not match logits ",
              shape_str(logits.shape()), " (expected labels ", shape_str(want), ")");
  const int64_t V = logits.size(-1), N = labels.numel();
  ROTOR_CHECK(V > 0 || N == 0, op, "logits have no classes");
  Tensor y = core::contiguous(labels.detach());
  const int64_t* l = y.data<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    ROTOR_CHECK(l[i] == ignore_index || (l[i] >= 0 && l[i] < V), op, "label ", l[i], " at flat position ", i,
                " is outside [0, ", V, ") and is not the ignore index ", ignore_index);
  Tensor x = core::contiguous(logits.detach());
  return {Tensor::view_of(x, {N, V}, {V, 1}, x.offset()), y};
}
}  // namespace

static const OpDef kCrossEntropy{"cross_entropy"};

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, int64_t ignore_index) {
  const char* op = "cross_entropy";
  Tensor x, y;  // not a structured binding: the lambda below uses them, and clang 14 cannot capture one
  std::tie(x, y) = rows_of(logits, labels, ignore_index, op);
  const int64_t N = x.size(0), V = x.size(1);
  const int64_t* l = y.data<int64_t>();
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) count += l[i] != ignore_index;
  const bool grad = needs_grad({logits});
  return dispatch_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    Tensor row_max = Tensor::empty({N}, logits.dtype()), row_logsum = Tensor::empty({N}, logits.dtype()),
           row_loss = Tensor::empty({N}, logits.dtype());
    Tensor dlogits = grad ? Tensor::empty(logits.shape(), logits.dtype()) : Tensor();
    const T inv_count = count ? T(1) / T(count) : T(0);
    kernels::cross_entropy_forward<T>(x.data<T>(), l, N, V, ignore_index, row_max.data<T>(), row_logsum.data<T>(),
                                      row_loss.data<T>(),
                                      grad ? dlogits.data<T>() : nullptr, inv_count);
    // The mean in float64, in row order: deterministic and accurate for any N.
    double total = 0;
    const T* rl = row_loss.data<T>();
    for (int64_t i = 0; i < N; ++i) total += double(rl[i]);
    Tensor out = scalar_tensor(count ? total / double(count) : 0.0, logits.dtype());
    if (grad)
      record(kCrossEntropy, {logits}, {out}, [d = std::move(dlogits)](const TensorList& g, auto&) {
        const double up = g[0].item();
        return TensorList{up == 1.0 ? d : mul(d, up)};
      });
    return out;
  });
}

Accuracy token_accuracy(const Tensor& logits, const Tensor& labels, int64_t ignore_index) {
  Tensor x, y;
  std::tie(x, y) = rows_of(logits, labels, ignore_index, "token_accuracy");
  return dispatch_float(logits.dtype(), "token_accuracy", [&](auto tag) {
    using T = decltype(tag);
    auto a = kernels::argmax_accuracy<T>(x.data<T>(), y.data<int64_t>(), x.size(0), x.size(1), ignore_index);
    return Accuracy{a.correct, a.count};
  });
}

Accuracy sequence_accuracy(const Tensor& logits, const Tensor& labels, int64_t ignore_index) {
  ROTOR_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.dtype() == DType::Int64 &&
                  labels.size(0) == logits.size(0) && labels.size(1) == logits.size(1),
              "sequence_accuracy", "logits ", shape_str(logits.shape()), " and int64 labels ",
              shape_str(labels.shape()), " should be [B, T, V] and [B, T]");
  Tensor pred = core::contiguous(argmax(logits.detach(), 2));
  Tensor lab = core::contiguous(labels);
  const int64_t B = labels.size(0), T = labels.size(1);
  const int64_t* p = pred.data<int64_t>();
  const int64_t* y = lab.data<int64_t>();
  Accuracy a;
  for (int64_t b = 0; b < B; ++b) {
    bool any = false, all = true;
    for (int64_t t = 0; t < T; ++t) {
      if (y[b * T + t] == ignore_index) continue;
      any = true;
      all &= p[b * T + t] == y[b * T + t];
    }
    a.count += any;
    a.correct += any && all;
  }
  return a;
}

Reduction reduction_from_name(const std::string& name) {
  if (name == "mean") return Reduction::Mean;
  if (name == "sum") return Reduction::Sum;
  if (name == "none") return Reduction::None;
  ROTOR_FAIL("reduction", "unknown reduction '", name, "' (mean, sum or none)");
}

namespace {
Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return mean(loss);
    case Reduction::Sum: return sum(loss);
    case Reduction::None: return loss;
  }
  ROTOR_FAIL("reduction", "invalid Reduction value ", int(reduction));
}

void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  ROTOR_CHECK(input.defined() && target.defined(), op, "input and target must be defined");
  ROTOR_CHECK(is_floating(input.dtype()) && input.dtype() == target.dtype(), op,
              "input and target must be float tensors of one dtype, got ", dtype_name(input.dtype()), " and ",
              dtype_name(target.dtype()));
  ROTOR_CHECK(input.shape() == target.shape(), op, "input ", shape_str(input.shape()), " and target ",
              shape_str(target.shape()), " must have the same shape");
}
}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "mse_loss");
  return reduce(square(input - target), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction,
                                        const Tensor& weight, const Tensor& pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(logits, target, op);
  for (const Tensor* w : {&weight, &pos_weight})
    ROTOR_CHECK(!w->defined() || w->dtype() == logits.dtype(), op, "weights must be ", dtype_name(logits.dtype()),
                ", got ", dtype_name(w->dtype()));
  if (pos_weight.defined())
    ROTOR_CHECK(pos_weight.dim() <= 1 && (pos_weight.numel() == 1 || (logits.dim() >= 1 && pos_weight.numel() == logits.size(-1))),
                op, "pos_weight ", shape_str(pos_weight.shape()), " must have one value per class (the last dim of ",
                shape_str(logits.shape()), ")");
  const Tensor softplus_neg = neg(logsigmoid(logits));  // log(1 + e^-x), stable
  Tensor loss = pos_weight.defined() ? (1.0 - target) * logits + ((pos_weight - 1.0) * target + 1.0) * softplus_neg
                                     : (1.0 - target) * logits + softplus_neg;
  if (weight.defined()) loss = loss * weight;  // broadcasting errors name the shapes
  return reduce(loss, reduction);
}

ROTOR_GRADCHECK({"mse_loss", {input({3, 4}), input({3, 4}), transposed({2, 3})}, [](auto& x) {
                   return TensorList{mse_loss(x[0], x[1]), mse_loss(x[0], x[1], Reduction::Sum),
                                     mse_loss(x[2], tanh(x[2]), Reduction::None)};
                 }});
// Logits up to ±30 (where a naive log(sigmoid) underflows), fractional targets, both weights.
ROTOR_GRADCHECK({"binary_cross_entropy_with_logits",
                 {input({3, 4}, -30.0, 30.0), input({3, 4}, 0.0, 1.0), input({4}, 0.5, 3.0), input({3, 1}, 0.5, 2.0)},
                 [](auto& x) {
                   return TensorList{binary_cross_entropy_with_logits(x[0], x[1]),
                                     binary_cross_entropy_with_logits(x[0], x[1], Reduction::Sum, x[3], x[2]),
                                     binary_cross_entropy_with_logits(x[0], x[1], Reduction::None, Tensor(), x[2])};
                 }});

// Labels mix valid classes and ignored positions; the second output has no valid position.
ROTOR_GRADCHECK({"cross_entropy", {input({4, 5}, -3.0, 3.0), input({2, 3, 4}, -3.0, 3.0)}, [](auto& x) {
                   Tensor a = from_vector<int64_t>({2, kIgnoreIndex, 4, 0});
                   Tensor b = from_vector<int64_t>({3, 0, kIgnoreIndex, 1, 1, kIgnoreIndex}, {2, 3});
                   Tensor none = full({2, 3}, double(kIgnoreIndex), DType::Int64);
                   return TensorList{cross_entropy(x[0], a), cross_entropy(x[1], b), cross_entropy(x[1], none)};
                 }});

}  // namespace rotor::nn
