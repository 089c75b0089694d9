#include "rotor/core/generator.h"

#include <cmath>
#include <numbers>

#include "rotor/core/parallel.h"

namespace rotor {
namespace {
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t Generator::bits(uint64_t counter) const {
  return mix64(mix64(seed_ + 0x9e3779b97f4a7c15ULL) ^ mix64(counter * 0x9e3779b97f4a7c15ULL + 1));
}

double Generator::uniform(uint64_t counter) const { return double(bits(counter) >> 11) * 0x1.0p-53; }

double Generator::normal(uint64_t c) const {
  // Its own counter domains (top bits), so normals never reuse the bits of uniforms.
  double u1 = uniform(c | (uint64_t(1) << 63)), u2 = uniform(c | (uint64_t(1) << 62));
  return std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

int64_t Generator::next_int(int64_t lo, int64_t hi) {
  ROTOR_CHECK(hi > lo, "randint", "empty range [", lo, ", ", hi, ")");
  uint64_t range = uint64_t(hi - lo);
  return lo + int64_t((unsigned __int128)next_bits() * range >> 64);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, double mean, double stddev) {
  Tensor t = Tensor::empty(shape, dtype);
  const uint64_t base = gen.take(uint64_t(t.numel()));
  dispatch_float(dtype, "randn", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    parallel_for(t.numel(), kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = T(mean + stddev * gen.normal(base + uint64_t(i)));
    });
  });
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype, double lo, double hi) {
  Tensor t = Tensor::empty(shape, dtype);
  const uint64_t base = gen.take(uint64_t(t.numel()));
  dispatch_float(dtype, "rand", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    // A double below hi can round up to hi in float32 (1 - 2^-26 becomes 1.0f): keep [lo, hi).
    const T below_hi = std::nextafter(T(hi), T(lo));
    parallel_for(t.numel(), kParallelGrain, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const T v = T(lo + (hi - lo) * gen.uniform(base + uint64_t(i)));
        p[i] = v < T(hi) ? v : below_hi;
      }
    });
  });
  return t;
}

Tensor randint(int64_t lo, int64_t hi, const Shape& shape, Generator& gen) {
  ROTOR_CHECK(hi > lo, "randint", "empty range [", lo, ", ", hi, ")");
  Tensor t = Tensor::empty(shape, DType::Int64);
  const uint64_t base = gen.take(uint64_t(t.numel()));
  const uint64_t range = uint64_t(hi - lo);
  int64_t* p = t.data<int64_t>();
  parallel_for(t.numel(), kParallelGrain, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i)
      p[i] = lo + int64_t((unsigned __int128)gen.bits(base + uint64_t(i)) * range >> 64);
  });
  return t;
}

}  // namespace rotor
