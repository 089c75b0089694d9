// A JSON value for model configs, checkpoint metadata and safetensors headers. Reading and
// writing are nlohmann-json's (strict RFC 8259: the whole text, UTF-8, no comments, no trailing
// commas; core/json.cpp adds: no duplicate keys, no non-finite numbers, nesting depth <= 64).
// This facade stays because it keeps nlohmann's heavy header out of every file that includes a
// config, and because its typed reads throw rotor::Error naming the field ("[json] num_heads
// must be an integer, got 2.5"). Objects keep their insertion order so written files are stable.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace rotor {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : value_(b) {}
  Json(int v) : value_(int64_t(v)) {}
  Json(int64_t v) : value_(v) {}
  Json(double v) : value_(v) {}
  Json(const char* s) : value_(std::string(s)) {}
  Json(std::string s) : value_(std::move(s)) {}
  Json(Array a) : value_(std::move(a)) {}
  Json(Object o) : value_(std::move(o)) {}
  static Json object() { return Json(Object{}); }
  static Json array() { return Json(Array{}); }

  bool is_null() const { return value_.index() == 0; }
  bool is_bool() const { return value_.index() == 1; }
  bool is_number() const { return value_.index() == 2 || value_.index() == 3; }
  bool is_string() const { return value_.index() == 4; }
  bool is_array() const { return value_.index() == 5; }
  bool is_object() const { return value_.index() == 6; }

  // Typed reads; a wrong type is a rotor::Error naming `what`.
  bool as_bool(const std::string& what = "value") const;
  double as_number(const std::string& what = "value") const;
  int64_t as_int(const std::string& what = "value") const;  // integral, |v| < 2^53 when written as a float
  const std::string& as_string(const std::string& what = "value") const;
  const Array& as_array(const std::string& what = "value") const;
  const Object& as_object(const std::string& what = "value") const;

  // Object access: find returns nullptr when absent; set replaces or appends.
  const Json* find(const std::string& key) const;
  const Json& at(const std::string& key) const;  // Error when absent
  // Optional fields of a config: out is set from member `key` when it is present and not null,
  // left as it is otherwise (a wrong type is an Error naming the key).
  void read_optional(const std::string& key, int64_t& out) const;
  void read_optional(const std::string& key, double& out) const;
  void read_optional(const std::string& key, bool& out) const;
  Json& set(const std::string& key, Json value);
  // Array append.
  Json& push(Json value);

  // indent < 0: compact. A non-finite number is an Error: JSON has no spelling for it.
  std::string dump(int indent = -1) const;
  // Error("[json] <what>: ...") on anything but one strict JSON value.
  static Json parse(const std::string& text, const std::string& what = "JSON");

 private:
  friend class JsonCodec;  // core/json.cpp: the bridge to nlohmann-json
  std::variant<std::monostate, bool, int64_t, double, std::string, Array, Object> value_;
};

// The compact dump.
std::ostream& operator<<(std::ostream& out, const Json& j);

}  // namespace rotor
