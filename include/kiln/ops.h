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
/// [start, start + delta, ...) up to limit (exclusive); float32, int32 or int64. NaN or
/// infinite arguments are INVALID_ARGUMENT.
KILN_API kiln_status *kiln_range(kiln_tensor **out, double start, double limit, double delta,
                                 kiln_dtype dtype);
/// Uniform float32 values in [minval, maxval). seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_random_uniform(kiln_tensor **out, const int64_t *dims, size_t rank, float minval,
                                          float maxval, int64_t seed);
/// Normal float32 values. seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_random_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean,
                                         float stddev, int64_t seed);
/// Normal float32 values re-drawn beyond two standard deviations (TF's truncated_normal).
KILN_API kiln_status *kiln_truncated_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean,
                                            float stddev, int64_t seed);

/* ------------------------------------------------------ elementwise binary */

/// a + b with NumPy broadcasting; float32, int32 or int64, same dtype both sides.
KILN_API kiln_status *kiln_add(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a - b, broadcasting.
KILN_API kiln_status *kiln_sub(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a * b, broadcasting.
KILN_API kiln_status *kiln_mul(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a / b, broadcasting.
KILN_API kiln_status *kiln_div(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// max(a, b) elementwise, broadcasting.
KILN_API kiln_status *kiln_maximum(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// min(a, b) elementwise, broadcasting.
KILN_API kiln_status *kiln_minimum(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b);
/// a ** b elementwise, broadcasting; float32.
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

/// -x.
KILN_API kiln_status *kiln_neg(kiln_tensor **out, const kiln_tensor *x);
/// |x|.
KILN_API kiln_status *kiln_abs(kiln_tensor **out, const kiln_tensor *x);
/// e^x; float32.
KILN_API kiln_status *kiln_exp(kiln_tensor **out, const kiln_tensor *x);
/// Natural logarithm; float32.
KILN_API kiln_status *kiln_log(kiln_tensor **out, const kiln_tensor *x);
/// Square root; float32.
KILN_API kiln_status *kiln_sqrt(kiln_tensor **out, const kiln_tensor *x);
/// 1 / sqrt(x); float32.
KILN_API kiln_status *kiln_rsqrt(kiln_tensor **out, const kiln_tensor *x);
/// x * x.
KILN_API kiln_status *kiln_square(kiln_tensor **out, const kiln_tensor *x);
/// Hyperbolic tangent; float32.
KILN_API kiln_status *kiln_tanh(kiln_tensor **out, const kiln_tensor *x);
/// 1 / (1 + e^-x); float32.
KILN_API kiln_status *kiln_sigmoid(kiln_tensor **out, const kiln_tensor *x);
/// max(x, 0); float32.
KILN_API kiln_status *kiln_relu(kiln_tensor **out, const kiln_tensor *x);
/// GELU; approximate selects the tanh form, otherwise the erf form; float32.
KILN_API kiln_status *kiln_gelu(kiln_tensor **out, const kiln_tensor *x, bool approximate);
/// log(1 + e^x); float32.
KILN_API kiln_status *kiln_softplus(kiln_tensor **out, const kiln_tensor *x);
/// x if x > 0 else alpha * (e^x - 1); float32 (Keras default alpha 1).
KILN_API kiln_status *kiln_elu(kiln_tensor **out, const kiln_tensor *x, float alpha);
/// x if x > 0 else alpha * x; float32 (tf.nn default alpha 0.2).
KILN_API kiln_status *kiln_leaky_relu(kiln_tensor **out, const kiln_tensor *x, float alpha);
/// x * sigmoid(x); float32.
KILN_API kiln_status *kiln_swish(kiln_tensor **out, const kiln_tensor *x);
/// NOT x on a bool tensor.
KILN_API kiln_status *kiln_logical_not(kiln_tensor **out, const kiln_tensor *x);
/// cond ? x : y elementwise; cond bool; all three broadcast.
KILN_API kiln_status *kiln_where(kiln_tensor **out, const kiln_tensor *cond, const kiln_tensor *x,
                                 const kiln_tensor *y);
/// x converted to dtype (float to int truncates; to bool: x != 0; to bfloat16: round to nearest even).
KILN_API kiln_status *kiln_cast(kiln_tensor **out, const kiln_tensor *x, kiln_dtype dtype);
/// x clamped to [clip_min, clip_max]; float32.
KILN_API kiln_status *kiln_clip_by_value(kiln_tensor **out, const kiln_tensor *x, float clip_min,
                                         float clip_max);
/// x itself, but tapes see no path through it.
KILN_API kiln_status *kiln_stop_gradient(kiln_tensor **out, const kiln_tensor *x);

/* ------------------------------------------- matmul, reductions, softmax */

/// Batched matrix product over the last two dims; leading dims broadcast; float32 or bfloat16.
KILN_API kiln_status *kiln_matmul(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b,
                                  bool transpose_a, bool transpose_b);
/// Sum over `axes` (num_axes 0 and axes NULL: all axes); keepdims keeps reduced dims as 1.
KILN_API kiln_status *kiln_sum(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               bool keepdims);
/// Mean over axes, as kiln_sum.
KILN_API kiln_status *kiln_mean(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                                bool keepdims);
/// Maximum over axes, as kiln_sum.
KILN_API kiln_status *kiln_max(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               bool keepdims);
/// Minimum over axes, as kiln_sum.
KILN_API kiln_status *kiln_min(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               bool keepdims);
/// Index of the largest value along axis -> int64 (first index on ties).
KILN_API kiln_status *kiln_argmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis);
/// Softmax along axis.
KILN_API kiln_status *kiln_softmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis);
/// Log-softmax along axis.
KILN_API kiln_status *kiln_log_softmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis);

/* ------------------------------------- normalisation, convolution, pooling */

/// Layer normalisation over the last axis; gamma and beta [C]. Keras default epsilon 1e-3.
KILN_API kiln_status *kiln_layer_norm(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *gamma,
                                      const kiln_tensor *beta, float epsilon);
/// Batch normalisation over all axes but the last. training: batch statistics, written to
/// out_mean and out_variance (mean and variance may be NULL); inference: the given mean and
/// variance. out_mean and out_variance may be NULL when not wanted.
/// Ownership: every non-NULL out is new.
KILN_API kiln_status *kiln_batch_norm(kiln_tensor **out, kiln_tensor **out_mean, kiln_tensor **out_variance,
                                      const kiln_tensor *x, const kiln_tensor *gamma, const kiln_tensor *beta,
                                      const kiln_tensor *mean, const kiln_tensor *variance, bool training,
                                      float epsilon);
/// 2-D convolution: x [N, H, W, C], filter [KH, KW, C, O]; strides and dilations hold 2 values.
KILN_API kiln_status *kiln_conv2d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                  const int64_t strides[2], const int64_t dilations[2], kiln_padding padding);
/// Max pooling on [N, H, W, C]; ksize and strides hold 2 values.
KILN_API kiln_status *kiln_max_pool2d(kiln_tensor **out, const kiln_tensor *x, const int64_t ksize[2],
                                      const int64_t strides[2], kiln_padding padding);
/// Average pooling on [N, H, W, C] (padding excluded from the average, as TF).
KILN_API kiln_status *kiln_avg_pool2d(kiln_tensor **out, const kiln_tensor *x, const int64_t ksize[2],
                                      const int64_t strides[2], kiln_padding padding);

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
/// Rows of params picked by int32/int64 indices along axis (embedding lookup).
KILN_API kiln_status *kiln_gather(kiln_tensor **out, const kiln_tensor *params, const kiln_tensor *indices,
                                  int64_t axis);
/// One-hot float32 encoding of int32/int64 indices with `depth` classes.
KILN_API kiln_status *kiln_one_hot(kiln_tensor **out, const kiln_tensor *indices, int64_t depth,
                                   float on_value, float off_value);
/// Inverted dropout: drops with probability rate and scales kept values by 1/(1-rate) when
/// training; x unchanged otherwise. seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_dropout(kiln_tensor **out, const kiln_tensor *x, float rate, bool training,
                                   int64_t seed);

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
