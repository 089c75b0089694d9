// Tutorial step 1 — tensors and views (docs/tutorial/01_tensors.md).
//
//   build/examples/tutorial_01_tensors
//
// A Tensor is a strided view over reference-counted storage. Reshaping, transposing, slicing
// and broadcasting make new views of the same numbers; only `contiguous` and the ops that
// compute something write new storage.
#include <cstdio>
#include <iostream>

#include "rotor/rotor.h"

using namespace rotor;

int main() {
  // 1. Making tensors. Float32 unless a dtype is given; integer ids are Int64.
  Tensor a = reshape(arange(6.0, 12.0, 1.0, DType::Float32), {2, 3});
  std::cout << "a = " << a << "\n";

  // 2. Views: shape, strides (in elements) and offset over the same storage.
  Tensor t = transpose(a, 0, 1);  // [3, 2], strides [1, 3]: no copy
  Tensor row = select(a, 0, 1);   // the second row, offset 3
  std::printf("a.T: shape %s strides %s contiguous %d, same storage %d\n", shape_str(t.shape()).c_str(),
              shape_str(t.strides()).c_str(), int(t.is_contiguous()), int(t.storage() == a.storage()));
  std::cout << "a[1]: offset " << row.offset() << ", " << row << "\n";

  // Writing through a view changes the base: they share the numbers.
  {
    NoGradGuard no_grad;
    Tensor first = narrow(row, 0, 0, 1);
    fill_(first, -1.0);
  }
  std::cout << "after filling a[1][0] through a view: a = " << a << "\n";

  // contiguous copies only when the layout asks for it.
  Tensor tc = contiguous(t);
  std::printf("contiguous(a.T): new storage %d, strides %s\n", int(tc.storage() != a.storage()),
              shape_str(tc.strides()).c_str());

  // 3. Broadcasting, as NumPy: [2, 3] + [3] adds the row to each row.
  Tensor bias = from_vector<float>({100, 200, 300});
  std::cout << "a + bias = " << a + bias << "\n";

  // 4. Reductions over any dims, with keepdim.
  std::cout << "sum over rows = " << sum(a, {0}) << ", mean of each row = " << mean(a, {1}, true) << "\n";

  // 5. Indexing with int64 ids.
  Tensor ids = from_vector<int64_t>({2, 0});
  std::cout << "columns 2 and 0 = " << index_select(a, 1, ids) << "\n";

  // 6. Mistakes are errors that name the op and the shapes, never a crash.
  try {
    Tensor bad = a + from_vector<float>({1, 2});
  } catch (const Error& e) {
    std::printf("error: %s\n", e.what());
  }
}
