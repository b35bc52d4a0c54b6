// softmax and log_softmax along one axis.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kiln::kernels {

// Below this many elements softmax runs single-threaded; above it the same loops are
// split among OpenMP threads (by rows, or by column blocks for an outer axis).
constexpr int64_t kSoftmaxLoopThreshold = 32768;

// out (preallocated, x's shape, float32) = softmax or log_softmax of float32 x along axis.
void softmax(const Tensor &x, int axis, bool log, const Tensor &out);

}  // namespace kiln::kernels
