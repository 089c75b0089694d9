// rotor::Error and the two-tier checking convention: public entry points validate their
// arguments with ROTOR_CHECK and throw an Error whose message starts with "[op]"; internal
// invariants use assert.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace rotor {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace rotor

// ROTOR_CHECK(cond, "op", "message parts", ...) throws rotor::Error("[op] message parts...").
#define ROTOR_CHECK(cond, op, ...)                                                     \
  do {                                                                                 \
    if (!(cond)) throw ::rotor::Error(::rotor::detail::concat("[", op, "] ", __VA_ARGS__)); \
  } while (0)

#define ROTOR_FAIL(op, ...) throw ::rotor::Error(::rotor::detail::concat("[", op, "] ", __VA_ARGS__))
