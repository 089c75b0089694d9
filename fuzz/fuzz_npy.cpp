// libFuzzer target: npy_from_bytes on arbitrary bytes, and a write-read round trip of what loads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rotor/core/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const rotor::Tensor t = rotor::npy_from_bytes(std::string(reinterpret_cast<const char*>(data), size));
    // What loads must write and read back to the same bytes of data.
    const std::string again = rotor::npy_to_bytes(t);
    if (rotor::npy_to_bytes(rotor::npy_from_bytes(again)) != again) std::abort();
  } catch (const rotor::Error&) {
  }
  return 0;
}
