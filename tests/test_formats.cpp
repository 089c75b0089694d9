// Suite "io", part 1: the parsers are strict. JSON follows RFC 8259 to the letter (escapes,
// number grammar) and refuses duplicate keys; .npy headers are read as the Python dict literal
// they are; safetensors headers inherit the JSON rules. Every refusal is a rotor::Error.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "rotor/core/json.h"
#include "rotor/core/npy.h"
#include "rotor/core/safetensors.h"
#include "rotor/nn/checkpoint.h"
#include "core_test_util.h"

using namespace rotor;
using testutil::contains;
using testutil::error_of;

namespace {

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}
// A .npy file from a header dict written by hand (padded like numpy, version 1.0).
std::string npy(const std::string& dict, const std::string& data) {
  std::string h = dict;
  h.append(64 - (10 + h.size() + 1) % 64, ' ');
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  return out + h + data;
}
const std::string kSixFloats(24, '\0');
}  // namespace

TEST_CASE("JSON \\u escapes: exactly four hex digits, surrogates paired, else rotor::Error") {
  CHECK(Json::parse(R"("\u0041")").as_string() == "A");
  CHECK(Json::parse(R"("\u00e9")").as_string() == "\xc3\xa9");
  CHECK(Json::parse(R"("\ud83d\ude00")").as_string() == "\xf0\x9f\x98\x80");  // a surrogate pair, 4 UTF-8 bytes
  for (const char* bad : {R"("\uZZZZ")", R"("\u+041")", R"("\u 041")", R"("\u41zz")", R"("\u-123")", R"("\u12")",
                          R"("\u")", R"("\ud800")", R"("\ude00")", R"("\ud800\u0041")", R"("\x41")", R"("\U0041")"}) {
    INFO(bad);
    CHECK(contains(error_of([&] { Json::parse(bad); }), "[json]"));
  }
  // Raw control characters and ill-formed UTF-8 inside strings.
  for (std::string bad : {std::string("\"a\nb\""), std::string("\"\x01\""), std::string("\"\xff\""),
                          std::string("\"\xc3\""), std::string("\"a\0b\"", 5)}) {
    INFO(bad);
    CHECK(contains(error_of([&] { Json::parse(bad); }), "[json]"));
  }
}

TEST_CASE("JSON numbers follow the grammar, the whole token, and stay finite") {
  for (const char* bad : {"1.2.3", "1e5e5", "1-2", "+1", "01", "1.", ".5", "-", "--1", "1e", "1e+", "0x10",
                          "Infinity", "-Infinity", "NaN", "nan", "1e999", "-1e999", "1_000", "1,5", "١"}) {
    INFO(bad);
    CHECK(contains(error_of([&] { Json::parse(bad); }), "[json]"));
    CHECK(contains(error_of([&] { Json::parse(std::string("{\"norm_eps\": ") + bad + "}"); }), "[json]"));
  }
  CHECK(Json::parse("-0").as_number() == 0.0);
  CHECK(Json::parse("1e5").as_int() == 100000);
  CHECK(Json::parse("1E+5").as_number() == 1e5);
  CHECK(Json::parse("-1.5e-3").as_number() == -1.5e-3);
  CHECK(Json::parse("9007199254740993").as_int() == 9007199254740993LL);  // integers stay exact
  CHECK(contains(error_of([] { Json::parse("2.5").as_int("num_heads"); }), "num_heads must be an integer"));
  CHECK(contains(error_of([] { Json::parse("1e300").as_int("n"); }), "must be an integer"));
}

TEST_CASE("JSON objects with a duplicate key are refused, at any depth") {
  CHECK(contains(error_of([] { Json::parse(R"({"a": 1, "a": 2})"); }), "duplicate key 'a'"));
  CHECK(contains(error_of([] { Json::parse(R"({"x": {"b": 1, "c": 2, "b": 1}})"); }), "duplicate key 'b'"));
  CHECK(contains(error_of([] { Json::parse(R"([{"k": 1}, {"k": 2, "k": 3}])"); }), "duplicate key 'k'"));
  CHECK(Json::parse(R"([{"k": 1}, {"k": 2}])").as_array().size() == 2);  // the same key in two objects is fine
}

TEST_CASE("JSON structure: one value, no comments, no trailing commas, bounded depth") {
  for (const char* bad : {"", " ", "{", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a: 1}", "{'a': 1}",
                          "1 2", "[1] x", "// c\n1", "/* c */ 1", "tru", "nul", "[", "]", "{\"a\":}"}) {
    INFO(bad);
    CHECK(contains(error_of([&] { Json::parse(bad); }), "[json]"));
  }
  CHECK(contains(error_of([] { Json::parse(std::string(65, '[') + std::string(65, ']')); }), "nesting deeper"));
  CHECK(Json::parse(std::string(64, '[') + std::string(64, ']')).is_array());
  CHECK(contains(error_of([] { Json::parse("{", "config"); }), "config"));  // the message names what was parsed
}

TEST_CASE("JSON writes what it reads back, refuses non-finite numbers, and prints with <<") {
  Json j = Json::object();
  j.set("s", "tab\there \"quoted\" \x01 \xc3\xa9");
  j.set("i", int64_t(1) << 60);
  j.set("f", 0.1);
  j.set("e", 1e-6);
  j.set("whole", 500000.0);
  j.set("list", Json::Array{Json(1), Json(true), Json(), Json("x")});
  Json back = Json::parse(j.dump());
  CHECK(back.at("s").as_string() == j.at("s").as_string());
  CHECK(back.at("i").as_int() == int64_t(1) << 60);
  CHECK(back.at("f").as_number() == 0.1);
  CHECK(back.at("e").as_number() == 1e-6);
  CHECK(back.at("whole").as_number() == 500000.0);
  CHECK(back.dump() == j.dump());
  CHECK(Json::parse(j.dump(2)).dump() == j.dump());
  std::ostringstream out;
  out << j;
  CHECK(out.str() == j.dump());
  Json nan_value = Json::object();
  nan_value.set("norm_eps", std::nan(""));
  CHECK(contains(error_of([&] { nan_value.dump(); }), "non-finite"));
  CHECK(contains(error_of([&] { Json(INFINITY).dump(); }), "non-finite"));
}

TEST_CASE("a checkpoint whose config JSON is malformed is a rotor::Error from load_model") {
  testutil::TempDir dir;
  for (const char* config : {R"({"vocab_size": 7, "bad": "\uZZZZ"})", R"({"norm_eps": 1.2.3})",
                             R"({"vocab_size": 7, "vocab_size": 8})"}) {
    INFO(config);
    save_safetensors(dir / "c.safetensors", {{"w", zeros({1})}}, {{"config", config}, {"step", "0"}});
    const std::string msg = error_of([&] { nn::load_model(dir / "c.safetensors"); });
    CHECK(contains(msg, "[load_checkpoint]"));
    CHECK(contains(msg, "bad model config"));
  }
}

TEST_CASE("safetensors headers: numbers are whole JSON tokens, names are unique") {
  const std::string data(8, '\0');
  auto file = [&](const std::string& header) { return u64le(header.size()) + header + data; };
  CHECK(safetensors_from_bytes(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})")).find("a")->numel() == 2);
  for (const char* bad : {R"({"a":{"dtype":"F32","shape":[2-1],"data_offsets":[0,8]}})",
                          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0e0]}})",
                          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,08]}})",
                          R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})",
                          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                          R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})"}) {
    INFO(bad);
    CHECK(contains(error_of([&] { safetensors_from_bytes(file(bad)); }), "[safetensors]"));
  }
}

TEST_CASE(".npy headers are a dict literal with exactly descr, fortran_order and shape, once each") {
  CHECK(npy_from_bytes(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", kSixFloats)).numel() == 6);
  CHECK(npy_from_bytes(npy("{\"descr\": \"<f4\", \"shape\": (2, 3), \"fortran_order\": False}", kSixFloats)).numel() == 6);
  struct Case {
    const char* dict;
    const char* expect;
  };
  const Case cases[] = {
      {"{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", "'descr' appears twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'shape': (3,), }", "'shape' appears twice"},
      {"{'descr': X<f4X, 'fortran_order': False, 'shape': (6,), }", "descr"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (6,), }", "descr"},
      {"{'descr': <f4, 'fortran_order': False, 'shape': (6,), }", "descr"},
      {"{'descr': '<f4'', 'fortran_order': False, 'shape': (6,), }", "header"},
      {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (6,), }", "fortran_order"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", "fortran_order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1, }", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", "header"},
      {"'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", "header"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (6,), }", "header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } trailing", "header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ((6,),), }", "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)x, }", "header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,3), }", "shape"},
      {"{descr: '<f4', 'fortran_order': False, 'shape': (6,), }", "header"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of([&] { npy_from_bytes(npy(c.dict, kSixFloats), "case.npy"); });
    CHECK_MESSAGE(contains(msg, "[load_npy]"), c.dict, ": ", msg);
    CHECK_MESSAGE(contains(msg, c.expect), c.dict, ": ", msg);
  }
}
