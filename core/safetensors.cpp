#include "rotor/core/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <sys/stat.h>

#include "rotor/core/io.h"
#include "rotor/core/json.h"

namespace rotor {

namespace {
constexpr const char* kOp = "safetensors";
// Headers beyond this are refused before any allocation: a corrupt length must not ask for
// terabytes (the reference implementation uses the same 100 MB bound).
constexpr uint64_t kMaxHeader = 100'000'000;

bool dtype_from_name(const std::string& s, DType& out) {
  if (s == "F32") out = DType::Float32;
  else if (s == "F64") out = DType::Float64;
  else if (s == "I64") out = DType::Int64;
  else if (s == "BOOL") out = DType::Bool;
  else return false;
  return true;
}
}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

const Tensor* SafetensorsContent::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const std::string* SafetensorsContent::find_metadata(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

std::string safetensors_to_bytes(const NamedTensors& tensors, const Metadata& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta.set(k, v);
    header.set("__metadata__", meta);
  }
  std::set<std::string> names;
  int64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    ROTOR_CHECK(!name.empty() && name != "__metadata__", kOp, "invalid tensor name '", name, "'");
    ROTOR_CHECK(names.insert(name).second, kOp, "tensor name '", name, "' appears twice");
    ROTOR_CHECK(t.defined(), kOp, "tensor '", name, "' is undefined");
    const int64_t nbytes = t.numel() * int64_t(dtype_size(t.dtype()));
    Json entry = Json::object(), shape = Json::array(), offsets = Json::array();
    for (int64_t d : t.shape()) shape.push(d);
    offsets.push(offset);
    offsets.push(offset + nbytes);
    entry.set("dtype", safetensors_dtype_name(t.dtype()));
    entry.set("shape", shape);
    entry.set("data_offsets", offsets);
    header.set(name, entry);
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + size_t(offset));
  for (const auto& [name, t] : tensors) {
    Tensor c = core::contiguous(t);
    out.append(static_cast<const char*>(c.raw_data()), size_t(c.numel()) * dtype_size(c.dtype()));
  }
  return out;
}

namespace {
// The header length from the first 8 bytes of a file of file_size bytes, checked.
uint64_t header_length(const std::string& first8, uint64_t file_size, const std::string& what) {
  ROTOR_CHECK(first8.size() >= 8, kOp, what, ": file too short for the 8-byte header length (", first8.size(),
              " bytes)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(first8[size_t(i)])) << (8 * i);
  ROTOR_CHECK(n <= kMaxHeader, kOp, what, ": header length ", n, " exceeds the limit of ", kMaxHeader, " bytes");
  ROTOR_CHECK(n <= file_size - 8, kOp, what, ": header length ", n, " exceeds the file (", file_size - 8,
              " bytes after the length)");
  return n;
}

Json parse_header(const std::string& text, const std::string& what) {
  ROTOR_CHECK(!text.empty() && text[0] == '{', kOp, what, ": header does not start with '{'");
  Json header;
  try {
    header = Json::parse(text, what + " header");
  } catch (const Error& e) {
    ROTOR_FAIL(kOp, what, ": header is not valid JSON: ", e.what());
  }
  ROTOR_CHECK(header.is_object(), kOp, what, ": header is not a JSON object");
  return header;
}

Metadata parse_metadata(const Json& entry, const std::string& what) {
  ROTOR_CHECK(entry.is_object(), kOp, what, ": __metadata__ must be an object of strings");
  Metadata out;
  for (const auto& [k, v] : entry.as_object()) {
    ROTOR_CHECK(v.is_string(), kOp, what, ": __metadata__ value of '", k, "' is not a string");
    out.emplace_back(k, v.as_string());
  }
  return out;
}
}  // namespace

SafetensorsContent safetensors_from_bytes(const std::string& bytes, const std::string& what) {
  const uint64_t n = header_length(bytes.substr(0, 8), bytes.size(), what);
  const Json header = parse_header(bytes.substr(8, size_t(n)), what);

  const size_t data_begin = 8 + size_t(n);
  const uint64_t data_size = bytes.size() - data_begin;
  SafetensorsContent out;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.as_object()) {
    if (name == "__metadata__") {
      out.metadata = parse_metadata(entry, what);
      continue;
    }
    ROTOR_CHECK(!name.empty(), kOp, what, ": a tensor has an empty name");
    const std::string where = what + ": tensor '" + name + "'";
    ROTOR_CHECK(entry.is_object(), kOp, where, ": entry is not an object");
    const Json* dt = entry.find("dtype");
    const Json* sh = entry.find("shape");
    const Json* off = entry.find("data_offsets");
    ROTOR_CHECK(dt && sh && off, kOp, where, ": entry needs dtype, shape and data_offsets");
    ROTOR_CHECK(dt->is_string(), kOp, where, ": dtype is not a string");
    DType dtype;
    ROTOR_CHECK(dtype_from_name(dt->as_string(), dtype), kOp, where, ": unsupported dtype '", dt->as_string(),
                "' (rotor reads F32, F64, I64, BOOL)");
    ROTOR_CHECK(sh->is_array(), kOp, where, ": shape is not an array");
    Shape shape;
    uint64_t numel = 1;
    for (const Json& d : sh->as_array()) {
      ROTOR_CHECK(d.is_number() && d.as_number() >= 0 && std::floor(d.as_number()) == d.as_number() &&
                      d.as_number() < 9.0e15,
                  kOp, where, ": shape entries must be non-negative integers");
      shape.push_back(d.as_int());
      ROTOR_CHECK(shape.back() == 0 || numel <= data_size / uint64_t(shape.back()) + 1, kOp, where,
                  ": shape is larger than the data section");
      numel *= uint64_t(shape.back());
    }
    ROTOR_CHECK(off->is_array() && off->as_array().size() == 2, kOp, where, ": data_offsets must be [begin, end]");
    uint64_t ob[2];
    for (int i = 0; i < 2; ++i) {
      const Json& v = off->as_array()[size_t(i)];
      ROTOR_CHECK(v.is_number() && v.as_number() >= 0 && std::floor(v.as_number()) == v.as_number() &&
                      v.as_number() < 9.0e15,
                  kOp, where, ": data_offsets must be non-negative integers");
      ob[i] = uint64_t(v.as_int());
    }
    ROTOR_CHECK(ob[0] <= ob[1], kOp, where, ": data_offsets [", ob[0], ", ", ob[1], ") end before they begin");
    ROTOR_CHECK(ob[1] <= data_size, kOp, where, ": data_offsets [", ob[0], ", ", ob[1],
                ") run past the data section of ", data_size, " bytes (truncated file?)");
    const uint64_t want = numel * dtype_size(dtype);
    ROTOR_CHECK(ob[1] - ob[0] == want, kOp, where, ": ", dt->as_string(), " ", shape_str(shape), " needs ", want,
                " bytes but data_offsets [", ob[0], ", ", ob[1], ") hold ", ob[1] - ob[0]);
    spans.push_back({ob[0], ob[1], name});
    Tensor t = Tensor::empty(shape, dtype);
    if (want) std::memcpy(t.raw_data(), bytes.data() + data_begin + ob[0], size_t(want));
    if (dtype == DType::Bool) {
      // Any byte other than 0 or 1 is not a C++ bool; read it as the truth value it spells.
      auto* p = static_cast<unsigned char*>(t.raw_data());
      for (uint64_t i = 0; i < numel; ++i) p[i] = p[i] != 0;
    }
    out.tensors.emplace_back(name, std::move(t));
  }
  // The tensors must tile the data section exactly: no overlap, no hole, nothing after.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const Span& s : spans) {
    ROTOR_CHECK(s.begin >= at, kOp, what, ": tensor '", s.name, "' at [", s.begin, ", ", s.end,
                ") overlaps the previous tensor (which ends at ", at, ")");
    ROTOR_CHECK(s.begin == at, kOp, what, ": bytes [", at, ", ", s.begin, ") before tensor '", s.name,
                "' belong to no tensor");
    at = s.end;
  }
  ROTOR_CHECK(at == data_size, kOp, what, ": the data section has ", data_size, " bytes but the tensors cover ", at,
              " (trailing bytes)");
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  const std::string bytes = safetensors_to_bytes(tensors, metadata);
  io::write_atomic(path, kOp, bytes);
}

SafetensorsContent load_safetensors(const std::string& path) {
  return safetensors_from_bytes(io::read_all(path, kOp), "'" + path + "'");
}

Metadata load_safetensors_metadata(const std::string& path) {
  const std::string what = "'" + path + "'";
  // As io::read_all: a pipe or a device would block or never end, a directory reads as empty.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0)
    ROTOR_CHECK(S_ISREG(st.st_mode), kOp, "cannot read '", path, "': not a regular file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  ROTOR_CHECK(in.good(), kOp, "cannot open '", path, "': ", std::strerror(errno));
  const uint64_t size = uint64_t(in.tellg());
  std::string first8(size_t(std::min<uint64_t>(size, 8)), '\0');
  in.seekg(0);
  in.read(first8.data(), std::streamsize(first8.size()));
  const uint64_t n = header_length(first8, size, what);
  std::string text(size_t(n), '\0');
  in.read(text.data(), std::streamsize(n));
  ROTOR_CHECK(in.good(), kOp, "reading '", path, "' failed: ", std::strerror(errno));
  const Json header = parse_header(text, what);
  const Json* meta = header.find("__metadata__");
  return meta ? parse_metadata(*meta, what) : Metadata{};
}

}  // namespace rotor
