// Suite "io", part 3: the regression corpus of tests/corpus (written by make_corpus.py). Every
// file goes through the reader of its folder: ok_* must load, any_* may load or fail, every other
// file must fail with rotor::Error. Any other exception fails the case; a crash fails the suite.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "rotor/core/io.h"
#include "rotor/core/json.h"
#include "rotor/core/npy.h"
#include "rotor/core/safetensors.h"
#include "rotor/nn/checkpoint.h"

using namespace rotor;
namespace fs = std::filesystem;

#ifndef ROTOR_CORPUS_DIR
#error "ROTOR_CORPUS_DIR names tests/corpus"
#endif

namespace {
enum class Outcome { Loaded, RotorError, OtherError };

template <class F>
Outcome run(F&& read, std::string& message) {
  try {
    read();
    return Outcome::Loaded;
  } catch (const Error& e) {
    message = e.what();
    return Outcome::RotorError;
  } catch (const std::exception& e) {
    message = e.what();
    return Outcome::OtherError;
  }
}

std::vector<fs::path> files_of(const std::string& folder) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(ROTOR_CORPUS_DIR) / folder)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs every file of folder through read; returns how many files there were.
template <class F>
size_t check_folder(const std::string& folder, F&& read) {
  const std::vector<fs::path> files = files_of(folder);
  std::map<Outcome, int> seen;
  for (const fs::path& p : files) {
    const std::string name = p.filename().string();
    std::string message;
    const Outcome o = run([&] { read(p.string()); }, message);
    ++seen[o];
    INFO(folder, "/", name, ": ", message);
    CHECK(o != Outcome::OtherError);
    if (name.rfind("ok_", 0) == 0) CHECK(o == Outcome::Loaded);
    else if (name.rfind("any_", 0) != 0) CHECK(o == Outcome::RotorError);
    // A refusal names the reader and the file it read.
    if (o == Outcome::RotorError) CHECK(message.find('[') == 0);
  }
  MESSAGE(folder, ": ", files.size(), " files, ", seen[Outcome::Loaded], " loaded, ", seen[Outcome::RotorError],
          " refused");
  return files.size();
}
}  // namespace

TEST_CASE("the malformed-input corpus: every file loads or is a rotor::Error as its name says") {
  size_t total = 0;
  total += check_folder("safetensors", [](const std::string& p) { load_safetensors(p); });
  total += check_folder("npy", [](const std::string& p) { load_npy(p); });
  total += check_folder("json", [](const std::string& p) {
    nn::ModelConfig::from_json(Json::parse(io::read_all(p, "config"), p));
  });
  total += check_folder("checkpoint", [](const std::string& p) { nn::load_model(p); });
  CHECK(total >= 300);
}
