// File helpers shared by every format rotor writes.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace rotor::io {

// Writes a file through `write` into a temporary file beside `path`, flushes it to disk, then
// renames it over `path`: a reader sees the old file or the new one, never a partial write.
// Throws rotor::Error("[op] ...") on failure, leaving any previous file untouched.
void write_atomic(const std::string& path, const char* op, const std::function<void(std::ostream&)>& write);

// The whole file, or Error("[op] cannot open ...").
std::string read_all(const std::string& path, const char* op);

}  // namespace rotor::io
