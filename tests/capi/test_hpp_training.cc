// kiln.hpp's training API: compile / fit (validation_split, validation_freq) / evaluate /
// predict on a Sequential, the *_on_batch calls, a Model subclass with its own train_step (and
// one with Keras's default step), fit on a Dataset, the seed's GradientTape loop over a shuffled,
// batched Dataset with a Mean metric, and bad input as kiln::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Dims;
using kiln::Tensor;
using kiln::testing::expect_code;

constexpr int64_t kSamples = 40, kFeatures = 4, kClasses = 3;

// A small separable problem: the class is the index of the largest of the first three features.
struct Problem {
  Tensor x, y;
};
Problem problem(int64_t n = kSamples, int64_t shift = 0) {
  Tensor x = kiln::testing::sawtooth({n, kFeatures}, 11, 0.2f, shift);
  std::vector<float> v = x.to_vector<float>();
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float *row = v.data() + i * kFeatures;
    labels[size_t(i)] = static_cast<int32_t>(std::max_element(row, row + kClasses) - row);
  }
  return {x, Tensor::from_vector(labels, {n})};
}

kiln::Loss logits_loss() {
  kiln::losses::SparseCategoricalCrossentropyOptions o;
  o.from_logits = true;
  return kiln::losses::SparseCategoricalCrossentropy(o);
}

kiln::Sequential classifier() {
  return kiln::Sequential({kiln::layers::Dense(16, "relu"), kiln::layers::Dense(kClasses)});
}

TEST(HppTraining, CompileFitWithValidationThenEvaluateAndPredict) {
  kiln::clear_session();
  kiln::set_seed(1);
  Problem p = problem();
  kiln::Sequential model = classifier();
  EXPECT_FALSE(model.is_compiled());
  model.compile(kiln::optimizers::Adam(0.02), logits_loss(), {"accuracy"});
  EXPECT_TRUE(model.is_compiled());
  EXPECT_EQ(model.optimizer().class_name(), "Adam");

  kiln::History history = model.fit(p.x, p.y,
                                    kiln::FitOptions()
                                        .with_epochs(4)
                                        .with_batch_size(8)
                                        .with_verbose(0)
                                        .with_validation_split(0.2)
                                        .with_validation_freq({2}));
  const auto logs = history.history();
  ASSERT_EQ(logs.at("loss").size(), 4u);
  ASSERT_EQ(logs.at("accuracy").size(), 4u);
  // validation_freq {2}: validation after epochs 2 and 4 only.
  ASSERT_EQ(logs.at("val_loss").size(), 2u);
  EXPECT_EQ(logs.at("val_accuracy").size(), 2u);
  EXPECT_LT(logs.at("loss").back(), logs.at("loss").front());
  EXPECT_EQ(history.epoch().size(), 4u);
  const std::vector<std::string> names = model.metrics_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "loss");
  EXPECT_EQ(names[1], "accuracy");

  std::map<std::string, double> eval = model.evaluate(p.x, p.y, kiln::EvaluateOptions().with_verbose(0));
  ASSERT_EQ(eval.count("loss"), 1u);
  ASSERT_EQ(eval.count("accuracy"), 1u);
  EXPECT_GE(eval["accuracy"], 0.0);
  EXPECT_LE(eval["accuracy"], 1.0);

  Tensor pred = model.predict(p.x, kiln::PredictOptions().with_batch_size(16).with_verbose(0));
  EXPECT_EQ(pred.shape(), (Dims{kSamples, kClasses}));
  // predict stacks the batches: the same as one call of the model.
  std::vector<float> whole = model(p.x).to_vector<float>(), batched = pred.to_vector<float>();
  ASSERT_EQ(whole.size(), batched.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_NEAR(whole[i], batched[i], 1e-5f);
}

// fit with Keras 3's optimizer options: use_ema ends with the weights at their moving averages
// (finalize_variable_values); gradient_accumulation_steps makes iterations count updates; a
// power-of-two loss_scale_factor trains exactly as without (fit differentiates loss * factor and
// each step divides the gradients by it).
TEST(HppTraining, FitWithEmaAccumulationAndLossScale) {
  Problem p = problem();
  auto train = [&](const kiln::optimizers::Optimizer &o) {
    kiln::clear_session();
    kiln::set_seed(3);
    kiln::Sequential model = classifier();
    model.compile(o, logits_loss());
    model.fit(p.x, p.y,
              kiln::FitOptions().with_epochs(2).with_batch_size(8).with_verbose(0).with_shuffle(false));
    return model;
  };
  kiln::optimizers::AdamOptions ema;
  ema.use_ema = true;
  kiln::optimizers::Optimizer with_ema = kiln::optimizers::Adam(0.02, ema);
  kiln::Sequential m = train(with_ema);
  for (const kiln::Variable &v : m.trainable_variables())
    EXPECT_EQ(v.value().to_vector<float>(), with_ema.get_slot(v, "average").value().to_vector<float>())
        << v.name();

  kiln::optimizers::AdamOptions acc;
  acc.gradient_accumulation_steps = 2;
  kiln::optimizers::Optimizer with_acc = kiln::optimizers::Adam(0.02, acc);
  train(with_acc);
  EXPECT_EQ(with_acc.iterations(), 2 * (kSamples / 8) / 2);  // 10 calls, 5 updates

  kiln::optimizers::AdamOptions scale;
  scale.loss_scale_factor = 1024.0;
  const kiln::Sequential a = train(kiln::optimizers::Adam(0.02, scale)),
                         b = train(kiln::optimizers::Adam(0.02));
  const std::vector<kiln::Variable> va = a.trainable_variables(), vb = b.trainable_variables();
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i)
    EXPECT_EQ(va[i].value().to_vector<float>(), vb[i].value().to_vector<float>()) << va[i].name();
}

TEST(HppTraining, SequentialOneLineCompileAndOnBatchCalls) {
  kiln::clear_session();
  kiln::set_seed(2);
  kiln::Sequential model({kiln::layers::Dense(1)});
  model.compile("sgd", "mse");
  Tensor x = kiln::testing::sawtooth({16, 2}, 5, 0.3f);
  Tensor y = kiln::matmul(x, Tensor::from_vector({1.f, -2.f}, {2, 1}));
  const double before = model.evaluate(x, y, kiln::EvaluateOptions().with_verbose(0)).at("loss");
  kiln::History h = model.fit(x, y, kiln::FitOptions().with_epochs(3).with_batch_size(4).with_verbose(0));
  EXPECT_EQ(h.history().at("loss").size(), 3u);
  const double after = model.evaluate(x, y, kiln::EvaluateOptions().with_verbose(0)).at("loss");
  EXPECT_LT(after, before);

  std::map<std::string, double> t = model.train_on_batch(x, y);
  EXPECT_EQ(t.count("loss"), 1u);
  std::map<std::string, double> e = model.test_on_batch(x, y, kiln::ones({16}));
  EXPECT_EQ(e.count("loss"), 1u);
  EXPECT_EQ(model.predict_on_batch(x).shape(), (Dims{16, 1}));
  EXPECT_EQ(model.optimizer().class_name(), "SGD");

  EXPECT_FALSE(model.stop_training());
  model.set_stop_training(true);
  EXPECT_TRUE(model.stop_training());
  model.set_stop_training(false);

  // A copy is a handle to the same model, and a Model handle of a Sequential layer trains it too.
  kiln::Model same(static_cast<const kiln::Layer &>(model));
  EXPECT_TRUE(same.is_compiled());
  EXPECT_EQ(same.predict_on_batch(x).shape(), (Dims{16, 1}));
}

TEST(HppTraining, CompileOptionsWithObjectsAndClassWeight) {
  kiln::clear_session();
  kiln::set_seed(3);
  Problem p = problem(24);
  kiln::Sequential model = classifier();
  kiln::CompileOptions c;
  c.with_optimizer(kiln::optimizers::SGD(0.05))
      .with_loss(logits_loss())
      .with_metrics(std::vector<kiln::Metric>{kiln::metrics::SparseCategoricalAccuracy("acc")});
  model.compile(c);
  kiln::History h = model.fit(p.x, p.y,
                              kiln::FitOptions()
                                  .with_epochs(2)
                                  .with_verbose(0)
                                  .with_class_weight({{0, 2.0}, {2, 0.5}})
                                  .with_validation_data(p.x, p.y)
                                  .with_shuffle(false));
  EXPECT_EQ(h.history().at("acc").size(), 2u);
  EXPECT_EQ(h.history().at("val_acc").size(), 2u);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "class_weight", [&] {
    model.fit(p.x, p.y, kiln::FitOptions().with_verbose(0).with_class_weight({{-1, 1.0}}));
  });
  // Keras 3 refuses class_weight together with sample_weight.
  const Tensor ones = kiln::ones({p.x.shape()[0]});
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "class_weight and sample_weight were both given", [&] {
    model.fit(p.x, p.y,
              kiln::FitOptions().with_verbose(0).with_class_weight({{0, 2.0}}).with_sample_weight(ones));
  });
}

TEST(HppTraining, MixedMetricsKeepTheCompileOrder) {
  kiln::clear_session();
  Problem p = problem(24);
  kiln::Sequential model = classifier();
  kiln::CompileOptions c;
  c.with_optimizer("sgd").with_loss(logits_loss());
  c.metric_names = {"crossentropy"};
  c.metrics = {kiln::metrics::SparseCategoricalAccuracy("acc")};
  c.metric_is_object = {true, false};  // Keras's [acc_object, "crossentropy"]
  model.compile(c);
  model.train_on_batch(p.x, p.y);
  EXPECT_EQ(model.metrics_names(), (std::vector<std::string>{"loss", "acc", "crossentropy"}));
  c.metric_is_object = {true};
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "metric_is_object has 1 entries", [&] { model.compile(c); });
}

// Keras's weighted_metrics: they see the sample weight, follow `metrics` in the logs, and one whose
// name is taken is "weighted_<name>".
TEST(HppTraining, WeightedMetricsSeeTheSampleWeight) {
  kiln::clear_session();
  Problem p = problem(24);
  kiln::Sequential model = classifier();
  kiln::CompileOptions c;
  c.with_optimizer(kiln::optimizers::SGD(0.0)).with_loss(logits_loss());
  c.metrics = {kiln::metrics::SparseCategoricalAccuracy("accuracy")};
  c.weighted_metric_names = {"accuracy"};
  c.weighted_metrics = {kiln::metrics::SparseCategoricalAccuracy("wacc")};
  c.weighted_metric_is_object = {true, false};  // Keras's [wacc_object, "accuracy"]
  model.compile(c);
  const Tensor pred = model.predict(p.x);
  const std::vector<float> probs = pred.to_vector<float>();
  const std::vector<int32_t> labels = p.y.to_vector<int32_t>();
  std::vector<float> w(24, 0.0f);
  double all = 0, first = 0;
  for (size_t i = 0; i < 24; ++i) {
    const float *row = probs.data() + i * kClasses;
    const bool right = std::max_element(row, row + kClasses) - row == labels[i];
    all += right;
    if (i < 8) {
      w[i] = 1.0f;
      first += right;
    }
  }
  const std::map<std::string, double> logs =
      model.evaluate(p.x, p.y, kiln::EvaluateOptions().with_sample_weight(Tensor::from_vector(w, {24})));
  EXPECT_EQ(model.metrics_names(),
            (std::vector<std::string>{"loss", "accuracy", "wacc", "weighted_accuracy"}));
  EXPECT_NEAR(logs.at("accuracy"), all / 24, 1e-6);
  EXPECT_NEAR(logs.at("wacc"), first / 8, 1e-6);
  EXPECT_NEAR(logs.at("weighted_accuracy"), first / 8, 1e-6);
  c.weighted_metric_is_object = {false, false};
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "weighted_metric_is_object has 2 entries",
              [&] { model.compile(c); });
}

TEST(HppTraining, CompiledMetricsIgnoreSampleWeights) {
  kiln::clear_session();
  Problem p = problem(24);
  kiln::Sequential model = classifier();
  model.compile(kiln::CompileOptions()
                    .with_optimizer(kiln::optimizers::SGD(0.0))
                    .with_loss(logits_loss())
                    .with_metrics(std::vector<std::string>{"accuracy"}));
  const std::map<std::string, double> plain = model.evaluate(p.x, p.y);
  std::vector<float> w(24, 0.0f);
  w[0] = 1.0f;  // one sample counts for the loss; accuracy still counts all 24, as Keras's metrics
  const std::map<std::string, double> weighted =
      model.evaluate(p.x, p.y, kiln::EvaluateOptions().with_sample_weight(Tensor::from_vector(w, {24})));
  EXPECT_DOUBLE_EQ(weighted.at("accuracy"), plain.at("accuracy"));
  EXPECT_NE(weighted.at("loss"), plain.at("loss"));
}

// Keras's custom train_step: its own loop body, with compute_loss / compute_metrics.
class CountingModel : public kiln::Model {
 public:
  CountingModel() : Model("CountingModel") { dense_ = track(kiln::layers::Dense(kClasses)); }
  int train_steps = 0, test_steps = 0;
  bool fail = false;

  std::map<std::string, double> train_step(const std::vector<Tensor> &data) override {
    ++train_steps;
    if (fail) throw kiln::Error(KILN_STATUS_OUT_OF_RANGE, "CountingModel: told to fail");
    const Tensor &x = data[0], &y = data[1];
    kiln::GradientTape tape;
    Tensor y_pred = (*this)(x, true);
    Tensor loss = compute_loss(x, y, y_pred);
    tape.stop();
    std::vector<kiln::Variable> vars = trainable_variables();
    optimizer().apply_gradients(tape.gradient(loss, vars), vars);
    std::map<std::string, double> logs = compute_metrics(x, y, y_pred);
    logs["steps"] = train_steps;
    return logs;
  }
  std::map<std::string, double> test_step(const std::vector<Tensor> &data) override {
    ++test_steps;
    return Model::test_step(data);  // Keras's super().test_step(data)
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {dense_(x[0], training)};
  }

 private:
  kiln::Layer dense_;
};

TEST(HppTraining, ModelSubclassWithCustomTrainStep) {
  kiln::clear_session();
  kiln::set_seed(4);
  Problem p = problem(32);
  CountingModel model;
  model.compile(kiln::optimizers::Adam(0.05), logits_loss(), std::vector<std::string>{"accuracy"});
  kiln::History h = model.fit(
      p.x, p.y,
      kiln::FitOptions().with_epochs(2).with_batch_size(8).with_verbose(0).with_validation_split(0.25));
  // 24 training samples in batches of 8, two epochs; validation each epoch through test_step.
  EXPECT_EQ(model.train_steps, 6);
  EXPECT_EQ(model.test_steps, 2);
  const auto logs = h.history();
  ASSERT_EQ(logs.at("steps").size(), 2u);
  EXPECT_EQ(logs.at("steps").back(), 6.0);
  EXPECT_EQ(logs.at("val_loss").size(), 2u);
  EXPECT_LT(logs.at("loss").back(), logs.at("loss").front() + 1e-9);

  // An exception in train_step stops fit and comes out with its code and message.
  model.fail = true;
  expect_code(KILN_STATUS_OUT_OF_RANGE, "told to fail",
              [&] { model.fit(p.x, p.y, kiln::FitOptions().with_verbose(0)); });
}

// A step that returns its own "loss" without compute_loss: fit's epoch logs and evaluate report
// it (tf.keras 2), not the unused loss tracker's 0.
class OwnLossModel : public kiln::Model {
 public:
  OwnLossModel() : Model("OwnLossModel") { dense_ = track(kiln::layers::Dense(kClasses)); }
  std::map<std::string, double> train_step(const std::vector<Tensor> &) override { return {{"loss", 2.5}}; }
  std::map<std::string, double> test_step(const std::vector<Tensor> &) override { return {{"loss", 1.25}}; }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {dense_(x[0], training)};
  }

 private:
  kiln::Layer dense_;
};

TEST(HppTraining, StepLoggingItsOwnLoss) {
  kiln::clear_session();
  Problem p = problem(8);
  OwnLossModel model;
  model.compile("sgd", logits_loss());
  const auto logs =
      model.fit(p.x, p.y, kiln::FitOptions().with_epochs(2).with_verbose(0).with_validation_split(0.5))
          .history();
  EXPECT_EQ(logs.at("loss"), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(logs.at("val_loss"), (std::vector<double>{1.25, 1.25}));
  EXPECT_EQ(model.evaluate(p.x, p.y, kiln::EvaluateOptions().with_verbose(0)).at("loss"), 1.25);
  // Keras's model.metrics: the loss tracker, which the step never updated.
  const std::vector<kiln::Metric> metrics = model.metrics();
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(metrics[0].name(), "loss");
  EXPECT_EQ(metrics[0].result().item<float>(), 0.0f);
}

TEST(HppTraining, StepOfADestroyedSubclassObjectIsAnError) {
  kiln::clear_session();
  Problem p = problem(8);
  kiln::Model handle;
  {
    CountingModel model;
    model.compile("sgd", logits_loss());
    handle = model;  // another handle to the same C model, which outlives the C++ object
  }
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "destroyed",
              [&] { handle.fit(p.x, p.y, kiln::FitOptions().with_verbose(0)); });
}

// A Model subclass without its own steps trains with Keras's default train_step.
class PlainModel : public kiln::Model {
 public:
  PlainModel() : Model("PlainModel") {
    hidden_ = track(kiln::layers::Dense(8, "relu"));
    out_ = track(kiln::layers::Dense(kClasses));
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {out_(hidden_(x[0], training), training)};
  }

 private:
  kiln::Layer hidden_, out_;
};

TEST(HppTraining, ModelSubclassWithDefaultStepsAndDataset) {
  kiln::clear_session();
  kiln::set_seed(5);
  Problem p = problem();
  PlainModel model;
  model.compile("adam", logits_loss(), std::vector<std::string>{"accuracy"});
  auto ds = kiln::data::Dataset::from_tensor_slices({p.x, p.y}).shuffle(64, 7).batch(10);
  kiln::History h =
      model.fit(ds, kiln::FitOptions().with_epochs(3).with_verbose(0).with_validation_data(ds.take(1)));
  const auto logs = h.history();
  ASSERT_EQ(logs.at("loss").size(), 3u);
  EXPECT_LT(logs.at("loss").back(), logs.at("loss").front());
  EXPECT_EQ(logs.at("val_accuracy").size(), 3u);
  std::map<std::string, double> eval = model.evaluate(ds, kiln::EvaluateOptions().with_verbose(0));
  EXPECT_EQ(eval.count("accuracy"), 1u);
  std::vector<Tensor> pred = model.predict(ds, kiln::PredictOptions().with_verbose(0));  // x of (x, y)
  ASSERT_EQ(pred.size(), 1u);
  EXPECT_EQ(pred[0].shape(), (Dims{kSamples, kClasses}));
}

// An autoencoder whose call adds its reconstruction error with add_loss: Keras's fit(x) without y
// trains it (compiled without a loss), on tensors, on a dataset of x alone and by train_on_batch.
class AutoEncoder : public kiln::Model {
 public:
  AutoEncoder() : Model("AutoEncoder") {
    encode_ = track(kiln::layers::Dense(2, "tanh"));
    decode_ = track(kiln::layers::Dense(kFeatures));
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    Tensor out = decode_(encode_(x[0], training), training);
    add_loss(kiln::mean(kiln::square(out - x[0])));
    return {out};
  }

 private:
  kiln::Layer encode_, decode_;
};

TEST(HppTraining, FitWithoutTargetsOnAddLoss) {
  kiln::clear_session();
  kiln::set_seed(6);
  Problem p = problem();
  AutoEncoder model;
  model.compile(kiln::CompileOptions().with_optimizer(kiln::optimizers::Adam(0.05)));
  auto reconstruction = [&] {
    const Tensor out = model.predict(p.x, kiln::PredictOptions().with_verbose(0));
    return kiln::mean(kiln::square(out - p.x)).item<float>();
  };
  kiln::History h = model.fit(p.x, kiln::FitOptions().with_epochs(5).with_batch_size(8).with_verbose(0));
  const auto logs = h.history();
  ASSERT_EQ(logs.at("loss").size(), 5u);
  EXPECT_LT(logs.at("loss").back(), logs.at("loss").front());
  // evaluate(x) is the reconstruction error (one batch: the whole set).
  const double eval =
      model.evaluate(p.x, kiln::EvaluateOptions().with_verbose(0).with_batch_size(kSamples)).at("loss");
  EXPECT_NEAR(eval, reconstruction(), 1e-5);
  EXPECT_NEAR(model.test_on_batch(p.x, Tensor()).at("loss"), eval, 1e-5);
  const double before = reconstruction();
  auto ds = kiln::data::Dataset::from_tensor_slices({p.x}).batch(10);
  model.fit(ds, kiln::FitOptions().with_epochs(3).with_verbose(0));
  for (int i = 0; i < 3; ++i) model.train_on_batch(p.x, Tensor());
  EXPECT_LT(reconstruction(), before);

  // A compiled loss needs y: the error names it.
  model.compile(kiln::optimizers::Adam(0.05), "mse");
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "no y given, but the compiled loss",
              [&] { model.fit(p.x, kiln::FitOptions().with_verbose(0)); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "no y given",
              [&] { model.fit(ds, kiln::FitOptions().with_verbose(0)); });
}

// A Model subclass's default train_step differentiates optimizer.scale_loss(loss), as Keras's: a
// power-of-two loss_scale_factor trains exactly as without.
TEST(HppTraining, ModelSubclassTrainStepScalesTheLoss) {
  Problem p = problem();
  auto train = [&](const kiln::optimizers::Optimizer &o) {
    kiln::clear_session();
    kiln::set_seed(5);
    PlainModel model;
    model.compile(o, logits_loss());
    model.fit(p.x, p.y,
              kiln::FitOptions().with_epochs(2).with_batch_size(8).with_verbose(0).with_shuffle(false));
    std::vector<std::vector<float>> out;
    for (const kiln::Variable &v : model.trainable_variables()) out.push_back(v.value().to_vector<float>());
    return out;
  };
  kiln::optimizers::SGDOptions scaled;
  scaled.loss_scale_factor = 64.0;
  const auto a = train(kiln::optimizers::SGD(0.1, scaled)), b = train(kiln::optimizers::SGD(0.1));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

// Two outputs, a loss each: the std::vector forms of fit and predict.
class TwoOutputs : public kiln::Model {
 public:
  TwoOutputs() : Model("TwoOutputs") {
    scores_ = track(kiln::layers::Dense(kClasses));
    value_ = track(kiln::layers::Dense(1));
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {scores_(x[0], training), value_(x[0], training)};
  }

 private:
  kiln::Layer scores_, value_;
};

TEST(HppTraining, TwoOutputsWithALossEach) {
  kiln::clear_session();
  kiln::set_seed(7);
  Problem p = problem();
  Tensor target = kiln::matmul(p.x, Tensor::from_vector({2.f, 0.f, 0.f, 0.f}, {kFeatures, 1}));
  TwoOutputs model;
  model.compile(kiln::CompileOptions()
                    .with_optimizer("adam")
                    .with_losses(std::vector<kiln::Loss>{logits_loss(), kiln::losses::MeanSquaredError()})
                    .with_loss_weights({1.0, 0.5}));
  kiln::History h =
      model.fit({p.x}, {p.y, target}, kiln::FitOptions().with_epochs(2).with_batch_size(10).with_verbose(0));
  EXPECT_EQ(h.history().at("loss").size(), 2u);
  // Keras's individual loss trackers: each output's loss before its weight.
  EXPECT_EQ(model.metrics_names(), (std::vector<std::string>{"loss", "output_1_loss", "output_2_loss"}));
  const std::map<std::string, double> logs = model.test_on_batch({p.x}, {p.y, target});
  EXPECT_NEAR(logs.at("loss"), logs.at("output_1_loss") + 0.5 * logs.at("output_2_loss"), 1e-5);
  EXPECT_GT(logs.at("output_2_loss"), 0.0);
  std::vector<Tensor> out = model.predict(std::vector<Tensor>{p.x}, kiln::PredictOptions().with_verbose(0));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape(), (Dims{kSamples, kClasses}));
  EXPECT_EQ(out[1].shape(), (Dims{kSamples, 1}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "2 outputs",
              [&] { model.predict(p.x, kiln::PredictOptions().with_verbose(0)); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "",
              [&] { model.fit(p.x, p.y, kiln::FitOptions().with_verbose(0)); });
}

// The seed's custom loop: a GradientTape over a shuffled, batched Dataset, a Mean metric of the
// loss reset every epoch.
TEST(HppTraining, GradientTapeLoopOverDatasetWithMeanMetric) {
  kiln::clear_session();
  kiln::set_seed(6);
  Problem p = problem();
  kiln::Sequential model = classifier();
  kiln::Optimizer opt = kiln::optimizers::Adam(0.02);
  kiln::Loss loss_fn = logits_loss();
  kiln::Metric train_loss = kiln::metrics::Mean("train_loss");
  auto ds = kiln::data::Dataset::from_tensor_slices({p.x, p.y}).shuffle(kSamples, 3).batch(8);
  std::vector<double> epoch_losses;
  for (int epoch = 0; epoch < 3; ++epoch) {
    train_loss.reset_state();
    for (const kiln::data::Element &batch : ds) {
      kiln::GradientTape tape;
      Tensor logits = model(batch[0], true);
      Tensor loss = loss_fn(batch[1], logits);
      tape.stop();
      std::vector<kiln::Variable> vars = model.trainable_variables();
      opt.apply_gradients(tape.gradient(loss, vars), vars);
      train_loss.update_state_values(loss);
    }
    epoch_losses.push_back(static_cast<double>(train_loss.result().item<float>()));
  }
  EXPECT_LT(epoch_losses.back(), epoch_losses.front());
  EXPECT_EQ(opt.iterations(), 15);
}

TEST(HppTraining, BadInputIsAnError) {
  kiln::clear_session();
  Problem p = problem(10);
  kiln::Sequential model = classifier();
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "compile", [&] { model.fit(p.x, p.y); });
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "compile", [&] { model.optimizer(); });
  expect_code(KILN_STATUS_NOT_FOUND, "no_such_loss", [&] { model.compile("adam", "no_such_loss"); });
  expect_code(KILN_STATUS_NOT_FOUND, "no_such_optimizer", [&] { model.compile("no_such_optimizer", "mse"); });
  EXPECT_FALSE(model.is_compiled());
  model.compile("adam", logits_loss());
  Tensor short_y = Tensor::from_vector(std::vector<int32_t>{0, 1, 2}, {3});
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "",
              [&] { model.fit(p.x, short_y, kiln::FitOptions().with_verbose(0)); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "validation_split",
              [&] { model.fit(p.x, p.y, kiln::FitOptions().with_verbose(0).with_validation_split(1.5)); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "not a model", [&] { kiln::Model m(kiln::layers::Dense(2)); });
}

// A communicator over a caller's transport (Communicator::create): here rank 0 of two whose peer
// holds the same values, so a sum doubles them. fit runs data-parallel over it and calls its
// allreduce; an exception from the transport comes out of fit with its message.
TEST(HppTraining, CommunicatorOverCallersTransport) {
  kiln::clear_session();
  kiln::set_seed(3);
  Problem p = problem(24);
  int sums = 0, broadcasts = 0;
  bool fail = false;
  auto twice = [](auto *v, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] += v[i];
  };
  kiln::Communicator comm = kiln::Communicator::create(
      0, 2,
      [&](void *data, size_t count, kiln::DType dtype) {
        if (fail) throw std::runtime_error("the network is down");
        if (dtype == kiln::DType::float32)
          twice(static_cast<float *>(data), count);
        else if (dtype == kiln::DType::float64)
          twice(static_cast<double *>(data), count);
        else if (dtype == kiln::DType::int64)
          twice(static_cast<int64_t *>(data), count);
        else if (dtype == kiln::DType::int32)
          twice(static_cast<int32_t *>(data), count);
        else
          throw std::runtime_error("unexpected dtype");
        ++sums;
      },
      [&](void *, size_t, int root) {
        EXPECT_EQ(root, 0);
        ++broadcasts;
      });
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 2);
  kiln::Sequential model = classifier();
  model.compile("sgd", "sparse_categorical_crossentropy");
  kiln::History h = model.fit(
      p.x, p.y, kiln::FitOptions().with_epochs(1).with_batch_size(8).with_verbose(0).with_distribution(comm));
  EXPECT_GT(sums, 0);
  EXPECT_TRUE(std::isfinite(h.history().at("loss").at(0)));
  comm.broadcast_variables(model.weights());
  EXPECT_GT(broadcasts, 0);
  fail = true;
  expect_code(KILN_STATUS_INTERNAL, "the network is down", [&] {
    model.fit(p.x, p.y,
              kiln::FitOptions().with_epochs(1).with_batch_size(8).with_verbose(0).with_distribution(comm));
  });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "rank", [&] {
    kiln::Communicator::create(
        2, 2, [](void *, size_t, kiln::DType) {}, [](void *, size_t, int) {});
  });
}

// Progress and warnings through C++ functions instead of stdout and stderr.
TEST(HppTraining, ProgressAndWarningCallbacks) {
  kiln::clear_session();
  Problem p = problem(24);
  std::string progress, warnings;
  kiln::set_progress_callback([&](const std::string &t) { progress += t; });
  kiln::set_warning_callback([&](const std::string &t) { warnings += t; });
  kiln::Sequential model = classifier();
  model.compile("sgd", "sparse_categorical_crossentropy");
  kiln::callbacks::EarlyStoppingOptions es;
  es.monitor = "val_nothing";
  es.mode = "min";
  model.fit(p.x, p.y,
            kiln::FitOptions().with_epochs(1).with_batch_size(8).with_verbose(2).with_callbacks(
                {kiln::callbacks::EarlyStopping(es)}));
  kiln::set_progress_callback(nullptr);
  kiln::set_warning_callback(nullptr);
  EXPECT_NE(progress.find("3/3 - "), std::string::npos) << progress;  // verbose 2: one line an epoch
  EXPECT_NE(warnings.find("val_nothing"), std::string::npos) << warnings;
  const size_t seen = progress.size();
  model.fit(p.x, p.y, kiln::FitOptions().with_epochs(1).with_batch_size(8).with_verbose(2));
  EXPECT_EQ(progress.size(), seen);  // restored: the line goes to stdout, not to the function
}

}  // namespace
