// examples/infer — run a trained checkpoint.
//
//   build/examples/infer --checkpoint ckpt.safetensors --input ids.npy --output logits.npy
//       token ids int64 [B, T] in, logits float32 [B, T, V] out
//   build/examples/infer --checkpoint ckpt.safetensors --prompt "12 4107 55 4200 12" --generate 8
//       greedy decoding: the prompt is read once, then one token at a time through the
//       streaming cache (each new token costs O(1) in the sequence length for GLA)
//   build/examples/infer --checkpoint lm.safetensors --prompt "The " --generate 300 --temperature 0.8
//       a text model (train --task text, lm_study): the prompt is text, and so is what it writes
//
// The model is rebuilt from the config stored in the checkpoint, so no model flags are needed;
// a text model's checkpoint also carries its vocabulary and document separator.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "common.h"
#include "rotor/core/generator.h"
#include "rotor/core/npy.h"
#include "rotor/nn/checkpoint.h"
#include "rotor/nn/sampling.h"
#include "rotor/nn/text.h"

using namespace rotor;
using namespace rotor::nn;

static const char* kUsage = R"(usage: infer --checkpoint PATH (--input IDS.npy --output LOGITS.npy | --prompt P --generate N)
  --input, --output  token ids int64 [B, T] in, logits float32 [B, T, V] out (.npy files)
  --prompt P         text for a text model (it starts a document; "" starts an empty one),
                     token ids separated by spaces for other models
  --generate N       tokens written after the prompt, one at a time through the streaming cache
  --temperature T    sample from softmax(logits / T); 0: the most likely token (greedy).
                     Default: 1 for text models, 0 for others
  --top-k K          sample among the K most likely tokens only (0: all)
  --top-p P          then among the fewest most likely whose probabilities reach P (nucleus; 1: all)
  --seed S           the sampler's seed (0)
)";

namespace {
// Prints decoded text as it is written; a document break becomes the separator on a line of
// its own (as nn::display_text does for a whole text).
class TextPrinter {
 public:
  explicit TextPrinter(std::string separator) : separator_(std::move(separator)) {}
  void print(const std::string& piece) {
    for (char c : piece) {
      if (c == char(kDocumentBreak)) {
        if (!line_start_) std::putchar('\n');
        std::printf("%s\n", separator_.c_str());
        line_start_ = true;
      } else {
        std::putchar(c);
        line_start_ = c == '\n';
      }
    }
    std::fflush(stdout);
  }

 private:
  std::string separator_;
  bool line_start_ = true;
};
}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, kUsage);
  const std::string ckpt = flags.str("checkpoint", ""), input = flags.str("input", ""), output = flags.str("output", "");
  const bool has_prompt = flags.has("prompt");
  const std::string prompt = flags.str("prompt", "");
  const int64_t generate = flags.integer("generate", 0, 0, 1 << 20);
  const bool has_temperature = flags.has("temperature");
  const double temperature_flag = flags.real("temperature", 1.0, 0.0, 1e6);
  const int64_t top_k = flags.integer("top-k", 0, 0, int64_t(1) << 40);
  const double top_p = flags.real("top-p", 1.0, 0.0, 1.0);
  const uint64_t seed = uint64_t(flags.integer("seed", 0, 0, int64_t(1) << 40));
  flags.finish();
  if (ckpt.empty()) flags.fail("--checkpoint is required");
  const bool batch_mode = !input.empty() || !output.empty();
  if (batch_mode == has_prompt) flags.fail("give either --input and --output, or --prompt");
  if (batch_mode && (input.empty() || output.empty())) flags.fail("--input and --output go together");
  if (has_prompt && !flags.has("generate")) flags.fail("--prompt needs --generate N, the number of tokens to write");
  if (top_p <= 0) flags.fail("--top-p must be in (0, 1], got 0");

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

    // Read after the model: a file that holds no model fails there, with the clearer message.
    const std::optional<TextModelInfo> text =
        TextModelInfo::from(SafetensorsContent{{}, load_safetensors_metadata(ckpt)}, "'" + ckpt + "'");
    if (text && text->vocab.size() != V)
      throw Error("[infer] '" + ckpt + "' holds a vocabulary of " + std::to_string(text->vocab.size()) +
                  " tokens for a model of " + std::to_string(V));
    std::vector<int64_t> tokens;
    if (text) {
      // The prompt starts a document, as every document of the training text does.
      for (int32_t id : text->vocab.encode(std::string(1, char(kDocumentBreak)) + prompt, "--prompt")) tokens.push_back(id);
    } else {
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
    }
    Tensor ids = from_vector<int64_t>(tokens, {1, int64_t(tokens.size())});
    check_ids(ids);
    const SamplingOptions sampling{has_temperature ? temperature_flag : text ? 1.0 : 0.0, top_k, top_p};
    Generator gen(seed);
    // The prompt in one call, then each generated token alone: the cache carries the state.
    std::vector<LayerCache> cache;
    Tensor logits = model->forward(ids, &cache);
    TextPrinter printer(text ? text->separator : "");
    if (text) {
      printer.print(prompt);
    } else {
      std::printf("prompt:   ");
      for (int64_t t : tokens) std::printf(" %lld", (long long)t);
      std::printf("\ngenerated:");
    }
    for (int64_t i = 0; i < generate; ++i) {
      const Tensor last = select(select(logits, 0, 0), 0, logits.size(1) - 1);  // [V]
      const int64_t next = sample_token(last, sampling, gen);
      if (text) {
        printer.print(text->vocab.piece(next));
      } else {
        std::printf(" %lld", (long long)next);
        std::fflush(stdout);
      }
      if (i + 1 < generate) logits = model->forward(from_vector<int64_t>({next}, {1, 1}), &cache);
    }
    std::printf("\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
