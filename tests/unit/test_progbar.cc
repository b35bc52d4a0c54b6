// Keras's progress bar (src/train/progbar.h): the TF 2.x bar text, ETA and per-step time
// formats, verbose 2's one line per epoch, weighted averages of non-stateful values, and the
// ProgbarLogger callback inside a CallbackList (text captured through the progress sink, time
// from a fake clock).
#include <gtest/gtest.h>

#include "test_util.h"
#include "train/callbacks.h"
#include "train/progbar.h"

namespace kiln::train {
namespace {

class Captured : public ::testing::Test {
 protected:
  void SetUp() override {
    set_progress_sink([this](const std::string &s) { text += s; });
    set_progress_clock([this] { return now; });
  }
  void TearDown() override {
    set_progress_sink(nullptr);
    set_progress_clock(nullptr);
  }
  std::string text;
  double now = 0.0;
};

TEST(ProgbarFormat, EtaAndTimePerUnit) {
  EXPECT_EQ(progbar_eta(3.7), "3s");
  EXPECT_EQ(progbar_eta(65), "1:05");
  EXPECT_EQ(progbar_eta(3665), "1:01:05");
  EXPECT_EQ(progbar_time_per_unit(2.0, "step"), " 2s/step");
  EXPECT_EQ(progbar_time_per_unit(0.006, "step"), " 6ms/step");
  EXPECT_EQ(progbar_time_per_unit(0.00095, "step"), " 950us/step");
  EXPECT_EQ(progbar_time_per_unit(0.0, "sample"), " 0s/sample");
}

TEST_F(Captured, VerboseOneBarThenFinalLine) {
  Progbar bar(10);
  now = 0.1;
  bar.update(1, {{"loss", 0.5}});
  EXPECT_EQ(text, " 1/10 [==>...........................] - ETA: 0s - loss: 0.5000");
  text.clear();
  now = 1.0;
  bar.update(10, {{"loss", 0.3}});
  // Off a terminal each redraw starts on a new line; the loss is averaged over the 10 steps,
  // the second value counting for the 9 steps it covers.
  EXPECT_EQ(text, "\n10/10 [==============================] - 1s 100ms/step - loss: 0.3200\n");
}

TEST_F(Captured, IntervalSkipsRedrawsAndSmallValuesUseExponents) {
  Progbar bar(4, 30, 1, 0.05, {"acc"});
  now = 0.01;
  bar.update(1, {{"acc", 0.0001}});
  EXPECT_NE(text.find("acc: 1.0000e-04"), std::string::npos) << text;
  text.clear();
  now = 0.02;  // within the interval: nothing
  bar.update(2, {{"acc", 0.5}});
  EXPECT_EQ(text, "");
  now = 0.2;
  bar.update(4, {{"acc", 0.75}});  // stateful: shown as given
  EXPECT_NE(text.find("4/4 [==============================]"), std::string::npos) << text;
  EXPECT_NE(text.find("acc: 0.7500\n"), std::string::npos) << text;
}

TEST_F(Captured, VerboseTwoPrintsOnlyTheLastLine) {
  Progbar bar(10, 30, 2);
  now = 0.5;
  bar.update(5, {{"loss", 1.0}});
  EXPECT_EQ(text, "");
  now = 1.0;
  bar.update(10, {{"loss", 0.5}});
  EXPECT_EQ(text, "10/10 - 1s - 100ms/step - loss: 0.7500\n");
}

TEST_F(Captured, UnknownTargetAndVerboseZero) {
  Progbar unknown(-1);
  now = 1.0;
  unknown.update(3, {});
  EXPECT_EQ(text, "      3/Unknown - 1s 333ms/step");
  text.clear();
  Progbar silent(10, 30, 0);
  silent.update(10, {{"loss", 1.0}});
  EXPECT_EQ(text, "");
}

TEST_F(Captured, ProgbarLoggerInFit) {
  CallbackParams params;
  params.verbose = 2;
  params.epochs = 2;
  params.steps = 3;
  CallbackList list({}, true, /*add_progbar=*/true, nullptr, params);
  ASSERT_EQ(list.callbacks().size(), 2u);
  EXPECT_EQ(list.callbacks()[1]->class_name(), "ProgbarLogger");
  Logs logs;
  list.on_train_begin(logs);
  for (int64_t e = 0; e < 2; ++e) {
    list.on_epoch_begin(e, logs);
    for (int64_t b = 0; b < 3; ++b) {
      now += 0.25;
      Logs batch_logs;
      batch_logs.set("loss", 1.0 / static_cast<double>(b + 1));  // running means: shown as given
      list.on_train_batch_begin(b, batch_logs);
      list.on_train_batch_end(b, batch_logs);
    }
    Logs test_logs;
    list.on_test_begin(test_logs);  // validation inside fit prints nothing
    list.on_test_batch_end(0, test_logs);
    list.on_test_end(test_logs);
    Logs epoch_logs;
    epoch_logs.set("loss", 0.5);
    epoch_logs.set("val_loss", 0.25);
    list.on_epoch_end(e, epoch_logs);
  }
  list.on_train_end(logs);
  EXPECT_EQ(text,
            "Epoch 1/2\n3/3 - 1s - 250ms/step - loss: 0.5000 - val_loss: 0.2500\n"
            "Epoch 2/2\n3/3 - 1s - 250ms/step - loss: 0.5000 - val_loss: 0.2500\n");
}

TEST_F(Captured, ProgbarLoggerLearnsAnUnknownStepCount) {
  CallbackParams params;
  params.verbose = 2;
  params.epochs = 1;
  params.steps = -1;
  CallbackList list({}, false, true, nullptr, params);
  Logs logs;
  list.on_train_begin(logs);
  list.on_epoch_begin(0, logs);
  for (int64_t b = 0; b < 4; ++b) list.on_train_batch_end(b, logs);
  list.on_epoch_end(0, logs);
  EXPECT_EQ(text, "4/4 - 0s - 0s/step\n");
}

}  // namespace
}  // namespace kiln::train
