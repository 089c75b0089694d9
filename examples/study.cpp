// examples/study — a grid of training runs (settings × variants × seeds) described by a JSON
// spec, run with build/examples/train, summarised like an experiment should be: mean and
// min–max over seeds per variant, accuracy against evaluation length, the curves and the
// lengths as SVG plots with a band over seeds, and checked claims.
//
//   build/examples/study studies/main.json --out-dir results          what scripts/run runs
//   build/examples/study studies/parity.json --jobs 2 --threads 1      two runs at a time
//   mpirun -np 4 --hostfile hosts build/examples/study studies/parity.json    runs spread over 4 ranks
//
// A spec holds one study or {"studies": [...]}. A study:
//   {"name": "parity", "title": "...", "task": "parity",
//    "flags":    {"seq-len": 64, "dim": 32, ...},        train flags shared by every run
//    "settings": {"L64": {"seq-len": 64}, ...},          optional: a grid axis (flags per setting)
//    "variants": {"no PE": {"pe": "none"}, ...},          flags per variant (in table order)
//    "seeds":    [0, 1, 2],
//    "metric":   "accuracy" | "sequence_accuracy",        what the table and plots show
//    "claims":   [{"text": "...", "better": "Selective RoPE", "than": ["no PE", "RoPE"],
//                  "length": 256, "margin": 0.2, "setting": "L64", "metric": "..."}]}
// A claim holds when the worst seed of `better` beats the best seed of every `than` by at
// least `margin` (at `length`, or on the test set when absent; in the claim's own metric when
// it names one): a separation that survives the rounding differences between machines, not a
// difference of means.
//
// Each run writes <out>/<name>/runs/<id>.{csv,json,txt}; a run whose .json exists with the
// same arguments (its .args file) is not rerun, so an interrupted study resumes where it
// stopped. Runs are independent processes: --jobs N runs N at a time (each with --threads;
// results do not depend on either). Under mpirun, the runs to do are dealt out to the ranks (the
// k-th to rank k mod R), each rank runs its share --jobs at a time, and rank 0 gathers every
// run's files (no shared directory needed) and writes the summary.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

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
#include "study_ranks.h"
#include "rotor/core/io.h"
#include "rotor/core/error.h"
#include "rotor/core/json.h"

using rotor::Json;
namespace fs = std::filesystem;

static const char* kUsage = R"(usage: study SPEC.json [flags]
  --out-dir results  --jobs 1 (runs at a time)  --threads 1 (per run)  --only NAME (one study of the spec)
)";

namespace {

using FlagMap = std::vector<std::pair<std::string, std::string>>;  // in spec order

std::string flag_value(const Json& v, const std::string& what) {
  if (v.is_string()) return v.as_string(what);
  if (v.is_bool()) return v.as_bool(what) ? "1" : "0";
  if (v.is_number()) return v.dump();
  throw rotor::Error("[study] " + what + " must be a string, number or bool");
}

FlagMap read_flags(const Json* j, const std::string& what) {
  FlagMap out;
  if (!j) return out;
  for (const auto& [k, v] : j->as_object(what)) out.emplace_back(k, flag_value(v, what + "." + k));
  return out;
}

// Later maps override earlier ones; the order of first appearance is kept.
FlagMap merge(std::initializer_list<const FlagMap*> maps) {
  FlagMap out;
  for (const FlagMap* m : maps)
    for (const auto& [k, v] : *m) {
      auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == k; });
      if (it == out.end()) out.emplace_back(k, v);
      else it->second = v;
    }
  return out;
}

struct Claim {
  std::string text, better, setting, metric;  // metric "": the study's
  std::vector<std::string> than;
  int64_t length = 0;  // 0: the test set
  double margin = 0;
};

struct Study {
  std::string name, title, task, metric = "accuracy";
  FlagMap flags;
  std::vector<std::pair<std::string, FlagMap>> settings, variants;
  std::vector<int64_t> seeds;
  std::vector<Claim> claims;
};

Study read_study(const Json& j) {
  Study s;
  s.name = j.at("name").as_string("name");
  s.title = j.find("title") ? j.at("title").as_string("title") : s.name;
  s.task = j.at("task").as_string("task");
  if (auto* m = j.find("metric")) s.metric = m->as_string("metric");
  if (s.metric != "accuracy" && s.metric != "sequence_accuracy")
    throw rotor::Error("[study] " + s.name + ": metric must be accuracy or sequence_accuracy");
  s.flags = read_flags(j.find("flags"), s.name + ".flags");
  if (auto* st = j.find("settings"))
    for (const auto& [k, v] : st->as_object("settings")) s.settings.emplace_back(k, read_flags(&v, "settings." + k));
  if (s.settings.empty()) s.settings.emplace_back("", FlagMap{});
  for (const auto& [k, v] : j.at("variants").as_object("variants")) s.variants.emplace_back(k, read_flags(&v, "variants." + k));
  for (const Json& x : j.at("seeds").as_array("seeds")) s.seeds.push_back(x.as_int("seeds[]"));
  if (auto* cs = j.find("claims"))
    for (const Json& c : cs->as_array("claims")) {
      Claim cl;
      cl.text = c.at("text").as_string("claims[].text");
      cl.better = c.at("better").as_string("claims[].better");
      for (const Json& t : c.at("than").as_array("claims[].than")) cl.than.push_back(t.as_string("claims[].than[]"));
      if (auto* l = c.find("length")) cl.length = l->as_int("claims[].length");
      if (auto* m = c.find("margin")) cl.margin = m->as_number("claims[].margin");
      if (auto* st = c.find("setting")) cl.setting = st->as_string("claims[].setting");
      if (auto* m = c.find("metric")) cl.metric = m->as_string("claims[].metric");
      if (!cl.metric.empty() && cl.metric != "accuracy" && cl.metric != "sequence_accuracy")
        throw rotor::Error("[study] " + s.name + ": a claim's metric must be accuracy or sequence_accuracy");
      s.claims.push_back(cl);
    }
  return s;
}

// A file-name-safe id: letters, digits, '-', '.' kept, the rest '_'.
std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  return out;
}

struct Run {
  std::string setting, variant, id;
  int64_t seed = 0;
  std::vector<std::string> args;
  bool done = false, failed = false;
  double cpu = 0;
  int owner = 0;      // the rank that runs it
  bool mine = false;  // run by this process
};

// The curve and the final numbers of one finished run.
struct Result {
  std::vector<double> steps, test;  // the metric on the test set against the step
  double final_test = 0;
  std::map<int64_t, double> by_length;
  std::map<std::string, double> final_by_metric;                    // both metrics, for claims
  std::map<std::string, std::map<int64_t, double>> length_by_metric;
  double seconds = 0;
};

Result read_result(const std::string& base, const std::string& metric) {
  Result r;
  const Json j = Json::parse(rotor::io::read_all(base + ".json", "study"), base + ".json");
  r.final_test = j.at("test_" + metric).as_number(metric);
  r.seconds = j.at("seconds").as_number("seconds");
  for (const Json& l : j.at("lengths").as_array("lengths"))
    r.by_length[l.at("length").as_int("length")] = l.at(metric).as_number(metric);
  for (const char* m : {"accuracy", "sequence_accuracy"}) {
    r.final_by_metric[m] = j.at(std::string("test_") + m).as_number(m);
    for (const Json& l : j.at("lengths").as_array("lengths"))
      r.length_by_metric[m][l.at("length").as_int("length")] = l.at(m).as_number(m);
  }
  std::ifstream in(base + ".csv");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  {
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) header.push_back(cell);
  }
  const std::string column = metric == "accuracy" ? "test_accuracy" : "test_sequence_accuracy";
  const size_t col = size_t(std::find(header.begin(), header.end(), column) - header.begin());
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (col < cells.size() && !cells[col].empty()) {
      r.steps.push_back(std::stod(cells[0]));
      r.test.push_back(std::stod(cells[col]));
    }
  }
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts a run with stdout and stderr going to its .txt file.
pid_t start(const Run& run, const std::string& base, char** envp) {
  std::vector<char*> argv;
  for (const auto& a : run.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open((base + ".txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    execve(argv[0], argv.data(), envp);
    std::perror("execv");
    _exit(127);
  }
  return pid;
}

struct Stats {
  double mean = 0, lo = 0, hi = 0;
  size_t n = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  s.n = v.size();
  s.lo = *std::min_element(v.begin(), v.end());
  s.hi = *std::max_element(v.begin(), v.end());
  for (double x : v) s.mean += x / double(v.size());
  return s;
}
std::string cell(const Stats& s) {
  if (!s.n) return "—";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f [%.3f–%.3f]", s.mean, s.lo, s.hi);
  return buf;
}

// Mean and band of curves sampled at the same steps (runs of one variant share the schedule).
examples::Series band(const std::string& label, const std::vector<const Result*>& rs) {
  examples::Series s{label, {}, {}, {}, {}};
  if (rs.empty()) return s;
  size_t n = rs[0]->steps.size();
  for (const Result* r : rs) n = std::min(n, r->steps.size());
  for (size_t k = 0; k < n; ++k) {
    std::vector<double> v;
    for (const Result* r : rs) v.push_back(r->test[k]);
    const Stats st = stats(v);
    s.x.push_back(rs[0]->steps[k]);
    s.y.push_back(st.mean);
    s.y_lo.push_back(st.lo);
    s.y_hi.push_back(st.hi);
  }
  return s;
}

int run_study(rotor::nn::World& world, const Study& st, const std::string& train, const std::string& out_dir,
              int64_t jobs, int64_t threads) {
  examples::ChildEnvironment child_env;
  const std::string dir = out_dir + "/" + st.name + "/runs";
  fs::create_directories(dir);
  std::vector<Run> runs;
  for (const auto& [setting, setting_flags] : st.settings)
    for (const auto& [variant, variant_flags] : st.variants)
      for (int64_t seed : st.seeds) {
        Run r{setting, variant, "", seed, {}, false, false, 0};
        r.id = (setting.empty() ? "" : slug(setting) + "__") + slug(variant) + "__s" + std::to_string(seed);
        const std::string base = dir + "/" + r.id;
        r.args = {train, "--task", st.task};
        for (const auto& [k, v] : merge({&st.flags, &setting_flags, &variant_flags})) r.args.insert(r.args.end(), {"--" + k, v});
        r.args.insert(r.args.end(), {"--seed", std::to_string(seed), "--threads", std::to_string(threads), "--log",
                                     base + ".csv", "--results", base + ".json"});
        std::string joined;
        for (size_t i = 1; i < r.args.size(); ++i) joined += r.args[i] + (i + 1 < r.args.size() ? " " : "\n");
        r.done = fs::exists(base + ".json") && read_text(base + ".args") == joined;
        runs.push_back(r);
      }
  // Every rank sees the same directory (or rank 0's decides: what it lacks is rerun).
  std::string done_flags;
  for (const Run& r : runs) done_flags += r.done ? '1' : '0';
  done_flags = world.allgather(done_flags)[0];
  size_t todo = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    Run& r = runs[i];
    r.done = done_flags[i] == '1';
    if (r.done) continue;
    r.owner = int(todo++ % size_t(world.size()));
    if (r.owner != world.rank()) continue;
    r.mine = true;
    std::string joined;
    for (size_t k = 1; k < r.args.size(); ++k) joined += r.args[k] + (k + 1 < r.args.size() ? " " : "\n");
    fs::remove(dir + "/" + r.id + ".json");  // a previous setting's result must not pass for this one's
    std::ofstream(dir + "/" + r.id + ".args") << joined;
  }
  std::printf("== %s: %zu runs (%zu settings x %zu variants x %zu seeds), %zu to do, %lld at a time", st.name.c_str(),
              runs.size(), st.settings.size(), st.variants.size(), st.seeds.size(), todo, (long long)jobs);
  if (world.size() > 1) std::printf(" on each of %d ranks", world.size());
  std::printf("\n");

  // Run what is missing, `jobs` at a time.
  const auto t0 = std::chrono::steady_clock::now();
  std::map<pid_t, size_t> running;
  size_t next = 0, finished = 0;
  double cpu_total = 0;
  while (next < runs.size() || !running.empty()) {
    while (next < runs.size() && int64_t(running.size()) < jobs) {
      if (!runs[next].done && runs[next].owner == world.rank())
        running[start(runs[next], dir + "/" + runs[next].id, child_env.envp())] = next;
      ++next;
    }
    if (running.empty()) continue;
    int status = 0;
    struct rusage usage {};
    const pid_t pid = wait4(-1, &status, 0, &usage);
    if (pid < 0) break;
    Run& r = runs[running.at(pid)];
    running.erase(pid);
    r.cpu = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    cpu_total += r.cpu;
    r.failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    r.done = !r.failed;
    ++finished;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  [%zu/%zu] %-40s %s  (%.0f s cpu, %s elapsed)\n", finished, todo, r.id.c_str(),
                r.failed ? "FAILED (see its .txt)" : "done", r.cpu, examples::Progress::clock(wall).c_str());
  }
  if (world.size() > 1) {
    // Rank 0 gets every run's files and its cpu time and outcome.
    std::vector<std::string> paths;
    std::string mine;
    for (size_t i = 0; i < runs.size(); ++i) {
      const Run& r = runs[i];
      if (!r.mine) continue;
      for (const char* ext : {".json", ".csv", ".txt", ".args"}) paths.push_back(dir + "/" + r.id + ext);
      mine += std::to_string(i) + " " + std::to_string(r.cpu) + " " + (r.failed ? "1" : "0") + "\n";
    }
    int mine_failed = 0;
    for (const Run& r : runs) mine_failed += r.mine && r.failed;
    const std::vector<std::string> parts = examples::gather_runs(world, paths, mine);
    if (!world.is_root()) return mine_failed;
    cpu_total = 0;
    for (const std::string& part : parts) {
      std::stringstream in(part);
      size_t i = 0;
      double cpu = 0;
      int failed = 0;
      while (in >> i >> cpu >> failed) {
        runs[i].cpu = cpu, runs[i].failed = failed != 0, runs[i].done = !runs[i].failed;
        cpu_total += cpu;
      }
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Results: per setting, a table of mean [min–max] over seeds, the curves and the lengths.
  std::string md = "## " + st.title + "\n\n";
  int failures = 0;
  std::map<std::string, std::map<std::string, std::vector<Result>>> results;  // setting -> variant -> seeds
  for (const Run& r : runs) {
    if (!r.done) {
      ++failures;
      continue;
    }
    results[r.setting][r.variant].push_back(read_result(dir + "/" + r.id, st.metric));
  }
  const std::string what = st.metric == "accuracy" ? "accuracy" : "exact-sequence accuracy";
  for (const auto& [setting, setting_flags] : st.settings) {
    auto& by_variant = results[setting];
    std::vector<int64_t> lengths;
    for (auto& [v, rs] : by_variant)
      for (auto& r : rs)
        for (auto& [l, a] : r.by_length) lengths.push_back(l);
    std::sort(lengths.begin(), lengths.end());
    lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
    if (!setting.empty()) md += "### " + setting + "\n\n";
    md += "| variant | test " + what;
    for (int64_t l : lengths) md += " | length " + std::to_string(l);
    md += " |\n|---|---";
    for (size_t i = 0; i < lengths.size(); ++i) md += "|---";
    md += "|\n";
    std::vector<examples::Series> curves, length_series;
    for (const auto& [variant, variant_flags] : st.variants) {
      const auto& rs = by_variant[variant];
      std::vector<double> finals;
      std::vector<const Result*> ptrs;
      for (const Result& r : rs) finals.push_back(r.final_test), ptrs.push_back(&r);
      md += "| " + variant + " (" + std::to_string(rs.size()) + " seeds) | " + cell(stats(finals));
      examples::Series ls{variant, {}, {}, {}, {}};
      for (int64_t l : lengths) {
        std::vector<double> v;
        for (const Result& r : rs)
          if (r.by_length.count(l)) v.push_back(r.by_length.at(l));
        const Stats s = stats(v);
        md += " | " + cell(s);
        if (s.n) ls.x.push_back(double(l)), ls.y.push_back(s.mean), ls.y_lo.push_back(s.lo), ls.y_hi.push_back(s.hi);
      }
      md += " |\n";
      curves.push_back(band(variant, ptrs));
      length_series.push_back(ls);
    }
    md += "\n";
    const std::string stem = out_dir + "/" + st.name + (setting.empty() ? "" : "_" + slug(setting));
    examples::PlotOptions p;
    p.title = st.title + (setting.empty() ? "" : " (" + setting + ")");
    p.x_label = "training step";
    p.y_label = "test " + what + " (mean, band: min-max over seeds)";
    std::ofstream(stem + "_curves.svg") << examples::line_plot_svg(curves, p);
    if (!lengths.empty()) {
      p.x_label = "evaluation length";
      p.y_label = what + " (mean, band: min-max over seeds)";
      p.x_from_zero = false;
      p.log2_x = true;
      std::ofstream(stem + "_lengths.svg") << examples::line_plot_svg(length_series, p);
    }
  }
  // Claims: the worst seed of one variant against the best seed of others.
  int broken = 0;
  for (const Claim& c : st.claims) {
    auto& by_variant = results[c.setting];
    const std::string metric = c.metric.empty() ? st.metric : c.metric;
    auto values = [&](const std::string& v) {
      std::vector<double> out;
      for (const Result& r : by_variant[v])
        if (c.length == 0) out.push_back(r.final_by_metric.at(metric));
        else if (r.length_by_metric.at(metric).count(c.length)) out.push_back(r.length_by_metric.at(metric).at(c.length));
      return out;
    };
    const std::vector<double> better = values(c.better);
    double worst = better.empty() ? NAN : *std::min_element(better.begin(), better.end()), best_other = -INFINITY;
    bool complete = !better.empty();
    for (const std::string& t : c.than) {
      const std::vector<double> v = values(t);
      complete &= !v.empty();
      for (double x : v) best_other = std::max(best_other, x);
    }
    const bool holds = complete && worst - best_other >= c.margin;
    broken += !holds;
    char buf[320];
    std::snprintf(buf, sizeof buf, "(%s%s: worst %s %.3f vs best other %.3f, margin %.2f)", metric.c_str(),
                  c.length ? (" at length " + std::to_string(c.length)).c_str() : " on the test set", c.better.c_str(),
                  worst, best_other, c.margin);
    md += std::string("- claim ") + (holds ? "HOLDS" : "FAILS") + ": " + c.text + " " + buf + "\n";
  }
  char timing[160];
  std::snprintf(timing, sizeof timing, "\n%zu runs, %d failed; this invocation ran %zu of them in %s (%.0f s cpu)\n",
                runs.size(), failures, todo, examples::Progress::clock(wall).c_str(), cpu_total);
  md += timing;
  rotor::io::write_atomic(out_dir + "/" + st.name + ".md", "study", [&](std::ostream& o) { o << md; });
  std::printf("\n%s\n", md.c_str());
  return failures + broken;
}

}  // namespace

int main(int argc, char** argv) {
  rotor::nn::World world(argc, argv);  // alone, or one rank of an mpirun job (rank 0 prints)
  if (!world.is_root() && !std::freopen("/dev/null", "w", stdout)) std::perror("study: /dev/null");
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  const std::string spec_path = argv[1];
  examples::Flags flags(argc - 1, argv + 1, kUsage);
  const std::string out_dir = flags.str("out-dir", "results"), only = flags.str("only", "");
  const int64_t jobs = flags.integer("jobs", 1, 1, 64), threads = flags.integer("threads", 1, 0, 1024);
  flags.finish();
  const std::string self = argv[0];
  const std::string train = self.substr(0, self.find_last_of('/') + 1) + "train";
  try {
    const Json spec = Json::parse(rotor::io::read_all(spec_path, "study"), spec_path);
    std::vector<Study> studies;
    if (auto* list = spec.find("studies"))
      for (const Json& s : list->as_array("studies")) studies.push_back(read_study(s));
    else
      studies.push_back(read_study(spec));
    fs::create_directories(out_dir);
    int problems = 0;
    for (const Study& s : studies)
      if (only.empty() || s.name == only) problems += run_study(world, s, train, out_dir, jobs, threads);
    if (problems) std::printf("study: %d failed runs or claims\n", problems);
    return problems ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
