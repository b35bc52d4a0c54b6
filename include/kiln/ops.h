/*
 * kiln/ops.h — eager ops: creation, elementwise, linear algebra, reductions, nn, shape.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 */
#ifndef KILN_OPS_H
#define KILN_OPS_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------- tensor creation */

/// Ops below share these rules. Ownership: *out is new, free with kiln_tensor_free; the
/// inputs are only read. Tapes: when a recording tape of the calling thread watches an
/// input, the op is recorded on it. Thread-safety: safe. Errors: KILN_STATUS_INVALID_ARGUMENT
/// naming the op, the shapes/dtypes received and what was expected. Sizes: a shape whose
/// non-zero dims multiply to more than 2^62 is INVALID_ARGUMENT (even when another dim is 0);
/// a result of more than 2^62 bytes, or more than memory holds, is KILN_STATUS_RESOURCE_EXHAUSTED.

/// A tensor of zeros.
KILN_API kiln_status *kiln_zeros(kiln_tensor **out, const int64_t *dims, size_t rank, kiln_dtype dtype);
/// A tensor of ones.
KILN_API kiln_status *kiln_ones(kiln_tensor **out, const int64_t *dims, size_t rank, kiln_dtype dtype);
/// A tensor filled with `value` (converted to dtype).
KILN_API kiln_status *kiln_fill(kiln_tensor **out, const int64_t *dims, size_t rank, double value,
                                kiln_dtype dtype);
/// [start, start + delta, ...) up to limit (exclusive); float32, float64, int32 or int64. NaN or
/// infinite arguments are INVALID_ARGUMENT.
KILN_API kiln_status *kiln_range(kiln_tensor **out, double start, double limit, double delta,
                                 kiln_dtype dtype);
/// kiln_fill with an exact 64-bit integer value (a double holds integers exactly only up to
/// 2^53); a value the dtype cannot hold is KILN_STATUS_INVALID_ARGUMENT.
KILN_API kiln_status *kiln_fill_int64(kiln_tensor **out, const int64_t *dims, size_t rank, int64_t value,
                                      kiln_dtype dtype);
/// kiln_range over exact 64-bit integers: ceil((limit - start) / delta) elements, counted without
/// overflow; float32, int32 or int64 (values int32 cannot hold: KILN_STATUS_INVALID_ARGUMENT).
KILN_API kiln_status *kiln_range_int64(kiln_tensor **out, int64_t start, int64_t limit, int64_t delta,
                                       kiln_dtype dtype);
/// Uniform float32 values in [minval, maxval). seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_random_uniform(kiln_tensor **out, const int64_t *dims, size_t rank, float minval,
                                          float maxval, int64_t seed);
/// tf.random.uniform with a floating dtype: float32, bfloat16 or float64 values, minval + (maxval -
/// minval) u with u in [0, 1) drawn at the dtype's precision, computed in float32 (float64 for
/// float64) and rounded to the dtype, so [0, 1) stays below 1 while other ranges may round up to
/// maxval, as in TF. float32 gives kiln_random_uniform's values. InvalidArgument for another dtype,
/// bounds that are not finite in the dtype, or minval > maxval. seed < 0: the next op seed of the
/// global sequence. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_random_uniform_float(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                double minval, double maxval, kiln_dtype dtype, int64_t seed);
/// tf.random.uniform with an integer dtype: int32 or int64 values in [minval, maxval), minval +
/// (random bits mod (maxval - minval)) over 32 (int32) or 64 (int64) random bits, as TF draws them.
/// InvalidArgument for another dtype, bounds outside the dtype, or minval >= maxval. seed < 0: the
/// next op seed of the global sequence. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_random_uniform_int(kiln_tensor **out, const int64_t *dims, size_t rank,
                                              int64_t minval, int64_t maxval, kiln_dtype dtype, int64_t seed);
/// tf.random.gamma(shape, alpha, beta): float32 Gamma(alpha) values divided by the rate beta (alpha, beta
/// positive and finite; Marsaglia and Tsang's method in float64, not TF's stream). seed < 0: the next op
/// seed of the global sequence. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_random_gamma(kiln_tensor **out, const int64_t *dims, size_t rank, double alpha,
                                        double beta, int64_t seed);
/// keras.random.beta: float32 Beta(alpha, beta) values (alpha, beta positive and finite), G_a / (G_a + G_b)
/// of two Gamma draws computed through their logarithms (tiny alphas give 0s and 1s, not NaN).
/// seed < 0: the next op seed. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_random_beta(kiln_tensor **out, const int64_t *dims, size_t rank, double alpha,
                                       double beta, int64_t seed);
/// keras.random.shuffle(value, axis) (tf.random.shuffle for axis 0): value's slices along axis (in
/// [-rank, rank)) in a uniformly random order. seed < 0: the next op seed. Ownership: *out is new.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_random_shuffle(kiln_tensor **out, const kiln_tensor *value, int64_t axis,
                                          int64_t seed);
/// Normal float32 values. seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_random_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean,
                                         float stddev, int64_t seed);
/// Normal float32 values re-drawn beyond two standard deviations (TF's truncated_normal).
KILN_API kiln_status *kiln_truncated_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean,
                                            float stddev, int64_t seed);

/* ------------------------------------------------------ elementwise binary */

/// a + b with NumPy broadcasting; float32, bfloat16, float64, int32 or int64, same dtype both
/// sides. bfloat16 computes each element in float32 and rounds once (as TF's CPU kernels).
KILN_API kiln_status *kiln_add(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a - b, broadcasting.
KILN_API kiln_status *kiln_sub(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a * b, broadcasting.
KILN_API kiln_status *kiln_mul(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a / b, broadcasting; integers truncate toward zero (a zero integer divisor is INVALID_ARGUMENT).
KILN_API kiln_status *kiln_div(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// tf.math.truediv (Python's /): int32 and int64 operands divide as float64, uint8 as float32,
/// floating operands as kiln_div. Same dtype both sides; bool is INVALID_ARGUMENT.
KILN_API kiln_status *kiln_truediv(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// max(a, b) elementwise, broadcasting.
KILN_API kiln_status *kiln_maximum(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// min(a, b) elementwise, broadcasting.
KILN_API kiln_status *kiln_minimum(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a ** b elementwise, broadcasting; float32, bfloat16, float64, int32 or int64. Integers multiply
/// (wrapping on overflow, 0 ** 0 = 1); a negative integer exponent is INVALID_ARGUMENT, as TF.
KILN_API kiln_status *kiln_pow(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a == b -> bool, broadcasting.
KILN_API kiln_status *kiln_equal(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a != b -> bool.
KILN_API kiln_status *kiln_not_equal(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a > b -> bool.
KILN_API kiln_status *kiln_greater(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a >= b -> bool.
KILN_API kiln_status *kiln_greater_equal(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a < b -> bool.
KILN_API kiln_status *kiln_less(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a <= b -> bool.
KILN_API kiln_status *kiln_less_equal(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a AND b on bool tensors.
KILN_API kiln_status *kiln_logical_and(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a OR b on bool tensors.
KILN_API kiln_status *kiln_logical_or(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a XOR b on bool tensors.
KILN_API kiln_status *kiln_logical_xor(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);

/* ------------------------------------------------------- elementwise unary */

/// The float ops below take float32, bfloat16 (computed in float32, rounded once) and float64
/// (computed in double): "floating". Gradients keep the dtype.
/// -x.
KILN_API kiln_status *kiln_neg(kiln_tensor **out, const kiln_tensor *x);
/// |x|.
KILN_API kiln_status *kiln_abs(kiln_tensor **out, const kiln_tensor *x);
/// e^x; floating.
KILN_API kiln_status *kiln_exp(kiln_tensor **out, const kiln_tensor *x);
/// Natural logarithm; floating.
KILN_API kiln_status *kiln_log(kiln_tensor **out, const kiln_tensor *x);
/// Square root; floating.
KILN_API kiln_status *kiln_sqrt(kiln_tensor **out, const kiln_tensor *x);
/// 1 / sqrt(x); floating.
KILN_API kiln_status *kiln_rsqrt(kiln_tensor **out, const kiln_tensor *x);
/// x * x.
KILN_API kiln_status *kiln_square(kiln_tensor **out, const kiln_tensor *x);
/// Hyperbolic tangent; floating.
KILN_API kiln_status *kiln_tanh(kiln_tensor **out, const kiln_tensor *x);
/// 1 / (1 + e^-x); floating.
KILN_API kiln_status *kiln_sigmoid(kiln_tensor **out, const kiln_tensor *x);
/// max(x, 0) as TF's: 0 where x < 0, else x itself (-0 and NaN pass); floating, int32 or int64.
KILN_API kiln_status *kiln_relu(kiln_tensor **out, const kiln_tensor *x);
/// GELU; approximate selects the tanh form, otherwise the erf form; floating.
KILN_API kiln_status *kiln_gelu(kiln_tensor **out, const kiln_tensor *x, bool approximate);
/// log(1 + e^x); floating.
KILN_API kiln_status *kiln_softplus(kiln_tensor **out, const kiln_tensor *x);
/// x if x > 0 else alpha * (e^x - 1); floating (Keras default alpha 1).
KILN_API kiln_status *kiln_elu(kiln_tensor **out, const kiln_tensor *x, float alpha);
/// x if x > 0 else alpha * x; floating (tf.nn default alpha 0.2).
KILN_API kiln_status *kiln_leaky_relu(kiln_tensor **out, const kiln_tensor *x, float alpha);
/// x * sigmoid(x); floating.
KILN_API kiln_status *kiln_swish(kiln_tensor **out, const kiln_tensor *x);
/// log(1 + x), accurate near 0; floating.
KILN_API kiln_status *kiln_log1p(kiln_tensor **out, const kiln_tensor *x);
/// e^x - 1, accurate near 0; floating.
KILN_API kiln_status *kiln_expm1(kiln_tensor **out, const kiln_tensor *x);
/// The largest integer <= x; floating; zero gradient.
KILN_API kiln_status *kiln_floor(kiln_tensor **out, const kiln_tensor *x);
/// The nearest integer, ties to even (as tf.round); floating, or int32/int64 (x itself); zero gradient.
KILN_API kiln_status *kiln_round(kiln_tensor **out, const kiln_tensor *x);
/// 1 for x > 0, -1 for x < 0, x itself for +-0 and NaN; floating, int32 or int64; zero gradient.
KILN_API kiln_status *kiln_sign(kiln_tensor **out, const kiln_tensor *x);
/// Sine (radians); floating.
KILN_API kiln_status *kiln_sin(kiln_tensor **out, const kiln_tensor *x);
/// Cosine (radians); floating.
KILN_API kiln_status *kiln_cos(kiln_tensor **out, const kiln_tensor *x);
/// min(max(x, 0), 6); floating, int32 or int64.
KILN_API kiln_status *kiln_relu6(kiln_tensor **out, const kiln_tensor *x);
/// scale * (x if x > 0 else alpha * (e^x - 1)) with tf.nn.selu's alpha and scale; floating.
KILN_API kiln_status *kiln_selu(kiln_tensor **out, const kiln_tensor *x);
/// NOT x on a bool tensor.
KILN_API kiln_status *kiln_logical_not(kiln_tensor **out, const kiln_tensor *x);
/// cond ? x : y elementwise; cond bool; all three broadcast.
KILN_API kiln_status *kiln_where(kiln_tensor **out, const kiln_tensor *cond, const kiln_tensor *x,
                                 const kiln_tensor *y);
/// x converted to dtype (to bool: x != 0; to bfloat16: round to nearest even; integers wrap).
/// Floating to integer as TensorFlow's cast on x86-64 (NumPy and PyTorch agree): truncation toward
/// zero, and NaN, +-inf or a value past int32 (int64 for int64) gives INT32_MIN (INT64_MIN); uint8
/// is the low byte of the int32 result, so -1.0 gives 255, 300.0 gives 44 and NaN gives 0.
KILN_API kiln_status *kiln_cast(kiln_tensor **out, const kiln_tensor *x, kiln_dtype dtype);
/// x clamped to [clip_min, clip_max]; floating, int32 or int64. As tf.clip_by_value,
/// maximum(minimum(x, clip_max), clip_min): clip_min everywhere when clip_min > clip_max, NaN
/// everywhere for a NaN bound. For an integer x each bound must be a whole number in x's range
/// (INVALID_ARGUMENT otherwise: TF converts the bounds to x's dtype). The bounds are float32: for
/// a float64 x, or integer bounds past 2^24, give bounds of x's dtype to kiln_clip_by_value_tensor.
KILN_API kiln_status *kiln_clip_by_value(kiln_tensor **out, const kiln_tensor *x, float clip_min,
                                         float clip_max);
/// tf.clip_by_value with tensor bounds: maximum(minimum(x, clip_max), clip_min), elementwise. Each
/// bound has x's dtype (floating, int32 or int64; so integer bounds are exact at any size) and
/// broadcasts to x's shape; the result has x's shape. Differentiable in x and in both bounds, as
/// TF's minimum and maximum (a tie passes the gradient to x).
KILN_API kiln_status *kiln_clip_by_value_tensor(kiln_tensor **out, const kiln_tensor *x,
                                                const kiln_tensor *clip_min, const kiln_tensor *clip_max);
/// x itself, but tapes see no path through it.
KILN_API kiln_status *kiln_stop_gradient(kiln_tensor **out, const kiln_tensor *x);

/* ------------------------------------------- matmul, reductions, softmax */

/// Batched matrix product over the last two dims; leading dims broadcast; float32, bfloat16,
/// float64, int32 or int64 (the last three in kiln's own loop: each element sums its products in
/// order, whatever the thread count; integers wrap on overflow, and have no gradient).
KILN_API kiln_status *kiln_matmul(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b,
                                  bool transpose_a, bool transpose_b);
/// Sum over `axes` (num_axes 0 and axes NULL: all axes); keepdims keeps reduced dims as 1.
/// float32, bfloat16 (accumulated in float32), float64, int32 or int64.
KILN_API kiln_status *kiln_sum(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               bool keepdims);
/// Mean over axes, as kiln_sum; of int32/int64 as TF's: the sum divided by the count,
/// truncated toward zero (0 over no elements).
KILN_API kiln_status *kiln_mean(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                                bool keepdims);
/// Maximum over axes, as kiln_sum.
KILN_API kiln_status *kiln_max(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               bool keepdims);
/// Minimum over axes, as kiln_sum.
KILN_API kiln_status *kiln_min(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               bool keepdims);
/// Index of the largest value along axis -> int64 (first index on ties); numeric dtypes but uint8.
KILN_API kiln_status *kiln_argmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis);
/// Softmax along axis; float32, float64, or bfloat16 (computed in float32, rounded once).
KILN_API kiln_status *kiln_softmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis);
/// Log-softmax along axis; dtypes as kiln_softmax.
KILN_API kiln_status *kiln_log_softmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis);

/* ----------------------------------------------------------- normalisation */

/// Layer normalisation (Keras LayerNormalization) over `axes` of x, which must be its trailing
/// axes in any order (axes NULL and num_axes 0: the last axis); gamma and beta have the shape of
/// those dims of x. Keras default epsilon 1e-3. Gradients w.r.t. x, gamma and beta.
/// x float32, float64, or bfloat16 (computed in float32, rounded once); gamma and beta of x's dtype,
/// or float32 with a bfloat16 x (as Keras mixed precision keeps them); out has x's dtype.
KILN_API kiln_status *kiln_layer_norm(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *gamma,
                                      const kiln_tensor *beta, const int64_t *axes, size_t num_axes, float epsilon);
/// Batch normalisation over all axes but the last. training: batch statistics, written to
/// out_mean and out_variance (mean and variance may be NULL); inference: the given mean and
/// variance. out_mean and out_variance may be NULL when not wanted. Dtypes as kiln_layer_norm, for
/// mean and variance too; with a bfloat16 x the batch statistics come out float32 (as TF's
/// FusedBatchNormV3).
/// Ownership: every non-NULL out is new.
KILN_API kiln_status *kiln_batch_norm(kiln_tensor **out, kiln_tensor **out_mean, kiln_tensor **out_variance,
                                      const kiln_tensor *x, const kiln_tensor *gamma, const kiln_tensor *beta,
                                      const kiln_tensor *mean, const kiln_tensor *variance, bool training,
                                      float epsilon);
/* ----------------------------------------------------------- options structs */

/// Options structs. A call with many knobs takes one of these. Fill it with its `_init`
/// function, which sets struct_size and every default, then change the fields you want:
///
///     kiln_conv2d_options o;
///     kiln_conv2d_options_init(&o, sizeof o);
///     o.strides[0] = o.strides[1] = 2;
///     o.padding = KILN_PADDING_SAME;
///     kiln_conv2d(&y, x, filter, &o);
///
/// Fields are only ever appended. A caller built against an older kiln passes its smaller
/// struct_size and gets the defaults for the fields it does not know; a caller built against
/// a newer kiln may pass a larger struct, of which only the known prefix is read. A
/// struct_size smaller than the first version of the struct is KILN_STATUS_INVALID_ARGUMENT.
/// A NULL options pointer means all defaults.

/// Options of the convolutions (kiln_conv2d, kiln_conv2d_transpose, kiln_depthwise_conv2d,
/// kiln_conv1d).
typedef struct kiln_conv2d_options {
  size_t struct_size;   /**< sizeof(kiln_conv2d_options) as the caller compiled it */
  int64_t strides[2];   /**< [height, width] steps of the window; default {1, 1} */
  int64_t dilations[2]; /**< [height, width] spacing of the filter taps, 1 = none; default {1, 1} */
  kiln_padding padding; /**< default KILN_PADDING_VALID (Keras' default) */
} kiln_conv2d_options;

/// Fills the first struct_size bytes of *options with the defaults and sets
/// options->struct_size = struct_size (pass sizeof *options). Ownership: writes into the
/// caller's struct only. Thread-safety: safe. Errors: INVALID_ARGUMENT when options is NULL
/// or struct_size is smaller than the first version of the struct.
KILN_API kiln_status *kiln_conv2d_options_init(kiln_conv2d_options *options, size_t struct_size);

/// Options of the 2-D poolings.
typedef struct kiln_pool2d_options {
  size_t struct_size;   /**< sizeof(kiln_pool2d_options) as the caller compiled it */
  int64_t ksize[2];     /**< [height, width] of the window; default {2, 2} (Keras' pool_size) */
  int64_t strides[2];   /**< [height, width] steps of the window; default {2, 2} (Keras: the pool size) */
  kiln_padding padding; /**< default KILN_PADDING_VALID */
} kiln_pool2d_options;

/// Fills *options with the defaults, as kiln_conv2d_options_init.
KILN_API kiln_status *kiln_pool2d_options_init(kiln_pool2d_options *options, size_t struct_size);

/// Options of the 3-D convolutions (kiln_conv3d, kiln_conv3d_transpose).
typedef struct kiln_conv3d_options {
  size_t struct_size;   /**< sizeof(kiln_conv3d_options) as the caller compiled it */
  int64_t strides[3];   /**< [depth, height, width] steps of the window; default {1, 1, 1} */
  int64_t dilations[3]; /**< [depth, height, width] spacing of the filter taps, 1 = none; default {1, 1, 1} */
  kiln_padding padding; /**< default KILN_PADDING_VALID (Keras' default) */
} kiln_conv3d_options;

/// Fills *options with the defaults, as kiln_conv2d_options_init.
KILN_API kiln_status *kiln_conv3d_options_init(kiln_conv3d_options *options, size_t struct_size);

/// Options of the 3-D poolings.
typedef struct kiln_pool3d_options {
  size_t struct_size;   /**< sizeof(kiln_pool3d_options) as the caller compiled it */
  int64_t ksize[3];     /**< [depth, height, width] of the window; default {2, 2, 2} (Keras' pool_size) */
  int64_t strides[3];   /**< [depth, height, width] steps of the window; default {2, 2, 2} (the pool size) */
  kiln_padding padding; /**< default KILN_PADDING_VALID */
} kiln_pool3d_options;

/// Fills *options with the defaults, as kiln_conv2d_options_init.
KILN_API kiln_status *kiln_pool3d_options_init(kiln_pool3d_options *options, size_t struct_size);

/* ----------------------------------------------------- convolution, pooling */

/// The convolutions and poolings compute in float32: their operands are float32, or all bfloat16 (then
/// computed on float32 copies and rounded once, as TF's oneDNN kernels; the gradients are bfloat16).

/// 2-D convolution (tf.nn.conv2d): x [N, H, W, C], filter [KH, KW, C, O] -> [N, OH, OW, O].
/// options: strides, dilations, padding (NULL: defaults). Gradients w.r.t. x and filter.
KILN_API kiln_status *kiln_conv2d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                  const kiln_conv2d_options *options);
/// tf.nn.conv2d_transpose (the adjoint of conv2d, "deconvolution"): x [N, H, W, C], filter
/// [KH, KW, O, C], output_shape [N, OH, OW, O] (output_rank must be 4) such that conv2d of
/// output_shape with this filter and options gives x's H and W. Gradients w.r.t. x and filter.
KILN_API kiln_status *kiln_conv2d_transpose(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                            const int64_t *output_shape, size_t output_rank,
                                            const kiln_conv2d_options *options);
/// tf.nn.depthwise_conv2d: x [N, H, W, C], filter [KH, KW, C, M] -> [N, OH, OW, C * M], output
/// channel c * M + m convolving input channel c with filter[:, :, c, m]. Gradients w.r.t. x and filter.
KILN_API kiln_status *kiln_depthwise_conv2d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                            const kiln_conv2d_options *options);
/// tf.nn.conv1d: x [N, W, C], filter [KW, C, O] -> [N, OW, O]. The width's stride and dilation are
/// options->strides[0] and options->dilations[0]; strides[1] and dilations[1] must be 1.
/// Gradients w.r.t. x and filter.
KILN_API kiln_status *kiln_conv1d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                  const kiln_conv2d_options *options);
/// Max pooling on [N, H, W, C] (tf.nn.max_pool2d); options: ksize, strides, padding.
KILN_API kiln_status *kiln_max_pool2d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool2d_options *options);
/// Average pooling on [N, H, W, C] (padding excluded from the average, as TF).
KILN_API kiln_status *kiln_avg_pool2d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool2d_options *options);
/// 3-D convolution (tf.nn.conv3d): x [N, D, H, W, C], filter [KD, KH, KW, C, O] -> [N, OD, OH, OW, O],
/// TF's VALID / SAME arithmetic on each axis. options: strides, dilations, padding (NULL: defaults).
/// Gradients w.r.t. x and filter.
KILN_API kiln_status *kiln_conv3d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                  const kiln_conv3d_options *options);
/// tf.nn.conv3d_transpose (the adjoint of conv3d): x [N, D, H, W, C], filter [KD, KH, KW, O, C],
/// output_shape [N, OD, OH, OW, O] (output_rank must be 5) such that conv3d of output_shape with this
/// filter and options gives x's D, H and W. Gradients w.r.t. x and filter.
KILN_API kiln_status *kiln_conv3d_transpose(kiln_tensor **out, const kiln_tensor *x,
                                            const kiln_tensor *filter, const int64_t *output_shape,
                                            size_t output_rank, const kiln_conv3d_options *options);
/// Max pooling on [N, D, H, W, C] (tf.nn.max_pool3d); options: ksize, strides, padding. The gradient goes
/// to the first maximum of each window in (depth, height, width) order, as TF's.
KILN_API kiln_status *kiln_max_pool3d(kiln_tensor **out, const kiln_tensor *x,
                                      const kiln_pool3d_options *options);
/// Average pooling on [N, D, H, W, C] (tf.nn.avg_pool3d; padding excluded from the average, as TF).
KILN_API kiln_status *kiln_avg_pool3d(kiln_tensor **out, const kiln_tensor *x,
                                      const kiln_pool3d_options *options);

/* ------------------------------------------------------- shape, indexing */

/// x with another shape of the same element count; one dim may be -1.
KILN_API kiln_status *kiln_reshape(kiln_tensor **out, const kiln_tensor *x, const int64_t *dims, size_t rank);
/// Permutes the dims (perm NULL and num_perm 0: reverse them).
KILN_API kiln_status *kiln_transpose(kiln_tensor **out, const kiln_tensor *x, const int64_t *perm,
                                     size_t num_perm);
/// Joins `num_values` tensors along axis.
KILN_API kiln_status *kiln_concat(kiln_tensor **out, const kiln_tensor *const *values, size_t num_values,
                                  int64_t axis);
/// Splits x along axis into num_outputs tensors written to outs[0..num_outputs): equal parts
/// when sizes is NULL, otherwise sizes[i] each (one may be -1).
/// Ownership: every outs[i] is new; on failure none is written.
KILN_API kiln_status *kiln_split(kiln_tensor **outs, size_t num_outputs, const kiln_tensor *x,
                                 const int64_t *sizes, int64_t axis);
/// The block starting at begin with size (size -1: to the end); both hold rank values.
KILN_API kiln_status *kiln_slice(kiln_tensor **out, const kiln_tensor *x, const int64_t *begin,
                                 const int64_t *size, size_t num_dims);
/// Stacks `num_values` same-shaped tensors along a new axis.
KILN_API kiln_status *kiln_stack(kiln_tensor **out, const kiln_tensor *const *values, size_t num_values,
                                 int64_t axis);
/// Inserts a dim of 1 at axis.
KILN_API kiln_status *kiln_expand_dims(kiln_tensor **out, const kiln_tensor *x, int64_t axis);
/// Removes dims of 1 (axes NULL and num_axes 0: all of them).
KILN_API kiln_status *kiln_squeeze(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                   size_t num_axes);
/// x broadcast to dims (NumPy rules).
KILN_API kiln_status *kiln_broadcast_to(kiln_tensor **out, const kiln_tensor *x, const int64_t *dims,
                                        size_t rank);
/// x repeated multiples[i] times along dim i.
KILN_API kiln_status *kiln_tile(kiln_tensor **out, const kiln_tensor *x, const int64_t *multiples,
                                size_t num_multiples);
/// Inverted dropout: drops with probability rate and scales kept values by 1/(1-rate) when
/// training; x unchanged otherwise. x float32, bfloat16 or float64 (bfloat16 and float64 as TF: x times
/// the scale in x's dtype, then the mask). seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_dropout(kiln_tensor **out, const kiln_tensor *x, float rate, bool training,
                                   int64_t seed);

/* ------------------------------------------------------------------ losses */

/// Per-example softmax cross-entropy against class indices (tf.nn.sparse_softmax_cross_entropy_with_logits):
/// logits float32, bfloat16 or float64 [..., C], labels int32/int64 [...] each in [0, C) (otherwise
/// INVALID_ARGUMENT); out [...] of logits' dtype. Stable for large logits; no one-hot is built. Gradient:
/// logits.
KILN_API kiln_status *kiln_sparse_softmax_cross_entropy_with_logits(kiln_tensor **out, const kiln_tensor *labels,
                                                                    const kiln_tensor *logits);
/// Per-example softmax cross-entropy against a distribution (tf.nn.softmax_cross_entropy_with_logits):
/// labels and logits float32, bfloat16 or float64, one dtype (labels broadcast to logits), classes along
/// axis; out drops that axis.
/// Gradients: labels and logits.
KILN_API kiln_status *kiln_softmax_cross_entropy_with_logits(kiln_tensor **out, const kiln_tensor *labels,
                                                             const kiln_tensor *logits, int64_t axis);
/// Elementwise max(x, 0) - x * z + log(1 + exp(-|x|)) for logits x and labels z, float32, bfloat16 or float64
/// of one shape and dtype (tf.nn.sigmoid_cross_entropy_with_logits). Gradients: labels and logits.
KILN_API kiln_status *kiln_sigmoid_cross_entropy_with_logits(kiln_tensor **out, const kiln_tensor *labels,
                                                             const kiln_tensor *logits);
/// Connectionist temporal classification loss with dense labels (tf.nn.ctc_loss): labels int32/int64
/// [batch, max_label_length]; logits float32, bfloat16 or float64, unnormalized, [frames, batch, classes]
/// when logits_time_major (TF's default) else [batch, frames, classes]; label_length and logit_length
/// int32/int64 [batch], each in [0, max_label_length] and [0, frames]: sample b uses its first
/// label_length[b] labels and logit_length[b] frames. blank_index in [-classes, classes) names the blank
/// class (negative counts from the end; TF's default 0). Labels within a sample's length lie in
/// [0, classes) and are not the blank. out [batch] of logits' dtype: -log p(labels | logits), +inf for a
/// sample no alignment fits (its gradient is NaN). Gradient: logits.
KILN_API kiln_status *kiln_ctc_loss(kiln_tensor **out, const kiln_tensor *labels, const kiln_tensor *logits,
                                    const kiln_tensor *label_length, const kiln_tensor *logit_length,
                                    bool logits_time_major, int64_t blank_index);
/// Decodes CTC logits (keras.ops.ctc_decode): inputs float32, bfloat16 or float64 [batch, frames, classes],
/// unnormalized; sequence_lengths int32/int64 [batch], each in [0, frames]. strategy "greedy" (NULL too:
/// each frame's largest logit, the first of equal ones, with repeats merged when merge_repeated and blanks
/// dropped; one path) or "beam_search" (TF's prefix beam search with beam_width beams, the best top_paths
/// paths, 1 <= top_paths <= beam_width; merge_repeated unused). mask_index in [-classes, classes) is the
/// blank (Keras's default 0). decoded: int32 [paths, batch, frames], each path's labels then -1; scores
/// [batch, paths], float64 for float64 inputs else float32: greedy -(sum of the chosen logits), beam search
/// log-probabilities. A sample with fewer distinct paths than top_paths is INVALID_ARGUMENT, as TF; one with
/// a NaN or +inf logit gets empty paths and NaN scores from beam search. No gradient.
KILN_API kiln_status *kiln_ctc_decode(kiln_tensor **decoded, kiln_tensor **scores, const kiln_tensor *inputs,
                                      const kiln_tensor *sequence_lengths, const char *strategy,
                                      int64_t beam_width, int64_t top_paths, bool merge_repeated,
                                      int64_t mask_index);

/* ------------------------------------------ more reductions, scans, helpers */

/// Product over `axes` (num_axes 0 and axes NULL: all axes), as kiln_sum; float32, float64 or bfloat16
/// (computed in float32, rounded once) with TF's gradient (the product of the others, zeros included),
/// int32 or int64 (wrapping). An empty group gives 1.
KILN_API kiln_status *kiln_reduce_prod(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                       size_t num_axes, bool keepdims);
/// Logical OR over axes of a bool tensor, as kiln_sum; an empty group gives false.
KILN_API kiln_status *kiln_reduce_any(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                      size_t num_axes, bool keepdims);
/// Logical AND over axes of a bool tensor, as kiln_sum; an empty group gives true.
KILN_API kiln_status *kiln_reduce_all(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                      size_t num_axes, bool keepdims);
/// log(sum(exp(x))) over axes, shifted by the maximum (stable); a group of -inf gives -inf; float32,
/// float64 or bfloat16 (computed in float32, rounded once).
KILN_API kiln_status *kiln_reduce_logsumexp(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                            size_t num_axes, bool keepdims);
/// Index of the smallest value along axis -> int64 (first index on ties).
KILN_API kiln_status *kiln_argmin(kiln_tensor **out, const kiln_tensor *x, int64_t axis);
/// value [..., C] + bias [C] (channels last); value of rank >= 2, bias of value's dtype.
KILN_API kiln_status *kiln_bias_add(kiln_tensor **out, const kiln_tensor *value, const kiln_tensor *bias);
/// Mean and (biased) variance over axes (tf.nn.moments); float32, bfloat16 or float64. Axes as kiln_sum.
/// Ownership: *out_mean and *out_variance are new (both required); on failure neither is written.
KILN_API kiln_status *kiln_moments(kiln_tensor **out_mean, kiln_tensor **out_variance, const kiln_tensor *x,
                                   const int64_t *axes, size_t num_axes, bool keepdims);
/// x / sqrt(max(sum(x^2 over axes), epsilon)) (tf.math.l2_normalize; TF's epsilon is 1e-12);
/// axes as kiln_sum; float32, float64, or bfloat16 (computed in float32, rounded once).
KILN_API kiln_status *kiln_l2_normalize(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                        size_t num_axes, float epsilon);
/// Cumulative sum along axis (float32, float64, bfloat16 computed in float32, int32, int64); exclusive
/// leaves out each element itself, reverse sums from the end (tf.math.cumsum).
KILN_API kiln_status *kiln_cumsum(kiln_tensor **out, const kiln_tensor *x, int64_t axis, bool exclusive,
                                  bool reverse);
/// Cumulative product along axis (as kiln_cumsum's dtypes; integers wrap), exclusive and reverse as
/// kiln_cumsum's (tf.math.cumprod). Gradient: TF's (0 at the elements that are 0).
KILN_API kiln_status *kiln_cumprod(kiln_tensor **out, const kiln_tensor *x, int64_t axis, bool exclusive,
                                   bool reverse);
/// The k largest entries along the last axis (float32, bfloat16, float64, int32, int64): values [..., k] in
/// descending order and their int32 indices; ties go to the lower index (tf.math.top_k). The values come out
/// sorted whatever `sorted` says (TF allows it). 0 <= k <= last dim.
/// Ownership: *out_values and *out_indices are new (both required); on failure neither is written.
KILN_API kiln_status *kiln_top_k(kiln_tensor **out_values, kiln_tensor **out_indices, const kiln_tensor *x,
                                 int64_t k, bool sorted);

/* --------------------------------------------------------- floor division */

/// floor(a / b) with broadcasting (Python's //, TF's floordiv); float32, float64, bfloat16 (computed in
/// float32, rounded once), int32 or int64, same dtype both sides. Integers round toward -inf; an integer zero
/// divisor is INVALID_ARGUMENT (as TF). No gradient (as TF).
KILN_API kiln_status *kiln_floordiv(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a - floor(a / b) * b with broadcasting (Python's %, TF's floormod): the result has b's sign.
/// Same dtypes and zero rule as kiln_floordiv. Gradients: a and b (float32, float64, bfloat16).
KILN_API kiln_status *kiln_floormod(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);

/* ------------------------------------------------------------------ einsum */

/// Einstein summation over one or two float32, float64, int32, int64 or bfloat16 (computed in float32,
/// rounded once) operands of one dtype (tf.einsum), e.g. "bqhd,bkhd->bhqk", "...ij,...jk->...ik", "ij->ji",
/// "ij->i", or the implicit form "ij,jk". Lowered to transpose, reshape, sum and a batched matmul;
/// differentiable for the floating dtypes (integers wrap on overflow). equation: UTF-8, letters, "...", ","
/// and "->". Errors: INVALID_ARGUMENT for a malformed equation or mismatched sizes; UNIMPLEMENTED for
/// diagonals (a label repeated in one operand) and for more than two operands.
KILN_API kiln_status *kiln_einsum(kiln_tensor **out, const char *equation, const kiln_tensor *const *inputs,
                                  size_t num_inputs);
/* ---------------------------------------------------------- indexing, padding */

/// tf.gather: slices of params picked by int32/int64 indices along axis. The first batch_dims
/// dims of params and indices are batch dims (equal in both; negative counts from the rank of
/// indices; axis >= batch_dims). Result params[:axis] + indices[batch_dims:] + params[axis+1:].
/// Any dtype; gradient w.r.t. float32 params (a scatter-add).
KILN_API kiln_status *kiln_gather(kiln_tensor **out, const kiln_tensor *params, const kiln_tensor *indices,
                                  int64_t axis, int64_t batch_dims);
/// tf.gather_nd: indices [..., K] (int32/int64) address the K dims of params after its batch_dims
/// batch dims. Result indices.shape[:-1] + params.shape[batch_dims + K:]. Gradient w.r.t. params.
KILN_API kiln_status *kiln_gather_nd(kiln_tensor **out, const kiln_tensor *params, const kiln_tensor *indices,
                                     int64_t batch_dims);
/// tf.scatter_nd: zeros of shape dims[0..rank), then updates added at indices [..., K];
/// duplicates accumulate. updates of shape indices.shape[:-1] + dims[K:], float32, bfloat16, float64,
/// int32 or int64 (integers wrap around on overflow, as TF's CPU kernel); the result has updates'
/// dtype. Gradient w.r.t. floating updates.
KILN_API kiln_status *kiln_scatter_nd(kiln_tensor **out, const kiln_tensor *indices, const kiln_tensor *updates,
                                      const int64_t *dims, size_t rank);
/// tf.tensor_scatter_nd_add: tensor + scatter_nd(indices, updates, tensor's shape); tensor and
/// updates of one dtype among scatter_nd's. Gradients w.r.t. floating tensor and updates.
KILN_API kiln_status *kiln_tensor_scatter_nd_add(kiln_tensor **out, const kiln_tensor *tensor,
                                                 const kiln_tensor *indices, const kiln_tensor *updates);
/// tf.boolean_mask: the entries of tensor where the bool mask is true; mask covers dims
/// axis .. axis + rank(mask) - 1 of tensor, which the result flattens into one. Any dtype;
/// gradient w.r.t. float32 tensor.
KILN_API kiln_status *kiln_boolean_mask(kiln_tensor **out, const kiln_tensor *tensor, const kiln_tensor *mask,
                                        int64_t axis);
/// tf.one_hot: int32/int64 indices to dtype values, on_value at the index and off_value elsewhere,
/// with the new depth axis at axis (-1: last). Indices outside [0, depth) give all off_value.
/// on_value and off_value must fit dtype.
KILN_API kiln_status *kiln_one_hot(kiln_tensor **out, const kiln_tensor *indices, int64_t depth, double on_value,
                                   double off_value, int64_t axis, kiln_dtype dtype);

/// How kiln_pad fills the border (tf.pad's mode).
typedef enum kiln_pad_mode {
  KILN_PAD_MODE_CONSTANT = 0,  /**< constant_value */
  KILN_PAD_MODE_REFLECT = 1,   /**< mirror without repeating the edge: [1 2 3] -> 3 2 [1 2 3] 2 1 */
  KILN_PAD_MODE_SYMMETRIC = 2, /**< mirror repeating the edge: [1 2 3] -> 2 1 [1 2 3] 3 2 */
  KILN_PAD_MODE_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value: with MAX_ENUM, any int (negative too) is a valid enum value */
  KILN_PAD_MODE_MAX_ENUM = 0x7FFFFFFF       /**< not a mode: lets kiln reject any int value safely */
} kiln_pad_mode;

/// tf.pad: paddings holds 2 * num_dims values, [before, after] for each dim of x (num_dims must
/// be x's rank), all >= 0; REFLECT needs each <= dim - 1, SYMMETRIC <= dim. constant_value
/// (CONSTANT mode) must fit x's dtype. Any dtype; gradient w.r.t. a float32, bfloat16 or float64 x.
KILN_API kiln_status *kiln_pad(kiln_tensor **out, const kiln_tensor *x, const int64_t *paddings, size_t num_dims,
                               kiln_pad_mode mode, double constant_value);

/** Interpolation of kiln_image_resize (tf.image.ResizeMethod's BILINEAR and NEAREST_NEIGHBOR). */
typedef enum kiln_resize_method {
  KILN_RESIZE_BILINEAR = 0, /**< TF's half-pixel bilinear, the width interpolated first */
  KILN_RESIZE_NEAREST = 1   /**< TF's half-pixel nearest neighbour, floor((o + 0.5) * in / out) */
} kiln_resize_method;

/// tf.image.resize(images, [height, width], method) without antialiasing: images [N, H, W, C] or
/// [H, W, C] (H, W >= 1) to height x width (>= 1). Bilinear keeps float32 and float64, computes bfloat16
/// in float32 and rounds once, and gives float32 for integers (as TF); nearest keeps any number dtype.
/// Gradient w.r.t. floating images.
KILN_API kiln_status *kiln_image_resize(kiln_tensor **out, const kiln_tensor *images, int64_t height,
                                        int64_t width, kiln_resize_method method);
/** Fill modes of kiln_image_affine_transform (TF's ImageProjectiveTransformV3 fill_mode). */
typedef enum kiln_fill_mode {
  KILN_FILL_REFLECT = 0,  /**< [dcba|abcd|dcba]: mirrored about the edge of the last pixel */
  KILN_FILL_WRAP = 1,     /**< [abcd|abcd|abcd], by TF's formula (steps of len per len - 1) */
  KILN_FILL_CONSTANT = 2, /**< fill_value */
  KILN_FILL_NEAREST = 3   /**< the nearest edge pixel */
} kiln_fill_mode;

/// keras.ops.image.affine_transform (TF's ImageProjectiveTransformV3): images [N, H, W, C] or [H, W, C]
/// (channels last) resampled through transform [N, 8], [1, 8] (every image) or [8], rows (a0, a1, a2,
/// b0, b1, b2, c0, c1): output pixel (x, y) reads the input at ((a0 x + a1 y + a2) / k,
/// (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, the transform in float32. Points outside the image are
/// mapped back by fill_mode or read fill_value (KILN_FILL_CONSTANT, and k == 0); interpolation is
/// KILN_RESIZE_BILINEAR (4 neighbours in float32) or KILN_RESIZE_NEAREST (the rounded point); fill_value is
/// read as a float32 and, for integer images, truncated to their type, as TF's kernel. Float32,
/// float64 and bfloat16 keep their dtype; integers compute in float32 and truncate back, as TF's
/// kernel. Same bits at any thread count. No gradient: the output is a constant to tapes.
KILN_API kiln_status *kiln_image_affine_transform(kiln_tensor **out, const kiln_tensor *images,
                                                  const kiln_tensor *transform,
                                                  kiln_resize_method interpolation, kiln_fill_mode fill_mode,
                                                  double fill_value);
/// keras.ops.image.perspective_transform: images as kiln_image_affine_transform takes them, resampled
/// through the perspective transform (homography) that takes start_points to end_points, each [4, 2]
/// (four (x, y) points for every image) or [N, 4, 2] (one set per image), numbers read in float32; the
/// homography is solved as Keras's compute_homography_matrix and points outside the image read fill_value.
/// Errors: points of the wrong shape or dtype, the two of different shapes, points not finite, or points
/// that define no transform (two the same or three on a line, where elimination meets a zero pivot). No
/// gradient.
KILN_API kiln_status *kiln_image_perspective_transform(kiln_tensor **out, const kiln_tensor *images,
                                                       const kiln_tensor *start_points,
                                                       const kiln_tensor *end_points,
                                                       kiln_resize_method interpolation, double fill_value);
/// tf.image.rgb_to_hsv: the last axis (r, g, b) of floating images (float32, float64, bfloat16; any rank
/// >= 1, last axis 3) becomes (hue, saturation, value), each in [0, 1] for images in [0, 1], by TF's
/// RGBToHSV formulas: value = max, saturation = (max - min) / max (0 where max is not > 0), hue from the
/// channel holding the max (0 where max == min). Gradient w.r.t. images (piecewise, as composed).
KILN_API kiln_status *kiln_image_rgb_to_hsv(kiln_tensor **out, const kiln_tensor *images);
/// tf.image.hsv_to_rgb: (hue, saturation, value) in the last axis back to (r, g, b), by TF's HSVToRGB
/// formulas. Gradient w.r.t. images.
KILN_API kiln_status *kiln_image_hsv_to_rgb(kiln_tensor **out, const kiln_tensor *images);
/// tf.image.rgb_to_grayscale: 0.2989 r + 0.5870 g + 0.1140 b over the last axis (3) of floating images,
/// kept as an axis of 1. Gradient w.r.t. images.
KILN_API kiln_status *kiln_image_rgb_to_grayscale(kiln_tensor **out, const kiln_tensor *images);

/* ------------------------------------------ stateless randomness, dropout options */

/* Stateful random ops (kiln_random_*, kiln_dropout) follow TF2: with an op seed (seed >= 0), each
 * call advances a counter of that (global seed, op seed), so successive calls differ and the
 * sequence repeats after kiln_set_seed. The stateless forms below take TF's seed pair
 * `seed=[seed0, seed1]` instead: the same pair gives the same values on every call and thread,
 * whatever the global seed. */

/// Uniform float32 values in [minval, maxval) from the seed pair (tf.random.stateless_uniform).
/// Ownership: *out is new. Thread-safety: safe; the result depends only on the arguments.
KILN_API kiln_status *kiln_stateless_random_uniform(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                    float minval, float maxval, int64_t seed0, int64_t seed1);
/// kiln_random_uniform_float from the seed pair (tf.random.stateless_uniform with a floating dtype).
/// Ownership: *out is new. Thread-safety: safe; the result depends only on the arguments.
KILN_API kiln_status *kiln_stateless_random_uniform_float(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                          double minval, double maxval, kiln_dtype dtype,
                                                          int64_t seed0, int64_t seed1);
/// kiln_random_uniform_int from the seed pair (tf.random.stateless_uniform with an integer dtype).
/// Ownership: *out is new. Thread-safety: safe; the result depends only on the arguments.
KILN_API kiln_status *kiln_stateless_random_uniform_int(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                        int64_t minval, int64_t maxval, kiln_dtype dtype,
                                                        int64_t seed0, int64_t seed1);
/// Normal float32 values from the seed pair (tf.random.stateless_normal).
/// Ownership: *out is new. Thread-safety: safe; the result depends only on the arguments.
KILN_API kiln_status *kiln_stateless_random_normal(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                   float mean, float stddev, int64_t seed0, int64_t seed1);
/// Normal float32 values re-drawn beyond two standard deviations, from the seed pair
/// (tf.random.stateless_truncated_normal). Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_stateless_truncated_normal(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                      float mean, float stddev, int64_t seed0, int64_t seed1);

/// How kiln_dropout_with_options drops. Fill with kiln_dropout_options_init first: later versions
/// append fields, which _init sets to defaults.
typedef struct kiln_dropout_options {
  /* sizeof(kiln_dropout_options); set by _init. */
  size_t struct_size;
  /* Probability of dropping an element, in [0, 1); _init sets 0.5. */
  float rate;
  /* false: x is returned unchanged; _init sets true. Ignored (always true) when stateless. */
  bool training;
  /* Op seed of the stateful form; < 0 (_init) takes the next op seed of the global sequence. */
  int64_t seed;
  /* TF's noise_shape: the shape the keep mask is drawn in, broadcast over x. NULL (_init) means
   * x's shape; otherwise noise_rank dims, rank of x, each 1 or x's dim (-1 takes x's dim). */
  const int64_t *noise_shape;
  size_t noise_rank;
  /* true: tf.nn.experimental.stateless_dropout, the mask drawn from stateless_seed (the same
   * seed gives the same mask on every call and thread); _init sets false. */
  bool stateless;
  int64_t stateless_seed[2];
} kiln_dropout_options;

/// Sets every field of *options to its default (see the struct). Accepts NULL.
/// Ownership: none. Thread-safety: safe.
KILN_API void kiln_dropout_options_init(kiln_dropout_options *options);
/// Inverted dropout with options (noise_shape, stateless seed); gradients flow through the mask.
/// Ownership: *out is new; options and noise_shape stay the caller's and are not kept.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dropout_with_options(kiln_tensor **out, const kiln_tensor *x,
                                                const kiln_dropout_options *options);

#ifdef __cplusplus
}
#endif

#endif /* KILN_OPS_H */
