// Keras 3's IoU metrics (src/train/metrics_iou.cc): the values of Keras's docstring examples, the
// "int" confusion matrix (weights truncated, counts exact past 2^24), labels out of range and
// ignore_class left out, one-hot arguments, configs as Keras writes them, and bad input.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/ops.h"
#include "test_util.h"
#include "train/callbacks.h"
#include "train/metrics.h"

namespace kiln::train {
namespace {

using testing::expect_error;
using testing::make;
using testing::make_typed;

float result_of(const MetricPtr &m) { return m->result().data<float>()[0]; }

Tensor ints(const std::vector<int64_t> &v) {
  return make_typed<int64_t>({static_cast<int64_t>(v.size())}, v);
}
Tensor floats(const std::vector<float> &v) { return make({static_cast<int64_t>(v.size())}, v); }

TEST(IoUMetrics, KerasDocstringValues) {
  // cm = [[1, 1], [1, 1]]: every IoU is 1 / 3.
  MetricPtr iou = create_metric("IoU", Config::from_json(R"({"num_classes": 2, "target_class_ids": [0]})"));
  iou->update_state(ints({0, 0, 1, 1}), ints({0, 1, 0, 1}));
  EXPECT_FLOAT_EQ(result_of(iou), 0.33333334f);
  MetricPtr mean = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2})"));
  mean->update_state(ints({0, 0, 1, 1}), ints({0, 1, 0, 1}));
  EXPECT_FLOAT_EQ(result_of(mean), 0.33333334f);
  // The weighted examples need float weights: dtype float32 (Keras's "int" default truncates them).
  MetricPtr fmean = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2, "dtype": "float32"})"));
  fmean->update_state(ints({0, 0, 1, 1}), ints({0, 1, 0, 1}), floats({0.3f, 0.3f, 0.3f, 0.1f}));
  EXPECT_NEAR(result_of(fmean), 0.23809525f, 1e-6);
  MetricPtr fiou = create_metric(
      "IoU", Config::from_json(R"({"num_classes": 2, "target_class_ids": [0], "dtype": "float32"})"));
  fiou->update_state(ints({0, 0, 1, 1}), ints({0, 1, 0, 1}), floats({0.3f, 0.3f, 0.3f, 0.1f}));
  EXPECT_NEAR(result_of(fiou), 0.33333334f, 1e-6);
  MetricPtr bin =
      create_metric("BinaryIoU", Config::from_json(R"({"target_class_ids": [0, 1], "threshold": 0.3})"));
  bin->update_state(ints({0, 1, 0, 1}), floats({0.1f, 0.2f, 0.4f, 0.7f}));
  EXPECT_FLOAT_EQ(result_of(bin), 0.33333334f);
  MetricPtr fbin = create_metric("BinaryIoU", Config::from_json(R"({"threshold": 0.3, "dtype": "float32"})"));
  fbin->update_state(ints({0, 1, 0, 1}), floats({0.1f, 0.2f, 0.4f, 0.7f}), floats({0.2f, 0.3f, 0.4f, 0.1f}));
  EXPECT_NEAR(result_of(fbin), 0.17361112f, 1e-6);
  // One-hot labels and scores: argmax first. cm = [[0, 0, 0.6], [0.3, 0, 0], [0, 0, 0.1]].
  const Tensor y_true = make({4, 3}, {0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0});
  const Tensor y_pred =
      make({4, 3}, {0.2f, 0.3f, 0.5f, 0.1f, 0.2f, 0.7f, 0.5f, 0.3f, 0.1f, 0.1f, 0.4f, 0.5f});
  MetricPtr oh = create_metric(
      "OneHotIoU",
      Config::from_json(R"({"num_classes": 3, "target_class_ids": [0, 2], "dtype": "float32"})"));
  oh->update_state(y_true, y_pred, floats({0.1f, 0.2f, 0.3f, 0.4f}));
  EXPECT_NEAR(result_of(oh), (0.0f + 0.1f / 0.7f) / 2, 1e-6);
  MetricPtr ohm =
      create_metric("OneHotMeanIoU", Config::from_json(R"({"num_classes": 3, "dtype": "float32"})"));
  ohm->update_state(y_true, y_pred, floats({0.1f, 0.2f, 0.3f, 0.4f}));
  EXPECT_NEAR(result_of(ohm), (0.0f + 0.0f + 0.1f / 0.7f) / 3, 1e-6);
}

TEST(IoUMetrics, IntegerStateTruncatesWeightsAndCountsExactly) {
  std::string warned;
  set_callback_warning_sink([&](const std::string &s) { warned += s + "\n"; });
  MetricPtr m = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2})"));
  EXPECT_EQ(m->variables()[0]->dtype(), DType::kInt64);
  EXPECT_EQ(m->variables()[0]->name(), "mean_io_u/total_confusion_matrix");
  m->update_state(ints({0, 0, 1, 1}), ints({0, 1, 0, 1}), floats({0.3f, 0.3f, 0.3f, 0.1f}));
  EXPECT_EQ(result_of(m), 0.0f);  // every weight truncated to 0: no class is present
  EXPECT_NE(warned.find("truncated"), std::string::npos) << warned;
  set_callback_warning_sink(nullptr);
  // Past 2^24 a float32 count stops moving; the int64 matrix counts on.
  m->update_state(ints({0}), ints({0}), make_typed<int64_t>({1}, {int64_t{1} << 24}));
  m->update_state(ints({0}), ints({0}));
  const Tensor cm = m->variables()[0]->value();
  EXPECT_EQ(cm.data<int64_t>()[0], (int64_t{1} << 24) + 1);
  m->reset_state();
  EXPECT_EQ(m->variables()[0]->value().data<int64_t>()[0], 0);
  // Predictions are truncated to the dtype too: 1.9 is class 1.
  m->update_state(ints({1}), floats({1.9f}));
  EXPECT_FLOAT_EQ(result_of(m), 1.0f);
}

TEST(IoUMetrics, OutOfRangeAndIgnoredLabelsCountNowhere) {
  MetricPtr m = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 3, "ignore_class": 255})"));
  // 255 is ignored, -1 and 3 are out of range (labels or predictions), NaN fails every bound.
  m->update_state(floats({0, 1, 255, -1, 3, 2, 2}), floats({0, 1, 0, 0, 0, -1, 3}));
  const Tensor cm = m->variables()[0]->value();
  int64_t total = 0;
  for (int i = 0; i < 9; ++i) total += cm.data<int64_t>()[i];
  EXPECT_EQ(total, 2);
  EXPECT_FLOAT_EQ(result_of(m), 1.0f);  // classes 0 and 1 right; class 2 absent, not counted
  MetricPtr f = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2, "dtype": "float32"})"));
  f->update_state(floats({0, NAN, 1}), floats({0, 0, -0.5f}));  // float dtype: -0.5 is out of range
  EXPECT_FLOAT_EQ(result_of(f), 1.0f);
  // A rank-2 label map and a (N, H) weight map are flattened, as Keras does.
  MetricPtr seg = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2})"));
  seg->update_state(make_typed<int64_t>({2, 2}, {0, 1, 1, 1}), make_typed<int64_t>({2, 2}, {0, 1, 0, 1}),
                    make_typed<int64_t>({2, 2}, {1, 1, 0, 1}));
  EXPECT_FLOAT_EQ(result_of(seg), 1.0f);
}

TEST(IoUMetrics, BoolsNonFiniteValuesAndNegativeIds) {
  // Bool predictions (and labels) are 0 and 1, as Keras converts them; BinaryIoU too.
  const Tensor yes_no = ops::cast(floats({1, 0}), DType::kBool);
  for (const char *cls : {"MeanIoU", "BinaryIoU"}) {
    MetricPtr m =
        create_metric(cls, Config::from_json(std::string(cls) == "MeanIoU" ? R"({"num_classes": 2})" : "{}"));
    m->update_state(ints({1, 0}), yes_no);
    EXPECT_FLOAT_EQ(result_of(m), 1.0f) << cls;
    m->update_state(yes_no, ints({1, 0}));
    EXPECT_FLOAT_EQ(result_of(m), 1.0f) << cls;
  }
  // NaN and infinite labels or predictions count nowhere, with an integer matrix too (a cast
  // would have made NaN class 0).
  MetricPtr m = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 3})"));
  m->update_state(floats({NAN, INFINITY, 1, 0}), floats({1, 1, NAN, -INFINITY}));
  const Tensor cm = m->variables()[0]->value();
  for (int i = 0; i < 9; ++i) EXPECT_EQ(cm.data<int64_t>()[i], 0) << i;
  // A negative target id counts from the end, as Keras's take_along_axis does.
  MetricPtr last = create_metric("IoU", Config::from_json(R"({"num_classes": 3, "target_class_ids": [-1]})"));
  MetricPtr two = create_metric("IoU", Config::from_json(R"({"num_classes": 3, "target_class_ids": [2]})"));
  for (const MetricPtr &x : {last, two}) x->update_state(ints({2, 2, 0, 1}), ints({2, 0, 0, 1}));
  EXPECT_FLOAT_EQ(result_of(last), 0.5f);
  EXPECT_EQ(result_of(last), result_of(two));
  EXPECT_EQ(last->get_config().get_int_list("target_class_ids"), (std::vector<int64_t>{-1}));
  // A matrix too large for memory is refused before anything is sized by num_classes.
  expect_error([] { create_metric("MeanIoU", Config().set("num_classes", int64_t{1} << 31)); },
               Code::kResourceExhausted, {"more than kiln's limit"});
}

TEST(IoUMetrics, ConfigsAsKerasWritesThem) {
  MetricPtr m = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 4})"));
  EXPECT_EQ(m->name(), "mean_io_u");
  EXPECT_EQ(m->get_config().to_json(),
            R"({"name":"mean_io_u","dtype":"int64","num_classes":4,"ignore_class":null,"sparse_y_true":true,)"
            R"("sparse_y_pred":true,"axis":-1})");
  MetricPtr b = create_metric("BinaryIoU");
  EXPECT_EQ(b->get_config().to_json(),
            R"({"name":"binary_io_u","dtype":"int64","target_class_ids":[0,1],"threshold":0.5})");
  MetricPtr oh =
      create_metric("OneHotIoU", Config::from_json(R"({"num_classes": 3, "target_class_ids": [1]})"));
  EXPECT_EQ(oh->name(), "one_hot_io_u");
  EXPECT_EQ(oh->get_config().get_bool("sparse_y_pred"), false);
  EXPECT_FALSE(oh->get_config().has("sparse_y_true"));
  // Every class takes dtype int32 (an int32 matrix) and round-trips its config.
  const std::vector<std::pair<const char *, const char *>> configs = {
      {"IoU", R"({"num_classes": 3, "target_class_ids": [2], "dtype": "int32"})"},
      {"MeanIoU", R"({"num_classes": 3, "dtype": "int32"})"},
      {"BinaryIoU", R"({"dtype": "int32"})"},
      {"OneHotIoU", R"({"num_classes": 3, "target_class_ids": [2], "dtype": "int32"})"},
      {"OneHotMeanIoU", R"({"num_classes": 3, "dtype": "int32"})"}};
  for (const auto &[cls, json] : configs) {
    MetricPtr a = create_metric(cls, Config::from_json(json));
    EXPECT_EQ(a->variables()[0]->dtype(), DType::kInt32) << cls;
    MetricPtr again = deserialize_metric(serialize_metric(*a));
    EXPECT_EQ(again->get_config().to_json(), a->get_config().to_json()) << cls;
  }
}

TEST(IoUMetrics, BadInput) {
  expect_error([] { create_metric("MeanIoU"); }, Code::kInvalidArgument, {"num_classes"});
  expect_error([] { create_metric("MeanIoU", Config::from_json(R"({"num_classes": 0})")); },
               Code::kInvalidArgument, {"num_classes is 0", ">= 1"});
  expect_error([] { create_metric("IoU", Config::from_json(R"({"num_classes": 2})")); },
               Code::kInvalidArgument, {"target_class_ids", "required"});
  expect_error(
      [] { create_metric("IoU", Config::from_json(R"({"num_classes": 2, "target_class_ids": [2]})")); },
      Code::kInvalidArgument, {"target class id 2 is out of range", "[0, 2)"});
  expect_error(
      [] { create_metric("IoU", Config::from_json(R"({"num_classes": 2, "target_class_ids": []})")); },
      Code::kInvalidArgument, {"target_class_ids is empty"});
  expect_error(
      [] { create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2, "dtype": "float64"})")); },
      Code::kInvalidArgument, {"dtype 'float64'", "int (int64), int32 or float32"});
  expect_error(
      [] { create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2, "target_class_ids": [0]})")); },
      Code::kInvalidArgument, {"target_class_ids"});
  expect_error([] { create_metric("Accuracy", Config::from_json(R"({"dtype": "int64"})")); },
               Code::kInvalidArgument, {"float32 state"});
  MetricPtr m = create_metric("MeanIoU", Config::from_json(R"({"num_classes": 2})"));
  expect_error(
      [&] {
        m->update_state(ints({0, 1}), ints({0, 1, 1}));
      },
      Code::kInvalidArgument, {"2 labels", "3 predictions"});
  expect_error(
      [&] {
        m->update_state(ints({0, 1}), ints({0, 1}), ints({1, 1, 1}));
      },
      Code::kInvalidArgument, {"sample_weight", "does not broadcast"});
  expect_error([&] { m->update_state(Tensor(), ints({0})); }, Code::kInvalidArgument,
               {"y_true is undefined"});
  EXPECT_EQ(result_of(m), 0.0f);  // nothing counted by the failed updates
}

}  // namespace
}  // namespace kiln::train
