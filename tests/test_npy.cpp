// .npy files: round trips of every dtype and rank, files written here byte by byte the way
// numpy.save writes them, every malformed case as a rotor::Error with a clear message, and the
// atomic save (replace or leave untouched, never a partial file).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "rotor/core/npy.h"
#include "core_test_util.h"

using namespace rotor;
using namespace testutil;
namespace fs = std::filesystem;

namespace {

// What numpy.lib.format writes: magic, version, little-endian header length, then the dict
// repr padded with spaces and one '\n' so that the data starts at a multiple of 64
// (_wrap_header: padlen = 64 - (prefix + len(dict) + 1) % 64, between 1 and 64).
std::string wrap_header(const std::string& dict, const std::string& data, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  const size_t pad = 64 - (prefix + dict.size() + 1) % 64;
  std::string header = dict + std::string(pad, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += char(major);
  out += char(0);
  const size_t len = header.size();
  out += char(len & 0xff);
  out += char(len >> 8 & 0xff);
  if (major != 1) {
    out += char(len >> 16 & 0xff);
    out += char(len >> 24 & 0xff);
  }
  return out + header + data;
}

std::string numpy_file(const std::string& descr, const std::string& shape_repr, const std::string& data,
                       bool fortran = false, int major = 1) {
  return wrap_header("{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                         ", 'shape': " + shape_repr + ", }",
                     data, major);
}

// Python's repr of a shape tuple.
std::string shape_repr(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + (s.size() == 1 ? ",)" : ")");
}

template <class T>
std::string raw_bytes(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// A fresh directory under the system temp dir, removed at the end of the test.

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace

TEST_CASE("npy round trip: every dtype, 0-d, empty, 4-D and strided tensors") {
  Generator g(801);
  TempDir dir;
  int n = 0;
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64, DType::Bool})
    for (Shape s : {Shape{}, Shape{0}, Shape{3, 0, 2}, Shape{7}, Shape{2, 3, 4, 5}, Shape{1, 1}})
      for (Layout l : {Layout::Contiguous, Layout::Permuted, Layout::Stepped}) {
        Tensor x = make(s, dt, l, g, -1e6, 1e6);
        Tensor y = npy_from_bytes(npy_to_bytes(x));
        CHECK(y.dtype() == dt);
        REQUIRE(y.shape() == s);
        check_values(y, values(x), Tol{}, "bytes round trip " + shape_str(s));
        const fs::path p = dir.path / (std::to_string(n++) + ".npy");
        save_npy(p.string(), x);
        Tensor z = load_npy(p.string());
        CHECK(z.dtype() == dt);
        REQUIRE(z.shape() == s);
        check_values(z, values(x), Tol{}, "file round trip " + shape_str(s));
      }
  // Special values keep their bits.
  Tensor sp = from_vector<double>({-0.0, std::numeric_limits<double>::infinity(), std::nan(""), 5e-324});
  CHECK(same_bits(npy_from_bytes(npy_to_bytes(sp)), sp));
}

TEST_CASE("npy files written like numpy.save load, and rotor writes the same bytes") {
  const std::vector<float> f{1.5f, -2.25f, 3e-8f, 4e30f, 0.0f, -7.0f};
  const std::vector<double> d{1.0 / 3, -2.5, 1e300};
  const std::vector<int64_t> i{-(int64_t(1) << 62), 0, 1, 42};
  const std::vector<bool> b{true, false, false, true, true, false};
  const std::string bb = std::string{char(1), char(0), char(0), char(1), char(1), char(0)};

  std::string nf = numpy_file("<f4", "(2, 3)", raw_bytes(f));
  Tensor tf = npy_from_bytes(nf);
  CHECK(tf.shape() == Shape{2, 3});
  CHECK(tf.to_vector<float>() == f);
  CHECK(npy_to_bytes(tf) == nf);

  std::string nd = numpy_file("<f8", "(3,)", raw_bytes(d));
  CHECK(npy_from_bytes(nd).to_vector<double>() == d);
  CHECK(npy_to_bytes(npy_from_bytes(nd)) == nd);

  std::string ni = numpy_file("<i8", "(2, 1, 2, 1)", raw_bytes(i));
  CHECK(npy_from_bytes(ni).shape() == Shape{2, 1, 2, 1});
  CHECK(npy_from_bytes(ni).to_vector<int64_t>() == i);
  CHECK(npy_to_bytes(npy_from_bytes(ni)) == ni);

  std::string nb = numpy_file("|b1", "(6,)", bb);
  CHECK(npy_from_bytes(nb).to_vector<bool>() == b);
  CHECK(npy_to_bytes(npy_from_bytes(nb)) == nb);

  // NumPy reads any nonzero byte of a bool array as True; so must rotor (a C++ bool holding 2
  // would compare unequal to true).
  Tensor odd = npy_from_bytes(numpy_file("|b1", "(4,)", std::string{char(0), char(2), char(255), char(1)}));
  CHECK(eq(odd, full({4}, 1, DType::Bool)).to_vector<bool>() == std::vector<bool>{false, true, true, true});
  CHECK(logical_not(odd).to_vector<bool>() == std::vector<bool>{true, false, false, false});

  std::string n0 = numpy_file("<f8", "()", raw_bytes(std::vector<double>{2.5}));
  CHECK(npy_from_bytes(n0).dim() == 0);
  CHECK(npy_from_bytes(n0).item() == 2.5);
  CHECK(npy_to_bytes(npy_from_bytes(n0)) == n0);

  std::string ne = numpy_file("<f4", "(0, 4)", "");
  CHECK(npy_from_bytes(ne).shape() == Shape{0, 4});
  CHECK(npy_to_bytes(npy_from_bytes(ne)) == ne);

  // Version 2.0 and 3.0 headers (4-byte length) load the same way.
  CHECK(npy_from_bytes(numpy_file("<f4", "(2, 3)", raw_bytes(f), false, 2)).to_vector<float>() == f);
  CHECK(npy_from_bytes(numpy_file("<f4", "(2, 3)", raw_bytes(f), false, 3)).to_vector<float>() == f);

  // When magic + length + dict + '\n' already fill 128 bytes numpy still pads a full 64 spaces.
  // Twenty 1s and a 10 put the header there: 10 + (53 + 64) + 1 = 128.
  Shape aligned(20, 1);
  aligned.push_back(10);
  std::vector<float> ten(10);
  for (size_t k = 0; k < ten.size(); ++k) ten[k] = float(k) - 4.5f;
  std::string file = numpy_file("<f4", shape_repr(aligned), raw_bytes(ten));
  CHECK(file.size() == 192 + 40);
  Tensor t = npy_from_bytes(file);
  CHECK(t.shape() == aligned);
  CHECK(t.to_vector<float>() == ten);
  CHECK(npy_to_bytes(t) == file);
}

TEST_CASE("malformed npy files raise rotor::Error naming the problem") {
  const std::string f4 = raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6});
  const std::string good = numpy_file("<f4", "(2, 3)", f4);
  struct Case {
    const char* name;
    std::string bytes;
    std::string expect;
  };
  std::string bad_magic = good;
  bad_magic[3] = 'X';
  std::string bad_version = good;
  bad_version[6] = char(4);
  std::string short_len = good.substr(0, 9);
  std::string huge_len = good;
  huge_len[8] = char(0xff);
  huge_len[9] = char(0x7f);
  const Case cases[] = {
      {"bad magic", bad_magic, "bad magic"},
      {"not npy at all", "PK\x03\x04 a zip file", "bad magic"},
      {"empty file", "", "bad magic"},
      {"unsupported version", bad_version, "version 4"},
      {"half-precision dtype", numpy_file("<f2", "(2, 3)", f4), "unsupported dtype '<f2'"},
      {"big-endian dtype", numpy_file(">f8", "(3,)", f4), "unsupported dtype '>f8'"},
      {"int32 dtype", numpy_file("<i4", "(6,)", f4), "unsupported dtype '<i4'"},
      {"Fortran order", numpy_file("<f4", "(2, 3)", f4, true), "Fortran"},
      {"header cut inside the length", short_len, "truncated header"},
      {"header cut short", good.substr(0, 40), "truncated header"},
      {"header longer than the file", huge_len, "truncated header"},
      {"data cut short", good.substr(0, good.size() - 1), "truncated data"},
      {"no data", numpy_file("<f8", "(1,)", ""), "truncated data"},
      {"shape not a tuple", numpy_file("<f4", "[2, 3]", f4), "malformed shape"},
      {"negative dim", numpy_file("<f4", "(-6,)", f4), "malformed shape"},
      {"letter in shape", numpy_file("<f4", "(2, x)", f4), "malformed shape"},
      {"missing comma", numpy_file("<f4", "(2 3)", f4), "malformed shape"},
      {"double comma", numpy_file("<f4", "(2,, 3)", f4), "malformed shape"},
      {"leading comma", numpy_file("<f4", "(, 6)", f4), "malformed shape"},
      {"unclosed shape", numpy_file("<f4", "(2, 3", f4), "malformed shape"},
      // 2^32 * 2^32 wraps to 0 in int64: it must not pass as an empty array.
      {"shape overflowing int64", numpy_file("<f4", "(4294967296, 4294967296)", f4), "truncated data"},
      {"missing shape key", wrap_header("{'descr': '<f4', 'fortran_order': False, }", f4), "no 'shape'"},
  };
  for (const Case& c : cases) {
    std::string msg = error_of([&] { npy_from_bytes(c.bytes, "case.npy"); });
    CHECK_MESSAGE(contains(msg, "[load_npy]"), std::string(c.name), ": ", msg);
    CHECK_MESSAGE(contains(msg, c.expect), std::string(c.name), ": ", msg);
    CHECK_MESSAGE(contains(msg, "case.npy"), std::string(c.name), ": ", msg);
  }
  // The loader names the file it was given.
  std::string msg = error_of([] { load_npy("/nonexistent/dir/x.npy"); });
  CHECK(contains(msg, "[load_npy]"));
  CHECK(contains(msg, "/nonexistent/dir/x.npy"));
}

TEST_CASE("save_npy replaces a file atomically and leaves nothing behind on failure") {
  TempDir dir;
  const fs::path p = dir.path / "w.npy";
  save_npy(p.string(), from_vector<float>({1, 2, 3}));
  save_npy(p.string(), from_vector<double>({4, 5}, {2, 1}));
  Tensor back = load_npy(p.string());
  CHECK(back.dtype() == DType::Float64);
  CHECK(back.shape() == Shape{2, 1});
  CHECK(back.to_vector<double>() == std::vector<double>{4, 5});
  CHECK(dir.entries() == std::vector<std::string>{"w.npy"});  // no temporary left

  // Into a directory that does not exist: an error naming the op, and no file anywhere.
  const fs::path missing = dir.path / "no_such_dir" / "x.npy";
  std::string msg = error_of([&] { save_npy(missing.string(), ones({2})); });
  CHECK(contains(msg, "[save_npy]"));
  CHECK(contains(msg, "no_such_dir"));
  CHECK_FALSE(fs::exists(missing.parent_path()));
  CHECK(dir.entries() == std::vector<std::string>{"w.npy"});

  // Over a path that is a directory: the rename fails, the directory and its neighbours stay.
  fs::create_directory(dir.path / "sub");
  write_file(dir.path / "sub" / "keep.txt", "x");
  msg = error_of([&] { save_npy((dir.path / "sub").string(), ones({2})); });
  CHECK(contains(msg, "[save_npy]"));
  CHECK(fs::is_directory(dir.path / "sub"));
  CHECK(dir.entries() == std::vector<std::string>{"sub", "w.npy"});
  CHECK(load_npy(p.string()).to_vector<double>() == std::vector<double>{4, 5});  // old file intact

  CHECK(contains(error_of([&] { save_npy(p.string(), Tensor()); }), "[save_npy]"));
}
