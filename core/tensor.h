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
#include <optional>
#include <type_traits>
#include <vector>

#include "rotor/core/dtype.h"
#include "rotor/core/error.h"
#include "rotor/core/shape.h"
#include "rotor/core/storage.h"

namespace rotor {

struct Node;  // autograd/node.h

// PyTorch's default float dtype: what an integer tensor becomes when combined with a floating
// scalar (int64 tensor * 2.5), divided (true division), or given to exp, sqrt, erf, ...
inline constexpr DType kDefaultFloat = DType::Float32;

// A C++ number given to an op. It remembers whether it was written as a bool, an integer or a
// floating value, because that decides the result's dtype as a Python scalar does in PyTorch:
// an int64 tensor times 2 stays int64, times 2.5 (or 2.0) becomes float32; a float tensor
// keeps its own dtype whatever the scalar.
class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };
  template <class T>
    requires std::is_arithmetic_v<T>
  Scalar(T v)  // NOLINT: implicit, as a literal is written
      : kind_(std::is_same_v<T, bool> ? Kind::Bool : std::is_integral_v<T> ? Kind::Int : Kind::Float),
        d_(double(v)),
        i_(std::is_integral_v<T> ? int64_t(v) : 0) {}

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  double to_double() const { return d_; }
  int64_t to_int() const { return kind_ == Kind::Float ? int64_t(d_) : i_; }  // exact for integers

 private:
  Kind kind_;
  double d_;
  int64_t i_;
};

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

// ---- dtype promotion, as PyTorch's result_type ----
// The wider of two dtypes in the order bool < int64 < float32 < float64.
DType promote_types(DType a, DType b);
// The dtype of a binary op on a and b. Tensors with dims decide within a category; a 0-d tensor
// only lifts the category (int64 [n] + float64 0-d is float64, float32 [n] + float64 0-d stays
// float32); scalars as PyTorch's Python numbers (int64 [n] * 2.5 is kDefaultFloat).
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, const Scalar& b);
// Whether an op's result of dtype `from` may be written into a tensor of dtype `to` in place:
// not float into an integer tensor, not a number into a bool one.
bool can_cast(DType from, DType to);

// ---- creation ----
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
// Without a dtype: int64 when start, end and step are all integers, else kDefaultFloat (as PyTorch).
Tensor arange(Scalar start, Scalar end, Scalar step = 1, std::optional<DType> dtype = std::nullopt);
Tensor arange(Scalar end, std::optional<DType> dtype = std::nullopt);
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::Float32);
Tensor scalar_tensor(Scalar value, DType dtype = DType::Float32);  // 0-d
// The n x m identity (m = n when negative).
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::Float32);
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
