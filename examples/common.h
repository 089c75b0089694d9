// Small helpers shared by the example programs: command-line flags and a progress display.
#pragma once
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace examples {

// "--name value" or "--name=value" flags. Unknown flags, missing values and values out of
// range print the problem and the usage to stderr and exit with code 2.
class Flags {
 public:
  Flags(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::printf("%s", usage_.c_str());
        std::exit(0);
      }
      if (a.rfind("--", 0) != 0) fail("unexpected argument '" + a + "'");
      std::string name = a.substr(2), value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else {
        // "--steps --lr 0.1" forgot the value of --steps (--flag=--x still passes such a value).
        if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)
          fail("flag --" + name + " needs a value");
        value = argv[++i];
      }
      if (values_.count(name)) fail("flag --" + name + " given twice");
      values_[name] = value;
    }
  }

  bool has(const std::string& name) {
    known_.insert(name);
    return values_.count(name) > 0;
  }

  std::string str(const std::string& name, const std::string& fallback, const std::vector<std::string>& choices = {}) {
    std::string v = take(name, fallback);
    if (choices.empty()) return v;
    for (const auto& c : choices)
      if (v == c) return v;
    std::string list;
    for (const auto& c : choices) {
      if (!list.empty()) list += '|';
      list += c;
    }
    fail("--" + name + " must be one of " + list + ", got '" + v + "'");
  }

  int64_t integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
    if (!has(name)) return fallback;
    std::string v = take(name, "");
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || errno) fail("--" + name + " must be an integer, got '" + v + "'");
    if (x < lo || x > hi)
      fail("--" + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v);
    return x;
  }

  // A comma-separated list of integers, each in [lo, hi] ("" is the empty list).
  std::vector<int64_t> integers(const std::string& name, const std::vector<int64_t>& fallback, int64_t lo, int64_t hi) {
    if (!has(name)) return fallback;
    const std::string v = take(name, "");
    std::vector<int64_t> out;
    for (size_t start = 0; start < v.size();) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      const std::string item = v.substr(start, comma - start);
      errno = 0;
      char* end = nullptr;
      const long long x = std::strtoll(item.c_str(), &end, 10);
      if (item.empty() || *end || errno || x < lo || x > hi)
        fail("--" + name + " must be a comma-separated list of integers in [" + std::to_string(lo) + ", " +
             std::to_string(hi) + "], got '" + v + "'");
      out.push_back(x);
      start = comma + 1;
    }
    return out;
  }

  double real(const std::string& name, double fallback, double lo, double hi) {
    if (!has(name)) return fallback;
    std::string v = take(name, "");
    errno = 0;
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || errno || !(x >= lo && x <= hi))
      fail("--" + name + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
    return x;
  }

  // Call after reading every flag: anything left over is unknown (named with the closest known flag).
  void finish() {
    for (const auto& [name, value] : values_) {
      if (used_.count(name)) continue;
      std::string best;
      size_t best_distance = 3;  // suggest only close spellings
      for (const std::string& known : known_)
        if (size_t d = distance(name, known); d < best_distance) best = known, best_distance = d;
      fail("unknown flag --" + name + (best.empty() ? "" : " (did you mean --" + best + "?)"));
    }
  }

  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  std::string take(const std::string& name, const std::string& fallback) {
    known_.insert(name);
    used_[name] = true;
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // Edit distance (insertions, deletions, substitutions).
  static size_t distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  }
  std::string usage_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
  std::set<std::string> known_;  // every flag the program asked about
};

// The status line of one step, fitted to `width` columns (it never reaches the last column, so
// a terminal does not wrap it). Fields are dropped from the least important up: tokens/s first,
// then the bar, the ETA, the batch accuracy; `extra` (e.g. "test acc 0.8700") outlives them.
inline std::string progress_line(int width, int64_t step, int64_t total, double loss, double batch_accuracy,
                                 double tok_s, double eta_seconds, const std::string& extra, bool bar = true);

// One status line per step: redrawn in place with \r on a terminal (as wide as the terminal),
// printed as plain lines every `every` steps otherwise (logs and pipes stay readable). The
// latest `extra` (the last test accuracy) stays on the line until a new one replaces it.
class Progress {
 public:
  Progress(int64_t first, int64_t total, int64_t every)
      : total_(total), every_(every), first_(first), tty_(::isatty(STDOUT_FILENO)),
        start_(std::chrono::steady_clock::now()) {}

  void update(int64_t step, double loss, double accuracy, double tokens_per_step, const std::string& extra = "") {
    const double elapsed = seconds(), done = double(step - first_), rate = done > 0 ? elapsed / done : 0;
    const double eta = rate * double(total_ - step), tok_s = elapsed > 0 ? done * tokens_per_step / elapsed : 0;
    const bool fresh = !extra.empty();
    if (fresh) extra_ = extra.substr(std::min(extra.size(), extra.find_first_not_of(' ')));
    if (tty_) {
      const std::string line = progress_line(terminal_width(), step, total_, loss, accuracy, tok_s, eta, extra_);
      std::printf("\r\x1b[K%s", line.c_str());
      std::fflush(stdout);
    } else if (step % every_ == 0 || step == total_ || fresh) {
      std::printf("%s\n", progress_line(1 << 12, step, total_, loss, accuracy, tok_s, eta, extra_, false).c_str());
      std::fflush(stdout);
    }
  }
  // Ends the redrawn line before other output.
  void newline() {
    if (tty_) std::printf("\n");
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

  static std::string clock(double s) {
    char buf[32];
    const long long t = (long long)(s + 0.5);
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, (t / 60) % 60, t % 60);
    return buf;
  }

  // Columns of the terminal on stdout ($COLUMNS, then 80, when it does not say).
  static int terminal_width() {
    winsize w{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
    if (const char* c = std::getenv("COLUMNS"); c && std::atoi(c) > 0) return std::atoi(c);
    return 80;
  }

 private:
  int64_t total_, every_, first_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::string extra_;
};

inline std::string progress_line(int width, int64_t step, int64_t total, double loss, double batch_accuracy,
                                 double tok_s, double eta_seconds, const std::string& extra, bool with_bar) {
  auto fmt = [](const char* f, auto... args) {
    char buf[128];
    std::snprintf(buf, sizeof buf, f, args...);
    return std::string(buf);
  };
  const int digits = int(std::to_string(total).size());
  // Most important first; `keep` fields survive at any width.
  struct Field {
    std::string text;
    int rank;  // lower is dropped later
  };
  std::vector<Field> fields = {
      {fmt("step %*lld/%lld", digits, (long long)step, (long long)total), 0},
      {fmt("loss %.4f", loss), 0},
      {fmt("batch acc %.4f", batch_accuracy), 3},
      {"ETA " + Progress::clock(eta_seconds), 2},
      {fmt("%.0f tok/s", tok_s), 5},
  };
  if (!extra.empty()) fields.insert(fields.begin() + 2, {extra, 1});
  constexpr int kBarMin = 10, kBarMax = 30, kBarRank = 4;
  auto join = [&](int max_rank) {
    std::string s;
    for (const Field& f : fields)
      if (f.rank <= max_rank) s += (s.empty() ? "" : "  ") + f.text;
    return s;
  };
  const int room = std::max(1, width - 1);
  for (int max_rank = 5; max_rank >= 0; --max_rank) {
    std::string text = join(max_rank);
    if (with_bar && max_rank >= kBarRank) {
      const int bar = std::min(kBarMax, room - int(text.size()) - 3);
      if (bar < kBarMin) continue;
      const int filled = total > 0 ? std::clamp(int(double(bar) * double(step) / double(total)), 0, bar) : 0;
      std::string line;
      line.reserve(size_t(bar) + 3 + text.size());
      line.append(1, '[').append(size_t(filled), '#').append(size_t(bar - filled), '.').append("] ").append(text);
      text = std::move(line);
    }
    if (int(text.size()) <= room) return text;
    if (max_rank == 0) return text.substr(0, size_t(room));
  }
  return {};
}

}  // namespace examples
