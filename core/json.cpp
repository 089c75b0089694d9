#include "rotor/core/json.h"

#include <cmath>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "rotor/core/error.h"

namespace rotor {

namespace {
const char* type_name(const Json& j) {
  if (j.is_null()) return "null";
  if (j.is_bool()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}
}  // namespace

bool Json::as_bool(const std::string& what) const {
  ROTOR_CHECK(is_bool(), "json", what, " must be a boolean, got ", type_name(*this));
  return std::get<bool>(value_);
}
double Json::as_number(const std::string& what) const {
  ROTOR_CHECK(is_number(), "json", what, " must be a number, got ", type_name(*this));
  return std::get<double>(value_);
}
int64_t Json::as_int(const std::string& what) const {
  double v = as_number(what);
  ROTOR_CHECK(std::floor(v) == v && std::abs(v) < 9.0e15, "json", what, " must be an integer, got ", v);
  return int64_t(v);
}
const std::string& Json::as_string(const std::string& what) const {
  ROTOR_CHECK(is_string(), "json", what, " must be a string, got ", type_name(*this));
  return std::get<std::string>(value_);
}
const Json::Array& Json::as_array(const std::string& what) const {
  ROTOR_CHECK(is_array(), "json", what, " must be an array, got ", type_name(*this));
  return std::get<Array>(value_);
}
const Json::Object& Json::as_object(const std::string& what) const {
  ROTOR_CHECK(is_object(), "json", what, " must be an object, got ", type_name(*this));
  return std::get<Object>(value_);
}

const Json* Json::find(const std::string& key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : std::get<Object>(value_))
    if (k == key) return &v;
  return nullptr;
}

void Json::read_optional(const std::string& key, int64_t& out) const {
  if (const Json* v = find(key); v && !v->is_null()) out = v->as_int(key);
}
void Json::read_optional(const std::string& key, double& out) const {
  if (const Json* v = find(key); v && !v->is_null()) out = v->as_number(key);
}
void Json::read_optional(const std::string& key, bool& out) const {
  if (const Json* v = find(key); v && !v->is_null()) out = v->as_bool(key);
}

const Json& Json::at(const std::string& key) const {
  const Json* v = find(key);
  ROTOR_CHECK(v, "json", "missing key '", key, "'");
  return *v;
}

Json& Json::set(const std::string& key, Json value) {
  if (is_null()) value_ = Object{};
  ROTOR_CHECK(is_object(), "json", "set('", key, "') on ", type_name(*this));
  for (auto& [k, v] : std::get<Object>(value_))
    if (k == key) return v = std::move(value);
  std::get<Object>(value_).emplace_back(key, std::move(value));
  return std::get<Object>(value_).back().second;
}

Json& Json::push(Json value) {
  if (is_null()) value_ = Array{};
  ROTOR_CHECK(is_array(), "json", "push on ", type_name(*this));
  std::get<Array>(value_).push_back(std::move(value));
  return std::get<Array>(value_).back();
}

namespace {
void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}
}  // namespace

void Json::dump_to(std::string& out, int indent, int depth) const {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(size_t(indent * d), ' ');
  };
  switch (value_.index()) {
    case 0: out += "null"; break;
    case 1: out += std::get<bool>(value_) ? "true" : "false"; break;
    case 2: {
      double v = std::get<double>(value_);
      char buf[32];
      if (std::floor(v) == v && std::abs(v) < 1e15) std::snprintf(buf, sizeof buf, "%lld", (long long)v);
      else {
        // the shortest form that reads back as the same double
        std::snprintf(buf, sizeof buf, "%.15g", v);
        if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
      }
      out += buf;
      break;
    }
    case 3: dump_string(out, std::get<std::string>(value_)); break;
    case 4: {
      const Array& a = std::get<Array>(value_);
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += indent < 0 ? "," : ", ";
        a[i].dump_to(out, -1, 0);  // arrays stay on one line
      }
      out += ']';
      break;
    }
    case 5: {
      const Object& o = std::get<Object>(value_);
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        dump_string(out, o[i].first);
        out += indent < 0 ? ":" : ": ";
        o[i].second.dump_to(out, indent, depth + 1);
      }
      if (!o.empty()) newline(depth);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

namespace {
struct Parser {
  const std::string& s;
  const std::string& what;
  size_t i = 0;

  [[noreturn]] void fail(const std::string& msg) { ROTOR_FAIL("json", what, ": ", msg, " at offset ", i); }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  bool take(const char* lit) {
    size_t n = std::char_traits<char>::length(lit);
    if (s.compare(i, n, lit) != 0) return false;
    i += n;
    return true;
  }
  Json value(int depth) {
    if (depth > 64) fail("nesting too deep");
    ws();
    if (i >= s.size()) fail("unexpected end");
    char c = s[i];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json(string());
    if (take("true")) return Json(true);
    if (take("false")) return Json(false);
    if (take("null")) return Json();
    return Json(number());
  }
  std::string string() {
    ++i;  // opening quote
    std::string out;
    while (true) {
      if (i >= s.size()) fail("unterminated string");
      char c = s[i++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) fail("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i + 4 > s.size()) fail("bad \\u escape");
          unsigned cp = unsigned(std::stoul(s.substr(i, 4), nullptr, 16));
          i += 4;
          if (cp < 0x80) out += char(cp);
          else if (cp < 0x800) out += char(0xc0 | (cp >> 6)), out += char(0x80 | (cp & 0x3f));
          else out += char(0xe0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3f)), out += char(0x80 | (cp & 0x3f));
          break;
        }
        default: fail("bad escape");
      }
    }
  }
  double number() {
    size_t start = i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    while (i < s.size() && (std::isdigit((unsigned char)s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                            s[i] == '-' || s[i] == '+'))
      ++i;
    if (start == i) fail("unexpected character");
    try {
      return std::stod(s.substr(start, i - start));
    } catch (...) {
      fail("bad number");
    }
  }
  Json array(int depth) {
    ++i;
    Json out = Json::array();
    ws();
    if (i < s.size() && s[i] == ']') return ++i, out;
    while (true) {
      out.push(value(depth + 1));
      ws();
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == ']') return ++i, out;
      fail("expected ',' or ']'");
    }
  }
  Json object(int depth) {
    ++i;
    Json out = Json::object();
    ws();
    if (i < s.size() && s[i] == '}') return ++i, out;
    while (true) {
      ws();
      if (i >= s.size() || s[i] != '"') fail("expected a key");
      std::string key = string();
      ws();
      if (i >= s.size() || s[i] != ':') fail("expected ':'");
      ++i;
      out.set(key, value(depth + 1));
      ws();
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == '}') return ++i, out;
      fail("expected ',' or '}'");
    }
  }
};
}  // namespace

Json Json::parse(const std::string& text, const std::string& what) {
  Parser p{text, what};
  Json v = p.value(0);
  p.ws();
  if (p.i != text.size()) p.fail("trailing characters");
  return v;
}

}  // namespace rotor
