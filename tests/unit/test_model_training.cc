// Keras's training loop (src/train/model_training.h): fit lowers the loss and fills History,
// validation_split takes the last fraction, validation_freq, class_weight / sample_weight as
// Keras weighs them, stop_training, steps_per_epoch, predict batching, evaluate, datasets,
// determinism, custom steps, and every bad input as a clear error that changes nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/rng.h"
#include "data/dataset.h"
#include "layers/layer.h"
#include "layers/sequential.h"
#include "ops/ops.h"
#include "test_util.h"
#include "train/model_training.h"
#include "train/progbar.h"

namespace kiln::train {
namespace {

using testing::expect_error;
using testing::make;
using testing::make_typed;

constexpr int64_t kN = 64, kF = 4, kC = 3;

// x: kN x kF in [-1, 1); y: the class whose column sum of x is largest, so a Dense layer can learn it.
struct Problem {
  Tensor x, y;
  std::vector<float> xs;
  std::vector<int64_t> ys;
};

Problem problem(unsigned seed = 3) {
  Problem p;
  uint32_t s = seed;
  for (int64_t i = 0; i < kN * kF; ++i) {
    s = s * 1664525u + 1013904223u;
    p.xs.push_back(static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
  for (int64_t i = 0; i < kN; ++i) {
    const float *r = &p.xs[static_cast<size_t>(i * kF)];
    const float score[3] = {r[0] - r[1], r[1] + r[2] - r[0], r[3] - r[2]};
    p.ys.push_back(std::max_element(score, score + 3) - score);
  }
  p.x = make(Shape{kN, kF}, p.xs);
  p.y = make_typed<int64_t>(Shape{kN}, p.ys);
  return p;
}

LayerPtr dense_model(const std::string &activation = "softmax", const std::string &kernel_regularizer = "") {
  Config dense;
  dense.set("units", kC);
  dense.set("activation", activation);
  dense.set("kernel_initializer", std::string("glorot_uniform"));
  if (!kernel_regularizer.empty()) dense.set("kernel_regularizer", kernel_regularizer);
  Config ser;
  ser.set("class_name", std::string("Dense"));
  ser.set("config", dense);
  Config c;
  c.set("layers", std::vector<Config>{ser});
  LayerPtr m = layers::create_layer("Sequential", c);
  m->build({{-1, kF}});
  return m;
}

OptimizerPtr optimizer(const std::string &cls, double lr) {
  Config c;
  c.set("learning_rate", lr);
  return make_optimizer(cls, c);
}

void compile_default(const LayerPtr &m, OptimizerPtr opt, std::vector<std::string> metrics = {"accuracy"}) {
  CompileOptions c;
  c.optimizer = std::move(opt);
  c.loss_names = {"sparse_categorical_crossentropy"};
  c.metric_names = std::move(metrics);
  compile(m, c);
}

std::vector<std::vector<float>> weights(const LayerPtr &m) {
  std::vector<std::vector<float>> out;
  for (const auto &v : m->variables()) {
    Tensor t = v->value();
    out.emplace_back(t.data<float>(), t.data<float>() + t.num_elements());
  }
  return out;
}

Tensor rows(const Tensor &t, int64_t begin, int64_t end) {
  std::vector<int64_t> b(static_cast<size_t>(t.rank()), 0), s(static_cast<size_t>(t.rank()), -1);
  b[0] = begin;
  s[0] = end - begin;
  return ops::slice(t, b, s);
}

double loss_of(const LayerPtr &m, const Tensor &x, const Tensor &y, const Tensor &sw = Tensor()) {
  return *test_on_batch(m, {x}, {y}, sw).get("loss");
}

// fit's options for tensors x and y, silent.
FitOptions fit_options(std::vector<Tensor> x, std::vector<Tensor> y, int64_t epochs = 1,
                       int64_t batch_size = -1) {
  FitOptions f;
  f.x = std::move(x);
  f.y = std::move(y);
  f.epochs = epochs;
  f.batch_size = batch_size;
  f.verbose = 0;
  return f;
}

// Records the hooks fit calls.
class Recorder : public Callback {
 public:
  Recorder() : Callback("Recorder") {}
  void on_epoch_end(int64_t epoch, Logs &logs) override {
    epochs.push_back(epoch);
    val_epochs.push_back(logs.contains("val_loss"));
  }
  void on_train_batch_end(int64_t batch, Logs &logs) override {
    ++batches;
    batch_logs.push_back(logs);
    if (stop_at >= 0 && batch == stop_at) training_state(*model())->stop_training = true;
  }
  std::vector<int64_t> epochs;
  std::vector<bool> val_epochs;
  std::vector<Logs> batch_logs;
  int64_t batches = 0;
  int64_t stop_at = -1;
};

TEST(ModelTraining, FitLowersLossAndFillsHistory) {
  set_global_seed(1);
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("Adam", 0.05));
  FitOptions f = fit_options({p.x}, {p.y}, 15, 16);
  f.validation_split = 0.25;
  auto h = fit(m, f);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->keys, (std::vector<std::string>{"loss", "accuracy", "val_loss", "val_accuracy"}));
  const auto &loss = h->history.at("loss");
  ASSERT_EQ(loss.size(), 15u);
  EXPECT_LT(loss.back(), 0.6 * loss.front());
  EXPECT_GT(h->history.at("accuracy").back(), 0.8);
  EXPECT_EQ(h->epoch.size(), 15u);
  EXPECT_EQ(metrics_names(*m), (std::vector<std::string>{"loss", "accuracy"}));
  EXPECT_EQ(training_state(*m)->optimizer->iterations(), 15 * 3);  // 48 training samples / 16
}

TEST(ModelTraining, ValidationSplitTakesTheLastFraction) {
  set_global_seed(2);
  Problem p = problem();
  std::vector<int64_t> ys = p.ys;
  for (int64_t i = 48; i < kN; ++i) ys[static_cast<size_t>(i)] = 2;  // the last 25% differ
  Tensor y = make_typed<int64_t>(Shape{kN}, ys);
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.0));  // lr 0: the weights stay, so losses are comparable
  const double train_loss = loss_of(m, rows(p.x, 0, 48), rows(y, 0, 48));
  const double val_loss = loss_of(m, rows(p.x, 48, kN), rows(y, 48, kN));
  const double first_loss = loss_of(m, rows(p.x, 0, 16), rows(y, 0, 16));
  FitOptions f = fit_options({p.x}, {y}, 1, 16);
  f.validation_split = 0.25;
  auto h = fit(m, f);
  EXPECT_NEAR(h->history.at("loss")[0], train_loss, 1e-5);
  EXPECT_NEAR(h->history.at("val_loss")[0], val_loss, 1e-5);
  EXPECT_GT(std::fabs(val_loss - first_loss), 1e-3);
}

TEST(ModelTraining, ValidationFreqIntAndList) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.01));
  for (const auto &[freq, expected] : std::vector<std::pair<std::vector<int64_t>, std::vector<bool>>>{
           {{2}, {false, true, false, true, false}},
           {{1, 4}, {true, false, false, true, false}},
           {{}, {true, true, true, true, true}}}) {
    auto rec = std::make_shared<Recorder>();
    FitOptions f = fit_options({p.x}, {p.y}, 5);
    f.validation_split = 0.25;
    f.validation_freq = freq;
    f.callbacks = {rec};
    auto h = fit(m, f);
    EXPECT_EQ(rec->val_epochs, expected);
    size_t n = 0;
    for (bool b : expected) n += b;
    EXPECT_EQ(h->history.at("val_loss").size(), n);
  }
}

TEST(ModelTraining, SampleAndClassWeightsFollowKerasFormula) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.0), {});
  Config none;
  none.set("reduction", std::string("none"));
  Tensor per_sample = (*create_loss("sparse_categorical_crossentropy", none))(p.y, (*m)(p.x));
  std::vector<float> sw(kN);
  for (int64_t i = 0; i < kN; ++i) sw[static_cast<size_t>(i)] = 0.25f + static_cast<float>(i % 4);
  const std::vector<double> cw = {1.0, 3.0, 0.5};
  double expect_sw = 0, expect_cw = 0;
  for (int64_t i = 0; i < kN; ++i) {
    const double l = per_sample.data<float>()[i], c = cw[static_cast<size_t>(p.ys[static_cast<size_t>(i)])];
    expect_sw += sw[static_cast<size_t>(i)] * l / kN;
    expect_cw += c * l / kN;
  }
  Tensor w = make(Shape{kN}, sw);
  EXPECT_NEAR(loss_of(m, p.x, p.y, w), expect_sw, 1e-5);
  auto run = [&](const Tensor &weights, const std::vector<double> &class_weight) {
    FitOptions f = fit_options({p.x}, {p.y}, 1, kN);
    f.sample_weight = weights;
    f.class_weight = class_weight;
    return fit(m, f)->history.at("loss")[0];
  };
  EXPECT_NEAR(run(w, {}), expect_sw, 1e-5);
  EXPECT_NEAR(run(Tensor(), cw), expect_cw, 1e-5);
  // Keras 3 refuses the two together (tf.keras 2 multiplied them).
  expect_error([&] { run(w, cw); }, Code::kInvalidArgument, {"fit: class_weight and sample_weight", "one or the other"});
  expect_error([&] { train_on_batch(m, {p.x}, {p.y}, w, cw); }, Code::kInvalidArgument,
               {"train_on_batch: class_weight and sample_weight"});
}

TEST(ModelTraining, StopTrainingStopsAfterTheBatchAndResetsAtFitStart) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.01));
  auto rec = std::make_shared<Recorder>();
  rec->stop_at = 1;
  FitOptions f = fit_options({p.x}, {p.y}, 3, 16);
  f.callbacks = {rec};
  auto h = fit(m, f);
  EXPECT_EQ(rec->batches, 2);
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{0}));
  EXPECT_TRUE(training_state(*m)->stop_training.load());
  rec->stop_at = -1;
  rec->batches = 0;
  fit(m, f);  // stop_training is reset at fit start
  EXPECT_EQ(rec->batches, 12);
  // Batch logs hold running values: the first batch's loss is that batch's loss.
  EXPECT_TRUE(rec->batch_logs[0].contains("loss"));
  EXPECT_TRUE(rec->batch_logs[0].contains("accuracy"));
}

TEST(ModelTraining, StepsPerEpochAndInitialEpoch) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.01));
  auto rec = std::make_shared<Recorder>();
  FitOptions f = fit_options({p.x}, {p.y}, 3, 16);
  f.steps_per_epoch = 3;
  f.initial_epoch = 1;
  f.callbacks = {rec};
  auto h = fit(m, f);
  // Keras 3: a pass of 4 batches serves epochs until it ends; the epoch reaching its end stops short.
  EXPECT_EQ(rec->batches, 3 + 1);
  EXPECT_EQ(rec->epochs, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(rec->params().steps, 3);
  EXPECT_EQ(rec->params().epochs, 3);
  // then the next epoch starts a new pass: 3, 1, 3; training goes on
  f.initial_epoch = 0;
  rec->batches = 0;
  EXPECT_EQ(fit(m, f)->epoch, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(rec->batches, 3 + 1 + 3);
  // steps beyond one pass: each epoch is the whole pass
  f.steps_per_epoch = 6;
  rec->batches = 0;
  EXPECT_EQ(fit(m, f)->epoch, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(rec->batches, 4 * 3);
  // steps dividing the pass: no short epoch
  f.steps_per_epoch = 2;
  rec->batches = 0;
  fit(m, f);
  EXPECT_EQ(rec->batches, 2 * 3);
}

// Keras 3: a pass of unknown size that runs out ends the epoch short and teaches the pass's length;
// the next epoch starts a new pass, and training goes on (tf.keras 2 stopped).
TEST(ModelTraining, DatasetOfUnknownSizeRunningOutStartsANewPass) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.01));
  auto ds = data::filter(data::batch(data::from_tensor_slices({p.x, p.y}), 16),
                         [](const data::Element &) { return true; });
  auto rec = std::make_shared<Recorder>();
  FitOptions f;
  f.dataset = ds;
  f.epochs = 5;
  f.steps_per_epoch = 3;
  f.verbose = 0;
  f.callbacks = {rec};
  auto h = fit(m, f);
  EXPECT_EQ(rec->batches, 3 + 1 + 3 + 1 + 3);
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  // A pass that ends at an epoch's end: Keras counts the step that found the end, so each pass is
  // followed by an empty epoch: 2, 2, 0, 2, 2, 0.
  f.steps_per_epoch = 2;
  f.epochs = 6;
  rec->batches = 0;
  EXPECT_EQ(fit(m, f)->epoch.size(), 6u);
  EXPECT_EQ(rec->batches, 8);
  f.dataset = data::filter(data::take(data::batch(data::from_tensor_slices({p.x, p.y}), 16), 0),
                           [](const data::Element &) { return true; });
  expect_error([&] { fit(m, f); }, Code::kInvalidArgument, {"fit: the data is empty"});
}

// A model in fit on one thread: another thread's fit / evaluate / train_on_batch / test_on_batch is
// FAILED_PRECONDITION naming both calls, while predict and compute_loss run beside it; the fit's own
// thread may evaluate (a callback's nested call). compute_loss from several threads at once gives
// each its loss (it shares the pending loss state under a lock).
TEST(ModelTraining, CallsOverlappingFitFromAnotherThreadAreRefused) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.01));
  class Overlap : public Callback {
   public:
    Overlap(const Problem &p) : Callback("Overlap"), p_(p) {}
    void on_train_batch_begin(int64_t batch, Logs &) override {
      if (batch != 1) return;
      const LayerPtr m = model();
      std::thread other([&] {
        for (const char *what : {"fit", "evaluate", "train_on_batch", "test_on_batch", "compile"})
          expect_error(
              [&] {
                if (std::strcmp(what, "fit") == 0) fit(m, fit_options({p_.x}, {p_.y}));
                if (std::strcmp(what, "evaluate") == 0) evaluate(m, eval_options());
                if (std::strcmp(what, "train_on_batch") == 0) train_on_batch(m, {p_.x}, {p_.y});
                if (std::strcmp(what, "test_on_batch") == 0) test_on_batch(m, {p_.x}, {p_.y});
                if (std::strcmp(what, "compile") == 0) compile_default(m, optimizer("SGD", 0.01));
              },
              Code::kFailedPrecondition, {std::string(what) + ": the model", "is in fit on another thread"});
        PredictOptions po;
        po.x = {p_.x};
        po.verbose = 0;
        predicted = predict(m, po)[0].shape()[0];
        loss = compute_loss(m, {p_.x}, {p_.y}, {(*m)(p_.x)}, Tensor()).item_as_double();
      });
      other.join();
      nested = evaluate(m, eval_options()).contains("loss");  // the fit's own thread may nest
    }
    EvaluateOptions eval_options() const {
      EvaluateOptions e;
      e.x = {p_.x};
      e.y = {p_.y};
      e.verbose = 0;
      return e;
    }
    const Problem &p_;
    int64_t predicted = 0;
    double loss = 0;
    bool nested = false;
  };
  auto overlap = std::make_shared<Overlap>(p);
  FitOptions f = fit_options({p.x}, {p.y}, 1, 16);
  f.callbacks = {overlap};
  fit(m, f);
  EXPECT_EQ(overlap->predicted, kN);
  EXPECT_GT(overlap->loss, 0);
  EXPECT_TRUE(overlap->nested);
  EXPECT_TRUE(evaluate(m, overlap->eval_options()).contains("loss"));  // free again after fit

  const std::vector<Tensor> y_pred = {(*m)(p.x)};
  const double want = compute_loss(m, {p.x}, {p.y}, y_pred, Tensor()).item_as_double();
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i)
        if (compute_loss(m, {p.x}, {p.y}, y_pred, Tensor()).item_as_double() != want) ++wrong;
    });
  for (std::thread &t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(compute_metrics(m, {p.x}, {p.y}, y_pred, Tensor()).contains("loss"));
}

TEST(ModelTraining, PredictBatchesEqualOneCall) {
  Problem p = problem();
  LayerPtr m = dense_model();
  PredictOptions o;
  o.x = {p.x};
  o.batch_size = 7;
  o.verbose = 0;
  std::vector<Tensor> batched = predict(m, o);
  std::vector<Tensor> whole = predict_on_batch(m, {p.x});
  ASSERT_EQ(batched.size(), 1u);
  EXPECT_EQ(batched[0].shape(), (Shape{kN, kC}));
  for (int64_t i = 0; i < kN * kC; ++i)
    EXPECT_NEAR(batched[0].data<float>()[i], whole[0].data<float>()[i], 1e-6);
  o.steps = 2;
  EXPECT_EQ(predict(m, o)[0].shape(), (Shape{14, kC}));
  PredictOptions d;
  d.dataset = data::batch(data::from_tensor_slices({p.x, p.y}), 10);
  d.verbose = 0;
  EXPECT_EQ(predict(m, d)[0].shape(), (Shape{kN, kC}));
  // Elements of x alone, as Keras's predict takes them; a compiled loss needs y.
  d.dataset = data::batch(data::from_tensor_slices({p.x}), 10);
  std::vector<Tensor> x_only = predict(m, d);
  ASSERT_EQ(x_only.size(), 1u);
  EXPECT_EQ(x_only[0].shape(), (Shape{kN, kC}));
  for (int64_t i = 0; i < kN * kC; ++i)
    EXPECT_NEAR(x_only[0].data<float>()[i], whole[0].data<float>()[i], 1e-6);
  EvaluateOptions e;
  e.dataset = d.dataset;
  e.verbose = 0;
  compile(m, [] {
    CompileOptions c;
    c.optimizer_name = "sgd";
    c.loss_names = {"sparse_categorical_crossentropy"};
    return c;
  }());
  expect_error([&] { evaluate(m, e); }, Code::kInvalidArgument,
               {"no y given", "compiled loss 'sparse_categorical_crossentropy'"});
}

TEST(ModelTraining, EvaluateEqualsTestOnBatchOverOneBatch) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("Adam", 0.01));
  EvaluateOptions e;
  e.x = {p.x};
  e.y = {p.y};
  e.batch_size = kN;
  e.verbose = 0;
  Logs a = evaluate(m, e);
  Logs b = test_on_batch(m, {p.x}, {p.y});
  ASSERT_EQ(a.items().size(), 2u);
  EXPECT_NEAR(*a.get("loss"), *b.get("loss"), 1e-6);
  EXPECT_NEAR(*a.get("accuracy"), *b.get("accuracy"), 1e-6);
  e.batch_size = 10;  // batches weighted by their size: the same mean
  EXPECT_NEAR(*evaluate(m, e).get("loss"), *b.get("loss"), 1e-5);
  e.batch_size = 16;
  e.steps = 1;  // steps stops early: the first batch alone
  EXPECT_NEAR(*evaluate(m, e).get("loss"), loss_of(m, rows(p.x, 0, 16), rows(p.y, 0, 16)), 1e-6);
}

// Counts predict's hooks.
class PredictCounter : public Callback {
 public:
  PredictCounter() : Callback("PredictCounter") {}
  void on_predict_begin(Logs &) override { ++begins; }
  void on_predict_batch_end(int64_t batch, Logs &) override { last_batch = batch; }
  void on_predict_end(Logs &) override { ++ends; }
  int begins = 0, ends = 0;
  int64_t last_batch = -1;
};

TEST(ModelTraining, PredictCallsItsHooks) {
  Problem p = problem();
  LayerPtr m = dense_model();
  auto counter = std::make_shared<PredictCounter>();
  PredictOptions o;
  o.x = {p.x};
  o.batch_size = 20;
  o.verbose = 0;
  o.callbacks = {counter};
  predict(m, o);
  EXPECT_EQ(counter->begins, 1);
  EXPECT_EQ(counter->ends, 1);
  EXPECT_EQ(counter->last_batch, 3);  // 64 samples in batches of 20: 4 batches, the last partial
  EXPECT_EQ(counter->params().steps, 4);
}

TEST(ModelTraining, DatasetInputWithSampleWeights) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.0));
  std::vector<float> sw(kN);
  for (int64_t i = 0; i < kN; ++i) sw[static_cast<size_t>(i)] = static_cast<float>(i % 3);
  Tensor w = make(Shape{kN}, sw);
  EvaluateOptions e;
  e.dataset = data::batch(data::from_tensor_slices({p.x, p.y, w}), 16);
  e.verbose = 0;
  EvaluateOptions a;
  a.x = {p.x};
  a.y = {p.y};
  a.sample_weight = w;
  a.verbose = 0;
  EXPECT_NEAR(*evaluate(m, e).get("loss"), *evaluate(m, a).get("loss"), 1e-6);
  FitOptions f;
  f.dataset = e.dataset;
  f.validation_dataset = data::batch(data::from_tensor_slices({p.x, p.y}), 32);
  f.epochs = 2;
  f.verbose = 0;
  auto h = fit(m, f);
  EXPECT_NEAR(h->history.at("loss")[0], *evaluate(m, a).get("loss"), 1e-5);
  EXPECT_EQ(h->history.at("val_loss").size(), 2u);
}

TEST(ModelTraining, SameSeedGivesBitIdenticalWeights) {
  Problem p = problem();
  auto run = [&] {
    set_global_seed(42);
    LayerPtr m = dense_model();
    compile_default(m, optimizer("Adam", 0.01));
    FitOptions f = fit_options({p.x}, {p.y}, 3, 8);
    f.validation_split = 0.2;
    fit(m, f);
    return weights(m);
  };
  auto a = run(), b = run();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float))) << "variable " << i;
}

TEST(ModelTraining, ShuffleChangesTheBatches) {
  Problem p = problem();
  auto run = [&](bool shuffle) {
    set_global_seed(5);
    LayerPtr m = dense_model();
    compile_default(m, optimizer("SGD", 0.1));
    FitOptions f = fit_options({p.x}, {p.y}, 1, 8);
    f.shuffle = shuffle;
    fit(m, f);
    return weights(m);
  };
  EXPECT_NE(run(true), run(false));
}

TEST(ModelTraining, ComputeLossAddsRegularizationAndCastsToFloat32) {
  Problem p = problem();
  LayerPtr m = dense_model("softmax", "l2");
  compile_default(m, optimizer("SGD", 0.0), {});
  std::vector<Tensor> y_pred = (*m)(std::vector<Tensor>{p.x});
  const double plain = (*create_loss("sparse_categorical_crossentropy"))(p.y, y_pred[0]).item_as_double();
  Tensor total = compute_loss(m, {p.x}, {p.y}, y_pred);
  EXPECT_EQ(total.dtype(), DType::kFloat32);
  EXPECT_GT(total.item_as_double(), plain + 1e-4);
  Tensor bf = compute_loss(m, {p.x}, {p.y}, {ops::cast(y_pred[0], DType::kBFloat16)});
  EXPECT_EQ(bf.dtype(), DType::kFloat32);
  EXPECT_NEAR(bf.item_as_double(), total.item_as_double(), 2e-2);
}

TEST(ModelTraining, CustomTrainStepReplacesTheBuiltIn) {
  Problem p = problem();
  LayerPtr m = dense_model();
  int calls = 0;
  set_step_overrides(  // before compile: kept by compile
      *m,
      [&](const LayerPtr &model, const std::vector<Tensor> &data) {
        ++calls;
        EXPECT_EQ(data.size(), 2u);
        Logs l = default_train_step(model, data, 1);
        l.set("custom", 1.5);
        return l;
      },
      {});
  compile_default(m, optimizer("SGD", 0.1));
  FitOptions f = fit_options({p.x}, {p.y}, 2);
  auto h = fit(m, f);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(h->history.at("custom"), (std::vector<double>{1.5, 1.5}));
}

// Two heads on one input: class probabilities and a regression value (a model with two outputs).
class TwoHeads final : public layers::Model {
 public:
  TwoHeads() : TwoHeads(ConfigReader(Config(), "TwoHeads")) {}
  explicit TwoHeads(ConfigReader &&r) : Model("TwoHeads", r) {
    r.finish();
    Config a;
    a.set("units", kC);
    a.set("activation", std::string("softmax"));
    Config b;
    b.set("units", int64_t{1});
    a_ = layers::create_layer("Dense", a);
    b_ = layers::create_layer("Dense", b);
    track(a_);
    track(b_);
  }

 protected:
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const layers::CallContext &ctx) override {
    return {(*a_)(inputs, ctx)[0], (*b_)(inputs, ctx)[0]};
  }

 private:
  LayerPtr a_, b_;
};

TEST(ModelTraining, TwoOutputsWeighLossesPerOutput) {
  Problem p = problem();
  LayerPtr m = std::make_shared<TwoHeads>();
  std::vector<float> t(kN);
  for (int64_t i = 0; i < kN; ++i) t[static_cast<size_t>(i)] = p.xs[static_cast<size_t>(i * kF)] * 2.0f;
  Tensor target = make(Shape{kN, 1}, t);
  CompileOptions c;
  c.optimizer = optimizer("Adam", 0.02);
  c.loss_names = {"sparse_categorical_crossentropy", "mse"};
  c.loss_weights = {1.0, 0.5};
  c.metric_names = {"accuracy"};
  compile(m, c);
  std::vector<Tensor> y_pred = (*m)(std::vector<Tensor>{p.x});
  ASSERT_EQ(y_pred.size(), 2u);
  const double l1 = (*create_loss("sparse_categorical_crossentropy"))(p.y, y_pred[0]).item_as_double();
  const double l2 = (*create_loss("mse"))(target, y_pred[1]).item_as_double();
  EXPECT_NEAR(compute_loss(m, {p.x}, {p.y, target}, y_pred).item_as_double(), l1 + 0.5 * l2, 1e-5);
  FitOptions f = fit_options({p.x}, {p.y, target}, 10);
  f.validation_split = 0.25;
  auto h = fit(m, f);
  // Keras 3's logs: the loss, the compiled metrics, then each output's loss before its weight.
  EXPECT_EQ(h->keys,
            (std::vector<std::string>{"loss", "output_1_accuracy", "output_2_accuracy", "output_1_loss",
                                      "output_2_loss", "val_loss", "val_output_1_accuracy",
                                      "val_output_2_accuracy", "val_output_1_loss", "val_output_2_loss"}));
  EXPECT_LT(h->history.at("loss").back(), h->history.at("loss").front());
  y_pred = (*m)(std::vector<Tensor>{p.x});
  const double o1 = (*create_loss("sparse_categorical_crossentropy"))(p.y, y_pred[0]).item_as_double();
  const double o2 = (*create_loss("mse"))(target, y_pred[1]).item_as_double();
  const Logs logs = test_on_batch(m, {p.x}, {p.y, target});
  EXPECT_NEAR(*logs.get("output_1_loss"), o1, 1e-5);
  EXPECT_NEAR(*logs.get("output_2_loss"), o2, 1e-5);
  EXPECT_NEAR(*logs.get("loss"), o1 + 0.5 * o2, 1e-5);
  EXPECT_EQ(metrics_names(*m), (std::vector<std::string>{"loss", "output_1_accuracy", "output_2_accuracy",
                                                         "output_1_loss", "output_2_loss"}));
  // Keras 3's order with weighted_metrics: every output's metrics, then every output's weighted ones.
  CompileOptions w = c;
  w.metric_names = {"accuracy", "accuracy"};
  w.metric_is_weighted = {false, true};
  compile(m, w);
  (void)test_on_batch(m, {p.x}, {p.y, target});
  EXPECT_EQ(metrics_names(*m),
            (std::vector<std::string>{"loss", "output_1_accuracy", "output_2_accuracy",
                                      "output_1_weighted_accuracy", "output_2_weighted_accuracy",
                                      "output_1_loss", "output_2_loss"}));
  f.y = {p.y};
  expect_error([&] { fit(m, f); }, Code::kInvalidArgument, {"1 y tensor", "2 compiled losses"});
  CompileOptions one;  // one loss for both outputs: the y count is checked against the outputs
  one.loss_names = {"mse"};
  compile(m, one);
  expect_error([&] { fit(m, f); }, Code::kInvalidArgument, {"1 y tensor(s) for 2 model output"});
}

TEST(ModelTraining, ValidationDataAndRunningBatchLogs) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.0));
  auto rec = std::make_shared<Recorder>();
  FitOptions f = fit_options({rows(p.x, 0, 32)}, {rows(p.y, 0, 32)}, 1, 16);
  f.validation_x = {rows(p.x, 32, kN)};
  f.validation_y = {rows(p.y, 32, kN)};
  f.shuffle = false;
  f.callbacks = {rec};
  auto h = fit(m, f);
  const double b0 = loss_of(m, rows(p.x, 0, 16), rows(p.y, 0, 16));
  const double b1 = loss_of(m, rows(p.x, 16, 32), rows(p.y, 16, 32));
  ASSERT_EQ(rec->batch_logs.size(), 2u);
  EXPECT_NEAR(*rec->batch_logs[0].get("loss"), b0, 1e-5);
  EXPECT_NEAR(*rec->batch_logs[1].get("loss"), (b0 + b1) / 2, 1e-5);  // running mean
  EXPECT_NEAR(h->history.at("val_loss")[0], loss_of(m, rows(p.x, 32, kN), rows(p.y, 32, kN)), 1e-5);
  f.validation_y = {};
  expect_error([&] { fit(m, f); }, Code::kInvalidArgument, {"validation data): no y given", "compiled loss"});
}

TEST(ModelTraining, VerboseTwoPrintsOneLinePerEpoch) {
  Problem p = problem();
  LayerPtr m = dense_model();
  compile_default(m, optimizer("SGD", 0.01));
  std::string out;
  set_progress_sink([&out](const std::string &text) { out += text; });
  FitOptions f = fit_options({p.x}, {p.y}, 2);
  f.verbose = 2;
  f.validation_split = 0.25;
  fit(m, f);
  f.verbose = 0;
  fit(m, f);
  set_progress_sink(nullptr);
  EXPECT_NE(out.find("Epoch 1/2"), std::string::npos) << out;
  EXPECT_NE(out.find("Epoch 2/2"), std::string::npos) << out;
  EXPECT_NE(out.find("val_loss"), std::string::npos) << out;
  EXPECT_EQ(out.find("Epoch 3"), std::string::npos) << out;
}

TEST(ModelTraining, BadInputIsAClearErrorThatChangesNothing) {
  Problem p = problem();
  LayerPtr m = dense_model();
  FitOptions f = fit_options({p.x}, {p.y}, 1);
  expect_error([&] { fit(m, f); }, Code::kFailedPrecondition, {"compile()"});
  expect_error([&] { evaluate(m, EvaluateOptions{}); }, Code::kFailedPrecondition, {"compile()"});
  expect_error([&] { train_on_batch(m, {p.x}, {p.y}); }, Code::kFailedPrecondition, {"compile()"});
  CompileOptions bad;
  bad.loss_names = {"no_such_loss"};
  expect_error([&] { compile(m, bad); }, Code::kNotFound, {"no_such_loss", "mean_squared_error"});
  bad.loss_names = {"mse"};
  bad.metric_names = {"no_such_metric"};
  expect_error([&] { compile(m, bad); }, Code::kNotFound, {"no_such_metric", "accuracy"});
  bad.metric_names = {};
  bad.optimizer_name = "no_such_optimizer";
  expect_error([&] { compile(m, bad); }, Code::kNotFound, {"no_such_optimizer", "Adam"});
  EXPECT_FALSE(is_compiled(*m));

  compile_default(m, optimizer("Adam", 0.1));
  const OptimizerPtr opt = training_state(*m)->optimizer;
  const auto before = weights(m);
  FitOptions g = f;
  g.y = {rows(p.y, 0, 60)};
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"64", "60"});
  g = f;
  g.y = {p.y, p.y};
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"2 y tensor(s) for 1 model output"});
  std::vector<int64_t> ys = p.ys;
  ys[50] = 7;
  g = f;
  g.y = {make_typed<int64_t>(Shape{kN}, ys)};
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"7"});
  expect_error([&] { train_on_batch(m, {p.x}, g.y); }, Code::kInvalidArgument, {"7"});
  for (double split : {1.0, -0.1, 1.5}) {
    g = f;
    g.validation_split = split;
    expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"validation_split"});
  }
  g = FitOptions();
  g.dataset = data::batch(data::from_tensor_slices({p.x, p.y}), 16);
  g.validation_split = 0.2;
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"validation_split", "dataset"});
  g = f;
  g.x = {rows(p.x, 0, 0)};
  g.y = {rows(p.y, 0, 0)};
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"empty"});
  g = f;
  g.batch_size = 0;
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"batch_size"});
  expect_error([&] { predict(m, PredictOptions{}); }, Code::kInvalidArgument, {"no x"});
  // Two losses for a one-output model.
  CompileOptions two;
  two.loss_names = {"mse", "mse"};
  compile(m, two);
  expect_error([&] { fit(m, f); }, Code::kInvalidArgument, {"1 y tensor", "2 compiled losses"});
  EXPECT_EQ(weights(m), before);
  EXPECT_EQ(opt->iterations(), 0);
  // A dataset's labels are checked by the loss, batch by batch: the bad batch applies nothing.
  compile_default(m, optimizer("SGD", 0.1));
  g = FitOptions();
  g.dataset = data::batch(data::from_tensor_slices({p.x, make_typed<int64_t>(Shape{kN}, ys)}), 16);
  g.verbose = 0;
  expect_error([&] { fit(m, g); }, Code::kInvalidArgument, {"label", "7"});
  EXPECT_EQ(training_state(*m)->optimizer->iterations(), 3);  // batches 0-2; batch 3 holds index 50
}

// Keras's fit(x) without y: a model compiled without a loss trains on its own losses (here the
// kernel's l2 penalty 0.01 * sum(k^2), whose SGD step scales the kernel by 1 - 0.02 * lr); a
// compiled loss or metric that needs y, or class_weight, is an error naming it.
double sum_squares(const Tensor &t) {
  double s = 0;
  for (int64_t i = 0; i < t.num_elements(); ++i) s += t.item_as_double(i) * t.item_as_double(i);
  return s;
}

TEST(ModelTraining, FitWithoutTargetsTrainsOnTheModelsOwnLosses) {
  Problem p = problem();
  LayerPtr m = dense_model("softmax", "l2");
  CompileOptions c;
  c.optimizer = optimizer("SGD", 0.5);
  compile(m, c);
  const std::vector<float> k0 = weights(m)[0], b0 = weights(m)[1];
  const double ss0 = sum_squares(m->variables()[0]->value());
  EXPECT_NEAR(*evaluate(m,
                        [&] {
                          EvaluateOptions e;
                          e.x = {p.x};
                          e.verbose = 0;
                          return e;
                        }())
                   .get("loss"),
              0.01 * ss0, 1e-5 * ss0);
  Logs b = train_on_batch(m, {p.x}, {});
  EXPECT_NEAR(*b.get("loss"), 0.01 * ss0, 1e-5 * ss0);
  FitOptions f = fit_options({p.x}, {}, 2, 16);  // 4 steps an epoch
  f.sample_weight = make(Shape{kN}, std::vector<float>(kN, 2.0f));
  auto h = fit(m, f);
  ASSERT_EQ(h->history.at("loss").size(), 2u);
  EXPECT_LT(h->history.at("loss")[1], h->history.at("loss")[0]);
  // A dataset of x alone: 4 more steps.
  FitOptions d;
  d.dataset = data::batch(data::from_tensor_slices({p.x}), 16);
  d.num_inputs = 1;
  d.verbose = 0;
  fit(m, d);
  const double scale = std::pow(1.0 - 0.02 * 0.5, 1 + 8 + 4);
  const std::vector<float> k = weights(m)[0], bias = weights(m)[1];
  for (size_t i = 0; i < k.size(); ++i) EXPECT_NEAR(k[i], k0[i] * scale, 1e-5) << i;
  EXPECT_EQ(bias, b0);  // no loss reaches the bias
  Logs t = test_on_batch(m, {p.x}, {});
  EXPECT_NEAR(*t.get("loss"), 0.01 * sum_squares(m->variables()[0]->value()), 1e-6);

  // y is still taken when given, and the loss then needs it.
  FitOptions cw = fit_options({p.x}, {}, 1, 16);
  cw.class_weight = {1.0, 2.0, 3.0};
  expect_error([&] { fit(m, cw); }, Code::kInvalidArgument, {"class_weight needs y"});
  d.class_weight = {1.0, 2.0, 3.0};
  expect_error([&] { fit(m, d); }, Code::kInvalidArgument, {"class_weight needs y", "only the 1 x"});
  compile_default(m, optimizer("SGD", 0.5));
  const std::vector<std::vector<float>> before = weights(m);
  for (const char *what : {"fit", "evaluate", "train_on_batch", "test_on_batch"}) {
    auto run = [&] {
      const std::string w = what;
      if (w == "fit") {
        fit(m, fit_options({p.x}, {}, 1, 16));
      } else if (w == "evaluate") {
        EvaluateOptions e;
        e.x = {p.x};
        e.verbose = 0;
        evaluate(m, e);
      } else if (w == "train_on_batch") {
        train_on_batch(m, {p.x}, {});
      } else {
        test_on_batch(m, {p.x}, {});
      }
    };
    expect_error(run, Code::kInvalidArgument,
                 {std::string(what) + ": no y given", "'sparse_categorical_crossentropy'", "add_loss"});
  }
  d.class_weight.clear();
  expect_error([&] { fit(m, d); }, Code::kInvalidArgument, {"compute_loss: no y given", "compiled loss"});
  EXPECT_EQ(weights(m), before);
  CompileOptions only_metric;
  only_metric.optimizer = optimizer("SGD", 0.5);
  only_metric.metric_names = {"accuracy"};
  compile(m, only_metric);
  expect_error([&] { train_on_batch(m, {p.x}, {}); }, Code::kInvalidArgument,
               {"no y given", "compiled metric 'accuracy'"});
  EXPECT_EQ(weights(m), before);
}

// A custom loss's name compiled as a loss and a metric is made at compile, so training goes on
// after the registration ends (load_model registers custom_objects for its own length only).
TEST(ModelTraining, CustomLossNamesAreMadeAtCompile) {
  Problem p = problem();
  LayerPtr m = dense_model("linear");
  register_loss("my_sq", [](const Config &config) {
    return make_function_loss(
        kLossFunctionWrapper, "my_sq",
        [](const Tensor &t, const Tensor &q) { return ops::mean(ops::square(ops::sub(q, t)), {-1}); },
        config);
  });
  CompileOptions c;
  c.optimizer = optimizer("SGD", 0.1);
  c.loss_names = {"my_sq"};
  c.metric_names = {"my_sq", "mae"};
  compile(m, c);
  unregister_loss("my_sq");
  const Tensor y = ops::one_hot(p.y, kC);
  Logs logs = train_on_batch(m, {p.x}, {y});
  EXPECT_NEAR(*logs.get("loss"), *logs.get("my_sq"), 1e-6);
  EXPECT_TRUE(logs.get("mae").has_value());
}

}  // namespace
}  // namespace kiln::train
