// examples/lm_study — the paper's language-modeling claim in miniature: byte-level models on
// real text (Debian's fortunes by default), GLA with no position embedding, RoPE and Selective
// RoPE, and softmax attention with RoPE as a reference, at equal parameter counts, steps and
// data, over several seeds.
//
//   build/examples/lm_study                      the default size (minutes on 2 cores)
//   build/examples/lm_study --full               a larger model trained longer
//   build/examples/lm_study --seeds 5 --steps 800 --out-dir results
//
// Each model trains on windows of T bytes and is then evaluated on held-out text at T, 2T, 4T
// and 8T (length extrapolation). The long windows run T bytes at a time through the streaming
// cache. Every length's windows end at the same positions, so their last T positions predict
// the same bytes: the "last T" columns show what a longer context does to the same predictions
// (better with more context, or worse past the trained length), the "whole" columns the mean
// over the window. Prints both tables (mean and min–max over seeds), writes lm_study.csv,
// lm_curves.csv, lm_steps.svg (validation bits per byte vs step), lm_length.svg (vs evaluation
// length) and the best model, lm_best.safetensors, to sample with examples/infer.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common.h"
#include "plot_svg.h"
#include "rotor/core/parallel.h"
#include "rotor/nn/text.h"
#include "rotor/nn/trainer.h"

using namespace rotor;
using namespace rotor::nn;

static const char* kUsage = R"(usage: lm_study [flags]
  data      --data PATH (default: the fortunes corpus)  --doc-sep LINE (default "%")  --vocab FILE
            --split document|block  --val-fraction 0.05
  variants  --variants gla_none,gla_rope,gla_selective_rope,attn_rope  --seeds 3 (seeds 0..n-1)
  model     --dim 64  --layers 2  --heads 4  --expand-k 1  --rope-theta 10000
  training  --seq-len 128  --batch 16  --steps 300  --lr 3e-3  --warmup 30  --min-lr 1e-4  --weight-decay 0.1
  eval      --eval-every 50  --eval-windows 64  --lengths 1,2,4,8 (multiples of --seq-len)
  other     --full (dim 128, 4 layers, batch 32, 3000 steps, 256 windows)  --threads 0 (all)  --out-dir .
)";

namespace {
struct Variant {
  std::string name, label, mixer, pe;
};
const std::vector<Variant> kVariants = {
    {"gla_none", "GLA, no PE", "gla", "nope"},
    {"gla_rope", "GLA + RoPE", "gla", "rope"},
    {"gla_selective_rope", "GLA + Selective RoPE", "gla", "selective_rope"},
    {"attn_rope", "attention + RoPE", "attn", "rope"},
};

struct RunResult {
  std::vector<double> steps, val_bpb;  // the curve at length T
  std::vector<double> whole, last;     // bits per byte per evaluation length
  double wall = 0, cpu = 0;
};

double cpu_seconds() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

struct Stat {
  double mean = 0, min = INFINITY, max = -INFINITY;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x / double(v.size()), s.min = std::min(s.min, x), s.max = std::max(s.max, x);
  return s;
}
std::string cell(const Stat& s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f [%.3f-%.3f]", s.mean, s.min, s.max);
  return buf;
}
}  // namespace

int main(int argc, char** argv) {
  // --full takes no value: pick it out before the flag parser sees it.
  bool full = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--full") full = true;
    else args.push_back(argv[i]);
  }
  examples::Flags flags(int(args.size()), args.data(), kUsage);
  const std::string data_path = flags.str("data", default_text_corpus());
  TextOptions text;
  text.separator = flags.str("doc-sep", "%");
  const std::string vocab_path = flags.str("vocab", "");
  text.split = flags.str("split", "document", {"document", "block"});
  text.validation_fraction = flags.real("val-fraction", 0.05, 0.0, 0.9);
  const std::vector<std::string> variant_names = split_list(flags.str("variants", "gla_none,gla_rope,gla_selective_rope,attn_rope"));
  const int64_t seeds = flags.integer("seeds", 3, 1, 1000);
  const int64_t dim = flags.integer("dim", full ? 128 : 64, 1, 1 << 14);
  const int64_t layers = flags.integer("layers", full ? 4 : 2, 1, 256);
  const int64_t heads = flags.integer("heads", 4, 1, 1024);
  const double expand_k = flags.real("expand-k", 1.0, 0.0, 16.0);
  const double theta = flags.real("rope-theta", 10000, 1.0, 1e12);
  const int64_t T = flags.integer("seq-len", 128, 2, 1 << 16);
  const int64_t batch = flags.integer("batch", full ? 32 : 16, 1, 1 << 16);
  TrainConfig train;
  train.steps = flags.integer("steps", full ? 3000 : 300, 1, int64_t(1) << 40);
  train.lr = flags.real("lr", 3e-3, 1e-12, 10.0);
  train.warmup = flags.integer("warmup", std::min<int64_t>(full ? 300 : 30, train.steps / 10), 0, train.steps);
  train.min_lr = flags.real("min-lr", 1e-4, 0.0, train.lr);
  train.weight_decay = flags.real("weight-decay", 0.1, 0.0, 10.0);
  const int64_t eval_every = flags.integer("eval-every", full ? 250 : 50, 1, int64_t(1) << 40);
  const int64_t eval_windows = flags.integer("eval-windows", full ? 256 : 64, 1, 1 << 20);
  std::vector<int64_t> multiples;
  for (const std::string& m : split_list(flags.str("lengths", "1,2,4,8"))) {
    char* end = nullptr;
    const long v = std::strtol(m.c_str(), &end, 10);
    if (m.empty() || *end || v < 1 || v > 1024) flags.fail("--lengths must list integers in [1, 1024], got '" + m + "'");
    if (!multiples.empty() && v <= multiples.back()) flags.fail("--lengths must increase");
    multiples.push_back(v);
  }
  if (multiples.front() != 1) flags.fail("--lengths must start at 1 (the training length)");
  const int64_t threads = flags.integer("threads", 0, 0, 1024);
  const std::string out_dir = flags.str("out-dir", ".");
  flags.finish();
  std::vector<Variant> variants;
  for (const std::string& n : variant_names) {
    auto it = std::find_if(kVariants.begin(), kVariants.end(), [&](const Variant& v) { return v.name == n; });
    if (it == kVariants.end()) flags.fail("unknown variant '" + n + "' (gla_none, gla_rope, gla_selective_rope, attn_rope)");
    variants.push_back(*it);
  }
  if (threads) set_num_threads(int(threads));
  std::error_code mkdir_error;
  std::filesystem::create_directories(out_dir, mkdir_error);
  if (mkdir_error) flags.fail("cannot create --out-dir " + out_dir + ": " + mkdir_error.message());

  try {
    // 1. The data: one split for every run; validation windows that end at the same positions
    //    for every evaluation length.
    const Vocabulary vocab = vocab_path.empty() ? Vocabulary::bytes() : Vocabulary::load(vocab_path);
    const TextData data = load_text(data_path, vocab, text);
    const int64_t longest = T * multiples.back();
    const std::vector<int64_t> ends = evaluation_ends(data.validation, longest, eval_windows);
    const TokenData curve_windows = windows_ending_at(data.validation, ends, T);
    std::printf("LM study: %s (%lld files, %lld documents, %lld duplicates dropped); train %lld bytes, validation %lld "
                "bytes (%s split), %zu evaluation windows ending at the same positions\n",
                data_path.c_str(), (long long)data.files, (long long)data.documents, (long long)data.duplicates,
                (long long)data.train.bytes, (long long)data.validation.bytes, text.split.c_str(), ends.size());

    // 2. The models: equal parameter counts, by sizing each variant's MLP.
    auto config_of = [&](const Variant& v, int64_t intermediate) {
      ModelConfig c;
      c.vocab_size = vocab.size();
      c.hidden_size = dim;
      c.num_hidden_layers = layers;
      c.num_heads = heads;
      c.expand_k = expand_k;
      c.expand_v = 1.0;
      c.intermediate_size = intermediate;
      c.position_embedding.type = v.pe;
      c.position_embedding.theta = theta;
      if (v.mixer == "attn") c.model_type = "transformer";  // the reference's model, attention in every layer
      c.validate();
      return c;
    };
    auto count = [](const ModelConfig& c) {
      Generator g(0);
      return LanguageModel(c, g).num_parameters();
    };
    const int64_t base_mlp = swiglu_intermediate_size(dim, 4);
    int64_t target = 0;
    for (const Variant& v : variants) target = std::max(target, count(config_of(v, base_mlp)));
    std::vector<ModelConfig> configs;
    std::vector<int64_t> params;
    for (const Variant& v : variants) {
      const int64_t gap = target - count(config_of(v, base_mlp)), per_unit = 3 * dim * layers;
      configs.push_back(config_of(v, base_mlp + (gap + per_unit / 2) / per_unit));
      params.push_back(count(configs.back()));
    }
    std::printf("models: dim %lld, %lld layers, %lld heads, expand_k %g, RoPE theta %g; %lld steps of %lld x %lld bytes, "
                "lr %g; %lld seeds\n\n",
                (long long)dim, (long long)layers, (long long)heads, expand_k, theta, (long long)train.steps,
                (long long)batch, (long long)T, train.lr, (long long)seeds);

    // 3. Train and evaluate every variant on every seed.
    std::vector<std::vector<RunResult>> results(variants.size());
    double best_bpb = INFINITY;
    std::string best_run;
    const std::string best_path = out_dir + "/lm_best.safetensors";
    std::ofstream curves_csv(out_dir + "/lm_curves.csv");
    curves_csv << "variant,seed,step,train_loss,val_bpb\n";
    const bool tty = isatty(STDOUT_FILENO);  // progress redrawn in place, or one line per evaluation
    const auto study_start = std::chrono::steady_clock::now();
    const double study_cpu = cpu_seconds();
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      for (int64_t seed = 0; seed < seeds; ++seed) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        Generator init{uint64_t(seed)};
        LanguageModel model(configs[vi], init);
        TextLoader loader(data.train, batch, T, uint64_t(seed));
        Trainer trainer(model, loader, train);
        RunResult r;
        double loss_sum = 0;
        int64_t loss_count = 0;
        while (trainer.step_count() < train.steps) {
          const StepStats s = trainer.step();
          loss_sum += s.loss, ++loss_count;
          if (s.step % eval_every == 0 || s.step == train.steps) {
            const double bpb = data.validation.bits_per_byte(evaluate(model, curve_windows, batch).loss);
            r.steps.push_back(double(s.step));
            r.val_bpb.push_back(bpb);
            curves_csv << variants[vi].name << ',' << seed << ',' << s.step << ',' << loss_sum / double(loss_count) << ','
                       << bpb << '\n';
            std::printf("%s%-20s seed %lld  step %5lld/%lld  train loss %.3f  val %.3f bits/byte   %s", tty ? "\r" : "",
                        variants[vi].label.c_str(), (long long)seed, (long long)s.step, (long long)train.steps,
                        loss_sum / double(loss_count), bpb, tty ? "" : "\n");
            std::fflush(stdout);
            loss_sum = 0, loss_count = 0;
          }
        }
        for (int64_t m : multiples) {
          const std::vector<double> losses =
              position_losses(model, windows_ending_at(data.validation, ends, m * T), batch, T);
          double whole = 0, last = 0;
          for (size_t t = 0; t < losses.size(); ++t) {
            whole += losses[t] / double(losses.size());
            if (int64_t(t) >= (m - 1) * T) last += losses[t] / double(T);
          }
          r.whole.push_back(data.validation.bits_per_byte(whole));
          r.last.push_back(data.validation.bits_per_byte(last));
        }
        r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.cpu = cpu_seconds() - c0;
        std::printf("%s%-20s seed %lld  val bits/byte at T %.3f, at %lldT %.3f (last T %.3f)  %.0fs\n",
                    tty ? "\r" : "", variants[vi].label.c_str(), (long long)seed, r.whole[0], (long long)multiples.back(), r.whole.back(),
                    r.last.back(), r.wall);
        if (r.whole[0] < best_bpb) {
          best_bpb = r.whole[0];
          best_run = variants[vi].label + ", seed " + std::to_string(seed);
          Metadata extra = TextModelInfo{vocab, text.separator}.metadata();
          save_model(best_path, model, trainer.step_count(), extra);
        }
        results[vi].push_back(std::move(r));
      }
    }
    const double study_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - study_start).count();

    // 4. Tables (mean [min-max] over seeds), the raw numbers, the plots.
    std::ofstream csv(out_dir + "/lm_study.csv");
    csv << "variant,seed,parameters,steps,eval_length,bpb_whole,bpb_last_T,wall_s,cpu_s\n";
    for (const char* which : {"whole window", "last T positions"}) {
      const bool last = std::string(which) == "last T positions";
      std::printf("\nvalidation bits per byte, mean over the %s (mean [min-max] over %lld seeds)\n", which,
                  (long long)seeds);
      std::printf("%-22s %9s", "variant", "params");
      for (int64_t m : multiples) {
        char h[32];
        std::snprintf(h, sizeof h, "%s (%lld)", m == 1 ? "T" : (std::to_string(m) + "T").c_str(), (long long)(m * T));
        std::printf("  %-21s", h);
      }
      std::printf("\n");
      for (size_t vi = 0; vi < variants.size(); ++vi) {
        std::printf("%-22s %9lld", variants[vi].label.c_str(), (long long)params[vi]);
        for (size_t li = 0; li < multiples.size(); ++li) {
          std::vector<double> v;
          for (const RunResult& r : results[vi]) v.push_back(last ? r.last[li] : r.whole[li]);
          std::printf("  %-21s", cell(stat(v)).c_str());
        }
        std::printf("\n");
      }
    }
    for (size_t vi = 0; vi < variants.size(); ++vi)
      for (size_t s = 0; s < results[vi].size(); ++s)
        for (size_t li = 0; li < multiples.size(); ++li) {
          const RunResult& r = results[vi][s];
          csv << variants[vi].name << ',' << s << ',' << params[vi] << ',' << train.steps << ',' << multiples[li] * T << ','
              << r.whole[li] << ',' << r.last[li] << ',' << r.wall << ',' << r.cpu << '\n';
        }

    std::vector<examples::Series> by_step, by_length;
    double lo = INFINITY, hi = -INFINITY, lo_len = INFINITY, hi_len = -INFINITY;
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      examples::Series s{variants[vi].label, results[vi][0].steps, {}, {}, {}};  // mean, band min-max over seeds
      for (size_t k = 0; k < s.x.size(); ++k) {
        std::vector<double> v;
        for (const RunResult& r : results[vi]) v.push_back(r.val_bpb[k]);
        const Stat st = stat(v);
        s.y.push_back(st.mean), s.y_lo.push_back(st.min), s.y_hi.push_back(st.max);
        if (k > 0) lo = std::min(lo, st.min), hi = std::max(hi, st.max);
      }
      by_step.push_back(s);
      examples::Series l{variants[vi].label, {}, {}, {}, {}};
      for (size_t li = 0; li < multiples.size(); ++li) {
        std::vector<double> v;
        for (const RunResult& r : results[vi]) v.push_back(r.last[li]);
        const Stat st = stat(v);
        l.x.push_back(double(multiples[li] * T));
        l.y.push_back(st.mean), l.y_lo.push_back(st.min), l.y_hi.push_back(st.max);
        lo_len = std::min(lo_len, st.min), hi_len = std::max(hi_len, st.max);
      }
      by_length.push_back(l);
    }
    examples::PlotOptions steps_plot;
    steps_plot.title = "Byte-level LM: validation bits per byte at the training length (mean and min-max over seeds)";
    steps_plot.x_label = "training step";
    steps_plot.y_label = "bits per byte";
    steps_plot.y_min = std::floor(lo * 10) / 10, steps_plot.y_max = std::min(8.0, std::ceil(hi * 10) / 10);
    std::ofstream(out_dir + "/lm_steps.svg") << examples::line_plot_svg(by_step, steps_plot);
    examples::PlotOptions length_plot;
    length_plot.title = "Length extrapolation: bits per byte on the last " + std::to_string(T) + " bytes of each window";
    length_plot.x_label = "evaluation window (bytes; trained on " + std::to_string(T) + ")";
    length_plot.y_label = "bits per byte (last T positions)";
    length_plot.y_min = std::floor(lo_len * 10) / 10, length_plot.y_max = std::min(8.0, std::ceil(hi_len * 10) / 10 + 0.1);
    std::ofstream(out_dir + "/lm_length.svg") << examples::line_plot_svg(by_length, length_plot);

    std::printf("\nstudy time: %s wall, %.0f s cpu (%d threads)\n", examples::Progress::clock(study_wall).c_str(),
                cpu_seconds() - study_cpu, num_threads());
    std::printf("best model: %s (%.3f bits per byte at T), saved to %s\n", best_run.c_str(), best_bpb, best_path.c_str());
    std::printf("  sample it: build/examples/infer --checkpoint %s --prompt \"The \" --generate 300 --temperature 0.8\n",
                best_path.c_str());
    std::printf("wrote %s/lm_study.csv, lm_curves.csv, lm_steps.svg, lm_length.svg\n", out_dir.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
