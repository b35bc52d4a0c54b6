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

/// A variable named `name` (UTF-8, copied) holding initial's value.
/// Ownership: *out is new, free with kiln_variable_free. Thread-safety: safe.
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

#endif /* KILN_AUTODIFF_H */
