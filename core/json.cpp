#include "rotor/core/json.h"

#include <cmath>
#include <ostream>
#include <type_traits>
#include <unordered_set>

#include <nlohmann/json.hpp>

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
  if (const int64_t* i = std::get_if<int64_t>(&value_)) return double(*i);
  return std::get<double>(value_);
}
int64_t Json::as_int(const std::string& what) const {
  ROTOR_CHECK(is_number(), "json", what, " must be an integer, got ", type_name(*this));
  if (const int64_t* i = std::get_if<int64_t>(&value_)) return *i;
  // A float spelling ("1e3") is an integer when exact; beyond 2^53 a double is not.
  const double v = std::get<double>(value_);
  ROTOR_CHECK(std::floor(v) == v && std::abs(v) <= 9007199254740992.0, "json", what, " must be an integer, got ", v);
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

using njson = nlohmann::ordered_json;

class JsonCodec {
 public:
  static njson to_nlohmann(const Json& j) {
    return std::visit(
        [](const auto& v) -> njson {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::monostate>) {
            return nullptr;
          } else if constexpr (std::is_same_v<V, double>) {
            ROTOR_CHECK(std::isfinite(v), "json", "cannot write the non-finite number ", v);
            return v;
          } else if constexpr (std::is_same_v<V, Json::Array>) {
            njson a = njson::array();
            for (const Json& e : v) a.push_back(to_nlohmann(e));
            return a;
          } else if constexpr (std::is_same_v<V, Json::Object>) {
            njson o = njson::object();
            for (const auto& [k, e] : v) o[k] = to_nlohmann(e);
            return o;
          } else {
            return v;
          }
        },
        j.value_);
  }
  static void append(Json& object, std::string key, Json value) {
    std::get<Json::Object>(object.value_).emplace_back(std::move(key), std::move(value));
  }
};

std::string Json::dump(int indent) const {
  try {
    return JsonCodec::to_nlohmann(*this).dump(indent < 0 ? -1 : indent, ' ', false, njson::error_handler_t::strict);
  } catch (const njson::type_error& e) {  // a string that is not UTF-8
    throw Error(std::string("[json] cannot write: ") + e.what());
  }
}

std::ostream& operator<<(std::ostream& out, const Json& j) { return out << j.dump(); }

namespace {
// Builds a rotor::Json from nlohmann's SAX events, refusing what strict JSON allows but a
// config or header must not hold: duplicate keys (which value wins is reader-defined), numbers
// out of double range, and nesting deep enough to exhaust the stack when the value is freed.
class Builder {
 public:
  explicit Builder(const std::string& what) : what_(what) {}
  Json result;

  bool null() { return put(Json()); }
  bool boolean(bool b) { return put(Json(b)); }
  bool number_integer(int64_t v) { return put(Json(v)); }
  bool number_unsigned(uint64_t v) { return put(v <= uint64_t(INT64_MAX) ? Json(int64_t(v)) : Json(double(v))); }
  bool number_float(double v, const std::string& text) {
    ROTOR_CHECK(std::isfinite(v), "json", what_, ": number ", text, " is out of range");
    return put(Json(v));
  }
  bool string(std::string& s) { return put(Json(std::move(s))); }
  bool binary(std::vector<uint8_t>&) { ROTOR_FAIL("json", what_, ": binary values are not JSON"); }
  bool start_object(size_t) { return open(Json::object()); }
  bool key(std::string& k) {
    Frame& f = stack_.back();
    ROTOR_CHECK(f.keys.insert(k).second, "json", what_, ": duplicate key '", k, "'");
    f.key = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(size_t) { return open(Json::array()); }
  bool end_array() { return close(); }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 4: ..." without the tag.
    std::string msg = e.what();
    if (size_t tag_end = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && tag_end != std::string::npos)
      msg = msg.substr(tag_end + 2);
    ROTOR_FAIL("json", what_, ": ", msg);
  }

 private:
  static constexpr size_t kMaxDepth = 64;
  struct Frame {
    Json value;
    std::string key;
    std::unordered_set<std::string> keys;
  };
  const std::string& what_;
  std::vector<Frame> stack_;

  bool put(Json v) {
    if (stack_.empty()) result = std::move(v);
    else if (Frame& f = stack_.back(); f.value.is_array()) f.value.push(std::move(v));
    else JsonCodec::append(f.value, std::move(f.key), std::move(v));  // keys are unique: no search
    return true;
  }
  bool open(Json container) {
    ROTOR_CHECK(stack_.size() < kMaxDepth, "json", what_, ": nesting deeper than ", kMaxDepth, " levels");
    stack_.push_back({std::move(container), {}, {}});
    return true;
  }
  bool close() {
    Json done = std::move(stack_.back().value);
    stack_.pop_back();
    return put(std::move(done));
  }
};
}  // namespace

Json Json::parse(const std::string& text, const std::string& what) {
  Builder b(what);
  njson::sax_parse(text, &b, njson::input_format_t::json, /*strict=*/true, /*ignore_comments=*/false);
  return std::move(b.result);
}

}  // namespace rotor
