// examples/infer — run a trained checkpoint.
//
//   build/examples/infer --checkpoint ckpt.safetensors --input ids.npy --output logits.npy
//       token ids int64 [B, T] in, logits float32 [B, T, V] out
//   build/examples/infer --checkpoint ckpt.safetensors --prompt "12 4107 55 4200 12" --generate 8
//       greedy decoding: the prompt is read once, then one token at a time through the
//       streaming cache (each new token costs O(1) in the sequence length for GLA)
//
// The model is rebuilt from the config stored in the checkpoint, so no model flags are needed.
#include <cstdio>
#include <sstream>

#include "common.h"
#include "rotor/core/npy.h"
#include "rotor/nn/checkpoint.h"

using namespace rotor;
using namespace rotor::nn;

static const char* kUsage = R"(usage: infer --checkpoint PATH (--input IDS.npy --output LOGITS.npy | --prompt "ids" --generate N)
)";

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, kUsage);
  const std::string ckpt = flags.str("checkpoint", ""), input = flags.str("input", ""), output = flags.str("output", "");
  const std::string prompt = flags.str("prompt", "");
  const int64_t generate = flags.integer("generate", 0, 0, 1 << 20);
  flags.finish();
  if (ckpt.empty()) flags.fail("--checkpoint is required");
  const bool batch_mode = !input.empty() || !output.empty();
  if (batch_mode == !prompt.empty()) flags.fail("give either --input and --output, or --prompt");
  if (batch_mode && (input.empty() || output.empty())) flags.fail("--input and --output go together");

  try {
    std::unique_ptr<LanguageModel> model = load_model(ckpt);
    model->eval();
    NoGradGuard no_grad;
    const int64_t V = model->config.vocab_size;
    auto check_ids = [&](const Tensor& ids) {
      for (int64_t id : ids.to_vector<int64_t>())
        if (id < 0 || id >= V) throw Error("[infer] token id " + std::to_string(id) + " outside the vocabulary [0, " + std::to_string(V) + ")");
    };

    if (batch_mode) {
      Tensor ids = load_npy(input);
      if (ids.dtype() != DType::Int64 || ids.dim() != 2) throw Error("[infer] --input must hold int64 [B, T] token ids");
      check_ids(ids);
      Tensor logits = core::to_dtype(model->forward(ids), DType::Float32);
      save_npy(output, logits);
      std::printf("wrote %s: logits [%lld, %lld, %lld]\n", output.c_str(), (long long)logits.size(0),
                  (long long)logits.size(1), (long long)logits.size(2));
      return 0;
    }

    std::vector<int64_t> tokens;
    std::istringstream in(prompt);
    for (std::string word; in >> word;) {
      try {
        size_t used = 0;
        tokens.push_back(std::stoll(word, &used));
        if (used != word.size()) throw std::invalid_argument(word);
      } catch (const std::exception&) {
        flags.fail("--prompt must be token ids separated by spaces, got '" + word + "'");
      }
    }
    if (tokens.empty()) flags.fail("--prompt is empty");
    Tensor ids = from_vector<int64_t>(tokens, {1, int64_t(tokens.size())});
    check_ids(ids);
    // The prompt in one call, then each generated token alone: the cache carries the state.
    std::vector<LayerCache> cache;
    Tensor logits = model->forward(ids, &cache);
    std::printf("prompt:   ");
    for (int64_t t : tokens) std::printf(" %lld", (long long)t);
    std::printf("\ngenerated:");
    for (int64_t i = 0; i < generate; ++i) {
      Tensor last = select(select(logits, 0, 0), 0, logits.size(1) - 1);  // [V]
      const int64_t next = argmax(last, 0).item<int64_t>();
      std::printf(" %lld", (long long)next);
      std::fflush(stdout);
      if (i + 1 < generate) logits = model->forward(from_vector<int64_t>({next}, {1, 1}), &cache);
    }
    std::printf("\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
