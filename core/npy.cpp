#include "rotor/core/npy.h"

#include <cctype>
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

// The header is the repr of a Python dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// followed by spaces and a newline. It is read as exactly that literal, each of the three keys
// once and nothing else, as numpy.load requires: anything more lenient lets two readers
// disagree on what a file holds.
struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  Header parse() {
    Header h;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    ws();
    expect('{');
    while (true) {
      ws();
      if (peek() == '}') break;
      const std::string key = string_literal("a key");
      ws();
      expect(':');
      ws();
      auto once = [&](bool& seen) {
        ROTOR_CHECK(!seen, "load_npy", what_, ": header key '", key, "' appears twice: ", s_);
        seen = true;
      };
      if (key == "descr") {
        once(seen_descr);
        ROTOR_CHECK(peek() == '\'' || peek() == '"', "load_npy", what_, ": 'descr' must be a string: ", s_);
        h.descr = string_literal("the descr");
      } else if (key == "fortran_order") {
        once(seen_fortran);
        if (word("True")) h.fortran_order = true;
        else if (word("False")) h.fortran_order = false;
        else fail("'fortran_order' must be True or False");
      } else if (key == "shape") {
        once(seen_shape);
        h.shape = tuple();
      } else {
        fail("unexpected key '" + key + "' (a .npy header holds descr, fortran_order and shape)");
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ROTOR_CHECK(peek() == '}', "load_npy", what_, ": malformed header (expected ',' or '}' at offset ", i_, "): ", s_);
    }
    ++i_;  // '}'
    ws();
    ROTOR_CHECK(i_ == s_.size(), "load_npy", what_, ": malformed header (characters after the dict): ", s_);
    ROTOR_CHECK(seen_descr, "load_npy", what_, ": header has no 'descr' entry: ", s_);
    ROTOR_CHECK(seen_fortran, "load_npy", what_, ": header has no 'fortran_order' entry: ", s_);
    ROTOR_CHECK(seen_shape, "load_npy", what_, ": header has no 'shape' entry: ", s_);
    return h;
  }

 private:
  const std::string& s_;
  const std::string& what_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& msg) const { ROTOR_FAIL("load_npy", what_, ": malformed header: ", msg, ": ", s_); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "' at offset " + std::to_string(i_));
    ++i_;
  }
  bool word(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(i_, n, w) != 0) return false;
    const char next = i_ + n < s_.size() ? s_[i_ + n] : '\0';
    if (std::isalnum(static_cast<unsigned char>(next)) || next == '_') return false;  // "Falsey"
    i_ += n;
    return true;
  }
  // A quoted literal without escapes (no numpy descr or key needs one).
  std::string string_literal(const char* what) {
    const char q = peek();
    if (q != '\'' && q != '"') fail(std::string("expected ") + what + " in quotes at offset " + std::to_string(i_));
    const size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail(std::string("unterminated string for ") + what);
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    if (out.find('\\') != std::string::npos || out.find('\n') != std::string::npos)
      fail(std::string("escape or newline in ") + what);
    i_ = end + 1;
    return out;
  }
  // "(2, 3)", "(3,)", "()": non-negative integers, a trailing comma allowed.
  Shape tuple() {
    if (peek() != '(') ROTOR_FAIL("load_npy", what_, ": malformed shape (not a tuple): ", s_);
    ++i_;
    Shape shape;
    bool comma_after_last = false;
    while (true) {
      ws();
      if (peek() == ')') break;
      comma_after_last = false;
      const size_t j = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      ROTOR_CHECK(i_ > j && i_ - j < 18, "load_npy", what_, ": malformed shape (dims are non-negative integers below 10^17): ", s_);
      shape.push_back(std::stoll(s_.substr(j, i_ - j)));
      ws();
      if (peek() == ',') {
        ++i_;
        comma_after_last = true;
        continue;
      }
      ROTOR_CHECK(peek() == ')', "load_npy", what_, ": malformed shape (expected ',' or ')'): ", s_);
    }
    // "(6)" is the integer 6 in Python, not a tuple.
    ROTOR_CHECK(shape.size() != 1 || comma_after_last, "load_npy", what_, ": malformed shape (a 1-tuple is written (n,)): ", s_);
    ++i_;  // ')'
    return shape;
  }
};

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

  const Header h = HeaderParser(header, what).parse();
  const std::string& descr = h.descr;
  DType dtype;
  if (descr == "<f4") dtype = DType::Float32;
  else if (descr == "<f8") dtype = DType::Float64;
  else if (descr == "<i8") dtype = DType::Int64;
  else if (descr == "|b1") dtype = DType::Bool;
  else ROTOR_FAIL("load_npy", what, ": unsupported dtype '", descr, "' (rotor reads <f4, <f8, <i8, |b1)");
  ROTOR_CHECK(!h.fortran_order, "load_npy", what, ": Fortran-order arrays are not supported (fortran_order: True)");
  const Shape& shape = h.shape;
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
  io::write_atomic(path, "save_npy", bytes);
}

}  // namespace rotor
