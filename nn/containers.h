// Containers of modules, named as PyTorch names them: the i-th child of a Sequential or a
// ModuleList is "i", so a 3-entry Sequential(Linear, tanh, Linear) holds "0.weight", "0.bias",
// "2.weight", "2.bias" and loads a PyTorch state_dict of nn.Sequential as it is.
#pragma once
#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rotor/nn/module.h"

namespace rotor::nn {

// A module with a forward(const Tensor&) -> Tensor.
template <class M>
concept UnaryModule = std::derived_from<M, Module> && requires(const M& m, const Tensor& x) {
  { m.forward(x) } -> std::convertible_to<Tensor>;
};

// Children applied in order: y = f_{n-1}(… f_1(f_0(x))). An entry is a module (owned, shared
// with the caller) or a function without parameters such as an activation, which takes an
// index of its own as nn.ReLU does in PyTorch.
class Sequential : public Module {
 public:
  using Fn = std::function<Tensor(const Tensor&)>;
  Sequential() = default;

  template <UnaryModule M>
  M& append(std::shared_ptr<M> m) {
    ROTOR_CHECK(m != nullptr, "Sequential", "append got a null module");
    M& ref = *m;
    register_module(std::to_string(entries_.size()), ref);
    entries_.push_back({m, [&ref](const Tensor& x) { return Tensor(ref.forward(x)); }});
    return ref;
  }
  template <UnaryModule M, class... Args>
  M& emplace_back(Args&&... args) {
    return append(std::make_shared<M>(std::forward<Args>(args)...));
  }
  Sequential& append(Fn f);

  Tensor forward(const Tensor& x) const;
  int64_t size() const { return int64_t(entries_.size()); }
  // The module at index i (Error for a function entry or an index out of range).
  Module& operator[](int64_t i) const;
  template <class M>
  M& at(int64_t i) const {
    M* m = dynamic_cast<M*>(&(*this)[i]);
    ROTOR_CHECK(m != nullptr, "Sequential", "entry ", i, " is not of the requested module type");
    return *m;
  }

 private:
  struct Entry {
    std::shared_ptr<Module> module;  // null for a function
    Fn fn;
  };
  std::vector<Entry> entries_;
};

// A list of child modules, "0", "1", … (PyTorch's nn.ModuleList): for layers a module applies
// in its own way.
class ModuleList : public Module {
 public:
  ModuleList() = default;

  template <class M>
    requires std::derived_from<M, Module>
  M& append(std::shared_ptr<M> m) {
    ROTOR_CHECK(m != nullptr, "ModuleList", "append got a null module");
    register_module(std::to_string(modules_.size()), *m);
    modules_.push_back(m);
    return *m;
  }
  template <class M, class... Args>
    requires std::derived_from<M, Module>
  M& emplace_back(Args&&... args) {
    return append(std::make_shared<M>(std::forward<Args>(args)...));
  }

  int64_t size() const { return int64_t(modules_.size()); }
  Module& operator[](int64_t i) const;  // Error when out of range
  template <class M>
  M& at(int64_t i) const {
    M* m = dynamic_cast<M*>(&(*this)[i]);
    ROTOR_CHECK(m != nullptr, "ModuleList", "entry ", i, " is not of the requested module type");
    return *m;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace rotor::nn
