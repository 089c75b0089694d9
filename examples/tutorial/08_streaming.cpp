// Tutorial step 8 — streaming generation (docs/tutorial/08_streaming.md).
//
//   build/examples/tutorial_08_streaming
//
// A GLA layer's memory of the past is its state, [B, H, K, V], whatever the length. Generation
// reads the prompt once, then feeds one token at a time through a cache that holds each
// layer's state (and Selective RoPE's phase, the short convolutions' last inputs). We train a
// small model to count modulo 8, let it continue a prompt greedily, and check that the
// streamed logits are those of the whole sequence in one pass.
#include <cstdio>

#include "rotor/rotor.h"

using namespace rotor;

int main() {
  nn::ModelConfig config;
  config.vocab_size = 8, config.hidden_size = 32, config.num_heads = 2;
  config.position_embedding.type = "selective_rope";
  config.position_embedding.selective.use_bias = true;
  Generator gen(0);
  nn::LanguageModel model(config, gen);

  // 1. Train on rows that count modulo 8 from different starts.
  std::vector<int64_t> rows;
  for (int64_t start = 0; start < 8; ++start)
    for (int64_t t = 0; t < 25; ++t) rows.push_back((start + t) % 8);
  Tensor seq = from_vector(rows, {8, 25}), ids = slice(seq, 1, 0, 24), labels = slice(seq, 1, 1, 25);
  nn::AdamW optimizer(model.named_parameters());
  for (int step = 0; step < 60; ++step) {
    Tensor loss = nn::cross_entropy(model.forward(ids), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step(1e-2);
    if (step == 59) std::printf("after %d steps: loss %.4f\n", step + 1, loss.item());
  }
  model.eval();
  NoGradGuard no_grad;

  // 2. Greedy generation: the prompt once, then one token per call.
  std::vector<int64_t> tokens = {5, 6, 7};
  std::vector<nn::LayerCache> cache;  // empty: a new sequence
  Tensor logits = model.forward(from_vector(tokens, {1, 3}), &cache);
  for (int i = 0; i < 10; ++i) {
    const int64_t next = argmax(select(logits, 1, logits.size(1) - 1), -1).item<int64_t>();
    tokens.push_back(next);
    logits = model.forward(from_vector<int64_t>({next}, {1, 1}), &cache);
  }
  std::printf("prompt 5 6 7 ->");
  for (size_t i = 3; i < tokens.size(); ++i) std::printf(" %lld", (long long)tokens[i]);
  std::printf("\n");
  std::printf("layer 0 state %s after %lld tokens\n", shape_str(cache[0].gla.state.shape()).c_str(),
              (long long)cache[0].gla.seen);

  // 3. The streamed logits of the last token equal those of one pass over all tokens.
  Tensor all = model.forward(from_vector(tokens, {1, int64_t(tokens.size())}));
  const double gap = max(abs(select(all, 1, all.size(1) - 1) - select(logits, 1, 0))).item();
  std::printf("streamed vs one pass, last token's logits: largest difference below 1e-4: %s\n", gap < 1e-4 ? "yes" : "no");
}
