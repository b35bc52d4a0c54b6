// The kiln_communicator handle: one shared reference to a core communicator, whose collectives a
// foreign callback table supplies (libkiln_mpi's over MPI, or the caller's own).
#pragma once

#include <memory>
#include <utility>

#include "train/distribution.h"

struct kiln_communicator {
  explicit kiln_communicator(std::shared_ptr<kiln::train::Communicator> c) : comm(std::move(c)) {}
  std::shared_ptr<kiln::train::Communicator> comm;
};

namespace kiln::capi {

// The communicator behind a handle; NULL gives null (fit without a distribution).
inline std::shared_ptr<train::Communicator> communicator_or_none(const kiln_communicator *c) {
  return c ? c->comm : nullptr;
}

}  // namespace kiln::capi
