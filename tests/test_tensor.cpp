// The tensor core: views (reshape/view, permute, transpose, slice, narrow, select, expand,
// squeeze/unsqueeze) checked element by element against index arithmetic, contiguous/clone/
// to_dtype, creation functions, and the random generator's statistics and determinism.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "core_test_util.h"

using namespace rotor;
using namespace testutil;

TEST_CASE("a transposed view is not contiguous and contiguous() copies it") {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = core::transpose(a, 0, 1);
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  Tensor c = core::contiguous(t);
  CHECK(c.is_contiguous());
  CHECK(c.storage() != a.storage());
  CHECK(c.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(core::contiguous(a).storage() == a.storage());  // already contiguous: no copy
}

// ---- views ----

TEST_CASE("reshape is a view when strides allow and a copy otherwise; view refuses the copy") {
  Generator g(1);
  for (Layout l : kLayouts) {
    Tensor x = make({4, 3, 6}, DType::Float64, l, g);
    const std::vector<double> xs = values(x);
    for (Shape target : {Shape{72}, Shape{12, 6}, Shape{4, 18}, Shape{2, 2, 3, 2, 3}, Shape{-1, 9}, Shape{4, 3, 6, 1}}) {
      Tensor r = reshape(x, target);
      CHECK(r.numel() == 72);
      check_values(r, xs, Tol{}, std::string("reshape ") + layout_name(l) + " " + shape_str(target));
      auto v = core::try_view(x, target);
      if (v) {
        // A possible view shares storage and reshape takes it.
        CHECK(r.storage().get() == x.storage().get());
        check_values(view(x, target), xs, Tol{}, "view");
      } else {
        CHECK(r.storage().get() != x.storage().get());
        std::string msg = error_of([&] { view(x, target); });
        CHECK_MESSAGE(contains(msg, "[view]"), msg);
        CHECK(contains(msg, shape_str(x.shape())));
      }
    }
  }
  // Which layouts are viewable is fixed by the strides.
  Tensor base = zeros({2, 3, 4});
  CHECK(core::try_view(core::permute(base, {1, 0, 2}), {3, 2, 2, 2}).has_value());  // splits the last dim
  CHECK_FALSE(core::try_view(core::permute(base, {1, 0, 2}), {3, 8}).has_value());  // merges across the swap
  CHECK(core::try_view(core::narrow(base, 2, 1, 2), {6, 2}).has_value());          // rows keep their stride
  CHECK_FALSE(core::try_view(core::narrow(base, 2, 1, 2), {12}).has_value());
  CHECK_FALSE(core::try_view(core::expand(zeros({3}), {2, 3}), {6}).has_value());  // stride 0
  CHECK(core::try_view(core::expand(zeros({3}), {2, 3}), {2, 3, 1}).has_value());
  CHECK(contains(error_of([&] { view(core::transpose(base, 0, 2), {24}); }), "use reshape"));
}

TEST_CASE("permute and transpose move strides, not data") {
  Generator g(2);
  Tensor x = make({2, 3, 4, 5}, DType::Float32, Layout::Stepped, g);
  for (std::vector<int64_t> p : {std::vector<int64_t>{3, 1, 0, 2}, {0, 1, 2, 3}, {-1, -2, -3, -4}, {2, 3, 0, 1}}) {
    Tensor y = permute(x, p);
    CHECK(y.storage().get() == x.storage().get());
    std::vector<double> ref;
    for_each_index(y.shape(), [&](const Index& i) {
      Index j(4);
      for (size_t k = 0; k < 4; ++k) j[size_t(p[k] < 0 ? p[k] + 4 : p[k])] = i[k];
      ref.push_back(read_at(x, j));
    });
    check_values(y, ref, Tol{}, "permute " + shape_str(p));
  }
  Tensor t = transpose(x, 1, -1);
  CHECK(t.shape() == Shape{2, 5, 4, 3});
  check_values(t, values(permute(x, {0, 3, 2, 1})), Tol{}, "transpose");
}

namespace {
// Python's range(*slice(start, end, step).indices(n)) for a positive step.
std::vector<int64_t> python_slice(int64_t n, int64_t start, int64_t end, int64_t step) {
  auto fix = [n](int64_t v) { return v < 0 ? std::max<int64_t>(v + n, 0) : std::min(v, n); };
  std::vector<int64_t> r;
  for (int64_t i = fix(start); i < fix(end); i += step) r.push_back(i);
  return r;
}
}  // namespace

TEST_CASE("slice with steps and negative or out-of-range bounds follows Python") {
  Generator g(3);
  Tensor x = make({9, 4}, DType::Float64, Layout::Transposed, g);
  for (int64_t start : {-12, -9, -3, -1, 0, 2, 8, 9, 20})
    for (int64_t end : {-12, -5, -1, 0, 3, 9, 100})
      for (int64_t step : {1, 2, 3, 10}) {
        Tensor s = slice(x, 0, start, end, step);
        std::vector<int64_t> rows = python_slice(9, start, end, step);
        REQUIRE_MESSAGE((s.shape() == Shape{int64_t(rows.size()), 4}), start, ":", end, ":", step);
        CHECK(s.storage().get() == x.storage().get());
        std::vector<double> ref;
        for (int64_t r : rows)
          for (int64_t c = 0; c < 4; ++c) ref.push_back(read_at(x, {r, c}));
        check_values(s, ref, Tol{}, "slice");
      }
  // Along the last dim, and a slice of a slice.
  Tensor s2 = slice(slice(x, 1, 1, 4, 2), 0, -4, 9, 3);
  std::vector<double> ref;
  for (int64_t r : {5, 8})
    for (int64_t c : {1, 3}) ref.push_back(read_at(x, {r, c}));
  check_values(s2, ref, Tol{}, "slice of slice");
  CHECK(contains(error_of([&] { slice(x, 0, 0, 5, 0); }), "[slice]"));
}

TEST_CASE("narrow and select, negative index included") {
  Generator g(4);
  Tensor x = make({5, 6, 3}, DType::Int64, Layout::Permuted, g, -99, 99);
  Tensor n = narrow(x, 1, 2, 3);
  CHECK(n.shape() == Shape{5, 3, 3});
  std::vector<double> ref;
  for_each_index(n.shape(), [&](const Index& i) { ref.push_back(read_at(x, {i[0], i[1] + 2, i[2]})); });
  check_values(n, ref, Tol{}, "narrow");
  CHECK(narrow(x, -1, 3, 0).numel() == 0);
  for (int64_t idx : {0, 4, -1, -5}) {
    Tensor s = select(x, 0, idx);
    CHECK(s.shape() == Shape{6, 3});
    std::vector<double> r;
    for_each_index(s.shape(), [&](const Index& i) { r.push_back(read_at(x, {idx < 0 ? idx + 5 : idx, i[0], i[1]})); });
    check_values(s, r, Tol{}, "select " + std::to_string(idx));
  }
  Tensor s = select(select(x, 2, 1), 0, -2);  // down to 1-D, then 0-d
  CHECK(s.shape() == Shape{6});
  CHECK(select(s, 0, 3).dim() == 0);
  CHECK(select(s, 0, 3).item() == read_at(x, {3, 3, 1}));
}

TEST_CASE("expand adds stride-0 dims; squeeze and unsqueeze at every position") {
  Generator g(5);
  Tensor x = make({3, 1}, DType::Float32, Layout::Contiguous, g);
  Tensor e = expand(x, {2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides()[0] == 0);
  CHECK(e.strides()[2] == 0);
  CHECK(e.storage().get() == x.storage().get());
  std::vector<double> ref;
  for_each_index(e.shape(), [&](const Index& i) { ref.push_back(read_at(x, {i[1], 0})); });
  check_values(e, ref, Tol{}, "expand");
  CHECK(expand(x, {-1, 5}).shape() == Shape{3, 5});
  CHECK(broadcast_to(x, {4, 3, 2}).shape() == Shape{4, 3, 2});

  Tensor y = make({2, 1, 3, 1}, DType::Float64, Layout::Permuted, g);
  CHECK(squeeze(y).shape() == Shape{2, 3});
  CHECK(squeeze(y, 1).shape() == Shape{2, 3, 1});
  CHECK(squeeze(y, -1).shape() == Shape{2, 1, 3});
  CHECK(squeeze(y, 0).shape() == y.shape());  // not size 1: unchanged
  check_values(squeeze(y), values(y), Tol{}, "squeeze");
  for (int64_t d = -5; d <= 4; ++d) {
    Tensor u = unsqueeze(y, d);
    Shape expect = y.shape();
    expect.insert(expect.begin() + (d < 0 ? d + 5 : d), 1);
    CHECK(u.shape() == expect);
    check_values(u, values(y), Tol{}, "unsqueeze " + std::to_string(d));
  }
  CHECK(unsqueeze(scalar_tensor(3.0), 0).shape() == Shape{1});
}

TEST_CASE("a chain of views reads and writes the base storage") {
  Tensor base = zeros({4, 6}, DType::Float64);
  Tensor v = select(transpose(slice(base, 1, 1, 6, 2), 0, 1), 0, 2);  // column 5 of base
  REQUIRE(v.shape() == Shape{4});
  Tensor src = from_vector<double>({1, 2, 3, 4});
  core::copy_into(v, src);
  for (int64_t r = 0; r < 4; ++r) CHECK(read_at(base, {r, 5}) == double(r + 1));
  CHECK(sum(base).item() == 10);
}

TEST_CASE("contiguous keeps the storage of a contiguous tensor; clone always copies") {
  Generator g(6);
  Tensor x = make({3, 4}, DType::Float32, Layout::Contiguous, g);
  Tensor c = contiguous(x);
  CHECK(c.storage().get() == x.storage().get());
  CHECK(c.offset() == x.offset());
  Tensor row = select(x, 0, 1);  // contiguous, offset 4
  CHECK(contiguous(row).storage().get() == x.storage().get());
  for (Layout l : kLayouts) {
    Tensor y = make({3, 4, 2}, DType::Float64, l, g);
    Tensor yc = contiguous(y);
    CHECK(yc.is_contiguous());
    CHECK((yc.storage().get() == y.storage().get()) == y.is_contiguous());
    check_values(yc, values(y), Tol{}, std::string("contiguous ") + layout_name(l));
    Tensor k = clone(y);
    CHECK(k.storage().get() != y.storage().get());
    CHECK(k.is_contiguous());
    check_values(k, values(y), Tol{}, "clone");
  }
  // A clone is independent of its source.
  Tensor k = clone(x);
  core::copy_into(x, scalar_tensor(7.0f));
  CHECK(values(k) != values(x));
}

TEST_CASE("to_dtype converts every pair of dtypes like a C++ cast") {
  Tensor f = from_vector<double>({-2.75, -1, -0.5, 0, 0.5, 1, 2.75, 1e10}, {2, 4});
  Tensor ft = core::transpose(f, 0, 1);
  for (DType from : {DType::Float32, DType::Float64, DType::Int64, DType::Bool})
    for (DType to : {DType::Float32, DType::Float64, DType::Int64, DType::Bool}) {
      Tensor x = core::to_dtype(ft, from);
      Tensor y = to_dtype(x, to);
      CHECK(y.dtype() == to);
      std::vector<double> ref;
      for (double v : values(x)) {
        switch (to) {
          case DType::Float32: ref.push_back(double(float(v))); break;
          case DType::Float64: ref.push_back(v); break;
          case DType::Int64: ref.push_back(double(int64_t(v))); break;
          case DType::Bool: ref.push_back(v != 0); break;
        }
      }
      check_values(y, ref, Tol{}, std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
      if (from == to) CHECK(y.storage().get() == x.storage().get());
    }
}

// ---- creation ----

TEST_CASE("zeros, ones, full and scalar_tensor in every dtype") {
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64, DType::Bool}) {
    for (double v : values(zeros({2, 3}, dt))) CHECK(v == 0);
    for (double v : values(ones({70000}, dt))) REQUIRE(v == 1);
    Tensor f = full({3, 0, 2}, 5, dt);
    CHECK(f.shape() == Shape{3, 0, 2});
    CHECK(f.numel() == 0);
    CHECK(scalar_tensor(1, dt).dim() == 0);
    CHECK(scalar_tensor(1, dt).item() == 1);
  }
  CHECK(full({2}, -1.25, DType::Float32).to_vector<float>() == std::vector<float>{-1.25f, -1.25f});
  CHECK(full({1}, 2.9, DType::Int64).item<int64_t>() == 2);
  Tensor like = full_like(zeros({2, 2}, DType::Float64), 4.5);
  CHECK(like.dtype() == DType::Float64);
  CHECK(values(like) == std::vector<double>(4, 4.5));
}

TEST_CASE("arange counts ceil((end - start) / step) values, int64 by default") {
  struct Case {
    double start, end, step;
  };
  for (Case c : {Case{0, 10, 1}, Case{2, 9, 3}, Case{5, 0, -1}, Case{0, 1, 0.1}, Case{-1, 1, 0.25}, Case{3, 3, 1},
                 Case{0, 5, -1}, Case{1.5, -2, -0.5}}) {
    for (DType dt : {DType::Int64, DType::Float32, DType::Float64}) {
      Tensor t = arange(c.start, c.end, c.step, dt);
      std::vector<double> ref;
      for (double v = c.start; c.step > 0 ? v < c.end - 1e-12 : v > c.end + 1e-12; v += c.step) ref.push_back(v);
      REQUIRE_MESSAGE(t.numel() == int64_t(ref.size()), c.start, " ", c.end, " ", c.step);
      CHECK(t.dtype() == dt);
      for (size_t i = 0; i < ref.size(); ++i) {
        double expect = c.start + double(i) * c.step;  // no accumulated error
        if (dt == DType::Int64) expect = double(int64_t(expect));
        if (dt == DType::Float32) expect = double(float(expect));
        CHECK(read_at(t, {int64_t(i)}) == expect);
      }
    }
  }
  CHECK(arange(4).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(arange(4).dtype() == DType::Int64);
}

TEST_CASE("linspace hits both ends exactly") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor t = linspace(-1, 2, 7, dt);
    REQUIRE(t.numel() == 7);
    std::vector<double> v = values(t);
    CHECK(v.front() == -1);
    CHECK(v.back() == 2);
    for (size_t i = 0; i < 7; ++i)
      CHECK(v[i] == doctest::Approx(-1 + 0.5 * double(i)).epsilon(dt == DType::Float32 ? 1e-7 : 1e-15));
    CHECK(linspace(3, 4, 1, dt).item() == 3);
    CHECK(linspace(3, 4, 0, dt).numel() == 0);
  }
  // The end point is exact, not start + (n-1) * rounded delta (which gives -0.8999999999999999
  // for the first case, 3.3000000000000003 for the second).
  for (auto [a, b, n] : {std::tuple{0.3, -0.9, 3}, {0.1, 3.3, 7}, {0.3, 1.1, 77}, {0.1, 0.7, 1000}}) {
    std::vector<double> v = values(linspace(a, b, n, DType::Float64));
    CHECK(v.front() == a);
    CHECK(v.back() == b);
    for (int64_t i = 0; i < n; ++i)
      CHECK(v[size_t(i)] == doctest::Approx(a + (b - a) * double(i) / double(n - 1)).epsilon(1e-15));
  }
}

TEST_CASE("from_vector, item and to_vector round-trip every dtype") {
  CHECK(from_vector<float>({1.5f, 2.5f}, {2, 1}).shape() == Shape{2, 1});
  CHECK(from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2}).to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(from_vector<int64_t>({-(int64_t(1) << 60)}).item<int64_t>() == -(int64_t(1) << 60));
  CHECK(from_vector<bool>({true, false, true}).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(from_vector<double>({7}, {}).dim() == 0);
  CHECK(contains(error_of([] { from_vector<float>({1, 2, 3}, {2, 2}); }), "[from_vector]"));
  CHECK(contains(error_of([] { from_vector<float>({1, 2}).item(); }), "[item]"));
  CHECK(contains(error_of([] { from_vector<float>({1, 2}).data<double>(); }), "float32"));
  std::ostringstream out;
  out << from_vector<int64_t>({3, 4}, {1, 2});
  CHECK(out.str() == "Tensor(shape=[1, 2], dtype=int64) [3, 4]");
}

TEST_CASE("storages are counted while alive and freed with their last view") {
  const MemoryStats before = memory_stats();
  {
    Tensor x = zeros({1000}, DType::Float64);
    Tensor v = slice(transpose(reshape(x, {10, 100}), 0, 1), 0, 0, 50, 2);
    CHECK(memory_stats().live_storages == before.live_storages + 1);
    CHECK(memory_stats().live_bytes >= before.live_bytes + 8000);
    x = Tensor();
    CHECK(memory_stats().live_storages == before.live_storages + 1);  // v keeps it alive
  }
  CHECK(memory_stats().live_storages == before.live_storages);
  CHECK(memory_stats().live_bytes == before.live_bytes);
}

// ---- random numbers ----

TEST_CASE("randn, rand and randint have the right moments") {
  // n = 2^18 draws: the mean's standard error is sd / 512; 5 standard errors is a 1-in-10^6
  // false alarm, and a wrong transform (e.g. a missing sqrt(2)) moves the std far further.
  const int64_t n = int64_t(1) << 18;
  const double se = 1.0 / std::sqrt(double(n));
  Generator g(7);
  for (DType dt : {DType::Float32, DType::Float64}) {
    std::vector<double> v = values(randn({n}, g, dt, 2.0, 3.0));
    double m = 0, s2 = 0, m3 = 0;
    for (double x : v) m += x;
    m /= double(n);
    for (double x : v) s2 += (x - m) * (x - m), m3 += std::pow((x - m) / 3.0, 3);
    const double sd = std::sqrt(s2 / double(n - 1));
    CHECK(std::fabs(m - 2.0) < 5 * 3.0 * se);
    CHECK(std::fabs(sd - 3.0) < 5 * 3.0 * se / std::sqrt(2.0));  // se of sd is sd / sqrt(2n)
    CHECK(std::fabs(m3 / double(n)) < 5 * std::sqrt(6.0) * se);  // sample skewness: variance 6/n
    int64_t beyond3 = 0;
    for (double x : v) beyond3 += std::fabs(x - 2.0) > 9.0;
    // P(|z| > 3) = 0.0027: 708 expected, sd 26.6.
    CHECK(std::fabs(double(beyond3) - 0.0027 * double(n)) < 5 * 26.6);

    std::vector<double> u = values(rand({n}, g, dt, -1.0, 3.0));
    double um = 0, umin = 1e9, umax = -1e9;
    for (double x : u) um += x, umin = std::min(umin, x), umax = std::max(umax, x);
    um /= double(n);
    CHECK(std::fabs(um - 1.0) < 5 * (4.0 / std::sqrt(12.0)) * se);
    CHECK(umin >= -1.0);
    CHECK(umax < 3.0);
    CHECK(umin < -1.0 + 1e-3);
    CHECK(umax > 3.0 - 1e-3);
  }
  std::vector<int64_t> k = randint(-3, 4, {n}, g).to_vector<int64_t>();
  std::vector<int64_t> counts(7, 0);
  for (int64_t x : k) {
    REQUIRE(x >= -3);
    REQUIRE(x < 4);
    ++counts[size_t(x + 3)];
  }
  // Each value: binomial(n, 1/7), sd = sqrt(n p (1-p)).
  const double expect = double(n) / 7, sd = std::sqrt(double(n) * (1.0 / 7) * (6.0 / 7));
  for (int64_t c : counts) CHECK(std::fabs(double(c) - expect) < 5 * sd);
}

TEST_CASE("rand stays below hi after rounding to float32") {
  // Between 2^24 and 2^24 + 2 float32 has no other value: a double in [lo, hi) rounds to hi
  // about half of the time unless rand keeps it below.
  Generator g(8);
  const double lo = 16777216.0, hi = 16777218.0;
  for (double v : values(rand({1000}, g, DType::Float32, lo, hi))) REQUIRE(v < hi);
  for (double v : values(rand({1000}, g, DType::Float32, 0.0, 1.0))) REQUIRE(v < 1.0);
}

TEST_CASE("the generator is a pure function of (seed, counter)") {
  Generator a(42), b(42), c(43);
  Tensor x1 = randn({10}, a), x2 = randn({5}, a);
  Tensor y = randn({15}, b);
  CHECK(a.offset() == 15);
  // Consecutive draws continue the counter: [10] then [5] are the 15 of one draw.
  std::vector<double> joined = values(x1), tail = values(x2);
  joined.insert(joined.end(), tail.begin(), tail.end());
  CHECK(joined == values(y));
  CHECK(values(randn({15}, c)) != values(y));
  // Rewinding the offset replays.
  Generator d(42);
  d.set_offset(10);
  CHECK(values(randn({5}, d)) == values(x2));
  // rand and randint consume counters the same way.
  Generator e(9), f(9);
  CHECK(values(rand({7}, e)) == values(rand({7}, f)));
  CHECK(randint(0, 100, {7}, e).to_vector<int64_t>() == randint(0, 100, {7}, f).to_vector<int64_t>());
  CHECK(e.next_int(0, 1000) == f.next_int(0, 1000));
}

TEST_CASE("random tensors are bit-identical on 1 and 2 threads") {
  auto draw = [] {
    Generator g(11);
    return TensorList{randn({300001}, g), rand({200003}, g, DType::Float64), randint(-5, 1000, {100000}, g)};
  };
  TensorList one;
  {
    ThreadGuard guard(1);
    one = draw();
  }
  TensorList two = draw();
  for (size_t i = 0; i < one.size(); ++i) CHECK(same_bits(one[i], two[i]));
}

TEST_CASE("flatten merges a range of dims") {
  Generator g(12);
  Tensor x = make({2, 3, 4, 5}, DType::Float32, Layout::Permuted, g);
  CHECK(flatten(x).shape() == Shape{120});
  CHECK(flatten(x, 1).shape() == Shape{2, 60});
  CHECK(flatten(x, 1, 2).shape() == Shape{2, 12, 5});
  CHECK(flatten(x, -2, -1).shape() == Shape{2, 3, 20});
  CHECK(flatten(x, 2, 2).shape() == x.shape());
  CHECK(flatten(scalar_tensor(1.0)).shape() == Shape{1});
  check_values(flatten(x, 0, 2), values(x), Tol{}, "flatten");
}

TEST_CASE("squeeze, unsqueeze and views of empty tensors share storage whatever the strides") {
  Generator g(13);
  Tensor y = make({2, 1, 3, 1}, DType::Float64, Layout::Permuted, g);
  CHECK(squeeze(y).storage().get() == y.storage().get());
  CHECK(unsqueeze(y, 2).storage().get() == y.storage().get());
  Tensor stepped = make({4, 3}, DType::Float32, Layout::Stepped, g);
  Tensor flat = flatten(stepped, 0);  // rows with gaps cannot be one run of memory: a copy
  CHECK(flat.storage() != stepped.storage());
  CHECK(flat.to_vector<float>() == stepped.to_vector<float>());
  // An empty tensor holds no elements, so any shape of the same (zero) size is a view of it.
  Tensor e = core::transpose(zeros({3, 0}), 0, 1);
  CHECK(view(e, {0, 3}).shape() == Shape{0, 3});
  CHECK(view(e, {3, 0, 2}).shape() == Shape{3, 0, 2});
  CHECK(view(e, {3, 0, 2}).storage().get() == e.storage().get());
}

TEST_CASE("freed blocks are cached, reused for the same size class, and released on request") {
  release_cached_memory();
  const MemoryStats s0 = memory_stats();
  CHECK(s0.cached_bytes == 0);
  { Tensor x = zeros({100000}); }  // 400 kB: freed into the cache, not to the system
  const MemoryStats s1 = memory_stats();
  CHECK(s1.live_bytes == s0.live_bytes);
  CHECK(s1.cached_bytes >= 400000);
  {
    Tensor y = Tensor::empty({99000});  // same size class: the cached block comes back
    CHECK(memory_stats().cached_bytes == 0);
    CHECK(memory_stats().live_bytes == s0.live_bytes + s1.cached_bytes);
  }
  reset_peak_memory();
  CHECK(memory_stats().peak_bytes == memory_stats().live_bytes);
  { Tensor z = zeros({1000}, DType::Float64); }
  CHECK(memory_stats().peak_bytes >= memory_stats().live_bytes + 8000);
  release_cached_memory();
  CHECK(memory_stats().cached_bytes == 0);
  CHECK(memory_stats().live_bytes == s0.live_bytes);
}
