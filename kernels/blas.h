// Matrix products through OpenBLAS. Transposed views reach BLAS as transpose flags, never as
// copies; only layouts BLAS cannot describe are copied.
//
// rotor owns the cores: OpenBLAS is set to one thread when rotor is loaded, and a large product
// is cut by rotor into blocks that run on its own (oneTBB) pool. OpenBLAS's own threads inside
// rotor's parallel loops would oversubscribe the cores and spin in the kernel. Blocks are rows
// or columns of C, or, for a small C with a long inner dimension, slices of that dimension
// whose partial products are added in slice order. They depend on the sizes only, so every
// element is the same sum on any number of threads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rotor/core/tensor.h"

namespace rotor::kernels {

// C = alpha * op(A) op(B) + beta * C, row-major, T = float or double; parallel over blocks of
// C when the product is large enough to pay for it.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The same product as one OpenBLAS call on the calling thread (for kernels that are already
// inside a parallel loop).
template <class T>
void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// NumPy matmul: 1-D operands are promoted and the added dim removed again, batch dims
// broadcast. Output contiguous.
Tensor matmul(const Tensor& a, const Tensor& b);

// The shape of one product, as recorded by a GEMM tracer.
struct GemmShape {
  bool trans_a, trans_b;
  int64_t m, n, k;
  bool is_double;
  bool operator==(const GemmShape&) const = default;
};
// While a tracer is installed, every gemm and gemm_serial call appends its shape (from any
// thread; a large gemm counts once, not once per block). Benchmarks use it to time raw BLAS at
// exactly the shapes a training step performs. nullptr uninstalls.
void set_gemm_tracer(std::vector<GemmShape>* shapes);

// The name of the OpenBLAS kernel set in use (e.g. "SkylakeX", "Haswell"), and whether rotor
// chose it because OpenBLAS did not recognise the CPU (see blas.cpp).
std::string blas_core_name();

}  // namespace rotor::kernels
