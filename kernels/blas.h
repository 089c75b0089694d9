// Matrix products through OpenBLAS. Transposed views reach BLAS as transpose flags, never as
// copies; only layouts BLAS cannot describe are copied.
#pragma once
#include <cstdint>

#include "rotor/core/tensor.h"

namespace rotor::kernels {

// C = alpha * op(A) op(B) + beta * C, row-major, T = float or double.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// NumPy matmul: 1-D operands are promoted and the added dim removed again, batch dims
// broadcast. Output contiguous.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace rotor::kernels
