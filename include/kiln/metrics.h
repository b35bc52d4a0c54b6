/*
 * kiln/metrics.h — Keras metrics: stateful objects updated batch by batch (update_state), read
 * (result) and cleared (reset_state), whose state lives in kiln variables so checkpoints hold it.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 *   kiln_metric *acc = NULL;
 *   kiln_tensor *value = NULL;
 *   kiln_metric_create(&acc, "SparseCategoricalAccuracy", NULL);
 *   kiln_metric_update_state(acc, labels, probabilities, NULL);   // once per batch
 *   kiln_metric_result(&value, acc);                              // float32 scalar
 *   kiln_metric_reset_state(acc);                                 // each epoch
 *
 * Classes (Keras 3 names, options and defaults; every one also takes "name" and "dtype"
 * ("float32" only)):
 *   Mean, Sum                       take values: kiln_metric_update_state_values
 *   Accuracy, CategoricalAccuracy, SparseCategoricalAccuracy, MeanSquaredError, RootMeanSquaredError
 *   BinaryAccuracy                  threshold=0.5
 *   TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy   k=5 (as TF's in_top_k: a row with a
 *                                   non-finite score or an out-of-range label counts as a miss);
 *                                   SparseTopK also from_sorted_ids=false (true: y_pred holds each
 *                                   row's category ids, best first)
 *   Precision, Recall               thresholds=null (0.5, or -1e10 with top_k), top_k=null, class_id=null
 *   AUC                             num_thresholds=200, curve="ROC" | "PR" | "PRGAIN",
 *                                   summation_method="interpolation" | "minoring" | "majoring",
 *                                   thresholds=null, from_logits=false, multi_label=false,
 *                                   num_labels=null, label_weights=null. multi_label: y_pred
 *                                   [samples, labels], one AUC per label and their mean (or
 *                                   label_weights-weighted mean) as the result; num_labels sizes
 *                                   the state at creation, else the first update does. Without
 *                                   multi_label, label_weights weigh the columns of y_pred's last
 *                                   axis in the counts
 *   IoU, OneHotIoU                  num_classes, target_class_ids (required), ignore_class=null,
 *                                   sparse_y_true=true (IoU), sparse_y_pred, axis=-1
 *   MeanIoU, OneHotMeanIoU          num_classes (required), as IoU otherwise
 *   BinaryIoU                       target_class_ids=[0, 1], threshold=0.5
 *                                   (IoU dtypes: "int" (int64, the default), "int32", "float32")
 *   F1Score                         average=null | "micro" | "macro" | "weighted",
 *                                   threshold=null (null: each row's largest score);
 *                                   y_true and y_pred [batch, classes]; average null gives
 *                                   a [classes] result, which fit cannot log
 *   FBetaScore                      as F1Score, and beta=1.0
 *   TruePositives, FalsePositives, TrueNegatives, FalseNegatives
 *                                   thresholds=null (0.5): the (weighted) count at each threshold,
 *                                   a scalar for one threshold, a vector for several
 *   SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision
 *                                   specificity / sensitivity / recall / precision (required, in
 *                                   [0, 1]), num_thresholds=200 (evenly spaced in [0, 1]; 1: 0.5),
 *                                   class_id=null: the best of the second rate among the thresholds
 *                                   where the first is at least the value given (0 if none is)
 *   R2Score                         class_aggregation="uniform_average" | "variance_weighted_average"
 *                                   | null (one score per output), num_regressors=0 (> 0: adjusted
 *                                   R2); y_true and y_pred (batch, outputs)
 *   PearsonCorrelation, ConcordanceCorrelation
 *                                   axis=-1 (an int, a list of ints, or null for every axis): the
 *                                   mean over samples of each sample's coefficient along axis
 *   MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCoshError,
 *   Poisson, KLDivergence, Hinge, SquaredHinge, CategoricalHinge
 *                                   the mean of the loss function's values
 *   CosineSimilarity                axis=-1: the mean similarity (the loss is its negative)
 *   BinaryCrossentropy              from_logits=false, label_smoothing=0
 *   CategoricalCrossentropy         from_logits=false, label_smoothing=0, axis=-1
 *   SparseCategoricalCrossentropy   from_logits=false, ignore_class=null, axis=-1 (only -1)
 *   MeanMetricWrapper               fn (a loss name), fn_config: a Mean of the loss's per-sample values
 * Function names and aliases make the class named as given: accuracy / acc, binary_accuracy,
 * categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
 * sparse_top_k_categorical_accuracy, mean_squared_error / mse, root_mean_squared_error, precision,
 * recall, auc, f1_score, f_beta_score, and the snake_case names of the classes above
 * (mean_absolute_error, cosine_similarity, true_positives, r2_score, binary_crossentropy / bce /
 * BCE, ...); any other loss name or alias (kiln/losses.h: "mae", "kld", "huber" ...) makes a
 * MeanMetricWrapper of that loss.
 * A loss's mask (SparseCategoricalCrossentropy's ignore_class) weighs a metric's values only when
 * there are sample weights, as Keras (without them, ignored entries count as zeros).
 *
 * State variables are non-trainable float32, named "<metric name>/<Keras name>": total and count
 * (Mean and its wrappers), total (Sum), true_positives and false_positives (Precision),
 * true_positives and false_negatives (Recall), true_positives, false_positives, true_negatives and
 * false_negatives (AUC: [num_thresholds], or [num_thresholds, labels] with multi_label, made at
 * the first update unless num_labels is given; the four ...At... classes: [num_thresholds]),
 * accumulator (TruePositives and the other counts: [thresholds]), num_samples, squared_sum, sum,
 * residual and count (R2Score; all but num_samples made at the first update, one per output),
 * total_confusion_matrix (the IoU classes), true_positives,
 * false_positives, false_negatives and intermediate_weights (F1Score and FBetaScore, made at the first
 * update, one value per class). A metric serialises its own calls with a mutex: several threads may update
 * one metric at once.
 */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/// A metric from its class name, Keras function name or alias, or a loss name (see above), and
/// its config (NULL: defaults). Unknown names are NOT_FOUND listing the known ones; unknown or
/// ill-typed keys INVALID_ARGUMENT naming the key. Ownership: *out is new, free with
/// kiln_metric_free; config stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_create(kiln_metric **out, const char *name, const kiln_config *config);
/// Keras's MeanMetricWrapper(loss): a Mean of loss's per-sample values (its reduction is not used),
/// named name (NULL or "": the loss's name). Ownership: *out is new; the metric holds its own
/// reference to the loss, so the caller may free its handle. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_create_mean_wrapper(kiln_metric **out, const kiln_loss *loss, const char *name);
/// What compile does with a metric identifier (Keras's get_metric): "accuracy" or "acc" gives
/// BinaryAccuracy, SparseCategoricalAccuracy or CategoricalAccuracy, and "crossentropy" or "ce" the
/// matching cross-entropy's MeanMetricWrapper, named as the identifier: from loss when it is a
/// BinaryCrossentropy, SparseCategoricalCrossentropy or CategoricalCrossentropy, otherwise from
/// the shapes (-1 for unknown dims): y_pred's last dim 1 is binary; y_true of lower rank, or of
/// equal rank with last dim 1, is sparse; else categorical. Other identifiers are as
/// kiln_metric_create. loss may be NULL. Ownership: *out is new; the arguments stay the caller's.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_metric_resolve(kiln_metric **out, const char *identifier, const kiln_loss *loss,
                                          const int64_t *y_true_dims, size_t y_true_rank,
                                          const int64_t *y_pred_dims, size_t y_pred_rank);
/// A metric from Keras's serialized form {"class_name": ..., "config": {...}} (fresh state).
/// Ownership: *out is new; serialized stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_deserialize(kiln_metric **out, const kiln_config *serialized);
/// The serialized form {"class_name": ..., "config": get_config()}.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_serialize(kiln_config **out, const kiln_metric *metric);
/// get_config: name, dtype, then the class's own keys.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_get_config(kiln_config **out, const kiln_metric *metric);
/// A new handle to the same metric (same state). Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_clone(kiln_metric **out, const kiln_metric *metric);
/// Frees a handle; the metric lives on while other handles hold it. Accepts NULL.
/// Thread-safety: safe on distinct handles.
KILN_API void kiln_metric_free(kiln_metric *metric);
/// The metric's identity, fixed for its life and never reused; 0 for NULL.
/// Lifetime: a value. Thread-safety: safe.
KILN_API uint64_t kiln_metric_get_id(const kiln_metric *metric);
/// The name ("sparse_categorical_accuracy" unless given); NULL for NULL.
/// Lifetime: borrowed, valid while the metric lives. Thread-safety: safe.
KILN_API const char *kiln_metric_get_name(const kiln_metric *metric);
/// The class name ("SparseCategoricalAccuracy"); NULL for NULL.
/// Lifetime: borrowed, valid while the metric lives. Thread-safety: safe.
KILN_API const char *kiln_metric_get_class_name(const kiln_metric *metric);
/// Whether the metric takes values (Mean, Sum: kiln_metric_update_state_values) rather than
/// y_true and y_pred; false for NULL. Lifetime: a value. Thread-safety: safe.
KILN_API bool kiln_metric_takes_values(const kiln_metric *metric);
/// update_state(y_true, y_pred, sample_weight): accumulates one batch (sample_weight NULL: none).
/// Bad shapes or labels are INVALID_ARGUMENT and leave the state as it was; Mean and Sum give
/// INVALID_ARGUMENT (use kiln_metric_update_state_values). Ownership: the inputs stay the caller's.
/// Thread-safety: safe, also from several threads on one metric (a mutex serialises updates).
KILN_API kiln_status *kiln_metric_update_state(kiln_metric *metric, const kiln_tensor *y_true,
                                               const kiln_tensor *y_pred, const kiln_tensor *sample_weight);
/// Mean / Sum's update_state(values, sample_weight): values of any shape, reduced per sample as
/// Keras does (sample_weight NULL: none; the mean divides by the weights' sum). Other metrics give
/// INVALID_ARGUMENT. Ownership: the inputs stay the caller's. Thread-safety: as kiln_metric_update_state.
KILN_API kiln_status *kiln_metric_update_state_values(kiln_metric *metric, const kiln_tensor *values,
                                                      const kiln_tensor *sample_weight);
/// result(): the current value, a float32 scalar (a vector for Precision or Recall with several
/// thresholds). Ownership: *out is new. Thread-safety: safe, also during updates on other threads.
KILN_API kiln_status *kiln_metric_result(kiln_tensor **out, const kiln_metric *metric);
/// reset_state() (TF 2.x's reset_states): every state variable back to zero.
/// Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_reset_state(kiln_metric *metric);
/// The state variables in creation order. Writes new handles to out[0..min(capacity, count)) and
/// the count to *out_count; call with capacity 0 (out may then be NULL) to learn the count.
/// Ownership: each out[i] is new, free with kiln_variable_free. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_get_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                                const kiln_metric *metric);
/// Keras 3's metric functions (keras.metrics.binary_accuracy(y_true, y_pred, threshold=0.5), ...):
/// the values the metric of that name averages, without any state. accuracy and binary_accuracy
/// (threshold=0.5) give one value per element (1 where they agree, else 0); categorical_accuracy,
/// sparse_categorical_accuracy, top_k_categorical_accuracy (k=5) and sparse_top_k_categorical_accuracy
/// (k=5, from_sorted_ids=false) one per sample; pearson_correlation and concordance_correlation
/// (axis=-1, a list, or null for every axis) one per sample along axis; a loss function's name
/// (mean_squared_error / mse, mean_absolute_error, binary_crossentropy, categorical_crossentropy,
/// sparse_categorical_crossentropy, hinge, huber, kl_divergence, log_cosh, poisson, ...: kiln/losses.h)
/// its per-sample losses. config (NULL: none) holds the function's keyword arguments; name, dtype
/// and reduction are INVALID_ARGUMENT, unknown names NOT_FOUND, bad shapes INVALID_ARGUMENT.
/// Ownership: *out is new, free with kiln_tensor_free; the inputs stay the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_metric_function_call(kiln_tensor **out, const char *name,
                                                const kiln_tensor *y_true, const kiln_tensor *y_pred,
                                                const kiln_config *config);
/// Whether name is a metric class, function name, alias or loss name kiln_metric_create knows;
/// false for NULL. Lifetime: a value. Thread-safety: safe.
KILN_API bool kiln_metric_is_registered(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* KILN_METRICS_H */
