// Small helpers shared by the example programs: command-line flags and a progress display.
#pragma once
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
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
        if (i + 1 >= argc) fail("flag --" + name + " needs a value");
        value = argv[++i];
      }
      if (values_.count(name)) fail("flag --" + name + " given twice");
      values_[name] = value;
    }
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }

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

  // Call after reading every flag: anything left over is unknown.
  void finish() {
    for (const auto& [name, value] : values_)
      if (!used_.count(name)) fail("unknown flag --" + name);
  }

  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  std::string take(const std::string& name, const std::string& fallback) {
    used_[name] = true;
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  std::string usage_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
};

// One status line per step: redrawn in place with \r on a terminal, printed as plain lines
// every `every` steps otherwise (logs and pipes stay readable).
class Progress {
 public:
  Progress(int64_t first, int64_t total, int64_t every)
      : total_(total), every_(every), first_(first), tty_(::isatty(STDOUT_FILENO)),
        start_(std::chrono::steady_clock::now()) {}

  void update(int64_t step, double loss, double accuracy, double tokens_per_step, const std::string& extra = "") {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double done = double(step - first_), rate = done > 0 ? elapsed / done : 0;
    const double eta = rate * double(total_ - step), tok_s = elapsed > 0 ? done * tokens_per_step / elapsed : 0;
    char line[256];
    std::snprintf(line, sizeof line, "step %6lld/%lld  loss %7.4f  acc %6.4f  %8.0f tok/s  ETA %s%s", (long long)step,
                  (long long)total_, loss, accuracy, tok_s, clock(eta).c_str(), extra.c_str());
    if (tty_) {
      const int width = 24, filled = int(double(width) * double(step) / double(total_));
      std::printf("\r\x1b[K[%s%s] %s", std::string(size_t(filled), '#').c_str(),
                  std::string(size_t(width - filled), '.').c_str(), line);
      std::fflush(stdout);
    } else if (step % every_ == 0 || step == total_ || !extra.empty()) {
      std::printf("%s\n", line);
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

 private:
  int64_t total_, every_, first_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace examples
