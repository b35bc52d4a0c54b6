/*
 * kiln/common.h — handles, enums, status, library-wide settings.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 */
#ifndef KILN_COMMON_H
#define KILN_COMMON_H

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
typedef struct kiln_config kiln_config;
typedef struct kiln_tensor_list kiln_tensor_list;
typedef struct kiln_layer kiln_layer;
typedef struct kiln_loss kiln_loss;
typedef struct kiln_metric kiln_metric;
typedef struct kiln_optimizer kiln_optimizer;
typedef struct kiln_dataset kiln_dataset;
typedef struct kiln_iterator kiln_iterator;
typedef struct kiln_callback kiln_callback;
typedef struct kiln_communicator kiln_communicator;

/** Frees the user_data of a function handed to kiln (a callback's, a custom schedule's) when
 *  kiln no longer needs it. */
typedef void (*kiln_user_data_destroy_fn)(void *user_data);

/* ------------------------------------------------------------------- limits */

/** The largest tensor rank kiln supports; larger ranks are rejected with INVALID_ARGUMENT. */
#define KILN_MAX_RANK 8

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
  KILN_STATUS_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value: with MAX_ENUM, any int (negative too) is a valid enum value */
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
  KILN_DTYPE_FLOAT64 = 7,
  KILN_DTYPE_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value: with MAX_ENUM, any int (negative too) is a valid enum value */
  KILN_DTYPE_MAX_ENUM = 0x7FFFFFFF /**< not a dtype: lets kiln reject any int value safely */
} kiln_dtype;

/** Padding of convolutions and pooling (TF's VALID and SAME). */
typedef enum kiln_padding {
  KILN_PADDING_VALID = 0,
  KILN_PADDING_SAME = 1,
  KILN_PADDING_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value: with MAX_ENUM, any int (negative too) is a valid enum value */
  KILN_PADDING_MAX_ENUM = 0x7FFFFFFF /**< not a padding: lets kiln reject any int value safely */
} kiln_padding;

/** What GradientTape.gradient returns for a source the target does not depend on. */
typedef enum kiln_unconnected {
  KILN_UNCONNECTED_NONE = 0, /**< a NULL gradient */
  KILN_UNCONNECTED_ZERO = 1, /**< a tensor of zeros shaped like the source */
  KILN_UNCONNECTED_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value: with MAX_ENUM, any int (negative too) is a valid enum value */
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
/// A new status carrying `code` and a copy of `message` (UTF-8; NULL is ""), for callbacks
/// that report failure to kiln. code OK, or a value outside the enum, gives INVALID_ARGUMENT
/// with a message saying so. Returns NULL only if memory runs out.
/// Ownership: the result is new; whoever receives it frees it with kiln_status_free.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_status_create(kiln_status_code code, const char *message);

/// Sets the global random seed and restarts the per-op seed sequence (tf.random.set_seed).
/// Thread-safety: safe; affects ops called afterwards on every thread.
KILN_API void kiln_set_seed(uint64_t seed);
/// Sets how many threads kernels use: 1 to max(64, 4 x the processors available). Other values
/// give INVALID_ARGUMENT naming the value and the limit, and change nothing (libgomp would
/// abort the process trying to start, say, 1 << 30 threads).
/// Ownership: the returned status (NULL on success) belongs to the caller.
/// Thread-safety: safe; affects kernels started afterwards on every thread.
KILN_API kiln_status *kiln_set_num_threads(int num_threads);
/// The number of threads kernels called from the calling thread use: its override if any, else
/// the global count, else OpenMP's default; 1 on the thread that forked, in a forked child
/// (libgomp's threads do not survive fork). Thread-safety: safe.
KILN_API int kiln_get_num_threads(void);
/// Sets how many threads kernels called from the calling thread use, overriding the global count
/// for this thread only: 1 to max(64, 4 x the processors available), or 0 to remove the override
/// (the thread follows the global count again). Other values give INVALID_ARGUMENT naming the
/// value and the range, and change nothing. OpenMP teams belong to the thread that starts them,
/// so this lets, say, input-pipeline worker threads run kernels at 1 thread beside a training
/// thread that uses every core, without oversubscribing the machine. Results do not depend on
/// the count. The override lasts until changed or the thread ends.
/// Ownership: the returned status (NULL on success) belongs to the caller.
/// Thread-safety: safe; affects only kernels started afterwards from the calling thread.
KILN_API kiln_status *kiln_set_num_threads_for_this_thread(int num_threads);
/// The calling thread's override set by kiln_set_num_threads_for_this_thread; 0 when it has none
/// (for saving and restoring it). Thread-safety: safe.
KILN_API int kiln_get_num_threads_for_this_thread(void);
/// oneDNN primitive cache counters: lookups served from the cache, primitives created,
/// and primitives held. Any out pointer may be NULL. Thread-safety: safe.
KILN_API void kiln_primitive_cache_stats(int64_t *hits, int64_t *misses, int64_t *size);
/// Tensor buffer allocator counters: buffers taken from the system allocator, buffers
/// reused from the cache. Any out pointer may be NULL. Thread-safety: safe.
KILN_API void kiln_allocator_stats(int64_t *system_allocs, int64_t *cache_hits);
/// Returns every cached free tensor buffer to the system, as torch.cuda.empty_cache() does, and
/// returns the number of bytes released (0 when the cache is empty or disabled). Buffers of
/// live tensors are untouched; later allocations of those sizes go to the system again. kiln
/// also does this by itself, and retries, before reporting RESOURCE_EXHAUSTED for a buffer.
/// Ownership: none. Thread-safety: safe, also while other threads allocate and free tensors.
KILN_API size_t kiln_allocator_release_cached(void);

#ifdef __cplusplus
}
#endif

#endif /* KILN_COMMON_H */
