/*
 * kiln/training.h — Keras's training loop on models: compile, fit, evaluate, predict, the
 * *_on_batch calls, and overridable train_step / test_step.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * A model is a kiln_layer (kiln/layers.h). compile attaches a loss, an optimizer and metrics to
 * it; fit runs the epochs with Keras's semantics and defaults and gives the History callback.
 *
 *   kiln_compile_options c;
 *   kiln_fit_options f;
 *   const char *loss = "sparse_categorical_crossentropy", *metric = "accuracy";
 *   kiln_callback *history = NULL;
 *   kiln_compile_options_init(&c, sizeof c);
 *   c.optimizer_name = "adam";
 *   c.loss_names = &loss; c.num_loss_names = 1;
 *   c.metric_names = &metric; c.num_metric_names = 1;
 *   kiln_model_compile(model, &c);
 *   kiln_fit_options_init(&f, sizeof f);
 *   f.x = x; f.y = y; f.epochs = 5; f.validation_split = 0.2;
 *   kiln_model_fit(&history, model, &f);      // history: kiln_callback_get_history
 *
 * Threads: a model trains on one thread at a time; fit, evaluate and predict run their callbacks
 * and step callbacks on the calling thread. A compile, fit, evaluate, train_on_batch or test_on_batch
 * of a model that is in fit, evaluate, train_on_batch or test_on_batch on another thread is
 * FAILED_PRECONDITION (the same thread may nest them: a callback's evaluate); predict,
 * predict_on_batch and calls of the model may run beside them.
 */
#ifndef KILN_TRAINING_H
#define KILN_TRAINING_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------- compile */

/// Options of kiln_model_compile (Keras's compile arguments). Fill with
/// kiln_compile_options_init first.
typedef struct kiln_compile_options {
  size_t struct_size;                     /**< sizeof(kiln_compile_options) */
  kiln_optimizer *optimizer;              /**< borrowed; the model keeps a reference. NULL: by name */
  const char *optimizer_name;             /**< used when optimizer is NULL: "adam", "sgd", ...;
                                               default NULL means Keras's "rmsprop" */
  kiln_loss *const *losses;               /**< one loss, or one per output */
  size_t num_losses;                      /**< default 0 */
  const char *const *loss_names;          /**< alternative to losses: by name or alias */
  size_t num_loss_names;                  /**< default 0 */
  const double *loss_weights;             /**< NULL (default: all 1), or one per output */
  size_t num_loss_weights;                /**< default 0 */
  const char *const *metric_names;        /**< "accuracy", "mae", ... (resolved from the loss and
                                               shapes at the first batch, as Keras) */
  size_t num_metric_names;                /**< default 0 */
  kiln_metric *const *metrics;            /**< metric objects; borrowed, the model keeps them */
  size_t num_metrics;                     /**< default 0 */
  bool run_eagerly;                       /**< accepted; kiln always runs eagerly */
  const bool *metric_is_object;           /**< Keras's compile list when names and objects mix
                                               (the order of logs, metrics_names and evaluate's
                                               list): one entry per metric in compile order, true
                                               for the next of metrics, false for the next of
                                               metric_names. NULL (default): the names, then the
                                               objects. Read only when struct_size covers it */
  size_t num_metric_is_object;            /**< default 0; else num_metric_names + num_metrics */
  const bool *metric_is_weighted;         /**< Keras's weighted_metrics: one entry per metric in
                                               compile order (the order metric_is_object gives),
                                               true for a metric updated with the sample weight
                                               (sample_weight and class_weight, as the loss).
                                               They follow the other metrics in the logs; one
                                               whose name is taken is "weighted_<name>". NULL
                                               (default): none. Read only when struct_size
                                               covers it */
  size_t num_metric_is_weighted;          /**< default 0; else num_metric_names + num_metrics */
} kiln_compile_options;

/// Fills options with Keras's defaults. struct_size: sizeof(kiln_compile_options) as the caller
/// compiled it. Ownership: the caller's struct. Thread-safety: safe.
KILN_API kiln_status *kiln_compile_options_init(kiln_compile_options *options, size_t struct_size);
/// Keras's model.compile: sets the optimizer (a handle, or by name), the loss(es) (one for every
/// output, or one per output), loss weights and metrics. As Keras's, sample and class weights
/// reach the loss and the weighted metrics (metric_is_weighted), not the others. Unknown loss, metric or
/// optimizer names are NOT_FOUND listing the known ones; several losses with another number of weights are
/// INVALID_ARGUMENT here. Counts that do not match the model's outputs are INVALID_ARGUMENT at the
/// first batch, when the outputs are known (as Keras 3, which checks them when its compiled loss
/// first meets y_pred). On failure the model keeps its earlier compile state. A new compile replaces the old
/// state. Ownership: the model keeps references to the optimizer, losses and metrics; the options stay the
/// caller's. Thread-safety: not while the model trains on another thread.
KILN_API kiln_status *kiln_model_compile(kiln_layer *model, const kiln_compile_options *options);
/// Whether kiln_model_compile has run on the model; false for NULL. Thread-safety: safe.
KILN_API bool kiln_model_is_compiled(const kiln_layer *model);
/// The compiled optimizer (model.optimizer). FAILED_PRECONDITION before compile.
/// Ownership: *out is a new handle to the model's optimizer (changes through it reach training).
/// Thread-safety: safe.
KILN_API kiln_status *kiln_model_get_optimizer(kiln_optimizer **out, const kiln_layer *model);
/// Sets model.stop_training: fit stops after the current batch (a callback sets it).
/// Thread-safety: safe, also from another thread while fit runs.
KILN_API kiln_status *kiln_model_set_stop_training(kiln_layer *model, bool stop);
/// model.stop_training; false for NULL. Thread-safety: safe.
KILN_API bool kiln_model_get_stop_training(const kiln_layer *model);
/// model.metrics_names: {"names": ["loss", "accuracy", ...]} (Keras's order; the compiled metrics
/// appear once they are built by the first batch). FAILED_PRECONDITION before compile.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_model_get_metrics_names(kiln_config **out, const kiln_layer *model);
/// Keras's model.metrics: the compiled metric objects in the order of metrics_names (the loss
/// tracker, a Mean named "loss", first), so a custom train_step can update them itself; none before
/// compile. Writes min(capacity, count) new handles to out and the count to *out_count; out may
/// be NULL when capacity is 0. Ownership: each handle is new (kiln_metric_free); they share the
/// model's metrics and their state.
KILN_API kiln_status *kiln_model_get_metrics(kiln_metric **out, size_t capacity, size_t *out_count,
                                             const kiln_layer *model);

/* ----------------------------------------------------------------------- fit */

/// Options of kiln_model_fit (Keras's fit arguments). Fill with kiln_fit_options_init first.
/// Data is either x/y tensor lists (one tensor per input / output) or a dataset of batches
/// whose elements hold the x components (num_inputs of them), then the y components, then
/// optionally a sample weight.
typedef struct kiln_fit_options {
  size_t struct_size;                       /**< sizeof(kiln_fit_options) */
  const kiln_tensor_list *x;                /**< inputs, one tensor per model input */
  const kiln_tensor_list *y;                /**< targets, one tensor per output; NULL or empty: none */
  const kiln_tensor *sample_weight;         /**< NULL (default) or one weight per sample */
  const kiln_dataset *dataset;              /**< instead of x/y: a dataset of batches */
  size_t num_inputs;                        /**< x components of a dataset element; default 1 */
  int64_t batch_size;                       /**< default 32 (ignored for datasets); -1: Keras's
                                                 None, 32 or ceil(samples / steps_per_epoch) */
  int64_t epochs;                           /**< default 1 */
  int verbose;                              /**< default -1 = "auto" (1 on a terminal, else 2);
                                                 0 silent, 1 progress bar, 2 one line per epoch */
  kiln_callback *const *callbacks;          /**< borrowed for the call */
  size_t num_callbacks;                     /**< default 0 */
  double validation_split;                  /**< default 0: the last fraction of x/y, taken
                                                 before shuffling; in [0, 1) */
  const kiln_tensor_list *validation_x;     /**< validation_data's x (NULL: none) */
  const kiln_tensor_list *validation_y;     /**< validation_data's y */
  const kiln_tensor *validation_sample_weight; /**< validation_data's sample weight (NULL: none) */
  const kiln_dataset *validation_dataset;   /**< validation_data as a dataset of batches */
  const int64_t *validation_freq;           /**< NULL/0 values: every epoch; 1 value: every N
                                                 epochs; more: the 1-based epochs listed */
  size_t num_validation_freq;               /**< default 0 */
  bool shuffle;                             /**< default true (x/y only; kiln_set_seed fixes it) */
  const double *class_weight;               /**< class index -> weight (NULL: none) */
  size_t num_class_weight;                  /**< default 0 */
  int64_t initial_epoch;                    /**< default 0 */
  int64_t steps_per_epoch;                  /**< default -1 (until the data ends) */
  int64_t validation_steps;                 /**< default -1 (until the data ends) */
  int64_t validation_batch_size;            /**< default -1 = batch_size (both -1: 32, or the
                                                 validation samples over validation_steps) */
  kiln_communicator *distribution;          /**< NULL (default): one process. Else data-parallel
                                                 over its ranks (kiln/communicator.h): each global
                                                 batch split by rows over the ranks, rank 0's
                                                 shuffle, weights and optimizer state, gradients
                                                 summed weighted by each rank's share, metrics over
                                                 all ranks; only rank 0 prints and runs
                                                 ModelCheckpoint, TensorBoard and CSVLogger, and
                                                 BackupAndRestore saves on rank 0 only. Borrowed. */
} kiln_fit_options;

/// Fills options with Keras's defaults. struct_size: sizeof(kiln_fit_options) as the caller
/// compiled it. Ownership: the caller's struct. Thread-safety: safe.
KILN_API kiln_status *kiln_fit_options_init(kiln_fit_options *options, size_t struct_size);
/// Keras's model.fit. FAILED_PRECONDITION before compile; INVALID_ARGUMENT for mismatched
/// x/y/sample_weight sizes (naming both), a wrong number of y tensors, validation_split outside
/// [0, 1) or with a dataset, empty data, an infinite dataset without steps_per_epoch (or an infinite
/// validation dataset without validation_steps); a callback's error stops training with that status.
/// A failing batch leaves the weights and optimizer as the previous batch left them.
/// Ownership: *out_history (when out_history is not NULL) is a new handle to the History
/// callback (read with kiln_callback_get_history; free with kiln_callback_free); the options
/// stay the caller's. Thread-safety: one fit per model at a time; callbacks run on this thread.
KILN_API kiln_status *kiln_model_fit(kiln_callback **out_history, kiln_layer *model, const kiln_fit_options *options);

/* ------------------------------------------------------- evaluate and predict */

/// Options of kiln_model_evaluate. Fill with kiln_evaluate_options_init first.
typedef struct kiln_evaluate_options {
  size_t struct_size;               /**< sizeof(kiln_evaluate_options) */
  const kiln_tensor_list *x;        /**< inputs, one tensor per model input */
  const kiln_tensor_list *y;        /**< targets, one tensor per output; NULL or empty: none */
  const kiln_tensor *sample_weight; /**< NULL (default) or one weight per sample */
  const kiln_dataset *dataset;      /**< instead of x/y: a dataset of batches */
  size_t num_inputs;                /**< x components of a dataset element; default 1 */
  int64_t batch_size;               /**< default 32 (ignored for datasets); -1: Keras's None,
                                         32 or ceil(samples / steps) */
  int verbose;                      /**< default -1 = "auto" */
  int64_t steps;                    /**< default -1 (until the data ends) */
  kiln_callback *const *callbacks;  /**< borrowed for the call */
  size_t num_callbacks;             /**< default 0 */
} kiln_evaluate_options;

/// Fills options with Keras's defaults. struct_size: sizeof(kiln_evaluate_options) as the caller
/// compiled it. Ownership: the caller's struct. Thread-safety: safe.
KILN_API kiln_status *kiln_evaluate_options_init(kiln_evaluate_options *options, size_t struct_size);
/// Keras's model.evaluate(..., return_dict=True): the logs {"loss": 0.3, "accuracy": 0.9, ...}
/// over all batches. Errors as kiln_model_fit. Ownership: *out_logs is new, free with
/// kiln_config_free. Thread-safety: one call per model at a time.
KILN_API kiln_status *kiln_model_evaluate(kiln_config **out_logs, kiln_layer *model,
                                         const kiln_evaluate_options *options);

/// Options of kiln_model_predict. Fill with kiln_predict_options_init first.
typedef struct kiln_predict_options {
  size_t struct_size;              /**< sizeof(kiln_predict_options) */
  const kiln_tensor_list *x;       /**< inputs, one tensor per model input */
  const kiln_dataset *dataset;     /**< instead of x: a dataset of batches (x components first) */
  size_t num_inputs;               /**< x components of a dataset element; default 1 */
  int64_t batch_size;              /**< default 32 (ignored for datasets); -1: Keras's None,
                                        32 or ceil(samples / steps) */
  int verbose;                     /**< default -1 = "auto" */
  int64_t steps;                   /**< default -1 (until the data ends) */
  kiln_callback *const *callbacks; /**< borrowed for the call */
  size_t num_callbacks;            /**< default 0 */
} kiln_predict_options;

/// Fills options with Keras's defaults. struct_size: sizeof(kiln_predict_options) as the caller
/// compiled it. Ownership: the caller's struct. Thread-safety: safe.
KILN_API kiln_status *kiln_predict_options_init(kiln_predict_options *options, size_t struct_size);
/// Keras's model.predict: runs the model in batches (training false) and gives each output's
/// batches concatenated along axis 0. Needs no compile. An infinite dataset needs steps (else
/// INVALID_ARGUMENT, as for evaluate). Ownership: *out is a new list, one
/// tensor per output. Thread-safety: one call per model at a time.
KILN_API kiln_status *kiln_model_predict(kiln_tensor_list **out, kiln_layer *model,
                                        const kiln_predict_options *options);

/* ------------------------------------------------------------------ on_batch */

/// Keras's train_on_batch(x, y, sample_weight, class_weight, return_dict=True): one step on one
/// batch; metrics are reset first. sample_weight and class_weight may be NULL; y may be NULL (no
/// targets: a model trained on its add_loss losses; INVALID_ARGUMENT naming a compiled loss or
/// metric that needs y). Ownership:
/// *out_logs (when out_logs is not NULL) is new, free with kiln_config_free.
/// Thread-safety: one call per model at a time.
KILN_API kiln_status *kiln_model_train_on_batch(kiln_config **out_logs, kiln_layer *model,
                                               const kiln_tensor_list *x, const kiln_tensor_list *y,
                                               const kiln_tensor *sample_weight, const double *class_weight,
                                               size_t num_class_weight);
/// Keras's test_on_batch(x, y, sample_weight, return_dict=True): loss and metrics of one batch
/// (metrics reset first). y may be NULL, as for train_on_batch. Ownership: *out_logs (when not
/// NULL) is new.
/// Thread-safety: one call per model at a time.
KILN_API kiln_status *kiln_model_test_on_batch(kiln_config **out_logs, kiln_layer *model,
                                              const kiln_tensor_list *x, const kiln_tensor_list *y,
                                              const kiln_tensor *sample_weight);
/// Keras's predict_on_batch: the model's outputs on x (training false). Needs no compile.
/// Ownership: *out is a new list. Thread-safety: as kiln_layer_call.
KILN_API kiln_status *kiln_model_predict_on_batch(kiln_tensor_list **out, kiln_layer *model,
                                                 const kiln_tensor_list *x);

/* ------------------------------------------------- overridable train / test steps */

/// Replacements for Keras's train_step / test_step. NULL entries mean the built-in step.
/// A step returns NULL for success or a status (kiln_status_create) that stops fit/evaluate
/// with its code. model is borrowed (valid during the call); data is the batch as fit unpacked
/// it (x components, y components, then the sample weight if any), borrowed for the call; logs is
/// an empty config the step fills with name -> float (typically the kiln_model_compute_metrics
/// result, copied with kiln_config_update). Steps run on the thread that called fit/evaluate.
typedef struct kiln_model_step_callbacks {
  size_t struct_size; /**< sizeof(kiln_model_step_callbacks) */
  /// One training step: forward under a tape, kiln_model_compute_loss, gradients,
  /// kiln_optimizer_apply_gradients, kiln_model_compute_metrics.
  kiln_status *(*train_step)(kiln_config *logs, kiln_layer *model, const kiln_tensor_list *data, void *user_data);
  /// One evaluation step: forward (training false), kiln_model_compute_loss,
  /// kiln_model_compute_metrics.
  kiln_status *(*test_step)(kiln_config *logs, kiln_layer *model, const kiln_tensor_list *data, void *user_data);
  /// Frees user_data when the callbacks are replaced or the model dies. May run on any thread.
  void (*destroy)(void *user_data);
} kiln_model_step_callbacks;

/// Sets (or, with callbacks NULL, clears) the model's train_step / test_step replacements; the
/// earlier user_data is destroyed. callbacks is copied. On failure destroy is not called.
/// Ownership: the model keeps user_data until destroy. Thread-safety: not while the model trains.
KILN_API kiln_status *kiln_model_set_step_callbacks(kiln_layer *model, const kiln_model_step_callbacks *callbacks,
                                                   void *user_data);
/// Keras's compute_loss(x, y, y_pred, sample_weight): the sum of the compiled losses of every
/// output (times loss_weights), in float32, plus the model's regularization losses
/// (model.losses). Recorded on the calling thread's tapes. x may be NULL; y may be NULL when no loss
/// is compiled (the model's add_loss losses alone). FAILED_PRECONDITION
/// before compile. Ownership: *out is a new float32 scalar. Thread-safety: as kiln_layer_call.
KILN_API kiln_status *kiln_model_compute_loss(kiln_tensor **out, kiln_layer *model, const kiln_tensor_list *x,
                                             const kiln_tensor_list *y, const kiln_tensor_list *y_pred,
                                             const kiln_tensor *sample_weight);
/// Keras's compute_metrics(x, y, y_pred, sample_weight): updates the compiled metrics (the loss
/// tracker with the last compute_loss value) and gives their results {"loss": ..., "accuracy":
/// ...}. x may be NULL; y may be NULL when no metric is compiled. FAILED_PRECONDITION before
/// compile. Ownership: *out_logs is new, free with kiln_config_free. Thread-safety: one call per
/// model at a time.
KILN_API kiln_status *kiln_model_compute_metrics(kiln_config **out_logs, kiln_layer *model,
                                                const kiln_tensor_list *x, const kiln_tensor_list *y,
                                                const kiln_tensor_list *y_pred, const kiln_tensor *sample_weight);

#ifdef __cplusplus
}
#endif

#endif /* KILN_TRAINING_H */
