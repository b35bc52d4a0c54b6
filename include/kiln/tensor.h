/*
 * kiln/tensor.h — tensors: creation from data, metadata, data access.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 */
#ifndef KILN_TENSOR_H
#define KILN_TENSOR_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ tensors */

/// Creates a tensor holding a copy of `data` (`num_bytes` must equal the element count
/// times the dtype's size; row-major). rank 0 is a scalar; dims may be NULL then.
/// Ownership: *out is new, free with kiln_tensor_free; `data` stays the caller's.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_tensor_create(kiln_tensor **out, kiln_dtype dtype, const int64_t *dims, size_t rank,
                                         const void *data, size_t num_bytes);
/// Creates a tensor over the caller's buffer without copying. kiln calls
/// deleter(data, user_data) once, on some thread, when the last reference goes
/// (deleter may be NULL). The caller must not change the buffer while kiln uses it.
/// Ownership: *out is new; on failure the deleter is not called and the buffer stays the caller's.
KILN_API kiln_status *kiln_tensor_create_from_buffer(kiln_tensor **out, kiln_dtype dtype, const int64_t *dims,
                                                     size_t rank, void *data, size_t num_bytes,
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
/// Keras's _keras_mask: the mask a masking layer (Embedding with mask_zero, Masking, and the
/// layers that pass a mask on) gave this output. A layer called on the tensor takes it as its
/// mask, and losses and metrics leave the masked steps out. *out is NULL when the tensor carries
/// none. Ownership: *out is new.
KILN_API kiln_status *kiln_tensor_get_keras_mask(kiln_tensor **out, const kiln_tensor *tensor);
/// A new handle to the same value (the same identity for a tape) carrying `mask` as its Keras
/// mask, as setting _keras_mask in Keras; NULL for none. The mask's shape must be the leading
/// dims of the tensor's (a [batch, steps] mask for [batch, steps, features]).
/// Ownership: *out is new.
KILN_API kiln_status *kiln_tensor_with_keras_mask(kiln_tensor **out, const kiln_tensor *tensor,
                                                  const kiln_tensor *mask);

#ifdef __cplusplus
}
#endif

#endif /* KILN_TENSOR_H */
