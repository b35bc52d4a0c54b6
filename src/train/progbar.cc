#include "train/progbar.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>

#include "core/error.h"

namespace kiln::train {

namespace {

std::mutex &io_mutex() {
  static std::mutex mu;
  return mu;
}
ProgressSink &sink_slot() {
  static ProgressSink s;
  return s;
}
std::function<bool()> &terminal_slot() {
  static std::function<bool()> t;
  return t;
}
ProgressClock &clock_slot() {
  static ProgressClock c;
  return c;
}

void emit(const std::string &text) {
  ProgressSink sink;
  {
    std::lock_guard<std::mutex> lock(io_mutex());
    sink = sink_slot();
  }
  if (sink) {
    sink(text);
    return;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

double now_seconds() {
  ProgressClock clock;
  {
    std::lock_guard<std::mutex> lock(io_mutex());
    clock = clock_slot();
  }
  if (clock) return clock();
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string printf_string(const char *fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

int64_t digits(int64_t n) { return n <= 0 ? 1 : static_cast<int64_t>(std::log10(static_cast<double>(n))) + 1; }

std::string count_of(int64_t current, int64_t target) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%*lld/%lld", static_cast<int>(digits(target)), static_cast<long long>(current),
                static_cast<long long>(target));
  return buf;
}

}  // namespace

void set_progress_sink(ProgressSink sink) {
  std::lock_guard<std::mutex> lock(io_mutex());
  sink_slot() = std::move(sink);
}

void set_progress_clock(ProgressClock clock) {
  std::lock_guard<std::mutex> lock(io_mutex());
  clock_slot() = std::move(clock);
}

void progress_print(const std::string &text) { emit(text); }

void set_progress_terminal(std::function<bool()> is_terminal) {
  std::lock_guard<std::mutex> lock(io_mutex());
  terminal_slot() = std::move(is_terminal);
}

bool progress_is_terminal() {
  std::function<bool()> ask;
  {
    std::lock_guard<std::mutex> lock(io_mutex());
    if (!sink_slot()) return isatty(fileno(stdout)) != 0;
    ask = terminal_slot();
  }
  return ask ? ask() : false;  // text captured by someone else: redraws only when it says so
}

std::string progbar_eta(double eta) {
  char buf[64];
  if (eta > 3600) {
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", static_cast<int>(eta / 3600),
                  static_cast<int>(std::fmod(eta, 3600.0) / 60), static_cast<int>(std::fmod(eta, 60.0)));
  } else if (eta > 60) {
    std::snprintf(buf, sizeof buf, "%d:%02d", static_cast<int>(eta / 60), static_cast<int>(std::fmod(eta, 60.0)));
  } else {
    std::snprintf(buf, sizeof buf, "%ds", static_cast<int>(eta));
  }
  return buf;
}

std::string progbar_time_per_unit(double t, const std::string &unit_name) {
  if (t >= 1 || t == 0) return printf_string(" %.0fs/", t) + unit_name;
  if (t >= 1e-3) return printf_string(" %.0fms/", t * 1e3) + unit_name;
  return printf_string(" %.0fus/", t * 1e6) + unit_name;
}

Progbar::Progbar(int64_t target, int64_t width, int64_t verbose, double interval, std::set<std::string> stateful_metrics,
                 std::string unit_name)
    : target_(target),
      width_(width),
      verbose_(verbose),
      interval_(interval),
      stateful_(std::move(stateful_metrics)),
      unit_name_(std::move(unit_name)),
      dynamic_display_(progress_is_terminal()),
      start_(now_seconds()) {
  if (width_ < 1) fail(Code::kInvalidArgument, "Progbar: width must be at least 1; got ", width_);
}

std::string Progbar::format_time(double time_per_unit) const { return progbar_time_per_unit(time_per_unit, unit_name_); }

std::string Progbar::format_value(double avg) const {
  return std::fabs(avg) > 1e-3 ? printf_string(" %.4f", avg) : printf_string(" %.4e", avg);
}

double Progbar::estimate_step_duration(int64_t current, double now) {
  if (current <= 0) return 0.0;
  double per_unit;
  if (time_after_first_step_ >= 0 && current > 1) {
    per_unit = (now - time_after_first_step_) / static_cast<double>(current - 1);
  } else {
    per_unit = (now - start_) / static_cast<double>(current);
  }
  if (current == 1) time_after_first_step_ = now;
  return per_unit;
}

void Progbar::add(int64_t n, const std::vector<std::pair<std::string, double>> &values) {
  update(seen_so_far_ + n, values);
}

void Progbar::update(int64_t current, const std::vector<std::pair<std::string, double>> &values, int finalize_arg) {
  const bool finalize = finalize_arg < 0 ? (target_ >= 0 && current >= target_) : finalize_arg != 0;
  for (const auto &kv : values) {
    bool known = false;
    for (const std::string &k : values_order_) known = known || k == kv.first;
    if (!known) values_order_.push_back(kv.first);
    if (!all_stateful_ && !stateful_.count(kv.first)) {
      const double base = static_cast<double>(std::max<int64_t>(current - seen_so_far_, 1));
      auto it = values_.find(kv.first);
      if (it == values_.end()) {
        values_[kv.first] = {kv.second * base, base};
      } else {
        it->second.first += kv.second * base;
        it->second.second += base;
      }
    } else {
      values_[kv.first] = {kv.second, 1.0};
    }
  }
  seen_so_far_ = current;
  const double now = now_seconds();
  const double time_per_unit = estimate_step_duration(current, now);
  auto metrics = [&] {
    std::string s;
    for (const std::string &k : values_order_) {
      const auto &v = values_.at(k);
      s += " - " + k + ":" + format_value(v.first / std::max(1.0, v.second));
    }
    return s;
  };

  if (verbose_ == 1) {
    if (now - last_update_ < interval_ && !finalize) return;
    const int64_t prev_total_width = total_width_;
    std::string message;
    if (dynamic_display_) {
      message += std::string(static_cast<size_t>(prev_total_width), '\b');
      message += '\r';
    } else {
      message += '\n';
    }
    std::string bar;
    if (target_ >= 0) {
      bar = count_of(current, target_) + " [";
      const double prog = target_ > 0 ? static_cast<double>(current) / static_cast<double>(target_) : 1.0;
      const int64_t prog_width = std::min<int64_t>(width_, static_cast<int64_t>(static_cast<double>(width_) * prog));
      if (prog_width > 0) {
        bar += std::string(static_cast<size_t>(prog_width - 1), '=');
        bar += current < target_ ? '>' : '=';
      }
      bar += std::string(static_cast<size_t>(std::max<int64_t>(0, width_ - prog_width)), '.');
      bar += ']';
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%7lld/Unknown", static_cast<long long>(current));
      bar = buf;
    }
    std::string info;
    if (target_ < 0 || finalize) {
      info += printf_string(" - %.0fs", now - start_);
      info += format_time(time_per_unit);
    } else {
      info += " - ETA: " + progbar_eta(time_per_unit * static_cast<double>(target_ - current));
    }
    info += metrics();
    total_width_ = static_cast<int64_t>(bar.size() + info.size());
    if (prev_total_width > total_width_) info += std::string(static_cast<size_t>(prev_total_width - total_width_), ' ');
    if (finalize) info += '\n';
    // Off a terminal Keras 2 starts each redraw on a new line; the first line of a bar starts
    // where the cursor is (after "Epoch 1/5\n"), so a leading newline would leave a blank line.
    if (!dynamic_display_ && prev_total_width == 0) message.clear();
    emit(message + bar + info);
  } else if (verbose_ == 2) {
    if (finalize) {
      const int64_t t = target_ >= 0 ? target_ : current;
      std::string info = count_of(current, t) + printf_string(" - %.0fs", now - start_);
      info += " -" + format_time(time_per_unit);
      info += metrics();
      emit(info + "\n");
    }
  }
  last_update_ = now;
}

// ---- ProgbarLogger ----

namespace {

class ProgbarLogger final : public Callback {
 public:
  ProgbarLogger() : Callback("ProgbarLogger") {}

  void set_params(const CallbackParams &params) override {
    Callback::set_params(params);
    verbose_ = params.verbose < 0 ? (progress_is_terminal() ? 1 : 2) : params.verbose;
    epochs_ = params.epochs;
    target_ = params.steps;
  }
  void on_train_begin(Logs &) override {
    called_in_fit_ = true;
    reset();
  }
  void on_test_begin(Logs &) override {
    if (!called_in_fit_) reset();
  }
  void on_predict_begin(Logs &) override { reset(); }
  void on_epoch_begin(int64_t epoch, Logs &) override {
    reset();
    if (verbose_ != 0 && epochs_ > 1) emit("Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs_) + "\n");
  }
  void on_train_batch_end(int64_t batch, Logs &logs) override { batch_update(batch, &logs); }
  void on_test_batch_end(int64_t batch, Logs &logs) override {
    if (!called_in_fit_) batch_update(batch, &logs);
  }
  void on_predict_batch_end(int64_t batch, Logs &) override { batch_update(batch, nullptr); }
  void on_epoch_end(int64_t, Logs &logs) override { finalize(&logs); }
  void on_test_end(Logs &logs) override {
    if (!called_in_fit_) finalize(&logs);
  }
  void on_predict_end(Logs &) override { finalize(nullptr); }
  void on_train_end(Logs &) override { called_in_fit_ = false; }

 private:
  // Keras's _reset_progbar then _maybe_init_progbar: the bar's clock starts at the hook.
  void reset() {
    seen_ = 0;
    bar_.reset();
    if (verbose_ != 0) bar();
  }
  Progbar &bar() {
    if (!bar_) {
      // fit's logs hold running means already: every value is shown as given (stateful).
      bar_ = std::make_unique<Progbar>(target_, 30, verbose_, 0.05, std::set<std::string>{}, "step");
      bar_->set_all_stateful();
    }
    return *bar_;
  }
  std::vector<std::pair<std::string, double>> values(const Logs *logs) {
    std::vector<std::pair<std::string, double>> v;
    if (!logs) return v;
    for (const auto &kv : logs->items()) {
      if (kv.first == "batch" || kv.first == "size") continue;
      v.push_back(kv);
    }
    return v;
  }
  void batch_update(int64_t batch, const Logs *logs) {
    if (verbose_ == 0) return;
    auto v = values(logs);
    Progbar &b = bar();
    seen_ = batch + 1;
    if (verbose_ == 1) b.update(seen_, v, 0);
  }
  void finalize(const Logs *logs) {
    if (verbose_ == 0) return;
    auto v = values(logs);
    Progbar &b = bar();
    if (target_ < 0) {
      target_ = seen_;
      b.set_target(target_);
    }
    b.update(target_, v, 1);
  }

  int64_t verbose_ = 1;
  int64_t epochs_ = 1;
  int64_t target_ = -1;
  int64_t seen_ = 0;
  bool called_in_fit_ = false;
  std::unique_ptr<Progbar> bar_;
};

}  // namespace

CallbackPtr make_progbar_logger() { return std::make_shared<ProgbarLogger>(); }

}  // namespace kiln::train
