// Keras callbacks' core (src/train/callbacks.h, training_state.h): Logs keep insertion order and
// convert to and from a Config, History records every epoch's logs, CallbackList dispatches
// hooks in list order and adds History as Keras does, the registry names unknown classes, and
// a model's training state is one object per model.
#include <gtest/gtest.h>

#include "layers/layer.h"
#include "test_util.h"
#include "train/callbacks.h"
#include "train/training_state.h"

namespace kiln::train {
namespace {

using testing::expect_error;

TEST(Logs, KeepOrderReplaceAndConvert) {
  Logs logs;
  logs.set("loss", 0.5);
  logs.set("accuracy", 0.75);
  logs.set("loss", 0.25);
  ASSERT_EQ(logs.items().size(), 2u);
  EXPECT_EQ(logs.items()[0].first, "loss");
  EXPECT_EQ(*logs.get("loss"), 0.25);
  EXPECT_FALSE(logs.get("val_loss").has_value());
  Logs back = Logs::from_config(logs.to_config());
  EXPECT_EQ(back.items(), logs.items());
  logs.erase("loss");
  EXPECT_FALSE(logs.contains("loss"));
  Config bad;
  bad.set("loss", std::string("high"));
  expect_error([&] { Logs::from_config(bad); }, Code::kInvalidArgument, {"'loss'", "float"});
}

class Recorder : public Callback {
 public:
  Recorder(std::string tag, std::vector<std::string> *trace) : Callback("Recorder"), tag_(std::move(tag)), trace_(trace) {}
  void on_epoch_begin(int64_t e, Logs &) override { trace_->push_back(tag_ + ":begin" + std::to_string(e)); }
  void on_epoch_end(int64_t e, Logs &logs) override {
    trace_->push_back(tag_ + ":end" + std::to_string(e));
    logs.set(tag_, static_cast<double>(e));  // later callbacks see what earlier ones wrote
  }

 private:
  std::string tag_;
  std::vector<std::string> *trace_;
};

TEST(CallbackList, DispatchesInOrderAndAddsHistory) {
  std::vector<std::string> trace;
  auto a = std::make_shared<Recorder>("a", &trace);
  auto b = std::make_shared<Recorder>("b", &trace);
  layers::LayerPtr model = layers::create_layer("Sequential", Config());
  CallbackParams params;
  params.epochs = 2;
  params.steps = 5;
  CallbackList list({a, b}, /*add_history=*/true, /*add_progbar=*/false, model, params);
  ASSERT_EQ(list.callbacks().size(), 3u);
  ASSERT_TRUE(list.history());
  EXPECT_EQ(a->model(), model);
  EXPECT_EQ(b->params().steps, 5);
  Logs begin;
  list.on_train_begin(begin);
  for (int64_t e = 0; e < 2; ++e) {
    Logs logs;
    list.on_epoch_begin(e, logs);
    logs.set("loss", 1.0 / static_cast<double>(e + 1));
    list.on_epoch_end(e, logs);
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"a:begin0", "b:begin0", "a:end0", "b:end0", "a:begin1", "b:begin1",
                                             "a:end1", "b:end1"}));
  const History &h = *list.history();
  EXPECT_EQ(h.epoch, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(h.keys, (std::vector<std::string>{"loss", "a", "b"}));
  EXPECT_EQ(h.history.at("loss"), (std::vector<double>{1.0, 0.5}));
  EXPECT_EQ(h.history.at("b"), (std::vector<double>{0.0, 1.0}));
}

TEST(History, RecordKeepsOrderAndNonFiniteValues) {
  History h;
  Logs first;
  first.set("loss", 1.0);
  first.set("accuracy", 0.5);
  Logs second;
  second.set("loss", std::nan(""));
  second.set("accuracy", 0.75);
  second.set("val_loss", 2.0);  // first seen in the second epoch, as with validation_freq=2
  h.on_epoch_end(0, first);
  h.on_epoch_end(1, second);
  Config r = h.record();
  EXPECT_EQ(r.get_int_list("epoch"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(r.get_string_list("keys"), (std::vector<std::string>{"loss", "accuracy", "val_loss"}));
  Config values = r.get_config("history");
  EXPECT_EQ(values.keys(), (std::vector<std::string>{"loss", "accuracy", "val_loss"}));
  std::vector<double> loss = values.get_float_list("loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[0], 1.0);
  EXPECT_TRUE(std::isnan(loss[1]));
  EXPECT_EQ(values.get_float_list("val_loss"), (std::vector<double>{2.0}));
  EXPECT_TRUE(std::isnan(Config::from_json(r.to_json()).get_config("history").get_float_list("loss")[1]));
  Logs begin;
  h.on_train_begin(begin);  // a new fit starts the epoch list again, as Keras's History
  EXPECT_TRUE(h.record().get_int_list("epoch").empty());
}

TEST(CallbackList, KeepsTheCallersHistoryAndRejectsNull) {
  auto mine = std::make_shared<History>();
  CallbackList list({mine}, true, false, nullptr, CallbackParams());
  EXPECT_EQ(list.callbacks().size(), 1u);
  EXPECT_EQ(list.history(), mine);
  expect_error([] { CallbackList({nullptr}, true, false, nullptr, CallbackParams()); }, Code::kInvalidArgument,
               {"null"});
}

TEST(CallbackRegistry, ByNameAndUnknown) {
  CallbackPtr h = create_callback("History");
  EXPECT_TRUE(std::dynamic_pointer_cast<History>(h));
  expect_error([] { create_callback("NoSuchCallback"); }, Code::kNotFound, {"NoSuchCallback", "History"});
  Config extra;
  extra.set("patience", int64_t{3});
  expect_error([&] { create_callback("History", extra); }, Code::kInvalidArgument, {"patience"});
}

TEST(TrainingState, OnePerModel) {
  layers::LayerPtr model = layers::create_layer("Sequential", Config());
  auto s1 = training_state(*model);
  auto s2 = training_state(*model);
  EXPECT_EQ(s1, s2);
  EXPECT_FALSE(s1->optimizer);
  s1->stop_training = true;
  EXPECT_TRUE(training_state(*model)->stop_training.load());
  layers::LayerPtr other = layers::create_layer("Sequential", Config());
  EXPECT_NE(training_state(*other), s1);
}

}  // namespace
}  // namespace kiln::train
