// Reductions (sum, mean, max, min) and argmax over arbitrary axes.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln::kernels {

enum class ReduceKind { kSum, kMean, kMax, kMin };

// Below this many input elements reductions run single-threaded; above it, the loop is
// split among OpenMP threads. oneDNN's reduction primitive is not used: in oneDNN 2.6 on
// this AVX2 CPU it ran 1.5x (innermost axis) to 60x (outer axes) slower than these loops
// single-threaded (e.g. sum over axis 0 of [2048, 2048]: 227 ms vs 2.6 ms), and it has
// no bfloat16 implementation here.
constexpr int64_t kReduceLoopThreshold = 32768;

// Reduces x (x_shape, dtype) over the axes where reduce[i] is true into out, which holds
// x's shape with 1 on reduced axes, same dtype. Supports float32, bfloat16 (accumulated in
// float32), float64, int32 and int64 (sum, max, min). Empty reductions give 0 (sum), NaN (mean)
// and -inf/+inf (max/min; lowest/highest for ints).
void reduce(ReduceKind kind, DType dtype, const void *x, const Shape &x_shape,
            const std::vector<bool> &reduce, void *out);

// The gradient before a relu over channels-last rows and its bias gradient, in one pass over y:
// dx = dy where y > 0, else alpha * dy (unary_backward's kRelu, bit for bit), and db[c] = the sum of
// dx[r, c] over the rows r, with the bits of reduce(kSum) over the rows of [rows, cols] (the same
// order at every thread count). rows >= 2 and cols >= 2 (a size-1 axis reduces another way).
void relu_grad_column_sum(const float *y, const float *dy, float *dx, float *db, int64_t rows, int64_t cols,
                          float alpha);

// out[o, i] = index of the first maximum along the middle axis of x viewed as [outer, n, inner],
// n >= 1. x: float32, bfloat16, float64, int32 or int64.
void argmax(DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner, int64_t *out);

}  // namespace kiln::kernels
