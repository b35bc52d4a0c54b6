// Batched matrix multiplication: oneDNN's matmul primitive for float32 and bfloat16, kiln's own
// loops for float64, int32 and int64 (oneDNN 2.6 has no CPU matmul for them).
#pragma once

#include <optional>

#include "core/dtype.h"
#include "core/shape.h"
#include "kernels/elementwise.h"
#include "kernels/gemv.h"

namespace kiln {
class Storage;
}

namespace kiln::kernels {

// out = op(a) · op(b) with op a transpose of the last two dims when the flag is set. A float32
// product of at most kGemvMaxRows rows (after folding a's batch into its rows, b unbatched, no
// transpose) runs kiln's gemv kernel (kernels/gemv.h), the rest oneDNN's matmul.
// a: [..., M, K] ([..., K, M] when transpose_a); b: [..., K, N] ([..., N, K] when transpose_b);
// out preallocated [batch..., M, N], its batch dims the broadcast of a's and b's (left-padded with 1s).
// a, b and out share one dtype: float32, bfloat16, float64, int32 or int64 (integers wrap on
// overflow). Shapes are validated by the op.
void matmul(bool transpose_a, bool transpose_b, DType dtype, const void *a, const Shape &a_shape,
            const void *b, const Shape &b_shape, void *out, const Shape &out_shape);

// Where dense's w lives, for the memo of packed weights (kernels/gemv.h).
struct DenseWeightSource {
  // w's storage: a product of at most kGemvMaxRows rows reads w packed, memoised by the storage's
  // id and version (an unversioned, adopted storage is read in place). Null: read in place.
  Storage *storage = nullptr;
  // Pack w in this format (an inference opt-in, kernels/gemv.h: bfloat16 differs from the float32
  // product by about 2^-9 relative, int8 by its quantization). Only with a versioned storage;
  // otherwise the float32 product runs.
  GemvWeights weights = GemvWeights::kFloat32;
};

// A Dense layer's forward pass: y = act(x · w + bias), with the bits of matmul, then binary add
// of the bias, then unary(act) into a new buffer, at every size and thread count (but see
// DenseWeightSource::weights). Products of at most kGemvMaxRows rows run kiln's gemv kernel, as
// matmul's do.
// x: [..., K] (rank >= 2, row-major), w: [K, N], bias: [N] or null, y and pre: [..., N].
// A product that runs whole takes the bias as the matmul primitive's bias argument (added to the
// finished sum, as an add after it); a tall-K product that runs in pieces adds it after the pieces
// are combined. The activation (act with alpha, as unary(); none: identity) runs in place on y.
// pre, when not null and not y, receives x · w + bias (what some gradients read).
// float32, or bfloat16 computed in float32 and rounded once (to y, and to pre): bf16 of the
// float32 result for the bf16 inputs. Shapes and dtypes are validated by the op.
void dense(std::optional<UnaryOp> act, float alpha, DType dtype, const void *x, const Shape &x_shape,
           const void *w, const Shape &w_shape, const void *bias, void *pre, void *y,
           const DenseWeightSource &source = {});

// Whether oneDNN runs bfloat16 matmul natively on this CPU (false: the f32 fallback runs).
bool matmul_bf16_native();
// Tests only: forces the bfloat16 fallback (convert to f32, f32 primitive, round) even when
// the native primitive exists. Not thread-safe with concurrent matmuls.
void set_matmul_bf16_force_fallback(bool force);

}  // namespace kiln::kernels
