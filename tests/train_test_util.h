// Helpers shared by the training suites that compare two ways of computing one update (gradient
// accumulation, data parallelism): a tiny Selective RoPE model and MQAR rows with ragged labels.
#pragma once
#include <cstdint>

#include "rotor/nn/loss.h"
#include "rotor/nn/model.h"
#include "rotor/nn/mqar.h"

namespace testutil {

inline rotor::nn::ModelConfig tiny_selective_config() {
  rotor::nn::ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 32;
  c.position_embedding.type = "selective_rope";
  c.position_embedding.selective.phi_proj_rank = 4;
  return c;
}

// `rows` MQAR rows where row i has its first i % 3 labels ignored: slices of one batch (micro-
// batches, ranks) hold different numbers of labelled positions, so the weighting of their losses
// matters.
inline rotor::nn::TokenData ragged_mqar(int64_t rows) {
  using namespace rotor::nn;
  TokenData d = mqar_generate(MqarConfig{32, 16, 3}, rows, 7);
  int64_t* y = d.labels.data<int64_t>();
  for (int64_t i = 0; i < d.size(); ++i)
    for (int64_t t = 0, dropped = 0; t < d.seq_len() && dropped < i % 3; ++t)
      if (y[i * d.seq_len() + t] != kIgnoreIndex) {
        y[i * d.seq_len() + t] = kIgnoreIndex;
        ++dropped;
      }
  return d;
}

}  // namespace testutil
