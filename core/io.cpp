#include "rotor/core/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rotor/core/error.h"

namespace rotor::io {

void write_atomic(const std::string& path, const char* op, const std::function<void(std::ostream&)>& write) {
  // Unique per process and per call, so concurrent saves never share a temporary file.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    ROTOR_CHECK(out.good(), op, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
    try {
      write(out);
    } catch (...) {
      out.close();
      std::remove(tmp.c_str());
      throw;
    }
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(tmp.c_str());
      ROTOR_FAIL(op, "writing '", tmp, "' failed");
    }
  }
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    ROTOR_FAIL(op, "cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
  }
  // Make the rename itself durable.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_all(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  ROTOR_CHECK(in.good(), op, "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace rotor::io
