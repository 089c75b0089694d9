// Tutorial step 7 — gated linear attention and the RoPE trick (docs/tutorial/07_gla_rope_trick.md,
// docs/gla.md).
//
//   build/examples/tutorial_07_gla_rope_trick
//
// 1. GLA's recurrent and chunked forms compute the same function, and a sequence can be cut in
//    two with the state carried over.
// 2. With Selective RoPE on q and k and the decay tied per pair, GLA is a complex recurrence.
// 3. Why that matters: a rotation lets a linear recurrence track parity, which positive decays
//    cannot — the output flips sign with every 1-bit.
#include <cmath>
#include <cstdio>
#include <numbers>

#include "rotor/rotor.h"

using namespace rotor;

int main() {
  const DType f64 = DType::Float64;
  Generator gen(7);

  // 1. Recurrent vs chunked (chunks of 16 over 100 steps), and a sequence in two pieces.
  const int64_t B = 1, T = 100, H = 2, K = 8, V = 4, R = K / 2;
  Tensor q = randn({B, T, H, K}, gen, f64), k = randn({B, T, H, K}, gen, f64), v = randn({B, T, H, V}, gen, f64);
  Tensor g = logsigmoid(randn({B, T, H, K}, gen, f64) + 3.0);  // log-decays < 0, decays near 1
  GlaOut rec = gla_recurrent(q, k, v, g);
  GlaOut chk = gla_chunked(q, k, v, g, -1, Tensor(), /*chunk_size=*/16);
  std::printf("recurrent vs chunked: max |o difference| below 1e-12: %s\n",
              max(abs(rec.o - chk.o)).item() < 1e-12 ? "yes" : "no");
  auto piece = [](const Tensor& x, int64_t t0, int64_t n) { return narrow(x, 1, t0, n); };
  GlaOut a = gla_chunked(piece(q, 0, 60), piece(k, 0, 60), piece(v, 0, 60), piece(g, 0, 60));
  GlaOut b = gla_recurrent(piece(q, 60, 40), piece(k, 60, 40), piece(v, 60, 40), piece(g, 60, 40), -1, a.final_state);
  std::printf("60 steps chunked + 40 recurrent from its final state equals one pass: %s\n",
              max(abs(concat({a.o, b.o}, 1) - rec.o)).item() < 1e-12 ? "yes" : "no");

  // 2. The RoPE trick: rotate q, k by theta_t = cumsum(dtheta) and run real GLA with the decay of
  //    pair r on both of its coordinates; or run the complex recurrence on the unrotated q, k.
  Tensor gp = logsigmoid(randn({B, T, H, R}, gen, f64) + 3.0);
  Tensor dtheta = rand({B, T, H, R}, gen, f64, -0.5, 0.5);
  SelectiveRopeOut rotated = selective_rope(q, k, dtheta, ones({R}, f64));
  Tensor o_real = gla_recurrent(rotated.q, rotated.k, v, concat({gp, gp}, -1)).o;
  Tensor o_complex = gla_complex_recurrent(q, k, v, gp, dtheta).o;
  std::printf("rotated real GLA vs complex GLA: max difference below 1e-12: %s\n",
              max(abs(o_real - o_complex)).item() < 1e-12 ? "yes" : "no");

  // 3. Parity. One pair (K = 2), one value, no decay (g = 0). Token 0 writes key (1, 0) with
  //    value 1; later tokens write nothing. Every token's query is (1, 0). The angle advances by
  //    pi for a 1-bit and 0 for a 0-bit, so o_t = cos(pi * (number of ones in 1..t)) = +-1.
  const std::vector<int> bits = {0, 1, 1, 0, 1, 0, 0, 1, 1, 1};
  const int64_t n = int64_t(bits.size());
  std::vector<double> qq(size_t(n * 2), 0.0), kq(size_t(n * 2), 0.0), vv(size_t(n), 0.0), steps(size_t(n), 0.0);
  kq[0] = 1.0, vv[0] = 1.0;
  for (int64_t t = 0; t < n; ++t) {
    qq[size_t(t * 2)] = 1.0;
    steps[size_t(t)] = std::numbers::pi * bits[size_t(t)];
  }
  Tensor q1 = from_vector(qq, {1, n, 1, 2}), k1 = from_vector(kq, {1, n, 1, 2}), v1 = from_vector(vv, {1, n, 1, 1});
  Tensor phi = from_vector(steps, {1, n, 1, 1});
  SelectiveRopeOut r1 = selective_rope(q1, k1, phi, ones({1}, f64));
  Tensor with_rope = gla_recurrent(r1.q, r1.k, v1, zeros({1, n, 1, 2}, f64), 1.0).o;
  Tensor without = gla_recurrent(q1, k1, v1, zeros({1, n, 1, 2}, f64), 1.0).o;
  const std::vector<double> o1 = with_rope.to_vector<double>(), o0 = without.to_vector<double>();
  std::printf("bit              ");
  for (int b : bits) std::printf(" %3d", b);
  std::printf("\nparity so far    ");
  int parity = 0;
  for (int64_t t = 0; t < n; ++t) std::printf(" %3d", parity ^= (t > 0 ? bits[size_t(t)] : 0));
  std::printf("\no_t with rotation");
  for (double x : o1) std::printf(" %+3.0f", x + 0.0);
  std::printf("\no_t without      ");
  for (double x : o0) std::printf(" %+3.0f", x + 0.0);
  std::printf("\n");
}
