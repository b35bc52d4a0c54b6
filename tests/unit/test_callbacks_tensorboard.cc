// The TensorBoard and HParams callbacks (src/train/callbacks_tensorboard.cc), read back with the
// event reader: every tag, step and value against the History and the batch logs; the learning
// rate; the model JSON; weight histograms whose counts sum to the weights' sizes and whose edges
// are the weights' extremes; weight images decoded to TF 2.13's sizes and pixels; batch-level
// summaries every N batches, custom ones through the default writer, traces; the same tags and
// image sizes as a real TF 2.13 run (../shared/fixtures, skipped when absent); the hparams
// session; bad options.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bundle_test_util.h"
#include "io/event_reader.h"
#include "io/png.h"
#include "layers/layer.h"
#include "model_test_util.h"
#include "summary/summary.h"
#include "summary/writer.h"
#include "test_util.h"
#include "train/callbacks.h"
#include "train/model_training.h"

namespace kiln::train {
namespace {

using io::events::EventFile;
using io::events::Value;
using layers::LayerPtr;
using testing::expect_error;
using testing::make;
using testing::make_typed;
using testing::TempDir;

constexpr int64_t kN = 64, kF = 4, kC = 3;

struct Problem {
  Tensor x, y;
};

Problem problem(int64_t n = kN, int64_t f = kF) {
  const testing::ClassProblem c = testing::class_problem(n, f, 17u);
  return Problem{c.x, c.y};
}

Config layer_of(const std::string &cls, Config cfg) {
  Config ser;
  ser.set("class_name", cls).set("config", cfg);
  return ser;
}

Config dense(const std::string &name, int64_t units, const char *activation) {
  Config d;
  d.set("name", name).set("units", units).set("activation", activation);
  return layer_of("Dense", d);
}

// Sequential([Dense(8, relu) "dense", Dense(3, softmax) "dense_1"]), built for (None, 4), with
// Adam(0.01), sparse categorical crossentropy and accuracy.
LayerPtr compiled_model() {
  Config c;
  c.set("layers", std::vector<Config>{dense("dense", 8, "relu"), dense("dense_1", kC, "softmax")});
  LayerPtr m = layers::create_layer("Sequential", c);
  m->build({{-1, kF}});
  CompileOptions co;
  co.optimizer = make_optimizer("Adam", Config().set("learning_rate", 0.01));
  co.loss_names = {"sparse_categorical_crossentropy"};
  co.metric_names = {"accuracy"};
  compile(m, co);
  return m;
}

// fit(x, y, batch_size=16, epochs, shuffle=False) with validation_split=0.25 (3 training
// batches, 1 validation batch) when asked.
FitOptions fit_options(const Problem &p, int64_t epochs, std::vector<CallbackPtr> callbacks,
                       bool validation) {
  FitOptions f;
  f.x = {p.x};
  f.y = {p.y};
  f.epochs = epochs;
  f.batch_size = 16;
  f.verbose = 0;
  f.shuffle = false;
  f.callbacks = std::move(callbacks);
  if (validation) f.validation_split = 0.25;
  return f;
}

// The one event file of a run directory.
EventFile read_run(const std::string &dir) {
  std::vector<std::string> files;
  for (const auto &e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find("tfevents") != std::string::npos)
      files.push_back(e.path().string());
  EXPECT_EQ(files.size(), 1u) << dir;
  if (files.empty()) return EventFile();
  EventFile f = io::events::read_event_file(files[0]);
  EXPECT_FALSE(f.truncated) << f.truncation_message;
  return f;
}

struct Point {
  int64_t step;
  const Value *value;
};

// Tag -> its values in file order, with their steps.
std::map<std::string, std::vector<Point>> by_tag(const EventFile &f) {
  std::map<std::string, std::vector<Point>> out;
  for (const auto &e : f.events)
    for (const Value &v : e.values) out[v.tag].push_back(Point{e.step, &v});
  return out;
}

std::set<std::string> tags_of(const EventFile &f) {
  std::set<std::string> out;
  for (const auto &e : f.events)
    for (const Value &v : e.values) out.insert(v.tag);
  return out;
}

// The scalar series of a tag: steps and values.
std::vector<std::pair<int64_t, double>> series(const std::map<std::string, std::vector<Point>> &tags,
                                               const std::string &tag) {
  std::vector<std::pair<int64_t, double>> out;
  auto it = tags.find(tag);
  if (it == tags.end()) return out;
  for (const Point &p : it->second) {
    EXPECT_EQ(p.value->kind, Value::Kind::kScalar) << tag;
    EXPECT_EQ(p.value->plugin_name, "scalars") << tag;
    out.emplace_back(p.step, p.value->scalar);
  }
  return out;
}

double as_float32(double v) { return static_cast<double>(static_cast<float>(v)); }

// Records what the training batches logged, at Keras's global batch numbers (from 1).
class BatchLogRecorder : public Callback {
 public:
  BatchLogRecorder() : Callback("BatchLogRecorder") {}
  void on_train_batch_end(int64_t, Logs &logs) override { batches.emplace_back(++count_, logs); }
  std::vector<std::pair<int64_t, Logs>> batches;

 private:
  int64_t count_ = 0;
};

// TF 2.13's picture of a weight: the image's [height, width] and the value drawn at (row, col).
struct WeightPicture {
  int64_t height, width;
  std::function<float(int64_t row, int64_t col)> at;
};

WeightPicture picture_of(const Tensor &w) {
  const Shape s = w.shape();
  const float *d = w.data<float>();
  if (s.rank() == 1) return {s[0], 1, [d](int64_t r, int64_t) { return d[r]; }};
  const int64_t a = s[0], b = s[1];
  if (a > b) return {b, a, [d, b](int64_t r, int64_t c) { return d[c * b + r]; }};  // transposed
  return {a, b, [d, b](int64_t r, int64_t c) { return d[r * b + c]; }};
}

// tf.image.convert_image_dtype(x, uint8, saturate=True) for float32.
uint8_t pixel_of(float x) {
  const float scaled = x * 255.5f;
  if (!(scaled > 0.0f)) return 0;
  return scaled >= 255.0f ? 255 : static_cast<uint8_t>(scaled);
}

class TensorBoardCallback : public ::testing::Test {
 protected:
  void TearDown() override {
    // Every test leaves the thread's summary defaults as it found them.
    EXPECT_EQ(summary::default_writer(), nullptr);
    EXPECT_TRUE(summary::recording());
    EXPECT_FALSE(summary::get_step().has_value());
    EXPECT_TRUE(summary::trace_rows().empty());  // no trace left running
  }
  TempDir dir_;
};

TEST_F(TensorBoardCallback, WritesWhatKerasWritesPerEpochBatchAndWeight) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  Config c;
  c.set("log_dir", dir_.path()).set("histogram_freq", 1).set("write_images", true).set("update_freq", 2);
  CallbackPtr tb = create_callback("TensorBoard", c);
  auto rec = std::make_shared<BatchLogRecorder>();
  constexpr int64_t kEpochs = 3, kSteps = 3;
  std::shared_ptr<History> h = fit(m, fit_options(p, kEpochs, {tb, rec}, true));

  const std::map<std::string, std::vector<std::string>> runs = io::events::find_runs(dir_.path());
  ASSERT_EQ(runs.size(), 2u);
  ASSERT_TRUE(runs.count("train") && runs.count("validation"));
  const Config attrs = tb->attributes();
  EXPECT_EQ(attrs.get_string("train_event_file"), runs.at("train")[0]);
  EXPECT_EQ(attrs.get_string("validation_event_file"), runs.at("validation")[0]);

  // ---- train ----
  const EventFile train = read_run(dir_ / "train");
  ASSERT_FALSE(train.events.empty());
  EXPECT_EQ(train.events[0].file_version, "brain.Event:2");
  const auto t = by_tag(train);
  std::set<std::string> expected_tags = {
      "keras", "epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss", "batch_accuracy"};
  for (const char *w : {"dense/kernel_0", "dense/bias_0", "dense_1/kernel_0", "dense_1/bias_0"}) {
    expected_tags.insert(std::string(w) + "/histogram");
    expected_tags.insert(std::string(w) + "/image");
  }
  EXPECT_EQ(tags_of(train), expected_tags);

  // The graph: the model's Keras JSON at step 0, the first summary of the file.
  ASSERT_EQ(t.at("keras").size(), 1u);
  const Point &graph = t.at("keras")[0];
  EXPECT_EQ(graph.step, 0);
  EXPECT_EQ(graph.value->plugin_name, "graph_keras_model");
  EXPECT_EQ(graph.value->plugin_content, "1");
  ASSERT_EQ(graph.value->strings.size(), 1u);
  EXPECT_EQ(graph.value->strings[0], layers::serialize_layer(*m).to_json());
  EXPECT_EQ(Config::from_json(graph.value->strings[0]).get_string("class_name"), "Sequential");
  EXPECT_EQ(train.events[1].values.at(0).tag, "keras");

  // Per epoch, at step = epoch: the training logs and the learning rate.
  for (const char *name : {"loss", "accuracy"}) {
    const auto s = series(t, std::string("epoch_") + name);
    ASSERT_EQ(s.size(), static_cast<size_t>(kEpochs)) << name;
    for (int64_t e = 0; e < kEpochs; ++e) {
      EXPECT_EQ(s[static_cast<size_t>(e)].first, e);
      EXPECT_EQ(s[static_cast<size_t>(e)].second, as_float32(h->history.at(name)[static_cast<size_t>(e)]))
          << name;
    }
  }
  const auto lr = series(t, "epoch_learning_rate");
  ASSERT_EQ(lr.size(), static_cast<size_t>(kEpochs));
  for (int64_t e = 0; e < kEpochs; ++e) {
    EXPECT_EQ(lr[static_cast<size_t>(e)].first, e);
    EXPECT_EQ(lr[static_cast<size_t>(e)].second, as_float32(0.01));
  }

  // update_freq=2: the batch logs at global batch numbers 2, 4, 6, 8 (of 9).
  for (const char *name : {"loss", "accuracy"}) {
    const auto s = series(t, std::string("batch_") + name);
    std::vector<int64_t> steps;
    for (const auto &pt : s) steps.push_back(pt.first);
    EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 6, 8})) << name;
    ASSERT_EQ(rec->batches.size(), static_cast<size_t>(kEpochs * kSteps));
    for (const auto &pt : s)
      EXPECT_EQ(pt.second, as_float32(*rec->batches[static_cast<size_t>(pt.first - 1)].second.get(name)))
          << name;
  }

  // Weights: a histogram and an image per weight and epoch, in layer order, after the epoch's
  // scalars. The last epoch's are the final weights.
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const auto &layer : m->layers())
    for (const auto &[wname, var] : layer->own_weights())
      weights.emplace_back(layer->name() + "/" + wname + "_0", var->peek());
  ASSERT_EQ(weights.size(), 4u);
  for (const auto &[name, value] : weights) {
    const auto &hist = t.at(name + "/histogram");
    ASSERT_EQ(hist.size(), static_cast<size_t>(kEpochs)) << name;
    for (int64_t e = 0; e < kEpochs; ++e) {
      const Value &v = *hist[static_cast<size_t>(e)].value;
      EXPECT_EQ(hist[static_cast<size_t>(e)].step, e);
      EXPECT_EQ(v.kind, Value::Kind::kHistogram);
      EXPECT_EQ(v.dtype, 2);  // DT_DOUBLE
      ASSERT_EQ(v.histogram.size(), 30u);
      double count = 0;
      for (const auto &row : v.histogram) count += row[2];
      EXPECT_EQ(count, static_cast<double>(value.num_elements())) << name;
    }
    const Value &last = *hist.back().value;
    const float *d = value.data<float>();
    const auto [lo, hi] = std::minmax_element(d, d + value.num_elements());
    EXPECT_NEAR(last.histogram.front()[0], *lo, 1e-6) << name;
    EXPECT_NEAR(last.histogram.back()[1], *hi, 1e-6) << name;

    const auto &images = t.at(name + "/image");
    ASSERT_EQ(images.size(), static_cast<size_t>(kEpochs)) << name;
    const WeightPicture pic = picture_of(value);
    for (int64_t e = 0; e < kEpochs; ++e) {
      const Value &v = *images[static_cast<size_t>(e)].value;
      EXPECT_EQ(images[static_cast<size_t>(e)].step, e);
      EXPECT_EQ(v.kind, Value::Kind::kImage);
      int64_t width = 0, height = 0;
      ASSERT_TRUE(io::events::image_size(v, &width, &height));
      EXPECT_EQ(width, pic.width) << name;
      EXPECT_EQ(height, pic.height) << name;
      ASSERT_EQ(v.strings.size(), 3u);
      const io::png::Image img = io::png::decode(v.strings[2]);
      EXPECT_EQ(img.width, pic.width);
      EXPECT_EQ(img.height, pic.height);
      EXPECT_EQ(img.channels, 1);
      if (e + 1 < kEpochs) continue;
      for (int64_t r = 0; r < pic.height; ++r)
        for (int64_t col = 0; col < pic.width; ++col)
          ASSERT_EQ(img.pixels[static_cast<size_t>(r * pic.width + col)], pixel_of(pic.at(r, col)))
              << name << " at " << r << ", " << col;
    }
  }
  // Kernel [4, 8] stays as it is; kernel [8, 3] lies across ([3, 8]); biases stand as columns.
  EXPECT_EQ(picture_of(weights[0].second).width, 8);
  EXPECT_EQ(picture_of(weights[2].second).width, 8);
  EXPECT_EQ(picture_of(weights[2].second).height, 3);
  EXPECT_EQ(picture_of(weights[1].second).width, 1);

  // Within an epoch: the epoch scalars, then the weights, layer by layer.
  std::vector<std::string> epoch1;
  for (const auto &e : train.events)
    for (const Value &v : e.values)
      if (e.step == 1 && v.tag.rfind("batch_", 0) != 0) epoch1.push_back(v.tag);
  EXPECT_EQ(epoch1, (std::vector<std::string>{"epoch_loss", "epoch_accuracy", "epoch_learning_rate",
                                              "dense/kernel_0/histogram", "dense/kernel_0/image",
                                              "dense/bias_0/histogram", "dense/bias_0/image",
                                              "dense_1/kernel_0/histogram", "dense_1/kernel_0/image",
                                              "dense_1/bias_0/histogram", "dense_1/bias_0/image"}));

  // ---- validation ----
  const EventFile val = read_run(dir_ / "validation");
  ASSERT_FALSE(val.events.empty());
  EXPECT_EQ(val.events[0].file_version, "brain.Event:2");
  const auto v = by_tag(val);
  EXPECT_EQ(tags_of(val),
            (std::set<std::string>{"epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations",
                                   "evaluation_accuracy_vs_iterations"}));
  for (const char *name : {"loss", "accuracy"}) {
    const std::vector<double> &hv = h->history.at(std::string("val_") + name);
    const auto epochs = series(v, std::string("epoch_") + name);
    const auto iters = series(v, std::string("evaluation_") + name + "_vs_iterations");
    ASSERT_EQ(epochs.size(), static_cast<size_t>(kEpochs));
    ASSERT_EQ(iters.size(), static_cast<size_t>(kEpochs));
    for (int64_t e = 0; e < kEpochs; ++e) {
      const auto i = static_cast<size_t>(e);
      EXPECT_EQ(epochs[i].first, e);
      EXPECT_EQ(epochs[i].second, as_float32(hv[i]));
      EXPECT_EQ(iters[i].first, kSteps * (e + 1));  // optimizer.iterations after the epoch
      EXPECT_EQ(iters[i].second, as_float32(hv[i]));
    }
  }
  // As TF 2.13 orders them: the evaluation (at test end) before the epoch's scalars.
  EXPECT_EQ(val.events[1].values.at(0).tag, "evaluation_loss_vs_iterations");
}

TEST_F(TensorBoardCallback, EpochModeWritesNoBatchesAndNoValidationRunWithoutValidation) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  TensorBoardOptions o;
  o.log_dir = dir_.path();
  o.write_steps_per_second = true;
  std::shared_ptr<History> h = fit(m, fit_options(p, 2, {make_tensorboard(o)}, false));
  EXPECT_EQ(dir_.list(), std::vector<std::string>{"train"});  // validation is made lazily
  const EventFile train = read_run(dir_ / "train");
  EXPECT_EQ(tags_of(train), (std::set<std::string>{"keras", "epoch_loss", "epoch_accuracy",
                                                   "epoch_learning_rate", "epoch_steps_per_second"}));
  const auto t = by_tag(train);
  for (const auto &[step, sps] : series(t, "epoch_steps_per_second")) {
    EXPECT_GT(sps, 0.0) << step;
    EXPECT_TRUE(std::isfinite(sps));
  }
  EXPECT_EQ(series(t, "epoch_loss").size(), 2u);

  // write_graph=false and a second fit: new event files, no graph.
  o.write_graph = false;
  o.log_dir = dir_ / "second";
  fit(m, fit_options(p, 1, {make_tensorboard(o)}, false));
  EXPECT_EQ(tags_of(read_run(dir_ / "second/train")).count("keras"), 0u);
}

TEST_F(TensorBoardCallback, ALearningRateScheduleIsLoggedAtItsCurrentValue) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  double lr = 0.5;
  training_state(*m)->optimizer->set_learning_rate(lr);
  LambdaHooks halve;
  halve.on_epoch_end = [&](int64_t, Logs &) {
    lr /= 2;
    training_state(*m)->optimizer->set_learning_rate(lr);
  };
  // The learning rate logged is the optimizer's at the epoch end, before a later callback moves it.
  fit(m, fit_options(p, 3, {make_tensorboard(TensorBoardOptions{dir_.path()}), make_lambda_callback(halve)},
                     false));
  const auto s = series(by_tag(read_run(dir_ / "train")), "epoch_learning_rate");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].second, 0.5);
  EXPECT_EQ(s[1].second, 0.25);
  EXPECT_EQ(s[2].second, 0.125);
}

// A callback after TensorBoard in the list writes with no writer and no step of its own: with
// update_freq N its summaries land in the train run (or the validation run during evaluation)
// at the global batch number, every Nth batch (Keras's custom batch-level summaries).
class CustomSummaries : public Callback {
 public:
  CustomSummaries() : Callback("CustomSummaries") {}
  void on_train_batch_begin(int64_t batch, Logs &) override {
    summary::scalar("custom", static_cast<double>(batch));
  }
  void on_test_batch_begin(int64_t batch, Logs &) override {
    summary::scalar("custom_test", static_cast<double>(batch));
  }
};

TEST_F(TensorBoardCallback, UpdateFreqMakesTheRunTheDefaultWriterDuringBatches) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  Config c;
  c.set("log_dir", dir_.path()).set("update_freq", "batch").set("write_graph", false);
  fit(m, fit_options(p, 2, {create_callback("TensorBoard", c), std::make_shared<CustomSummaries>()}, true));
  const EventFile t_file = read_run(dir_ / "train");
  const auto t = by_tag(t_file);
  std::vector<int64_t> steps;
  for (const auto &[step, value] : series(t, "custom")) {
    steps.push_back(step);
    EXPECT_EQ(value, static_cast<double>((step - 1) % 3));  // the batch within its epoch
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(series(t, "batch_loss").size(), 6u);
  const EventFile v_file = read_run(dir_ / "validation");
  const auto v = by_tag(v_file);
  steps.clear();
  for (const auto &pt : series(v, "custom_test")) steps.push_back(pt.first);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2}));  // the global test batch number

  // update_freq 2 (no validation: 4 batches an epoch): only the even batches record.
  TempDir other;
  c.set("log_dir", other.path()).set("update_freq", 2);
  fit(m, fit_options(p, 2, {create_callback("TensorBoard", c), std::make_shared<CustomSummaries>()}, false));
  steps.clear();
  for (const auto &pt : series(by_tag(read_run(other / "train")), "custom")) steps.push_back(pt.first);
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 6, 8}));
}

TEST_F(TensorBoardCallback, AFailedFitLeavesTheThreadCleanOnceTheCallbackGoes) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  TensorBoardOptions o;
  o.log_dir = dir_.path();
  o.update_freq = 1;
  o.profile_batch = 2;
  o.profile_batch_stop = 5;
  LambdaHooks crash;
  crash.on_train_batch_end = [](int64_t batch, Logs &) {
    if (batch == 2) fail(Code::kInternal, "the machine went down");
  };
  {
    CallbackPtr tb = make_tensorboard(o);
    expect_error(
        [&] {
          fit(m, fit_options(p, 2, {tb, make_lambda_callback(crash)}, false));
        },
        Code::kInternal, {"the machine went down"});
    EXPECT_NE(summary::default_writer(), nullptr);  // as Keras: the writer is still pushed
  }
  EXPECT_EQ(summary::default_writer(), nullptr);
  // What was written before the failure is in the file.
  EXPECT_EQ(series(by_tag(read_run(dir_ / "train")), "batch_loss").size(), 3u);

  // update_freq "epoch": only the trace was running.
  o.update_freq = 0;
  o.log_dir = dir_ / "epoch";
  {
    CallbackPtr tb = make_tensorboard(o);
    expect_error(
        [&] {
          fit(m, fit_options(p, 2, {tb, make_lambda_callback(crash)}, false));
        },
        Code::kInternal, {"the machine went down"});
    EXPECT_FALSE(summary::trace_rows().empty());
  }
}

TEST_F(TensorBoardCallback, ProfileBatchTracesThoseBatches) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  Config c;
  c.set("log_dir", dir_.path()).set("profile_batch", "2,3").set("write_graph", false);
  fit(m, fit_options(p, 2, {create_callback("TensorBoard", c)}, false));
  const EventFile t_file = read_run(dir_ / "train");
  const auto t = by_tag(t_file);
  ASSERT_EQ(t.count("batch_3"), 1u);
  ASSERT_EQ(t.at("batch_3").size(), 1u);
  EXPECT_EQ(t.at("batch_3")[0].step, 3);
  EXPECT_EQ(t.at("batch_3")[0].value->kind, Value::Kind::kText);
  size_t op_scalars = 0;
  for (const auto &[tag, points] : t)
    if (tag.rfind("batch_3/", 0) == 0) {
      ++op_scalars;
      EXPECT_EQ(points.at(0).step, 3);
    }
  EXPECT_GT(op_scalars, 0u);

  // A range past the end of training is exported at train end.
  TempDir other;
  c.set("log_dir", other.path()).set("profile_batch", std::vector<int64_t>{5, 100});
  fit(m, fit_options(p, 2, {create_callback("TensorBoard", c)}, false));
  const EventFile t2_file = read_run(other / "train");
  const auto t2 = by_tag(t2_file);
  ASSERT_EQ(t2.count("batch_100"), 1u);
  EXPECT_EQ(t2.at("batch_100")[0].step, 100);
}

TEST_F(TensorBoardCallback, EvaluateAloneWritesTheEvaluationAndFlushes) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  fit(m, fit_options(p, 1, {}, false));
  CallbackPtr tb = make_tensorboard(TensorBoardOptions{dir_.path()});
  EvaluateOptions eo;
  eo.x = {p.x};
  eo.y = {p.y};
  eo.batch_size = 32;
  eo.verbose = 0;
  eo.callbacks = {tb};
  const Logs logs = evaluate(m, eo);
  EXPECT_EQ(dir_.list(), std::vector<std::string>{"validation"});
  const auto s = series(by_tag(read_run(dir_ / "validation")), "evaluation_loss_vs_iterations");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].first, 4);  // one epoch of 4 batches
  EXPECT_EQ(s[0].second, as_float32(*logs.get("loss")));

  // The same callback in a fit, then in evaluate again: new event files each time (Keras's
  // set_model), none written to a closed writer.
  fit(m, fit_options(p, 1, {tb}, true));
  evaluate(m, eo);
  size_t files = 0;
  for (const auto &e : std::filesystem::directory_iterator(dir_ / "validation")) files += e.is_regular_file();
  EXPECT_EQ(files, 3u);
  EXPECT_EQ(io::events::find_runs(dir_.path()).at("train").size(), 1u);
}

// The same tags, steps and image sizes as TF 2.13's tf.keras wrote for the TensorBoard tutorial's
// MNIST model (Flatten - Dense(512, relu) - Dropout(0.2) - Dense(10, softmax), histogram_freq=1,
// write_images=True), apart from what kiln cannot or TF 2.13 did not write: the op graph
// (__run_graph__) and Keras 3's epoch_learning_rate.
TEST_F(TensorBoardCallback, SameTagsAndImageSizesAsTf213) {
  const std::string fixture = testing::source_dir() +
                              "/../shared/fixtures/events_other_writers/TheCodeheadMT-TensorBoard-Tutorial/"
                              "MNIST-extra-metrics1690486849";
  if (!std::filesystem::exists(fixture)) GTEST_SKIP() << "no fixture at " << fixture;
  const EventFile tf_train = read_run(fixture + "/train");
  const EventFile tf_val = read_run(fixture + "/validation");

  Config flatten;
  flatten.set("name", "flatten");
  Config dropout;
  dropout.set("name", "dropout").set("rate", 0.2);
  Config c;
  c.set("layers", std::vector<Config>{layer_of("Flatten", flatten), dense("dense", 512, "relu"),
                                      layer_of("Dropout", dropout), dense("dense_1", 10, "softmax")});
  LayerPtr m = layers::create_layer("Sequential", c);
  m->build({{-1, 28, 28}});
  CompileOptions co;
  co.optimizer = make_optimizer("Adam", Config());
  co.loss_names = {"sparse_categorical_crossentropy"};
  co.metric_names = {"accuracy"};
  compile(m, co);
  const int64_t n = 40;
  std::vector<float> xs(static_cast<size_t>(n * 28 * 28));
  std::vector<int64_t> ys(static_cast<size_t>(n));
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 2654435761u) % 256) / 255.0f;
  for (size_t i = 0; i < ys.size(); ++i) ys[i] = static_cast<int64_t>(i % 10);
  FitOptions f;
  f.x = {make(Shape{n, 28, 28}, xs)};
  f.y = {make_typed<int64_t>(Shape{n}, ys)};
  f.epochs = 2;
  f.batch_size = 10;
  f.verbose = 0;
  f.validation_split = 0.25;
  TensorBoardOptions o;
  o.log_dir = dir_.path();
  o.histogram_freq = 1;
  o.write_images = true;
  f.callbacks = {make_tensorboard(o)};
  fit(m, f);
  const EventFile train = read_run(dir_ / "train");
  const EventFile val = read_run(dir_ / "validation");

  std::set<std::string> tf_tags = tags_of(tf_train), ours = tags_of(train);
  EXPECT_EQ(tf_tags.erase("__run_graph__"), 1u);
  EXPECT_EQ(ours.erase("epoch_learning_rate"), 1u);
  EXPECT_EQ(ours, tf_tags);
  EXPECT_EQ(tags_of(val), tags_of(tf_val));

  // Epoch 0's summaries come in TF 2.13's order.
  const auto order_at_0 = [](const EventFile &file) {
    std::vector<std::string> out;
    for (const auto &e : file.events)
      for (const Value &v : e.values)
        if (e.step == 0 && v.tag != "__run_graph__" && v.tag != "epoch_learning_rate") out.push_back(v.tag);
    return out;
  };
  EXPECT_EQ(order_at_0(train), order_at_0(tf_train));

  const auto tf = by_tag(tf_train), t = by_tag(train);
  for (const std::string &tag : tf_tags) {
    const Value &theirs = *tf.at(tag)[0].value, &mine = *t.at(tag)[0].value;
    EXPECT_EQ(mine.plugin_name, theirs.plugin_name) << tag;
    EXPECT_EQ(mine.dtype, theirs.dtype) << tag;
    EXPECT_EQ(mine.shape, theirs.shape) << tag;
    if (theirs.kind == Value::Kind::kImage) {
      int64_t tw = 0, th = 0, mw = 0, mh = 0;
      ASSERT_TRUE(io::events::image_size(theirs, &tw, &th));
      ASSERT_TRUE(io::events::image_size(mine, &mw, &mh));
      EXPECT_EQ(mw, tw) << tag;
      EXPECT_EQ(mh, th) << tag;
      const io::png::Image img = io::png::decode(mine.strings.at(2));
      EXPECT_EQ(img.width, tw);
      EXPECT_EQ(img.height, th);
    } else if (theirs.kind == Value::Kind::kHistogram) {
      double a = 0, b = 0;
      for (const auto &row : theirs.histogram) a += row[2];
      for (const auto &row : mine.histogram) b += row[2];
      EXPECT_EQ(b, a) << tag;  // the weight's size
    }
    if (tag.rfind("epoch_", 0) == 0 || tag.find('/') != std::string::npos) {
      EXPECT_EQ(t.at(tag)[0].step, 0) << tag;
      EXPECT_EQ(t.at(tag).at(1).step, 1) << tag;
    }
  }
  // evaluation_*_vs_iterations at optimizer.iterations: TF's 1500 steps per epoch, our 3.
  const auto tf_v = by_tag(tf_val), v = by_tag(val);
  for (const char *tag : {"evaluation_loss_vs_iterations", "evaluation_accuracy_vs_iterations"}) {
    EXPECT_EQ(tf_v.at(tag)[0].step, 1500);
    EXPECT_EQ(tf_v.at(tag)[1].step, 3000);
    EXPECT_EQ(v.at(tag)[0].step, 3);
    EXPECT_EQ(v.at(tag)[1].step, 6);
  }
}

// ---- HParams ----

const Value *find_value(const EventFile &f, const std::string &tag, int64_t *step = nullptr) {
  for (const auto &e : f.events)
    for (const Value &v : e.values)
      if (v.tag == tag) {
        if (step) *step = e.step;
        return &v;
      }
  return nullptr;
}

// The HParamsPluginData of a value, as JSON (proto field names).
Config hparams_data(const EventFile &f, const std::string &tag) {
  const Config all = io::events::to_config(f);
  for (const Config &e : all.get_config_list("events")) {
    if (!e.has("values")) continue;
    for (const Config &v : e.get_config_list("values"))
      if (v.get_string("tag") == tag) return v.get_config("hparams");
  }
  ADD_FAILURE() << "no " << tag;
  return Config();
}

TEST_F(TensorBoardCallback, HParamsWritesTheSessionStartAndEnd) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  Config hp;
  hp.set("learning_rate", 0.01).set("optimizer", "adam").set("units", 8).set("wide", false);
  Config c;
  c.set("log_dir", dir_.path()).set("hparams", hp).set("trial_id", "trial-1");
  CallbackPtr cb = create_callback("HParams", c);
  TensorBoardOptions o;
  o.log_dir = dir_.path();
  fit(m, fit_options(p, 2, {make_tensorboard(o), cb}, true));
  const auto runs = io::events::find_runs(dir_.path());
  EXPECT_EQ(runs.size(), 3u);  // ".", train, validation
  ASSERT_EQ(runs.count("."), 1u);
  const EventFile f = read_run(dir_.path());
  int64_t step = -1;
  const Value *start = find_value(f, "_hparams_/session_start_info", &step);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(step, 0);
  EXPECT_EQ(start->plugin_name, "hparams");
  const Config s = hparams_data(f, "_hparams_/session_start_info").get_config("session_start_info");
  EXPECT_EQ(s.get_string("group_name"), "trial-1");
  const Config values = s.get_config("hparams");
  EXPECT_EQ(values.get_float("learning_rate"), 0.01);
  EXPECT_EQ(values.get_string("optimizer"), "adam");
  EXPECT_EQ(values.get_float("units"), 8.0);
  EXPECT_FALSE(values.get_bool("wide"));
  const Config end = hparams_data(f, "_hparams_/session_end_info").get_config("session_end_info");
  EXPECT_EQ(end.get_string("status"), "STATUS_SUCCESS");
  EXPECT_EQ(cb->attributes().get_string("event_file"), runs.at(".")[0]);
}

TEST_F(TensorBoardCallback, HParamsEndsAFailedFitAsAFailure) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  Config hp;
  hp.set("dropout", 0.5);
  LambdaHooks crash;
  crash.on_epoch_end = [](int64_t, Logs &) { fail(Code::kInternal, "the machine went down"); };
  {
    CallbackPtr cb = make_hparams_callback(dir_.path(), hp);
    expect_error(
        [&] {
          fit(m, fit_options(p, 2, {cb, make_lambda_callback(crash)}, false));
        },
        Code::kInternal, {"the machine went down"});
  }
  const EventFile f = read_run(dir_.path());
  EXPECT_EQ(hparams_data(f, "_hparams_/session_end_info").get_config("session_end_info").get_string("status"),
            "STATUS_FAILURE");
  // No trial_id: a digest of the values names the group.
  EXPECT_FALSE(hparams_data(f, "_hparams_/session_start_info")
                   .get_config("session_start_info")
                   .get_string("group_name")
                   .empty());
}

// ---- bad options ----

TEST(TensorBoardOptionsTest, BadOptionsAreInvalidArgumentNamingTheCallback) {
  const auto bad = [](const char *cls, const char *json, std::vector<std::string> fragments) {
    expect_error([&] { create_callback(cls, Config::from_json(json)); }, Code::kInvalidArgument, fragments);
  };
  bad("TensorBoard", R"({"embeddings_freq": 1})", {"TensorBoard", "embeddings_freq=1", "not supported"});
  bad("TensorBoard", R"({"update_freq": "sometimes"})", {"TensorBoard", "update_freq 'sometimes'"});
  bad("TensorBoard", R"({"update_freq": 0})", {"TensorBoard", "update_freq is 0"});
  bad("TensorBoard", R"({"update_freq": true})", {"TensorBoard", "update_freq"});
  bad("TensorBoard", R"({"histogram_freq": -1})", {"TensorBoard", "histogram_freq is -1"});
  bad("TensorBoard", R"({"profile_batch": -1})", {"TensorBoard", "profile_batch", "Found: -1"});
  bad("TensorBoard", R"({"profile_batch": "5,2"})", {"TensorBoard", "profile_batch", "(5, 2)"});
  bad("TensorBoard", R"({"profile_batch": "two"})", {"TensorBoard", "profile_batch", "'two'"});
  bad("TensorBoard", R"({"profile_batch": [1, 2, 3]})", {"TensorBoard", "profile_batch", "[1,2,3]"});
  bad("TensorBoard", R"({"profile_batch": [0, 3]})", {"TensorBoard", "profile_batch"});
  bad("TensorBoard", R"({"log_dir": ""})", {"TensorBoard", "log_dir is empty"});
  bad("TensorBoard", R"({"histogram_frequency": 1})", {"TensorBoard", "histogram_frequency"});
  bad("HParams", R"({"hparams": {"a": 1}})", {"HParams", "'log_dir' is required"});
  bad("HParams", R"({"log_dir": "x"})", {"HParams", "'hparams' is required"});
  bad("HParams", R"({"log_dir": "x", "hparams": {"a": [1, 2]}})", {"HParams", "hparam 'a'"});
  bad("HParams", R"({"log_dir": "x", "hparams": {}, "trial": "t"})", {"HParams", "trial"});

  // Keras's names and forms, and tf.keras 2's ignored TF1 arguments.
  const CallbackPtr tb = create_callback(
      "TensorBoard", Config::from_json(R"({"log_dir": "x", "histogram_freq": 2, "write_graph": false,
        "write_images": true, "write_steps_per_second": true, "update_freq": "epoch", "profile_batch": "3",
        "embeddings_freq": 0, "embeddings_metadata": null, "write_grads": false, "batch_size": 32})"));
  EXPECT_EQ(tb->class_name(), "TensorBoard");
  EXPECT_EQ(tb->attributes().get_string("train_dir"), "x/train");
  EXPECT_EQ(create_callback("TensorBoard", Config::from_json(R"({"profile_batch": [2, 4]})"))->class_name(),
            "TensorBoard");
  EXPECT_EQ(create_callback("TensorBoard")->attributes().get_string("log_dir"), "logs");
  EXPECT_EQ(create_callback("HParams", Config::from_json(R"({"writer": "x", "hparams": {"a": "b"}})"))
                ->class_name(),
            "HParams");
}

TEST(TensorBoardOptionsTest, AnUnwritableLogDirFailsFitNamingTheCallback) {
  TempDir dir;
  {
    std::FILE *f = std::fopen((dir / "file").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  const Problem p = problem();
  LayerPtr m = compiled_model();
  TensorBoardOptions o;
  o.log_dir = dir / "file";  // a file, not a directory
  expect_error([&] { fit(m, fit_options(p, 1, {make_tensorboard(o)}, false)); }, Code::kFailedPrecondition,
               {"TensorBoard: "});
}

}  // namespace
}  // namespace kiln::train
