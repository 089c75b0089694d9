// A small JSON value: enough for model configs and safetensors headers. Objects keep their
// insertion order so written files are stable and readable.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
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
  Json(int v) : value_(double(v)) {}
  Json(int64_t v) : value_(double(v)) {}
  Json(double v) : value_(v) {}
  Json(const char* s) : value_(std::string(s)) {}
  Json(std::string s) : value_(std::move(s)) {}
  Json(Array a) : value_(std::move(a)) {}
  Json(Object o) : value_(std::move(o)) {}
  static Json object() { return Json(Object{}); }
  static Json array() { return Json(Array{}); }

  bool is_null() const { return value_.index() == 0; }
  bool is_bool() const { return value_.index() == 1; }
  bool is_number() const { return value_.index() == 2; }
  bool is_string() const { return value_.index() == 3; }
  bool is_array() const { return value_.index() == 4; }
  bool is_object() const { return value_.index() == 5; }

  // Typed reads; a wrong type is a rotor::Error naming `what`.
  bool as_bool(const std::string& what = "value") const;
  double as_number(const std::string& what = "value") const;
  int64_t as_int(const std::string& what = "value") const;  // must be integral
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

  std::string dump(int indent = -1) const;  // indent < 0: compact
  static Json parse(const std::string& text, const std::string& what = "JSON");

 private:
  std::variant<std::monostate, bool, double, std::string, Array, Object> value_;
  void dump_to(std::string& out, int indent, int depth) const;
};

}  // namespace rotor
