// examples/mqar_study — the paper's recall experiment in miniature: GLA with no position
// embedding, RoPE and Selective RoPE, trained on the same MQAR data with the same settings.
//
//   build/examples/mqar_study                       the default study (what scripts/run runs)
//   build/examples/mqar_study --steps 400 --out-dir results
//   mpirun -np 2 build/examples/mqar_study          the variants spread over 2 processes
//
// It runs build/examples/train once per variant (each writes a CSV log), then prints a table
// of test accuracy and draws mqar.svg: test accuracy against training step, one curve per
// variant. The finding to look for (Selective RoPE paper, MQAR): Selective RoPE recalls at
// least as well as RoPE, and both beat no position embedding.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.h"
#include "plot_svg.h"
#include "study_ranks.h"

static const char* kUsage = R"(usage: mqar_study [flags]   (every flag is passed on to train)
  --variants none,rope,selective_rope,selective_rope_bias  --mixer gla  --out-dir .
  --vocab 64  --seq-len 32  --kv-pairs 8  --dim 64  --layers 2  --heads 4  --steps 1500  --batch 64
  --lr 3e-3  --warmup 100  --train-size 20000  --test-size 500  --eval-every 100  --seed 0
)";

namespace {
struct Curve {
  std::vector<double> steps, test_accuracy;
  double final_loss = 0, final_train_accuracy = 0;
};

// Reads the test_accuracy column of a train CSV log (rows with an empty cell are skipped).
Curve read_log(const std::string& path) {
  Curve c;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header: step,loss,accuracy,test_accuracy,...
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (cells.size() < 3) continue;
    c.final_loss = std::stod(cells[1]);
    c.final_train_accuracy = std::stod(cells[2]);
    if (cells.size() >= 4 && !cells[3].empty()) {
      c.steps.push_back(std::stod(cells[0]));
      c.test_accuracy.push_back(std::stod(cells[3]));
    }
  }
  return c;
}

// Runs a program and waits for it; cpu_seconds receives its user + system time (on a busy
// machine the honest measure of cost: on an idle one, wall time is between cpu/threads and cpu).
int run(const std::vector<std::string>& args, double& cpu_seconds, char** envp) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execve(argv[0], argv.data(), envp);
    std::perror("execv");
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  cpu_seconds = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
}  // namespace

int main(int argc, char** argv) {
  // Under mpirun the variants are spread over the ranks, one run per rank at a time; rank 0
  // prints (its runs' progress and the table) and writes the plot.
  rotor::nn::World world(argc, argv);
  if (!world.is_root() && !std::freopen("/dev/null", "w", stdout)) std::perror("mqar_study: /dev/null");
  examples::ChildEnvironment child_env;
  examples::Flags flags(argc, argv, kUsage);
  const std::string variants_flag = flags.str("variants", "none,rope,selective_rope,selective_rope_bias");
  const std::string out_dir = flags.str("out-dir", ".");
  std::error_code mkdir_error;
  std::filesystem::create_directories(out_dir, mkdir_error);
  if (mkdir_error) {
    std::fprintf(stderr, "mqar_study: cannot create --out-dir %s: %s\n", out_dir.c_str(), mkdir_error.message().c_str());
    return 2;
  }
  // Defaults sized to finish in a few minutes per variant on 2 cores.
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"mixer", "gla"},   {"vocab", "64"},   {"seq-len", "32"}, {"kv-pairs", "8"},      {"dim", "64"},
      {"layers", "2"},    {"heads", "4"},    {"steps", "1500"}, {"batch", "64"},        {"lr", "3e-3"},
      {"train-size", "20000"}, {"test-size", "500"}, {"eval-every", "100"}, {"seed", "0"}, {"warmup", "100"},
      {"weight-decay", "0.1"}, {"expand-k", "1"}, {"expand-v", "1"}, {"min-lr", "1e-5"}, {"threads", "0"}};
  std::vector<std::string> common;
  std::string settings;
  for (const auto& [name, fallback] : defaults) {
    std::string v = flags.str(name, fallback);
    if (name == "threads" && world.size() > 1) v = std::to_string(examples::threads_per_run(world, std::stoi(v)));
    common.push_back("--" + name);
    common.push_back(v);
    settings += " --" + name + " " + v;
  }
  flags.finish();
  std::vector<std::string> variants;
  std::stringstream vs(variants_flag);
  for (std::string v; std::getline(vs, v, ',');) {
    if (v != "none" && v != "rope" && v != "selective_rope" && v != "selective_rope_bias")
      flags.fail("unknown variant '" + v + "'");
    variants.push_back(v);
  }

  std::string self = argv[0];
  const std::string train = self.substr(0, self.find_last_of('/') + 1) + "train";
  std::printf("MQAR study:%s\n\n", settings.c_str());
  if (world.size() > 1)
    std::printf("%zu variants over %d ranks (variant i on rank i mod %d)\n\n", variants.size(), world.size(), world.size());
  std::vector<examples::Series> series;
  std::vector<Curve> curves;
  std::vector<double> seconds(variants.size()), cpu(variants.size());
  std::vector<std::string> logs;
  std::string mine;  // "index seconds cpu exit-code" per run of this rank
  for (size_t i = 0; i < variants.size(); ++i) {
    const std::string& pe = variants[i];
    const std::string log = out_dir + "/mqar_" + pe + ".csv";
    logs.push_back(log);
    if (int(i % size_t(world.size())) != world.rank()) continue;
    // selective_rope_bias: Selective RoPE with its optional phase bias (starts at RoPE's rate).
    const bool bias = pe == "selective_rope_bias";
    std::vector<std::string> args = {train, "--task", "mqar", "--pe", bias ? "selective_rope" : pe, "--pe-bias",
                                     bias ? "1" : "0", "--log", log};
    args.insert(args.end(), common.begin(), common.end());
    std::printf("== %s\n", pe.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    double cpu_seconds = 0;
    const int rc = run(args, cpu_seconds, child_env.envp());
    if (rc != 0) {
      std::fprintf(stderr, "mqar_study: train --pe %s failed (exit code %d)\n", pe.c_str(), rc);
      if (world.size() == 1) return 1;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    mine += std::to_string(i) + " " + std::to_string(wall) + " " + std::to_string(cpu_seconds) + " " +
            std::to_string(rc) + "\n";
    std::printf("\n");
  }
  // Every run's log reaches rank 0, and so do its times and exit codes.
  int failed = 0;
  const std::vector<std::string> parts = examples::gather_runs(world, logs, mine);
  for (size_t p = 0; p < parts.size(); ++p) {
    std::stringstream in(parts[p]);
    size_t i = 0;
    double wall = 0, cpu_seconds = 0;
    int rc = 0;
    while (in >> i >> wall >> cpu_seconds >> rc) {
      seconds[i] = wall, cpu[i] = cpu_seconds;
      if (rc != 0) {
        ++failed;
        if (world.is_root() && int(p) != 0)
          std::fprintf(stderr, "mqar_study: train --pe %s failed on rank %zu (exit code %d)\n", variants[i].c_str(), p, rc);
      }
    }
  }
  if (!world.is_root()) return failed ? 1 : 0;
  if (failed) return 1;
  for (size_t i = 0; i < variants.size(); ++i) {
    const std::string& pe = variants[i];
    const bool bias = pe == "selective_rope_bias";
    curves.push_back(read_log(logs[i]));
    const std::string label = pe == "none" ? "no PE" : pe == "rope" ? "RoPE" : bias ? "Selective RoPE + bias" : "Selective RoPE";
    series.push_back({label, curves.back().steps, curves.back().test_accuracy, {}, {}});
  }

  std::printf("%-22s %10s %14s %11s %10s %9s %9s\n", "variant", "test acc", "best test acc", "train loss", "train acc",
              "wall", "cpu");
  for (size_t i = 0; i < variants.size(); ++i) {
    const Curve& c = curves[i];
    double best = 0;
    for (double a : c.test_accuracy) best = std::max(best, a);
    std::printf("%-22s %10.4f %14.4f %11.4f %10.4f %8.0fs %8.0fs\n", series[i].label.c_str(),
                c.test_accuracy.empty() ? 0.0 : c.test_accuracy.back(), best, c.final_loss, c.final_train_accuracy,
                seconds[i], cpu[i]);
  }
  examples::PlotOptions plot;
  plot.title = "MQAR recall: GLA with no PE, RoPE and Selective RoPE";
  plot.x_label = "training step";
  plot.y_label = "test accuracy (labelled positions)";
  const std::string svg_path = out_dir + "/mqar.svg";
  std::ofstream(svg_path) << examples::line_plot_svg(series, plot);
  std::printf("\nwrote %s\n", svg_path.c_str());
  return 0;
}
