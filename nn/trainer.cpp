#include "rotor/nn/trainer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "rotor/core/io.h"
#include "rotor/nn/distributed.h"

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

namespace {
World& alone() {
  static World world;
  return world;
}

int64_t labelled_positions(const Tensor& labels) {
  const int64_t* y = labels.data<int64_t>();
  int64_t n = 0;
  for (int64_t i = 0, e = labels.numel(); i < e; ++i) n += y[i] != kIgnoreIndex;
  return n;
}

std::string diverged(int64_t step, const std::string& what) {
  return detail::concat("[train] step ", step, ": ", what,
                        "; stopping before the update (parameters and checkpoints are unchanged)");
}

// One rank's part of a step, as the ranks exchange it after the reduction (the same program
// on every rank, so the struct's bytes mean the same everywhere).
struct RankPart {
  struct Numbers {
    double loss_sum = 0;  // Σ over its micro-batches of mean loss · labelled positions
    int64_t correct = 0, count = 0;
    double bad_loss = 0;  // a non-finite loss, when `diverged`
    int64_t diverged = 0;
  } n;
  std::string error;  // set when this rank failed

  std::string pack() const { return std::string(reinterpret_cast<const char*>(&n), sizeof n) + error; }
  static RankPart unpack(const std::string& s) {
    RankPart r;
    std::memcpy(&r.n, s.data(), sizeof r.n);
    r.error = s.substr(sizeof r.n);
    return r;
  }
};
}  // namespace

Trainer::Trainer(LanguageModel& m, Loader& l, const TrainConfig& c, World* world)
    : Trainer(static_cast<Module&>(m), l, c, LossFn(), world) {
  language_model = &m;
  loss_ = [&m](const TokenData& micro) {
    BatchLoss out;
    Tensor logits = m.forward(micro.inputs);
    out.accuracy = token_accuracy(logits, micro.labels);
    out.loss = cross_entropy(logits, micro.labels);
    return out;  // the logits die here: the loss node keeps only their gradient
  };
}

Trainer::Trainer(Module& m, Loader& l, const TrainConfig& c, LossFn loss, World* world)
    : model(m),
      language_model(nullptr),
      loader(l),
      config(c),
      optimizer(m.named_parameters(), AdamWOptions{c.beta1, c.beta2, c.eps, c.weight_decay}),
      schedule{c.lr, c.warmup, c.steps, c.min_lr},
      loss_(std::move(loss)),
      world_(world ? world : &alone()) {
  ROTOR_CHECK(c.steps > 0 && c.lr > 0 && c.warmup >= 0 && c.min_lr >= 0, "Trainer",
              "steps and lr must be positive, warmup and min_lr non-negative");
  const int64_t micro = c.grad_accum * world_->size();
  ROTOR_CHECK(c.grad_accum >= 1, "Trainer", "grad_accum must be >= 1, got ", c.grad_accum);
  ROTOR_CHECK(loader.batch_size() % micro == 0, "Trainer", "a batch of ", loader.batch_size(),
              " rows does not split into ", world_->size(), " rank(s) x ", c.grad_accum,
              " micro-batch(es) of equal size");
  if (micro > 1) reducer_ = std::make_unique<GradientReducer>(model.parameters(), *world_, c.bucket_bytes, c.overlap);
}

Trainer::~Trainer() = default;

int64_t Trainer::reduce_bytes() const { return reducer_ ? reducer_->bytes() : 0; }
int64_t Trainer::reduce_buckets() const { return reducer_ ? reducer_->num_buckets() : 0; }

StepStats Trainer::step() {
  ROTOR_CHECK(bool(loss_), "Trainer", "no loss function: a Module trainer needs one");
  StepStats s;
  TokenData batch = loader.next();
  const int64_t K = config.grad_accum, R = world_->size(), N = K * R, rows = batch.size() / N;
  // What the batch's mean is over: labelled positions for a language model, rows otherwise.
  const int64_t labelled = N == 1 ? 0 : language_model ? labelled_positions(batch.labels) : batch.size();
  optimizer.zero_grad();
  if (reducer_) reducer_->begin_step();
  // Alone, a failure propagates at once; with other ranks, this rank stops computing, still
  // takes part in the reduction, and every rank learns of it below.
  RankPart mine;
  double loss = 0;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t m = world_->rank() * K + k;
    try {
      const TokenData micro = N == 1 ? batch : batch.rows(m * rows, (m + 1) * rows);
      BatchLoss out = loss_(micro);
      Tensor mean = std::move(out.loss);
      ROTOR_CHECK(mean.defined() && mean.numel() == 1, "Trainer", "the loss function must return a one-element loss");
      const Accuracy a = out.accuracy;
      // The micro-batch's weight in the batch mean (count / labelled below).
      const int64_t share = language_model ? a.count : micro.size();
      loss = mean.item();
      mine.n.correct += a.correct;
      mine.n.count += a.count;
      if (!std::isfinite(loss)) {
        if (R == 1) {
          optimizer.zero_grad();
          throw TrainingDiverged(diverged(step_ + 1, detail::concat("the loss is not finite (", loss, ")")));
        }
        mine.n.diverged = 1;
        mine.n.bad_loss = loss;
        break;
      }
      mine.n.loss_sum += loss * double(share);
      if (N == 1) {
        mean.backward();
      } else {
        // Weighted by its share of the labelled positions: the weighted means sum to the batch's mean.
        const double weight = labelled ? double(share) / double(labelled) : 0.0;
        rotor::backward({mean}, {scalar_tensor(weight, mean.dtype())}, false, reducer_->hook(k == K - 1));
      }
    } catch (const std::exception& e) {
      if (R == 1) throw;
      mine.error = e.what();
      break;
    }
  }
  if (reducer_) {
    reducer_->finish();
    s.reduce_seconds = reducer_->finish_seconds();
  }
  double loss_sum = mine.n.loss_sum;
  int64_t correct = mine.n.correct, count = mine.n.count;
  if (R > 1) {
    // Every rank sums the parts in rank order, as one process sums its micro-batches.
    loss_sum = 0;
    correct = count = 0;
    std::string failed, bad;
    const std::vector<std::string> parts = world_->allgather(mine.pack());
    for (size_t r = 0; r < parts.size(); ++r) {
      const RankPart p = RankPart::unpack(parts[r]);
      loss_sum += p.n.loss_sum;
      correct += p.n.correct;
      count += p.n.count;
      if (!p.error.empty()) failed += detail::concat("\n  rank ", r, ": ", p.error);
      if (p.n.diverged) bad += detail::concat(bad.empty() ? "" : ", ", "rank ", r, " (", p.n.bad_loss, ")");
    }
    if (!failed.empty() || !bad.empty()) optimizer.zero_grad();
    if (!failed.empty()) throw CollectiveError(detail::concat("[train] step ", step_ + 1, " failed on", failed));
    if (!bad.empty()) throw TrainingDiverged(diverged(step_ + 1, "the loss is not finite on " + bad));
  }
  s.loss = N == 1 ? loss : labelled ? loss_sum / double(labelled) : 0.0;
  s.accuracy = Accuracy{correct, count}.value();
  s.grad_norm = clip_grad_norm(model.parameters(), config.grad_clip);
  if (!std::isfinite(s.grad_norm)) {
    optimizer.zero_grad();
    throw TrainingDiverged(diverged(step_ + 1, detail::concat("the gradient norm is not finite (", s.grad_norm, ")")));
  }
  s.lr = schedule.at(step_);
  optimizer.step(s.lr);
  optimizer.zero_grad();
  s.step = ++step_;
  s.tokens = batch.inputs.numel();
  return s;
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
  const std::string base = io::base_of(path);
  const std::string current = named_optimizer(path);
  const std::string slot = base + (current == base + kSlots[0] ? kSlots[1] : kSlots[0]);
  const std::string other = base + (slot == base + kSlots[0] ? kSlots[1] : kSlots[0]);
  const std::string dir = io::dir_of(path);
  Metadata meta = {{"format", "rotor-optimizer"}, {"step", std::to_string(step_)}};
  for (auto& kv : loader.position_metadata()) meta.push_back(std::move(kv));
  meta.insert(meta.end(), {{"loader_seed", std::to_string(loader.seed())},
                           {"loader_batch_size", std::to_string(loader.batch_size())},
                           {"data_fingerprint", loader.fingerprint()},
                           {"train_config", config.to_json().dump()}});
  save_safetensors(dir + "/" + slot, optimizer.state_dict(), meta);
  Metadata model_meta = {{"optimizer", slot}};
  model_meta.insert(model_meta.end(), extra.begin(), extra.end());
  save_model(path, model, step_, model_meta);  // the commit (a LanguageModel's file holds its config)
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
  ROTOR_CHECK(fp && *fp == loader.fingerprint(), "resume", owhat, " was saved while training on other data (fingerprint ",
              fp ? *fp : "none", ", now ", loader.fingerprint(), "): use the same task, sizes and seed to resume");
  const int64_t seed = opt_int("loader_seed"), batch_size = opt_int("loader_batch_size");
  ROTOR_CHECK(uint64_t(seed) == loader.seed() && batch_size == loader.batch_size(), "resume", owhat,
              " was saved with loader seed ", seed, " and batch size ", batch_size, ", now ", loader.seed(), " and ",
              loader.batch_size());
  if (language_model) {
    const ModelConfig saved = checkpoint_config(model_file, mwhat);
    std::vector<std::string> diffs;
    diff_fields(saved.to_json(), language_model->config.to_json(), "", diffs);
    if (!diffs.empty()) {
      std::string list;
      for (const std::string& d : diffs) list += "\n  " + d;
      ROTOR_FAIL("resume", mwhat, " holds a model with another config (", diffs.size(), " fields differ):", list);
    }
  }
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
    const Accuracy rows = sequence_accuracy(logits, part.labels);
    r.sequences.correct += rows.correct;
    r.sequences.count += rows.count;
  }
  r.loss = r.accuracy.count ? loss_sum / double(r.accuracy.count) : 0.0;
  return r;
}

}  // namespace rotor::nn
