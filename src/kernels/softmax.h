// softmax and log_softmax along one axis.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kiln::kernels {

// Below this many elements softmax runs as a single-threaded, numerically stable loop.
// Above it, softmax over the innermost axis uses oneDNN's softmax_forward /
// logsoftmax_forward primitive; over an outer axis, an OpenMP-parallel loop.
constexpr int64_t kSoftmaxLoopThreshold = 32768;

// out (preallocated, x's shape, float32) = softmax or log_softmax of float32 x along axis.
void softmax(const Tensor &x, int axis, bool log, const Tensor &out);

}  // namespace kiln::kernels
