/*
 * kiln/callbacks.h — Keras callbacks for fit, evaluate and predict.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * One handle type, kiln_callback, holding one reference to a shared callback object; built-in
 * classes are made by class name with a kiln_config of Keras's keys and defaults.
 */
#ifndef KILN_CALLBACKS_H
#define KILN_CALLBACKS_H

#include <stdint.h>

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A built-in callback by class name ("History", ...); config may be NULL for the defaults.
 * Unknown class: KILN_STATUS_NOT_FOUND listing the known ones. The config holds Keras's
 * arguments by name, e.g. ModelCheckpoint {"filepath": "ckpt/w.{epoch:02d}-{val_loss:.2f}",
 * "monitor", "verbose", "save_best_only", "save_weights_only", "mode", "save_freq": "epoch" or a
 * number of batches, "initial_value_threshold"} (save_weights_only true: a TF-format checkpoint
 * of the model and its optimizer, as kiln_model_save_weights; false, the default: the SavedModel
 * directory, as kiln_saved_model_save), BackupAndRestore
 * {"backup_dir", "save_freq": "epoch", a number of batches or false, "delete_checkpoint"},
 * TensorBoard {"log_dir": "logs", "histogram_freq": 0, "write_graph": true, "write_images": false,
 * "write_steps_per_second": false, "update_freq": "epoch" or a number of batches, "profile_batch":
 * 0, a batch or [start, stop]} (event files in log_dir/train and log_dir/validation with Keras's
 * tags; see kiln/summary.h) and HParams {"log_dir", "hparams": {name: number, bool or string},
 * "trial_id"} (TensorBoard's hp.KerasCallback). */
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

/* ------------------------------------------------------------ callbacks in foreign code */

/// A callback whose hooks are functions (Keras's Callback subclass; the trampoline under
/// kiln.hpp's and Python's Callback subclasses, and C's LambdaCallback). Every entry is optional
/// (NULL: the hook does nothing). A hook returns NULL for success or a status
/// (kiln_status_create); an error status stops fit, evaluate or predict, which return it with
/// its code and a message naming the callback and the hook.
/// model: the model being trained, evaluated or predicted with, borrowed for the call
/// (kiln_layer_clone it to keep it); NULL when the callback runs outside fit with no model set.
/// logs: Keras's logs, a borrowed config of name -> float, never NULL from fit, evaluate and
/// predict: empty where there is nothing to log (the begin hooks, on_predict_end and
/// on_predict_batch_end), as Keras's CallbackList hands every hook a dict. (Keras passes
/// on_predict_batch_end {"outputs": the batch's predictions}; kiln's logs hold only numbers.) As Keras's one
/// logs dict, a hook may change it (kiln_config_set_float, kiln_config_remove on the pointer cast to
/// non-const; the config is the hook's for the call; a NaN or infinite value goes in as JSON text NaN /
/// Infinity through kiln_config_from_json and kiln_config_update): the callbacks after it, History and the
/// progress bar see the change, the trainer's own logs (evaluate's result) do not. Every value must stay a
/// number (INVALID_ARGUMENT naming the key). epoch and batch count from 0. Hooks run on the thread that
/// called fit/evaluate/predict, one at a time.
typedef struct kiln_callback_table {
  size_t struct_size; /**< sizeof(kiln_callback_table) */
  kiln_status *(*on_train_begin)(kiln_layer *model, const kiln_config *logs, void *user_data);
  kiln_status *(*on_train_end)(kiln_layer *model, const kiln_config *logs, void *user_data);
  kiln_status *(*on_epoch_begin)(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *user_data);
  kiln_status *(*on_epoch_end)(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *user_data);
  kiln_status *(*on_train_batch_begin)(kiln_layer *model, int64_t batch, const kiln_config *logs, void *user_data);
  kiln_status *(*on_train_batch_end)(kiln_layer *model, int64_t batch, const kiln_config *logs, void *user_data);
  kiln_status *(*on_test_begin)(kiln_layer *model, const kiln_config *logs, void *user_data);
  kiln_status *(*on_test_end)(kiln_layer *model, const kiln_config *logs, void *user_data);
  kiln_status *(*on_test_batch_begin)(kiln_layer *model, int64_t batch, const kiln_config *logs, void *user_data);
  kiln_status *(*on_test_batch_end)(kiln_layer *model, int64_t batch, const kiln_config *logs, void *user_data);
  kiln_status *(*on_predict_begin)(kiln_layer *model, const kiln_config *logs, void *user_data);
  kiln_status *(*on_predict_end)(kiln_layer *model, const kiln_config *logs, void *user_data);
  kiln_status *(*on_predict_batch_begin)(kiln_layer *model, int64_t batch, const kiln_config *logs,
                                         void *user_data);
  kiln_status *(*on_predict_batch_end)(kiln_layer *model, int64_t batch, const kiln_config *logs,
                                       void *user_data);
  /// Frees user_data when the callback object dies (its last handle, and fit's use, end). May
  /// run on any thread. Default: nothing.
  void (*destroy)(void *user_data);
} kiln_callback_table;

/// A callback of class class_name (what kiln_callback_get_class_name gives: "MyCallback", or
/// "LambdaCallback") whose hooks are table's. table is copied; user_data goes to every hook.
/// Ownership: *out is new; on failure destroy is not called (user_data stays the caller's).
/// Thread-safety: safe.
KILN_API kiln_status *kiln_callback_create_custom(kiln_callback **out, const char *class_name,
                                                  const kiln_callback_table *table, void *user_data);

/// The schedule function of kiln_callback_create_lr_scheduler: writes the epoch's learning rate
/// to *out_lr (lr is the current one); NULL for success or a status that stops fit.
typedef kiln_status *(*kiln_lr_schedule_fn)(double *out_lr, int64_t epoch, double lr, void *user_data);

/// keras.callbacks.LearningRateScheduler(schedule, verbose): at each epoch begin the optimizer's
/// learning rate becomes schedule(epoch, current learning rate), written to *out_lr (a finite
/// float; an error status stops fit with it); at epoch end logs["learning_rate"] holds it.
/// verbose > 0 prints "Epoch N: LearningRateScheduler setting learning rate to ...". The
/// schedule runs on the fit thread. An optimizer whose learning rate is a schedule object is
/// FAILED_PRECONDITION when fit sets it.
/// Ownership: *out is new; destroy(user_data) runs when the callback dies (not on failure).
KILN_API kiln_status *kiln_callback_create_lr_scheduler(kiln_callback **out, int verbose, kiln_lr_schedule_fn schedule,
                                                        kiln_user_data_destroy_fn destroy, void *user_data);

/// Runs one hook of a callback by its Keras name ("on_epoch_end", "on_train_batch_begin", ...),
/// as calling callback.on_epoch_end(epoch, logs) in Keras does. index: the epoch or batch (ignored
/// by the other hooks). logs: NULL, or a config of name -> float that the hook may change
/// (ReduceLROnPlateau adds "learning_rate"); it is written back. An unknown hook name is
/// INVALID_ARGUMENT. Thread-safety: one hook of a callback at a time.
KILN_API kiln_status *kiln_callback_call_hook(kiln_callback *callback, const char *hook, int64_t index,
                                              kiln_config *logs);
/// Keras's callback.set_model: the model the hooks act on (stop_training, the optimizer's
/// learning rate, restored weights). fit sets it itself. model is shared, not copied; NULL clears.
KILN_API kiln_status *kiln_callback_set_model(kiln_callback *callback, kiln_layer *model);
/// Keras's callback.params: a new config {"verbose": int, "epochs": int, "steps": int (-1: unknown)},
/// as fit set them. Ownership: *out is new.
KILN_API kiln_status *kiln_callback_get_params(kiln_config **out, const kiln_callback *callback);
/// A built-in callback's public state, as Keras's attributes: EarlyStopping {"wait",
/// "stopped_epoch", "best_epoch", "best" (null before any epoch)}, ReduceLROnPlateau {"wait",
/// "cooldown_counter", "best"}, ModelCheckpoint {"best" (null without a direction),
/// "epochs_since_last_save", "last_saved_filepath"}, BackupAndRestore {"resumed_epoch" (-1: the
/// last fit did not resume)}; an empty config for the others. Ownership: *out is new.
KILN_API kiln_status *kiln_callback_get_attributes(kiln_config **out, const kiln_callback *callback);

/// Receives a piece of text (progress, a warning): NUL-terminated, borrowed for the call.
typedef void (*kiln_text_fn)(const char *text, void *user_data);
/// Whether progress text reaches a terminal or notebook (see kiln_set_progress_callback).
typedef bool (*kiln_is_terminal_fn)(void *user_data);

/// Where progress text goes (the progress bar, callbacks' verbose messages): fn(text, user_data)
/// receives each piece (NUL-terminated, may hold \r, \b and \n) instead of stdout; NULL fn
/// restores stdout. is_terminal(user_data), asked when a bar starts (NULL: never), says whether
/// the text reaches a terminal or notebook: then the bar is redrawn in place and verbose "auto"
/// means 1, else one line per epoch (2). Python routes it to sys.stdout. fn and is_terminal run
/// on the thread printing (fit's). Thread-safety: safe; the setting is process-wide.
KILN_API kiln_status *kiln_set_progress_callback(kiln_text_fn fn, kiln_is_terminal_fn is_terminal, void *user_data);
/// Where callbacks' warnings go (Keras's warnings.warn: "Early stopping conditioned on metric
/// `val_loss` which is not available..."), and checkpoint restores' (values no object took, given
/// when the load status is freed; kiln/checkpoint.h): fn(text, user_data) instead of stderr; NULL
/// restores stderr. fn runs on the thread that warns. Thread-safety: safe; process-wide.
KILN_API kiln_status *kiln_set_warning_callback(kiln_text_fn fn, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* KILN_CALLBACKS_H */
