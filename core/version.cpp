#include "rotor/version.h"

namespace rotor {
const char* version() { return ROTOR_VERSION; }
}  // namespace rotor
