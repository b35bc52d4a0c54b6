/*
 * kiln/saved_model.h — the SavedModel: a model written to a directory with everything needed to
 * bring it back without the code that defined it (tf.saved_model.save / load, Keras's
 * model.save / keras.models.load_model), and served through its signatures.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * The directory:
 *   saved_model.pb          the model's Keras config (its layers' configs), the shapes it was built
 *                           with, the serving signatures (input and output names, dtypes,
 *                           shapes), the compile config and the kiln version
 *   variables/variables.*   a TensorFlow checkpoint of the weights (and a compiled model's
 *                           optimizer state), as kiln_model_save_weights writes it
 *   fingerprint.pb          hashes of the parts; loading checks saved_model.pb against it
 * Built-in layers need nothing at load time; custom classes come back through the layer registry
 * (kiln_layer_register_class, a C++ class, a Python class), registered before loading.
 *
 * Serving from C, in a handful of calls:
 *
 *   kiln_saved_model *sm = NULL;
 *   const kiln_saved_model_signature *serve = NULL;
 *   kiln_tensor_list *outputs = NULL;
 *   kiln_status *st = kiln_saved_model_load(&sm, "export_dir", NULL);
 *   if (!st) st = kiln_saved_model_get_signature(&serve, sm, "serving_default");
 *   if (!st) st = kiln_saved_model_signature_run(&outputs, serve, &images, 1);  // a [n, 784] float32
 *   ...kiln_tensor_list_get(outputs, 0) holds the [n, 10] predictions...
 *   kiln_tensor_list_free(outputs);
 *   kiln_saved_model_free(sm);
 *
 * A loaded model and its signatures may be run from any number of threads at once.
 */
#ifndef KILN_SAVED_MODEL_H
#define KILN_SAVED_MODEL_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded SavedModel: the model and its signatures. */
typedef struct kiln_saved_model kiln_saved_model;
/** A signature of a loaded SavedModel (TF's .signatures["serving_default"]), owned by it. */
typedef struct kiln_saved_model_signature kiln_saved_model_signature;

/// tf.saved_model.save(model, export_dir) / Keras's model.save(export_dir): writes the SavedModel
/// of a built model. The directory is written under a temporary name beside it, fsynced, then put
/// in place by a rename (replacing an earlier SavedModel there atomically), so a crash leaves the
/// previous export or the new one, never a mix. Other files of an earlier export there (besides
/// saved_model.pb, fingerprint.pb and variables/: assets.extra/, a README) are kept in the new one.
/// options (may be NULL), a kiln_config with:
///   "inputs": a list of configs, one per model input: {"name": "pixels", "dtype": "float32",
///             "shape": [null, 784]}, each key optional (defaults: Keras's names — a Sequential's
///             "<first layer>_input", else "input_1", ... — float32, the built shape with the
///             batch dim unknown); without "inputs", a Sequential model's Input gives the dtype
///             (an Embedding's int32 ids), as Keras's traced signature;
///   "output_names": a list of strings, one per output (defaults: a Sequential's last layer's
///             name, else "output_1", ...).
/// Errors: INVALID_ARGUMENT for NULL arguments, an empty directory or bad options (naming the
/// key); FAILED_PRECONDITION for a model that is not built, or an existing directory that holds
/// other files and no saved_model.pb; RESOURCE_EXHAUSTED for a full disk.
/// Ownership: nothing changes hands. Thread-safety: not while the model trains on another thread.
KILN_API kiln_status *kiln_saved_model_save(const kiln_layer *model, const char *export_dir,
                                            const kiln_config *options);

/// tf.saved_model.load(export_dir): rebuilds the model from its config, builds it, compiles it as
/// it was compiled, restores its variables (checking every size and CRC32C) and makes its
/// signatures. options (may be NULL), a kiln_config with:
///   "compile": false leaves the model uncompiled (default true);
///   "inference_weights": "float32" (default), "bfloat16" or "int8": the model's Dense layers
///             read their kernels packed in that form (once per kernel value; the biases and
///             outputs stay float32) in float32 calls that no GradientTape records with at most 8
///             rows — a signature's or predict's batch 1 to 8 — whose time the weight traffic
///             bounds. "bfloat16": kernels rounded to bfloat16 (nearest even), inputs and sums in
///             float32; results within about 2^-9 relative of float32's, about twice as fast.
///             "int8": dynamic-range quantization as TFLite's: each kernel column scaled to
///             [-127, 127] by its largest magnitude and rounded, each input row likewise to
///             [-32767, 32767] at every call, the integer products summed exactly and scaled
///             back; each output within sum_k (|x_k| s_j + t |w_kj|) / 2 of the float32 product
///             (s_j = max|w_.j| / 127, t = max|x| / 32767), typically 1e-3 relative, and a row's
///             result does not depend on the other rows. A quarter of float32's bytes, so a
///             small model's kernels stay in a core's cache between calls. A kernel holding NaN
///             or inf stays float32; an input row holding them is computed in float32 against
///             the quantized kernel. Training and larger batches are unchanged. Another value is
///             INVALID_ARGUMENT naming the key.
/// Errors: NOT_FOUND when export_dir has no saved_model.pb, or for a layer class the registry does
/// not know (named); DATA_LOSS for damaged files (naming the file, and the tensor for variables);
/// UNIMPLEMENTED for a SavedModel written by a newer kiln format.
/// Ownership: *out is new, free with kiln_saved_model_free. Thread-safety: safe.
KILN_API kiln_status *kiln_saved_model_load(kiln_saved_model **out, const char *export_dir,
                                            const kiln_config *options);
/// keras.models.load_model(export_dir): as kiln_saved_model_load, giving the model alone.
/// Ownership: *out is a new handle, free with kiln_layer_free. Thread-safety: safe.
KILN_API kiln_status *kiln_saved_model_load_model(kiln_layer **out, const char *export_dir,
                                                  const kiln_config *options);
/// Frees a loaded SavedModel (NULL is a no-op). Its signatures go with it; model handles taken
/// with kiln_saved_model_get_model stay valid.
KILN_API void kiln_saved_model_free(kiln_saved_model *saved_model);
/// The loaded model, for predict, evaluate, fit and everything else a model does.
/// Ownership: *out is a new handle, free with kiln_layer_free. Thread-safety: safe.
KILN_API kiln_status *kiln_saved_model_get_model(kiln_layer **out, const kiln_saved_model *saved_model);
/// The kiln version that wrote the SavedModel ("0.1.0"). Lifetime: borrowed, valid while
/// saved_model lives. Thread-safety: safe.
KILN_API kiln_status *kiln_saved_model_get_kiln_version(const char **out, const kiln_saved_model *saved_model);
/// The number of signatures, and the key of signature i (0 <= i < n; OUT_OF_RANGE otherwise).
/// Lifetime: keys are borrowed, valid while saved_model lives. Thread-safety: safe.
KILN_API kiln_status *kiln_saved_model_get_num_signatures(size_t *out, const kiln_saved_model *saved_model);
KILN_API kiln_status *kiln_saved_model_get_signature_key(const char **out, const kiln_saved_model *saved_model,
                                                         size_t index);
/// The signature under key (NULL: "serving_default"). Errors: NOT_FOUND naming the key and the
/// keys there are. Lifetime: *out is borrowed, valid while saved_model lives. Thread-safety: safe.
KILN_API kiln_status *kiln_saved_model_get_signature(const kiln_saved_model_signature **out,
                                                     const kiln_saved_model *saved_model, const char *key);

/// The number of the signature's inputs / outputs.
KILN_API kiln_status *kiln_saved_model_signature_get_num_inputs(size_t *out,
                                                                const kiln_saved_model_signature *signature);
KILN_API kiln_status *kiln_saved_model_signature_get_num_outputs(size_t *out,
                                                                 const kiln_saved_model_signature *signature);
/// Input / output i: its name (borrowed, valid while the SavedModel lives), dtype, and dims
/// (-1 unknown): up to capacity of them go to out_dims, the rank to *out_rank. Any of out_name,
/// out_dtype, out_dims (with capacity 0) may be NULL. Errors: OUT_OF_RANGE for i past the end.
KILN_API kiln_status *kiln_saved_model_signature_get_input(const char **out_name, kiln_dtype *out_dtype,
                                                           int64_t *out_dims, size_t capacity, size_t *out_rank,
                                                           const kiln_saved_model_signature *signature,
                                                           size_t index);
KILN_API kiln_status *kiln_saved_model_signature_get_output(const char **out_name, kiln_dtype *out_dtype,
                                                            int64_t *out_dims, size_t capacity, size_t *out_rank,
                                                            const kiln_saved_model_signature *signature,
                                                            size_t index);
/// Runs the model in inference mode on inputs[0 .. num_inputs), one per signature input in its
/// order; *out gets the outputs in the signature's output order.
/// Errors: INVALID_ARGUMENT naming the input for a wrong count, dtype or shape (known dims must
/// match). Ownership: *out is new, free with kiln_tensor_list_free. Thread-safety: safe; any
/// number of threads may run one signature at once.
KILN_API kiln_status *kiln_saved_model_signature_run(kiln_tensor_list **out,
                                                     const kiln_saved_model_signature *signature,
                                                     const kiln_tensor *const *inputs, size_t num_inputs);
/// As kiln_saved_model_signature_run, with the inputs by name (names[i] names inputs[i]; each
/// input exactly once, in any order). Errors: INVALID_ARGUMENT for an unknown, repeated or
/// missing name.
KILN_API kiln_status *kiln_saved_model_signature_run_named(kiln_tensor_list **out,
                                                           const kiln_saved_model_signature *signature,
                                                           const char *const *names,
                                                           const kiln_tensor *const *inputs, size_t num_inputs);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_SAVED_MODEL_H */
