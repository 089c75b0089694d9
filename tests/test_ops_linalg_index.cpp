// matmul (batch broadcasting, 1-D operands, transposed and strided views, empty dims, no copy
// of BLAS-describable views), concat / stack / split / chunk, and the indexing ops against
// plain loops.
#include <doctest/doctest.h>

#include <array>
#include <cmath>

#include "core_test_util.h"
#include "rotor/kernels/blas.h"
#include "rotor/kernels/index.h"
#include "rotor/kernels/reduce.h"

using namespace rotor;
using namespace testutil;

namespace {

// NumPy matmul in double, with the per-element bound 2 k u sum_p |a_ip b_pj| (any order of the
// k-term dot product is within (k-1)u of it; doubled for the reference's own rounding).
struct RefMatmul {
  Shape shape;
  std::vector<double> value, bound;
};

RefMatmul ref_matmul(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  if (a.dim() == 1) sa.insert(sa.begin(), 1);
  if (b.dim() == 1) sb.push_back(1);
  const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "test");
  RefMatmul r;
  r.shape = batch;
  if (a.dim() > 1) r.shape.push_back(m);
  if (b.dim() > 1) r.shape.push_back(n);
  const double u = unit_roundoff(a.dtype());
  for_each_index(batch, [&](const Index& z) {
    Index ia = broadcast_index(z, ba), ib = broadcast_index(z, bb);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0, abs_s = 0;
        for (int64_t p = 0; p < k; ++p) {
          Index xa = ia, xb = ib;
          if (a.dim() > 1) xa.push_back(i);
          xa.push_back(p);
          xb.push_back(p);
          if (b.dim() > 1) xb.push_back(j);
          const double prod = read_at(a, xa) * read_at(b, xb);
          s += prod, abs_s += std::fabs(prod);
        }
        r.value.push_back(s);
        r.bound.push_back(2 * double(std::max<int64_t>(k, 1)) * u * abs_s);
      }
  });
  return r;
}

void check_matmul(const Tensor& a, const Tensor& b, const std::string& what) {
  Tensor c = matmul(a, b);
  RefMatmul r = ref_matmul(a, b);
  REQUIRE_MESSAGE(c.shape() == r.shape, what, ": got ", shape_str(c.shape()), ", expected ", shape_str(r.shape));
  CHECK(c.dtype() == a.dtype());
  check_values(c, r.value, [&](int64_t i) { return Tol{0, r.bound[size_t(i)]}; }, what);
}

// Bytes a fresh tensor of this shape holds in the allocator (its size class).
int64_t allocation_bytes(const Shape& shape, DType dtype) {
  const int64_t before = memory_stats().live_bytes;
  Tensor probe = Tensor::empty(shape, dtype);
  return memory_stats().live_bytes - before;
}

// Peak extra bytes allocated while computing matmul(a, b) (the result included).
int64_t matmul_peak_bytes(const Tensor& a, const Tensor& b) {
  const int64_t before = memory_stats().live_bytes;
  reset_peak_memory();
  Tensor c = matmul(a, b);
  return memory_stats().peak_bytes - before;
}

}  // namespace

TEST_CASE("matmul of random batch-broadcast shapes in every layout") {
  Generator g(501);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Bcast mode : {Bcast::None, Bcast::Left, Bcast::Right, Bcast::Both, Bcast::RankExtension})
      for (int trial = 0; trial < 8; ++trial) {
        Shape batch = random_shape(g, mode == Bcast::RankExtension ? 1 : 0, 3, 4);
        auto [ba, bb] = broadcast_pair(batch, mode, g);
        const int64_t m = pick(g, 1, 7), k = pick(g, 1, 9), n = pick(g, 1, 7);
        Shape sa = ba, sb = bb;
        sa.insert(sa.end(), {m, k});
        sb.insert(sb.end(), {k, n});
        Layout la = kLayouts[pick(g, 0, 6)], lb = kLayouts[pick(g, 0, 6)];
        check_matmul(make(sa, dt, la, g), make(sb, dt, lb, g),
                     "matmul " + shape_str(sa) + " " + layout_name(la) + " @ " + shape_str(sb) + " " +
                         layout_name(lb));
      }
}

TEST_CASE("matmul with 1-D operands, size-0 and size-1 dims") {
  Generator g(502);
  const std::pair<Shape, Shape> cases[] = {
      {{5}, {5}},          {{5}, {5, 3}},       {{4, 5}, {5}},       {{5}, {2, 5, 3}},    {{2, 3, 5}, {5}},
      {{3, 0}, {0, 4}},    {{2, 3, 0}, {0, 4}}, {{0}, {0}},          {{0, 5}, {5, 4}},    {{3, 5}, {5, 0}},
      {{0, 3, 5}, {5, 2}}, {{1, 1}, {1, 1}},    {{1, 5}, {5, 1}},    {{4, 1}, {1, 3}},    {{2, 1, 1, 5}, {3, 5, 1}},
  };
  for (DType dt : {DType::Float32, DType::Float64})
    for (auto& [sa, sb] : cases)
      for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Stepped})
        check_matmul(make(sa, dt, l, g), make(sb, dt, l, g),
                     "matmul " + shape_str(sa) + " @ " + shape_str(sb) + " " + layout_name(l));
  // An empty inner dim gives zeros, not uninitialised memory.
  Tensor z = matmul(ones({3, 0}), ones({0, 4}));
  for (double v : values(z)) CHECK(v == 0);
}

TEST_CASE("matmul at sizes that take the tall-GEMM, parallel and serial batch paths") {
  Generator g(503);
  for (DType dt : {DType::Float32, DType::Float64}) {
    // b shared by the batch and a contiguous: one tall GEMM.
    check_matmul(make({4, 3, 17, 33}, dt, Layout::Contiguous, g), make({33, 21}, dt, Layout::Transposed, g), "tall");
    // Small matrices, many batch entries: side by side on the pool.
    check_matmul(make({16, 9, 12}, dt, Layout::Permuted, g), make({16, 12, 10}, dt, Layout::Contiguous, g), "batched");
    // Large matrices, one after another.
    check_matmul(make({2, 130, 140}, dt, Layout::Transposed, g), make({140, 129}, dt, Layout::Stepped, g), "large");
  }
}

TEST_CASE("products with a long inner dimension, cut into slices, match the reference on any thread count") {
  Generator g(505);
  for (DType dt : {DType::Float32, DType::Float64})
    for (auto [m, n, k] : {std::array<int64_t, 3>{40, 33, 2050}, {64, 72, 4100}, {16, 130, 1030}}) {
      // a weight gradient's layout: both operands [k, .], the first transposed
      Tensor a = core::transpose(make({k, m}, dt, Layout::Contiguous, g), 0, 1), b = make({k, n}, dt, Layout::Contiguous, g);
      const std::string what = "sliced " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
      check_matmul(a, b, what);
      set_num_threads(1);
      Tensor one = matmul(a, b);
      set_num_threads(0);
      CHECK_MESSAGE(same_bits(one, matmul(a, b)), what, ": 1 thread and the default differ");
    }
  // beta != 0 and alpha != 1 through the slices: C = alpha A^T B + beta C against a float64 loop.
  const int64_t m = 24, n = 20, k = 8192;
  std::vector<double> a(size_t(k * m)), b(size_t(k * n)), c(size_t(m * n)), want(size_t(m * n));
  for (auto* v : {&a, &b, &c})
    for (double& x : *v) x = 2 * g.next_uniform() - 1;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t p = 0; p < k; ++p) dot += a[size_t(p * m + i)] * b[size_t(p * n + j)];
      want[size_t(i * n + j)] = 0.5 * dot - 2.0 * c[size_t(i * n + j)];
    }
  kernels::gemm<double>(true, false, m, n, k, 0.5, a.data(), m, b.data(), n, -2.0, c.data(), n);
  for (size_t i = 0; i < c.size(); ++i) CHECK(std::abs(c[i] - want[i]) <= 1e-12 * double(k));
}

TEST_CASE("matmul hands transposed and row-strided views to BLAS without copying them") {
  Generator g(504);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor a = make({64, 48}, dt, Layout::Contiguous, g), b = make({64, 40}, dt, Layout::Contiguous, g);
    Tensor at = core::transpose(a, 0, 1);                        // [48, 64], column-major
    Tensor bt = core::transpose(make({40, 64}, dt, Layout::Contiguous, g), 0, 1);  // [64, 40]
    Tensor rows = core::narrow(make({48, 80}, dt, Layout::Contiguous, g), 1, 8, 64);  // row stride 80
    Tensor batched_t = core::transpose(make({3, 64, 48}, dt, Layout::Contiguous, g), 1, 2);  // [3, 48, 64]
    const int64_t out2 = allocation_bytes({48, 40}, dt), out3 = allocation_bytes({3, 48, 40}, dt);
    CHECK(matmul_peak_bytes(at, b) == out2);
    CHECK(matmul_peak_bytes(at, bt) == out2);
    CHECK(matmul_peak_bytes(rows, bt) == out2);
    CHECK(matmul_peak_bytes(batched_t, b) == out3);
    // The measurement sees copies: a column-strided view is not a BLAS layout and is copied.
    Tensor stepped = core::slice(make({48, 128}, dt, Layout::Contiguous, g), 1, 0, 128, 2);
    CHECK(matmul_peak_bytes(stepped, b) > out2);
    // And the no-copy results are right.
    check_matmul(at, bt, "at @ bt");
    check_matmul(rows, b, "row-strided @ b");
    check_matmul(batched_t, bt, "batched transposed @ bt");
  }
}

// ---- concat, stack, split, chunk ----

TEST_CASE("concat joins strided inputs along every dim, any dtype") {
  Generator g(601);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64, DType::Bool})
    for (int trial = 0; trial < 10; ++trial) {
      Shape base = random_shape(g, 1, 4, 5);
      const int64_t d = pick(g, 0, int64_t(base.size()));
      const int64_t count = pick(g, 1, 5);
      TensorList xs;
      std::vector<int64_t> starts;
      int64_t total = 0;
      for (int64_t i = 0; i < count; ++i) {
        Shape s = base;
        s[size_t(d)] = pick(g, 0, 4);
        starts.push_back(total);
        total += s[size_t(d)];
        xs.push_back(make(s, dt, kLayouts[pick(g, 0, 6)], g, -9, 9));
      }
      const int64_t dim = pick(g, 0, 2) ? d : d - int64_t(base.size());
      Tensor c = concat(xs, dim);
      Shape expect = base;
      expect[size_t(d)] = total;
      REQUIRE(c.shape() == expect);
      CHECK(c.dtype() == dt);
      std::vector<double> ref;
      for_each_index(expect, [&](const Index& i) {
        int64_t which = count - 1;
        while (starts[size_t(which)] > i[size_t(d)]) --which;
        Index j = i;
        j[size_t(d)] -= starts[size_t(which)];
        ref.push_back(read_at(xs[size_t(which)], j));
      });
      check_values(c, ref, Tol{}, "concat dim " + std::to_string(dim) + " of " + std::to_string(count));
    }
}

TEST_CASE("stack adds a dim at every position") {
  Generator g(602);
  for (int64_t dim = -4; dim < 4; ++dim) {
    TensorList xs;
    for (int i = 0; i < 3; ++i) xs.push_back(make({2, 3, 4}, DType::Float32, kLayouts[i * 2], g));
    Tensor s = stack(xs, dim);
    const int64_t d = dim < 0 ? dim + 4 : dim;
    Shape expect{2, 3, 4};
    expect.insert(expect.begin() + d, 3);
    REQUIRE(s.shape() == expect);
    std::vector<double> ref;
    for_each_index(expect, [&](const Index& i) {
      Index j = i;
      j.erase(j.begin() + d);
      ref.push_back(read_at(xs[size_t(i[size_t(d)])], j));
    });
    check_values(s, ref, Tol{}, "stack dim " + std::to_string(dim));
  }
}

TEST_CASE("split and chunk return views that tile the input") {
  Generator g(603);
  Tensor x = make({7, 10}, DType::Float64, Layout::Transposed, g);
  for (int64_t dim : {0, 1, -1}) {
    const int64_t d = dim < 0 ? dim + 2 : dim, n = x.shape()[size_t(d)];
    for (auto sizes : {std::vector<int64_t>{n}, {1, n - 1}, {0, 2, n - 2}, {n - 3, 0, 3}}) {
      TensorList parts = split(x, sizes, dim);
      REQUIRE(parts.size() == sizes.size());
      int64_t at = 0;
      for (size_t p = 0; p < parts.size(); ++p) {
        CHECK(parts[p].storage().get() == x.storage().get());
        CHECK(parts[p].shape()[size_t(d)] == sizes[p]);
        std::vector<double> ref;
        for_each_index(parts[p].shape(), [&](const Index& i) {
          Index j = i;
          j[size_t(d)] += at;
          ref.push_back(read_at(x, j));
        });
        check_values(parts[p], ref, Tol{}, "split part " + std::to_string(p));
        at += sizes[p];
      }
    }
    // chunk: pieces of ceil(n / chunks), the last one shorter (PyTorch's rule).
    for (int64_t chunks = 1; chunks <= n + 1; ++chunks) {
      TensorList parts = chunk(x, chunks, dim);
      const int64_t step = (n + chunks - 1) / chunks;
      REQUIRE(int64_t(parts.size()) == (n + step - 1) / step);
      int64_t at = 0;
      for (const Tensor& p : parts) {
        CHECK(p.shape()[size_t(d)] == std::min(step, n - at));
        CHECK(read_at(p, {0, 0}) == read_at(x, d == 0 ? Index{at, 0} : Index{0, at}));
        at += p.shape()[size_t(d)];
      }
      CHECK(at == n);
    }
  }
}

// ---- indexing ----

TEST_CASE("index_select with repeated, unordered and empty indices on strided inputs") {
  Generator g(701);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64, DType::Bool})
    for (int trial = 0; trial < 12; ++trial) {
      Shape s = random_shape(g, 1, 4, 5, false);
      const int64_t d = pick(g, 0, int64_t(s.size()));
      Tensor x = make(s, dt, kLayouts[pick(g, 0, 6)], g, -9, 9);
      Tensor idx = randint(0, s[size_t(d)], {pick(g, 0, 8)}, g);
      if (trial % 3 == 0) idx = core::slice(randint(0, s[size_t(d)], {10}, g), 0, 1, 10, 3);  // strided indices
      Tensor out = index_select(x, trial % 2 ? d : d - int64_t(s.size()), idx);
      Shape expect = s;
      expect[size_t(d)] = idx.numel();
      REQUIRE(out.shape() == expect);
      std::vector<double> ref;
      for_each_index(expect, [&](const Index& i) {
        Index j = i;
        j[size_t(d)] = int64_t(read_at(idx, {i[size_t(d)]}));
        ref.push_back(read_at(x, j));
      });
      check_values(out, ref, Tol{}, "index_select dim " + std::to_string(d) + " " + shape_str(s));
    }
}

TEST_CASE("gather picks along dim with an index smaller than the input elsewhere") {
  Generator g(702);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64})
    for (int64_t d = 0; d < 3; ++d)
      for (Layout l : kLayouts) {
        Shape xs{4, 5, 3};
        Tensor x = make(xs, dt, l, g, -9, 9);
        Shape is = {3, 4, 2};
        is[size_t(d)] = 6;  // any length along dim, at most the input's elsewhere
        Tensor idx = make(is, DType::Int64, l, g, 0, double(xs[size_t(d)]));
        Tensor out = gather(x, d, idx);
        REQUIRE(out.shape() == is);
        std::vector<double> ref;
        for_each_index(is, [&](const Index& i) {
          Index j = i;
          j[size_t(d)] = int64_t(read_at(idx, i));
          ref.push_back(read_at(x, j));
        });
        check_values(out, ref, Tol{}, std::string("gather dim ") + std::to_string(d) + " " + layout_name(l));
      }
}

TEST_CASE("embedding looks up rows for ids of any shape, repeated ids included") {
  Generator g(703);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor w = make({6, 5}, dt, Layout::Transposed, g);
    Tensor ids = from_vector<int64_t>({5, 0, 5, 2, 2, 5}, {2, 3});
    Tensor e = embedding(w, ids);
    REQUIRE(e.shape() == Shape{2, 3, 5});
    std::vector<double> ref;
    for_each_index(e.shape(), [&](const Index& i) { ref.push_back(read_at(w, {int64_t(read_at(ids, {i[0], i[1]})), i[2]})); });
    check_values(e, ref, Tol{}, "embedding");
    CHECK(embedding(w, from_vector<int64_t>({3})).shape() == Shape{1, 5});
    CHECK(embedding(w, scalar_tensor(4, DType::Int64)).shape() == Shape{5});
    CHECK(embedding(w, core::transpose(ids, 0, 1)).shape() == Shape{3, 2, 5});
    check_values(embedding(w, core::transpose(ids, 0, 1)),
                 values(core::permute(embedding(w, ids), {1, 0, 2})), Tol{}, "embedding of transposed ids");
  }
}

TEST_CASE("one_hot in float, int64 and bool") {
  Tensor ids = core::transpose(from_vector<int64_t>({0, 3, 1, 3, 2, 0}, {2, 3}), 0, 1);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64, DType::Bool}) {
    Tensor oh = one_hot(ids, 4, dt);
    REQUIRE(oh.shape() == Shape{3, 2, 4});
    CHECK(oh.dtype() == dt);
    std::vector<double> ref;
    for_each_index(oh.shape(), [&](const Index& i) { ref.push_back(read_at(ids, {i[0], i[1]}) == double(i[2])); });
    check_values(oh, ref, Tol{}, "one_hot");
  }
  CHECK(contains(error_of([&] { one_hot(ids, 3); }), "[one_hot]"));
}

// ---- the adjoint kernels the backward passes use ----

TEST_CASE("index_add, scatter_add and sum_to accumulate like their loop definitions") {
  Generator g(704);
  for (DType dt : {DType::Float32, DType::Float64})
    for (int trial = 0; trial < 10; ++trial) {
      // index_add: out[.., idx[i], ..] += src[.., i, ..], repeated indices accumulating.
      Shape s = random_shape(g, 1, 3, 5, false);
      const int64_t d = pick(g, 0, int64_t(s.size()));
      Tensor idx = randint(0, s[size_t(d)], {pick(g, 0, 9)}, g);
      Shape ss = s;
      ss[size_t(d)] = idx.numel();
      Tensor src = make(ss, dt, kLayouts[pick(g, 0, 6)], g);
      std::vector<double> ref(size_t(shape_numel(s)), 0.0), mag(ref.size(), 0.0);
      for_each_index(ss, [&](const Index& i) {
        Index j = i;
        j[size_t(d)] = int64_t(read_at(idx, {i[size_t(d)]}));
        ref[size_t(linear_index(j, s))] += read_at(src, i);
        mag[size_t(linear_index(j, s))] += std::fabs(read_at(src, i));
      });
      Tensor out = kernels::index_add(s, d, idx, src);
      REQUIRE(out.shape() == s);
      check_values(out, ref, [&](int64_t i) { return Tol{0, 2 * double(idx.numel()) * unit_roundoff(dt) * mag[size_t(i)]}; },
                   "index_add");

      // scatter_add: the adjoint of gather, along dim 1 of a [4, 5, 3] input.
      Shape xs{4, 5, 3}, is{3, 7, 2};
      Tensor gidx = make(is, DType::Int64, kLayouts[pick(g, 0, 6)], g, 0, 5);
      Tensor gsrc = make(is, dt, kLayouts[pick(g, 0, 6)], g);
      std::vector<double> gref(size_t(shape_numel(xs)), 0.0);
      for_each_index(is, [&](const Index& i) {
        gref[size_t(linear_index({i[0], int64_t(read_at(gidx, i)), i[2]}, xs))] += read_at(gsrc, i);
      });
      check_values(kernels::scatter_add(xs, 1, gidx, gsrc), gref, Tol{0, 16 * unit_roundoff(dt) * 8}, "scatter_add");

      // sum_to: the inverse of broadcasting a shape up to g's shape.
      Shape big = random_shape(g, 1, 4);
      auto [small, unused] = broadcast_pair(big, Bcast::Left, g);
      if (trial % 2) small = broadcast_pair(big, Bcast::RankExtension, g).first;
      Tensor grad = make(big, dt, kLayouts[pick(g, 0, 6)], g);
      Shape full = broadcast_shapes(small, big, "test");
      if (full != big) continue;  // rank extension may have picked the longer shape
      std::vector<double> sref(size_t(shape_numel(small)), 0.0), smag(sref.size(), 0.0);
      for_each_index(big, [&](const Index& i) {
        const size_t at = size_t(linear_index(broadcast_index(i, small), small));
        sref[at] += read_at(grad, i);
        smag[at] += std::fabs(read_at(grad, i));
      });
      Tensor summed = kernels::sum_to(grad, small);
      REQUIRE(summed.shape() == small);
      check_values(summed, sref,
                   [&](int64_t i) { return Tol{0, 2 * double(grad.numel()) * unit_roundoff(dt) * smag[size_t(i)]}; },
                   "sum_to " + shape_str(big) + " -> " + shape_str(small));
    }
}

TEST_CASE("index_add with many repeated ids is bit-identical on 1 and 2 threads") {
  Generator g(705);
  Tensor ids = randint(0, 300, {40000}, g);
  Tensor src = randn({40000, 96}, g);
  Tensor one;
  {
    ThreadGuard guard(1);
    one = kernels::index_add({300, 96}, 0, ids, src);
  }
  CHECK(same_bits(one, kernels::index_add({300, 96}, 0, ids, src)));
}

TEST_CASE("stack of 0-d tensors is 1-D; concat of one tensor copies it") {
  Tensor s = stack({scalar_tensor(1.0), scalar_tensor(2.0), scalar_tensor(3.0)}, 0);
  CHECK(s.shape() == Shape{3});
  CHECK(s.to_vector<float>() == std::vector<float>{1, 2, 3});
  Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor c = concat({x}, 1);
  CHECK(c.storage().get() != x.storage().get());
  CHECK(c.to_vector<float>() == x.to_vector<float>());
}
