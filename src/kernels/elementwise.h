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
  kPow,  // floating dtypes only
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
// out has `dtype`, or bool for comparisons and logical ops. float64 computes in double;
// bfloat16 computes each element in float32 and rounds once (as TensorFlow's CPU kernels). The caller has
// validated dtypes and shapes (out_shape = broadcast_shapes(a_shape, b_shape)). out may be a
// itself when a_shape == out_shape and out has a's dtype: each element is read before it is written.
void binary(BinaryOp op, DType dtype, const void *a, const Shape &a_shape, const void *b,
            const Shape &b_shape, void *out, const Shape &out_shape);

// True when one of the n integers (int32 or int64) at x is 0: integer division checks its
// divisor with this before running.
bool contains_zero(DType dtype, const void *x, int64_t n);
// True when one of the n integers (int32 or int64) at x is negative: integer pow checks its
// exponent with this before running.
bool contains_negative(DType dtype, const void *x, int64_t n);

enum class UnaryOp {
  kNeg,     // floating, int32, int64
  kAbs,     // floating, int32, int64
  kSquare,  // floating, int32, int64
  kExp,
  kLog,
  kSqrt,
  kRsqrt,
  kTanh,
  kSigmoid,
  kRelu,  // alpha: negative slope (leaky_relu); int32, int64 with alpha 0
  kGeluErf,
  kGeluTanh,
  kSoftplus,
  kElu,  // alpha: scale of the negative side
  kSwish,
  kClip,  // alpha: lower bound, beta: upper bound; int32, int64 with whole bounds in range
  kLog1p,
  kExpm1,
  kFloor,
  kRound,  // to nearest, ties to even; int32, int64 (the identity)
  kSign,   // floating, int32, int64
  kSin,
  kCos,
  kRelu6,  // floating, int32, int64
  kSelu,
  kLogicalNot,  // bool only
};

// The constants of the activation formulas, shared by every dtype's kernel and the gradient
// rules (float32 code rounds each once, to the float32 its literal would give).
namespace activation {
constexpr double kInvSqrt2Pi = 0.39894228040143268;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286536;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;               // the tanh form of gelu's cubic term
// tf.nn.selu's constants.
constexpr double kSeluAlpha = 1.6732632423543772848;
constexpr double kSeluScale = 1.0507009873554804934;
}  // namespace activation

// y = op(x) over n elements of dtype (y has the same dtype). Every op but kLogicalNot takes
// float32, bfloat16 (computed in float32, rounded once) and float64 (computed in double).
// NaN propagates through every float op; the same x gives the same bits at any n and
// thread count.
void unary(UnaryOp op, DType dtype, const void *x, void *y, int64_t n, float alpha = 0.0f, float beta = 0.0f);

// dx = dy * op'(x) over n elements of a floating dtype (x, dy and dx share it), for op in
// {kRelu (with alpha), kGeluErf, kGeluTanh}. bfloat16 computes in float32 and rounds once.
void unary_backward(UnaryOp op, DType dtype, const void *x, const void *dy, void *dx, int64_t n,
                    float alpha = 0.0f);

// float32 gelu (erf form) in two passes that split its work: the forward also writes
// erfc[i] = erfc(-x[i] / sqrt 2), and the backward reads it instead of evaluating it again.
// y and dx have the bits of unary(kGeluErf) and unary_backward(kGeluErf).
void gelu_erf_saving_erfc(const float *x, float *y, float *erfc, int64_t n);
void gelu_erf_backward_from_erfc(const float *x, const float *erfc, const float *dy, float *dx, int64_t n);

// In place over y, n float32 elements of rows of `channels` (channels last): y = op(y + bias[c])
// with bias [channels] (NULL: none) and op (none: the identity), in blocks small enough that the
// activation rereads what the bias add wrote from cache. The bits of kernels::binary's add
// followed by kernels::unary, at every n and thread count (a convolution's epilogue).
void bias_unary_inplace(float *y, int64_t n, const float *bias, int64_t channels, const UnaryOp *op,
                        float alpha);

// y = x converted to `to`. float -> integer saturates to the target's range and maps NaN
// to 0; integer -> narrower integer wraps; anything -> bool is (x != 0); float32 ->
// bfloat16 rounds to nearest even.
void cast(DType from, const void *x, DType to, void *y, int64_t n);

// out = cond ? x : y, all three broadcast to out_shape; x, y and out have elements of
// elem_size bytes; cond is bool.
void select(const uint8_t *cond, const Shape &cond_shape, const void *x, const Shape &x_shape, const void *y,
            const Shape &y_shape, void *out, const Shape &out_shape, size_t elem_size);

}  // namespace kiln::kernels
