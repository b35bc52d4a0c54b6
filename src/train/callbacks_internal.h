// Pieces the built-in callbacks share (callbacks_*.cc).
#pragma once

#include <optional>
#include <string>

#include "train/callbacks.h"
#include "train/optimizer.h"
#include "train/training_state.h"

namespace kiln::train {

// Keras 3's MonitorCallback: which logged value to watch and which way is better.
class MonitorRule {
 public:
  // mode: "auto", "min" or "max" (anything else is InvalidArgument naming owner).
  MonitorRule(const std::string &owner, const std::string &monitor, const std::string &mode,
              double min_delta);
  // Keras's _is_improvement: true against no reference.
  bool is_improvement(double current, std::optional<double> reference) const;
  // The monitored value, or nothing after a warning "<warning_prefix> `monitor` which is not
  // available. Available metrics are: ...".
  std::optional<double> value(const Logs &logs, const std::string &warning_prefix) const;
  bool maximize() const { return maximize_; }

 private:
  std::string monitor_;
  bool maximize_ = false;
  double min_delta_ = 0.0;
};

// The training state of the callback's model / its optimizer; FailedPrecondition naming the
// callback when there is no model or no optimizer.
TrainingState &model_state(const Callback &cb);
Optimizer &model_optimizer(const Callback &cb);

// Keras's SwapEMAWeights (callbacks_basic.cc), which the registry makes by name.
CallbackPtr make_swap_ema_weights(bool swap_on_epoch);

}  // namespace kiln::train
