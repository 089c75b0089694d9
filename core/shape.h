// Shapes and strides (in elements), and the shape arithmetic every op shares.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rotor {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

std::string shape_str(const Shape& shape);       // "[2, 3]"
int64_t shape_numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);  // row-major

// NumPy broadcasting of two shapes; throws "[op] cannot broadcast [..] with [..]".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Maps a possibly negative dim into [0, ndim); throws "[op] dim d out of range for ndim n".
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);

// Normalised, sorted, duplicate-free dims; empty input means "all dims".
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace rotor
