// Argument errors: each public op throws rotor::Error whose message starts with "[op]" and names
// the offending shapes or values, so a user can tell from the message alone what went wrong.
#include <doctest/doctest.h>

#include <cmath>

#include "core_test_util.h"

using namespace rotor;
using namespace testutil;

namespace {

}  // namespace

TEST_CASE("mismatched shapes in elementwise ops and where name the op and both shapes") {
  Tensor a = ones({2, 3}), b = ones({4}), c = ones({3, 1, 5});
  check_error([&] { add(a, b); }, {"[add]", "[2, 3]", "[4]"});
  check_error([&] { sub(a, b); }, {"[sub]", "[2, 3]", "[4]"});
  check_error([&] { mul(c, a); }, {"[mul]", "[3, 1, 5]", "[2, 3]"});
  check_error([&] { div(a, c); }, {"[div]", "[2, 3]", "[3, 1, 5]"});
  check_error([&] { rotor::pow(a, b); }, {"[pow]", "[2, 3]", "[4]"});
  check_error([&] { maximum(a, b); }, {"[maximum]", "[2, 3]", "[4]"});
  check_error([&] { lt(a, b); }, {"[lt]", "[2, 3]", "[4]"});
  check_error([&] { logical_and(full({2}, 1, DType::Bool), full({3}, 1, DType::Bool)); }, {"[logical]", "[2]", "[3]"});
  check_error([&] { where(full({2, 1}, 1, DType::Bool), ones({3}), ones({4})); }, {"[where]", "[3]", "[4]"});
  check_error([&] { where(full({5}, 1, DType::Bool), ones({2, 3}), ones({3})); }, {"[where]", "[5]", "[2, 3]"});
  check_error([&] { masked_fill(ones({2, 3}), full({2}, 1, DType::Bool), 0); }, {"[where]", "[2]", "[2, 3]"});
  Tensor dst = zeros({3});
  check_error([&] { add_(dst, ones({2, 3})); }, {"[add]", "[2, 3]", "[3]"});
  check_error([&] { copy_(dst, ones({4})); }, {"[copy_into]", "[4]", "[3]"});
}

TEST_CASE("matmul shape errors name the operands as given") {
  check_error([] { matmul(ones({2, 3}), ones({4, 5})); }, {"[matmul]", "[2, 3]", "[4, 5]"});
  check_error([] { matmul(ones({3}), ones({4})); }, {"[matmul]", "[3]", "[4]"});
  check_error([] { matmul(ones({3}), ones({2, 4, 5})); }, {"[matmul]", "[3]", "[2, 4, 5]"});
  check_error([] { matmul(ones({2, 3, 4}), ones({5})); }, {"[matmul]", "[2, 3, 4]", "[5]"});
  check_error([] { matmul(ones({2, 3, 4}), ones({3, 4, 5})); }, {"[matmul]", "[2]", "[3]"});
  check_error([] { matmul(scalar_tensor(1), ones({3})); }, {"[matmul]", "[]", "[3]"});
  check_error([] { matmul(ones({2, 2}, DType::Int64), ones({2, 2}, DType::Int64)); }, {"[matmul]", "int64"});
}

TEST_CASE("concat, stack, split and chunk errors") {
  check_error([] { concat({ones({2, 3}), ones({3, 3})}, 1); }, {"[concat]", "[2, 3]", "[3, 3]", "dim 1"});
  check_error([] { concat({ones({2, 3}), ones({2, 3, 1})}, 0); }, {"[concat]", "[2, 3]", "[2, 3, 1]"});
  check_error([] { concat({}, 0); }, {"[concat]"});
  check_error([] { concat({ones({2}), ones({2})}, 1); }, {"[concat]", "dim 1", "1 dims"});
  check_error([] { stack({ones({2}), ones({3})}, 0); }, {"[stack]", "[2]", "[3]"});
  check_error([] { split(ones({5, 2}), {2, 2}, 0); }, {"[split]", "4", "[5, 2]"});
  check_error([] { split(ones({5}), {-1, 6}, 0); }, {"[split]", "-1"});
  check_error([] { chunk(ones({5}), 0, 0); }, {"[chunk]", "0"});
}

TEST_CASE("reshape and view errors name the op and the shapes") {
  Tensor x = ones({2, 3});
  check_error([&] { reshape(x, {4}); }, {"[reshape]", "[4]", "6"});
  check_error([&] { reshape(x, {-1, -1}); }, {"[reshape]", "-1"});
  check_error([&] { reshape(x, {4, -1}); }, {"[reshape]", "[4, -1]", "6"});
  check_error([&] { reshape(x, {-2, 3}); }, {"[reshape]", "[-2, 3]"});
  check_error([&] { view(x, {5}); }, {"[view]", "[5]", "6"});
  check_error([&] { view(transpose(x, 0, 1), {6}); }, {"[view]", "[3, 2]", "[6]"});
  check_error([&] { flatten(ones({2, 3, 4}), 2, 1); }, {"[flatten]", "2", "1"});
  check_error([&] { expand(ones({3}), {2, 4}); }, {"[expand]", "[3]", "[2, 4]"});
  check_error([&] { expand(ones({1}), {-2}); }, {"[expand]", "[-2]"});
  check_error([&] { expand(ones({2, 3}), {3}); }, {"[expand]", "[2, 3]", "[3]"});
  check_error([&] { permute(x, {0}); }, {"[permute]", "[2, 3]"});
  check_error([&] { permute(x, {1, 1}); }, {"[permute]", "repeated"});
}

TEST_CASE("dtype mismatches name both dtypes") {
  // Elementwise ops promote (tests/test_promotion.cpp); what cannot be promoted is refused by name.
  Tensor f = ones({2}), d = ones({2}, DType::Float64), i = ones({2}, DType::Int64), b = ones({2}, DType::Bool);
  check_error([&] { matmul(ones({2, 2}), ones({2, 2}, DType::Float64)); }, {"[matmul]", "float32", "float64"});
  check_error([&] { where(f, f, f); }, {"[where]", "bool", "float32"});
  check_error([&] { concat({f, d}, 0); }, {"[concat]", "float32", "float64"});
  check_error([&] { logical_or(f, b); }, {"[logical]", "bool", "float32"});
  check_error([&] { add(b, b); }, {"[add]", "bool"});
  check_error([&] { add_(i, f); }, {"[add_]", "float32", "int64"});
  check_error([&] { mul_(i, 0.5); }, {"[mul_]", "float32", "int64"});
  check_error([&] { masked_fill(i, b, 0.5); }, {"[masked_fill]", "0.5", "int64"});
  check_error([&] { pow(i, -1); }, {"[pow]", "negative", "-1"});
  check_error([&] { var(i); }, {"[var]", "int64"});
  check_error([&] { softmax(i, 0); }, {"[softmax]", "int64"});
  check_error([&] { logsumexp(i); }, {"[logsumexp]", "int64"});
  check_error([&] { sum(b); }, {"[sum]", "bool"});
  check_error([&] { index_select(f, 0, ones({1})); }, {"[index_select]", "int64", "float32"});
  check_error([&] { gather(f, 0, ones({1})); }, {"[gather]", "int64", "float32"});
  check_error([&] { embedding(ones({3, 2}), ones({2})); }, {"[embedding]", "int64", "float32"});
  check_error([&] { one_hot(f, 3); }, {"[one_hot]", "int64", "float32"});
}

TEST_CASE("out-of-range dims name the op, the dim and the rank") {
  Tensor x = ones({2, 3});
  check_error([&] { sum(x, {2}); }, {"[sum]", "dim 2", "2 dims"});
  check_error([&] { mean(x, {-3}); }, {"[mean]", "dim -3", "2 dims"});
  check_error([&] { rotor::max(x, {0, 0}); }, {"[max]", "twice"});
  check_error([&] { logsumexp(x, {5}); }, {"[logsumexp]", "dim 5"});
  check_error([&] { argmax(x, 2); }, {"[argmax]", "dim 2"});
  check_error([&] { softmax(x, -3); }, {"[softmax]", "dim -3"});
  check_error([&] { log_softmax(x, 2); }, {"[log_softmax]", "dim 2"});
  check_error([&] { cumsum(x, 2); }, {"[cumsum]", "dim 2"});
  check_error([&] { transpose(x, 0, 2); }, {"[transpose]", "dim 2"});
  check_error([&] { unsqueeze(x, 3); }, {"[unsqueeze]", "dim 3"});
  check_error([&] { squeeze(x, -3); }, {"[squeeze]", "dim -3"});
  check_error([&] { narrow(x, 2, 0, 1); }, {"[narrow]", "dim 2"});
  check_error([&] { select(x, -3, 0); }, {"[select]", "dim -3"});
  check_error([&] { slice(x, 2, 0, 1); }, {"[slice]", "dim 2"});
  check_error([&] { index_select(x, 2, arange(1)); }, {"[index_select]", "dim 2"});
  check_error([&] { gather(x, 2, zeros({2, 3}, DType::Int64)); }, {"[gather]", "dim 2"});
  check_error([&] { x.size(2); }, {"[size]", "dim 2"});
}

TEST_CASE("out-of-range indices name the op, the index and the bound") {
  Tensor x = ones({4, 3});
  check_error([&] { index_select(x, 0, from_vector<int64_t>({0, 4})); }, {"[index_select]", "index 4", "[0, 4)"});
  check_error([&] { index_select(x, 1, from_vector<int64_t>({-1})); }, {"[index_select]", "index -1", "[0, 3)"});
  check_error([&] { index_select(x, 0, zeros({1, 1}, DType::Int64)); }, {"[index_select]", "1-D", "[1, 1]"});
  check_error([&] { gather(x, 1, from_vector<int64_t>({0, 3}, {1, 2})); }, {"[gather]", "index 3", "[0, 3)"});
  check_error([&] { gather(x, 1, zeros({5, 1}, DType::Int64)); }, {"[gather]", "[5, 1]", "[4, 3]"});
  check_error([&] { gather(x, 1, zeros({4}, DType::Int64)); }, {"[gather]", "[4]", "[4, 3]"});
  check_error([&] { embedding(x, from_vector<int64_t>({1, 7})); }, {"[embedding]", "7", "[4, 3]"});
  check_error([&] { embedding(x, from_vector<int64_t>({-1})); }, {"[embedding]", "-1", "[4, 3]"});
  check_error([&] { embedding(ones({4}), from_vector<int64_t>({1})); }, {"[embedding]", "[4]"});
  check_error([&] { one_hot(from_vector<int64_t>({0, 5}), 5); }, {"[one_hot]", "index 5", "[0, 5)"});
  check_error([&] { narrow(x, 0, 2, 3); }, {"[narrow]", "[2, 5)", "[4, 3]"});
  check_error([&] { narrow(x, 1, -1, 1); }, {"[narrow]", "[-1, 0)", "[4, 3]"});
  check_error([&] { select(x, 0, 4); }, {"[select]", "index 4", "[4, 3]"});
  check_error([&] { select(x, 1, -4); }, {"[select]", "index -4", "[4, 3]"});
  check_error([&] { slice(x, 0, 0, 2, -1); }, {"[slice]", "step", "-1"});
  check_error([&] { x.item(); }, {"[item]", "[4, 3]"});
}

TEST_CASE("creation errors: bad arange steps and bounds, negative sizes, empty random ranges") {
  check_error([] { arange(0, 5, 0); }, {"[arange]", "step"});
  check_error([] { arange(0, std::numeric_limits<double>::infinity()); }, {"[arange]", "inf"});
  check_error([] { arange(0, 1, std::nan("")); }, {"[arange]", "nan"});
  check_error([] { arange(0, 1e30, 1); }, {"[arange]", "1e+30"});
  check_error([] { arange(0, 3, 1, DType::Bool); }, {"[arange]", "bool"});
  check_error([] { linspace(0, 1, -1); }, {"[linspace]", "-1"});
  check_error([] { tril_mask(-1, 3); }, {"[tril_mask]", "-1"});
  check_error([] { triu_mask(2, -4); }, {"[triu_mask]", "-4"});
  check_error([] { zeros({2, -1}); }, {"[empty]", "[2, -1]"});
  check_error([] { full({-3}, 1.0); }, {"[empty]", "[-3]"});
  // 2^40 * 2^40 elements wrap to 0 in int64: the shape must be refused, not given a tiny buffer.
  check_error([] { zeros({int64_t(1) << 40, int64_t(1) << 40}); }, {"[empty]", "[1099511627776, 1099511627776]"});
  check_error([] { Tensor::empty({int64_t(1) << 61, 4}, DType::Float64); }, {"[empty]", "too large"});
  Generator g(1);
  check_error([&] { randint(3, 3, {2}, g); }, {"[randint]", "[3, 3)"});
  check_error([&] { g.next_int(5, 1); }, {"[randint]", "[5, 1)"});
  check_error([&] { randn({2}, g, DType::Int64); }, {"[randn]", "int64"});
  check_error([] { from_vector<double>({1, 2, 3}, {2, 2}); }, {"[from_vector]", "3", "[2, 2]"});
}
