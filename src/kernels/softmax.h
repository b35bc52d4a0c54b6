// softmax and log_softmax along one axis.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

// Below this many elements softmax runs single-threaded; above it the same loops are
// split among OpenMP threads (by rows, or by column blocks for an outer axis).
constexpr int64_t kSoftmaxLoopThreshold = 32768;

// out = softmax (log: log_softmax) of x along the middle axis of [outer, n, inner]; x and out
// have `dtype`: float32, float64 (computed in double), or bfloat16 (computed as float32 and
// rounded once, as TF's mixed precision does).
void softmax(bool log, DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner, void *out);

// The gradient of float32 softmax (log: log_softmax) along the last axis of [rows, n], from its
// output y and the incoming gradient dy, in one pass per row: dx = (dy - sum(dy * y)) * y, or
// dx = dy - exp(y) * sum(dy). Each row's sum runs in one fixed order, whatever the thread count.
void softmax_grad(bool log, const float *y, const float *dy, int64_t rows, int64_t n, float *dx);

}  // namespace kiln::kernels
