// tf.train.CheckpointManager (checkpoint.h): numbered saves, the newest N kept, one per
// keep_checkpoint_every_n_hours spared from deletion, and the directory's `checkpoint` state file
// with paths and timestamps, recovered by the next manager on the same directory.
#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"
#include "train/checkpoint.h"

namespace kiln::train {

namespace {

double system_clock_seconds() {
  using std::chrono::duration;
  using std::chrono::system_clock;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// "<base>.data-NNNNN-of-MMMMM", five digits each: a data shard of the checkpoint `base`.
bool is_data_shard(const std::string &file, const std::string &base) {
  const std::string head = base + ".data-";
  if (file.size() != head.size() + 14 || file.compare(0, head.size(), head) != 0) return false;
  const char *p = file.c_str() + head.size();
  for (int i = 0; i < 14; ++i) {
    const bool digit = p[i] >= '0' && p[i] <= '9';
    if (i >= 5 && i < 9 ? p[i] != "-of-"[i - 5] : !digit) return false;
  }
  return true;
}

// Removes a checkpoint's index and data shards, and those of the bundle a cut-short save over it
// left aside (io/bundle.h, "Crash safety"); the indexes go first, so none outlives its data. A
// file already gone is no error.
void delete_checkpoint_files(const std::string &prefix) {
  const std::string previous = io::previous_bundle_prefix(prefix);
  io::remove_file_quietly(prefix + ".index");
  io::remove_file_quietly(previous + ".index");
  const std::string dir = io::dir_name(prefix), base = io::base_name(prefix);
  const std::string previous_base = io::base_name(previous);
  DIR *d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> shards;
  while (const dirent *e = ::readdir(d))
    if (is_data_shard(e->d_name, base) || is_data_shard(e->d_name, previous_base))
      shards.push_back(io::join_path(dir, e->d_name));
  ::closedir(d);
  for (const std::string &s : shards) io::remove_file_quietly(s);
}

}  // namespace

struct CheckpointManager::Impl {
  std::mutex mu;
  std::shared_ptr<Checkpoint> checkpoint;
  std::string directory, prefix;
  CheckpointManagerOptions options;
  std::string latest;
  double last_preserved = 0;
  // The checkpoints that may be deleted, oldest first, with their timestamps.
  std::vector<std::pair<std::string, double>> maybe_delete;

  double now() const { return options.clock ? options.clock() : system_clock_seconds(); }

  void record_state() {
    if (latest.empty()) return;
    io::CheckpointState state;
    state.model_checkpoint_path = latest;
    for (const auto &c : maybe_delete) {
      state.all_model_checkpoint_paths.push_back(c.first);
      state.all_model_checkpoint_timestamps.push_back(c.second);
    }
    state.last_preserved_timestamp = last_preserved;
    io::update_checkpoint_state(directory, state);
  }

  void sweep() {
    if (!options.max_to_keep) return;
    while (maybe_delete.size() > static_cast<size_t>(*options.max_to_keep)) {
      const std::pair<std::string, double> oldest = maybe_delete.front();
      maybe_delete.erase(maybe_delete.begin());
      // Spared on disk, but no longer listed (the state file would grow without end).
      if (options.keep_checkpoint_every_n_hours &&
          oldest.second - *options.keep_checkpoint_every_n_hours * 3600.0 >= last_preserved) {
        last_preserved = oldest.second;
        continue;
      }
      delete_checkpoint_files(oldest.first);
    }
  }
};

CheckpointManager::CheckpointManager(std::shared_ptr<Checkpoint> checkpoint, std::string directory,
                                     CheckpointManagerOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!checkpoint) fail(Code::kInvalidArgument, "CheckpointManager: the checkpoint is null");
  if (directory.empty()) fail(Code::kInvalidArgument, "CheckpointManager: the directory is empty");
  if (options.checkpoint_name.empty())
    fail(Code::kInvalidArgument, "CheckpointManager: checkpoint_name is empty");
  if (options.max_to_keep && *options.max_to_keep < 1)
    fail(Code::kInvalidArgument,
         "CheckpointManager: max_to_keep must be at least 1 (or none to keep every "
         "checkpoint); got ",
         *options.max_to_keep);
  if (options.keep_checkpoint_every_n_hours &&
      !(*options.keep_checkpoint_every_n_hours > 0 && std::isfinite(*options.keep_checkpoint_every_n_hours)))
    fail(Code::kInvalidArgument, "CheckpointManager: keep_checkpoint_every_n_hours must be positive; got ",
         *options.keep_checkpoint_every_n_hours);
  Impl &m = *impl_;
  m.checkpoint = std::move(checkpoint);
  m.directory = std::move(directory);
  m.options = std::move(options);
  m.prefix = io::join_path(m.directory, m.options.checkpoint_name);
  const double now = m.now();
  const std::optional<io::CheckpointState> state = io::get_checkpoint_state(m.directory);
  if (!state) {
    m.last_preserved = now - 1.0;  // as TF: a manager made again at once still deletes its saves
    return;
  }
  // Carry on with what an earlier manager (or TensorFlow) recorded, as TF's manager does: only
  // checkpoints stamped after last_preserved_timestamp are managed (may be deleted). Those
  // without stamps (Checkpoint.save, save_weights, ModelCheckpoint) count as preserved and stay.
  m.latest = state->model_checkpoint_path;
  m.last_preserved = state->last_preserved_timestamp;
  if (now < m.last_preserved) m.last_preserved = now;  // the clock went back
  std::vector<double> stamps = state->all_model_checkpoint_timestamps;
  if (stamps.empty()) stamps.assign(state->all_model_checkpoint_paths.size(), m.last_preserved);
  for (size_t i = 0; i < stamps.size() && i < state->all_model_checkpoint_paths.size(); ++i) {
    const double stamp = std::min(stamps[i], now);
    if (stamp > m.last_preserved) m.maybe_delete.emplace_back(state->all_model_checkpoint_paths[i], stamp);
  }
}

CheckpointManager::~CheckpointManager() = default;

std::string CheckpointManager::save(std::optional<int64_t> checkpoint_number) {
  if (checkpoint_number && *checkpoint_number < 0)
    fail(Code::kInvalidArgument, "CheckpointManager.save: checkpoint_number must be >= 0; got ",
         *checkpoint_number);
  Impl &m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const std::vector<std::pair<std::string, double>> queue = m.maybe_delete;
  const std::string latest = m.latest;
  std::string path;
  try {
    path = m.checkpoint->save_numbered(
        m.prefix, checkpoint_number ? *checkpoint_number : -1, [&m](const std::string &saved) {
          const double stamp = m.now();
          // A checkpoint saved again under its old name moves to the end of the queue.
          for (auto it = m.maybe_delete.begin(); it != m.maybe_delete.end(); ++it)
            if (it->first == saved) {
              m.maybe_delete.erase(it);
              break;
            }
          m.maybe_delete.emplace_back(saved, stamp);
          m.latest = saved;
          // The state file names the new checkpoint before anything is deleted (a crash while
          // deleting still finds it), and again after, without the deleted ones.
          m.record_state();
        });
  } catch (...) {  // nothing recorded: the manager, as the counter, is as before
    m.maybe_delete = queue;
    m.latest = latest;
    throw;
  }
  m.sweep();
  m.record_state();
  return path;
}

std::string CheckpointManager::latest_checkpoint() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->latest;
}

std::vector<std::string> CheckpointManager::checkpoints() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto &c : impl_->maybe_delete) out.push_back(c.first);
  return out;
}

const std::string &CheckpointManager::directory() const { return impl_->directory; }

std::string CheckpointManager::restore_or_initialize() {
  const std::string latest = latest_checkpoint();
  if (latest.empty()) return {};
  impl_->checkpoint->read(latest).expect_partial();
  return latest;
}

}  // namespace kiln::train
