#include "rotor/autograd/node.h"

namespace rotor {
namespace {
thread_local bool g_grad_enabled = true;
thread_local std::vector<std::string>* g_tracer = nullptr;

std::vector<const OpDef*>& op_list() {
  static std::vector<const OpDef*> ops;
  return ops;
}
}  // namespace

OpDef::OpDef(const char* n) : name(n) { op_list().push_back(this); }
const std::vector<const OpDef*>& all_ops() { return op_list(); }

Node::~Node() {
  // Destroying a node releases its inputs; recursing through a 100 000-deep chain would
  // overflow the stack, so nodes about to die are unlinked onto a list and freed one by one.
  std::vector<std::shared_ptr<Node>> pending;
  for (Edge& e : inputs)
    if (e.node) pending.push_back(std::move(e.node));
  inputs.clear();
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n.use_count() == 1) {
      for (Edge& e : n->inputs)
        if (e.node) pending.push_back(std::move(e.node));
      n->inputs.clear();
      n->backward = nullptr;  // saved tensors hold no history, but free them before the node
    }
  }
}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  tensor_ = t.detach();
  version_ = t.storage()->version();
}

const Tensor& SavedTensor::get() const {
  if (tensor_.defined() && tensor_.storage()->version() != version_)
    ROTOR_FAIL("backward", "a tensor of shape ", shape_str(tensor_.shape()),
               " saved for the backward pass was modified in place (version ", tensor_.storage()->version(),
               ", saved at version ", version_, "); clone it before modifying it");
  return tensor_;
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }
void set_op_tracer(std::vector<std::string>* names) { g_tracer = names; }

namespace {
template <class List>
bool any_requires_grad(const List& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
}  // namespace

bool needs_grad(const TensorList& inputs) { return any_requires_grad(inputs); }
bool needs_grad(std::initializer_list<Tensor> inputs) { return any_requires_grad(inputs); }

void record(const OpDef& op, const TensorList& inputs, const TensorList& outputs, BackwardFn backward) {
  if (g_tracer) g_tracer->push_back(op.name);
  auto node = std::make_shared<Node>();
  node->op = &op;
  node->backward = std::move(backward);
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.impl()->grad_fn) {
        e.node = t.impl()->grad_fn;
        e.output_nr = t.impl()->output_nr;
      } else {
        e.leaf = t.impl_ptr();
      }
    }
    node->inputs.push_back(std::move(e));
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
    node->input_dtypes.push_back(t.defined() ? t.dtype() : DType::Float32);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* o = outputs[i].impl();
    o->requires_grad = true;
    o->grad_fn = node;
    o->output_nr = int(i);
    node->output_shapes.push_back(o->shape);
    node->output_dtypes.push_back(o->dtype);
  }
}

}  // namespace rotor
