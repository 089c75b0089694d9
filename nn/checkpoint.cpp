#include "rotor/nn/checkpoint.h"

#include <cmath>
#include <new>
#include <set>

namespace rotor::nn {

namespace {
void save_parameters(const std::string& path, const Module& model, Metadata meta, const Metadata& extra) {
  NamedTensors tensors;
  for (const Parameter& p : model.named_parameters()) tensors.emplace_back(p.name, p.value.detach());
  meta.insert(meta.end(), extra.begin(), extra.end());
  save_safetensors(path, tensors, meta);  // atomic: temporary file, fsync, rename
}
}  // namespace

void save_model(const std::string& path, const LanguageModel& model, int64_t step, const Metadata& extra) {
  save_parameters(path, model,
                  {{"format", "rotor"}, {"config", model.config.to_json().dump()}, {"step", std::to_string(step)}},
                  extra);
}

void save_model(const std::string& path, const Module& model, int64_t step, const Metadata& extra) {
  if (auto* lm = dynamic_cast<const LanguageModel*>(&model)) return save_model(path, *lm, step, extra);
  save_parameters(path, model, {{"format", "rotor"}, {"step", std::to_string(step)}}, extra);
}

LoadReport load_parameters(const Module& module, const std::string& path, bool strict) {
  return load_parameters(module, load_safetensors(path), strict, "'" + path + "'");
}

LoadReport load_parameters(const Module& module, const SafetensorsContent& file, bool strict, const std::string& what) {
  const char* op = "load_checkpoint";
  LoadReport report;
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  std::set<std::string> known;
  for (const Parameter& p : module.named_parameters()) {
    known.insert(p.name);
    const Tensor* t = file.find(p.name);
    if (!t) {
      report.missing.push_back(p.name);
      continue;
    }
    ROTOR_CHECK(t->shape() == p.value.shape(), op, what, ": tensor '", p.name, "' has shape ", shape_str(t->shape()),
                " but the model's parameter has shape ", shape_str(p.value.shape()));
    ROTOR_CHECK(t->dtype() == p.value.dtype(), op, what, ": tensor '", p.name, "' is ", dtype_name(t->dtype()),
                " but the model's parameter is ", dtype_name(p.value.dtype()));
    if (t->dtype() == DType::Float32 || t->dtype() == DType::Float64) {
      const int64_t bad = dispatch_float(t->dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const Tensor c = core::contiguous(*t);
        const T* x = static_cast<const T*>(c.raw_data());
        for (int64_t i = 0; i < c.numel(); ++i)
          if (!std::isfinite(x[i])) return i;
        return int64_t(-1);
      });
      ROTOR_CHECK(bad < 0, op, what, ": tensor '", p.name, "' is not finite (element ", bad,
                  " is NaN or infinite): a diverged or corrupt run");
    }
    copies.emplace_back(p.value, t);
  }
  for (const auto& [name, t] : file.tensors)
    if (!known.count(name)) report.unexpected.push_back(name);
  if (strict && (!report.missing.empty() || !report.unexpected.empty())) {
    std::string list;
    for (const auto& n : report.missing) list += "\n  missing:    " + n;
    for (const auto& n : report.unexpected) list += "\n  unexpected: " + n;
    ROTOR_FAIL(op, what, ": ", report.missing.size(), " missing and ", report.unexpected.size(),
               " unexpected tensors (pass strict = false to load the rest):", list);
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) core::copy_into(dst, *src);
  return report;
}

ModelConfig checkpoint_config(const SafetensorsContent& file, const std::string& what) {
  const std::string* c = file.find_metadata("config");
  ROTOR_CHECK(c, "load_checkpoint", what, ": no model config in the metadata (not a rotor model file?)");
  try {
    return ModelConfig::from_json(Json::parse(*c, "config"));
  } catch (const Error& e) {
    ROTOR_FAIL("load_checkpoint", what, ": bad model config: ", e.what());
  }
}

int64_t metadata_int(const SafetensorsContent& file, const std::string& key, const char* op, const std::string& what) {
  const std::string* s = file.find_metadata(key);
  ROTOR_CHECK(s, op, what, ": metadata has no '", key, "'");
  try {
    size_t used = 0;
    const long long v = std::stoll(*s, &used);
    if (used == s->size()) return v;
  } catch (const std::exception&) {
  }
  ROTOR_FAIL(op, what, ": metadata '", key, "' = '", *s, "' is not an integer");
}

int64_t checkpoint_step(const SafetensorsContent& file, const std::string& what) {
  const int64_t step = metadata_int(file, "step", "load_checkpoint", what);
  ROTOR_CHECK(step >= 0, "load_checkpoint", what, ": step ", step, " is negative");
  return step;
}

namespace {
const Tensor* find_shape(const SafetensorsContent& file, const std::string& name, Shape& shape) {
  const Tensor* t = file.find(name);
  if (t) shape = t->shape();
  return t;
}

// The config's sizes against the file's tensors, before a model is built from them: the sizes
// that decide most of the memory (vocabulary, width, depth, MLP) must be the file's, and the
// model the config describes must not need much more memory than the file holds.
void check_config_against_file(const ModelConfig& c, const SafetensorsContent& file, const std::string& what) {
  const char* op = "load_checkpoint";
  Shape s;
  if (find_shape(file, "model.embeddings.weight", s))
    ROTOR_CHECK(s == Shape({c.vocab_size, c.hidden_size}), op, what, ": the config says vocab_size ", c.vocab_size,
                " and hidden_size ", c.hidden_size, " but model.embeddings.weight is ", shape_str(s));
  if (find_shape(file, "lm_head.weight", s))
    ROTOR_CHECK(s == Shape({c.vocab_size, c.hidden_size}), op, what, ": the config says vocab_size ", c.vocab_size,
                " and hidden_size ", c.hidden_size, " but lm_head.weight is ", shape_str(s));
  std::set<int64_t> layers;
  const std::string prefix = "model.layers.";
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    int64_t i = 0;
    size_t k = prefix.size();
    for (; k < name.size() && k < prefix.size() + 6 && std::isdigit(static_cast<unsigned char>(name[k])); ++k)
      i = i * 10 + (name[k] - '0');
    if (k > prefix.size() && k < name.size() && name[k] == '.') layers.insert(i);
  }
  ROTOR_CHECK(int64_t(layers.size()) == c.num_hidden_layers, op, what, ": the config says num_hidden_layers ",
              c.num_hidden_layers, " but the file holds ", layers.size(), " layers");
  if (find_shape(file, "model.layers.0.mlp.gate_proj.weight", s))
    ROTOR_CHECK(s == Shape({c.mlp_size(), c.hidden_size}), op, what, ": the config gives an MLP of width ", c.mlp_size(),
                " (intermediate_size ", c.intermediate_size, ", hidden_ratio ", c.hidden_ratio,
                ") but model.layers.0.mlp.gate_proj.weight is ", shape_str(s));
  // Every matrix of a layer at the widest of its dims: an upper bound on what the build allocates.
  const double h = double(c.hidden_size), mlp = double(c.mlp_size());
  const double heads = double(std::max(c.num_heads, c.num_v_heads));
  const double k = std::max(h * c.expand_k, heads * double(c.gdn_head_dim()));
  const double v = std::max(h * c.expand_v, k * c.expand_v);
  const double rank = double(std::max(c.gate_low_rank_dim, std::max(c.position_embedding.selective.phi_proj_rank,
                                                                     c.position_embedding.selective.gate_low_rank_dim)));
  const double per_layer = 4 * h * k + 4 * h * v + 4 * h * h + 3 * h * mlp + 2 * (h + k + v) * rank +
                           4 * (k + v) * double(c.conv_size + c.position_embedding.selective.d_conv) + 8 * (h + k + v);
  const double bound = 2 * double(c.vocab_size) * h + double(c.num_hidden_layers) * per_layer;
  double held = 0;
  for (const auto& [name, t] : file.tensors) held += double(t.numel());
  ROTOR_CHECK(bound <= 8 * held + 1e6, op, what, ": the config describes a model of up to ", bound,
              " parameters but the file holds ", held, " values");
}
}  // namespace

std::unique_ptr<LanguageModel> model_from_file(const SafetensorsContent& file, const std::string& what) {
  const ModelConfig config = checkpoint_config(file, what);
  check_config_against_file(config, file, what);
  Generator gen(0);
  // Initialisation values are overwritten at once; the dtype is the file's.
  const Tensor* head = file.find("lm_head.weight");
  const DType dtype = head ? head->dtype() : DType::Float32;
  std::unique_ptr<LanguageModel> model;
  try {
    model = std::make_unique<LanguageModel>(config, gen, dtype);
  } catch (const std::bad_alloc&) {
    ROTOR_FAIL("load_checkpoint", what, ": not enough memory for the model its config describes");
  }
  load_parameters(*model, file, true, what);
  return model;
}

std::unique_ptr<LanguageModel> load_model(const std::string& path) {
  return model_from_file(load_safetensors(path), "'" + path + "'");
}

}  // namespace rotor::nn
