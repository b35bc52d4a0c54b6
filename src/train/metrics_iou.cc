// Keras 3's Intersection-over-Union metrics (metrics/iou_metrics.py): IoU, MeanIoU, BinaryIoU,
// OneHotIoU and OneHotMeanIoU. Each accumulates a num_classes x num_classes confusion matrix
// (rows: labels, columns: predictions) in the metric's dtype, "int" (int64) by default as in
// Keras, so counts stay exact past 2^24 pixels; the result is computed in float32 as Keras does.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "train/callbacks.h"
#include "train/metrics_internal.h"

namespace kiln::train::detail {

namespace {

enum class IoUKind { kIoU, kMeanIoU, kBinaryIoU, kOneHotIoU, kOneHotMeanIoU };

struct IoUClass {
  const char *class_name, *default_name;
};

IoUClass iou_class(IoUKind k) {
  switch (k) {
    case IoUKind::kIoU:
      return {"IoU", "io_u"};
    case IoUKind::kMeanIoU:
      return {"MeanIoU", "mean_io_u"};
    case IoUKind::kBinaryIoU:
      return {"BinaryIoU", "binary_io_u"};
    case IoUKind::kOneHotIoU:
      return {"OneHotIoU", "one_hot_io_u"};
    case IoUKind::kOneHotMeanIoU:
      return {"OneHotMeanIoU", "one_hot_mean_io_u"};
  }
  return {"IoU", "io_u"};
}

// Labels or predictions as the metric's dtype holds them (an integer dtype truncates, and wraps
// as tf.cast does), read back as doubles. A NaN or infinity becomes NaN, so the bounds mask drops
// it rather than an integer cast making it a class.
std::vector<double> as_state(const Tensor &x, DType dt) {
  std::vector<double> v = host_values<double>(ops::cast(x, dt));
  if (is_floating(x.dtype()) && !is_floating(dt)) {
    const std::vector<double> raw = host_values<double>(x);
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(raw[i])) v[i] = std::nan("");
  }
  return v;
}

class IoUMetric final : public Metric {
 public:
  IoUMetric(ConfigReader &r, IoUKind kind)
      : Metric(iou_class(kind).class_name, r, iou_class(kind).default_name, true), kind_(kind) {
    const std::string owner = iou_class(kind).class_name;
    const bool binary = kind == IoUKind::kBinaryIoU,
               one_hot = kind == IoUKind::kOneHotIoU || kind == IoUKind::kOneHotMeanIoU;
    const bool mean = kind == IoUKind::kMeanIoU || kind == IoUKind::kOneHotMeanIoU;
    if (binary) {
      num_classes_ = 2;
      threshold_ = r.get_float("threshold", 0.5);
      target_class_ids_ = r.get_int_list("target_class_ids", {0, 1});
    } else {
      num_classes_ = r.get_int("num_classes");
      if (num_classes_ < 1)
        fail(Code::kInvalidArgument, owner, ": num_classes is ", num_classes_, "; expected >= 1");
      if (r.has("ignore_class")) ignore_class_ = r.get_int("ignore_class");
      sparse_y_true_ = !one_hot && r.get_bool("sparse_y_true", true);  // (one-hot classes take no such key)
      sparse_y_pred_ = r.get_bool("sparse_y_pred", !one_hot);
      axis_ = r.get_int("axis", -1);
      if (!mean) {
        if (!r.has("target_class_ids"))
          fail(Code::kInvalidArgument, owner,
               ": config key 'target_class_ids' is required (a list of class ids)");
        target_class_ids_ = r.get_int_list("target_class_ids", {});
      }
    }
    if (!mean && target_class_ids_.empty())
      fail(Code::kInvalidArgument, owner, ": target_class_ids is empty; expected at least one class id");
    // Keras takes a negative id from the end (take_along_axis).
    for (int64_t id : target_class_ids_)
      if (id < -num_classes_ || id >= num_classes_)
        fail(Code::kInvalidArgument, owner, ": target class id ", id, " is out of range, which is [0, ",
             num_classes_, ")");
    r.finish();
    // The matrix first: a num_classes too large for memory fails here, before anything is sized by it.
    total_cm_ = add_variable("total_confusion_matrix", Shape({num_classes_, num_classes_}), state_dtype());
    if (mean)
      for (int64_t i = 0; i < num_classes_; ++i) classes_.push_back(i);
    else
      for (int64_t id : target_class_ids_) classes_.push_back(id < 0 ? id + num_classes_ : id);
  }

 protected:
  void update_impl(const Tensor &y_true_in, const Tensor &y_pred_in, const Tensor &sample_weight) override {
    if (!y_true_in.defined()) fail(Code::kInvalidArgument, name(), ": y_true is undefined");
    if (!y_pred_in.defined()) fail(Code::kInvalidArgument, name(), ": y_pred is undefined");
    const DType dt = state_dtype();
    // Bool labels and predictions are 0 and 1, as Keras's convert_to_tensor makes them.
    auto numeric = [](const Tensor &x) {
      return x.dtype() == DType::kBool ? ops::cast(x, DType::kFloat32) : x;
    };
    Tensor y_true = numeric(y_true_in), y_pred = numeric(y_pred_in);
    if (kind_ == IoUKind::kBinaryIoU) {
      const Tensor p = f32(y_pred);
      y_pred = ops::greater_equal(p, ops::fill(Shape{}, threshold_, DType::kFloat32));
    }
    if (!sparse_y_true_) y_true = ops::argmax(y_true, axis_);
    if (!sparse_y_pred_) y_pred = ops::argmax(y_pred, axis_);
    const std::vector<double> t = as_state(y_true, dt), p = as_state(y_pred, dt);
    if (t.size() != p.size())
      fail(Code::kInvalidArgument, name(), ": y_true ", y_true.description(), " has ", t.size(),
           " labels and y_pred ", y_pred.description(), " has ", p.size(),
           " predictions; expected one prediction per label");
    std::vector<double> w;
    if (sample_weight.defined()) {
      if (is_floating(sample_weight.dtype()) && !is_floating(dt) && !warned_) {
        warned_ = true;
        callback_warning(
            name() + ": sample_weight is " + dtype_name(sample_weight.dtype()) +
            " but the metric's dtype is " + dtype_name(dt) +
            "; the weights are cast to it (truncated). Pass integer weights, or dtype='float32'.");
      }
      Tensor sw = ops::cast(sample_weight, dt);
      if (sw.rank() > 1) sw = ops::reshape(sw, {-1});
      const int64_t n = static_cast<int64_t>(t.size());
      if (!(sw.rank() == 0 || (sw.rank() == 1 && (sw.shape()[0] == 1 || sw.shape()[0] == n))))
        fail(Code::kInvalidArgument, name(), ": sample_weight ", sample_weight.description(),
             " does not broadcast to the ", n, " labels of y_true");
      w = host_values<double>(sw);
    }
    const double classes = static_cast<double>(num_classes_);
    std::vector<double> cm(static_cast<size_t>(num_classes_ * num_classes_), 0.0);
    for (size_t i = 0; i < t.size(); ++i) {
      // Keras's bounds mask: labels and predictions outside [0, num_classes), and ignore_class,
      // count nowhere (NaN, which as_state makes of non-finite values, fails every comparison).
      if (!(t[i] >= 0 && t[i] < classes && p[i] >= 0 && p[i] < classes)) continue;
      if (ignore_class_ && t[i] == static_cast<double>(*ignore_class_)) continue;
      const double weight = w.empty() ? 1.0 : w[w.size() == 1 ? 0 : i];
      cm[static_cast<size_t>(static_cast<int64_t>(t[i]) * num_classes_ + static_cast<int64_t>(p[i]))] +=
          weight;
    }
    const Tensor batch = Tensor::from_data(DType::kFloat64, Shape({num_classes_, num_classes_}), cm.data(),
                                           cm.size() * sizeof(double));
    total_cm_->assign_add(ops::cast(batch, dt));
  }

  Tensor result_impl() const override {
    const std::vector<double> cm = host_values<double>(total_cm_->peek());
    const size_t n = static_cast<size_t>(num_classes_);
    const float eps = kEpsilon;
    float sum = 0.0f, valid = 0.0f;
    for (int64_t id : classes_) {
      const size_t c = static_cast<size_t>(id);
      // Keras's sum_over_row (axis 0) and sum_over_col (axis 1) in the state's dtype: exact for an
      // integer matrix, float32 sums for a float32 one.
      const float tp = static_cast<float>(cm[c * n + c]);
      float denominator;
      if (is_floating(state_dtype())) {
        float predicted = 0, labelled = 0;
        for (size_t k = 0; k < n; ++k) {
          predicted += static_cast<float>(cm[k * n + c]);
          labelled += static_cast<float>(cm[c * n + k]);
        }
        denominator = predicted + labelled - tp;
      } else {
        double predicted = 0, labelled = 0;
        for (size_t k = 0; k < n; ++k) {
          predicted += cm[k * n + c];
          labelled += cm[c * n + k];
        }
        denominator = static_cast<float>(predicted + labelled - cm[c * n + c]);
      }
      if (!(denominator > 1e-9f)) continue;  // an absent class adds 0, and is not counted
      valid += 1.0f;
      sum += tp / (denominator + eps);
    }
    return Tensor::scalar(sum / (valid + eps));
  }

  void add_config(Config &c) const override {
    switch (kind_) {
      case IoUKind::kBinaryIoU:
        c.set("target_class_ids", target_class_ids_).set("threshold", threshold_);
        return;
      case IoUKind::kIoU:
      case IoUKind::kOneHotIoU:
        c.set("target_class_ids", target_class_ids_);
        break;
      default:
        break;
    }
    c.set("num_classes", num_classes_).set("ignore_class", ignore_class_);
    if (kind_ == IoUKind::kIoU || kind_ == IoUKind::kMeanIoU) c.set("sparse_y_true", sparse_y_true_);
    c.set("sparse_y_pred", sparse_y_pred_).set("axis", axis_);
  }

 private:
  IoUKind kind_;
  int64_t num_classes_ = 2;
  std::vector<int64_t> target_class_ids_;  // as given (the config's)
  std::vector<int64_t> classes_;           // the classes result() averages, each in [0, num_classes)
  std::optional<int64_t> ignore_class_;
  bool sparse_y_true_ = true, sparse_y_pred_ = true, warned_ = false;
  int64_t axis_ = -1;
  double threshold_ = 0.5;
  VariablePtr total_cm_;
};

}  // namespace

MetricPtr make_iou(ConfigReader &r) { return std::make_shared<IoUMetric>(r, IoUKind::kIoU); }
MetricPtr make_mean_iou(ConfigReader &r) { return std::make_shared<IoUMetric>(r, IoUKind::kMeanIoU); }
MetricPtr make_binary_iou(ConfigReader &r) { return std::make_shared<IoUMetric>(r, IoUKind::kBinaryIoU); }
MetricPtr make_one_hot_iou(ConfigReader &r) { return std::make_shared<IoUMetric>(r, IoUKind::kOneHotIoU); }
MetricPtr make_one_hot_mean_iou(ConfigReader &r) {
  return std::make_shared<IoUMetric>(r, IoUKind::kOneHotMeanIoU);
}

}  // namespace kiln::train::detail
