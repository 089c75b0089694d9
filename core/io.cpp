#include "rotor/core/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rotor/core/error.h"

namespace rotor::io {

namespace {
std::function<void(const std::string&)>& hook() {
  static std::function<void(const std::string&)> h;
  return h;
}

const char* kind_of(mode_t m) {
  if (S_ISLNK(m)) return "a symlink";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISFIFO(m)) return "a pipe";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// Error unless path is absent or a regular file (lstat: a symlink is not followed).
void check_replaceable(const std::string& path, const char* op) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  ROTOR_CHECK(S_ISREG(st.st_mode), op, "'", path, "' is not a regular file (", kind_of(st.st_mode),
              "): refusing to replace it");
}

// Writes all of bytes to fd, retrying short writes; false with errno set on failure.
bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= size_t(w);
  }
  return true;
}

// "<base>.tmp<pid>.<n>" -> pid, or 0 when name is not such a temporary of base.
long temp_pid(const std::string& name, const std::string& base) {
  const std::string prefix = base + ".tmp";
  if (name.rfind(prefix, 0) != 0) return 0;
  size_t i = prefix.size(), j = i;
  while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
  if (j == i || j - i > 12 || j >= name.size() || name[j] != '.') return 0;
  size_t k = j + 1;
  while (k < name.size() && std::isdigit(static_cast<unsigned char>(name[k]))) ++k;
  if (k == j + 1 || k != name.size()) return 0;
  return std::stol(name.substr(i, j - i));
}
}  // namespace

void set_crash_hook(std::function<void(const std::string&)> h) { hook() = std::move(h); }
void crash_point(const std::string& step) {
  if (hook()) hook()(step);
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}
std::string base_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void sync_dir(const std::string& dir) {
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void remove_orphan_temps(const std::string& path) {
  const std::string dir = dir_of(path), base = base_of(path);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const long pid = temp_pid(e->d_name, base);
    // kill(pid, 0) fails with ESRCH only when no such process exists.
    if (pid > 0 && pid != long(::getpid()) && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
      ::unlink((dir + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

void write_atomic(const std::string& path, const char* op, const std::string& bytes) {
  ROTOR_CHECK(!path.empty(), op, "empty file name");
  check_replaceable(path, op);
  remove_orphan_temps(path);
  // Unique per process and per call, so concurrent saves never share a temporary file.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ROTOR_CHECK(fd >= 0, op, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    ROTOR_FAIL(op, what, " '", tmp, "' failed: ", std::strerror(err));
  };
  if (!write_all(fd, bytes.data(), bytes.size())) fail("writing");
  try {
    crash_point("wrote " + base_of(tmp));
  } catch (...) {
    ::close(fd);
    throw;  // a crash leaves the temporary behind, as a killed process would
  }
  if (::fsync(fd) != 0) fail("flushing");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ROTOR_FAIL(op, "closing '", tmp, "' failed: ", std::strerror(err));
  }
  crash_point("synced " + base_of(tmp));
  // Checked again just before the rename: the path may have changed while the bytes were written.
  try {
    check_replaceable(path, op);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ROTOR_FAIL(op, "cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
  }
  crash_point("renamed " + base_of(path));
  sync_dir(dir_of(path));  // makes the rename itself durable
}

void write_atomic(const std::string& path, const char* op, const std::function<void(std::ostream&)>& write) {
  std::ostringstream out;
  write(out);
  write_atomic(path, op, out.str());
}

void check_writable(const std::string& path, const char* op) {
  ROTOR_CHECK(!path.empty(), op, "empty file name");
  check_replaceable(path, op);
  const std::string dir = dir_of(path);
  struct stat st;
  ROTOR_CHECK(::stat(dir.c_str(), &st) == 0, op, "cannot save to '", path, "': directory '", dir, "': ",
              std::strerror(errno));
  ROTOR_CHECK(S_ISDIR(st.st_mode), op, "cannot save to '", path, "': '", dir, "' is not a directory");
  const std::string probe = path + ".tmp" + std::to_string(::getpid()) + ".probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ROTOR_CHECK(fd >= 0, op, "cannot save to '", path, "': cannot create a file in '", dir, "': ", std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string read_all(const std::string& path, const char* op) {
  struct stat st;
  // A directory would read as empty and a pipe or device might never end.
  if (::stat(path.c_str(), &st) == 0)
    ROTOR_CHECK(S_ISREG(st.st_mode), op, "cannot read '", path, "': ", kind_of(st.st_mode), ", not a regular file");
  std::ifstream in(path, std::ios::binary);
  ROTOR_CHECK(in.good(), op, "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  ROTOR_CHECK(!in.bad(), op, "reading '", path, "' failed: ", std::strerror(errno));
  return buf.str();
}

}  // namespace rotor::io
