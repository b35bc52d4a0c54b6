// ModelCheckpoint and BackupAndRestore (callbacks_checkpoint.h): tf.keras 2's callbacks over
// kiln's TF-format checkpoints, and their registration by class name.
#include "train/callbacks_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/file_util.h"
#include "train/callbacks_internal.h"
#include "train/checkpoint.h"
#include "train/model_training.h"
#include "train/progbar.h"
#include "train/python_format.h"
#include "train/saved_model.h"

namespace kiln::train {

namespace {

// Keras's save_freq: "epoch" (0), a positive number of batches, or (allow_false) False: never (-1).
int64_t read_save_freq(ConfigReader &r, const char *owner, bool allow_false) {
  r.accept({"save_freq"});
  const Config &c = r.config();
  if (!c.has("save_freq") || c.is_null("save_freq")) return 0;
  const char *expected = allow_false ? "'epoch', a positive number of batches or false"
                                     : "'epoch' or a positive number of batches";
  switch (c.type("save_freq")) {
    case Config::Type::kString: {
      const std::string s = c.get_string("save_freq");
      if (s == "epoch") return 0;
      fail(Code::kInvalidArgument, owner, ": unrecognized save_freq '", s, "'; expected ", expected);
    }
    case Config::Type::kBool:
      if (allow_false && !c.get_bool("save_freq")) return -1;
      fail(Code::kInvalidArgument, owner, ": save_freq is ", c.get_bool("save_freq") ? "true" : "false",
           "; expected ", expected);
    case Config::Type::kInt:
    case Config::Type::kFloat: {
      const int64_t v = c.get_int("save_freq");  // a float only when integral
      if (v <= 0) fail(Code::kInvalidArgument, owner, ": save_freq is ", v, "; expected ", expected);
      return v;
    }
    default:
      fail(Code::kInvalidArgument, owner, ": save_freq is a ", config_type_name(c.type("save_freq")),
           "; expected ", expected);
  }
}

const layers::LayerPtr &require_model(const Callback &cb) {
  if (!cb.model())
    fail(Code::kFailedPrecondition, cb.class_name(),
         ": no model is set; the callback runs inside fit (or a CallbackList with a model)");
  return cb.model();
}

// ---- ModelCheckpoint ----

class ModelCheckpoint : public Callback {
 public:
  explicit ModelCheckpoint(const ModelCheckpointOptions &o) : Callback("ModelCheckpoint"), o_(o) {
    // Refused here rather than at the first save, as model.save and save_weights refuse them.
    if (io::has_keras_file_suffix(o_.filepath))
      fail(Code::kUnimplemented, "ModelCheckpoint: filepath '", o_.filepath,
           "' names an HDF5 or .keras file, which kiln does not write; give a path without that suffix (",
           o_.save_weights_only ? "a TensorFlow-format checkpoint prefix" : "a SavedModel directory", ")");
    if (o.filepath.empty())
      fail(Code::kInvalidArgument,
           "ModelCheckpoint: filepath is empty; expected a path such as "
           "'ckpt/weights.{epoch:02d}-{val_loss:.2f}'");
    if (o.save_freq < 0)
      fail(Code::kInvalidArgument, "ModelCheckpoint: save_freq is ", o.save_freq,
           "; expected 0 ('epoch') or a positive number of batches");
    if (o.mode != "auto" && o.mode != "min" && o.mode != "max")
      fail(Code::kInvalidArgument, "ModelCheckpoint: mode '", o.mode,
           "' is unknown; expected 'auto', 'min' or 'max'");
    if (o.initial_value_threshold && std::isnan(*o.initial_value_threshold))
      fail(Code::kInvalidArgument,
           "ModelCheckpoint: initial_value_threshold is NaN; expected a number or None");
    // Without save_best_only the monitor only names the direction of `best`, so a name mode
    // "auto" cannot place is no error then (Keras 3 decides only when it compares).
    if (o.save_best_only) {
      rule_.emplace("ModelCheckpoint", o.monitor, o.mode, 0.0);
    } else {
      try {
        rule_.emplace("ModelCheckpoint", o.monitor, o.mode, 0.0);
      } catch (const Error &) {
      }
    }
    if (o.initial_value_threshold) {
      best_ = o.initial_value_threshold;
    } else if (rule_) {
      best_ = rule_->maximize() ? -std::numeric_limits<double>::infinity()
                                : std::numeric_limits<double>::infinity();
    }
  }

  void on_epoch_begin(int64_t epoch, Logs &) override { current_epoch_ = epoch; }

  void on_train_batch_end(int64_t batch, Logs &logs) override {
    if (should_save_on_batch(batch)) save(current_epoch_, batch, logs);
  }

  void on_epoch_end(int64_t epoch, Logs &logs) override {
    ++epochs_since_last_save_;
    if (o_.save_freq == 0) save(epoch, -1, logs);
  }

  Config attributes() const override {
    Config c;
    if (best_) {
      c.set_any_float("best", *best_);
    } else {
      c.set_null("best");
    }
    c.set("epochs_since_last_save", epochs_since_last_save_);
    c.set("last_saved_filepath", last_saved_);
    return c;
  }

 private:
  // Keras's _should_save_on_batch: batches counted across epochs (a batch number not above the
  // last one seen starts a new epoch).
  bool should_save_on_batch(int64_t batch) {
    if (o_.save_freq == 0) return false;
    batches_since_save_ += batch <= last_batch_seen_ ? batch + 1 : batch - last_batch_seen_;
    last_batch_seen_ = batch;
    if (batches_since_save_ < o_.save_freq) return false;
    batches_since_save_ = 0;
    return true;
  }

  // Keras's _get_file_path: filepath.format(epoch=epoch + 1, batch=batch + 1, **logs).
  std::string file_path(int64_t epoch, int64_t batch, const Logs &logs) const {
    std::vector<FormatArg> args{FormatArg::of_int("epoch", epoch + 1)};
    if (batch >= 0 && !logs.contains("batch")) args.push_back(FormatArg::of_int("batch", batch + 1));
    for (const auto &kv : logs.items()) args.push_back(FormatArg::of_float(kv.first, kv.second));
    try {
      return python_format(o_.filepath, args);
    } catch (const Error &e) {
      fail(Code::kInvalidArgument, "ModelCheckpoint: failed to format this callback filepath: \"",
           o_.filepath, "\". Reason: ", e.what());
    }
  }

  void save(int64_t epoch, int64_t batch, const Logs &logs) {
    epochs_since_last_save_ = 0;
    const std::string path = file_path(epoch, batch, logs);
    // A weights checkpoint is a prefix, never a directory; a SavedModel is one (an earlier export
    // there is replaced).
    if (o_.save_weights_only && io::is_directory(path))
      fail(Code::kInvalidArgument,
           "ModelCheckpoint: please specify a non-directory filepath; the filepath used is an existing "
           "directory: ",
           path);
    const std::string epoch_text = str_cat("\nEpoch ", epoch + 1, ": ");
    if (!o_.save_best_only) {
      if (o_.verbose > 0) progress_print(str_cat(epoch_text, "saving model to ", path, "\n"));
      write(path);
      return;
    }
    const std::optional<double> current = logs.get(o_.monitor);
    if (!current) {
      callback_warning(str_cat("Can save best model only with ", o_.monitor, " available, skipping."));
      return;
    }
    if (rule_->is_improvement(*current, best_)) {
      if (o_.verbose > 0)
        progress_print(str_cat(epoch_text, o_.monitor, " improved from ", python_format_float(*best_, ".5f"),
                               " to ", python_format_float(*current, ".5f"), ", saving model to ", path,
                               "\n"));
      best_ = current;
      write(path);
    } else if (o_.verbose > 0) {
      progress_print(str_cat(epoch_text, o_.monitor, " did not improve from ",
                             python_format_float(*best_, ".5f"), "\n"));
    }
  }

  // Keras's save_weights for save_weights_only, else model.save: the SavedModel directory at path.
  void write(const std::string &path) {
    if (o_.save_weights_only)
      save_weights(require_model(*this), path);
    else
      save_model(require_model(*this), path);
    last_saved_ = path;
  }

  ModelCheckpointOptions o_;
  std::optional<MonitorRule> rule_;
  std::optional<double> best_;
  int64_t current_epoch_ = 0;
  int64_t epochs_since_last_save_ = 0;
  int64_t batches_since_save_ = 0;
  int64_t last_batch_seen_ = 0;
  std::string last_saved_;
};

// ---- BackupAndRestore ----

constexpr int64_t kUnusedCounter = -1;  // tf.keras's CKPT_SAVED_EPOCH_UNUSED_VALUE

VariablePtr counter_variable(const char *name) {
  return std::make_shared<autodiff::Variable>(name, Tensor::scalar<int64_t>(kUnusedCounter), false);
}

int64_t counter_value(const VariablePtr &v) { return v->peek().data<int64_t>()[0]; }

class BackupAndRestore : public Callback {
 public:
  explicit BackupAndRestore(const BackupAndRestoreOptions &o) : Callback("BackupAndRestore"), o_(o) {
    if (o.backup_dir.empty())
      fail(Code::kInvalidArgument,
           "BackupAndRestore: backup_dir is empty; expected a directory for the backup");
    if (o.save_freq < -1)
      fail(Code::kInvalidArgument, "BackupAndRestore: save_freq is ", o.save_freq,
           "; expected 0 ('epoch'), a positive number of batches or -1 (never)");
    chief_dir_ = (std::filesystem::path(o.backup_dir) / "chief").string();
  }

  // tf.keras's WorkerTrainingState: a checkpoint of the model and the two counters, restored when
  // the directory holds one; fit then starts at the epoch it gives.
  void on_train_begin(Logs &) override {
    const layers::LayerPtr &m = require_model(*this);
    if (!m->built())
      fail(Code::kFailedPrecondition,
           "BackupAndRestore: to use the BackupAndRestore callback, the model must be "
           "built before you call fit(); model '",
           m->name(),
           "' is unbuilt. Build it beforehand (build() with the input shape, or call it on a batch)");
    saved_epoch_ = counter_variable("ckpt_saved_epoch");
    saved_batch_ = counter_variable("ckpt_saved_batch");
    std::vector<std::pair<std::string, TrackablePtr>> children{
        {"model", make_trackable(m)},
        {"ckpt_saved_epoch", make_trackable(saved_epoch_)},
        {"ckpt_saved_batch", make_trackable(saved_batch_)}};
    // A model tracks its optimizer itself; a lone compiled layer does not, so its optimizer's
    // state is kept beside it.
    const OptimizerPtr optimizer = training_state(*m)->optimizer;
    if (!m->is_model() && optimizer) children.emplace_back("optimizer", make_trackable(optimizer));
    checkpoint_ = std::make_shared<Checkpoint>(std::move(children));
    CheckpointManagerOptions mo;
    mo.max_to_keep = 1;
    manager_ = std::make_unique<CheckpointManager>(checkpoint_, chief_dir_, mo);
    batches_count_ = 0;
    current_epoch_ = 0;
    resumed_epoch_ = -1;
    const std::string latest = manager_->latest_checkpoint();
    if (latest.empty()) {
      track_global_rng("");
      return;
    }
    try {
      LoadStatus status = checkpoint_->restore(latest);
      status.expect_partial();  // values waiting for objects not made yet (slots) are expected
      status.assert_existing_objects_matched();
    } catch (const Error &e) {
      fail(e.code(), "BackupAndRestore: the backup '", latest, "' does not fit this model: ", e.what());
    }
    track_global_rng(latest);
    const int64_t epoch = counter_value(saved_epoch_), batch = counter_value(saved_batch_);
    if (epoch < 0) return;
    int64_t resume = epoch + 1;
    if (o_.save_freq != 0) {
      // Saved mid-epoch: after it when that was its last batch, else that epoch again.
      const int64_t steps = params().steps;
      resume = batch >= 0 && steps > 0 && batch == steps - 1 ? epoch + 1 : epoch;
    }
    compiled_model(*m, "BackupAndRestore")->resume_epoch = resume;
    current_epoch_ = resume;
    resumed_epoch_ = resume;
  }

  void on_epoch_begin(int64_t epoch, Logs &) override { current_epoch_ = epoch; }

  void on_train_batch_end(int64_t batch, Logs &) override {
    if (o_.save_freq <= 0) return;
    if (++batches_count_ < o_.save_freq) return;
    batches_count_ = 0;
    back_up(current_epoch_, batch);
  }

  void on_epoch_end(int64_t epoch, Logs &) override {
    if (o_.save_freq == 0) back_up(epoch, 0);
  }

  void on_train_end(Logs &) override {
    manager_.reset();
    checkpoint_.reset();
    if (!o_.delete_checkpoint || !params().chief) return;
    std::error_code ec;
    std::filesystem::remove_all(chief_dir_, ec);
    if (ec)
      fail(Code::kInternal, "BackupAndRestore: cannot delete the backup '", chief_dir_, "': ", ec.message());
    std::filesystem::remove(o_.backup_dir, ec);  // only when nothing else is in it
  }

  Config attributes() const override {
    Config c;
    c.set("resumed_epoch", resumed_epoch_);
    return c;
  }

 private:
  // Beyond Keras: the global random state (core/rng.h) is backed up too, as "rng", so a resumed
  // fit draws the shuffles and Dropout masks the uninterrupted fit drew. It is restored apart
  // from the model, so a backup without it (Keras's, an older kiln's) restores the rest alike.
  void track_global_rng(const std::string &latest) {
    const TrackablePtr rng = make_global_rng_trackable();
    if (!latest.empty()) Checkpoint({{"rng", rng}}).restore(latest).expect_partial();
    checkpoint_->track("rng", rng);
  }

  void back_up(int64_t epoch, int64_t batch) {
    if (!manager_)
      fail(Code::kFailedPrecondition,
           "BackupAndRestore: a save before on_train_begin; the callback runs inside fit");
    if (!params().chief) return;  // a distributed fit's rank 0 keeps the backup for all ranks
    saved_epoch_->assign(Tensor::scalar<int64_t>(epoch));
    saved_batch_->assign(Tensor::scalar<int64_t>(batch));
    manager_->save();
  }

  BackupAndRestoreOptions o_;
  std::string chief_dir_;
  VariablePtr saved_epoch_, saved_batch_;
  std::shared_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<CheckpointManager> manager_;
  int64_t current_epoch_ = 0;
  int64_t batches_count_ = 0;
  int64_t resumed_epoch_ = -1;
};

CallbackPtr model_checkpoint_from(const Config &c) {
  ConfigReader r(c, "ModelCheckpoint");
  ModelCheckpointOptions o;
  const std::optional<std::string> filepath = r.get_optional_string("filepath");
  o.monitor = r.get_string("monitor", o.monitor);
  o.verbose = r.get_int("verbose", o.verbose);
  o.save_best_only = r.get_bool("save_best_only", o.save_best_only);
  o.save_weights_only = r.get_bool("save_weights_only", o.save_weights_only);
  o.mode = r.get_string("mode", o.mode);
  o.save_freq = read_save_freq(r, "ModelCheckpoint", false);
  if (r.has("initial_value_threshold"))
    o.initial_value_threshold = r.get_float("initial_value_threshold", 0.0);
  r.finish();
  if (!filepath)
    fail(Code::kInvalidArgument,
         "ModelCheckpoint: 'filepath' is required (where to save, such as "
         "'ckpt/weights.{epoch:02d}-{val_loss:.2f}')");
  o.filepath = *filepath;
  return make_model_checkpoint(o);
}

CallbackPtr backup_and_restore_from(const Config &c) {
  ConfigReader r(c, "BackupAndRestore");
  BackupAndRestoreOptions o;
  const std::optional<std::string> dir = r.get_optional_string("backup_dir");
  o.save_freq = read_save_freq(r, "BackupAndRestore", true);
  o.delete_checkpoint = r.get_bool("delete_checkpoint", o.delete_checkpoint);
  const bool preemption = r.get_bool("save_before_preemption", false);
  r.finish();
  if (!dir)
    fail(Code::kInvalidArgument, "BackupAndRestore: 'backup_dir' is required (the directory of the backup)");
  if (preemption)
    fail(Code::kInvalidArgument,
         "BackupAndRestore: save_before_preemption=true is not supported (kiln has no preemption notice)");
  o.backup_dir = *dir;
  return make_backup_and_restore(o);
}

}  // namespace

CallbackPtr make_model_checkpoint(const ModelCheckpointOptions &options) {
  return std::make_shared<ModelCheckpoint>(options);
}

CallbackPtr make_backup_and_restore(const BackupAndRestoreOptions &options) {
  return std::make_shared<BackupAndRestore>(options);
}

void register_checkpoint_callbacks() {
  register_callback("ModelCheckpoint", model_checkpoint_from);
  register_callback("BackupAndRestore", backup_and_restore_from);
}

}  // namespace kiln::train
