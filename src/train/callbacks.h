// Keras callbacks (keras/src/callbacks/*.py): objects with the Keras hooks that fit, evaluate and
// predict call, a CallbackList that dispatches them in order (adding History and ProgbarLogger as
// Keras's CallbackList does), and the registry of the built-in classes by name (EarlyStopping,
// LearningRateScheduler, ReduceLROnPlateau, CSVLogger, TerminateOnNaN, ProgbarLogger, History,
// LambdaCallback are in callbacks_builtin.cc, callbacks_monitor.cc, callbacks_basic.cc and progbar.cc;
// ModelCheckpoint and BackupAndRestore in callbacks_checkpoint.h/.cc; TensorBoard and HParams in
// callbacks_tensorboard.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/utf8.h"
#include "layers/layer.h"

namespace kiln::train {

// Keras's logs dict: names to floats in insertion order (loss, metrics, then val_*).
class Logs {
 public:
  // Replaces the value of name, or appends it.
  void set(const std::string &name, double value);
  std::optional<double> get(const std::string &name) const;
  bool contains(const std::string &name) const { return get(name).has_value(); }
  void erase(const std::string &name);
  const std::vector<std::pair<std::string, double>> &items() const { return items_; }
  bool empty() const { return items_.empty(); }
  void clear() { items_.clear(); }
  // As a Config of floats, and back (non-numeric entries of a Config are InvalidArgument).
  Config to_config() const;
  static Logs from_config(const Config &config);

 private:
  std::vector<std::pair<std::string, double>> items_;
};

// Keras's callback.params: {"verbose", "epochs", "steps"}; steps is -1 when unknown.
struct CallbackParams {
  int64_t verbose = 1;
  int64_t epochs = 1;
  int64_t steps = -1;
  // False on the ranks other than 0 of a distributed fit: they do not write files.
  bool chief = true;
};

class Callback {
 public:
  explicit Callback(std::string class_name) : class_name_(std::move(class_name)) {
    require_utf8(class_name_, "Callback", "the class name");  // it reaches configs as text
  }
  virtual ~Callback() = default;
  Callback(const Callback &) = delete;
  Callback &operator=(const Callback &) = delete;

  const std::string &class_name() const { return class_name_; }
  // Keras's set_model / self.model: the model fit, evaluate or predict runs. Its training state
  // (training_state.h) holds the optimizer and stop_training.
  virtual void set_model(const layers::LayerPtr &model) { model_ = model; }
  const layers::LayerPtr &model() const { return model_; }
  virtual void set_params(const CallbackParams &params) { params_ = params; }
  const CallbackParams &params() const { return params_; }

  // The Keras hooks. Logs may be read and changed (ReduceLROnPlateau adds "learning_rate").
  // epoch and batch count from 0, as Keras passes them.
  virtual void on_train_begin(Logs &) {}
  virtual void on_train_end(Logs &) {}
  virtual void on_epoch_begin(int64_t /*epoch*/, Logs &) {}
  virtual void on_epoch_end(int64_t /*epoch*/, Logs &) {}
  virtual void on_train_batch_begin(int64_t /*batch*/, Logs &) {}
  virtual void on_train_batch_end(int64_t /*batch*/, Logs &) {}
  virtual void on_test_begin(Logs &) {}
  virtual void on_test_end(Logs &) {}
  virtual void on_test_batch_begin(int64_t /*batch*/, Logs &) {}
  virtual void on_test_batch_end(int64_t /*batch*/, Logs &) {}
  virtual void on_predict_begin(Logs &) {}
  virtual void on_predict_end(Logs &) {}
  virtual void on_predict_batch_begin(int64_t /*batch*/, Logs &) {}
  virtual void on_predict_batch_end(int64_t /*batch*/, Logs &) {}

  // The callback's public state as Keras keeps it in attributes (EarlyStopping's stopped_epoch,
  // best_epoch, wait, best; ReduceLROnPlateau's wait, cooldown_counter, best), for the bindings.
  virtual Config attributes() const { return Config(); }

 private:
  std::string class_name_;
  layers::LayerPtr model_;
  CallbackParams params_;
};

using CallbackPtr = std::shared_ptr<Callback>;

// Keras's History: history[name] holds one value per epoch, epoch the epoch numbers. fit returns it.
class History : public Callback {
 public:
  History() : Callback("History") {}
  void on_train_begin(Logs &) override;
  void on_epoch_end(int64_t e, Logs &logs) override;
  // {"epoch": [...], "keys": [names in first-seen order], "history": {name: [values]}}: a copy
  // taken under the lock, so it may be read while fit runs on another thread. Values may be
  // non-finite.
  Config record() const;
  // Read these directly only when no fit is running.
  std::vector<int64_t> epoch;
  std::map<std::string, std::vector<double>> history;  // ordered by name; keys() order below
  std::vector<std::string> keys;                       // names in first-seen order

 private:
  mutable std::mutex mu_;
};

// Keras's CallbackList: calls each callback's hook in list order. With add_history a History is
// appended unless the list has one; with add_progbar a ProgbarLogger is appended unless the list
// has one (Keras 3's _add_default_callbacks). set_model / set_params reach every callback.
class CallbackList {
 public:
  CallbackList(std::vector<CallbackPtr> callbacks, bool add_history, bool add_progbar,
               const layers::LayerPtr &model, const CallbackParams &params);
  const std::vector<CallbackPtr> &callbacks() const { return callbacks_; }
  // The History in the list (null without one).
  std::shared_ptr<History> history() const { return history_; }

  // Keras's CallbackList: each hook hands its callbacks one copy of the trainer's logs, so what a
  // callback changes reaches the ones after it (and History), and the trainer's own logs stay.
  void on_train_begin(const Logs &logs);
  void on_train_end(const Logs &logs);
  void on_epoch_begin(int64_t epoch, const Logs &logs);
  void on_epoch_end(int64_t epoch, const Logs &logs);
  void on_train_batch_begin(int64_t batch, const Logs &logs);
  void on_train_batch_end(int64_t batch, const Logs &logs);
  void on_test_begin(const Logs &logs);
  void on_test_end(const Logs &logs);
  void on_test_batch_begin(int64_t batch, const Logs &logs);
  void on_test_batch_end(int64_t batch, const Logs &logs);
  void on_predict_begin(const Logs &logs);
  void on_predict_end(const Logs &logs);
  void on_predict_batch_begin(int64_t batch, const Logs &logs);
  void on_predict_batch_end(int64_t batch, const Logs &logs);

 private:
  template <typename F>
  void each(const Logs &logs, F &&f);
  std::vector<CallbackPtr> callbacks_;
  std::shared_ptr<History> history_;
};

// The registry of callback classes by name (as layers and optimizers): the built-ins, plus
// registered classes. Unknown names: NotFound listing the known ones; unknown config keys:
// InvalidArgument naming the key.
using CallbackFactory = std::function<CallbackPtr(const Config &config)>;
CallbackPtr create_callback(const std::string &class_name, const Config &config = Config());
void register_callback(const std::string &class_name, CallbackFactory factory);
std::vector<std::string> registered_callbacks();

// callbacks_builtin.cc: adds the built-in classes to the registry (called once, on first use).
void register_builtin_callbacks();

// ---- The built-in callbacks (Keras 3's keras/src/callbacks/*.py), with Keras's defaults ----
// Registered by name with a Config of the same keys: EarlyStopping, ReduceLROnPlateau, CSVLogger,
// TerminateOnNaN, LambdaCallback (no hooks: does nothing), History, ProgbarLogger, TensorBoard,
// HParams.
// LearningRateScheduler needs a function, so only make_learning_rate_scheduler makes it.
// Callbacks that stop training or change the learning rate need a model (set by CallbackList);
// the optimizer is the model's training state's (training_state.h).

// EarlyStopping: stops when `monitor` has not improved by more than min_delta for `patience`
// epochs (counted from start_from_epoch; never at epoch 0). mode "auto" picks min for losses
// and errors, max for accuracies, AUC, precision, recall and the like, and is InvalidArgument for
// a name it cannot place (as Keras 3). With restore_best_weights, the model's variables go back
// to the best epoch's values at train end (Keras 3: also when training was not stopped early).
// A missing monitor warns (callback_warning) and changes nothing.
struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int64_t patience = 0;
  int64_t verbose = 0;
  std::string mode = "auto";
  std::optional<double> baseline;
  bool restore_best_weights = false;
  int64_t start_from_epoch = 0;
};
CallbackPtr make_early_stopping(const EarlyStoppingOptions &options = EarlyStoppingOptions());

// ReduceLROnPlateau: multiplies the optimizer's learning rate by factor (< 1) when `monitor` has
// not improved for `patience` epochs, not below min_lr, then waits `cooldown` epochs. Writes
// logs["learning_rate"] at each epoch end. An optimizer whose learning rate is a schedule is
// FailedPrecondition when it would be reduced (Keras's TypeError).
struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int64_t patience = 10;
  int64_t verbose = 0;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int64_t cooldown = 0;
  double min_lr = 0.0;
};
CallbackPtr make_reduce_lr_on_plateau(const ReduceLROnPlateauOptions &options = ReduceLROnPlateauOptions());

// LearningRateScheduler: at each epoch begin sets the optimizer's learning rate to
// schedule(epoch, current learning rate); at epoch end writes logs["learning_rate"].
using LearningRateScheduleFn = std::function<double(int64_t epoch, double learning_rate)>;
CallbackPtr make_learning_rate_scheduler(LearningRateScheduleFn schedule, int64_t verbose = 0);

// CSVLogger: one row per epoch (epoch, then the first epoch's log names sorted, plus their val_
// names when it had none), flushed each epoch; "NA" for a missing value; Python's csv module's
// quoting and "\r\n" line ends and repr() of floats, so the file is byte-identical to Keras's.
// append: keep an existing file and write no header when it has one.
CallbackPtr make_csv_logger(const std::string &filename, const std::string &separator = ",",
                            bool append = false);

// TerminateOnNaN: after a training batch whose loss is NaN or infinite, stops training (or, with
// raise_error, fails FailedPrecondition at once).
CallbackPtr make_terminate_on_nan(bool raise_error = false);

// LambdaCallback: the hooks given (any may be empty).
struct LambdaHooks {
  std::function<void(int64_t epoch, Logs &logs)> on_epoch_begin, on_epoch_end;
  std::function<void(Logs &logs)> on_train_begin, on_train_end;
  std::function<void(int64_t batch, Logs &logs)> on_train_batch_begin, on_train_batch_end;
};
CallbackPtr make_lambda_callback(LambdaHooks hooks);

// TensorBoard (callbacks_tensorboard.cc): Keras's TensorBoard callback, writing what TF 2.13's
// tf.keras writes (FORMATS.md §1.5) through summary/: event files in <log_dir>/train and, once
// there is validation, <log_dir>/validation (new files for each fit; flushed at each epoch end,
// closed at train end).
//   train:      "keras" (the model's JSON config, step 0) with write_graph; per epoch (step =
//               epoch) epoch_<name> for each training log, epoch_learning_rate (the optimizer's
//               current learning rate, as Keras 3 logs it) and epoch_steps_per_second with
//               write_steps_per_second; every histogram_freq epochs the weight histograms
//               <layer>/<weight>_0/histogram (TF 2.13's names) and with write_images
//               <layer>/<weight>_0/image as TF 2.13 draws a weight; with update_freq N,
//               batch_<name> (and batch_steps_per_second) at global batch numbers N, 2N, ...
//               (counted from 1 across epochs); with profile_batch, the op timings of those
//               batches (summary::trace_export "batch_<stop>").
//   validation: epoch_<name> for each val_<name> log (step = epoch), and at the end of each
//               evaluation evaluation_<name>_vs_iterations at step = optimizer.iterations.
// With update_freq N the train (validation) writer is also the thread's default writer during
// each training (test) batch, with the global batch number as the default step and recording on
// every Nth batch, so summaries written inside the step land there (Keras's custom batch-level
// summaries). With update_freq "epoch" the batch hooks do nothing but count.
struct TensorBoardOptions {
  std::string log_dir = "logs";
  int64_t histogram_freq = 0;  // epochs between weight histograms (0: none)
  bool write_graph = true;
  bool write_images = false;  // weights as images too (with histogram_freq)
  bool write_steps_per_second = false;
  int64_t update_freq = 0;  // 0: Keras's "epoch"; N > 0: every N training batches ("batch" is 1)
  // The training batches traced (counted from 1 across epochs): profile_batch through
  // profile_batch_stop (0: profile_batch alone). profile_batch 0: no tracing.
  int64_t profile_batch = 0;
  int64_t profile_batch_stop = 0;
  int64_t embeddings_freq = 0;  // only 0: the embedding projector is not supported
};
CallbackPtr make_tensorboard(const TensorBoardOptions &options = TensorBoardOptions());

// HParams: TensorBoard's hp.KerasCallback(log_dir, hparams, trial_id): at train begin the hparams
// plugin's session-start summary of `hparams` (name -> number, bool or string; checked here), at
// train end its session-end summary ("success", or "failure" when the last loss is not finite),
// in an event file in log_dir (the run's directory). trial_id empty: a digest of the values.
CallbackPtr make_hparams_callback(const std::string &log_dir, const Config &hparams,
                                  const std::string &trial_id = "");
// Adds "TensorBoard" (Keras's arguments: log_dir, histogram_freq, write_graph, write_images,
// write_steps_per_second, update_freq "epoch" | "batch" | N, profile_batch N | "start,stop" |
// [start, stop], embeddings_freq 0) and "HParams" ({"log_dir", "hparams", "trial_id"}) to the
// callback registry (called by register_builtin_callbacks).
void register_tensorboard_callbacks();

// Keras's warnings.warn from callbacks (a monitored value missing from the logs): to stderr as
// "UserWarning: <text>", or to the sink set here (empty: back to stderr).
void callback_warning(const std::string &text);
void set_callback_warning_sink(std::function<void(const std::string &text)> sink);

// Python's repr() of a float ("0.1", "1e-05", "inf", "nan", "3.0"): how Keras prints and logs values.
std::string python_float_repr(double v);

}  // namespace kiln::train
