// safetensors files (the format of Hugging Face checkpoints): an 8-byte little-endian header
// length N, N bytes of JSON, then the raw little-endian data of every tensor.
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// Offsets are relative to the start of the data section. rotor reads and writes F32, F64,
// I64 and BOOL; writes tensors in the order given, back to back, and pads the header with
// spaces to a multiple of 8 bytes. Reading validates everything and throws rotor::Error
// ("[safetensors] <what>: ...") on a malformed file: bad header length, bad JSON, unknown
// dtype, offsets out of range, overlapping or leaving holes, sizes that disagree with shapes,
// truncated data.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "rotor/core/tensor.h"

namespace rotor {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::vector<std::pair<std::string, std::string>>;

struct SafetensorsContent {
  NamedTensors tensors;  // in the order of the header
  Metadata metadata;
  const Tensor* find(const std::string& name) const;                // nullptr when absent
  const std::string* find_metadata(const std::string& key) const;  // nullptr when absent
};

std::string safetensors_to_bytes(const NamedTensors& tensors, const Metadata& metadata = {});
SafetensorsContent safetensors_from_bytes(const std::string& bytes, const std::string& what = "<memory>");

// Atomic: a reader sees the previous file or the new one (core/io.h).
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
SafetensorsContent load_safetensors(const std::string& path);

// The __metadata__ of a file, reading only its header (an Error on a malformed header).
Metadata load_safetensors_metadata(const std::string& path);

// "F32", "F64", "I64", "BOOL".
const char* safetensors_dtype_name(DType dtype);

}  // namespace rotor
