// The kiln_optimizer handle: one shared reference to a core optimizer (as kiln_layer), so
// compile/fit and checkpoints can take the object a user's handle names.
#pragma once

#include <memory>
#include <utility>

#include "train/optimizer.h"

struct kiln_optimizer {
  explicit kiln_optimizer(std::shared_ptr<kiln::train::Optimizer> o) : optimizer(std::move(o)) {}
  std::shared_ptr<kiln::train::Optimizer> optimizer;
};
