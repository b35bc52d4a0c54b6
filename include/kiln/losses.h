/*
 * kiln/losses.h — Keras losses: built-in losses by class name or Keras function alias, called on
 * (y_true, y_pred, sample_weight) with Keras's reductions.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * One handle type, kiln_loss, holding one reference to a shared loss object; settings travel as
 * a kiln_config (kiln/config.h) with Keras's keys and defaults. Losses have no state: one loss
 * may be called from several threads at once.
 *
 *   kiln_config *c = NULL;
 *   kiln_loss *loss = NULL;
 *   kiln_tensor *value = NULL;
 *   kiln_config_create(&c);
 *   kiln_config_set_bool(c, "from_logits", true);
 *   kiln_loss_create(&loss, "SparseCategoricalCrossentropy", c);
 *   kiln_loss_call(&value, loss, labels, logits, NULL);   // a float32 scalar, differentiable
 *
 * Classes (Keras 3 names, options and defaults; every one also takes "name" and "reduction":
 * "sum_over_batch_size" (default: the weighted sum divided by the number of per-sample losses,
 * not by the weights' sum), "sum", "mean" (the same as "sum_over_batch_size"),
 * "mean_with_sample_weight" (divided by the weights' sum) or "none"):
 *   SparseCategoricalCrossentropy  from_logits=false, ignore_class=null, axis=-1 (the last axis only)
 *   CategoricalCrossentropy        from_logits=false, label_smoothing=0.0, axis=-1
 *   BinaryCrossentropy             from_logits=false, label_smoothing=0.0, axis=-1
 *   MeanSquaredError, MeanAbsoluteError, KLDivergence
 *   Huber                          delta=1.0
 *   CosineSimilarity               axis=-1
 *   MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCosh, Poisson
 *   Hinge, SquaredHinge            labels -1 or 1 (labels that are all 0 or 1 become -1 or 1)
 *   CategoricalHinge               one-hot labels
 *   BinaryFocalCrossentropy        apply_class_balancing=false, alpha=0.25, gamma=2.0,
 *                                  from_logits=false, label_smoothing=0.0, axis=-1
 *   CategoricalFocalCrossentropy   alpha=0.25 (a number, or a list: one per class), gamma=2.0,
 *                                  from_logits=false, label_smoothing=0.0, axis=-1; one-hot labels
 *   Dice                           axis=null (null: every axis, one value for the batch; an int or
 *                                  a list of ints: summed over those axes, e.g. [1, 2, 3] per image)
 *   Tversky                        alpha=0.5 (false positives), beta=0.5 (false negatives), axis=null
 *   CategoricalGeneralizedCrossEntropy  q=0.5 in (0, 1); integer labels [...] or [..., 1]
 *   Circle                         gamma=80.0, margin=0.4, remove_diagonal=true; integer labels [B]
 *                                  or [B, 1] and L2-normalized embeddings [B, D], each sample
 *                                  against the rest of the batch; samples whose label no other
 *                                  sample has get no loss and are left out of the mean
 *   CTC                            no options; integer labels [B, max_length] (floats truncate)
 *                                  padded with 0 (the blank) at the end, logits [B, frames,
 *                                  classes]: per sample kiln_ctc_loss over every frame and the
 *                                  non-zero labels
 * Aliases: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy / bce / BCE,
 * mean_squared_error / mse / MSE, mean_absolute_error / mae / MAE, huber / huber_loss,
 * kl_divergence / kld / KLD / kullback_leibler_divergence, cosine_similarity,
 * mean_absolute_percentage_error / mape / MAPE, mean_squared_logarithmic_error / msle / MSLE,
 * log_cosh / logcosh, poisson, hinge, squared_hinge, categorical_hinge, binary_focal_crossentropy,
 * categorical_focal_crossentropy, dice, tversky, circle, categorical_generalized_cross_entropy, ctc.
 * Probabilities (from_logits false) are clipped to [1e-7, 1 - 1e-7]; from_logits true runs the
 * fused, stable kiln_*_cross_entropy_with_logits ops (sparse labels are never one-hot encoded).
 */
#ifndef KILN_LOSSES_H
#define KILN_LOSSES_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/// A loss from its class name or Keras alias and its config (NULL: defaults). Unknown names are
/// NOT_FOUND listing the known ones; unknown or ill-typed keys INVALID_ARGUMENT naming the key.
/// Ownership: *out is new, free with kiln_loss_free; config stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_create(kiln_loss **out, const char *name, const kiln_config *config);
/// A loss written by the caller (kiln_loss_create_custom). Read only up to struct_size; NULL
/// entries mean "default".
typedef struct kiln_loss_callbacks {
  size_t struct_size; /**< sizeof(kiln_loss_callbacks) */
  /// Required. *out = the per-sample losses of y_true and y_pred (borrowed for the call; y_true
  /// is cast to y_pred's floating dtype and both are squeezed or expanded to the same rank), a new
  /// tensor made with kiln's ops, so the tape differentiates through it; a scalar stands for every
  /// sample. Return NULL, or a status (kiln_status_create) that the calling kiln function returns
  /// with its code (*out is then freed if set). Runs on the thread that uses the loss (fit's, a
  /// kiln_loss_call's), possibly on several threads at once.
  kiln_status *(*call)(kiln_tensor **out, const kiln_tensor *y_true, const kiln_tensor *y_pred,
                       void *user_data);
  /// Frees user_data when the last copy of the loss goes (not when creation fails). May run on
  /// any thread. Default: nothing.
  void (*destroy)(void *user_data);
} kiln_loss_callbacks;
/// A loss computed by callbacks->call, weighed and reduced as kiln's own: Keras's
/// LossFunctionWrapper(fn), which compile(loss=my_fn) makes of a plain function, or (class_name
/// set) a Loss subclass with its own call. It goes wherever a kiln_loss goes (kiln_loss_call,
/// compile, kiln_metric_create_mean_wrapper: Keras's MeanMetricWrapper(fn)). class_name: NULL for
/// "LossFunctionWrapper", whose config then holds "fn": fn_name; fn_name: the function's name (the
/// default loss name), not empty. config (NULL: defaults): "name", "reduction". callbacks is
/// copied; user_data is passed to each. Serializing works; deserializing such a config needs the
/// function or class registered (kiln_loss_register_class), else it is NOT_FOUND (no function
/// travels in a config: a model compiled with it loads with compile false).
/// Ownership: *out is new, free with kiln_loss_free; config stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_create_custom(kiln_loss **out, const char *class_name, const char *fn_name,
                                              const kiln_config *config, const kiln_loss_callbacks *callbacks,
                                              void *user_data);
/// How to make a custom loss from its config, so that a name finds it as Keras's registered custom
/// objects (custom_objects, register_keras_serializable): kiln_loss_create(&l, name, config),
/// compile's loss_names and metric_names, kiln_loss_deserialize, a MeanMetricWrapper's "fn" and
/// the compile config of a loaded SavedModel. Callbacks return NULL for success or a status.
typedef struct kiln_loss_class_callbacks {
  size_t struct_size; /**< sizeof(kiln_loss_class_callbacks) */
  /// Required. A new loss from config: what the loss's get_config wrote ("name", "reduction"; a
  /// LossFunctionWrapper's "fn" is taken out), or the caller's config of kiln_loss_create (possibly
  /// empty; a metric of the function asks for "reduction": "none"). Typically
  /// kiln_loss_create_custom with that config.
  /// *out is a new handle that kiln takes. Runs on the thread that asked for the loss, with no kiln
  /// lock held; may run on several threads at once.
  kiln_status *(*from_config)(kiln_loss **out, const kiln_config *config, void *user_data);
  /// Frees user_data when the registration ends (kiln_loss_unregister_class, or a new registration
  /// of the name) and no from_config still runs; never at process exit. May run on any thread.
  /// Default: nothing.
  void (*destroy)(void *user_data);
} kiln_loss_class_callbacks;
/// Registers the custom loss name: a Loss subclass's class name (the class_name given to
/// kiln_loss_create_custom, which its serialized form carries), or a function's name (the fn_name
/// of a LossFunctionWrapper, which its config holds as "fn"; Keras's registered names such as
/// "MyPackage>my_loss" work as any). A new registration of a name replaces the old one; a built-in
/// class or alias is INVALID_ARGUMENT. callbacks is copied. On failure destroy is not called
/// (user_data stays the caller's). Thread-safety: safe.
KILN_API kiln_status *kiln_loss_register_class(const char *name, const kiln_loss_class_callbacks *callbacks,
                                               void *user_data);
/// Ends the registration of a custom loss: NOT_FOUND when none has that name, INVALID_ARGUMENT for
/// a built-in one. Losses already made live on. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_unregister_class(const char *name);
/// A loss from Keras's serialized form {"class_name": ..., "config": {...}}.
/// Ownership: *out is new; serialized stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_deserialize(kiln_loss **out, const kiln_config *serialized);
/// The serialized form {"class_name": ..., "config": get_config()}.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_serialize(kiln_config **out, const kiln_loss *loss);
/// get_config: name, reduction, then the class's own keys.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_get_config(kiln_config **out, const kiln_loss *loss);
/// A new handle to the same loss. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_loss_clone(kiln_loss **out, const kiln_loss *loss);
/// Frees a handle; the loss lives on while other handles hold it. Accepts NULL.
/// Thread-safety: safe on distinct handles.
KILN_API void kiln_loss_free(kiln_loss *loss);
/// The loss's identity, fixed for its life and never reused; 0 for NULL.
/// Lifetime: a value. Thread-safety: safe.
KILN_API uint64_t kiln_loss_get_id(const kiln_loss *loss);
/// The name ("sparse_categorical_crossentropy" unless given); NULL for NULL.
/// Lifetime: borrowed, valid while the loss lives. Thread-safety: safe.
KILN_API const char *kiln_loss_get_name(const kiln_loss *loss);
/// The class name ("SparseCategoricalCrossentropy"); NULL for NULL.
/// Lifetime: borrowed, valid while the loss lives. Thread-safety: safe.
KILN_API const char *kiln_loss_get_class_name(const kiln_loss *loss);
/// Whether name is a loss class or alias kiln_loss_create knows (registered custom losses too);
/// false for NULL.
/// Lifetime: a value. Thread-safety: safe.
KILN_API bool kiln_loss_is_registered(const char *name);
/// Keras's loss(y_true, y_pred, sample_weight): per-sample losses, times sample_weight (NULL:
/// none; ranks matched as Keras does, a lower-rank weight broadcasting over trailing dims), reduced
/// by the loss's reduction: a scalar, or the per-sample losses for "none". y_pred float32 (or
/// float64 for the losses whose ops take it; integer, uint8 and bool predictions compute as their
/// float32 copies, as Keras converts y_pred); y_true of y_pred's shape (class ids of y_pred's shape
/// minus the class axis for SparseCategoricalCrossentropy, in [0, classes): others are
/// INVALID_ARGUMENT naming the label). Recorded on the calling thread's tapes, so gradients flow to
/// y_pred (and to y_true where the ops allow). Ownership: *out is new; the inputs stay the
/// caller's. Thread-safety: safe, also on one loss from several threads.
KILN_API kiln_status *kiln_loss_call(kiln_tensor **out, const kiln_loss *loss, const kiln_tensor *y_true,
                                     const kiln_tensor *y_pred, const kiln_tensor *sample_weight);

#ifdef __cplusplus
}
#endif

#endif /* KILN_LOSSES_H */
