#include "rotor/nn/trainer.h"

#include <cmath>
#include <cstdio>

namespace rotor::nn {

Json TrainConfig::to_json() const {
  Json j = Json::object();
  j.set("steps", steps);
  j.set("lr", lr);
  j.set("warmup", warmup);
  j.set("min_lr", min_lr);
  j.set("weight_decay", weight_decay);
  j.set("beta1", beta1);
  j.set("beta2", beta2);
  j.set("eps", eps);
  j.set("grad_clip", grad_clip);
  return j;
}

Trainer::Trainer(LanguageModel& m, Loader& l, const TrainConfig& c)
    : model(m),
      loader(l),
      config(c),
      optimizer(m.named_parameters(), AdamWOptions{c.beta1, c.beta2, c.eps, c.weight_decay}),
      schedule{c.lr, c.warmup, c.steps, c.min_lr} {
  ROTOR_CHECK(c.steps > 0 && c.lr > 0 && c.warmup >= 0 && c.min_lr >= 0, "Trainer",
              "steps and lr must be positive, warmup and min_lr non-negative");
}

StepStats Trainer::step() {
  StepStats s;
  TokenData batch = loader.next();
  optimizer.zero_grad();
  Tensor loss;
  {
    Tensor logits = model.forward(batch.inputs);
    s.accuracy = token_accuracy(logits, batch.labels).value();
    loss = cross_entropy(logits, batch.labels);
  }  // the logits die here: the loss node keeps only their gradient
  s.loss = loss.item();
  if (!std::isfinite(s.loss))
    throw TrainingDiverged(detail::concat("[train] step ", step_ + 1, ": the loss is not finite (", s.loss, ")",
                                          "; stopping before the update (parameters and checkpoints are unchanged)"));
  loss.backward();
  loss = Tensor();
  s.grad_norm = clip_grad_norm(model.parameters(), config.grad_clip);
  if (!std::isfinite(s.grad_norm)) {
    optimizer.zero_grad();
    throw TrainingDiverged(detail::concat("[train] step ", step_ + 1, ": the gradient norm is not finite (", s.grad_norm, ")",
                                          "; stopping before the update (parameters and checkpoints are unchanged)"));
  }
  s.lr = schedule.at(step_);
  optimizer.step(s.lr);
  optimizer.zero_grad();
  s.step = ++step_;
  s.tokens = batch.inputs.numel();
  return s;
}

void Trainer::save(const std::string& path, const Metadata& extra) const {
  Metadata meta = {{"format", "rotor-optimizer"}, {"step", std::to_string(step_)}};
  for (auto& kv : loader.position_metadata()) meta.push_back(std::move(kv));
  meta.insert(meta.end(), {{"loader_seed", std::to_string(loader.seed())},
                           {"loader_batch_size", std::to_string(loader.batch_size())},
                           {"data_fingerprint", loader.fingerprint()},
                           {"train_config", config.to_json().dump()}});
  save_safetensors(optimizer_path(path), optimizer.state_dict(), meta);
  save_model(path, model, step_, extra);
}

std::string Trainer::resume(const std::string& path) {
  const std::string opt_path = optimizer_path(path);
  SafetensorsContent model_file = load_safetensors(path);
  SafetensorsContent opt_file = load_safetensors(opt_path);
  const std::string mwhat = "'" + path + "'", owhat = "'" + opt_path + "'";
  auto opt_int = [&](const char* key) { return metadata_int(opt_file, key, "resume", owhat); };
  const int64_t step = checkpoint_step(model_file, mwhat), opt_step = opt_int("step");
  ROTOR_CHECK(opt_step == step, "resume", owhat, " is from step ", opt_step, " but ", mwhat, " from step ", step,
              " (an interrupted save?): they do not belong together");
  const std::string* fp = opt_file.find_metadata("data_fingerprint");
  ROTOR_CHECK(fp && *fp == loader.fingerprint(), "resume", owhat, " was saved while training on other data (fingerprint ",
              fp ? *fp : "none", ", now ", loader.fingerprint(), "): use the same task, sizes and seed to resume");
  const int64_t seed = opt_int("loader_seed"), batch_size = opt_int("loader_batch_size");
  ROTOR_CHECK(uint64_t(seed) == loader.seed() && batch_size == loader.batch_size(), "resume", owhat,
              " was saved with loader seed ", seed, " and batch size ", batch_size, ", now ", loader.seed(), " and ",
              loader.batch_size());
  const ModelConfig saved = checkpoint_config(model_file, mwhat);
  ROTOR_CHECK(saved.to_json().dump() == model.config.to_json().dump(), "resume", mwhat,
              " holds a model with another config: ", saved.to_json().dump());
  // Validate both files fully before writing into the model.
  load_parameters(model, model_file, true, mwhat);
  optimizer.load_state_dict(opt_file.tensors);
  loader.restore_position(opt_file, owhat);
  step_ = step;
  const std::string* saved_train = opt_file.find_metadata("train_config");
  return saved_train ? *saved_train : std::string();
}

EvalResult evaluate(const LanguageModel& model, const TokenData& data, int64_t batch_size) {
  NoGradGuard no_grad;
  EvalResult r;
  double loss_sum = 0;
  for (int64_t b = 0; b < data.size(); b += batch_size) {
    TokenData part = data.rows(b, std::min(data.size(), b + batch_size));
    Tensor logits = model.forward(part.inputs);
    Accuracy a = token_accuracy(logits, part.labels);
    loss_sum += cross_entropy(logits, part.labels).item() * double(a.count);
    r.accuracy.correct += a.correct;
    r.accuracy.count += a.count;
  }
  r.loss = r.accuracy.count ? loss_sum / double(r.accuracy.count) : 0.0;
  return r;
}

}  // namespace rotor::nn
