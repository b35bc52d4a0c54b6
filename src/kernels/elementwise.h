// Elementwise kernels: binary (NumPy broadcasting), unary, cast and select.
//
// Work below kElementwiseLargeThreshold elements runs single-threaded in plain
// loops that allocate nothing: oneDNN costs microseconds per call even for one
// element. Larger work runs the same loops split among OpenMP threads, except
// float32 add/sub/mul/div, which go to cached oneDNN binary primitives (IEEE
// arithmetic, so the same bits as the loops). Float32 unary ops use kiln's own
// vector loops (kernels/simd.h) at every size: oneDNN's eltwise approximations
// lose NaN, denormals and precision.
//
// Bool tensors are stored one byte per element holding 0 or 1.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln::kernels {

constexpr int64_t kElementwiseLargeThreshold = 32768;

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,  // integers: truncating; the caller rejects x / 0 (see integer_divisor_has_zero)
  kMaximum,
  kMinimum,
  kPow,  // float32 only
  // Comparisons and logical ops write bool.
  kEqual,
  kNotEqual,
  kGreater,
  kGreaterEqual,
  kLess,
  kLessEqual,
  kLogicalAnd,  // bool only
  kLogicalOr,
  kLogicalXor,
};

inline bool binary_writes_bool(BinaryOp op) { return op >= BinaryOp::kEqual; }

// out (out_shape) = op(a, b) with a and b broadcast to out_shape. Both inputs have `dtype`;
// out has `dtype`, or bool for comparisons and logical ops. The caller has validated
// dtypes and shapes (out_shape = broadcast_shapes(a_shape, b_shape)).
void binary(BinaryOp op, DType dtype, const void *a, const Shape &a_shape, const void *b,
            const Shape &b_shape, void *out, const Shape &out_shape);

// True when one of the n integers (int32 or int64) at x is 0: integer division checks its
// divisor with this before running.
bool contains_zero(DType dtype, const void *x, int64_t n);

enum class UnaryOp {
  kNeg,     // float32, int32, int64
  kAbs,     // float32, int32, int64
  kSquare,  // float32, int32, int64
  kExp,
  kLog,
  kSqrt,
  kRsqrt,
  kTanh,
  kSigmoid,
  kRelu,  // alpha: negative slope (leaky_relu)
  kGeluErf,
  kGeluTanh,
  kSoftplus,
  kElu,  // alpha: scale of the negative side
  kSwish,
  kClip,  // alpha: lower bound, beta: upper bound
  kLog1p,
  kExpm1,
  kFloor,
  kRound,  // to nearest, ties to even
  kSign,
  kSin,
  kCos,
  kRelu6,
  kSelu,
  kLogicalNot,  // bool only
};

// y = op(x) over n elements of dtype (y has the same dtype). NaN propagates through every
// float op; the same x gives the same bits at any n and thread count.
void unary(UnaryOp op, DType dtype, const void *x, void *y, int64_t n, float alpha = 0.0f, float beta = 0.0f);

// dx = dy * op'(x) over n float32 elements, for op in {kRelu (with alpha), kGeluErf, kGeluTanh}.
void unary_backward(UnaryOp op, const float *x, const float *dy, float *dx, int64_t n, float alpha = 0.0f);

// y = x converted to `to`. float -> integer saturates to the target's range and maps NaN
// to 0; integer -> narrower integer wraps; anything -> bool is (x != 0); float32 ->
// bfloat16 rounds to nearest even.
void cast(DType from, const void *x, DType to, void *y, int64_t n);

// out = cond ? x : y, all three broadcast to out_shape; x, y and out have elements of
// elem_size bytes; cond is bool.
void select(const uint8_t *cond, const Shape &cond_shape, const void *x, const Shape &x_shape, const void *y,
            const Shape &y_shape, void *out, const Shape &out_shape, size_t elem_size);

}  // namespace kiln::kernels
