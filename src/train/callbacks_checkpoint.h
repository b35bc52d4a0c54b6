// Keras's ModelCheckpoint and BackupAndRestore callbacks (callbacks_checkpoint.cc), over the
// TF-format checkpoints of checkpoint.h. Both are registered by class name with a Config of
// Keras's constructor arguments (register_checkpoint_callbacks, called by
// register_builtin_callbacks).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "train/callbacks.h"

namespace kiln::train {

// keras.callbacks.ModelCheckpoint (tf.keras 2's behaviour): after each epoch (save_freq 0,
// Keras's "epoch") or every save_freq training batches counted across epochs, writes the model
// to filepath formatted as Python's filepath.format(epoch=epoch + 1, [batch=batch + 1,] **logs)
// ("weights.{epoch:02d}-{val_loss:.2f}"; python_format.h): a name the logs lack is
// InvalidArgument (Keras's KeyError). With save_best_only, only when `monitor` improved on the
// best so far (mode "auto" / "min" / "max" as EarlyStopping's; initial_value_threshold is the
// first best, else +-inf); a missing monitor warns and saves nothing.
// What is written: save_weights(model, path), a TF-format checkpoint rooted at the model with its
// optimizer (checkpoint.h) — for save_weights_only=false too, since kiln cannot write the
// SavedModel that Keras's model.save would yet. verbose > 0 prints Keras 2's messages
// ("\nEpoch 1: val_loss improved from inf to 0.12345, saving model to <path>\n").
struct ModelCheckpointOptions {
  std::string filepath;
  std::string monitor = "val_loss";
  int64_t verbose = 0;
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";
  int64_t save_freq = 0;  // 0: every epoch ("epoch"); N > 0: every N training batches
  std::optional<double> initial_value_threshold;
};
CallbackPtr make_model_checkpoint(const ModelCheckpointOptions &options);

// keras.callbacks.BackupAndRestore (tf.keras 2's layout: a tf.train.Checkpoint of the model (with
// its optimizer), `ckpt_saved_epoch` and `ckpt_saved_batch` in `<backup_dir>/chief`, the newest
// one kept). At train begin a backup there restores the model's weights, the optimizer's state
// and the epoch counter, and fit continues after the saved epoch (a backup saved mid-epoch:
// at that epoch, from its first batch, as Keras 3 does; or after it when the last batch of the
// epoch was saved). The model must be built before fit (FailedPrecondition, as Keras 3). Saves
// at each epoch end (save_freq 0) or every save_freq training batches (-1: never, Keras's
// False). When fit completes (not when it fails), the backup is deleted if delete_checkpoint.
// Beyond Keras, the backup also holds the global random state as `rng` (make_global_rng_trackable),
// so a fit resumed from an epoch's backup shuffles and drops out as the uninterrupted fit did, bit
// for bit; a backup without it (Keras's) restores the rest.
struct BackupAndRestoreOptions {
  std::string backup_dir;
  int64_t save_freq = 0;  // 0: every epoch ("epoch"); N > 0: every N training batches; -1: never
  bool delete_checkpoint = true;
};
CallbackPtr make_backup_and_restore(const BackupAndRestoreOptions &options);

// Adds "ModelCheckpoint" and "BackupAndRestore" to the callback registry.
void register_checkpoint_callbacks();

}  // namespace kiln::train
