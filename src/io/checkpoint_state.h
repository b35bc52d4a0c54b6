// The `checkpoint` file TensorFlow keeps beside its checkpoints (FORMATS.md §2.6): a text-format
// CheckpointState naming the newest checkpoint and the ones still kept, with paths relative to
// the directory. tf.train.latest_checkpoint and CheckpointManager read it; kiln writes it the
// same way, so each tool finds the other's latest checkpoint.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kiln::io {

inline constexpr const char *kCheckpointStateFile = "checkpoint";

struct CheckpointState {
  // The newest checkpoint's prefix.
  std::string model_checkpoint_path;
  // The checkpoints kept, oldest first; the newest is last.
  std::vector<std::string> all_model_checkpoint_paths;
  // Seconds since the epoch each was written, parallel to all_model_checkpoint_paths (may be
  // empty: TF1 savers do not write them).
  std::vector<double> all_model_checkpoint_timestamps;
  double last_preserved_timestamp = 0;
};

// Reads `<dir>/<state_file>` with every relative path resolved against dir (as TF's
// get_checkpoint_state). std::nullopt when the file does not exist; DataLoss naming the file
// when it does not parse or names no checkpoint.
std::optional<CheckpointState> get_checkpoint_state(const std::string &dir,
                                                    const std::string &state_file = kCheckpointStateFile);

// Writes `<dir>/<state_file>` atomically (temporary file, fsync, rename). Paths under dir are
// stored relative to it, as TF stores them; others are kept as given. When the newest path is not
// the last of all_model_checkpoint_paths it is appended, as TF does. InvalidArgument when
// model_checkpoint_path is empty or there are more timestamps than paths.
void update_checkpoint_state(const std::string &dir, const CheckpointState &state,
                             const std::string &state_file = kCheckpointStateFile);

// The newest checkpoint's prefix resolved against dir, or "" when there is no state file or the
// checkpoint it names has no `.index` file (TF's tf.train.latest_checkpoint; kiln also counts a
// previous bundle a cut-short save over that prefix left: io::bundle_exists).
std::string latest_checkpoint(const std::string &dir, const std::string &state_file = kCheckpointStateFile);

// The checkpoint prefix a user's path names, as tf.train.load_checkpoint, Checkpoint.restore and
// load_weights take it: a directory's newest checkpoint (the one its `checkpoint` state file
// names, which must have its .index file), the prefix of one of a checkpoint's files
// (`<prefix>.index`, `<prefix>.data-NNNNN-of-NNNNN`), or else the path itself as a prefix (a
// missing checkpoint is then the reader's NotFound). Messages start with `who`: InvalidArgument
// for an empty path; NotFound naming the directory when it has no state file, or when the
// checkpoint its state file names has no .index file (naming that checkpoint too).
std::string resolve_checkpoint_prefix(const std::string &path, const std::string &who);

}  // namespace kiln::io
