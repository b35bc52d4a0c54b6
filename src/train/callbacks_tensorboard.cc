// TensorBoard and HParams (callbacks.h): Keras's TensorBoard callback and TensorBoard's hparams
// Keras callback (hp.KerasCallback) over summary/, and their registration by class name.
//
// Every summary this file writes goes to an explicit writer with recording forced on (Keras's
// `with writer.as_default(), record_if(True)`), so a user's own default writer, step or
// record_if on the fit thread neither catches nor suppresses them. The callbacks' state is only
// touched from the hooks (one thread at a time, as fit calls them) except what attributes()
// reads, which a mutex guards.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "summary/summary.h"
#include "summary/writer.h"
#include "train/callbacks.h"
#include "train/training_state.h"

namespace kiln::train {

namespace {

using summary::WriterPtr;

// Runs f; a kiln error from below comes out naming the callback ("TensorBoard: ...").
template <typename F>
void named(const char *owner, F &&f) {
  try {
    f();
  } catch (const Error &e) {
    const std::string prefix = std::string(owner) + ": ";
    if (std::string(e.what()).rfind(prefix, 0) == 0) throw;
    fail(e.code(), prefix, e.what());
  }
}

// The callback's own summaries go to `writer` with recording on, whatever the thread's defaults.
class WriteTo {
 public:
  explicit WriteTo(WriterPtr writer) : scope_(std::move(writer)), was_recording_(summary::recording()) {
    summary::set_recording(true);
  }
  ~WriteTo() { summary::set_recording(was_recording_); }
  WriteTo(const WriteTo &) = delete;
  WriteTo &operator=(const WriteTo &) = delete;

 private:
  summary::DefaultScope scope_;
  bool was_recording_;
};

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// TF 2.13's _log_weight_as_image: the weight squeezed; a vector as a column [1, n, 1, 1]; a
// matrix lying with its longer side across, [1, min, max, 1]; a rank-3 weight (a 1-channel conv
// kernel) as one image per last-axis slice, [c, a, b, 1]. Anything that then is not [k, h, w, c]
// with c 1, 3 or 4 is not drawn. The image summary maps the values to pixels as tf.summary.image
// does (x * 255.5 clamped to [0, 255]: a weight below 0 is black, one above 1 white).
std::optional<Tensor> weight_image(const Tensor &weight) {
  if (weight.num_elements() == 0) return std::nullopt;  // PNG holds no empty image
  Tensor img = ops::squeeze(weight);
  const Shape s = img.shape();
  if (s.rank() == 1) {
    img = ops::reshape(img, {1, s[0], 1, 1});
  } else if (s.rank() == 2) {
    if (s[0] > s[1]) img = ops::transpose(img);
    img = ops::reshape(img, {1, img.shape()[0], img.shape()[1], 1});
  } else if (s.rank() == 3) {
    img = ops::transpose(img, {2, 0, 1});
    img = ops::reshape(img, {img.shape()[0], img.shape()[1], img.shape()[2], 1});
  }
  const Shape &r = img.shape();
  if (r.rank() != 4 || (r[3] != 1 && r[3] != 3 && r[3] != 4)) return std::nullopt;
  return img;
}

// ---- TensorBoard ----

class TensorBoard : public Callback {
 public:
  explicit TensorBoard(const TensorBoardOptions &o) : Callback("TensorBoard"), o_(o) {
    if (o.log_dir.empty())
      fail(Code::kInvalidArgument, "TensorBoard: log_dir is empty; expected a directory such as 'logs'");
    if (o.histogram_freq < 0)
      fail(Code::kInvalidArgument, "TensorBoard: histogram_freq is ", o.histogram_freq,
           "; expected 0 (no histograms) or a positive number of epochs");
    if (o.update_freq < 0)
      fail(Code::kInvalidArgument, "TensorBoard: update_freq is ", o.update_freq,
           "; expected 'epoch', 'batch' or a positive number of batches");
    if (o.profile_batch < 0 || o.profile_batch_stop < 0 ||
        (o.profile_batch_stop != 0 && (o.profile_batch == 0 || o.profile_batch_stop < o.profile_batch)))
      fail(
          Code::kInvalidArgument,
          "TensorBoard: profile_batch must be a non-negative integer or 2-tuple of positive integers. A pair "
          "of positive integers signifies a range of batches to profile. Found: ",
          o.profile_batch_stop ? str_cat("(", o.profile_batch, ", ", o.profile_batch_stop, ")")
                               : str_cat(o.profile_batch));
    if (o.embeddings_freq != 0)
      fail(Code::kInvalidArgument, "TensorBoard: embeddings_freq=", o.embeddings_freq,
           " is not supported (kiln has no embedding projector); expected 0");
    train_dir_ = (std::filesystem::path(o.log_dir) / "train").string();
    val_dir_ = (std::filesystem::path(o.log_dir) / "validation").string();
    start_batch_ = o.profile_batch;
    stop_batch_ = o.profile_batch_stop ? o.profile_batch_stop : o.profile_batch;
    batch_hooks_ = o.update_freq > 0 || start_batch_ > 0;
  }

  ~TensorBoard() override {
    // A fit that failed never reached on_train_end: undo what this thread still holds for it.
    try {
      release_thread_state();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
    }
  }

  // Keras's set_model: each fit (or evaluate) writes new event files.
  void set_model(const layers::LayerPtr &m) override {
    Callback::set_model(m);
    named("TensorBoard", [&] {
      release_thread_state();
      reset_writers();
    });
  }

  void on_train_begin(Logs &) override {
    named("TensorBoard", [&] {
      release_thread_state();
      reset_writers();  // (a CallbackList has just done so through set_model)
      in_fit_ = true;
      global_train_batch_ = 0;
      previous_epoch_iterations_ = 0;
      if (o_.write_graph && model()) write_graph();
      if (o_.update_freq > 0) push_writer(train_writer(), global_train_batch_);
    });
  }

  void on_train_end(Logs &) override {
    named("TensorBoard", [&] {
      pop_writer();
      if (tracing_) stop_trace();
      in_fit_ = false;
      close_writers();
    });
  }

  void on_test_begin(Logs &) override {
    if (o_.update_freq > 0) named("TensorBoard", [&] { push_writer(val_writer(), global_test_batch_); });
  }

  void on_test_end(Logs &logs) override {
    named("TensorBoard", [&] {
      const OptimizerPtr opt = optimizer();
      if (opt && !logs.empty()) {
        const int64_t step = opt->iterations();
        const WriterPtr w = val_writer();
        WriteTo to(w);
        for (const auto &kv : logs.items())
          summary::scalar("evaluation_" + kv.first + "_vs_iterations", kv.second, step);
        if (!in_fit_) w->flush();  // evaluate alone has no epoch end to flush at
      }
      if (o_.update_freq > 0) pop_writer();
    });
  }

  void on_test_batch_begin(int64_t, Logs &) override {
    ++global_test_batch_;
    if (o_.update_freq > 0)
      named("TensorBoard", [&] {
        pop_writer();
        push_writer(val_writer(), global_test_batch_);
      });
  }

  // With update_freq "epoch" and no profile_batch, the batch hooks only count.
  void on_train_batch_begin(int64_t, Logs &) override {
    ++global_train_batch_;
    if (!batch_hooks_) return;
    named("TensorBoard", [&] {
      if (o_.update_freq > 0) {
        pop_writer();
        push_writer(train_writer(), global_train_batch_);
        if (o_.write_steps_per_second) batch_start_ = seconds_now();
      }
      if (start_batch_ > 0 && global_train_batch_ == start_batch_) {
        summary::trace_on();
        tracing_ = true;
        state_thread_ = std::this_thread::get_id();
      }
    });
  }

  void on_train_batch_end(int64_t, Logs &logs) override {
    if (!batch_hooks_) return;
    named("TensorBoard", [&] {
      if (o_.update_freq > 0 && global_train_batch_ % o_.update_freq == 0) {
        WriteTo to(train_writer());
        if (o_.write_steps_per_second) {
          const double took = seconds_now() - batch_start_;
          summary::scalar("batch_steps_per_second", took > 0 ? 1.0 / took : 0.0, global_train_batch_);
        }
        for (const auto &kv : logs.items())
          summary::scalar("batch_" + kv.first, kv.second, global_train_batch_);
      }
      if (tracing_ && global_train_batch_ >= stop_batch_) stop_trace();
    });
  }

  void on_epoch_begin(int64_t, Logs &) override {
    if (!o_.write_steps_per_second) return;
    const OptimizerPtr opt = optimizer();
    previous_epoch_iterations_ = opt ? opt->iterations() : 0;
    epoch_start_ = seconds_now();
  }

  void on_epoch_end(int64_t epoch, Logs &logs) override {
    named("TensorBoard", [&] {
      log_epoch_metrics(epoch, logs);
      if (o_.histogram_freq > 0 && epoch % o_.histogram_freq == 0) log_weights(epoch);
      WriterPtr t, v;
      {
        std::lock_guard<std::mutex> lock(mu_);
        t = train_;
        v = val_;
      }
      if (t) t->flush();  // outside the lock: a flush waits for the disk
      if (v) v->flush();
    });
  }

  Config attributes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    Config c;
    c.set("log_dir", o_.log_dir);
    c.set("train_dir", train_dir_);
    c.set("validation_dir", val_dir_);
    c.set("train_event_file", train_path_);
    c.set("validation_event_file", val_path_);
    return c;
  }

 private:
  OptimizerPtr optimizer() const {
    if (!model()) return nullptr;
    return training_state(*model())->optimizer;
  }

  // ---- writers (made when first needed, as Keras's lazy _train_writer / _val_writer) ----
  WriterPtr train_writer() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!train_) {
      train_ = summary::SummaryWriter::create(train_dir_);
      train_path_ = train_->path();
    }
    return train_;
  }
  WriterPtr val_writer() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!val_) {
      val_ = summary::SummaryWriter::create(val_dir_);
      val_path_ = val_->path();
    }
    return val_;
  }
  void reset_writers() {
    WriterPtr t, v;
    {
      std::lock_guard<std::mutex> lock(mu_);
      t = std::move(train_);
      v = std::move(val_);
      train_.reset();
      val_.reset();
    }
    // Outside the lock: closing waits for the writer thread. A writer still held elsewhere (a
    // default-writer stack) closes when that lets go.
    if (t) t->close();
    if (v) v->close();
  }
  void close_writers() {
    WriterPtr t, v;
    {
      std::lock_guard<std::mutex> lock(mu_);
      t = train_;
      v = val_;
    }
    if (t) t->close();
    if (v) v->close();
  }

  // Keras's _push_writer / _pop_writer (update_freq N only): the writer becomes the thread's
  // default with `step` as the default step, recording only when step is a multiple of N.
  void push_writer(const WriterPtr &w, int64_t step) {
    summary::push_default(w, step);
    saved_recording_.push_back(summary::recording());
    state_thread_ = std::this_thread::get_id();
    summary::set_recording(step % o_.update_freq == 0);
  }
  void pop_writer() {
    if (saved_recording_.empty()) return;
    summary::set_recording(saved_recording_.back());
    saved_recording_.pop_back();
    summary::pop_default();
  }
  // What a fit that failed left on this thread: its pushed writers and a running trace.
  void release_thread_state() {
    if (saved_recording_.empty() && !tracing_) return;
    if (std::this_thread::get_id() != state_thread_) {
      saved_recording_.clear();  // another thread's stack: not ours to change
      tracing_ = false;
      return;
    }
    while (!saved_recording_.empty()) pop_writer();
    if (tracing_) summary::trace_off();
    tracing_ = false;
  }

  // ---- what is written ----
  void write_graph() {
    std::string json;
    try {
      json = layers::serialize_layer(*model()).to_json();
    } catch (const Error &e) {
      // Keras: "an exception should not break a model code".
      callback_warning(str_cat("Model failed to serialize as JSON. Ignoring... ", e.what()));
      return;
    }
    WriteTo to(train_writer());
    summary::keras_model("keras", json, 0);
  }

  void stop_trace() {
    tracing_ = false;
    WriteTo to(train_writer());
    summary::trace_export(str_cat("batch_", stop_batch_), stop_batch_);
  }

  // Keras's _log_epoch_metrics: val_<name> to the validation run as epoch_<name>, the rest (and
  // the learning rate, and steps per second) to the train run as epoch_<name>.
  void log_epoch_metrics(int64_t epoch, const Logs &logs) {
    if (logs.empty()) return;
    Logs train_logs, val_logs;
    for (const auto &kv : logs.items()) {
      if (kv.first.rfind("val_", 0) == 0)
        val_logs.set(kv.first.substr(4), kv.second);
      else
        train_logs.set(kv.first, kv.second);
    }
    const OptimizerPtr opt = optimizer();
    if (opt) train_logs.set("learning_rate", opt->learning_rate());
    if (o_.write_steps_per_second) {
      const double took = seconds_now() - epoch_start_;
      const double steps = static_cast<double>((opt ? opt->iterations() : 0) - previous_epoch_iterations_);
      train_logs.set("steps_per_second", took > 0 ? steps / took : 0.0);
    }
    if (!train_logs.empty()) {
      WriteTo to(train_writer());
      for (const auto &kv : train_logs.items()) summary::scalar("epoch_" + kv.first, kv.second, epoch);
    }
    if (!val_logs.empty()) {
      WriteTo to(val_writer());
      for (const auto &kv : val_logs.items()) summary::scalar("epoch_" + kv.first, kv.second, epoch);
    }
  }

  // Keras's _log_weights: for each layer of the model (the model itself when it has none), each
  // weight's histogram, and with write_images its image, tagged with TF 2.13's variable name
  // (kiln's weight path below the model, ":" as "_", plus "_0": "dense/kernel_0/histogram").
  void log_weights(int64_t epoch) {
    const layers::LayerPtr &m = model();
    if (!m) return;
    std::vector<layers::LayerPtr> owners = m->layers();
    std::string scope = m->path() + "/";
    if (owners.empty()) {
      owners.push_back(m);
      scope = m->path().substr(0, m->path().size() - m->name().size());
    }
    WriteTo to(train_writer());
    for (const layers::LayerPtr &layer : owners) {
      for (const layers::VariablePtr &v : layer->variables()) {
        if (v->dtype() == DType::kBool) continue;  // no histogram of booleans (as TF)
        std::string name = v->name();
        if (!scope.empty() && name.rfind(scope, 0) == 0) name = name.substr(scope.size());
        for (char &ch : name)
          if (ch == ':') ch = '_';
        name += "_0";
        const Tensor value = v->peek();
        summary::histogram(name + "/histogram", value, epoch);
        if (o_.write_images && is_floating(v->dtype())) {
          const std::optional<Tensor> img = weight_image(value);
          if (img) summary::image(name + "/image", *img, epoch);
        }
      }
    }
  }

  const TensorBoardOptions o_;
  std::string train_dir_, val_dir_;
  int64_t start_batch_ = 0, stop_batch_ = 0;
  bool batch_hooks_ = false;

  // Hook state (the fit thread's).
  bool in_fit_ = false;
  bool tracing_ = false;
  int64_t global_train_batch_ = 0, global_test_batch_ = 0;
  int64_t previous_epoch_iterations_ = 0;
  double epoch_start_ = 0.0, batch_start_ = 0.0;
  std::vector<bool> saved_recording_;  // one per writer pushed as the thread's default
  std::thread::id state_thread_;       // the thread those writers and the trace are on

  mutable std::mutex mu_;  // guards the writers and their paths (attributes() may run elsewhere)
  WriterPtr train_, val_;
  std::string train_path_, val_path_;
};

// ---- HParams ----

class HParams : public Callback {
 public:
  HParams(std::string log_dir, Config hparams, std::string trial_id)
      : Callback("HParams"),
        log_dir_(std::move(log_dir)),
        hparams_(std::move(hparams)),
        trial_id_(std::move(trial_id)) {
    if (log_dir_.empty())
      fail(Code::kInvalidArgument, "HParams: log_dir is empty; expected the run's directory");
    // TensorBoard's dry run: bad values fail here, not at train begin. No writer: nothing written.
    named("HParams", [&] {
      summary::DefaultScope none(nullptr);
      summary::hparams(hparams_, trial_id_, 0.0);
    });
  }

  ~HParams() override {
    // A fit that failed (an error, an interrupt) never reached on_train_end: its session failed.
    try {
      end_session("failure");
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
    }
  }

  void on_train_begin(Logs &) override {
    named("HParams", [&] {
      end_session("failure");  // the previous fit with this callback failed
      WriterPtr w = summary::SummaryWriter::create(log_dir_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        writer_ = w;
        path_ = w->path();
      }
      {
        WriteTo to(w);
        summary::hparams(hparams_, trial_id_);
      }
      w->flush();  // TensorBoard lists the session while it trains
    });
  }

  // "success", or "failure" when training ended on a loss that is not finite (TerminateOnNaN).
  void on_train_end(Logs &logs) override {
    const std::optional<double> loss = logs.get("loss");
    named("HParams", [&] { end_session(loss && !std::isfinite(*loss) ? "failure" : "success"); });
  }

  Config attributes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    Config c;
    c.set("log_dir", log_dir_);
    c.set("hparams", hparams_);
    c.set("trial_id", trial_id_);
    c.set("event_file", path_);
    return c;
  }

 private:
  // Writes the session end (when a session is open) and closes its event file.
  void end_session(const char *status) {
    WriterPtr w;
    {
      std::lock_guard<std::mutex> lock(mu_);
      w = std::move(writer_);
      writer_.reset();
    }
    if (!w) return;
    {
      WriteTo to(w);
      summary::hparams_end(status);
    }
    w->close();
  }

  const std::string log_dir_;
  const Config hparams_;
  const std::string trial_id_;
  mutable std::mutex mu_;
  WriterPtr writer_;
  std::string path_;
};

// Keras's update_freq: "epoch" (0), "batch" (1) or a positive number of batches.
int64_t read_update_freq(ConfigReader &r) {
  r.accept({"update_freq"});
  const Config &c = r.config();
  if (!c.has("update_freq") || c.is_null("update_freq")) return 0;
  const char *expected = "'epoch', 'batch' or a positive number of batches";
  switch (c.type("update_freq")) {
    case Config::Type::kString: {
      const std::string s = c.get_string("update_freq");
      if (s == "epoch") return 0;
      if (s == "batch") return 1;
      fail(Code::kInvalidArgument, "TensorBoard: unrecognized update_freq '", s, "'; expected ", expected);
    }
    case Config::Type::kInt:
    case Config::Type::kFloat: {
      const int64_t v = c.get_int("update_freq");
      if (v <= 0) fail(Code::kInvalidArgument, "TensorBoard: update_freq is ", v, "; expected ", expected);
      return v;
    }
    default:
      fail(Code::kInvalidArgument, "TensorBoard: update_freq is a ", config_type_name(c.type("update_freq")),
           "; expected ", expected);
  }
}

// Keras's profile_batch: a non-negative int, "start,stop" / "start", or [start, stop].
void read_profile_batch(ConfigReader &r, TensorBoardOptions &o) {
  r.accept({"profile_batch"});
  const Config &c = r.config();
  if (!c.has("profile_batch") || c.is_null("profile_batch")) return;
  const auto bad = [&](const std::string &found) {
    fail(Code::kInvalidArgument,
         "TensorBoard: profile_batch must be a non-negative integer or 2-tuple of positive integers. A pair "
         "of "
         "positive integers signifies a range of batches to profile. Found: ",
         found);
  };
  switch (c.type("profile_batch")) {
    case Config::Type::kInt:
    case Config::Type::kFloat:
      o.profile_batch = c.get_int("profile_batch");
      return;
    case Config::Type::kList: {
      const std::vector<int64_t> v = c.get_int_list("profile_batch");
      if (v.size() != 2) bad(c.json().at("profile_batch").dump());
      o.profile_batch = v[0];
      o.profile_batch_stop = v[1];
      return;
    }
    case Config::Type::kString: {
      const std::string s = c.get_string("profile_batch");
      std::vector<int64_t> parts;
      size_t pos = 0;
      while (pos <= s.size()) {
        const size_t comma = s.find(',', pos);
        const std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        size_t used = 0;
        int64_t v = 0;
        try {
          v = std::stoll(part, &used);
        } catch (const std::exception &) {
          bad("'" + s + "'");
        }
        while (used < part.size() && part[used] == ' ') ++used;
        if (used != part.size()) bad("'" + s + "'");
        parts.push_back(v);
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
      if (parts.size() > 2) bad("'" + s + "'");
      o.profile_batch = parts[0];
      if (parts.size() == 2) o.profile_batch_stop = parts[1];
      return;
    }
    default:
      bad(c.json().at("profile_batch").dump());
  }
}

CallbackPtr tensorboard_from(const Config &c) {
  ConfigReader r(c, "TensorBoard");
  TensorBoardOptions o;
  o.log_dir = r.get_string("log_dir", o.log_dir);
  o.histogram_freq = r.get_int("histogram_freq", o.histogram_freq);
  o.write_graph = r.get_bool("write_graph", o.write_graph);
  o.write_images = r.get_bool("write_images", o.write_images);
  o.write_steps_per_second = r.get_bool("write_steps_per_second", o.write_steps_per_second);
  o.update_freq = read_update_freq(r);
  read_profile_batch(r, o);
  o.embeddings_freq = r.get_int("embeddings_freq", o.embeddings_freq);
  // embeddings_metadata only serves the projector (embeddings_freq > 0, refused); the rest are
  // TF1's arguments, which tf.keras 2 still accepts (with a warning) and ignores.
  r.accept({"embeddings_metadata", "write_grads", "batch_size", "embeddings_layer_names", "embeddings_data"});
  r.finish();
  return make_tensorboard(o);
}

CallbackPtr hparams_from(const Config &c) {
  ConfigReader r(c, "HParams");
  std::optional<std::string> dir = r.get_optional_string("log_dir");
  if (!dir) dir = r.get_optional_string("writer");  // TensorBoard's argument name (a logdir)
  const std::optional<Config> values = r.get_optional_config("hparams");
  const std::string trial_id = r.get_string("trial_id", "");
  r.finish();
  if (!dir)
    fail(Code::kInvalidArgument,
         "HParams: 'log_dir' is required (the run's directory, as TensorBoard's writer)");
  if (!values)
    fail(Code::kInvalidArgument, "HParams: 'hparams' is required (a dict of hyperparameter names to values)");
  return make_hparams_callback(*dir, *values, trial_id);
}

}  // namespace

CallbackPtr make_tensorboard(const TensorBoardOptions &options) {
  return std::make_shared<TensorBoard>(options);
}

CallbackPtr make_hparams_callback(const std::string &log_dir, const Config &hparams,
                                  const std::string &trial_id) {
  return std::make_shared<HParams>(log_dir, hparams, trial_id);
}

void register_tensorboard_callbacks() {
  register_callback("TensorBoard", tensorboard_from);
  register_callback("HParams", hparams_from);
}

}  // namespace kiln::train
