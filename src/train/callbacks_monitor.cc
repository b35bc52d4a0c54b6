// The callbacks that watch a logged value (Keras 3's MonitorCallback): EarlyStopping and
// ReduceLROnPlateau.
#include <cmath>
#include <limits>

#include "core/error.h"
#include "train/callbacks.h"
#include "train/callbacks_internal.h"
#include "train/progbar.h"
#include "train/training_state.h"

namespace kiln::train {

namespace {

bool starts_with(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }
bool contains(const std::string &s, const char *part) { return s.find(part) != std::string::npos; }

// Keras 3 asks the compiled metric for its direction; kiln decides from the metric's name, which
// for compiled metrics is the Keras name ("accuracy", "auc_1", "mean_absolute_error").
bool name_is_maximized(const std::string &monitor, const std::string &owner) {
  const std::string name = starts_with(monitor, "val_") ? monitor.substr(4) : monitor;
  if (contains(name, "loss")) return false;
  if (contains(name, "acc")) return true;  // tf.keras 2's rule: accuracy, acc, top_k_...
  for (const char *up : {"auc",
                         "precision",
                         "recall",
                         "f1",
                         "fbeta",
                         "iou",
                         "mean_iou",
                         "io_u",
                         "mean_io_u",
                         "binary_io_u",
                         "one_hot_io_u",
                         "one_hot_mean_io_u",
                         "r2",
                         "cosine_similarity",
                         "true_positives",
                         "true_negatives",
                         "sensitivity",
                         "specificity",
                         "prc",
                         "pearson_correlation",
                         "concordance_correlation"})
    if (starts_with(name, up)) return true;
  for (const char *down : {"error", "crossentropy", "hinge", "mse", "mae", "mape", "msle", "rmse", "kl",
                           "poisson", "logcosh", "log_cosh", "huber", "false_positives", "false_negatives"})
    if (contains(name, down)) return false;
  fail(Code::kInvalidArgument, owner, ": monitor='", monitor,
       "', but kiln cannot tell whether it should be maximized or minimized; pass mode='max' to use the "
       "highest value or mode='min' for the lowest");
}

}  // namespace

MonitorRule::MonitorRule(const std::string &owner, const std::string &monitor, const std::string &mode,
                         double min_delta)
    : monitor_(monitor) {
  if (monitor.empty())
    fail(Code::kInvalidArgument, owner, ": monitor is empty; expected a log name such as 'val_loss'");
  if (mode == "min") {
    maximize_ = false;
  } else if (mode == "max") {
    maximize_ = true;
  } else if (mode == "auto") {
    maximize_ = name_is_maximized(monitor, owner);
  } else {
    fail(Code::kInvalidArgument, owner, ": mode '", mode, "' is unknown; expected 'auto', 'min' or 'max'");
  }
  if (!std::isfinite(min_delta))
    fail(Code::kInvalidArgument, owner, ": min_delta must be finite; got ", min_delta);
  // Keras keeps min_delta signed by direction: improvement is op(current - min_delta, reference).
  min_delta_ = maximize_ ? std::fabs(min_delta) : -std::fabs(min_delta);
}

bool MonitorRule::is_improvement(double current, std::optional<double> reference) const {
  if (!reference) return true;
  return maximize_ ? current - min_delta_ > *reference : current - min_delta_ < *reference;
}

std::optional<double> MonitorRule::value(const Logs &logs, const std::string &warning_prefix) const {
  std::optional<double> v = logs.get(monitor_);
  if (!v) {
    std::string names;
    for (const auto &kv : logs.items()) names += (names.empty() ? "" : ",") + kv.first;
    callback_warning(
        str_cat(warning_prefix, " `", monitor_, "` which is not available. Available metrics are: ", names));
  }
  return v;
}

TrainingState &model_state(const Callback &cb) {
  if (!cb.model())
    fail(Code::kFailedPrecondition, cb.class_name(),
         ": no model is set; the callback runs inside fit (or a CallbackList with a model)");
  return *training_state(*cb.model());
}

Optimizer &model_optimizer(const Callback &cb) {
  TrainingState &state = model_state(cb);
  if (!state.optimizer)
    fail(Code::kFailedPrecondition, cb.class_name(), ": the model has no optimizer; compile the model first");
  return *state.optimizer;
}

namespace {

// ---- EarlyStopping ----

class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(const EarlyStoppingOptions &o)
      : Callback("EarlyStopping"), o_(o), rule_("EarlyStopping", o.monitor, o.mode, o.min_delta) {
    if (o.patience < 0)
      fail(Code::kInvalidArgument, "EarlyStopping: patience must be >= 0; got ", o.patience);
    if (o.baseline && !std::isfinite(*o.baseline))
      fail(Code::kInvalidArgument, "EarlyStopping: baseline must be finite or None; got ", *o.baseline);
  }

  void on_train_begin(Logs &) override {
    wait_ = 0;
    stopped_epoch_ = 0;
    best_.reset();
    best_weights_.clear();
    best_epoch_ = 0;
  }

  void on_epoch_end(int64_t epoch, Logs &logs) override {
    const std::optional<double> current = rule_.value(logs, "Early stopping conditioned on metric");
    if (!current || epoch < o_.start_from_epoch) return;
    if (o_.restore_best_weights && best_weights_.empty()) snapshot(epoch);
    ++wait_;
    if (rule_.is_improvement(*current, best_)) {
      best_ = current;
      best_epoch_ = epoch;
      if (o_.restore_best_weights) snapshot(epoch);
      if (!o_.baseline || rule_.is_improvement(*current, o_.baseline)) wait_ = 0;
      return;
    }
    if (wait_ >= o_.patience && epoch > 0) {
      stopped_epoch_ = epoch;
      model_state(*this).stop_training = true;
    }
  }

  void on_train_end(Logs &) override {
    if (stopped_epoch_ > 0 && o_.verbose > 0)
      progress_print(str_cat("Epoch ", stopped_epoch_ + 1, ": early stopping\n"));
    if (!o_.restore_best_weights || best_weights_.empty()) return;
    if (o_.verbose > 0)
      progress_print(
          str_cat("Restoring model weights from the end of the best epoch: ", best_epoch_ + 1, ".\n"));
    for (const auto &vw : best_weights_) vw.first->assign(vw.second);
  }

  Config attributes() const override {
    Config c;
    c.set("wait", wait_);
    c.set("stopped_epoch", stopped_epoch_);
    c.set("best_epoch", best_epoch_);
    c.set("best", best_);  // Keras's best: the best monitored value so far, None before any
    return c;
  }

 private:
  // Keras's model.get_weights(): every variable's value. peek() shares the buffer; the variable
  // copies on its next write, so the snapshot keeps the values of this epoch.
  void snapshot(int64_t) {
    best_weights_.clear();
    if (!model()) fail(Code::kFailedPrecondition, "EarlyStopping: restore_best_weights needs a model");
    for (const VariablePtr &v : model()->variables()) best_weights_.emplace_back(v, v->peek());
  }

  EarlyStoppingOptions o_;
  MonitorRule rule_;
  int64_t wait_ = 0;
  int64_t stopped_epoch_ = 0;
  int64_t best_epoch_ = 0;
  std::optional<double> best_;
  std::vector<std::pair<VariablePtr, Tensor>> best_weights_;
};

// ---- ReduceLROnPlateau ----

class ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(const ReduceLROnPlateauOptions &o)
      : Callback("ReduceLROnPlateau"), o_(o), rule_("ReduceLROnPlateau", o.monitor, o.mode, o.min_delta) {
    if (!(o.factor < 1.0))
      fail(Code::kInvalidArgument,
           "ReduceLROnPlateau does not support a factor >= 1.0; got factor=", o.factor);
    if (!(o.factor >= 0.0))
      fail(Code::kInvalidArgument, "ReduceLROnPlateau: factor must be >= 0; got ", o.factor);
    if (o.patience < 0)
      fail(Code::kInvalidArgument, "ReduceLROnPlateau: patience must be >= 0; got ", o.patience);
    if (o.cooldown < 0)
      fail(Code::kInvalidArgument, "ReduceLROnPlateau: cooldown must be >= 0; got ", o.cooldown);
    if (!(o.min_lr >= 0.0) || !std::isfinite(o.min_lr))
      fail(Code::kInvalidArgument, "ReduceLROnPlateau: min_lr must be finite and >= 0; got ", o.min_lr);
  }

  void on_train_begin(Logs &) override {
    best_.reset();
    cooldown_counter_ = 0;
    wait_ = 0;
  }

  void on_epoch_end(int64_t epoch, Logs &logs) override {
    Optimizer &opt = model_optimizer(*this);
    logs.set("learning_rate", opt.learning_rate());
    const std::optional<double> current =
        rule_.value(logs, "Learning rate reduction is conditioned on metric");
    if (!current) return;
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      wait_ = 0;
    }
    if (rule_.is_improvement(*current, best_)) {
      best_ = current;
      wait_ = 0;
      return;
    }
    if (cooldown_counter_ > 0) return;
    if (++wait_ < o_.patience) return;
    // Keras compares the float32 variable with float32(min_lr).
    const double old_lr = opt.learning_rate();
    if (!(static_cast<float>(old_lr) > static_cast<float>(o_.min_lr))) return;
    const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
    opt.set_learning_rate(new_lr);
    if (o_.verbose > 0)
      progress_print(str_cat("\nEpoch ", epoch + 1, ": ReduceLROnPlateau reducing learning rate to ",
                             python_float_repr(new_lr), ".\n"));
    cooldown_counter_ = o_.cooldown;
    wait_ = 0;
  }

  Config attributes() const override {
    Config c;
    c.set("wait", wait_);
    c.set("cooldown_counter", cooldown_counter_);
    c.set("best", best_);  // Keras's best: the best monitored value so far, None before any
    return c;
  }

 private:
  ReduceLROnPlateauOptions o_;
  MonitorRule rule_;
  int64_t wait_ = 0;
  int64_t cooldown_counter_ = 0;
  std::optional<double> best_;
};

}  // namespace

CallbackPtr make_early_stopping(const EarlyStoppingOptions &options) {
  return std::make_shared<EarlyStopping>(options);
}

CallbackPtr make_reduce_lr_on_plateau(const ReduceLROnPlateauOptions &options) {
  return std::make_shared<ReduceLROnPlateau>(options);
}

}  // namespace kiln::train
