// Reductions (sum, mean, max, min) and argmax over arbitrary axes.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace kiln::kernels {

enum class ReduceKind { kSum, kMean, kMax, kMin };

// Below this many input elements reductions run single-threaded; above it, the loop is
// split among OpenMP threads. oneDNN's reduction primitive is not used: in oneDNN 2.6 on
// this AVX2 CPU it ran 1.5x (innermost axis) to 60x (outer axes) slower than these loops
// single-threaded (e.g. sum over axis 0 of [2048, 2048]: 227 ms vs 2.6 ms), and it has
// no bfloat16 implementation here.
constexpr int64_t kReduceLoopThreshold = 32768;

// Reduces x over the axes where reduce[i] is true into out, which is preallocated with
// x's shape except 1 on reduced axes (element count is all that matters), same dtype.
// Supports float32, bfloat16 (accumulated in float32), int32 and int64 (sum, max, min).
// Empty reductions give 0 (sum), NaN (mean) and -inf/+inf (max/min; lowest/highest for ints).
void reduce(ReduceKind kind, const Tensor &x, const std::vector<bool> &reduce, const Tensor &out);

// out (int64, x's shape without `axis`) = index of the first maximum along axis.
// x: float32, bfloat16, int32 or int64.
void argmax(const Tensor &x, int axis, const Tensor &out);

}  // namespace kiln::kernels
