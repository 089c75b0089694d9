// Helpers shared by the core test files: an element reader that walks shape/strides by hand
// (so references never go through rotor's own copy kernels), random shapes and memory layouts
// drawn from a seeded rotor::Generator, and tolerance checks that report the first mismatch.
#pragma once
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "rotor/autograd/ops.h"
#include "rotor/core/generator.h"
#include "rotor/core/parallel.h"
#include "rotor/core/view.h"

namespace testutil {

using rotor::DType;
using rotor::Generator;
using rotor::Shape;
using rotor::Tensor;
using Index = std::vector<int64_t>;

// ---- reading values ----

// Element at a multi-index, through the tensor's own strides and offset.
inline double read_at(const Tensor& t, const Index& idx) {
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return rotor::dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return double(static_cast<const T*>(t.raw_data())[off]);
  });
}

// Calls f(idx) for every multi-index of shape, in row-major order (once for a 0-d shape).
template <class F>
void for_each_index(const Shape& shape, F&& f) {
  if (rotor::shape_numel(shape) == 0) return;
  Index idx(shape.size(), 0);
  while (true) {
    f(static_cast<const Index&>(idx));
    int64_t d = int64_t(shape.size()) - 1;
    for (; d >= 0; --d) {
      if (++idx[size_t(d)] < shape[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
    if (d < 0) return;
  }
}

// All elements in row-major order, as doubles.
inline std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  v.reserve(size_t(t.numel()));
  for_each_index(t.shape(), [&](const Index& i) { v.push_back(read_at(t, i)); });
  return v;
}

// The index into an operand of shape `in` that broadcasts to the output index `out_idx`.
inline Index broadcast_index(const Index& out_idx, const Shape& in) {
  Index r(in.size());
  const size_t lead = out_idx.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) r[d] = in[d] == 1 ? 0 : out_idx[lead + d];
  return r;
}

inline int64_t linear_index(const Index& idx, const Shape& shape) {
  int64_t l = 0;
  for (size_t d = 0; d < shape.size(); ++d) l = l * shape[d] + idx[d];
  return l;
}

// ---- tolerances ----

// Unit roundoff: half the distance from 1 to the next representable number.
inline double unit_roundoff(DType d) { return d == DType::Float32 ? 0x1p-24 : 0x1p-53; }

// |got - ref| <= atol + rtol * |ref|, with a floor at the dtype's smallest normal number: values
// below it are subnormal, where relative accuracy is not meaningful.
struct Tol {
  double rtol = 0, atol = 0;
};

inline double tiny(DType d) {
  return d == DType::Float32 ? double(std::numeric_limits<float>::min()) : std::numeric_limits<double>::min();
}

inline bool close(double got, double ref, Tol tol, DType dtype) {
  if (std::isnan(ref)) return std::isnan(got);
  if (std::isinf(ref)) return got == ref;
  if (!std::isfinite(got)) return false;
  return std::fabs(got - ref) <= tol.atol + tol.rtol * std::fabs(ref) + (rotor::is_floating(dtype) ? tiny(dtype) : 0);
}

inline std::string index_str(const Index& idx) { return rotor::shape_str(idx); }

// Compares every element of `got` with `ref` (row-major over got's shape); tol_at gives the
// tolerance of element i. One CHECK per call, naming the first mismatch.
template <class TolAt>
void check_values(const Tensor& got, const std::vector<double>& ref, TolAt&& tol_at, const std::string& what) {
  REQUIRE_MESSAGE(int64_t(ref.size()) == got.numel(), what, ": ", got.numel(), " elements, reference has ",
                  ref.size());
  int64_t bad = 0, i = 0;
  std::string first;
  for_each_index(got.shape(), [&](const Index& idx) {
    double g = read_at(got, idx), r = ref[size_t(i)];
    Tol tol = tol_at(i);
    if (!close(g, r, tol, got.dtype())) {
      if (bad++ == 0) {
        std::ostringstream s;
        s.precision(17);
        s << "at " << index_str(idx) << ": got " << g << ", reference " << r << " (rtol " << tol.rtol << ", atol "
          << tol.atol << ")";
        first = s.str();
      }
    }
    ++i;
  });
  CHECK_MESSAGE(bad == 0, what, " ", rotor::shape_str(got.shape()), " ", rotor::dtype_name(got.dtype()), ": ", bad,
                " mismatches; first ", first);
}

inline void check_values(const Tensor& got, const std::vector<double>& ref, Tol tol, const std::string& what) {
  check_values(got, ref, [&](int64_t) { return tol; }, what);
}

// Bit-for-bit equality of two tensors of the same dtype and shape.
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = rotor::core::contiguous(a), cb = rotor::core::contiguous(b);
  return std::memcmp(ca.raw_data(), cb.raw_data(), size_t(ca.numel()) * rotor::dtype_size(ca.dtype())) == 0;
}

// ---- files ----

// A fresh directory per test (unique per process and per instance), removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("rotor_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

// ---- random shapes and layouts ----

inline int64_t pick(Generator& g, int64_t lo, int64_t hi) { return g.next_int(lo, hi); }

// A random shape of rank [min_rank, max_rank]; dims are mostly 2..max_dim, sometimes 1 and,
// when allow_zero, sometimes 0.
inline Shape random_shape(Generator& g, int min_rank, int max_rank, int64_t max_dim = 6, bool allow_zero = true) {
  const int64_t rank = pick(g, min_rank, max_rank + 1);
  Shape s;
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t r = pick(g, 0, 10);
    s.push_back(r == 0 ? (allow_zero ? 0 : 1) : r <= 2 ? 1 : pick(g, 2, max_dim + 1));
  }
  return s;
}

// How a test tensor is laid out in memory; the logical shape and values do not depend on it.
enum class Layout { Contiguous, Transposed, Stepped, Expanded, Permuted, ViewOfView };
constexpr Layout kLayouts[] = {Layout::Contiguous, Layout::Transposed, Layout::Stepped,
                               Layout::Expanded,   Layout::Permuted,   Layout::ViewOfView};

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Stepped: return "stepped";
    case Layout::Expanded: return "expanded";
    case Layout::Permuted: return "permuted";
    case Layout::ViewOfView: return "view-of-view";
  }
  return "?";
}

// Fresh contiguous values: uniform in [lo, hi) for floats, integers in [lo, hi) for int64,
// coin flips for bool.
inline Tensor fresh(const Shape& shape, DType dtype, Generator& g, double lo, double hi) {
  if (dtype == DType::Int64) return rotor::randint(int64_t(lo), int64_t(hi), shape, g);
  if (dtype == DType::Bool) return rotor::core::to_dtype(rotor::randint(0, 2, shape, g), DType::Bool);
  return rotor::rand(shape, g, dtype, lo, hi);
}

inline std::vector<int64_t> reversed_dims(int64_t n) {
  std::vector<int64_t> p;
  for (int64_t d = n - 1; d >= 0; --d) p.push_back(d);
  return p;
}

// A tensor of logical shape `shape` in the given layout, values from `g`.
inline Tensor make(const Shape& shape, DType dtype, Layout layout, Generator& g, double lo = -2.0, double hi = 2.0) {
  namespace core = rotor::core;
  const int64_t n = int64_t(shape.size());
  switch (layout) {
    case Layout::Contiguous: return fresh(shape, dtype, g, lo, hi);
    case Layout::Transposed: {
      if (n < 2) return fresh(shape, dtype, g, lo, hi);
      Shape base = shape;
      std::swap(base[size_t(n - 2)], base[size_t(n - 1)]);
      return core::transpose(fresh(base, dtype, g, lo, hi), -1, -2);
    }
    case Layout::Stepped: {  // every dim sliced with step 2 from offset 1
      Shape base = shape;
      for (auto& d : base) d = 2 * d + 1;
      Tensor t = fresh(base, dtype, g, lo, hi);
      for (int64_t d = 0; d < n; ++d) t = core::slice(t, d, 1, 1 + 2 * shape[size_t(d)], 2);
      return t;
    }
    case Layout::Expanded: {  // stride 0 along every other dim (and a new leading dim when 1-D)
      Shape base = shape;
      for (int64_t d = 0; d < n; d += 2) base[size_t(d)] = 1;
      return core::expand(fresh(base, dtype, g, lo, hi), shape);
    }
    case Layout::Permuted: {  // storage in reversed dim order
      Shape base(shape.rbegin(), shape.rend());
      return core::permute(fresh(base, dtype, g, lo, hi), reversed_dims(n));
    }
    case Layout::ViewOfView: {  // a select of a step-sliced transpose
      if (n == 0) return fresh(shape, dtype, g, lo, hi);
      Shape base(shape.rbegin(), shape.rend());
      base.back() = 2 * base.back();
      base.insert(base.begin(), 3);
      Tensor t = fresh(base, dtype, g, lo, hi);
      t = core::select(t, 0, 1);
      t = core::slice(t, n - 1, 0, base.back(), 2);
      return core::permute(t, reversed_dims(n));
    }
  }
  return Tensor();
}

// Operand shapes that broadcast to `out`: the ways the brief asks for (left, right, both,
// rank extension, 0-d scalar).
enum class Bcast { None, Left, Right, Both, RankExtension, Scalar };
constexpr Bcast kBroadcasts[] = {Bcast::None, Bcast::Left, Bcast::Right, Bcast::Both, Bcast::RankExtension,
                                 Bcast::Scalar};

inline const char* bcast_name(Bcast b) {
  switch (b) {
    case Bcast::None: return "same shapes";
    case Bcast::Left: return "left operand broadcast";
    case Bcast::Right: return "right operand broadcast";
    case Bcast::Both: return "both broadcast";
    case Bcast::RankExtension: return "rank extension";
    case Bcast::Scalar: return "0-d scalar";
  }
  return "?";
}

// `out` with some dims set to 1 (each with probability 1/2, at least one when possible).
inline Shape ones_in(const Shape& out, Generator& g) {
  Shape s = out;
  bool any = false;
  for (auto& d : s)
    if (pick(g, 0, 2)) d = 1, any = true;
  if (!any && !s.empty()) s[size_t(pick(g, 0, int64_t(s.size())))] = 1;
  return s;
}

// Shapes (a, b) for an output shape `out` in broadcast mode `mode`.
inline std::pair<Shape, Shape> broadcast_pair(const Shape& out, Bcast mode, Generator& g) {
  switch (mode) {
    case Bcast::None: return {out, out};
    case Bcast::Left: return {ones_in(out, g), out};
    case Bcast::Right: return {out, ones_in(out, g)};
    case Bcast::Both: {  // complementary: a has 1 where b keeps the size, and vice versa
      Shape a = out, b = out;
      for (size_t d = 0; d < out.size(); ++d) (pick(g, 0, 2) ? a : b)[d] = 1;
      return {a, b};
    }
    case Bcast::RankExtension: {
      const int64_t drop = out.empty() ? 0 : pick(g, 1, int64_t(out.size()) + 1);
      Shape shorter(out.begin() + drop, out.end());
      return pick(g, 0, 2) ? std::pair{shorter, out} : std::pair{out, shorter};
    }
    case Bcast::Scalar: return pick(g, 0, 2) ? std::pair{Shape{}, out} : std::pair{out, Shape{}};
  }
  return {out, out};
}

// Restores the default thread count even when a check throws.
struct ThreadGuard {
  explicit ThreadGuard(int n) { rotor::set_num_threads(n); }
  ~ThreadGuard() { rotor::set_num_threads(0); }
};

// The message of the rotor::Error that fn throws ("" if none, "<other exception>" otherwise).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const rotor::Error& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs fn, which must throw a rotor::Error; checks that the message contains every part.
template <class F>
void check_error(F&& fn, std::initializer_list<std::string> parts) {
  const std::string msg = error_of(fn);
  REQUIRE_MESSAGE(!msg.empty(), "no error; expected one containing ", *parts.begin());
  CHECK_MESSAGE(msg != "<other exception>", "not a rotor::Error; expected ", *parts.begin());
  for (const std::string& p : parts) CHECK_MESSAGE(contains(msg, p), "message \"", msg, "\" lacks \"", p, "\"");
}

}  // namespace testutil
