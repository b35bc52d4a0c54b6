// Floor division and floor modulo (Python's // and %, TF's floordiv / floormod) over same-shaped
// operands; the op broadcasts them first.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kiln::kernels {

// out = floor(a / b) elementwise; float32, int32 or int64. Integer b must hold no zero (the op
// checks). INT_MIN // -1 wraps to INT_MIN instead of overflowing.
void floordiv(const Tensor &a, const Tensor &b, const Tensor &out);
// out = a - floor(a / b) * b with the sign of b (TF's floormod; Python's %); same dtypes.
void floormod(const Tensor &a, const Tensor &b, const Tensor &out);

// True when an integer tensor holds a zero.
bool has_zero(const Tensor &t);

}  // namespace kiln::kernels
