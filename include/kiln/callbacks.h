/*
 * kiln/callbacks.h — Keras callbacks for fit, evaluate and predict.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * One handle type, kiln_callback, holding one reference to a shared callback object; built-in
 * classes are made by class name with a kiln_config of Keras's keys and defaults.
 */
#ifndef KILN_CALLBACKS_H
#define KILN_CALLBACKS_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A built-in callback by class name ("History", ...); config may be NULL for the defaults.
 * Unknown class: KILN_STATUS_NOT_FOUND listing the known ones. */
KILN_API kiln_status *kiln_callback_create(kiln_callback **out, const char *class_name, const kiln_config *config);
/* Another handle to the same callback. */
KILN_API kiln_status *kiln_callback_clone(kiln_callback **out, const kiln_callback *callback);
/* Accepts NULL. */
KILN_API void kiln_callback_free(kiln_callback *callback);
/* The class name; borrowed, lives as long as the handle. NULL for NULL. */
KILN_API const char *kiln_callback_get_class_name(const kiln_callback *callback);
/* What a History callback recorded (Keras's history.epoch and history.history): a new config
 *   {"epoch": [0, 1, ...], "keys": ["loss", "accuracy", "val_loss", ...],
 *    "history": {"loss": [0.9, 0.5, ...], ...}}
 * with one value per recorded epoch for each name, names in the order first seen ("keys" keeps
 * that order; "history" has it too). Values are floats and may be NaN or infinite (a diverged
 * loss). KILN_STATUS_FAILED_PRECONDITION when callback is not a History.
 * Ownership: *out is new, free with kiln_config_free. Thread-safety: safe, also while fit runs. */
KILN_API kiln_status *kiln_callback_get_history(kiln_config **out, const kiln_callback *callback);

#ifdef __cplusplus
}
#endif

#endif /* KILN_CALLBACKS_H */
