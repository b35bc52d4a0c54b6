/*
 * kiln.h — the C API of kiln (C99).
 *
 * Example: the gradient of sum(x * x) at x = [1, 2, 3].
 *
 *     int64_t dims[1] = {3};
 *     float xs[3] = {1, 2, 3};
 *     kiln_tensor *x = NULL, *y = NULL, *loss = NULL, *grad = NULL;
 *     kiln_tape *tape = NULL;
 *     kiln_status *st = kiln_tensor_create(&x, KILN_DTYPE_FLOAT32, dims, 1, xs, sizeof xs);
 *     if (!st) st = kiln_tape_create(&tape, false, true);
 *     if (!st) st = kiln_tape_watch(tape, x);
 *     if (!st) st = kiln_mul(&y, x, x);
 *     if (!st) st = kiln_sum(&loss, y, NULL, 0, false);
 *     if (!st) st = kiln_tape_stop(tape);
 *     if (!st) st = kiln_tape_gradient(&grad, tape, loss, &x, 1, KILN_UNCONNECTED_NONE);
 *     if (st) { fprintf(stderr, "%s\n", kiln_status_get_message(st)); kiln_status_free(st); }
 *     // grad holds [2, 4, 6]: read it with kiln_tensor_get_data().
 *     kiln_tensor_free(grad); kiln_tensor_free(loss); kiln_tensor_free(y);
 *     kiln_tensor_free(x); kiln_tape_free(tape);
 *
 * Conventions (they hold for every function unless its comment says otherwise):
 * - Every fallible call returns kiln_status *: NULL on success; otherwise a status the
 *   caller frees with kiln_status_free. A failed call leaves its out arguments untouched
 *   and leaks nothing. No call aborts the process on bad input.
 * - Ownership: an object written to an `out` argument is new and belongs to the caller,
 *   who frees it with the matching _free function. Getters return borrowed values that
 *   live as long as the object they came from. _free functions accept NULL.
 * - Tensors are immutable, reference-counted values: freeing a handle never invalidates
 *   another handle, and freeing a variable never invalidates a tensor read from it.
 * - Threads: functions may be called from several threads at once on different
 *   objects; tensors are safe to share between threads (they never change). A tape
 *   belongs to the thread that created it. Ops record on the calling thread's tapes.
 */
#ifndef KILN_H
#define KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KILN_BUILDING_LIBRARY)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* ------------------------------------------------------------------ handles */

typedef struct kiln_status kiln_status;
typedef struct kiln_tensor kiln_tensor;
typedef struct kiln_variable kiln_variable;
typedef struct kiln_tape kiln_tape;

/* -------------------------------------------------------------------- enums */

/** Status codes. Explicit values; append only. */
typedef enum kiln_status_code {
  KILN_STATUS_OK = 0,
  KILN_STATUS_INVALID_ARGUMENT = 1,
  KILN_STATUS_NOT_FOUND = 2,
  KILN_STATUS_OUT_OF_RANGE = 3,
  KILN_STATUS_FAILED_PRECONDITION = 4,
  KILN_STATUS_DATA_LOSS = 5,
  KILN_STATUS_UNIMPLEMENTED = 6,
  KILN_STATUS_RESOURCE_EXHAUSTED = 7,
  KILN_STATUS_INTERNAL = 8,
  KILN_STATUS_MAX_ENUM = 0x7FFFFFFF /**< not a code: keeps every int value a valid enum value */
} kiln_status_code;

/** Element types. Explicit values; append only. */
typedef enum kiln_dtype {
  KILN_DTYPE_FLOAT32 = 1,
  KILN_DTYPE_BFLOAT16 = 2,
  KILN_DTYPE_INT32 = 3,
  KILN_DTYPE_INT64 = 4,
  KILN_DTYPE_UINT8 = 5,
  KILN_DTYPE_BOOL = 6,
  KILN_DTYPE_MAX_ENUM = 0x7FFFFFFF /**< not a dtype: lets kiln reject any int value safely */
} kiln_dtype;

/** Padding of convolutions and pooling (TF's VALID and SAME). */
typedef enum kiln_padding {
  KILN_PADDING_VALID = 0,
  KILN_PADDING_SAME = 1,
  KILN_PADDING_MAX_ENUM = 0x7FFFFFFF /**< not a padding: lets kiln reject any int value safely */
} kiln_padding;

/** What GradientTape.gradient returns for a source the target does not depend on. */
typedef enum kiln_unconnected {
  KILN_UNCONNECTED_NONE = 0, /**< a NULL gradient */
  KILN_UNCONNECTED_ZERO = 1, /**< a tensor of zeros shaped like the source */
  KILN_UNCONNECTED_MAX_ENUM = 0x7FFFFFFF /**< not a mode: lets kiln reject any int value safely */
} kiln_unconnected;

/** Called when kiln no longer needs a buffer adopted by kiln_tensor_create_from_buffer. */
typedef void (*kiln_deleter)(void *data, void *user_data);

/* ---------------------------------------------------------- library, status */

/// The library version, e.g. "0.1.0".
/// Ownership: static string, never freed. Thread-safety: safe.
KILN_API const char *kiln_version(void);
/// The ABI major version (also in the SONAME). Compare with KILN_ABI_VERSION.
/// Thread-safety: safe.
KILN_API int kiln_abi_version(void);

/// The status code. A NULL status is KILN_STATUS_OK.
/// Thread-safety: safe on distinct statuses.
KILN_API kiln_status_code kiln_status_get_code(const kiln_status *status);
/// The one-line message; "" for NULL.
/// Lifetime: borrowed, valid until the status is freed. Thread-safety: safe on distinct statuses.
KILN_API const char *kiln_status_get_message(const kiln_status *status);
/// Frees a status. Accepts NULL.
KILN_API void kiln_status_free(kiln_status *status);

/// Sets the global random seed and restarts the per-op seed sequence (tf.random.set_seed).
/// Thread-safety: safe; affects ops called afterwards on every thread.
KILN_API void kiln_set_seed(uint64_t seed);
/// Sets how many threads kernels use (>= 1).
/// Thread-safety: safe; affects kernels started afterwards on every thread.
KILN_API kiln_status *kiln_set_num_threads(int num_threads);
/// The number of threads kernels use. Thread-safety: safe.
KILN_API int kiln_get_num_threads(void);
/// oneDNN primitive cache counters: lookups served from the cache, primitives created,
/// and primitives held. Any out pointer may be NULL. Thread-safety: safe.
KILN_API void kiln_primitive_cache_stats(int64_t *hits, int64_t *misses, int64_t *size);
/// Tensor buffer allocator counters: buffers taken from the system allocator, buffers
/// reused from the cache. Any out pointer may be NULL. Thread-safety: safe.
KILN_API void kiln_allocator_stats(int64_t *system_allocs, int64_t *cache_hits);

/* ------------------------------------------------------------------ tensors */

/// Creates a tensor holding a copy of `data` (`num_bytes` must equal the element count
/// times the dtype's size; row-major). rank 0 is a scalar; dims may be NULL then.
/// Ownership: *out is new, free with kiln_tensor_free; `data` stays the caller's.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_tensor_create(kiln_tensor **out, kiln_dtype dtype, const int64_t *dims, int rank,
                                         const void *data, size_t num_bytes);
/// Creates a tensor over the caller's buffer without copying. kiln calls
/// deleter(data, user_data) once, on some thread, when the last reference goes
/// (deleter may be NULL). The caller must not change the buffer while kiln uses it.
/// Ownership: *out is new; on failure the deleter is not called and the buffer stays the caller's.
KILN_API kiln_status *kiln_tensor_create_from_buffer(kiln_tensor **out, kiln_dtype dtype, const int64_t *dims,
                                                     int rank, void *data, size_t num_bytes,
                                                     kiln_deleter deleter, void *user_data);
/// A new handle to the same immutable value (cheap: no copy).
/// Ownership: *out is new, free with kiln_tensor_free.
KILN_API kiln_status *kiln_tensor_clone(kiln_tensor **out, const kiln_tensor *tensor);
/// Frees a handle. The value lives on while other handles, variables or tapes hold it. Accepts NULL.
KILN_API void kiln_tensor_free(kiln_tensor *tensor);
/// The dtype. Returns 0 for NULL. Thread-safety: safe.
KILN_API kiln_dtype kiln_tensor_get_dtype(const kiln_tensor *tensor);
/// The rank. Returns -1 for NULL. Thread-safety: safe.
KILN_API int kiln_tensor_get_rank(const kiln_tensor *tensor);
/// The dims. Lifetime: borrowed, valid while the handle lives; NULL for a NULL handle.
KILN_API const int64_t *kiln_tensor_get_dims(const kiln_tensor *tensor);
/// The element count (1 for a scalar). Returns -1 for NULL.
KILN_API int64_t kiln_tensor_get_num_elements(const kiln_tensor *tensor);
/// The byte size of the data. Returns 0 for NULL.
KILN_API size_t kiln_tensor_get_byte_size(const kiln_tensor *tensor);
/// The row-major element data (bool as one byte 0/1, bfloat16 as uint16 bits).
/// Lifetime: borrowed, read-only, valid while the handle lives; NULL for a NULL handle.
KILN_API const void *kiln_tensor_get_data(const kiln_tensor *tensor);
/// Copies the data into `dst`, which must hold exactly kiln_tensor_get_byte_size bytes.
KILN_API kiln_status *kiln_tensor_copy_to(const kiln_tensor *tensor, void *dst, size_t num_bytes);

/* --------------------------------------------------------- tensor creation */

/// Ops below share these rules. Ownership: *out is new, free with kiln_tensor_free; the
/// inputs are only read. Tapes: when a recording tape of the calling thread watches an
/// input, the op is recorded on it. Thread-safety: safe. Errors: KILN_STATUS_INVALID_ARGUMENT
/// naming the op, the shapes/dtypes received and what was expected.

/// A tensor of zeros.
KILN_API kiln_status *kiln_zeros(kiln_tensor **out, const int64_t *dims, int rank, kiln_dtype dtype);
/// A tensor of ones.
KILN_API kiln_status *kiln_ones(kiln_tensor **out, const int64_t *dims, int rank, kiln_dtype dtype);
/// A tensor filled with `value` (converted to dtype).
KILN_API kiln_status *kiln_fill(kiln_tensor **out, const int64_t *dims, int rank, double value,
                                kiln_dtype dtype);
/// [start, start + delta, ...) up to limit (exclusive); float32, int32 or int64.
KILN_API kiln_status *kiln_range(kiln_tensor **out, double start, double limit, double delta,
                                 kiln_dtype dtype);
/// Uniform float32 values in [minval, maxval). seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_random_uniform(kiln_tensor **out, const int64_t *dims, int rank, float minval,
                                          float maxval, int64_t seed);
/// Normal float32 values. seed < 0: the next op seed of the global sequence.
KILN_API kiln_status *kiln_random_normal(kiln_tensor **out, const int64_t *dims, int rank, float mean,
                                         float stddev, int64_t seed);
/// Normal float32 values re-drawn beyond two standard deviations (TF's truncated_normal).
KILN_API kiln_status *kiln_truncated_normal(kiln_tensor **out, const int64_t *dims, int rank, float mean,
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
KILN_API kiln_status *kiln_reshape(kiln_tensor **out, const kiln_tensor *x, const int64_t *dims, int rank);
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
                                        int rank);
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

/* ---------------------------------------------------------------- variables */

/// A variable named `name` (UTF-8, copied) holding initial's value.
/// Ownership: *out is new, free with kiln_variable_free. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_create(kiln_variable **out, const char *name, const kiln_tensor *initial,
                                           bool trainable);
/// Frees a variable. Tensors read from it stay valid. Accepts NULL.
KILN_API void kiln_variable_free(kiln_variable *variable);
/// The name. Lifetime: borrowed, valid while the variable lives; NULL for NULL.
KILN_API const char *kiln_variable_get_name(const kiln_variable *variable);
/// Whether tapes watch this variable when it is read. false for NULL.
KILN_API bool kiln_variable_get_trainable(const kiln_variable *variable);
/// The current value. A trainable variable read while a tape records (and watches accessed
/// variables) is watched by that tape. Ownership: *out is new; later assignments never change it.
/// Thread-safety: safe, concurrent with assignments.
KILN_API kiln_status *kiln_variable_read(kiln_tensor **out, const kiln_variable *variable);
/// Replaces the value; dtype and shape must match. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_assign(kiln_variable *variable, const kiln_tensor *value);
/// Adds delta to the value in place; dtype and shape must match. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_assign_add(kiln_variable *variable, const kiln_tensor *delta);
/// Subtracts delta from the value in place; dtype and shape must match. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_assign_sub(kiln_variable *variable, const kiln_tensor *delta);

/* -------------------------------------------------------------------- tapes */

/// A GradientTape, recording on the calling thread from now until kiln_tape_stop.
/// persistent: gradient may be called more than once. watch_accessed_variables: trainable
/// variables read while recording are watched. Ownership: *out is new, free with kiln_tape_free.
/// Thread-safety: the tape belongs to the calling thread; other threads get FAILED_PRECONDITION.
KILN_API kiln_status *kiln_tape_create(kiln_tape **out, bool persistent, bool watch_accessed_variables);
/// Frees a tape (stops it first). Accepts NULL.
KILN_API void kiln_tape_free(kiln_tape *tape);
/// Stops recording (the end of TF's `with` block). The tape keeps what it recorded.
KILN_API kiln_status *kiln_tape_stop(kiln_tape *tape);
/// Records again after kiln_tape_stop.
KILN_API kiln_status *kiln_tape_start(kiln_tape *tape);
/// Watches a float tensor: ops on it, and on what is computed from it, are recorded.
KILN_API kiln_status *kiln_tape_watch(kiln_tape *tape, const kiln_tensor *tensor);
/// Watches a variable's current value.
KILN_API kiln_status *kiln_tape_watch_variable(kiln_tape *tape, const kiln_variable *variable);
/// Gradients of sum(target) with respect to each source, written to out_grads[0..num_sources).
/// A source the target does not depend on gets NULL or zeros per `unconnected`.
/// A non-persistent tape allows one call. Ownership: every non-NULL out_grads[i] is new;
/// on failure none is written.
KILN_API kiln_status *kiln_tape_gradient(kiln_tensor **out_grads, kiln_tape *tape, const kiln_tensor *target,
                                         const kiln_tensor *const *sources, size_t num_sources,
                                         kiln_unconnected unconnected);
/// As kiln_tape_gradient, with an upstream gradient for target (TF's output_gradients; may be NULL).
KILN_API kiln_status *kiln_tape_gradient_with_output(kiln_tensor **out_grads, kiln_tape *tape,
                                                     const kiln_tensor *target, const kiln_tensor *output_gradient,
                                                     const kiln_tensor *const *sources, size_t num_sources,
                                                     kiln_unconnected unconnected);
/// Gradients of sum(target) with respect to variables (their values as read while recording).
KILN_API kiln_status *kiln_tape_gradient_variables(kiln_tensor **out_grads, kiln_tape *tape,
                                                   const kiln_tensor *target,
                                                   const kiln_variable *const *variables, size_t num_variables,
                                                   kiln_unconnected unconnected);

#ifdef __cplusplus
}
#endif

#endif /* KILN_H */
