#include "rotor/core/parallel.h"

#include <memory>

#include <tbb/global_control.h>

namespace rotor {
namespace {
std::unique_ptr<tbb::global_control>& thread_limit() {
  static std::unique_ptr<tbb::global_control> control;
  return control;
}
}  // namespace

void set_num_threads(int n) {
  thread_limit().reset();
  if (n > 0)
    thread_limit() = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
}

int num_threads() {
  return int(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
}

}  // namespace rotor
