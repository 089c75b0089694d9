// libFuzzer target: the JSON reader and the model config on arbitrary text (a config file, the
// "config" of a checkpoint), then a checkpoint whose config is that text: model_from_file must
// refuse it, or build a model only when the config agrees with the file's tensors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rotor/core/json.h"
#include "rotor/nn/checkpoint.h"

namespace {
// A tiny model's tensors, built once: the inputs vary only its config.
const rotor::SafetensorsContent& base() {
  static const rotor::SafetensorsContent file = [] {
    rotor::nn::ModelConfig c;
    c.vocab_size = 16;
    c.hidden_size = 8;
    c.num_hidden_layers = 1;
    c.num_heads = 2;
    c.intermediate_size = 16;
    c.gate_low_rank_dim = 2;
    rotor::Generator gen(0);
    rotor::nn::LanguageModel m(c, gen);
    rotor::SafetensorsContent f;
    for (const auto& p : m.named_parameters()) f.tensors.emplace_back(p.name, p.value.detach());
    return f;
  }();
  return file;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const rotor::Json j = rotor::Json::parse(text);
    // What parses must write and read back to the same text.
    const std::string out = j.dump();
    if (rotor::Json::parse(out).dump() != out) std::abort();
    rotor::nn::ModelConfig::from_json(j);
  } catch (const rotor::Error&) {
  }
  try {
    rotor::SafetensorsContent file = base();
    file.metadata = {{"config", text}, {"step", "0"}};
    rotor::nn::model_from_file(file);
  } catch (const rotor::Error&) {
  }
  return 0;
}
