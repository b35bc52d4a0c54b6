// Batched matrix multiplication on oneDNN's matmul primitive.
#pragma once

#include "core/tensor.h"

namespace kiln::kernels {

// out = op(a) · op(b) with op a transpose of the last two dims when the flag is set.
// a: [..., M, K] ([..., K, M] when transpose_a); b: [..., K, N] ([..., N, K] when transpose_b);
// out preallocated [batch..., M, N], its batch dims the broadcast of a's and b's (left-padded with 1s).
// a, b and out share one dtype: float32 or bfloat16. Shapes are validated by the op.
void matmul(const Tensor &a, const Tensor &b, bool transpose_a, bool transpose_b, const Tensor &out);

// Whether oneDNN runs bfloat16 matmul natively on this CPU (false: the f32 fallback runs).
bool matmul_bf16_native();
// Tests only: forces the bfloat16 fallback (convert to f32, f32 primitive, round) even when
// the native primitive exists. Not thread-safe with concurrent matmuls.
void set_matmul_bf16_force_fallback(bool force);

}  // namespace kiln::kernels
