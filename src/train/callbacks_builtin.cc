// The built-in Keras callbacks by class name, from a Config of Keras's constructor arguments
// (callbacks_monitor.cc and callbacks_basic.cc hold the classes; progbar.cc ProgbarLogger).
#include "core/error.h"
#include "train/callbacks.h"
#include "train/callbacks_checkpoint.h"
#include "train/callbacks_internal.h"
#include "train/progbar.h"

namespace kiln::train {

namespace {

CallbackPtr early_stopping_from(const Config &c) {
  ConfigReader r(c, "EarlyStopping");
  EarlyStoppingOptions o;
  o.monitor = r.get_string("monitor", o.monitor);
  o.min_delta = r.get_float("min_delta", o.min_delta);
  o.patience = r.get_int("patience", o.patience);
  o.verbose = r.get_int("verbose", o.verbose);
  o.mode = r.get_string("mode", o.mode);
  if (r.has("baseline")) o.baseline = r.get_float("baseline", 0.0);
  o.restore_best_weights = r.get_bool("restore_best_weights", o.restore_best_weights);
  o.start_from_epoch = r.get_int("start_from_epoch", o.start_from_epoch);
  r.finish();
  return make_early_stopping(o);
}

CallbackPtr reduce_lr_on_plateau_from(const Config &c) {
  ConfigReader r(c, "ReduceLROnPlateau");
  ReduceLROnPlateauOptions o;
  o.monitor = r.get_string("monitor", o.monitor);
  o.factor = r.get_float("factor", o.factor);
  o.patience = r.get_int("patience", o.patience);
  o.verbose = r.get_int("verbose", o.verbose);
  o.mode = r.get_string("mode", o.mode);
  o.min_delta = r.get_float("min_delta", o.min_delta);
  o.cooldown = r.get_int("cooldown", o.cooldown);
  o.min_lr = r.get_float("min_lr", o.min_lr);
  r.finish();
  return make_reduce_lr_on_plateau(o);
}

CallbackPtr csv_logger_from(const Config &c) {
  ConfigReader r(c, "CSVLogger");
  const std::optional<std::string> filename = r.get_optional_string("filename");
  const std::string separator = r.get_string("separator", ",");
  const bool append = r.get_bool("append", false);
  r.finish();
  if (!filename)
    fail(Code::kInvalidArgument, "CSVLogger: 'filename' is required (the path of the CSV file to write)");
  return make_csv_logger(*filename, separator, append);
}

}  // namespace

void register_builtin_callbacks() {
  register_callback("ProgbarLogger", [](const Config &c) -> CallbackPtr {
    ConfigReader r(c, "ProgbarLogger");
    r.accept({"count_mode", "stateful_metrics"});  // Keras 2's arguments; fit counts steps
    r.finish();
    return make_progbar_logger();
  });
  register_callback("EarlyStopping", early_stopping_from);
  register_callback("ReduceLROnPlateau", reduce_lr_on_plateau_from);
  register_callback("CSVLogger", csv_logger_from);
  register_callback("TerminateOnNaN", [](const Config &c) -> CallbackPtr {
    ConfigReader r(c, "TerminateOnNaN");
    const bool raise_error = r.get_bool("raise_error", false);
    r.finish();
    return make_terminate_on_nan(raise_error);
  });
  register_callback("SwapEMAWeights", [](const Config &c) -> CallbackPtr {
    ConfigReader r(c, "SwapEMAWeights");
    const bool swap_on_epoch = r.get_bool("swap_on_epoch", false);
    r.finish();
    return make_swap_ema_weights(swap_on_epoch);
  });
  register_callback("LambdaCallback", [](const Config &c) -> CallbackPtr {
    ConfigReader r(c, "LambdaCallback");
    r.finish();
    return make_lambda_callback(LambdaHooks());  // hooks are functions: make_lambda_callback / the bindings
  });
  register_checkpoint_callbacks();  // ModelCheckpoint, BackupAndRestore
  register_tensorboard_callbacks();
  register_callback("LearningRateScheduler", [](const Config &) -> CallbackPtr {
    fail(Code::kInvalidArgument,
         "LearningRateScheduler needs a schedule function (epoch, learning_rate) -> learning_rate, which a "
         "config "
         "cannot hold; make it with kiln_callback_create_lr_scheduler (C), "
         "kiln::callbacks::LearningRateScheduler "
         "(C++) or kiln.callbacks.LearningRateScheduler (Python)");
  });
}

}  // namespace kiln::train
