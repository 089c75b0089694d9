#include <doctest/doctest.h>

#include "core/tensor.h"
#include "core/view.h"

using namespace rotor;

TEST_CASE("a transposed view is not contiguous and contiguous() copies it") {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = core::transpose(a, 0, 1);
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
}
