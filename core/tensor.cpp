#include "rotor/core/tensor.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>

#include "rotor/core/iter.h"
#include "rotor/core/parallel.h"

namespace rotor {

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  // Sizes, strides and the byte count must all fit in int64 (a wrapped product would give a
  // tensor claiming more elements than its buffer holds).
  int64_t bytes = int64_t(dtype_size(dtype));
  for (int64_t d : shape) {
    ROTOR_CHECK(d >= 0, "empty", "negative dimension in shape ", shape_str(shape));
    ROTOR_CHECK(!__builtin_mul_overflow(bytes, std::max<int64_t>(d, 1), &bytes), "empty", "shape ",
                shape_str(shape), " is too large");
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(size_t(shape_numel(shape)) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::view_of(const Tensor& base, Shape shape, Strides strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return impl_->shape[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[normalize_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void Tensor::check_one_element() const {
  ROTOR_CHECK(defined() && numel() == 1, "item", "expected a tensor with one element, got shape ",
              defined() ? shape_str(shape()) : std::string("(undefined)"));
}

double Tensor::item() const {
  check_one_element();
  return dispatch_all(dtype(), [&](auto tag) { return double(*static_cast<decltype(tag)*>(raw_data())); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = core::contiguous(*this);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

Tensor& Tensor::requires_grad_(bool on) {
  ROTOR_CHECK(is_leaf(), "requires_grad_", "only leaf tensors can change requires_grad; use detach()");
  ROTOR_CHECK(!on || is_floating(dtype()), "requires_grad_", "only float tensors can require grad, got ",
              dtype_name(dtype()));
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  return view_of(*this, shape(), strides(), offset());
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  if (!t.defined()) return out << "Tensor(undefined)";
  out << "Tensor(shape=" << shape_str(t.shape()) << ", dtype=" << t.dtype();
  if (t.requires_grad()) out << ", requires_grad";
  out << ")";
  const int64_t n = t.numel(), show = 8;
  Tensor c = core::contiguous(t);
  out << " [";
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(c.raw_data());
    for (int64_t i = 0; i < n && i < show; ++i) out << (i ? ", " : "") << std::setprecision(6) << p[i];
  });
  if (n > show) out << ", ...";
  return out << "]";
}

// ---- creation ----

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    const T v = T(value);
    parallel_for(t.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = v;
    });
  });
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor scalar_tensor(Scalar value, DType dtype) {
  if (value.is_floating() || is_floating(dtype)) return full({}, value.to_double(), dtype);
  Tensor t = Tensor::empty({}, dtype);  // an integer stays exact past 2^53
  dispatch_all(dtype, [&](auto tag) { *static_cast<decltype(tag)*>(t.raw_data()) = decltype(tag)(value.to_int()); });
  return t;
}
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype()); }

Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<DType> dtype_in) {
  const bool integral = !start.is_floating() && !end.is_floating() && !step.is_floating();
  const DType dtype = dtype_in ? *dtype_in : integral ? DType::Int64 : kDefaultFloat;
  const double s = start.to_double(), e = end.to_double(), st = step.to_double();
  ROTOR_CHECK(std::isfinite(s) && std::isfinite(e) && std::isfinite(st), "arange",
              "start, end and step must be finite, got ", s, ", ", e, ", ", st);
  ROTOR_CHECK(st != 0, "arange", "step must be non-zero (start ", s, ", end ", e, ")");
  double count = std::ceil((e - s) / st);
  if (integral) {  // counted exactly: 2^60 .. 2^60 + 3 is 3 elements, not 0 as in double
    const __int128 span = __int128(end.to_int()) - start.to_int(), d = step.to_int();
    const __int128 c = span / d + (span % d != 0 && (span > 0) == (d > 0));
    count = double(c > 0 ? c : 0);
  }
  // Past 2^53 the count is not even exact (and int64_t(count) overflows past 2^63).
  ROTOR_CHECK(count < 0x1p53, "arange", "[", s, ", ", e, ") in steps of ", st, " has ", count, " elements");
  int64_t n = count > 0 ? int64_t(count) : 0;
  Tensor t = Tensor::empty({n}, dtype);
  dispatch_numeric(dtype, "arange", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    if (integral) {  // exact integer steps, whatever their size
      const int64_t a = start.to_int(), d = step.to_int();
      for (int64_t i = 0; i < n; ++i) p[i] = T(a + i * d);
    } else {
      for (int64_t i = 0; i < n; ++i) p[i] = T(s + double(i) * st);
    }
  });
  return t;
}

Tensor arange(Scalar end, std::optional<DType> dtype) { return arange(0, end, 1, dtype); }

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  ROTOR_CHECK(n >= 0, "eye", "negative size n = ", n);
  Tensor t = zeros({n, m}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  return t;
}

// ---- promotion ----

namespace {
int promotion_rank(DType d) {
  switch (d) {
    case DType::Bool: return 0;
    case DType::Int64: return 1;
    case DType::Float32: return 2;
    case DType::Float64: return 3;
  }
  return 0;
}

// PyTorch's combine_categories: `lower` (0-d tensors, then scalars) changes the result only when
// it is of a higher category (bool < integer < float) than `higher`.
std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating(*higher)) return higher;
  if (*higher == DType::Bool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}

struct PromotionState {
  std::optional<DType> dim, zero, wrapped;
  void add(const Tensor& t) {
    auto& slot = t.dim() > 0 ? dim : zero;
    slot = slot ? promote_types(*slot, t.dtype()) : t.dtype();
  }
  void add(const Scalar& s) {
    DType d = s.kind() == Scalar::Kind::Bool ? DType::Bool : s.kind() == Scalar::Kind::Int ? DType::Int64 : kDefaultFloat;
    wrapped = wrapped ? promote_types(*wrapped, d) : d;
  }
  DType result() const { return combine(dim, combine(zero, wrapped)).value_or(kDefaultFloat); }
};
}  // namespace

DType promote_types(DType a, DType b) { return promotion_rank(a) >= promotion_rank(b) ? a : b; }

DType result_type(const Tensor& a, const Tensor& b) {
  PromotionState s;
  s.add(a);
  s.add(b);
  return s.result();
}

DType result_type(const Tensor& a, const Scalar& b) {
  PromotionState s;
  s.add(a);
  s.add(b);
  return s.result();
}

bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != DType::Bool && to == DType::Bool) return false;
  return true;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  ROTOR_CHECK(steps >= 0, "linspace", "steps must be >= 0, got ", steps);
  Tensor t = Tensor::empty({steps}, dtype);
  dispatch_float(dtype, "linspace", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    double delta = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
    // The second half counts back from end, so both end points are exact (as NumPy and PyTorch).
    for (int64_t i = 0; i < steps; ++i)
      p[i] = T(i < (steps + 1) / 2 ? start + double(i) * delta : end - double(steps - 1 - i) * delta);
  });
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, Shape shape) {
  ROTOR_CHECK(shape_numel(shape) == int64_t(values.size()), "from_vector", values.size(),
              " values do not fill shape ", shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  T* p = static_cast<T*>(t.raw_data());
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}
template Tensor from_vector(const std::vector<float>&, Shape);
template Tensor from_vector(const std::vector<double>&, Shape);
template Tensor from_vector(const std::vector<int64_t>&, Shape);
template Tensor from_vector(const std::vector<bool>&, Shape);

// ---- copies ----

Strides broadcast_strides(const Shape& from, const Strides& st, const Shape& to) {
  Strides out(to.size(), 0);
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) out[lead + i] = from[i] == 1 ? 0 : st[i];
  return out;
}

namespace core {

void copy_into(const Tensor& dst, const Tensor& src) {
  Shape b = broadcast_shapes(src.shape(), dst.shape(), "copy_into");
  ROTOR_CHECK(b == dst.shape(), "copy_into", "cannot copy shape ", shape_str(src.shape()), " into ",
              shape_str(dst.shape()));
  dst.storage()->bump_version();
  StridedLoop<2> loop(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(), dst.shape())});
  dispatch_all(dst.dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      D* d = static_cast<D*>(dst.raw_data());
      const S* s = static_cast<const S*>(src.raw_data());
      const int64_t ds = loop.inner_stride(0), ss = loop.inner_stride(1);
      parallel_for(loop.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
        loop.for_runs(lo, hi, [&](const std::array<int64_t, 2>& off, int64_t n) {
          D* dp = d + off[0];
          const S* sp = s + off[1];
          if constexpr (std::is_same_v<D, S>) {
            if (ds == 1 && ss == 1) {
              std::memcpy(dp, sp, size_t(n) * sizeof(D));
              return;
            }
          }
          for (int64_t i = 0; i < n; ++i) dp[i * ds] = static_cast<D>(sp[i * ss]);
        });
      });
    });
  });
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : clone(t); }

Tensor clone(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  copy_into(out, t);
  return out;
}

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype);
  copy_into(out, t);
  return out;
}

}  // namespace core
}  // namespace rotor
