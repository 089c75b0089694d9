// The backward pass: an iterative walk of the graph in reverse topological order.
#include <unordered_map>
#include <unordered_set>

#include "rotor/autograd/node.h"
#include "rotor/kernels/elementwise.h"
#include "rotor/kernels/reduce.h"

namespace rotor {
namespace {

void accumulate_leaf(TensorImpl* leaf, const Tensor& g) {
  if (!leaf->grad) {
    leaf->grad = core::clone(g).impl_ptr();  // own it: later accumulation is in place
  } else {
    kernels::binary_(kernels::Binary::Add, Tensor(leaf->grad), g);
  }
}

// Shapes the gradient for input i of n like the input: sum over broadcast dims, same dtype.
Tensor fit_gradient(const Node& n, size_t i, const Tensor& g) {
  Tensor out = kernels::sum_to(g, n.input_shapes[i]);
  if (out.dtype() != n.input_dtypes[i]) out = core::to_dtype(out, n.input_dtypes[i]);
  return out;
}

}  // namespace

void backward(const TensorList& roots, const TensorList& grads_in, bool retain_graph, const LeafHook& on_leaf_done) {
  ROTOR_CHECK(grads_in.empty() || grads_in.size() == roots.size(), "backward", roots.size(), " roots but ",
              grads_in.size(), " gradients");
  NoGradGuard no_grad;

  // Upstream gradients of the roots.
  TensorList grads(roots.size());
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    ROTOR_CHECK(root.defined() && root.requires_grad(), "backward",
                "the tensor does not require grad and has no grad_fn");
    Tensor g = grads_in.empty() ? Tensor() : grads_in[r];
    if (!g.defined()) {
      ROTOR_CHECK(root.numel() == 1, "backward", "a gradient can only be implied for a one-element output; got shape ",
                  shape_str(root.shape()), " — pass the upstream gradient explicitly");
      g = ones_like(root);
    }
    ROTOR_CHECK(g.shape() == root.shape(), "backward", "gradient of shape ", shape_str(g.shape()),
                " for an output of shape ", shape_str(root.shape()));
    grads[r] = core::to_dtype(g, root.dtype());
  }

  // Count, for every reachable node, the edges that lead into it.
  // With a hook, the edges into every leaf are counted too.
  std::unordered_map<Node*, int> pending;
  std::unordered_map<TensorImpl*, int> leaf_pending;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (const Tensor& root : roots)
    if (Node* n = root.impl()->grad_fn.get(); n && seen.insert(n).second) stack.push_back(n);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->inputs) {
      if (e.leaf && on_leaf_done) leaf_pending[e.leaf.get()] += 1;
      if (!e.node) continue;
      pending[e.node.get()] += 1;
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  std::unordered_map<Node*, TensorList> buffers;
  auto deliver = [&](Node* n, int output_nr, const Tensor& g) {
    TensorList& buf = buffers[n];
    if (buf.empty()) buf.resize(n->output_shapes.size());
    Tensor& slot = buf[size_t(output_nr)];
    slot = slot.defined() ? kernels::binary(kernels::Binary::Add, slot, g) : g;
  };
  std::vector<Node*> ready;
  for (size_t r = 0; r < roots.size(); ++r) {
    TensorImpl* impl = roots[r].impl();
    if (!impl->grad_fn) {
      accumulate_leaf(impl, grads[r]);
      if (on_leaf_done && !leaf_pending.count(impl)) on_leaf_done(roots[r]);
      continue;
    }
    deliver(impl->grad_fn.get(), impl->output_nr, grads[r]);
  }
  for (const Tensor& root : roots) {
    Node* n = root.impl()->grad_fn.get();
    if (n && pending[n] == 0 && std::find(ready.begin(), ready.end(), n) == ready.end()) ready.push_back(n);
  }

  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    TensorList out_grads;
    if (auto it = buffers.find(n); it != buffers.end()) {
      out_grads = std::move(it->second);
      buffers.erase(it);
    }
    const bool any = std::any_of(out_grads.begin(), out_grads.end(), [](const Tensor& t) { return t.defined(); });
    TensorList in_grads;
    std::vector<bool> needs(n->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i) needs[i] = n->inputs[i].node || n->inputs[i].leaf;
    if (any) {
      ROTOR_CHECK(!n->released, "backward", "the graph through '", n->op->name,
                  "' was freed by an earlier backward; pass retain_graph=true to the first backward to run it twice");
      for (size_t k = 0; k < out_grads.size(); ++k)
        if (!out_grads[k].defined()) out_grads[k] = zeros(n->output_shapes[k], n->output_dtypes[k]);
      in_grads = n->backward(out_grads, needs);
      if (!retain_graph) {
        n->backward = nullptr;
        n->released = true;
      }
    }
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Edge& e = n->inputs[i];
      const bool has = any && needs[i] && i < in_grads.size() && in_grads[i].defined();
      if (e.leaf && has) accumulate_leaf(e.leaf.get(), fit_gradient(*n, i, in_grads[i]));
      if (e.leaf && on_leaf_done && --leaf_pending[e.leaf.get()] == 0) on_leaf_done(Tensor(e.leaf));
      if (e.node) {
        if (has) deliver(e.node.get(), e.output_nr, fit_gradient(*n, i, in_grads[i]));
        if (--pending[e.node.get()] == 0) ready.push_back(e.node.get());
      }
    }
  }
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  rotor::backward({*this}, {grad}, retain_graph);
}

}  // namespace rotor
