// File helpers shared by every format rotor writes.
#pragma once
#include <functional>
#include <iosfwd>
#include <string>

namespace rotor::io {

// Writes `bytes` to a temporary file beside `path` (path.tmp<pid>.<n>), fsyncs it, renames it over
// `path` and fsyncs the directory: a reader sees the old file or the new one, never a partial
// write, and after a crash the new file is either complete or absent. Refuses to replace anything
// but a regular file (a symlink, a directory, a device). Temporaries that a killed process left
// beside `path` are removed first. Throws rotor::Error("[op] ...") naming the system's reason on
// failure, leaving any previous file untouched.
void write_atomic(const std::string& path, const char* op, const std::string& bytes);
// The same, with the bytes produced by `write` into a stream.
void write_atomic(const std::string& path, const char* op, const std::function<void(std::ostream&)>& write);

// Error("[op] ...") unless write_atomic(path) can succeed as far as can be told beforehand: the
// directory exists and takes a new file (probed by creating and removing one), and path is
// absent or a regular file. For checking a --save path before hours of work.
void check_writable(const std::string& path, const char* op);

// Removes path.tmp<pid>.<n> files of processes that no longer run.
void remove_orphan_temps(const std::string& path);

// The directory and file name of a path ("." for a bare name).
std::string dir_of(const std::string& path);
std::string base_of(const std::string& path);

// fsyncs a directory, so that renames and removals in it survive a power loss.
void sync_dir(const std::string& dir);

// The whole file, or Error("[op] cannot open ...").
std::string read_all(const std::string& path, const char* op);

// For tests: called with a description at every step of a save where a crash leaves a distinct
// state on disk (after each write, fsync and rename). A hook that throws simulates a crash there.
void set_crash_hook(std::function<void(const std::string& step)> hook);
void crash_point(const std::string& step);

}  // namespace rotor::io
