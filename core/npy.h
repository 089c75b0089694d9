// NumPy .npy files (format 1.0/2.0/3.0, little-endian, C order): float32, float64, int64, bool.
#pragma once
#include <string>

#include "rotor/core/tensor.h"

namespace rotor {

Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& t);  // atomic

// The same, on bytes in memory.
Tensor npy_from_bytes(const std::string& bytes, const std::string& what = "<memory>");
std::string npy_to_bytes(const Tensor& t);

}  // namespace rotor
