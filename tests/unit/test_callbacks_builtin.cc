// The built-in Keras callbacks (callbacks_monitor.cc, callbacks_basic.cc, callbacks_builtin.cc)
// driven through a CallbackList with logs fed by hand, a Dense layer as the model and a real
// optimizer in its training state: EarlyStopping's patience, baseline, start_from_epoch and
// restore_best_weights; ReduceLROnPlateau's cooldown and min_lr; LearningRateScheduler;
// CSVLogger's file as Keras writes it; TerminateOnNaN; LambdaCallback; configs by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "layers/layer.h"
#include "ops/ops.h"
#include "test_util.h"
#include "train/callbacks.h"
#include "train/progbar.h"
#include "train/training_state.h"

namespace kiln::train {
namespace {

using testing::expect_error;

class Builtin : public ::testing::Test {
 protected:
  void SetUp() override {
    model = layers::create_layer("Dense", Config().set("units", int64_t{2}));
    model->build({{layers::kUnknownDim, 3}});
    optimizer = make_optimizer("SGD", Config().set("learning_rate", 0.1));
    training_state(*model)->optimizer = optimizer;
    set_progress_sink([this](const std::string &s) { printed += s; });
    set_callback_warning_sink([this](const std::string &s) { warnings += s + "\n"; });
  }
  void TearDown() override {
    set_progress_sink(nullptr);
    set_callback_warning_sink(nullptr);
  }
  bool stopped() const { return training_state(*model)->stop_training.load(); }
  // Sets every element of every model variable to value (a stand-in for an epoch of training).
  void fill_weights(float value) {
    for (const VariablePtr &v : model->variables()) {
      std::vector<float> data(static_cast<size_t>(v->shape().num_elements()), value);
      v->assign(testing::make(v->shape(), data));
    }
  }
  float first_weight() const { return model->variables()[0]->peek().data<float>()[0]; }
  // Runs train begin, then one epoch per value of `monitor` (stopping as fit would), then train
  // end; returns the number of epochs run.
  int64_t run(CallbackList &list, const std::string &monitor, const std::vector<double> &values,
              bool change_weights = false) {
    training_state(*model)->stop_training = false;  // as fit does
    Logs begin;
    list.on_train_begin(begin);
    int64_t e = 0;
    for (; e < static_cast<int64_t>(values.size()) && !stopped(); ++e) {
      Logs logs;
      list.on_epoch_begin(e, logs);
      if (change_weights) fill_weights(static_cast<float>(e));
      logs.set("loss", 1.0);
      logs.set(monitor, values[static_cast<size_t>(e)]);
      list.on_epoch_end(e, logs);
    }
    Logs end;
    list.on_train_end(end);
    return e;
  }
  CallbackList list_of(const CallbackPtr &cb) {
    return CallbackList({cb}, false, false, model, CallbackParams());
  }

  layers::LayerPtr model;
  OptimizerPtr optimizer;
  std::string printed, warnings;
};

TEST_F(Builtin, EarlyStoppingWaitsPatienceEpochs) {
  EarlyStoppingOptions o;
  o.patience = 2;
  CallbackPtr es = make_early_stopping(o);
  CallbackList list = list_of(es);
  // improves at 0 and 1, then two epochs without: stops after epoch 3.
  EXPECT_EQ(run(list, "val_loss", {1.0, 0.8, 0.9, 0.85, 0.7}), 4);
  EXPECT_TRUE(stopped());
  const Config a = es->attributes();
  EXPECT_EQ(a.get_int("stopped_epoch"), 3);
  EXPECT_EQ(a.get_int("best_epoch"), 1);
  EXPECT_DOUBLE_EQ(a.get_float("best"), 0.8);
  EXPECT_EQ(printed, "");  // verbose 0
}

TEST_F(Builtin, EarlyStoppingMinDeltaModeAndNeverAtEpochZero) {
  EarlyStoppingOptions o;
  o.monitor = "val_accuracy";  // auto: maximized
  o.min_delta = 0.05;
  o.verbose = 1;
  CallbackList list = list_of(make_early_stopping(o));
  // 0.52 is not 0.05 better than 0.5: stops at epoch 1 (patience 0).
  EXPECT_EQ(run(list, "val_accuracy", {0.5, 0.52, 0.9}), 2);
  EXPECT_EQ(printed, "Epoch 2: early stopping\n");
  o.monitor = "val_loss";
  o.min_delta = 0.0;
  CallbackList zero = list_of(make_early_stopping(o));
  EXPECT_EQ(run(zero, "val_loss", {0.5}), 1);
  EXPECT_FALSE(stopped());  // epoch 0 never stops
}

TEST_F(Builtin, EarlyStoppingBaselineAndStartFromEpoch) {
  EarlyStoppingOptions o;
  o.patience = 2;
  o.baseline = 0.5;
  CallbackPtr with_baseline = make_early_stopping(o);
  CallbackList list = list_of(with_baseline);
  // 0.6 is the best so far but not better than the baseline, so the wait keeps counting.
  EXPECT_EQ(run(list, "val_loss", {0.6, 0.7, 0.7}), 2);
  EXPECT_EQ(with_baseline->attributes().get_int("stopped_epoch"), 1);
  o.baseline.reset();
  CallbackPtr without = make_early_stopping(o);
  CallbackList list2 = list_of(without);
  EXPECT_EQ(run(list2, "val_loss", {0.6, 0.7, 0.7}), 3);
  EXPECT_EQ(without->attributes().get_int("stopped_epoch"), 2);
  o.patience = 0;
  o.start_from_epoch = 2;
  CallbackList late = list_of(make_early_stopping(o));
  EXPECT_EQ(run(late, "val_loss", {0.1, 0.9, 0.9, 0.95}), 4);  // watches from epoch 2: stops at 3
  EXPECT_TRUE(stopped());
}

TEST_F(Builtin, EarlyStoppingRestoresTheBestWeightsAtTrainEnd) {
  EarlyStoppingOptions o;
  o.patience = 1;
  o.restore_best_weights = true;
  o.verbose = 1;
  CallbackList list = list_of(make_early_stopping(o));
  // weights are set to the epoch number during each epoch; the best epoch is 1.
  EXPECT_EQ(run(list, "val_loss", {0.9, 0.3, 0.5, 0.4}, /*change_weights=*/true), 3);
  for (const VariablePtr &v : model->variables()) {
    const Tensor t = v->peek();
    for (int64_t i = 0; i < t.shape().num_elements(); ++i) EXPECT_EQ(t.data<float>()[i], 1.0f) << v->name();
  }
  EXPECT_NE(printed.find("Restoring model weights from the end of the best epoch: 2."), std::string::npos)
      << printed;
  // Keras 3 also restores when training ran to the end.
  o.patience = 10;
  o.verbose = 0;
  CallbackList full = list_of(make_early_stopping(o));
  EXPECT_EQ(run(full, "val_loss", {0.9, 0.2, 0.5}, true), 3);
  EXPECT_EQ(first_weight(), 1.0f);
}

TEST_F(Builtin, EarlyStoppingWarnsWhenTheMonitorIsMissing) {
  CallbackList list = list_of(make_early_stopping());
  EXPECT_EQ(run(list, "val_los", {1.0, 2.0, 3.0}), 3);
  EXPECT_FALSE(stopped());
  EXPECT_NE(warnings.find(
                "Early stopping conditioned on metric `val_loss` which is not available. Available metrics "
                "are: loss,val_los"),
            std::string::npos)
      << warnings;
}

TEST_F(Builtin, MonitorModeErrors) {
  EarlyStoppingOptions o;
  o.mode = "maximum";
  expect_error([&] { make_early_stopping(o); }, Code::kInvalidArgument,
               {"maximum", "'auto', 'min' or 'max'"});
  o.mode = "auto";
  o.monitor = "val_custom_score";
  expect_error([&] { make_early_stopping(o); }, Code::kInvalidArgument, {"val_custom_score", "mode='max'"});
  o.mode = "max";
  EXPECT_TRUE(make_early_stopping(o));
  for (const char *down : {"val_mean_absolute_error", "mse", "val_sparse_categorical_crossentropy"}) {
    o.monitor = down;
    o.mode = "auto";
    EXPECT_TRUE(make_early_stopping(o)) << down;
  }
  // Without a model, stopping is a clear error rather than a crash.
  CallbackPtr es = make_early_stopping();
  Logs logs;
  logs.set("val_loss", 1.0);
  es->on_train_begin(logs);
  es->on_epoch_end(0, logs);
  logs.set("val_loss", 2.0);
  expect_error([&] { es->on_epoch_end(1, logs); }, Code::kFailedPrecondition, {"EarlyStopping", "no model"});
}

TEST_F(Builtin, ReduceLROnPlateauCooldownAndMinLr) {
  ReduceLROnPlateauOptions o;
  o.factor = 0.5;
  o.patience = 1;
  o.cooldown = 1;
  o.min_lr = 0.02;
  o.verbose = 1;
  CallbackPtr cb = make_reduce_lr_on_plateau(o);
  CallbackList list = list_of(cb);
  Logs begin;
  list.on_train_begin(begin);
  std::vector<double> seen_lr;
  for (int64_t e = 0; e < 6; ++e) {
    Logs logs;
    logs.set("val_loss", 1.0);
    cb->on_epoch_end(e, logs);  // directly: a CallbackList hands its callbacks a copy
    seen_lr.push_back(logs.get("learning_rate").value_or(-1));
  }
  // no improvement after epoch 0: reduce at 1, cooldown at 2 then reduce, 3 reduce to min_lr, then stay.
  const std::vector<double> expected = {0.1, 0.1, 0.05, 0.025, 0.02, 0.02};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(seen_lr[i], expected[i], 1e-12) << i;
  EXPECT_NEAR(optimizer->learning_rate(), 0.02, 1e-12);
  EXPECT_NE(printed.find("\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.05.\n"), std::string::npos)
      << printed;
  EXPECT_EQ(cb->attributes().get_int("cooldown_counter"), 0);
}

TEST_F(Builtin, ReduceLROnPlateauImprovementResetsWaitAndErrors) {
  ReduceLROnPlateauOptions o;
  o.patience = 2;
  CallbackList list = list_of(make_reduce_lr_on_plateau(o));
  run(list, "val_loss", {1.0, 1.0, 0.5, 0.5});  // wait 1, reset, wait 1: never 2
  EXPECT_NEAR(optimizer->learning_rate(), 0.1, 1e-12);
  run(list, "val_loss", {1.0, 1.0, 1.0});
  EXPECT_NEAR(optimizer->learning_rate(), 0.01, 1e-12);

  o.factor = 1.0;
  expect_error([&] { make_reduce_lr_on_plateau(o); }, Code::kInvalidArgument, {"factor >= 1.0"});
  // A learning-rate schedule cannot be reduced (Keras's TypeError).
  o.factor = 0.1;
  o.patience = 0;
  Config sched;
  sched.set("class_name", "ExponentialDecay")
      .set("config",
           Config().set("initial_learning_rate", 0.1).set("decay_steps", int64_t{10}).set("decay_rate", 0.5));
  training_state(*model)->optimizer = make_optimizer("SGD", Config().set("learning_rate", sched));
  CallbackList with_schedule = list_of(make_reduce_lr_on_plateau(o));
  expect_error([&] { run(with_schedule, "val_loss", {1.0, 1.0}); }, Code::kFailedPrecondition, {"schedule"});
  training_state(*model)->optimizer = nullptr;
  CallbackList no_optimizer = list_of(make_reduce_lr_on_plateau(o));
  expect_error([&] { run(no_optimizer, "val_loss", {1.0}); }, Code::kFailedPrecondition,
               {"ReduceLROnPlateau", "optimizer", "compile"});
}

TEST_F(Builtin, LearningRateSchedulerSetsAndLogsTheRate) {
  std::vector<std::pair<int64_t, double>> calls;
  CallbackPtr cb = make_learning_rate_scheduler(
      [&](int64_t epoch, double lr) {
        calls.emplace_back(epoch, lr);
        return epoch < 1 ? lr : lr * 0.5;
      },
      /*verbose=*/1);
  CallbackList list = list_of(cb);
  std::vector<double> logged;
  for (int64_t e = 0; e < 3; ++e) {
    Logs logs;
    list.on_epoch_begin(e, logs);
    cb->on_epoch_end(e, logs);  // directly: a CallbackList hands its callbacks a copy
    logged.push_back(logs.get("learning_rate").value_or(-1));
  }
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[2].first, 2);
  EXPECT_NEAR(calls[2].second, 0.05, 1e-12);
  EXPECT_NEAR(logged[0], 0.1, 1e-12);
  EXPECT_NEAR(logged[2], 0.025, 1e-12);
  EXPECT_NE(printed.find("\nEpoch 3: LearningRateScheduler setting learning rate to 0.025.\n"),
            std::string::npos)
      << printed;

  CallbackList bad = list_of(make_learning_rate_scheduler([](int64_t, double) { return std::nan(""); }));
  Logs logs;
  expect_error([&] { bad.on_epoch_begin(0, logs); }, Code::kInvalidArgument,
               {"LearningRateScheduler", "nan"});
  expect_error([] { make_learning_rate_scheduler(nullptr); }, Code::kInvalidArgument, {"schedule"});
  expect_error([] { create_callback("LearningRateScheduler"); }, Code::kInvalidArgument,
               {"schedule function", "kiln_callback_create_lr_scheduler"});
}

std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST_F(Builtin, CSVLoggerWritesAsKeras) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "kiln_csv_logger_test.csv").string();
  std::remove(path.c_str());
  Config c;
  c.set("filename", path);
  CallbackPtr cb = create_callback("CSVLogger", c);
  CallbackList list = list_of(cb);
  Logs begin;
  list.on_train_begin(begin);
  for (int64_t e = 0; e < 2; ++e) {
    Logs logs;
    logs.set("loss", 0.25 / static_cast<double>(e + 1));
    logs.set("accuracy", 0.5);
    if (e == 1) logs.set("val_loss", 1e-5);
    list.on_epoch_end(e, logs);
    if (e == 0) {
      EXPECT_EQ(read_file(path), "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,0.25,NA,NA\r\n");
    }
  }
  list.on_train_end(begin);
  EXPECT_EQ(read_file(path),
            "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,0.25,NA,NA\r\n1,0.5,0.125,NA,1e-05\r\n");

  // append: no second header; a separator of the user's choice; keys with it are quoted.
  CallbackList again = list_of(make_csv_logger(path, ",", true));
  again.on_train_begin(begin);
  Logs logs;
  logs.set("loss", 2.0);
  again.on_epoch_end(0, logs);
  again.on_train_end(begin);
  EXPECT_EQ(read_file(path),
            "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,0.25,NA,NA\r\n1,0.5,0.125,NA,1e-05\r\n0,2.0,"
            "NA\r\n");

  CallbackList semi = list_of(make_csv_logger(path, ";"));
  semi.on_train_begin(begin);
  Logs odd;
  odd.set("a;b", 3.0);
  odd.set("val_loss", 0.5);
  semi.on_epoch_end(0, odd);
  semi.on_train_end(begin);
  EXPECT_EQ(read_file(path), "epoch;\"a;b\";val_loss\r\n0;3.0;0.5\r\n");
  std::remove(path.c_str());

  CallbackList missing = list_of(make_csv_logger("/nonexistent-dir/x.csv"));
  expect_error([&] { missing.on_train_begin(begin); }, Code::kNotFound,
               {"CSVLogger", "/nonexistent-dir/x.csv"});
  expect_error([] { create_callback("CSVLogger"); }, Code::kInvalidArgument, {"filename"});
  expect_error([&] { make_csv_logger(path, "::"); }, Code::kInvalidArgument, {"separator"});
}

TEST_F(Builtin, TerminateOnNaNStopsOrRaises) {
  CallbackList list = list_of(create_callback("TerminateOnNaN"));
  Logs logs;
  logs.set("loss", 0.5);
  list.on_train_batch_end(0, logs);
  EXPECT_FALSE(stopped());
  logs.set("loss", std::numeric_limits<double>::infinity());
  list.on_train_batch_end(1, logs);
  EXPECT_TRUE(stopped());
  EXPECT_EQ(printed, "Batch 1: Invalid loss, terminating training\n");
  CallbackList raising = list_of(create_callback("TerminateOnNaN", Config().set("raise_error", true)));
  logs.set("loss", std::nan(""));
  expect_error([&] { raising.on_train_batch_end(4, logs); }, Code::kFailedPrecondition, {"batch 4", "nan"});
}

TEST_F(Builtin, LambdaCallbackCallsItsHooks) {
  std::vector<std::string> trace;
  LambdaHooks h;
  h.on_train_begin = [&](Logs &) { trace.push_back("train_begin"); };
  h.on_epoch_end = [&](int64_t e, Logs &logs) {
    trace.push_back("epoch_end" + std::to_string(e));
    logs.set("seen", 1.0);
  };
  h.on_train_batch_end = [&](int64_t b, Logs &) { trace.push_back("batch_end" + std::to_string(b)); };
  CallbackPtr lambda = make_lambda_callback(h);
  CallbackList list = list_of(lambda);
  Logs logs;
  list.on_train_begin(logs);
  list.on_epoch_begin(0, logs);
  list.on_train_batch_begin(0, logs);
  list.on_train_batch_end(0, logs);
  list.on_epoch_end(0, logs);
  list.on_train_end(logs);
  EXPECT_EQ(trace, (std::vector<std::string>{"train_begin", "batch_end0", "epoch_end0"}));
  EXPECT_FALSE(logs.contains("seen"));  // the list's callbacks share a copy; the caller's logs stay
  lambda->on_epoch_end(0, logs);        // called directly, a hook changes the logs it is given
  EXPECT_TRUE(logs.contains("seen"));
  EXPECT_TRUE(create_callback("LambdaCallback"));
}

// SwapEMAWeights: evaluation and prediction see the moving averages and give the weights back;
// with swap_on_epoch the averages stay in from an epoch's end to the next epoch's begin, and after
// the last epoch the averages take the model's values (so fit's finalize leaves the averages in).
TEST_F(Builtin, SwapEMAWeightsSwapsForEvaluationAndBetweenEpochs) {
  optimizer =
      make_optimizer("SGD", Config().set("learning_rate", 0.1).set("use_ema", true).set("ema_momentum", 0.5));
  training_state(*model)->optimizer = optimizer;
  const std::vector<VariablePtr> vars = model->trainable_variables();
  std::vector<Tensor> grads;
  for (const VariablePtr &v : vars) grads.push_back(ops::ones(v->shape()));
  optimizer->apply_gradients(grads, vars);
  optimizer->apply_gradients(grads, vars);
  auto weights = [&] {
    std::vector<std::vector<float>> out;
    for (const VariablePtr &v : vars) out.push_back(testing::values(v->peek()));
    return out;
  };
  auto averages = [&] {
    std::vector<std::vector<float>> out;
    for (const VariablePtr &v : vars)
      out.push_back(testing::values(optimizer->slot(v->id(), "average")->peek()));
    return out;
  };
  const auto w = weights(), a = averages();
  ASSERT_NE(w, a);
  CallbackParams params;
  params.epochs = 2;
  CallbackList list({create_callback("SwapEMAWeights")}, false, false, model, params);
  Logs logs;
  list.on_test_begin(logs);
  EXPECT_EQ(weights(), a);
  EXPECT_EQ(averages(), w);
  list.on_test_end(logs);
  EXPECT_EQ(weights(), w);
  list.on_predict_begin(logs);
  EXPECT_EQ(weights(), a);
  list.on_predict_end(logs);  // Keras never swaps back here; kiln does
  EXPECT_EQ(weights(), w);

  CallbackList epochs({create_callback("SwapEMAWeights", Config().set("swap_on_epoch", true))}, false, false,
                      model, params);
  epochs.on_epoch_begin(0, logs);
  epochs.on_epoch_end(0, logs);
  EXPECT_EQ(weights(), a);
  epochs.on_test_begin(logs);  // already in: nothing moves
  EXPECT_EQ(weights(), a);
  epochs.on_test_end(logs);
  EXPECT_EQ(weights(), w);
  epochs.on_epoch_end(0, logs);
  epochs.on_epoch_begin(1, logs);
  EXPECT_EQ(weights(), w);
  epochs.on_epoch_end(1, logs);  // the last epoch
  EXPECT_EQ(weights(), a);
  EXPECT_EQ(averages(), a);

  // Without use_ema it names the setting.
  training_state(*model)->optimizer = make_optimizer("SGD", Config());
  expect_error([&] { list.on_test_begin(logs); }, Code::kInvalidArgument, {"SwapEMAWeights", "use_ema=True"});
}

TEST(CallbackConfigs, ByNameWithKerasKeys) {
  Config es;
  es.set("monitor", "loss")
      .set("patience", int64_t{3})
      .set("baseline", 0.5)
      .set("restore_best_weights", true);
  EXPECT_EQ(create_callback("EarlyStopping", es)->class_name(), "EarlyStopping");
  Config none;
  none.set_null("baseline");
  EXPECT_TRUE(create_callback("EarlyStopping", none));
  Config rl;
  rl.set("factor", 0.2).set("min_lr", 1e-5).set("cooldown", int64_t{2});
  EXPECT_EQ(create_callback("ReduceLROnPlateau", rl)->class_name(), "ReduceLROnPlateau");
  for (const char *name : {"EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "LambdaCallback"})
    expect_error([&] { create_callback(name, Config().set("patiense", int64_t{1})); }, Code::kInvalidArgument,
                 {"patiense"});
  const std::vector<std::string> names = registered_callbacks();
  for (const char *n : {"CSVLogger", "EarlyStopping", "History", "LambdaCallback", "LearningRateScheduler",
                        "ProgbarLogger", "ReduceLROnPlateau", "SwapEMAWeights", "TerminateOnNaN"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

TEST(PythonFloatRepr, AsPythonPrintsFloats) {
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(3.0), "3.0");
  EXPECT_EQ(python_float_repr(-2.5), "-2.5");
  EXPECT_EQ(python_float_repr(1e-5), "1e-05");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(1.5e16), "1.5e+16");
  EXPECT_EQ(python_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(python_float_repr(123.456), "123.456");
  EXPECT_EQ(python_float_repr(0.0), "0.0");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(std::nan("")), "nan");
  EXPECT_EQ(python_float_repr(-INFINITY), "-inf");
  EXPECT_EQ(python_float_repr(1.25e-7), "1.25e-07");
  EXPECT_EQ(python_float_repr(1e100), "1e+100");
}

}  // namespace
}  // namespace kiln::train
