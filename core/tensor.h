// rotor::Tensor: a strided view (shape, strides, offset in elements, dtype) over shared,
// reference-counted storage. Copying a Tensor copies the handle, not the data, as in PyTorch.
//
// The autograd fields live here so that every tensor can carry a gradient, but they are only
// read and written by autograd/ (core knows nothing about graphs beyond the Node pointer).
#pragma once
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <vector>

#include "rotor/core/dtype.h"
#include "rotor/core/error.h"
#include "rotor/core/shape.h"
#include "rotor/core/storage.h"

namespace rotor {

struct Node;  // autograd/node.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;
  DType dtype = DType::Float32;

  // Autograd state. A leaf that requires grad has no grad_fn; an op output that needs a
  // gradient has grad_fn pointing at the node that made it, as its output number output_nr.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  int output_nr = 0;
  std::shared_ptr<TensorImpl> grad;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32);
  // Another view of base's storage (no autograd state, no bounds check beyond an assert).
  static Tensor view_of(const Tensor& base, Shape shape, Strides strides, int64_t offset);

  bool defined() const { return bool(impl_); }
  const Shape& shape() const { return impl_->shape; }
  int64_t dim() const { return int64_t(impl_->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  const Strides& strides() const { return impl_->strides; }
  int64_t stride(int64_t d) const;
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }

  // Address of element [0, 0, ...].
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data()) + impl_->offset * int64_t(dtype_size(impl_->dtype));
  }
  template <class T>
  T* data() const {
    ROTOR_CHECK(dtype_of<T>() == dtype(), "data", "tensor holds ", dtype_name(dtype()),
                ", not ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }
  // data<T>(), or nullptr for an undefined tensor (the optional inputs and outputs of kernels).
  template <class T>
  T* data_or_null() const {
    return defined() ? data<T>() : nullptr;
  }

  // The single element of a one-element tensor.
  template <class T>
  T item() const {
    check_one_element();
    return *data<T>();
  }
  double item() const;  // converted to double, any dtype

  // Elements in row-major order (T must match the dtype).
  template <class T>
  std::vector<T> to_vector() const;

  // Autograd (the graph side lives in autograd/).
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& requires_grad_(bool on = true);  // leaves only
  bool is_leaf() const { return !impl_->grad_fn; }
  Tensor grad() const { return Tensor(impl_->grad); }
  void zero_grad() { impl_->grad.reset(); }
  Tensor detach() const;  // same storage, no history
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;  // autograd/engine.cpp

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  void check_one_element() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// ---- creation ----
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Int64);
inline Tensor arange(int64_t end, DType dtype = DType::Int64) { return arange(0.0, double(end), 1.0, dtype); }
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::Float32);
Tensor scalar_tensor(double value, DType dtype = DType::Float32);  // 0-d
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor empty_like(const Tensor& t);  // contiguous, same shape and dtype

// Copies values into a new tensor of dtype T; shape defaults to 1-D.
template <class T>
Tensor from_vector(const std::vector<T>& values, Shape shape);
template <class T>
Tensor from_vector(const std::vector<T>& values) {
  return from_vector(values, Shape{int64_t(values.size())});
}

// ---- raw copies and views: no autograd (the differentiable versions live in autograd/ops.h) ----
namespace core {
// dst[...] = src[...] with dtype conversion; src broadcasts to dst's shape. Bumps dst's version.
void copy_into(const Tensor& dst, const Tensor& src);
// A contiguous tensor with t's values: t itself when already contiguous.
Tensor contiguous(const Tensor& t);
// A contiguous copy, always new storage.
Tensor clone(const Tensor& t);
// Converted copy (t itself when the dtype already matches).
Tensor to_dtype(const Tensor& t, DType dtype);
}  // namespace core

}  // namespace rotor
