// examples/parity_phase — what Selective RoPE learns on parity: how far each token turns each
// pair of q and k, and whether a 1-bit turns it by π.
//
//   build/examples/parity_phase                 trains the main job's Selective RoPE parity model, then looks inside
//   build/examples/train --task parity --layers 1 --dim 32 --heads 4 --short-conv 1 --pe selective_rope
//       --pe-temp-theta 1 --pe-temp-max 3.14159 --pe-bias 1 --lr 5e-3 --seq-len 16 --min-len 1 --steps 2000
//       --save p.safetensors   (one command)
//   build/examples/parity_phase --load p.safetensors      looks inside a model train saved
//
// Parity is the word problem over S2: tokens 0 (keep) and 1 (flip) after a start token, label =
// parity of the 1s so far. GLA alone cannot count mod 2: its state is a sum of k ⊗ v with
// decays in (0, 1), and no positive weighting of the past flips sign with every 1-bit. A
// rotation can: if every 1 turns pair r by π and every 0 by nothing, the angle between the
// query at t and the start token's key is π·parity(t), and q·k = ±|q||k| reads parity off.
//
// What it prints:
//   1. the model and its accuracy at the training length and at 4× and 16× it;
//   2. for one short input, per token, the angle increment τ_r·φ_t of the clearest pairs and the
//      angle accumulated since the start token, both in units of π;
//   3. over 256 random sequences, for every pair (head h, pair r): the circular mean of the
//      increment on 0-tokens and on 1-tokens (units of π, modulo 2), and the lock |mean of
//      exp(i(Θ_t − Θ_0 − π·parity_t))|: 1 when the accumulated angle is π·parity plus a constant,
//      about 0 when it does not depend on parity.
// It checks that its running sum of the increments ends where the fused rotation's final
// offset does (the angles shown are the ones the layer used) and exits non-zero otherwise.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <numbers>

#include "common.h"
#include "rotor/rotor.h"

using namespace rotor;
using namespace rotor::nn;

static const char* kUsage = R"(usage: parity_phase [flags]
  --load PATH    a parity checkpoint from examples/train (1-layer GLA + Selective RoPE); without it,
                 a model is trained here with the main job's settings:
  --seq-len 16  --min-len 1 (training lengths uniform in [min-len, seq-len])  --steps 2000  --lr 5e-3
  --seed 0  --dim 32  --heads 4  --threads 1
)";

namespace {

constexpr double kPi = std::numbers::pi;

// An angle in units of π, wrapped to (−1, 1].
double wrap_pi(double radians) {
  double a = std::remainder(radians, 2 * kPi) / kPi;
  return a <= -1 ? a + 2 : a;
}

struct Phases {
  int64_t B = 0, T = 0, H = 0, R = 0;
  std::vector<float> step;   // τ_r·φ_t, [B, T, H, R]
  std::vector<float> angle;  // τ_r·Φ_t, the accumulated angle
  double offset_error = 0;   // |our Φ_{T−1} − the fused op's final offset|, max
  float at(const std::vector<float>& v, int64_t b, int64_t t, int64_t h, int64_t r) const {
    return v[size_t(((b * T + t) * H + h) * R + r)];
  }
};

// Layer 0's increments for a batch of token rows, as the layer computes them.
Phases phases(const LanguageModel& model, const Tensor& ids) {
  NoGradGuard no_grad;
  const Block& block = *model.layers.at(0);
  const SelectiveRoPE* sr = nullptr;  // registered on the GLA layer as "rotary"
  if (block.gla)
    for (const auto& [name, child] : block.gla->children())
      if (name == "rotary") sr = dynamic_cast<const SelectiveRoPE*>(child);
  if (!sr) throw Error("[parity_phase] layer 0 must be GLA with Selective RoPE");
  const Tensor x = block.attn_norm.forward(model.embeddings.forward(ids));
  const Tensor phi = sr->phase_increments(x, Tensor()).first;  // [B, T, H, R]
  Phases p;
  p.B = phi.size(0), p.T = phi.size(1), p.H = phi.size(2), p.R = phi.size(3);
  const std::vector<float> tau = sr->temperature.to_vector<float>();
  const std::vector<float> inc = phi.to_vector<float>();
  p.step.resize(inc.size());
  p.angle.resize(inc.size());
  std::vector<double> sum(size_t(p.B * p.H * p.R), 0.0);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.T; ++t)
      for (int64_t hr = 0; hr < p.H * p.R; ++hr) {
        const size_t i = size_t((b * p.T + t) * p.H * p.R + hr), s = size_t(b * p.H * p.R + hr);
        sum[s] += inc[i];
        p.step[i] = float(tau[size_t(hr % p.R)] * inc[i]);
        p.angle[i] = float(tau[size_t(hr % p.R)] * sum[s]);
      }
  // The fused op's own accumulation (autograd/rope.h) must end at the same phase.
  const Tensor q = zeros({p.B, p.T, p.H, 2 * p.R});
  const std::vector<float> offset = selective_rope(q, q, phi, sr->temperature).final_offset.to_vector<float>();
  for (size_t s = 0; s < sum.size(); ++s) p.offset_error = std::max(p.offset_error, std::abs(double(offset[s]) - sum[s]));
  return p;
}

struct PairStats {
  int64_t h = 0, r = 0;
  double step0 = 0, step1 = 0, lock = 0;  // circular means (units of π) and the parity lock
};

std::vector<PairStats> pair_stats(const Phases& p, const Tensor& ids) {
  const std::vector<int64_t> tok = ids.to_vector<int64_t>();
  std::vector<PairStats> out;
  for (int64_t h = 0; h < p.H; ++h)
    for (int64_t r = 0; r < p.R; ++r) {
      std::complex<double> m0, m1, lock;
      int64_t n0 = 0, n1 = 0, n = 0;
      for (int64_t b = 0; b < p.B; ++b) {
        int parity = 0;
        for (int64_t t = 1; t < p.T; ++t) {  // t = 0 is the start token
          const int64_t x = tok[size_t(b * p.T + t)];
          if (x > 1) continue;  // padding
          parity ^= int(x);
          const std::complex<double> e = std::polar(1.0, double(p.at(p.step, b, t, h, r)));
          (x ? m1 : m0) += e;
          (x ? n1 : n0) += 1;
          lock += std::polar(1.0, double(p.at(p.angle, b, t, h, r) - p.at(p.angle, b, 0, h, r)) - kPi * parity);
          ++n;
        }
      }
      out.push_back({h, r, wrap_pi(std::arg(m0 / double(std::max<int64_t>(n0, 1)))),
                     wrap_pi(std::arg(m1 / double(std::max<int64_t>(n1, 1)))), std::abs(lock) / double(std::max<int64_t>(n, 1))});
    }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, kUsage);
  const std::string load = flags.str("load", "");
  const int64_t L = flags.integer("seq-len", 16, 2, 4096), steps = flags.integer("steps", 2000, 1, 1 << 24);
  const int64_t min_len = flags.integer("min-len", 1, 0, L);
  const double lr = flags.real("lr", 5e-3, 1e-9, 10.0);
  const int64_t seed = flags.integer("seed", 0, 0, int64_t(1) << 40), dim = flags.integer("dim", 32, 2, 4096);
  const int64_t heads = flags.integer("heads", 4, 1, 256), threads = flags.integer("threads", 1, 0, 1024);
  flags.finish();
  if (threads) set_num_threads(int(threads));
  try {
    // 1. The model: loaded, or trained here (1-layer GLA, short convolutions, Selective RoPE with
    //    temperature π on every pair and the phase bias: the main job's parity variant).
    std::unique_ptr<LanguageModel> model;
    StateTrackingConfig task;
    task.group = "S2";
    task.seq_len = L;
    task.eval_lengths = {4 * L, 16 * L};
    if (!load.empty()) {
      model = load_model(load);
    } else {
      ModelConfig c;
      c.vocab_size = state_tracking_vocab(make_group("S2"));
      c.hidden_size = dim;
      c.num_hidden_layers = 1;
      c.num_heads = heads;
      c.expand_k = c.expand_v = 1;
      c.use_short_conv = true;
      c.position_embedding.type = "selective_rope";
      c.position_embedding.selective.use_bias = true;
      c.position_embedding.selective.temp_theta = 1;
      c.position_embedding.selective.temp_max = 3.14159;  // φ = 1 turns a pair by π
      Generator gen{uint64_t(seed)};
      model = std::make_unique<LanguageModel>(c, gen);
      StateTrackingConfig train_task = task;
      train_task.min_len = min_len;
      TaskData data = state_tracking_splits(train_task, 10000, 500, uint64_t(seed));
      BatchLoader loader(data.train, 64, uint64_t(seed));
      TrainConfig tc;
      tc.steps = steps;
      tc.lr = lr;
      tc.warmup = std::min<int64_t>(100, steps / 10);
      tc.min_lr = 1e-5;
      Trainer trainer(*model, loader, tc);
      std::printf("training %lld steps on parity, lengths %lld-%lld ...\n", (long long)steps, (long long)(min_len ? min_len : L), (long long)L);
      StepStats s;
      while (trainer.step_count() < steps) s = trainer.step();
      std::printf("last batch: loss %.4f, accuracy %.4f\n", s.loss, s.accuracy);
    }
    const ModelConfig& c = model->config;
    std::printf("model: %s, %lld layer(s), d %lld, %lld heads, %lld parameters\n", c.model_type.c_str(),
                (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.num_heads,
                (long long)model->num_parameters());
    TaskData data = state_tracking_splits(task, 64, 500, uint64_t(seed) + 1000);
    std::printf("accuracy on fresh sequences: length %lld %.4f", (long long)L, evaluate(*model, data.test, 64).accuracy.value());
    for (const LengthSplit& s : data.lengths)
      std::printf(", length %lld %.4f", (long long)s.length, evaluate(*model, s.data, 64).accuracy.value());
    std::printf("\n\n");

    // 3 first (it picks the pairs to show in 2): statistics over random sequences of length 4L.
    const TokenData many = state_tracking_generate(make_group("S2"), task, 4 * L, 256, uint64_t(seed) + 2000);
    const Phases pm = phases(*model, many.inputs);
    std::vector<PairStats> stats = pair_stats(pm, many.inputs);
    std::vector<PairStats> ranked = stats;
    std::stable_sort(ranked.begin(), ranked.end(), [](const PairStats& a, const PairStats& b) { return a.lock > b.lock; });

    // 2. One short input, the two pairs most locked to parity.
    const std::vector<int64_t> bits = {0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1};
    std::vector<int64_t> row = {2};  // BOS = |S2|
    row.insert(row.end(), bits.begin(), bits.end());
    const Tensor one = from_vector(row, {1, int64_t(row.size())});
    const Phases p1 = phases(*model, one);
    std::printf("one input (angles in units of pi; 'turn' = this token's increment, 'since BOS' = accumulated\n"
                "angle minus the start token's, modulo 2):\n");
    std::printf("%-22s  BOS", "token");
    for (int64_t b : bits) std::printf(" %5lld", (long long)b);
    std::printf("\n%-22s     ", "parity so far");
    int parity = 0;
    for (int64_t b : bits) std::printf(" %5d", parity ^= int(b));
    std::printf("\n");
    for (size_t k = 0; k < std::min<size_t>(2, ranked.size()); ++k) {
      const int64_t h = ranked[k].h, r = ranked[k].r;
      std::printf("head %lld pair %lld: turn     ", (long long)h, (long long)r);
      for (int64_t t = 0; t < p1.T; ++t) std::printf(" %+5.2f", wrap_pi(p1.at(p1.step, 0, t, h, r)));
      std::printf("\nhead %lld pair %lld: since BOS", (long long)h, (long long)r);
      std::printf("      ");
      for (int64_t t = 1; t < p1.T; ++t) std::printf(" %+5.2f", wrap_pi(p1.at(p1.angle, 0, t, h, r) - p1.at(p1.angle, 0, 0, h, r)));
      std::printf("\n");
    }

    std::printf("\nevery pair over 256 random sequences of length %lld (turns: circular means, units of pi):\n",
                (long long)(4 * L));
    std::printf("%6s %6s %12s %12s %12s\n", "head", "pair", "turn on 0", "turn on 1", "parity lock");
    for (const PairStats& s : stats)
      std::printf("%6lld %6lld %+12.3f %+12.3f %12.3f\n", (long long)s.h, (long long)s.r, s.step0, s.step1, s.lock);
    const PairStats& best = ranked.front();
    const double diff = wrap_pi(kPi * (best.step1 - best.step0));
    std::printf("\nclearest pair: head %lld pair %lld, lock %.3f; a 1 turns it %+.3f pi more than a 0 (pi is %s)\n",
                (long long)best.h, (long long)best.r, best.lock, diff, std::abs(std::abs(diff) - 1) < 0.1 ? "what parity needs" : "not what it learned");
    const double err = std::max(pm.offset_error, p1.offset_error);
    std::printf("running sum vs the fused op's final phase: max difference %.2e\n", err);
    if (!(err < 1e-3)) {
      std::fprintf(stderr, "parity_phase: the accumulated phase does not match the layer's rotation\n");
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
