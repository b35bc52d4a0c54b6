// The built-in callbacks that watch no metric: LearningRateScheduler, CSVLogger, SwapEMAWeights,
// TerminateOnNaN, LambdaCallback; and the warning and float-printing helpers they share with the
// others.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "train/callbacks.h"
#include "train/callbacks_internal.h"
#include "train/progbar.h"

namespace kiln::train {

// ---- helpers ----

namespace {

std::mutex &warning_mutex() {
  static std::mutex mu;
  return mu;
}
std::function<void(const std::string &)> &warning_slot() {
  static std::function<void(const std::string &)> s;
  return s;
}

}  // namespace

void set_callback_warning_sink(std::function<void(const std::string &text)> sink) {
  std::lock_guard<std::mutex> lock(warning_mutex());
  warning_slot() = std::move(sink);
}

void callback_warning(const std::string &text) {
  std::function<void(const std::string &)> sink;
  {
    std::lock_guard<std::mutex> lock(warning_mutex());
    sink = warning_slot();
  }
  if (sink) {
    sink(text);
    return;
  }
  std::fprintf(stderr, "UserWarning: %s\n", text.c_str());
  std::fflush(stderr);
}

// Python's float_repr_style "short": the shortest digits that round-trip, written positionally
// when the decimal exponent is in [-4, 16), else as d.ddde+XX.
std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);  // e.g. "-1.2345e-05"
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exp10 = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  std::string digits;
  for (char c : mantissa)
    if (c >= '0' && c <= '9') digits += c;
  std::string out = negative ? "-" : "";
  if (exp10 < -4 || exp10 >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return out + e;
  }
  const int point = exp10 + 1;  // digits before the decimal point
  if (point <= 0) return out + "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  if (static_cast<size_t>(point) >= digits.size())
    return out + digits + std::string(static_cast<size_t>(point) - digits.size(), '0') + ".0";
  return out + digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
}

namespace {

// ---- LearningRateScheduler ----

class LearningRateScheduler : public Callback {
 public:
  LearningRateScheduler(LearningRateScheduleFn schedule, int64_t verbose)
      : Callback("LearningRateScheduler"), schedule_(std::move(schedule)), verbose_(verbose) {
    if (!schedule_) fail(Code::kInvalidArgument, "LearningRateScheduler: the schedule function is empty");
  }

  void on_epoch_begin(int64_t epoch, Logs &) override {
    Optimizer &opt = model_optimizer(*this);
    const double lr = schedule_(epoch, opt.learning_rate());
    if (!std::isfinite(lr))
      fail(Code::kInvalidArgument, "LearningRateScheduler: the schedule gave learning rate ", lr,
           " at epoch ", epoch, "; expected a finite float");
    opt.set_learning_rate(lr);
    if (verbose_ > 0)
      progress_print(str_cat("\nEpoch ", epoch + 1, ": LearningRateScheduler setting learning rate to ",
                             python_float_repr(lr), ".\n"));
  }

  void on_epoch_end(int64_t, Logs &logs) override {
    logs.set("learning_rate", model_optimizer(*this).learning_rate());
  }

 private:
  LearningRateScheduleFn schedule_;
  int64_t verbose_;
};

// ---- CSVLogger ----

class CSVLogger : public Callback {
 public:
  CSVLogger(std::string filename, std::string separator, bool append)
      : Callback("CSVLogger"), filename_(std::move(filename)), sep_(std::move(separator)), append_(append) {
    if (filename_.empty()) fail(Code::kInvalidArgument, "CSVLogger: filename is empty");
    if (sep_.size() != 1)
      fail(Code::kInvalidArgument, "CSVLogger: separator must be a single character; got '", sep_, "'");
  }
  ~CSVLogger() override { close(); }

  void on_train_begin(Logs &) override {
    append_header_ = true;
    if (append_) {
      if (std::FILE *f = std::fopen(filename_.c_str(), "rb")) {
        append_header_ = std::fgetc(f) == EOF;  // Keras: a header unless the first line has text
        std::fclose(f);
      }
    }
    close();
    file_ = std::fopen(filename_.c_str(), append_ ? "ab" : "wb");
    if (!file_)
      fail(errno == ENOENT ? Code::kNotFound : Code::kFailedPrecondition, "CSVLogger: cannot open '",
           filename_, "' for writing: ", std::strerror(errno));
    keys_.clear();
    wrote_header_ = false;
  }

  void on_epoch_end(int64_t epoch, Logs &logs) override {
    if (!file_) fail(Code::kFailedPrecondition, "CSVLogger: on_epoch_end before on_train_begin");
    if (!wrote_header_) {
      for (const auto &kv : logs.items()) keys_.push_back(kv.first);
      std::sort(keys_.begin(), keys_.end());
      const bool has_val = std::any_of(keys_.begin(), keys_.end(),
                                       [](const std::string &k) { return k.rfind("val_", 0) == 0; });
      if (!has_val) {  // Keras 3: room for validation columns when the first epoch had none
        const size_t n = keys_.size();
        for (size_t i = 0; i < n; ++i) keys_.push_back("val_" + keys_[i]);
      }
      if (append_header_) {
        std::string header = "epoch";
        for (const std::string &k : keys_) header += sep_ + field(k);
        write_line(header);
      }
      wrote_header_ = true;
    }
    std::string row = std::to_string(epoch);
    for (const std::string &k : keys_) {
      const std::optional<double> v = logs.get(k);
      row += sep_ + (v ? python_float_repr(*v) : std::string("NA"));
    }
    write_line(row);
  }

  void on_train_end(Logs &) override { close(); }

 private:
  // Python csv's QUOTE_MINIMAL with the excel dialect: quote a field holding the separator, a
  // quote or a line break, doubling its quotes.
  std::string field(const std::string &s) const {
    if (s.find_first_of(sep_ + "\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  void write_line(const std::string &line) {
    const std::string text = line + "\r\n";  // the excel dialect's line terminator
    if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
      fail(Code::kFailedPrecondition, "CSVLogger: cannot write to '", filename_, "': ", std::strerror(errno));
  }
  void close() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

  std::string filename_;
  std::string sep_;
  bool append_;
  bool append_header_ = true;
  bool wrote_header_ = false;
  std::vector<std::string> keys_;
  std::FILE *file_ = nullptr;
};

// ---- SwapEMAWeights ----

// Keras's SwapEMAWeights(swap_on_epoch=False): with an optimizer made with use_ema=True, the
// model's trainable weights and their moving averages trade places for evaluation and prediction
// (on_test_begin / on_predict_begin, back at the end), and with swap_on_epoch also from each
// epoch's end to the next epoch's start, so that callbacks after it (ModelCheckpoint) see the
// averages. Keras's on_predict_end never swaps back; here it does, as its begin does.
class SwapEMAWeights : public Callback {
 public:
  explicit SwapEMAWeights(bool swap_on_epoch) : Callback("SwapEMAWeights"), swap_on_epoch_(swap_on_epoch) {}

  void on_epoch_begin(int64_t, Logs &) override {
    if (swap_on_epoch_ && averages_in_model_) swap(false);
  }
  void on_epoch_end(int64_t epoch, Logs &) override {
    if (!swap_on_epoch_ || averages_in_model_) return;
    swap(true);
    // After the last epoch fit's finalize_variable_values gives each weight its average, which the
    // swap put in the model: the averages take the model's values first.
    if (epoch == params().epochs - 1) finalize();
  }
  void on_test_begin(Logs &) override {
    if (!averages_in_model_) swap(true);
  }
  void on_test_end(Logs &) override {
    if (averages_in_model_) swap(false);
  }
  void on_predict_begin(Logs &) override {
    if (!averages_in_model_) swap(true);
  }
  void on_predict_end(Logs &) override {
    if (averages_in_model_) swap(false);
  }

 private:
  // Each trainable weight with its moving average (none before the optimizer's first step).
  std::vector<std::pair<VariablePtr, VariablePtr>> pairs() const {
    Optimizer &opt = model_optimizer(*this);
    if (!opt.use_ema())
      fail(
          Code::kInvalidArgument,
          "SwapEMAWeights must be used when `use_ema=True` is set on the optimizer. Received: use_ema=False");
    std::vector<std::pair<VariablePtr, VariablePtr>> out;
    const std::vector<uint64_t> built = [&] {
      std::vector<uint64_t> ids;
      for (const Optimizer::VariableSlots &s : opt.slot_variables()) ids.push_back(s.var_id);
      return ids;
    }();
    for (const VariablePtr &v : model()->trainable_variables())
      if (std::find(built.begin(), built.end(), v->id()) != built.end())
        out.emplace_back(v, opt.slot(v->id(), "average"));
    return out;
  }
  void swap(bool averages_in) {
    for (const auto &[weight, average] : pairs()) {
      const Tensor w = weight->peek();  // shared until the next write copies
      weight->assign(average->peek());
      average->assign(w);
    }
    averages_in_model_ = averages_in;
  }
  void finalize() {
    for (const auto &[weight, average] : pairs()) average->assign(weight->peek());
  }

  bool swap_on_epoch_;
  bool averages_in_model_ = false;
};

// ---- TerminateOnNaN ----

class TerminateOnNaN : public Callback {
 public:
  explicit TerminateOnNaN(bool raise_error) : Callback("TerminateOnNaN"), raise_error_(raise_error) {}

  void on_train_batch_end(int64_t batch, Logs &logs) override {
    const std::optional<double> loss = logs.get("loss");
    if (!loss || std::isfinite(*loss)) return;
    if (raise_error_)
      fail(Code::kFailedPrecondition, "NaN or Inf loss encountered at batch ", batch,
           ". Loss value: ", python_float_repr(*loss), ". Terminating training immediately.");
    progress_print(str_cat("Batch ", batch, ": Invalid loss, terminating training\n"));
    model_state(*this).stop_training = true;
  }

 private:
  bool raise_error_;
};

// ---- LambdaCallback ----

class LambdaCallback : public Callback {
 public:
  explicit LambdaCallback(LambdaHooks hooks) : Callback("LambdaCallback"), h_(std::move(hooks)) {}
  void on_epoch_begin(int64_t epoch, Logs &logs) override {
    if (h_.on_epoch_begin) h_.on_epoch_begin(epoch, logs);
  }
  void on_epoch_end(int64_t epoch, Logs &logs) override {
    if (h_.on_epoch_end) h_.on_epoch_end(epoch, logs);
  }
  void on_train_begin(Logs &logs) override {
    if (h_.on_train_begin) h_.on_train_begin(logs);
  }
  void on_train_end(Logs &logs) override {
    if (h_.on_train_end) h_.on_train_end(logs);
  }
  void on_train_batch_begin(int64_t batch, Logs &logs) override {
    if (h_.on_train_batch_begin) h_.on_train_batch_begin(batch, logs);
  }
  void on_train_batch_end(int64_t batch, Logs &logs) override {
    if (h_.on_train_batch_end) h_.on_train_batch_end(batch, logs);
  }

 private:
  LambdaHooks h_;
};

}  // namespace

CallbackPtr make_learning_rate_scheduler(LearningRateScheduleFn schedule, int64_t verbose) {
  return std::make_shared<LearningRateScheduler>(std::move(schedule), verbose);
}

CallbackPtr make_csv_logger(const std::string &filename, const std::string &separator, bool append) {
  return std::make_shared<CSVLogger>(filename, separator, append);
}

CallbackPtr make_terminate_on_nan(bool raise_error) { return std::make_shared<TerminateOnNaN>(raise_error); }

CallbackPtr make_swap_ema_weights(bool swap_on_epoch) {
  return std::make_shared<SwapEMAWeights>(swap_on_epoch);
}

CallbackPtr make_lambda_callback(LambdaHooks hooks) {
  return std::make_shared<LambdaCallback>(std::move(hooks));
}

}  // namespace kiln::train
