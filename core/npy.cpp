#include "rotor/core/npy.h"

#include <cstring>

#include "rotor/core/io.h"

namespace rotor {
namespace {

const char kMagic[] = "\x93NUMPY";

std::string descr_of(DType d) {
  switch (d) {
    case DType::Float32: return "<f4";
    case DType::Float64: return "<f8";
    case DType::Int64: return "<i8";
    case DType::Bool: return "|b1";
  }
  return "";
}

// Value text of `key` in the header dict, up to the next top-level comma or closing brace.
std::string dict_value(const std::string& header, const std::string& key, const std::string& what) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) k = header.find("\"" + key + "\"");
  ROTOR_CHECK(k != std::string::npos, "load_npy", what, ": header has no '", key, "' entry: ", header);
  size_t colon = header.find(':', k);
  ROTOR_CHECK(colon != std::string::npos, "load_npy", what, ": malformed header: ", header);
  size_t start = colon + 1, end = start;
  int depth = 0;
  for (; end < header.size(); ++end) {
    char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  std::string v = header.substr(start, end - start);
  size_t a = v.find_first_not_of(" "), b = v.find_last_not_of(" ");
  return a == std::string::npos ? "" : v.substr(a, b - a + 1);
}

}  // namespace

Tensor npy_from_bytes(const std::string& bytes, const std::string& what) {
  ROTOR_CHECK(bytes.size() >= 6 && std::memcmp(bytes.data(), kMagic, 6) == 0, "load_npy", what,
              ": not a .npy file (bad magic)");
  ROTOR_CHECK(bytes.size() >= 10, "load_npy", what, ": truncated header (", bytes.size(), " bytes)");
  const int major = uint8_t(bytes[6]);
  ROTOR_CHECK(major >= 1 && major <= 3, "load_npy", what, ": unsupported .npy version ", major);
  size_t header_len = 0, pos = 0;
  if (major == 1) {
    header_len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
    pos = 10;
  } else {
    ROTOR_CHECK(bytes.size() >= 12, "load_npy", what, ": truncated header");
    for (int i = 0; i < 4; ++i) header_len |= size_t(uint8_t(bytes[8 + i])) << (8 * i);
    pos = 12;
  }
  ROTOR_CHECK(bytes.size() >= pos + header_len, "load_npy", what, ": truncated header (", header_len,
              " bytes announced, ", bytes.size() - pos, " present)");
  const std::string header = bytes.substr(pos, header_len);
  pos += header_len;

  std::string descr = dict_value(header, "descr", what);
  if (descr.size() >= 2) descr = descr.substr(1, descr.size() - 2);  // strip quotes
  DType dtype;
  if (descr == "<f4") dtype = DType::Float32;
  else if (descr == "<f8") dtype = DType::Float64;
  else if (descr == "<i8") dtype = DType::Int64;
  else if (descr == "|b1") dtype = DType::Bool;
  else ROTOR_FAIL("load_npy", what, ": unsupported dtype '", descr, "' (rotor reads <f4, <f8, <i8, |b1)");

  const std::string fortran = dict_value(header, "fortran_order", what);
  ROTOR_CHECK(fortran == "False", "load_npy", what, ": Fortran-order arrays are not supported (fortran_order: ",
              fortran, ")");

  std::string shape_text = dict_value(header, "shape", what);
  ROTOR_CHECK(shape_text.size() >= 2 && shape_text.front() == '(' && shape_text.back() == ')', "load_npy",
              what, ": malformed shape ", shape_text);
  // A tuple repr: integers separated by commas, a trailing comma allowed ("(3,)").
  Shape shape;
  std::string inner = shape_text.substr(1, shape_text.size() - 2);
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < inner.size() && inner[i] == ' ') ++i;
  };
  skip_spaces();
  while (i < inner.size()) {
    size_t j = i;
    while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') ++j;
    ROTOR_CHECK(j > i && j - i < 18, "load_npy", what, ": malformed shape ", shape_text);
    shape.push_back(std::stoll(inner.substr(i, j - i)));
    i = j;
    skip_spaces();
    if (i == inner.size()) break;
    ROTOR_CHECK(inner[i] == ',', "load_npy", what, ": malformed shape ", shape_text);
    ++i;
    skip_spaces();
  }
  // Counted in double: a shape whose product overflows int64 must not wrap around to a small size.
  double need = double(dtype_size(dtype));
  for (int64_t d : shape) need *= double(d);
  ROTOR_CHECK(need <= double(bytes.size() - pos), "load_npy", what, ": truncated data (shape ", shape_str(shape),
              " needs ", need, " bytes, file has ", bytes.size() - pos, ")");
  const size_t nbytes = size_t(need);
  Tensor t = Tensor::empty(shape, dtype);
  if (nbytes) std::memcpy(t.raw_data(), bytes.data() + pos, nbytes);
  // NumPy reads any nonzero byte as True; a C++ bool must hold exactly 0 or 1.
  if (dtype == DType::Bool) {
    unsigned char* b = static_cast<unsigned char*>(t.raw_data());
    for (size_t k = 0; k < nbytes; ++k) b[k] = b[k] != 0;
  }
  return t;
}

std::string npy_to_bytes(const Tensor& t) {
  std::string header = "{'descr': '" + descr_of(t.dtype()) + "', 'fortran_order': False, 'shape': (";
  for (int64_t d = 0; d < t.dim(); ++d) header += std::to_string(t.shape()[d]) + (t.dim() == 1 ? "," : d + 1 < t.dim() ? ", " : "");
  header += "), }";
  // Pad so that magic + version + length + header is a multiple of 64, ending in '\n'; like
  // numpy.save, with 1 to 64 spaces (a full 64 when already aligned), so the bytes match.
  size_t total = 10 + header.size() + 1;
  header.append(64 - total % 64, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  Tensor c = core::contiguous(t);
  out.append(static_cast<const char*>(c.raw_data()), size_t(c.numel()) * dtype_size(c.dtype()));
  return out;
}

Tensor load_npy(const std::string& path) { return npy_from_bytes(io::read_all(path, "load_npy"), path); }

void save_npy(const std::string& path, const Tensor& t) {
  ROTOR_CHECK(t.defined(), "save_npy", "undefined tensor");
  const std::string bytes = npy_to_bytes(t);
  io::write_atomic(path, "save_npy", [&](std::ostream& out) { out.write(bytes.data(), std::streamsize(bytes.size())); });
}

}  // namespace rotor
