/*
 * kiln/checkpoint.h — TensorFlow checkpoints: reading them (tf.train.load_checkpoint), writing
 * and restoring objects (tf.train.Checkpoint, tf.train.CheckpointManager, Keras's
 * save_weights / load_weights in TF format).
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * A checkpoint is TensorFlow's tensor bundle: `<prefix>.index` (the variables' names, dtypes,
 * shapes and checksums) and `<prefix>.data-00000-of-00001` (their bytes), as tf.train.Checkpoint,
 * Keras's save_weights and TF1's Saver write them, and kiln too. A kiln_checkpoint_reader lists
 * the variables and reads them as kiln tensors, checking each one's size and CRC32C:
 *
 *   kiln_checkpoint_reader *r = NULL;
 *   kiln_tensor *step = NULL;
 *   size_t n = 0, i;
 *   kiln_status *st = kiln_checkpoint_reader_open(&r, "ckpt_dir");  // or a prefix: "ckpt_dir/ckpt-3"
 *   if (!st) st = kiln_checkpoint_reader_get_num_variables(&n, r);
 *   for (i = 0; !st && i < n; ++i) {
 *     const char *name = NULL, *dtype = NULL;
 *     int64_t dims[KILN_MAX_RANK];
 *     size_t rank = 0;
 *     st = kiln_checkpoint_reader_get_name(&name, r, i);
 *     if (!st) st = kiln_checkpoint_reader_get_dtype_name(&dtype, r, i);
 *     if (!st) st = kiln_checkpoint_reader_get_shape(dims, KILN_MAX_RANK, &rank, r, i);
 *     ...                                                   // "global_step", "int64", rank 0
 *   }
 *   if (!st) st = kiln_checkpoint_reader_get_tensor(&step, r, "global_step");
 *   ...
 *   kiln_tensor_free(step);
 *   kiln_checkpoint_reader_free(r);
 *
 * Variables are numbered 0 .. n-1 in the bytewise order of their names (tf.train.list_variables
 * sorts them the same way). The list includes every entry of the index, also those kiln cannot
 * hold as a tensor (the DT_STRING `_CHECKPOINTABLE_OBJECT_GRAPH` of object-based checkpoints,
 * float16, complex): they have a dtype name and a shape, and kiln_checkpoint_reader_get_tensor
 * gives UNIMPLEMENTED naming the dtype. The slices of partitioned variables are not listed
 * (their full variable is, as TensorFlow's reader does).
 *
 * A kiln_checkpoint is tf.train.Checkpoint: objects tracked under names (a model, an optimizer,
 * variables, other checkpoints), saved as TF2's object graph with Keras 2.13's layout, so
 * TensorFlow reads what kiln writes and kiln restores what TensorFlow and Keras wrote. The
 * optimizer's iterations, learning rate and slots are saved too, and with
 * kiln_checkpoint_track_global_rng the global random state (Dropout masks, shuffles), so
 * training resumes bit for bit:
 *
 *   kiln_checkpoint *ckpt = NULL;
 *   kiln_checkpoint_manager *manager = NULL;
 *   kiln_checkpoint_load_status *status = NULL;
 *   kiln_config *options = NULL;
 *   char *path = NULL;
 *   kiln_checkpoint_create(&ckpt);
 *   kiln_checkpoint_track_layer(ckpt, "model", model);            // Checkpoint(model=..., optimizer=...)
 *   kiln_checkpoint_track_optimizer(ckpt, "optimizer", optimizer);
 *   kiln_checkpoint_track_global_rng(ckpt, "rng");                // rng=tf.random.get_global_generator()
 *   kiln_config_create(&options);
 *   kiln_config_set_int(options, "max_to_keep", 3);
 *   kiln_checkpoint_manager_create(&manager, ckpt, "ckpt_dir", options);
 *   kiln_checkpoint_manager_restore_or_initialize(&path, manager);  // NULL path: a fresh start
 *   kiln_string_free(path);
 *   ...train...
 *   kiln_checkpoint_manager_save(&path, manager, -1);              // "ckpt_dir/ckpt-1"; keeps the newest 3
 *   kiln_string_free(path);
 *   ...a later process...
 *   kiln_checkpoint_restore(&status, ckpt, "ckpt_dir");            // the directory's latest checkpoint
 *   kiln_checkpoint_load_status_assert_existing_objects_matched(status);
 *   kiln_checkpoint_load_status_free(status);
 *
 * Restores are all or nothing: every value is matched (dtype, then shape: INVALID_ARGUMENT naming
 * the variable and both shapes) and read (a corrupt file is DATA_LOSS) before any object changes.
 * A value whose object does not exist yet (an optimizer's slots before its first step) waits for
 * it and lands when the optimizer makes it, as in TensorFlow. A load status whose restore left
 * values no object took warns when it is freed, unless kiln_checkpoint_load_status_expect_partial
 * was called; the warning goes where kiln_set_warning_callback sends warnings (stderr by default).
 *
 * Threads: a reader never changes after it is opened; any number of threads may use it at once.
 * Calls on one kiln_checkpoint or one kiln_checkpoint_manager are serialised inside; objects being
 * saved or restored must not train on another thread at the same time.
 */
#ifndef KILN_CHECKPOINT_H
#define KILN_CHECKPOINT_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_checkpoint_reader kiln_checkpoint_reader;

/// tf.train.load_checkpoint(path): opens the checkpoint path names, which is a prefix (the files
/// `<prefix>.index` and `<prefix>.data-*`), a directory (its `checkpoint` state file names its
/// latest checkpoint, as tf.train.latest_checkpoint), or one of the checkpoint's files (its
/// `.index` or a `.data-NNNNN-of-NNNNN`, which name its prefix). The index is read now; the data
/// files when a tensor is read.
/// Errors: NOT_FOUND naming the path when there is no such checkpoint (also a directory without
/// a state file, or whose state file names a checkpoint that is gone); DATA_LOSS naming the file
/// when the index is not a valid tensor-bundle index; INVALID_ARGUMENT for NULL out or path.
/// Ownership: *out is new, free with kiln_checkpoint_reader_free. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_open(kiln_checkpoint_reader **out, const char *path);
/// Frees a reader; tensors read from it live on. Accepts NULL.
/// Thread-safety: not while another thread uses the reader.
KILN_API void kiln_checkpoint_reader_free(kiln_checkpoint_reader *reader);

/// The prefix the reader opened (for a directory, the latest checkpoint's prefix), UTF-8.
/// Lifetime: *out is borrowed, valid while the reader lives. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_prefix(const char **out,
                                                        const kiln_checkpoint_reader *reader);
/// The number of variables (every tensor of the index, the object graph included).
/// Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_num_variables(size_t *out,
                                                               const kiln_checkpoint_reader *reader);
/// The name (checkpoint key) of variable index, 0 <= index < the count (else OUT_OF_RANGE).
/// Lifetime: *out is borrowed, valid while the reader lives. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_name(const char **out, const kiln_checkpoint_reader *reader,
                                                      size_t index);
/// The index of the variable called name; NOT_FOUND naming it (and the checkpoint) when absent.
/// Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_find(size_t *out_index, const kiln_checkpoint_reader *reader,
                                                  const char *name);
/// Whether the checkpoint has a variable called name (CheckpointReader.has_tensor).
/// Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_has_tensor(bool *out, const kiln_checkpoint_reader *reader,
                                                        const char *name);
/// TensorFlow's name of variable index's dtype (tf.dtypes.DType.name: "float32", "int64", "string",
/// "float16", ...; "dtype_<n>" for a DataType number kiln does not know). OUT_OF_RANGE for a bad index.
/// Lifetime: *out is borrowed, valid while the reader lives. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_dtype_name(const char **out,
                                                            const kiln_checkpoint_reader *reader,
                                                            size_t index);
/// The kiln dtype variable index reads as, or 0 when kiln has none for its TF dtype (string,
/// float16, complex, int8, ...: kiln_checkpoint_reader_get_tensor then gives UNIMPLEMENTED).
/// OUT_OF_RANGE for a bad index. Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_dtype(kiln_dtype *out, const kiln_checkpoint_reader *reader,
                                                       size_t index);
/// The shape of variable index: its dims go to out_dims[0 .. min(rank, capacity)) and its rank to
/// *out_rank (call with capacity 0 and out_dims NULL to learn the rank). OUT_OF_RANGE for a bad
/// index. Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_shape(int64_t *out_dims, size_t capacity, size_t *out_rank,
                                                       const kiln_checkpoint_reader *reader, size_t index);
/// The bytes variable index takes in the data file (element count x element size for numeric
/// dtypes; lengths, checksum and characters for strings; 0 for a partitioned variable's entry,
/// whose bytes are its slices'). OUT_OF_RANGE for a bad index.
/// Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_byte_size(size_t *out, const kiln_checkpoint_reader *reader,
                                                           size_t index);
/// CheckpointReader.get_tensor(name): reads the variable called name as a new kiln tensor, after
/// checking its size and CRC32C. Errors: NOT_FOUND naming the name when absent; DATA_LOSS naming
/// the file and the variable when its bytes are truncated or do not match their checksum;
/// UNIMPLEMENTED naming the dtype for a TF dtype kiln has none for (the string object graph,
/// float16, ...) and for a partitioned variable. *out is untouched on failure.
/// Ownership: *out is new, free with kiln_tensor_free. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_reader_get_tensor(kiln_tensor **out,
                                                        const kiln_checkpoint_reader *reader,
                                                        const char *name);

/* ------------------------------------------------- tf.train.Checkpoint: writing and restoring */

/** tf.train.Checkpoint: named objects saved and restored together. */
typedef struct kiln_checkpoint kiln_checkpoint;
/** What a restore matched (TF's CheckpointLoadStatus). */
typedef struct kiln_checkpoint_load_status kiln_checkpoint_load_status;
/** tf.train.CheckpointManager: numbered saves of one checkpoint in a directory, the newest kept. */
typedef struct kiln_checkpoint_manager kiln_checkpoint_manager;

/// A new checkpoint tracking nothing yet (tf.train.Checkpoint()); add its objects with the
/// kiln_checkpoint_track_* calls, as the keyword arguments of tf.train.Checkpoint(model=...,
/// optimizer=...). Its save_counter is 0 until the first save or restore.
/// Ownership: *out is new, free with kiln_checkpoint_free. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_create(kiln_checkpoint **out);
/// Frees a checkpoint handle; the objects it tracked live on, and a manager made from it keeps
/// the checkpoint alive. Accepts NULL. Thread-safety: not while another thread uses the handle.
KILN_API void kiln_checkpoint_free(kiln_checkpoint *checkpoint);
/// Tracks a layer or model under name (Checkpoint(model=model)): its weights, its sub-layers by
/// Keras's edge names (`layer_with_weights-0`, ...), and a compiled model's optimizer as
/// `optimizer`. The same name again replaces the object (TF's attribute assignment).
/// Errors: INVALID_ARGUMENT for NULL arguments, an empty name or "save_counter" (the
/// checkpoint's own child); FAILED_PRECONDITION for a weak handle whose layer is gone.
/// Ownership: the checkpoint keeps a reference to the layer (the handle stays the caller's).
/// Thread-safety: safe; serialised with the checkpoint's saves and restores.
KILN_API kiln_status *kiln_checkpoint_track_layer(kiln_checkpoint *checkpoint, const char *name,
                                                  kiln_layer *layer);
/// Tracks an optimizer under name (Checkpoint(optimizer=optimizer)): its iterations, learning
/// rate and slots in Keras's layout (`_iterations`, `_learning_rate`, `_variables/<n>`).
/// Errors and ownership as kiln_checkpoint_track_layer. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_track_optimizer(kiln_checkpoint *checkpoint, const char *name,
                                                      kiln_optimizer *optimizer);
/// Tracks a variable under name (Checkpoint(step=tf.Variable(0))): saved under
/// `<name>/.ATTRIBUTES/VARIABLE_VALUE`. Errors and ownership as kiln_checkpoint_track_layer.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_track_variable(kiln_checkpoint *checkpoint, const char *name,
                                                     kiln_variable *variable);
/// Tracks the global random state under name (Checkpoint(rng=tf.random.get_global_generator())):
/// the global seed (kiln_set_seed), the draws made of the global op-seed sequence (random ops,
/// Dropout and shuffles without a seed) and the calls made with each op seed, saved as one int64
/// [1 + k, 2] variable `<name>/_state-<k>/.ATTRIBUTES/VARIABLE_VALUE` (k: the op seeds used). A
/// restore replaces the whole state, so the random ops, Dropout masks and shuffles after it draw
/// exactly what they drew after the save, also in a fresh process: with the model and optimizer
/// tracked beside it, training resumes bit for bit (same thread count). Nothing tracks it unless
/// asked (a model's or optimizer's keys stay Keras's); BackupAndRestore does.
/// Errors and ownership as kiln_checkpoint_track_layer (nothing is referenced but the library's
/// one state). Thread-safety: safe; a save reads the state at one instant, a restore writes it at
/// once, under the lock the random ops take.
KILN_API kiln_status *kiln_checkpoint_track_global_rng(kiln_checkpoint *checkpoint, const char *name);
/// Nests another checkpoint's objects under name (Checkpoint(child=tf.train.Checkpoint(...))),
/// its save_counter among them once it has one. Changes to child's tracked objects show through.
/// Errors and ownership as kiln_checkpoint_track_layer. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_track_checkpoint(kiln_checkpoint *checkpoint, const char *name,
                                                       kiln_checkpoint *child);
/// Checkpoint.save(file_prefix): save_counter += 1, writes `<file_prefix>-<save_counter>` (its
/// .index and .data files, atomically, the directories made as needed), records it as the
/// latest checkpoint in the directory's `checkpoint` state file, and gives its path
/// ("dir/ckpt-3"). On failure the counter is unchanged.
/// Errors: INVALID_ARGUMENT for NULL checkpoint or file_prefix, or an empty one; NOT_FOUND /
/// DATA_LOSS / INTERNAL from the file system.
/// Ownership: *out_path (when out_path is not NULL) is new, free with kiln_string_free.
/// Thread-safety: safe; serialised with the checkpoint's other calls.
KILN_API kiln_status *kiln_checkpoint_save(char **out_path, kiln_checkpoint *checkpoint,
                                           const char *file_prefix);
/// Checkpoint.write(file_prefix): writes exactly file_prefix; neither save_counter nor the state
/// file changes. Errors, ownership and thread-safety as kiln_checkpoint_save.
KILN_API kiln_status *kiln_checkpoint_write(char **out_path, kiln_checkpoint *checkpoint,
                                            const char *file_prefix);
/// Checkpoint.restore(save_path): restores the tracked objects from a checkpoint prefix, or from a
/// directory's latest checkpoint (its `checkpoint` state file), following the saved object graph
/// by names. save_counter is restored too, so later saves continue its numbering. Values for
/// objects not made yet (an optimizer's slots) land when they are made.
/// Errors: NOT_FOUND for a missing checkpoint or a directory without one; INVALID_ARGUMENT naming
/// the variable, its path and both dtypes or shapes when a value does not fit its object, and for
/// a name-based (TF1) checkpoint; DATA_LOSS for a corrupt or truncated file. Nothing changes on
/// failure, and *out_status is untouched.
/// Ownership: *out_status (when out_status is not NULL) is new, free with
/// kiln_checkpoint_load_status_free; with out_status NULL the status is freed at once (warning
/// about values no object took). Thread-safety: safe; serialised with the checkpoint's other calls.
KILN_API kiln_status *kiln_checkpoint_restore(kiln_checkpoint_load_status **out_status,
                                              kiln_checkpoint *checkpoint, const char *save_path);
/// Checkpoint.read(save_path): kiln_checkpoint_restore of exactly the prefix save_path (write's
/// counterpart; a directory is not looked into). Errors, ownership and thread-safety as
/// kiln_checkpoint_restore.
KILN_API kiln_status *kiln_checkpoint_read(kiln_checkpoint_load_status **out_status,
                                           kiln_checkpoint *checkpoint, const char *save_path);
/// Checkpoint.save_counter: the number of saves (restored by a restore); 0 before the first save
/// or restore. Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_get_save_counter(int64_t *out, const kiln_checkpoint *checkpoint);

/// Frees a load status. When its restore left checkpoint values that no object took (and
/// kiln_checkpoint_load_status_expect_partial was not called), this is when the warning naming
/// them is given (through kiln_set_warning_callback). Values still waiting for their objects
/// land later all the same. Accepts NULL.
KILN_API void kiln_checkpoint_load_status_free(kiln_checkpoint_load_status *status);
/// expect_partial(): values without objects are intended; no warning when the status is freed.
/// Errors: INVALID_ARGUMENT for NULL. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_load_status_expect_partial(kiln_checkpoint_load_status *status);
/// assert_consumed(): FAILED_PRECONDITION naming the checkpoint values no object took, those still
/// waiting for objects not made yet (an optimizer's slots before its first step), and the
/// tracked objects with values that got none; NULL when everything matched.
/// Errors: INVALID_ARGUMENT for NULL. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_load_status_assert_consumed(const kiln_checkpoint_load_status *status);
/// assert_existing_objects_matched(): FAILED_PRECONDITION naming the tracked objects with values
/// that got none (checkpoint values without objects are allowed). Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_load_status_assert_existing_objects_matched(
    const kiln_checkpoint_load_status *status);
/// assert_nontrivial_match(): FAILED_PRECONDITION when nothing below the root matched (the
/// checkpoint was written for other objects). Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_load_status_assert_nontrivial_match(
    const kiln_checkpoint_load_status *status);
/// What the restore matched so far, as a new config: {"path": the checkpoint prefix,
/// "restored_count": values restored (waiting ones count once they land), "unmatched_values":
/// [checkpoint paths no object took], "pending_values": [values waiting for their objects],
/// "unmatched_objects": [tracked objects that got no value]}.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_load_status_get_info(kiln_config **out,
                                                           const kiln_checkpoint_load_status *status);

/// tf.train.CheckpointManager(checkpoint, directory, ...): numbered saves of checkpoint into
/// directory, the newest max_to_keep kept and the older ones deleted, listed with timestamps in
/// the directory's `checkpoint` state file; a manager made later on the same directory (or
/// TensorFlow) carries on with that list. options: NULL or a config of TF's arguments:
///   "max_to_keep": int >= 1, or null / absent to keep every checkpoint;
///   "keep_checkpoint_every_n_hours": float > 0, or null (default): of the checkpoints
///     max_to_keep drops, one per this many hours stays on disk (leaving the list, as in TF);
///   "checkpoint_name": string, default "ckpt" (files `<directory>/<checkpoint_name>-<n>`).
/// Errors: INVALID_ARGUMENT for NULL checkpoint or directory, an empty directory or name,
/// max_to_keep < 1, keep_checkpoint_every_n_hours <= 0, a value of the wrong type, or an unknown
/// key (naming the known ones).
/// Ownership: *out is new, free with kiln_checkpoint_manager_free; the manager keeps a
/// reference to the checkpoint (the handle stays the caller's); options stay the caller's.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_manager_create(kiln_checkpoint_manager **out,
                                                     kiln_checkpoint *checkpoint, const char *directory,
                                                     const kiln_config *options);
/// Frees a manager (its files stay). Accepts NULL. Thread-safety: not while another thread uses it.
KILN_API void kiln_checkpoint_manager_free(kiln_checkpoint_manager *manager);
/// CheckpointManager.save(checkpoint_number): saves `<directory>/<checkpoint_name>-<n>`, n being
/// checkpoint_number (>= 0), or with -1 (TF's None) the checkpoint's save_counter after it goes
/// up by one; records it in the state file, deletes the checkpoints past max_to_keep, and gives
/// the path. Errors: INVALID_ARGUMENT for NULL manager or checkpoint_number < -1; file-system
/// errors as kiln_checkpoint_save.
/// Ownership: *out_path (when out_path is not NULL) is new, free with kiln_string_free.
/// Thread-safety: safe; serialised with the manager's other calls.
KILN_API kiln_status *kiln_checkpoint_manager_save(char **out_path, kiln_checkpoint_manager *manager,
                                                   int64_t checkpoint_number);
/// CheckpointManager.latest_checkpoint: the newest checkpoint's prefix, or *out NULL before any
/// (TF's None). Ownership: *out is new (or NULL), free with kiln_string_free. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_manager_get_latest_checkpoint(char **out,
                                                                    const kiln_checkpoint_manager *manager);
/// CheckpointManager.checkpoints: a new config {"checkpoints": [prefixes, oldest first]}.
/// Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_manager_get_checkpoints(kiln_config **out,
                                                              const kiln_checkpoint_manager *manager);
/// CheckpointManager.directory, UTF-8. Lifetime: *out is borrowed, valid while the manager lives.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_manager_get_directory(const char **out,
                                                            const kiln_checkpoint_manager *manager);
/// CheckpointManager.restore_or_initialize(): restores the latest checkpoint (values without
/// objects expected: no warning) and gives its path, or *out_path NULL when there is none (the
/// objects keep their initial values). Errors as kiln_checkpoint_restore.
/// Ownership: *out_path (when out_path is not NULL) is new (or NULL), free with kiln_string_free.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_checkpoint_manager_restore_or_initialize(char **out_path,
                                                                    kiln_checkpoint_manager *manager);

/// tf.train.latest_checkpoint(checkpoint_dir): the prefix the directory's `checkpoint` state file
/// names as newest, or *out NULL when there is no state file or its checkpoint is gone.
/// Errors: INVALID_ARGUMENT for NULL checkpoint_dir; DATA_LOSS for an unreadable state file.
/// Ownership: *out is new (or NULL), free with kiln_string_free. Thread-safety: safe.
KILN_API kiln_status *kiln_latest_checkpoint(char **out, const char *checkpoint_dir);

/// Keras's model.save_weights(filepath) in TensorFlow format: a checkpoint rooted at the model
/// (keys "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", ...; a compiled model's
/// optimizer under "optimizer/"), written to exactly filepath, which the directory's
/// `checkpoint` state file then names. Errors: INVALID_ARGUMENT for NULL arguments or an empty
/// path; UNIMPLEMENTED for ".h5", ".hdf5" and ".keras" paths.
/// Ownership: nothing changes hands. Thread-safety: not while the model trains on another thread.
KILN_API kiln_status *kiln_model_save_weights(const kiln_layer *model, const char *filepath);
/// Keras's model.load_weights(filepath) for TensorFlow-format checkpoints: filepath is a prefix,
/// or a directory whose latest checkpoint is read. A compiled model's optimizer is restored too
/// (its slots when it makes them). A model that is not built yet takes the values when it builds
/// (Keras's deferred restoration; kiln_layer_build or its first call): until then the status
/// lists them as pending, and a mismatch is then the build's error, with nothing assigned.
/// Errors: FAILED_PRECONDITION when nothing but the root matched (or waits for the build);
/// otherwise as kiln_checkpoint_restore. Nothing changes on failure.
/// Ownership: *out_status (when out_status is not NULL) is new, free with
/// kiln_checkpoint_load_status_free. Thread-safety: not while the model trains on another thread.
KILN_API kiln_status *kiln_model_load_weights(kiln_checkpoint_load_status **out_status, kiln_layer *model,
                                              const char *filepath);

#ifdef __cplusplus
}
#endif

#endif /* KILN_CHECKPOINT_H */
