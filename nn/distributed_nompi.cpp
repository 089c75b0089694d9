// The build without MPI: every World is one process.
#include <cstdlib>

#include "rotor/core/error.h"
#include "rotor/nn/distributed_transport.h"

namespace rotor::detail {

bool mpi_built() { return false; }

std::unique_ptr<Transport> mpi_transport(int&, char**&) {
  // Started by mpirun with several ranks, each would train alone and write the same files.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(var); v && std::atoi(v) > 1)
      ROTOR_FAIL("World", "started as one of ", v, " MPI ranks, but rotor was built without MPI ",
                 "(install libopenmpi-dev and configure with meson -Dmpi=enabled)");
  return nullptr;
}

}  // namespace rotor::detail
