// Element types. Float32/Float64 carry values and gradients; Int64 holds indices and token
// ids; Bool holds masks produced by comparisons.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>

#include "rotor/core/error.h"

namespace rotor {

enum class DType : uint8_t { Float32, Float64, Int64, Bool };

constexpr size_t dtype_size(DType d) {
  switch (d) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

inline std::ostream& operator<<(std::ostream& out, DType d) { return out << dtype_name(d); }

constexpr bool is_floating(DType d) { return d == DType::Float32 || d == DType::Float64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }

// Calls f(T{}) with T the C++ type of a floating dtype; any other dtype is an Error naming op.
template <class F>
decltype(auto) dispatch_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: ROTOR_FAIL(op, "expected a float32 or float64 tensor, got ", dtype_name(d));
  }
}

// As dispatch_float, with int64 also accepted.
template <class F>
decltype(auto) dispatch_numeric(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    default: ROTOR_FAIL(op, "expected a numeric tensor, got ", dtype_name(d));
  }
}

// Every dtype.
template <class F>
decltype(auto) dispatch_all(DType d, F&& f) {
  switch (d) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    case DType::Bool: return f(bool{});
  }
  return f(float{});
}

}  // namespace rotor
