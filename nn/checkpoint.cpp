#include "rotor/nn/checkpoint.h"

#include <set>

namespace rotor::nn {

void save_model(const std::string& path, const LanguageModel& model, int64_t step, const Metadata& extra) {
  NamedTensors tensors;
  for (const Parameter& p : model.named_parameters()) tensors.emplace_back(p.name, p.value.detach());
  Metadata meta = {{"format", "rotor"}, {"config", model.config.to_json().dump()}, {"step", std::to_string(step)}};
  meta.insert(meta.end(), extra.begin(), extra.end());
  save_safetensors(path, tensors, meta);
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

std::unique_ptr<LanguageModel> load_model(const std::string& path) {
  SafetensorsContent file = load_safetensors(path);
  const std::string what = "'" + path + "'";
  Generator gen(0);
  // Initialisation values are overwritten at once; the dtype is the file's.
  const Tensor* head = file.find("lm_head.weight");
  const DType dtype = head ? head->dtype() : DType::Float32;
  auto model = std::make_unique<LanguageModel>(checkpoint_config(file, what), gen, dtype);
  load_parameters(*model, file, true, what);
  return model;
}

}  // namespace rotor::nn
