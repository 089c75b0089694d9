// Model checkpoints in safetensors: parameters under their dotted names, and in __metadata__
// the model config ("config", JSON) and the training step ("step").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rotor/core/safetensors.h"
#include "rotor/nn/model.h"

namespace rotor::nn {

// Writes the model file atomically (a temporary file, fsynced, renamed over path). `extra`
// metadata is stored beside config and step. Any Module: its named parameters and the step
// (no config: the program that built the module rebuilds it and calls load_parameters).
void save_model(const std::string& path, const LanguageModel& model, int64_t step, const Metadata& extra = {});
void save_model(const std::string& path, const Module& model, int64_t step = 0, const Metadata& extra = {});

struct LoadReport {
  std::vector<std::string> missing;     // parameters of the module absent from the file
  std::vector<std::string> unexpected;  // tensors of the file that name no parameter
};

// Copies the file's tensors into the module's parameters (in place). Every tensor that names
// a parameter must match its shape and dtype (a rotor::Error naming the tensor otherwise).
// strict: missing or unexpected names are an error listing them; non-strict: they are
// reported and the rest is loaded. A NaN or infinite value is an error naming the tensor.
// Nothing is written unless every check passes.
LoadReport load_parameters(const Module& module, const SafetensorsContent& file, bool strict = true,
                           const std::string& what = "checkpoint");
// The same from the file at path (what = the path).
LoadReport load_parameters(const Module& module, const std::string& path, bool strict = true);

// The config and step stored in a model file (rotor::Error when absent or malformed).
ModelConfig checkpoint_config(const SafetensorsContent& file, const std::string& what = "checkpoint");
int64_t checkpoint_step(const SafetensorsContent& file, const std::string& what = "checkpoint");
// An integer stored as text in a file's __metadata__; an Error from `op` naming `what` and the key
// when it is absent or not an integer.
int64_t metadata_int(const SafetensorsContent& file, const std::string& key, const char* op, const std::string& what);

// Builds the model its file describes and loads its parameters (strict). The config's sizes are
// checked against limits (ModelConfig::validate) and against the file's tensors before anything
// is built, and every parameter must be finite.
std::unique_ptr<LanguageModel> load_model(const std::string& path);
std::unique_ptr<LanguageModel> model_from_file(const SafetensorsContent& file, const std::string& what = "checkpoint");

}  // namespace rotor::nn
