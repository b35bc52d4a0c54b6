// Keras's progress bar (tf.keras.utils.Progbar, the TF 2.x form the Keras 2 fit loop prints) and
// the ProgbarLogger callback that drives it from fit, evaluate and predict.
//   verbose 1, a terminal:  12/469 [=>............................] - ETA: 3s - loss: 0.5213 - accuracy: 0.8104
//                           redrawn in place (\b and \r) at most every `interval` seconds, then
//                           469/469 [==============================] - 3s 6ms/step - loss: ... \n
//   verbose 2:              one line when the target is reached: 469/469 - 3s - 6ms/step - loss: ...
//   verbose 0:              nothing.
// Values are averaged over the steps seen, weighted by how many steps each update covers, except
// stateful metrics, which are shown as given (fit's logs already hold running means, so
// ProgbarLogger marks every value stateful, as Keras does).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "train/callbacks.h"

namespace kiln::train {

// Where progress text goes (default: stdout, flushed) and the clock in seconds (default: a
// steady clock). Tests and the Python binding replace them.
using ProgressSink = std::function<void(const std::string &text)>;
using ProgressClock = std::function<double()>;
void set_progress_sink(ProgressSink sink);  // empty: back to stdout
// Whether the sink is a terminal (a live bar redrawn in place): asked when a sink is set (empty:
// no). The Python binding answers sys.stdout.isatty() (or a notebook) at the time of asking.
void set_progress_terminal(std::function<bool()> is_terminal);
void set_progress_clock(ProgressClock clock);  // empty: back to the steady clock
// Whether stdout is a terminal (the live bar redraws in place; verbose "auto" picks 1 there, 2
// elsewhere).
bool progress_is_terminal();
// Writes text to the progress sink (or stdout, flushed): Keras's io_utils.print_msg, which
// callbacks' verbose messages go through.
void progress_print(const std::string &text);

class Progbar {
 public:
  // target: the total number of steps, or -1 when unknown ("%7d/Unknown").
  Progbar(int64_t target, int64_t width = 30, int64_t verbose = 1, double interval = 0.05,
          std::set<std::string> stateful_metrics = {}, std::string unit_name = "step");
  // Keras's update(current, values, finalize): finalize < 0 means current >= target.
  void update(int64_t current, const std::vector<std::pair<std::string, double>> &values = {}, int finalize = -1);
  // Keras's add(n, values): update(seen + n, values).
  void add(int64_t n, const std::vector<std::pair<std::string, double>> &values = {});
  // Keras's progbar.target = n (ProgbarLogger sets it at the end of an epoch of unknown length).
  void set_target(int64_t target) { target_ = target; }
  // Every value is shown as given (ProgbarLogger: fit's logs hold running means already).
  void set_all_stateful() { all_stateful_ = true; }

 private:
  std::string format_time(double time_per_unit) const;
  double estimate_step_duration(int64_t current, double now);
  std::string format_value(double avg) const;

  int64_t target_;
  int64_t width_;
  int64_t verbose_;
  double interval_;
  std::set<std::string> stateful_;
  std::string unit_name_;
  bool dynamic_display_;
  bool all_stateful_ = false;
  int64_t total_width_ = 0;
  int64_t seen_so_far_ = 0;
  std::map<std::string, std::pair<double, double>> values_;  // sum of value * steps, steps
  std::vector<std::string> values_order_;
  double start_;
  double last_update_ = -1e300;  // the first update always draws (Keras: time 0 of the epoch clock)
  double time_after_first_step_ = -1.0;
};

// Formats used by the bar, exposed for tests: Keras's ETA ("3s", "1:05", "1:01:05") and the
// per-unit time (" 6ms/step", " 2s/step", " 950us/step").
std::string progbar_eta(double seconds);
std::string progbar_time_per_unit(double seconds, const std::string &unit_name);

// The ProgbarLogger callback (registered by name by callbacks_builtin.cc). verbose < 0 in its
// params is Keras's "auto": 1 on a terminal, 2 elsewhere.
CallbackPtr make_progbar_logger();

}  // namespace kiln::train
