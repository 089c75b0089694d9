#include "rotor/nn/containers.h"

#include "rotor/nn/gradcheck_case.h"
#include "rotor/nn/layers.h"

namespace rotor::nn {

Sequential& Sequential::append(Fn f) {
  ROTOR_CHECK(bool(f), "Sequential", "append got an empty function");
  entries_.push_back({nullptr, std::move(f)});
  return *this;
}

Tensor Sequential::forward(const Tensor& x) const {
  Tensor y = x;
  for (const Entry& e : entries_) y = e.fn(y);
  return y;
}

Module& Sequential::operator[](int64_t i) const {
  ROTOR_CHECK(i >= 0 && i < size(), "Sequential", "index ", i, " is out of range for ", size(), " entries");
  ROTOR_CHECK(entries_[size_t(i)].module != nullptr, "Sequential", "entry ", i, " is a function, not a module");
  return *entries_[size_t(i)].module;
}

Module& ModuleList::operator[](int64_t i) const {
  ROTOR_CHECK(i >= 0 && i < size(), "ModuleList", "index ", i, " is out of range for ", size(), " modules");
  return *modules_[size_t(i)];
}

// An MLP with a nested Sequential: the container's forward, naming and parameter walk.
ROTOR_GRADCHECK({"Sequential", {input({3, 4})}, {}, kLayerOptions,
                 layer_case(
                     [](DType dtype, Generator& gen) {
                       auto seq = std::make_shared<Sequential>();
                       seq->emplace_back<Linear>(4, 5, true, gen, dtype);
                       seq->append([](const Tensor& x) { return tanh(x); });
                       auto inner = std::make_shared<Sequential>();
                       inner->emplace_back<Linear>(5, 2, true, gen, dtype);
                       seq->append(inner);
                       scale_matrices_for_gradcheck(*seq);
                       return seq;
                     },
                     [](const Sequential& seq, const TensorList& x) { return TensorList{seq.forward(x[0])}; })});

}  // namespace rotor::nn
