#include "rotor/core/view.h"

#include <algorithm>

namespace rotor::core {

Shape infer_shape(Shape shape, int64_t numel, const char* op) {
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      ROTOR_CHECK(infer_at < 0, op, "only one dimension can be -1 in ", shape_str(shape));
      infer_at = int64_t(i);
    } else {
      ROTOR_CHECK(shape[i] >= 0, op, "invalid dimension in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    ROTOR_CHECK(known != 0 && numel % known == 0, op, "cannot infer -1 in ", shape_str(shape),
                " for ", numel, " elements");
    shape[infer_at] = numel / known;
  }
  ROTOR_CHECK(shape_numel(shape) == numel, op, "shape ", shape_str(shape), " does not hold ", numel,
              " elements");
  return shape;
}

std::optional<Tensor> try_view(const Tensor& t, const Shape& target) {
  Shape shape = infer_shape(target, t.numel(), "view");
  // An empty tensor has no elements to lay out: any shape of the same size is a view of it.
  if (t.is_contiguous() || t.numel() == 0) return Tensor::view_of(t, shape, contiguous_strides(shape), t.offset());
  // Group the old dims into runs that are contiguous among themselves; every new dim must fall
  // inside one run (the rule PyTorch's view uses).
  const Shape& os = t.shape();
  const Strides& ost = t.strides();
  Strides st(shape.size());
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        st[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return Tensor::view_of(t, shape, st, t.offset());
}

Tensor view(const Tensor& t, const Shape& shape) {
  auto v = try_view(t, shape);
  ROTOR_CHECK(v.has_value(), "view", "cannot view a tensor of shape ", shape_str(t.shape()),
              " with strides ", shape_str(t.strides()), " as ", shape_str(shape),
              " without a copy; use reshape");
  return *v;
}

Tensor reshape(const Tensor& t, const Shape& target) {
  const Shape shape = infer_shape(target, t.numel(), "reshape");  // errors name reshape, not view
  if (auto v = try_view(t, shape)) return *v;
  return *try_view(clone(t), shape);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  const int64_t n = t.dim();
  ROTOR_CHECK(int64_t(dims.size()) == n, "permute", "got ", dims.size(), " dims for a tensor of shape ",
              shape_str(t.shape()));
  Shape shape(n);
  Strides st(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = normalize_dim(dims[i], n, "permute");
    ROTOR_CHECK(!seen[d], "permute", "dim ", d, " repeated in ", shape_str(dims));
    seen[d] = true;
    shape[i] = t.shape()[d];
    st[i] = t.strides()[d];
  }
  return Tensor::view_of(t, shape, st, t.offset());
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  int64_t a = normalize_dim(dim0, t.dim(), "transpose"), b = normalize_dim(dim1, t.dim(), "transpose");
  Shape shape = t.shape();
  Strides st = t.strides();
  std::swap(shape[a], shape[b]);
  std::swap(st[a], st[b]);
  return Tensor::view_of(t, shape, st, t.offset());
}

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  int64_t d = normalize_dim(dim, t.dim(), "slice");
  ROTOR_CHECK(step > 0, "slice", "step must be positive, got ", step);
  const int64_t n = t.shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = t.shape();
  Strides st = t.strides();
  shape[d] = (end - start + step - 1) / step;
  st[d] *= step;
  return Tensor::view_of(t, shape, st, t.offset() + start * t.strides()[d]);
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  int64_t d = normalize_dim(dim, t.dim(), "narrow");
  const int64_t n = t.shape()[d];
  ROTOR_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow", "range [", start, ", ",
              start + length, ") out of bounds for dim ", d, " of shape ", shape_str(t.shape()));
  return slice(t, d, start, start + length);
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  int64_t d = normalize_dim(dim, t.dim(), "select");
  const int64_t n = t.shape()[d];
  ROTOR_CHECK(index >= -n && index < n, "select", "index ", index, " out of range for dim ", d,
              " of shape ", shape_str(t.shape()));
  if (index < 0) index += n;
  Shape shape = t.shape();
  Strides st = t.strides();
  int64_t off = t.offset() + index * st[d];
  shape.erase(shape.begin() + d);
  st.erase(st.begin() + d);
  return Tensor::view_of(t, shape, st, off);
}

Tensor expand(const Tensor& t, const Shape& target) {
  const int64_t n = int64_t(target.size()), lead = n - t.dim();
  ROTOR_CHECK(lead >= 0, "expand", "cannot expand shape ", shape_str(t.shape()), " to ", shape_str(target));
  Shape shape(n);
  Strides st(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (i < lead) {
      ROTOR_CHECK(target[i] >= 0, "expand", "invalid size -1 for a new leading dim in ", shape_str(target));
      shape[i] = target[i];
      continue;
    }
    int64_t have = t.shape()[i - lead], want = target[i] == -1 ? have : target[i];
    ROTOR_CHECK(want >= 0 && (have == want || have == 1), "expand", "cannot expand shape ", shape_str(t.shape()), " to ",
                shape_str(target));
    shape[i] = want;
    st[i] = have == want ? t.strides()[i - lead] : 0;
  }
  return Tensor::view_of(t, shape, st, t.offset());
}

Tensor squeeze(const Tensor& t) {
  Shape shape;
  Strides st;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (t.shape()[i] != 1) {
      shape.push_back(t.shape()[i]);
      st.push_back(t.strides()[i]);
    }
  return Tensor::view_of(t, shape, st, t.offset());
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  int64_t d = normalize_dim(dim, t.dim(), "squeeze");
  if (t.shape()[d] != 1) return Tensor::view_of(t, t.shape(), t.strides(), t.offset());
  Shape shape = t.shape();
  Strides st = t.strides();
  shape.erase(shape.begin() + d);
  st.erase(st.begin() + d);
  return Tensor::view_of(t, shape, st, t.offset());
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  int64_t d = normalize_dim(dim, t.dim() + 1, "unsqueeze");
  Shape shape = t.shape();
  Strides st = t.strides();
  int64_t s = d < t.dim() ? t.strides()[d] * t.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  st.insert(st.begin() + d, s);
  return Tensor::view_of(t, shape, st, t.offset());
}

}  // namespace rotor::core
