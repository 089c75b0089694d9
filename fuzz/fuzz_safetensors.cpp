// libFuzzer target: safetensors_from_bytes on arbitrary bytes. Anything but a rotor::Error (an
// uncaught exception, a sanitizer report, a crash) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rotor/core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rotor::safetensors_from_bytes(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const rotor::Error&) {
  }
  return 0;
}
