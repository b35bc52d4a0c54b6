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

#ifdef __cplusplus
}
#endif

#endif /* KILN_CALLBACKS_H */
