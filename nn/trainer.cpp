#include "rotor/nn/trainer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "rotor/core/io.h"

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

Trainer::Trainer(LanguageModel& m, BatchLoader& l, const TrainConfig& c)
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

std::string data_fingerprint(const TokenData& data) {
  uint64_t h = 1469598103934665603ULL;
  for (const Tensor& t : {data.inputs, data.labels}) {
    Tensor c = core::contiguous(t);
    const auto* p = static_cast<const unsigned char*>(c.raw_data());
    for (int64_t i = 0, n = c.numel() * int64_t(dtype_size(c.dtype())); i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {
const char* kSlots[2] = {".optim-a.safetensors", ".optim-b.safetensors"};

// The optimizer file name (no directory) that the model file at path names, "" when none.
std::string named_optimizer(const std::string& path) {
  try {
    for (const auto& [k, v] : load_safetensors_metadata(path))
      if (k == "optimizer") return v;
  } catch (const Error&) {
  }
  return "";
}

// "key: saved X, now Y" for every field (dotted, into nested objects) where two configs differ.
void diff_fields(const Json& saved, const Json& now, const std::string& prefix, std::vector<std::string>& out) {
  if (saved.is_object() && now.is_object()) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : saved.as_object()) keys.push_back(k);
    for (const auto& [k, v] : now.as_object())
      if (!saved.find(k)) keys.push_back(k);
    for (const std::string& k : keys) {
      const Json* a = saved.find(k);
      const Json* b = now.find(k);
      diff_fields(a ? *a : Json(), b ? *b : Json(), prefix.empty() ? k : prefix + "." + k, out);
    }
    return;
  }
  if (saved.dump() != now.dump()) out.push_back(prefix + ": saved " + saved.dump() + ", now " + now.dump());
}
}  // namespace

std::string Trainer::optimizer_path(const std::string& path) {
  const std::string named = named_optimizer(path);
  // Only a plain file name beside the model: a model file cannot point elsewhere.
  if (!named.empty() && named.find('/') == std::string::npos && named != "." && named != "..")
    return io::dir_of(path) + "/" + named;
  return path + ".optim.safetensors";
}

void Trainer::check_save_path(const std::string& path) {
  io::check_writable(path, "save");
  for (const char* slot : kSlots) io::check_writable(path + slot, "save");
}

void Trainer::save(const std::string& path, const Metadata& extra) const {
  const auto pos = loader.position();
  const std::string base = io::base_of(path);
  const std::string current = named_optimizer(path);
  const std::string slot = base + (current == base + kSlots[0] ? kSlots[1] : kSlots[0]);
  const std::string other = base + (slot == base + kSlots[0] ? kSlots[1] : kSlots[0]);
  const std::string dir = io::dir_of(path);
  Metadata meta = {{"format", "rotor-optimizer"},
                   {"step", std::to_string(step_)},
                   {"loader_epoch", std::to_string(pos.epoch)},
                   {"loader_cursor", std::to_string(pos.cursor)},
                   {"loader_seed", std::to_string(loader.seed())},
                   {"loader_batch_size", std::to_string(loader.batch_size())},
                   {"data_fingerprint", data_fingerprint(loader.data())},
                   {"train_config", config.to_json().dump()}};
  save_safetensors(dir + "/" + slot, optimizer.state_dict(), meta);
  Metadata model_meta = {{"optimizer", slot}};
  model_meta.insert(model_meta.end(), extra.begin(), extra.end());
  save_model(path, model, step_, model_meta);  // the commit
  // Files no model file names any more: the previous slot, and the single optimizer file of the
  // layout before slots.
  for (const std::string& stale : {dir + "/" + other, path + ".optim.safetensors"}) {
    io::crash_point("removing " + io::base_of(stale));
    ::unlink(stale.c_str());
  }
  io::sync_dir(dir);
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
  ROTOR_CHECK(fp && *fp == data_fingerprint(loader.data()), "resume", owhat,
              " was saved while training on other data (fingerprint ", fp ? *fp : "none", ", now ",
              data_fingerprint(loader.data()), "): use the same task, sizes and seed to resume");
  const int64_t seed = opt_int("loader_seed"), batch_size = opt_int("loader_batch_size");
  ROTOR_CHECK(uint64_t(seed) == loader.seed() && batch_size == loader.batch_size(), "resume", owhat,
              " was saved with loader seed ", seed, " and batch size ", batch_size, ", now ", loader.seed(), " and ",
              loader.batch_size());
  const ModelConfig saved = checkpoint_config(model_file, mwhat);
  std::vector<std::string> diffs;
  diff_fields(saved.to_json(), model.config.to_json(), "", diffs);
  if (!diffs.empty()) {
    std::string list;
    for (const std::string& d : diffs) list += "\n  " + d;
    ROTOR_FAIL("resume", mwhat, " holds a model with another config (", diffs.size(), " fields differ):", list);
  }
  // Validate both files fully before writing into the model.
  load_parameters(model, model_file, true, mwhat);
  optimizer.load_state_dict(opt_file.tensors);
  loader.set_position({opt_int("loader_epoch"), opt_int("loader_cursor")});
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
