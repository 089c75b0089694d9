#include "core/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace rotor::io {

void write_atomic(const std::string& path, const char* op, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
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
}

std::string read_all(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  ROTOR_CHECK(in.good(), op, "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace rotor::io
