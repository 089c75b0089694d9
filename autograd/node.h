// The autograd graph. A tensor made by an op while grad mode is on, from an input that needs a
// gradient, points at a Node: the op's backward function (with what it saved) and one edge per
// input. Leaves that require grad are reached through edges that hold them directly.
//
// Writing an op (see ops_*.cpp): compute the forward with kernels, then
//   if (needs_grad({a, b})) record(kMul, {a, b}, {out}, [a = save(a), b = save(b)](auto& g, auto&) {...});
// The backward returns one gradient per input, in the input's shape or any shape that
// broadcasts to it: the engine sums broadcast gradients back in one place.
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "rotor/core/tensor.h"

namespace rotor {

using TensorList = std::vector<Tensor>;

// The identity of a differentiable op. Every OpDef is listed by all_ops(), which lets a test
// demand a gradcheck case for each one.
struct OpDef {
  const char* name;
  explicit OpDef(const char* name);
};
const std::vector<const OpDef*>& all_ops();

// grads: one per output (zeros where none arrived); needs[i]: whether input i wants a gradient.
using BackwardFn = std::function<TensorList(const TensorList& grads, const std::vector<bool>& needs)>;

struct Edge {
  std::shared_ptr<Node> node;        // an interior node, its output number output_nr
  int output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;  // or a leaf that accumulates .grad
};

struct Node {
  const OpDef* op = nullptr;
  std::vector<Edge> inputs;
  std::vector<Shape> input_shapes;
  std::vector<DType> input_dtypes;
  std::vector<Shape> output_shapes;
  std::vector<DType> output_dtypes;
  BackwardFn backward;
  bool released = false;  // backward ran without retain_graph: saved tensors are gone

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();  // tears long chains down iteratively
};

// A tensor kept for the backward, without its history (no reference cycles), with the storage
// version it had when saved so an in-place change is caught.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  const Tensor& get() const;  // throws if the storage was modified in place since
 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};
inline SavedTensor save(const Tensor& t) { return SavedTensor(t); }
// Saves t only when the backward will read it (when `needed`, usually another input's requires_grad).
inline SavedTensor save_if(bool needed, const Tensor& t) { return needed ? SavedTensor(t) : SavedTensor(); }

// Grad mode is per thread; ops record nodes only while it is on.
bool grad_enabled();
void set_grad_enabled(bool on);

class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any defined input requires grad.
bool needs_grad(const TensorList& inputs);
// The braced form every op uses: no vector is built, so ops under NoGradGuard allocate nothing here.
bool needs_grad(std::initializer_list<Tensor> inputs);

// Makes `outputs` results of `op` applied to `inputs`. Outputs must be fresh tensors.
void record(const OpDef& op, const TensorList& inputs, const TensorList& outputs, BackwardFn backward);

// Called once per leaf the backward reaches, as soon as its .grad is final for this pass (every
// edge into it has delivered; .grad stays undefined if none carried a gradient). A data-parallel
// trainer starts sending a gradient here while the backward of earlier layers still runs.
using LeafHook = std::function<void(const Tensor& leaf)>;

// Runs the backward pass from roots (each with its upstream gradient; an undefined gradient
// for a one-element root means ones). Leaves accumulate into .grad.
void backward(const TensorList& roots, const TensorList& grads = {}, bool retain_graph = false,
              const LeafHook& on_leaf_done = nullptr);

// While a tracer is installed, record() adds the name of every op it records (used by the
// gradcheck registry to prove that every op is covered).
void set_op_tracer(std::vector<std::string>* names);

}  // namespace rotor
