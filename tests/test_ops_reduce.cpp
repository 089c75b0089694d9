// Reductions, the softmax family and cumulative sums against double loops, on every subset of
// dims, keepdim or not, contiguous and permuted inputs (kernels/reduce.cpp has three paths: a
// contiguous trailing block, a contiguous middle block, and permute+copy), at sizes that split
// rows into several blocks; and bit-identical results on 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core_test_util.h"

using namespace rotor;
using namespace testutil;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// Reference reduction of x over `dims` (normalised, sorted): per output element the sum, sum of
// absolute values, max, min, count, and the reduced values in order.
struct RefReduce {
  Shape shape;  // with keepdim
  std::vector<double> sum, abs_sum, max, min;
  std::vector<std::vector<double>> rows;
};

RefReduce ref_reduce(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (int64_t d : dims) reduced[size_t(d)] = true;
  RefReduce r;
  Shape kept;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!reduced[size_t(d)]) kept.push_back(x.shape()[size_t(d)]);
    if (!reduced[size_t(d)] || keepdim) r.shape.push_back(reduced[size_t(d)] ? 1 : x.shape()[size_t(d)]);
  }
  const size_t n = size_t(shape_numel(kept));
  r.sum.assign(n, 0.0);
  r.abs_sum.assign(n, 0.0);
  r.max.assign(n, -kInf);
  r.min.assign(n, kInf);
  r.rows.assign(n, {});
  for_each_index(x.shape(), [&](const Index& i) {
    Index k;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!reduced[size_t(d)]) k.push_back(i[size_t(d)]);
    const size_t o = size_t(linear_index(k, kept));
    const double v = read_at(x, i);
    r.sum[o] += v;
    r.abs_sum[o] += std::fabs(v);
    r.max[o] = std::max(r.max[o], v);
    r.min[o] = std::min(r.min[o], v);
    r.rows[o].push_back(v);
  });
  return r;
}

// Any order of summing n numbers has error at most (n-1) u sum|x| (first order); the double
// reference has its own such error, so the bound is doubled.
Tol sum_tol(DType dt, size_t n, double abs_sum) {
  if (!is_floating(dt)) return {};
  return {2 * unit_roundoff(dt), 2 * double(n > 1 ? n - 1 : 1) * unit_roundoff(dt) * abs_sum};
}

// The shape without keepdim: the reduced dims removed.
Shape dropped_shape(const Shape& shape, const std::vector<int64_t>& dims) {
  Shape out;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d)
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) out.push_back(shape[size_t(d)]);
  return out;
}

std::vector<int64_t> subset(int mask, int64_t ndim) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < ndim; ++d)
    if (mask >> d & 1) dims.push_back(d);
  return dims;
}

std::string dims_str(const std::vector<int64_t>& dims) { return dims.empty() ? "all" : shape_str(dims); }

// Checks sum, mean, max and min of x over dims against the reference.
void check_reductions(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, const std::string& what) {
  std::vector<int64_t> dims = dims_in.empty() ? subset((1 << x.dim()) - 1, x.dim()) : dims_in;
  std::vector<int64_t> sorted = normalize_dims(dims, x.dim(), "test");
  RefReduce r = ref_reduce(x, sorted, keepdim);
  Shape expect_shape = keepdim ? r.shape : dropped_shape(x.shape(), sorted);
  const std::string tag = what + " dims " + dims_str(dims_in) + (keepdim ? " keepdim" : "");
  const DType dt = x.dtype();

  Tensor s = sum(x, dims_in, keepdim);
  REQUIRE_MESSAGE(s.shape() == expect_shape, tag, ": sum shape ", shape_str(s.shape()));
  CHECK(s.dtype() == dt);
  int64_t reduced_count = 1;
  for (int64_t d : sorted) reduced_count *= x.shape()[size_t(d)];
  check_values(s, r.sum, [&](int64_t i) { return sum_tol(dt, size_t(reduced_count), r.abs_sum[size_t(i)]); },
               "sum " + tag);

  if (is_floating(dt)) {
    Tensor m = mean(x, dims_in, keepdim);
    REQUIRE(m.shape() == expect_shape);
    std::vector<double> rm;
    for (double v : r.sum) rm.push_back(v / double(reduced_count));
    // The sum's bound divided by the count, plus the rounding of 1/count and of the product.
    check_values(m, rm, [&](int64_t i) {
      Tol t = sum_tol(dt, size_t(reduced_count), r.abs_sum[size_t(i)]);
      return Tol{4 * unit_roundoff(dt), t.atol / double(std::max<int64_t>(reduced_count, 1))};
    }, "mean " + tag);
  }

  if (reduced_count > 0) {
    Tensor mx = rotor::max(x, dims_in, keepdim), mn = rotor::min(x, dims_in, keepdim);
    REQUIRE(mx.shape() == expect_shape);
    REQUIRE(mn.shape() == expect_shape);
    check_values(mx, r.max, Tol{}, "max " + tag);
    check_values(mn, r.min, Tol{}, "min " + tag);
  } else {
    CHECK(contains(error_of([&] { rotor::max(x, dims_in, keepdim); }), "[max]"));
    CHECK(contains(error_of([&] { rotor::min(x, dims_in, keepdim); }), "[min]"));
  }
}

}  // namespace

TEST_CASE("sum, mean, max, min over every subset of dims, keepdim or not, contiguous and permuted") {
  // On a contiguous input, trailing dims take the contiguous-block path, inner runs of dims the
  // middle-block path, and any other subset (or a permuted input) the permute+copy path.
  Generator g(401);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (Layout l : {Layout::Contiguous, Layout::Permuted, Layout::Stepped}) {
      Tensor x = make({3, 4, 5, 6}, dt, l, g, -100, 100);
      for (int mask = 0; mask < 16; ++mask)
        for (bool keepdim : {false, true}) {
          std::vector<int64_t> dims = subset(mask, 4);
          // Negative spellings of the same dims half of the time.
          if (mask % 3 == 1)
            for (auto& d : dims) d -= 4;
          check_reductions(x, dims, keepdim, std::string(dtype_name(dt)) + " " + layout_name(l));
        }
    }
}

TEST_CASE("reductions on random shapes with size-0 and size-1 dims, and 0-d tensors") {
  Generator g(402);
  for (DType dt : {DType::Float32, DType::Float64})
    for (int trial = 0; trial < 40; ++trial) {
      Shape s = random_shape(g, 0, 4);
      Tensor x = make(s, dt, kLayouts[pick(g, 0, 6)], g);
      const int mask = s.empty() ? 0 : int(pick(g, 0, 1 << s.size()));
      check_reductions(x, subset(mask, int64_t(s.size())), pick(g, 0, 2) == 1, "random " + shape_str(s));
    }
  // Summing nothing gives 0; a 0-d tensor reduces to itself.
  CHECK(sum(zeros({0, 3})).item() == 0);
  CHECK(sum(zeros({4, 0}), {1}).to_vector<float>() == std::vector<float>(4, 0.0f));
  CHECK(sum(scalar_tensor(2.5)).item() == 2.5);
  CHECK(rotor::max(scalar_tensor(-1.5)).item() == -1.5);
}

TEST_CASE("reductions that split long rows into blocks (all three paths)") {
  Generator g(403);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
    // Trailing block, rows longer than one 2^14 block: partials combined in block order.
    check_reductions(make({3, 40000}, dt, Layout::Contiguous, g, -100, 100), {1}, false, "long rows");
    // Middle block with few columns: rows split into blocks of 2^14 / C.
    check_reductions(make({1, 50000, 8}, dt, Layout::Contiguous, g, -100, 100), {1}, true, "tall middle");
    // Middle block wider than one column chunk (1024), two chunks, rows split.
    check_reductions(make({1, 300, 1100}, dt, Layout::Contiguous, g, -100, 100), {1}, false, "wide middle");
    // Many outer rows: one task per (row, column chunk).
    check_reductions(make({9, 700, 3}, dt, Layout::Contiguous, g, -100, 100), {1}, false, "many outer");
    // Permute+copy of a large transposed input.
    check_reductions(make({400, 300}, dt, Layout::Transposed, g, -100, 100), {0}, false, "transposed large");
  }
}

TEST_CASE("mean rejects int64, and the empty-dim max names the op") {
  CHECK(contains(error_of([] { mean(arange(6)); }), "[mean]"));
  std::string msg = error_of([] { rotor::max(zeros({2, 0}), {1}); });
  CHECK(contains(msg, "[max]"));
  CHECK(contains(msg, "[2, 0]"));
}

TEST_CASE("argmax and argmin return the first index on ties, along every dim") {
  Generator g(404);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (Layout l : {Layout::Contiguous, Layout::Permuted, Layout::ViewOfView}) {
      // Values in {0, 1, 2}: most rows hold ties for both the max and the min.
      Tensor x = core::to_dtype(make({4, 5, 6}, DType::Int64, l, g, 0, 3), dt);
      if (l != Layout::Contiguous) x = core::permute(core::contiguous(core::permute(x, {2, 1, 0})), {2, 1, 0});
      for (int64_t dim = -3; dim < 3; ++dim)
        for (bool keepdim : {false, true}) {
          const int64_t d = dim < 0 ? dim + 3 : dim;
          Tensor amax = argmax(x, dim, keepdim), amin = argmin(x, dim, keepdim);
          CHECK(amax.dtype() == DType::Int64);
          Shape shape = x.shape();
          if (keepdim) shape[size_t(d)] = 1;
          else shape.erase(shape.begin() + d);
          REQUIRE(amax.shape() == shape);
          REQUIRE(amin.shape() == shape);
          std::vector<double> rmax, rmin;
          Shape outer = x.shape();
          outer[size_t(d)] = 1;
          for_each_index(outer, [&](const Index& i) {
            Index j = i;
            int64_t bmax = 0, bmin = 0;
            for (int64_t r = 0; r < x.shape()[size_t(d)]; ++r) {
              j[size_t(d)] = r;
              Index jmax = j, jmin = j;
              jmax[size_t(d)] = bmax;
              jmin[size_t(d)] = bmin;
              if (read_at(x, j) > read_at(x, jmax)) bmax = r;
              if (read_at(x, j) < read_at(x, jmin)) bmin = r;
            }
            rmax.push_back(double(bmax));
            rmin.push_back(double(bmin));
          });
          check_values(amax, rmax, Tol{}, "argmax dim " + std::to_string(dim));
          check_values(amin, rmin, Tol{}, "argmin dim " + std::to_string(dim));
        }
    }
  CHECK(argmax(from_vector<float>({1, 3, 3, 2}), 0).item<int64_t>() == 1);
  CHECK(argmin(from_vector<float>({2, 1, 5, 1}), 0).item<int64_t>() == 1);
}

namespace {

// log sum exp of a row in double, shifted by its max (the row's values are exact doubles).
double ref_lse(const std::vector<double>& row) {
  double m = -kInf;
  for (double v : row) m = std::max(m, v);
  if (m == -kInf) return -kInf;
  double s = 0;
  for (double v : row) s += std::exp(v - m);
  return m + std::log(s);
}

double spread(const std::vector<double>& row) {
  double lo = kInf, hi = -kInf;
  for (double v : row)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  return hi > lo ? hi - lo : 0.0;
}

// Error model shared by the softmax family: exp(x - m) has relative error ~u|x - m| (from the
// rounding of x - m) plus a few ulp; summing n terms adds (n-1)u; the log turns the relative
// error of the sum into an absolute one. 2u (n + 8 + spread) bounds it with room for the
// reference's own rounding.
double family_err(DType dt, size_t n, double spread) { return 2 * unit_roundoff(dt) * (double(n) + 8 + spread); }

}  // namespace

TEST_CASE("logsumexp over dims, with -inf rows and logits near 1e4") {
  Generator g(405);
  for (DType dt : {DType::Float32, DType::Float64})
    for (double offset : {0.0, 1e4, -1e4}) {
      Tensor x = make({4, 3, 5}, dt, Layout::Permuted, g, -3, 3);
      x = add(x, offset);
      // Row [1, :, 2] (over dim 1) is all -inf; element [2, 1, 0] alone is -inf.
      for (int64_t j = 0; j < 3; ++j)
        core::copy_into(core::select(core::select(core::select(x, 0, 1), 0, j), 0, 2), scalar_tensor(-kInf, dt));
      core::copy_into(core::select(core::select(core::select(x, 0, 2), 0, 1), 0, 0), scalar_tensor(-kInf, dt));
      for (auto dims : {std::vector<int64_t>{1}, {-1}, {0, 2}, {}})
        for (bool keepdim : {false, true}) {
          std::vector<int64_t> sorted = normalize_dims(dims, 3, "test");
          RefReduce r = ref_reduce(x, sorted, keepdim);
          Tensor out = logsumexp(x, dims, keepdim);
          REQUIRE(out.shape() == (keepdim ? r.shape : dropped_shape(x.shape(), sorted)));
          std::vector<double> ref;
          for (auto& row : r.rows) ref.push_back(ref_lse(row));
          check_values(out, ref, [&](int64_t i) {
            const auto& row = r.rows[size_t(i)];
            return Tol{2 * unit_roundoff(dt), family_err(dt, row.size(), spread(row))};
          }, "logsumexp " + dims_str(dims) + " offset " + std::to_string(offset));
          for (double v : values(out)) CHECK_FALSE(std::isnan(v));
        }
      CHECK(values(logsumexp(x, {1}))[1 * 5 + 2] == -kInf);
    }
  // +inf dominates; a large finite row does not overflow.
  CHECK(logsumexp(from_vector<float>({1, std::numeric_limits<float>::infinity()})).item() == kInf);
  CHECK(logsumexp(from_vector<float>({3e38f, 3e38f})).item() == doctest::Approx(3e38 + std::log(2.0)).epsilon(1e-6));
}

namespace {

// softmax and log_softmax of x along dim against double loops.
void check_softmax_family(const Tensor& x, int64_t dim, const std::string& what) {
  const DType dt = x.dtype();
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  Tensor sm = softmax(x, dim), lsm = log_softmax(x, dim);
  REQUIRE(sm.shape() == x.shape());
  REQUIRE(lsm.shape() == x.shape());
  std::vector<double> rsm(size_t(x.numel())), rlsm(size_t(x.numel()));
  std::vector<Tol> tsm(size_t(x.numel())), tlsm(size_t(x.numel()));
  Shape outer = x.shape();
  outer[size_t(d)] = 1;
  for_each_index(outer, [&](const Index& i) {
    Index j = i;
    std::vector<double> row;
    for (int64_t r = 0; r < x.shape()[size_t(d)]; ++r) j[size_t(d)] = r, row.push_back(read_at(x, j));
    // Shifted by the row max, never by the rounded logsumexp: at logits near 1e4 that would
    // cost the reference itself an absolute error of ulp(1e4).
    double m = -kInf, s = 0;
    for (double v : row) m = std::max(m, v);
    if (m == -kInf) m = 0;
    for (double v : row) s += std::exp(v - m);
    const double err = family_err(dt, row.size(), spread(row));
    for (int64_t r = 0; r < x.shape()[size_t(d)]; ++r) {
      j[size_t(d)] = r;
      const size_t at = size_t(linear_index(j, x.shape()));
      rsm[at] = std::exp(row[size_t(r)] - m) / s;
      rlsm[at] = (row[size_t(r)] - m) - std::log(s);
      tsm[at] = {err, 0};                        // relative
      tlsm[at] = {2 * unit_roundoff(dt), err};  // absolute, plus the final rounding
    }
  });
  check_values(sm, rsm, [&](int64_t i) { return tsm[size_t(i)]; }, "softmax " + what);
  check_values(lsm, rlsm, [&](int64_t i) { return tlsm[size_t(i)]; }, "log_softmax " + what);
}

}  // namespace

TEST_CASE("softmax and log_softmax along every dim, every layout") {
  Generator g(406);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Layout l : kLayouts)
      for (int64_t dim = -3; dim < 3; ++dim)
        check_softmax_family(make({3, 4, 5}, dt, l, g, -5, 5), dim,
                             std::string(layout_name(l)) + " dim " + std::to_string(dim));
}

TEST_CASE("softmax and log_softmax stay accurate at logits near 1e4") {
  // Shift invariance: softmax(x + c) = softmax(x), log_softmax(x + c) = log_softmax(x), and the
  // reference is computed from the shifted values themselves.
  Generator g(407);
  for (DType dt : {DType::Float32, DType::Float64})
    for (double offset : {1e4, -1e4, 3e4})
      for (int64_t dim : {0, 1}) {
        Tensor x = add(make({6, 37}, dt, Layout::Contiguous, g, -4, 4), offset);
        check_softmax_family(x, dim, "offset " + std::to_string(offset) + " dim " + std::to_string(dim));
        for (double v : values(softmax(x, dim))) REQUIRE(std::isfinite(v));
        for (double v : values(log_softmax(x, dim))) REQUIRE(std::isfinite(v));
      }
}

TEST_CASE("softmax on long rows (SIMD body and tail) and a row holding one -inf") {
  Generator g(408);
  for (DType dt : {DType::Float32, DType::Float64}) {
    check_softmax_family(make({3, 1031}, dt, Layout::Stepped, g, -20, 20), -1, "long rows");
    Tensor x = core::clone(make({2, 5}, dt, Layout::Contiguous, g, -1, 1));
    core::copy_into(core::select(core::select(x, 0, 0), 0, 3), scalar_tensor(-kInf, dt));
    CHECK(values(softmax(x, 1))[3] == 0);
    CHECK(values(log_softmax(x, 1))[3] == -kInf);
    check_softmax_family(x, 1, "one -inf");
  }
}

TEST_CASE("cumsum forward and reverse along every dim, every layout, int64 exact") {
  Generator g(409);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (Layout l : kLayouts)
      for (int64_t dim = -3; dim < 3; ++dim)
        for (bool reverse : {false, true}) {
          Tensor x = make({3, 4, 5}, dt, l, g, -50, 50);
          const int64_t d = dim < 0 ? dim + 3 : dim;
          Tensor c = cumsum(x, dim, reverse);
          REQUIRE(c.shape() == x.shape());
          CHECK(c.dtype() == dt);
          std::vector<double> ref(size_t(x.numel()));
          std::vector<Tol> tol(size_t(x.numel()));
          for_each_index(x.shape(), [&](const Index& i) {
            Index j = i;
            double s = 0, a = 0;
            int64_t n = 0;
            for (int64_t r = reverse ? x.shape()[size_t(d)] - 1 : 0; reverse ? r >= i[size_t(d)] : r <= i[size_t(d)];
                 r += reverse ? -1 : 1) {
              j[size_t(d)] = r;
              s += read_at(x, j), a += std::fabs(read_at(x, j)), ++n;
            }
            const size_t at = size_t(linear_index(i, x.shape()));
            ref[at] = s;
            tol[at] = sum_tol(dt, size_t(n), a);
          });
          check_values(c, ref, [&](int64_t i) { return tol[size_t(i)]; },
                       std::string("cumsum ") + layout_name(l) + " dim " + std::to_string(dim) +
                           (reverse ? " reverse" : ""));
        }
  CHECK(cumsum(zeros({0, 3}), 0).shape() == Shape{0, 3});
}

// ---- determinism ----

TEST_CASE("large reductions are bit-identical on 1 and 2 threads") {
  Generator g(410);
  Tensor big = randn({10'000'000}, g);
  Tensor tall = randn({100'000, 8}, g);
  Tensor rows = randn({3000, 700}, g, DType::Float32, 0, 4);
  Tensor wide = randn({2, 20000, 3}, g, DType::Float64);
  auto run = [&] {
    return TensorList{sum(big),
                      sum(tall, {0}),
                      mean(tall, {0}, true),
                      sum(wide, {1}),
                      sum(core::transpose(wide, 0, 2), {1, 2}),
                      softmax(rows, -1),
                      softmax(rows, 0),
                      log_softmax(rows, -1),
                      logsumexp(rows, {1}),
                      cumsum(tall, 0),
                      rotor::max(big)};
  };
  TensorList one, two;
  {
    ThreadGuard guard(1);
    REQUIRE(num_threads() == 1);
    one = run();
  }
  REQUIRE(num_threads() >= 2);
  two = run();
  for (size_t i = 0; i < one.size(); ++i) CHECK_MESSAGE(same_bits(one[i], two[i]), "result ", i);
  // And the big sums are right. Over 1e7 positive values a running float32 sum drifts by whole
  // percents (its ulp reaches 0.5 long before the end); the blocked sum stays within 1e-6.
  double s = 0, a = 0;
  const float* p = big.data<float>();
  for (int64_t i = 0; i < big.numel(); ++i) s += p[i], a += std::fabs(p[i]);
  CHECK(std::fabs(one[0].item() - s) <= 1e-6 * a);
  CHECK(std::fabs(sum(abs(big)).item() - a) <= 1e-6 * a);
}

TEST_CASE("max, min, argmax and argmin propagate NaN wherever it sits in the row") {
  // max/min of a row holding NaN is NaN (NumPy, PyTorch); argmax/argmin point at the first NaN.
  // Row lengths cover the scalar tail, one SIMD batch and the four-accumulator body; the
  // reduced dim is the last (contiguous path) or the first (middle-block path).
  const double nan = std::nan("");
  Generator gen(411);
  for (DType dt : {DType::Float32, DType::Float64})
    for (int64_t n : {1, 3, 9, 16, 70})
      for (int64_t at = 0; at < n; at += (n > 9 ? 5 : 1))
        for (int64_t dim : {1, 0}) {
          Tensor x = core::clone(core::to_dtype(rand({2, n}, gen, DType::Float64), dt));
          core::copy_into(core::narrow(core::select(x, 0, 1), 0, at, 1), scalar_tensor(nan, dt));
          core::copy_into(core::narrow(core::select(x, 0, 0), 0, n - 1 - at, 1), scalar_tensor(nan, dt));
          if (dim == 0) x = core::contiguous(core::transpose(x, 0, 1));  // [n, 2], reduce the rows
          const std::string where = "n=" + std::to_string(n) + " nan at " + std::to_string(at) + " dim " +
                                    std::to_string(dim);
          const std::vector<double> first_nan{double(n - 1 - at), double(at)};
          for (double v : values(rotor::max(x, {dim}))) CHECK_MESSAGE(std::isnan(v), "max ", where);
          for (double v : values(rotor::min(x, {dim}))) CHECK_MESSAGE(std::isnan(v), "min ", where);
          CHECK_MESSAGE(std::isnan(rotor::max(x).item()), "max all ", where);
          CHECK_MESSAGE(values(argmax(x, dim)) == first_nan, "argmax ", where);
          CHECK_MESSAGE(values(argmin(x, dim)) == first_nan, "argmin ", where);
        }
}

TEST_CASE("reductions over an empty dim: sum 0, mean NaN, logsumexp -inf, max an error") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x = zeros({2, 0, 3}, dt);
    CHECK(values(sum(x, {1})) == std::vector<double>(6, 0.0));
    for (double v : values(mean(x, {1}))) CHECK(std::isnan(v));
    Tensor l = logsumexp(x, {1});
    REQUIRE(l.shape() == Shape{2, 3});
    for (double v : values(l)) CHECK(v == -kInf);
    CHECK(logsumexp(x, {1}, true).shape() == Shape{2, 1, 3});
    CHECK(logsumexp(x).item() == -kInf);
    CHECK(softmax(x, 1).shape() == x.shape());
    CHECK(contains(error_of([&] { rotor::max(x, {1}); }), "[max]"));
    CHECK(contains(error_of([&] { argmin(x, 1); }), "[argmin]"));
  }
}
