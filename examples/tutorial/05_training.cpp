// Tutorial step 5 — training a small model (docs/tutorial/05_training.md).
//
//   build/examples/tutorial_05_training
//
// The whole loop by hand: a task (MQAR, associative recall), a language model, AdamW with a
// warmup + cosine schedule, gradient clipping, and the accuracy on test sequences the model
// never saw. nn::Trainer (examples/train) runs the same steps and adds checkpoints.
#include <cstdio>

#include "rotor/rotor.h"

using namespace rotor;
using namespace rotor::nn;

int main() {
  // 1. Data: 16-token sequences with 4 key-value pairs, then queries; disjoint train and test.
  MqarConfig task;
  task.vocab_size = 32, task.seq_len = 16, task.num_kv_pairs = 4;
  MqarSplits data = mqar_splits(task, /*train_size=*/4000, /*test_size=*/500, /*seed=*/0);
  BatchLoader loader(data.train, /*batch_size=*/32, /*seed=*/0);
  auto show = [](const char* what, const Tensor& rows) {
    std::printf("%s", what);
    for (int64_t id : select(rows, 0, 0).to_vector<int64_t>()) std::printf(" %4lld", (long long)id);
    std::printf("\n");
  };
  show("inputs[0]", data.train.inputs);  // k v k v k v k v, then queries among random tokens
  show("labels[0]", data.train.labels);  // the value of the queried key; -100: no loss here

  // 2. Model: two GLA layers with Selective RoPE and its phase bias, short convolutions on q, k, v.
  ModelConfig config;
  config.vocab_size = task.vocab_size;
  config.hidden_size = 64, config.num_heads = 4, config.expand_k = 1.0;
  config.position_embedding.type = "selective_rope";
  config.position_embedding.selective.use_bias = true;
  config.use_short_conv = true;
  Generator init(0);
  LanguageModel model(config, init);

  // 3. Optimizer and schedule.
  AdamW optimizer(model.named_parameters(), {.weight_decay = 0.1});
  const int64_t steps = 1000;
  LrSchedule schedule{.lr = 5e-3, .warmup = 60, .total = steps, .min_lr = 1e-4};

  // 4. The loop.
  for (int64_t step = 0; step < steps; ++step) {
    TokenData batch = loader.next();
    Tensor logits = model.forward(batch.inputs);
    Tensor loss = cross_entropy(logits, batch.labels);  // over labelled positions only
    optimizer.zero_grad();
    loss.backward();
    clip_grad_norm(model.parameters(), 1.0);
    optimizer.step(schedule.at(step));
    if ((step + 1) % 100 == 0) {
      const double test = evaluate(model, data.test, 100).accuracy.value();
      std::printf("step %3lld  loss %.3f  batch acc %.3f  test acc %.3f\n", (long long)(step + 1), loss.item(),
                  token_accuracy(logits, batch.labels).value(), test);
    }
  }
}
