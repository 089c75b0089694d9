#include "autograd/rope.h"

#include <cmath>
#include <numbers>

#include "autograd/gradcheck.h"

namespace rotor {

namespace {
// x rotated by angles theta ([.., D/2] broadcasting against x's pairs), half-split layout.
Tensor rotate_half_split(const Tensor& x, const Tensor& theta) {
  const int64_t R = x.size(-1) / 2;
  Tensor x0 = narrow(x, -1, 0, R), x1 = narrow(x, -1, R, R);
  Tensor c = cos(theta), s = sin(theta);
  return concat({x0 * c - x1 * s, x0 * s + x1 * c}, -1);
}

void check_qk(const Tensor& q, const Tensor& k, const char* op) {
  ROTOR_CHECK(q.dim() == 4 && q.shape() == k.shape() && q.size(-1) % 2 == 0, op,
              "q and k must both be [B, T, H, D] with even D, got ", shape_str(q.shape()), " and ",
              shape_str(k.shape()));
}
}  // namespace

SelectiveRopeOut selective_rope_unfused(const Tensor& q, const Tensor& k, const Tensor& phi,
                                        const Tensor& temperature, const Tensor& offset) {
  check_qk(q, k, "selective_rope");
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), R = q.size(3) / 2;
  ROTOR_CHECK(phi.shape() == (Shape{B, T, H, R}), "selective_rope", "phi ", shape_str(phi.shape()),
              " should be ", shape_str({B, T, H, R}));
  ROTOR_CHECK(temperature.numel() == R, "selective_rope", "temperature has ", temperature.numel(),
              " elements, expected D/2 = ", R);
  Tensor Phi = cumsum(phi, 1);
  if (offset.defined()) {
    ROTOR_CHECK(offset.shape() == (Shape{B, H, R}), "selective_rope", "offset ", shape_str(offset.shape()),
                " should be ", shape_str({B, H, R}));
    Phi = Phi + unsqueeze(offset, 1);
  }
  Tensor theta = Phi * reshape(temperature, {R});
  return {rotate_half_split(q, theta), rotate_half_split(k, theta), select(Phi, 1, T - 1)};
}

SelectiveRopeOut selective_rope(const Tensor& q, const Tensor& k, const Tensor& phi, const Tensor& temperature,
                                const Tensor& offset) {
  return selective_rope_unfused(q, k, phi, temperature, offset);
}

Tensor rope_unfused(const Tensor& x, const Tensor& freqs, int64_t position_offset) {
  ROTOR_CHECK(x.dim() == 4 && x.size(-1) == 2 * freqs.numel(), "rope", "x ", shape_str(x.shape()),
              " does not match ", freqs.numel(), " frequencies");
  const int64_t T = x.size(1);
  Tensor pos = to_dtype(arange(double(position_offset), double(position_offset + T), 1.0, DType::Float64), x.dtype());
  Tensor theta = reshape(pos, {T, 1, 1}) * reshape(freqs, {freqs.numel()});  // [T, 1, R]
  return rotate_half_split(x, theta);
}

RopeOut rope(const Tensor& q, const Tensor& k, const Tensor& freqs, int64_t position_offset) {
  check_qk(q, k, "rope");
  return {rope_unfused(q, freqs, position_offset), rope_unfused(k, freqs, position_offset)};
}

Tensor rope_frequencies(int64_t head_dim, double base, DType dtype) {
  ROTOR_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope_frequencies", "head_dim must be even, got ", head_dim);
  std::vector<double> f(size_t(head_dim / 2));
  for (size_t r = 0; r < f.size(); ++r) f[r] = std::pow(base, -2.0 * double(r) / double(head_dim));
  return core::to_dtype(from_vector(f), dtype);
}

Tensor rotary_temperature(const std::string& type, double theta, int64_t head_dim, double temp_max, DType dtype) {
  const int64_t R = head_dim / 2;
  std::vector<double> t(static_cast<size_t>(R));
  if (type == "rope") {
    ROTOR_CHECK(theta >= 1.0, "rotary_temperature", "type rope needs theta >= 1, got ", theta);
    for (int64_t r = 0; r < R; ++r) t[size_t(r)] = temp_max / std::pow(theta, 2.0 * double(r) / double(head_dim));
  } else if (type == "rfa") {
    ROTOR_CHECK(theta > 0.0 && theta < 1.0, "rotary_temperature", "type rfa needs 0 < theta < 1, got ", theta);
    // ω = linspace(0, θπ, R); τ ∝ sqrt((1 - cos ω)/(1 + cos ω)) = tan(ω/2), scaled to max temp_max.
    double top = 0;
    for (int64_t r = 0; r < R; ++r) {
      double w = R > 1 ? theta * std::numbers::pi * double(r) / double(R - 1) : 0.0;
      t[size_t(r)] = std::sqrt((1 - std::cos(w)) / (1 + std::cos(w)));
      top = std::max(top, t[size_t(r)]);
    }
    for (double& v : t) v = top > 0 ? temp_max * v / top : 0.0;
  } else {
    ROTOR_FAIL("rotary_temperature", "unknown temperature type '", type, "' (rope or rfa)");
  }
  return core::to_dtype(from_vector(t), dtype);
}

ROTOR_GRADCHECK({"selective_rope_unfused", {input({2, 3, 2, 4}), input({2, 3, 2, 4}), input({2, 3, 2, 2}), input({2}, 0.5, 1.5), input({2, 2, 2})},
                 [](auto& x) {
                   auto r = selective_rope_unfused(x[0], x[1], x[2], x[3], x[4]);
                   return TensorList{r.q, r.k, r.final_offset};
                 }});

ROTOR_GRADCHECK({"rope_unfused", {input({2, 3, 2, 4}), sliced({2, 3, 2, 4})}, [](auto& x) {
                   auto r = rope(x[0], x[1], rope_frequencies(4, 10000.0, x[0].dtype()), 5);
                   return TensorList{r.q, r.k};
                 }});

}  // namespace rotor
