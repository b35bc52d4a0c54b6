// Floor division and floor modulo (Python's // and %, TF's floordiv / floormod) over same-shaped
// operands; the op broadcasts them first.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

// out[i] = floor(a[i] / b[i]) for i < n; float32, float64, int32 or int64. Integer b must hold no
// zero (the op checks with contains_zero). INT_MIN // -1 wraps to INT_MIN instead of overflowing.
void floordiv(DType dtype, const void *a, const void *b, int64_t n, void *out);
// out[i] = a[i] - floor(a[i] / b[i]) * b[i] with the sign of b (TF's floormod; Python's %).
void floormod(DType dtype, const void *a, const void *b, int64_t n, void *out);

}  // namespace kiln::kernels
