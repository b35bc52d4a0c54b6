/*
 * kiln/init_from_checkpoint.h — tf.compat.v1.train.init_from_checkpoint: pretrained values from a
 * TensorFlow checkpoint copied into kiln variables through an assignment map of names.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * The map is a list of pairs, checkpoint name -> variable name, with TensorFlow's scope forms:
 * "bert/pooler/dense/kernel" -> "model/pooler/kernel" (one variable), "bert/" -> "model/" (every
 * variable under model/ from the checkpoint name with the same rest), "/" -> "model/" (from the
 * checkpoint's root). Variable names are looked up among a model's variables and a list of
 * variables; a pair may give the variable itself instead of its name.
 *
 *   const char *ckpt_names[] = {"bert/embeddings/word_embeddings", "bert/pooler/"};
 *   const char *var_names[] = {"bert_model/word_embeddings/embeddings", "bert_model/pooler/"};
 *   kiln_init_from_checkpoint_options o;
 *   kiln_config *report = NULL;
 *   kiln_init_from_checkpoint_options_init(&o, sizeof o);
 *   o.allow_reshape = true;   // TF1 attention kernels [H, H] into [H, heads, H / heads]
 *   st = kiln_init_from_checkpoint(&report, model, NULL, 0, "uncased_L-12_H-768_A-12/bert_model.ckpt",
 *                                  ckpt_names, var_names, NULL, 2, &o);
 *   ...read report: "matched", "unmatched_checkpoint_names", "unmatched_variables", "summary"...
 *   kiln_config_free(report);
 *
 * Checkpoints of any kind are read: TF1 name-based (google-research/bert's, whose keys are the
 * variables' names), TF2 object-based (a key `<path>/.ATTRIBUTES/VARIABLE_VALUE` is named by its
 * path, "model/layer_with_weights-0/kernel"; the full key is accepted too) and kiln's own.
 * Optimizer slots and counters (`<var>/adam_m`, `<var>/adam_v`, `<var>/Adam`, `<var>/Momentum`,
 * `global_step`, TF2's `.OPTIMIZER_SLOT` keys, `optimizer/...` and `save_counter`) are left out
 * unless a pair names them; the object graph always is.
 *
 * All or nothing: every pair is resolved and checked (dtype, then shape: INVALID_ARGUMENT naming
 * both names, dtypes and shapes) and every value read (a corrupt file is DATA_LOSS) before any
 * variable changes.
 *
 * Threads: safe to call from any thread; the variables must not be trained on another thread at
 * the same time.
 */
#ifndef KILN_INIT_FROM_CHECKPOINT_H
#define KILN_INIT_FROM_CHECKPOINT_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options of kiln_init_from_checkpoint. Fill with kiln_init_from_checkpoint_options_init first. */
typedef struct kiln_init_from_checkpoint_options {
  size_t struct_size; /**< sizeof(kiln_init_from_checkpoint_options) as the caller compiled it */
  /** Leave optimizer slots and counters out unless a pair names them (a scope never takes them;
   *  the report lists them under "skipped_checkpoint_names"). Default true. */
  bool skip_optimizer_state;
  /** A checkpoint name a pair asks for that the checkpoint lacks: false (TensorFlow's rule, the
   *  default): NOT_FOUND, nothing assigned; true: the variable keeps its value and the report lists
   *  the pair under "missing". */
  bool allow_missing;
  /** A value whose dtype or shape does not fit its variable: false (the default):
   *  INVALID_ARGUMENT, nothing assigned; true: skipped and listed under "mismatched". */
  bool skip_mismatched;
  /** Accept a value whose shape differs from its variable's only in how runs of consecutive dims
   *  are split or merged, row-major order kept: [H, H] into [H, heads, H / heads], [H] into
   *  [heads, H / heads] (TF1 BERT attention weights into MultiHeadAttention). A transposition is
   *  still a mismatch. Default false. */
  bool allow_reshape;
} kiln_init_from_checkpoint_options;

/// Fills the first struct_size bytes of *options with the defaults and sets
/// options->struct_size = struct_size (pass sizeof *options). Errors: INVALID_ARGUMENT when
/// options is NULL or struct_size is smaller than the first version of the struct.
/// Ownership: writes into the caller's struct only. Thread-safety: safe.
KILN_API kiln_status *kiln_init_from_checkpoint_options_init(kiln_init_from_checkpoint_options *options,
                                                             size_t struct_size);

/// tf.compat.v1.train.init_from_checkpoint(ckpt_dir_or_file, assignment_map): for each pair i,
/// checkpoint_names[i] (a name, or a scope ending in '/', "/" for the root) is assigned to
/// variables_to_assign[i] when that array is given and its entry is not NULL, else to
/// variable_names[i] (a name or a scope ending in '/', "/" for every variable), looked up among
/// model's variables (model may be NULL) and variables[0 .. num_variables). Scopes map to scopes,
/// names to names. A variable that several pairs reach takes the last one's value; one checkpoint
/// name may go to many variables. ckpt_dir_or_file is a checkpoint prefix, one of its files, or a
/// directory whose `checkpoint` state file names its latest checkpoint.
/// *out_report (when out_report is not NULL) is a new config: {"checkpoint": the prefix read,
/// "matched": [{"checkpoint_name", "checkpoint_key", "variable", "checkpoint_shape": [dims],
/// "reshaped": bool}, ...], "unmatched_checkpoint_names": [names no pair took, in key order],
/// "skipped_checkpoint_names": [optimizer state and non-variables left out],
/// "unmatched_variables": [model's and variables' names that got no value], "missing":
/// [{"checkpoint_name", "variable"}] (allow_missing), "mismatched": [{"checkpoint_name",
/// "variable", "checkpoint_dtype", "checkpoint_shape", "variable_dtype", "variable_shape"}]
/// (skip_mismatched), "summary": a readable account of all of it}.
/// Errors: INVALID_ARGUMENT for NULL ckpt_dir_or_file or checkpoint_names, NULL entries where a
/// name is needed, an empty name, a scope paired with a name, a name two variables share, or a
/// value that does not fit (unless skip_mismatched); NOT_FOUND for a missing checkpoint, a
/// checkpoint name it lacks (unless allow_missing), a variable name nothing has, or a scope with
/// no variable under it; FAILED_PRECONDITION for an unbuilt model without variables; DATA_LOSS
/// for a corrupt checkpoint. Nothing changes on failure, and *out_report is untouched.
/// Ownership: *out_report is new, free with kiln_config_free; nothing else changes hands.
/// Thread-safety: safe; not while the variables train on another thread.
KILN_API kiln_status *kiln_init_from_checkpoint(kiln_config **out_report, const kiln_layer *model,
                                                kiln_variable *const *variables, size_t num_variables,
                                                const char *ckpt_dir_or_file,
                                                const char *const *checkpoint_names,
                                                const char *const *variable_names,
                                                kiln_variable *const *variables_to_assign, size_t num_pairs,
                                                const kiln_init_from_checkpoint_options *options);

#ifdef __cplusplus
}
#endif

#endif /* KILN_INIT_FROM_CHECKPOINT_H */
