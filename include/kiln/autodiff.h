/*
 * kiln/autodiff.h — variables and gradient tapes.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 */
#ifndef KILN_AUTODIFF_H
#define KILN_AUTODIFF_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- variables */

/// A variable named `name` (UTF-8, copied) holding a copy of initial's value (as tf.Variable):
/// later assignments never write into initial's buffer, even one adopted with
/// kiln_tensor_create_from_buffer. Ownership: *out is new, free with kiln_variable_free;
/// initial stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_create(kiln_variable **out, const char *name, const kiln_tensor *initial,
                                           bool trainable);
/// A new handle to the same variable (assignments through either are seen by both).
/// Ownership: *out is new, free with kiln_variable_free. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_clone(kiln_variable **out, const kiln_variable *variable);
/// Frees a handle; the variable lives on while other handles (or models) hold it.
/// Tensors read from it stay valid. Accepts NULL.
KILN_API void kiln_variable_free(kiln_variable *variable);
/// The name. Lifetime: borrowed, valid while the variable lives; NULL for NULL.
KILN_API const char *kiln_variable_get_name(const kiln_variable *variable);
/// Whether tapes watch this variable when it is read. false for NULL.
KILN_API bool kiln_variable_get_trainable(const kiln_variable *variable);
/// The variable's identity: fixed for its whole life, never shared with another variable or any
/// tensor, never reused in the process (optimizer slots and checkpoints key on it); 0 for NULL.
/// Ownership: none (a value). Lifetime: valid for the process. Thread-safety: safe.
KILN_API uint64_t kiln_variable_get_id(const kiln_variable *variable);
/// The current value, as a new tensor with an id of its own. A read while a tape records is
/// recorded by that tape when it watches the variable (explicitly, or as a trainable variable
/// read under watch_accessed_variables), so the tape's gradients with respect to the variable
/// flow through it. Ownership: *out is new; later assignments never change it (while it lives,
/// assignments write a new buffer instead of updating in place). Thread-safety: safe, concurrent
/// with assignments.
KILN_API kiln_status *kiln_variable_read(kiln_tensor **out, const kiln_variable *variable);
/// Replaces the value; dtype and shape must match. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_assign(kiln_variable *variable, const kiln_tensor *value);
/// Adds delta to the value; dtype and shape must match. Writes in place when no tensor read from
/// the variable is still alive, otherwise into a new buffer, so earlier reads never change.
/// Thread-safety: safe, concurrent with reads and other assignments.
KILN_API kiln_status *kiln_variable_assign_add(kiln_variable *variable, const kiln_tensor *delta);
/// Subtracts delta from the value, as kiln_variable_assign_add. Thread-safety: safe.
KILN_API kiln_status *kiln_variable_assign_sub(kiln_variable *variable, const kiln_tensor *delta);
/// The function of kiln_variable_update_in_place: writes every one of num_bytes bytes of dst (the
/// new value, of the variable's dtype) from src (the current value; dst == src when the update is
/// in place). Returns NULL for success or a status, which the update passes on.
typedef kiln_status *(*kiln_variable_update_fn)(void *dst, const void *src, size_t num_bytes,
                                                kiln_dtype dtype, void *user_data);
/// Updates the value with fn, in place when no tensor read from the variable is still alive
/// (otherwise into a new buffer, so earlier reads never change), as optimizers update variables:
/// for foreign kernels and collectives (libkiln_mpi's allreduce of a variable). The variable is
/// locked during fn: fn must not use it. A failing fn leaves the value as fn left it.
/// Thread-safety: safe, concurrent with reads and other assignments.
KILN_API kiln_status *kiln_variable_update_in_place(kiln_variable *variable, kiln_variable_update_fn fn,
                                                    void *user_data);

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
/// Watches a variable: its reads while the tape records are recorded, so gradients with respect
/// to the variable flow through them. Thread-safety: the tape's thread only.
KILN_API kiln_status *kiln_tape_watch_variable(kiln_tape *tape, const kiln_variable *variable);
/// Gradients of sum(target) with respect to each source, written to out_grads[0..num_sources).
/// A source the target does not depend on gets NULL or zeros per `unconnected`.
/// A non-persistent tape allows one call, and releases what it recorded (including the values of
/// variables it read) as the call walks back. A call rejected for its arguments (NULL or undefined
/// pointers, bad dtypes or shapes) leaves the tape as it was. Ownership: every non-NULL
/// out_grads[i] is new; on failure none is written. Thread-safety: the tape's thread only.
KILN_API kiln_status *kiln_tape_gradient(kiln_tensor **out_grads, kiln_tape *tape, const kiln_tensor *target,
                                         const kiln_tensor *const *sources, size_t num_sources,
                                         kiln_unconnected unconnected);
/// As kiln_tape_gradient, with an upstream gradient for target (TF's output_gradients; may be NULL;
/// otherwise of target's dtype and shape).
KILN_API kiln_status *kiln_tape_gradient_with_output(kiln_tensor **out_grads, kiln_tape *tape,
                                                     const kiln_tensor *target, const kiln_tensor *output_gradient,
                                                     const kiln_tensor *const *sources, size_t num_sources,
                                                     kiln_unconnected unconnected);
/// Gradients of sum(target) with respect to variables, as TF takes them: through the values read
/// from each variable while the tape recorded (summed over all reads), whatever was assigned since;
/// a variable the tape never saw read gets NULL or zeros per `unconnected`. Otherwise as
/// kiln_tape_gradient.
KILN_API kiln_status *kiln_tape_gradient_variables(kiln_tensor **out_grads, kiln_tape *tape,
                                                   const kiln_tensor *target,
                                                   const kiln_variable *const *variables,
                                                   size_t num_variables, kiln_unconnected unconnected);

/// What kiln_tape_gradient_multi differentiates. Fill with kiln_tape_gradient_options_init first:
/// later versions append fields, which _init sets to defaults.
typedef struct kiln_tape_gradient_options {
  /* sizeof(kiln_tape_gradient_options); set by _init. */
  size_t struct_size;
  /* num_targets targets; their gradients are summed. */
  const kiln_tensor *const *targets;
  size_t num_targets;
  /* NULL, or num_targets entries, each of its target's dtype and shape (a NULL entry means ones). */
  const kiln_tensor *const *output_gradients;
  /* Each source i is a tensor (sources[i]) or a variable (variables[i]), never both: either array
   * may be NULL, otherwise it has num_sources entries, NULL where the other array gives the source. */
  const kiln_tensor *const *sources;
  const kiln_variable *const *variables;
  size_t num_sources;
  /* A kiln_unconnected; _init sets KILN_UNCONNECTED_NONE. */
  int32_t unconnected;
} kiln_tape_gradient_options;

/// Sets every field of *options to its default (no targets, no sources). Accepts NULL.
/// Ownership: none. Thread-safety: safe.
KILN_API void kiln_tape_gradient_options_init(kiln_tape_gradient_options *options);
/// tape.gradient([t1, t2, ...], [s1, v2, ...]): gradients of sum_k sum(targets[k] * output_gradients[k])
/// with respect to each source i, a tensor (sources[i]) or a variable (variables[i], taken as
/// kiln_tape_gradient_variables does), written to out_grads[0..num_sources).
/// Ownership: every non-NULL out_grads[i] is new; the options and what they point to stay the
/// caller's and are not kept. On failure none is written, and a call rejected for its arguments
/// leaves the tape usable. Thread-safety: the tape's thread only.
KILN_API kiln_status *kiln_tape_gradient_multi(kiln_tensor **out_grads, kiln_tape *tape,
                                               const kiln_tape_gradient_options *options);
/// tape.jacobian(target, [s1, v2, ...]): for each source i, J[t..., s...] = d target[t...] /
/// d source[s...], of shape target.shape + source.shape, written to out_jacobians[0..num_sources).
/// options as for kiln_tape_gradient_multi, with exactly one target and no output_gradients; a
/// source no element of target depends on gets NULL or zeros per options->unconnected. Runs one
/// backward walk per element of target, and counts as one gradient call (a non-persistent tape
/// allows it once). Ownership, failure and thread-safety as kiln_tape_gradient_multi.
KILN_API kiln_status *kiln_tape_jacobian(kiln_tensor **out_jacobians, kiln_tape *tape,
                                         const kiln_tape_gradient_options *options);
/// tape.batch_jacobian(target, source): target [b, y...] and source [b, x...], where target[i]
/// depends on source[i] only; *out is J[i, y..., x...] = d target[i, y...] / d source[i, x...] of
/// shape target.shape + source.shape[1:] (NULL or zeros per unconnected when unconnected). One
/// backward walk per element of target[0]; otherwise as kiln_tape_jacobian.
KILN_API kiln_status *kiln_tape_batch_jacobian(kiln_tensor **out, kiln_tape *tape, const kiln_tensor *target,
                                               const kiln_tensor *source, kiln_unconnected unconnected);
/// tape.reset(): forgets everything the tape recorded and watched, as a new tape with the same
/// settings would; it goes on recording if it was. Thread-safety: the tape's thread only.
KILN_API kiln_status *kiln_tape_reset(kiln_tape *tape);
/// tape.watched_variables(): the variables the tape watches, in the order it started watching them
/// (kiln_tape_watch_variable, or a trainable variable read while it recorded with
/// watch_accessed_variables), leaving out those no handle or model holds any more (a tape does not
/// keep variables alive). Writes new handles to out[0..min(capacity, count)) and the count to
/// *out_count; call with capacity 0 (out may then be NULL) to learn the count. Ownership: each
/// out[i] is new, free with kiln_variable_free. Thread-safety: the tape's thread only.
KILN_API kiln_status *kiln_tape_get_watched_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                                      const kiln_tape *tape);

#ifdef __cplusplus
}
#endif

#endif /* KILN_AUTODIFF_H */
