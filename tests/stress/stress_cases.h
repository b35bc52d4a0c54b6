// The stress tests' case table: every op family in src/ops, forward and (where differentiable)
// gradient, each case small but above the size where its kernel goes parallel (32768 elements for
// the loops, 16384 for the norms), so the threaded paths and the oneDNN primitives all run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::stress {

struct Case {
  std::string name;
  std::function<std::vector<Tensor>()> run;  // every result is compared bit for bit
};

std::vector<Case> cases();

}  // namespace kiln::stress
