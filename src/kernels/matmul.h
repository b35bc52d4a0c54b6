// Batched matrix multiplication: oneDNN's matmul primitive for float32 and bfloat16, kiln's own
// loop for float64 (oneDNN 2.6 has no f64 matmul on CPU).
#pragma once

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln::kernels {

// out = op(a) · op(b) with op a transpose of the last two dims when the flag is set.
// a: [..., M, K] ([..., K, M] when transpose_a); b: [..., K, N] ([..., N, K] when transpose_b);
// out preallocated [batch..., M, N], its batch dims the broadcast of a's and b's (left-padded with 1s).
// a, b and out share one dtype: float32, bfloat16 or float64. Shapes are validated by the op.
void matmul(bool transpose_a, bool transpose_b, DType dtype, const void *a, const Shape &a_shape,
            const void *b, const Shape &b_shape, void *out, const Shape &out_shape);

// Whether oneDNN runs bfloat16 matmul natively on this CPU (false: the f32 fallback runs).
bool matmul_bf16_native();
// Tests only: forces the bfloat16 fallback (convert to f32, f32 primitive, round) even when
// the native primitive exists. Not thread-safe with concurrent matmuls.
void set_matmul_bf16_force_fallback(bool force);

}  // namespace kiln::kernels
