// Keras 3's F-scores (metrics/f_score_metrics.py): FBetaScore and F1Score (beta 1). Predictions
// become 0/1 (above `threshold`, or the row's maximum when threshold is None, as Keras), and
// per-class true positives, false positives, false negatives and support accumulate in float32,
// one value per class (their sums for average "micro"). The result follows Keras's float32
// formula with its epsilon: one score per class (average None), their mean ("micro", "macro") or
// their support-weighted sum ("weighted").
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "train/losses.h"
#include "train/metrics_internal.h"

namespace kiln::train::detail {

namespace {

class FBetaScore final : public Metric {
 public:
  FBetaScore(ConfigReader &r, bool f1)
      : Metric(f1 ? "F1Score" : "FBetaScore", r, f1 ? "f1_score" : "fbeta_score"), f1_(f1) {
    average_ = r.get_optional_string("average");
    if (average_ && *average_ != "micro" && *average_ != "macro" && *average_ != "weighted")
      fail(Code::kInvalidArgument, class_name(), ": average is '", *average_,
           "'; expected null (None), 'micro', 'macro' or 'weighted'");
    if (!f1) beta_ = r.get_float("beta", 1.0);
    if (!(beta_ > 0.0) || !std::isfinite(beta_))
      fail(Code::kInvalidArgument, class_name(), ": beta is ", beta_, "; expected a finite number > 0");
    if (r.has("threshold")) {
      threshold_ = r.get_float("threshold", 0.5);
      if (!(*threshold_ > 0.0 && *threshold_ <= 1.0))
        fail(Code::kInvalidArgument, class_name(), ": threshold is ", *threshold_,
             "; expected 0 < threshold <= 1, or null (None) for each row's largest score");
    }
    r.finish();
  }

 protected:
  void update_impl(const Tensor &y_true_in, const Tensor &y_pred_in, const Tensor &sample_weight) override {
    if (!y_true_in.defined()) fail(Code::kInvalidArgument, name(), ": y_true is undefined");
    if (!y_pred_in.defined()) fail(Code::kInvalidArgument, name(), ": y_pred is undefined");
    if (y_true_in.rank() != 2 || y_pred_in.rank() != 2)
      fail(Code::kInvalidArgument, name(), ": y_true is ", y_true_in.description(), " and y_pred is ",
           y_pred_in.description(), "; expected 2-D inputs of shape (batch_size, output_dim)");
    if (y_true_in.shape() != y_pred_in.shape())
      fail(Code::kInvalidArgument, name(), ": y_true ", y_true_in.description(), " and y_pred ",
           y_pred_in.description(), " differ in shape; expected one label per score");
    const int64_t classes = y_pred_in.shape()[1];
    if (!true_positives_) {  // Keras builds the state at the first update, sized by y_pred
      num_classes_ = classes;
      const Shape s = micro() ? Shape{} : Shape{classes};
      true_positives_ = add_variable("true_positives", s);
      false_positives_ = add_variable("false_positives", s);
      false_negatives_ = add_variable("false_negatives", s);
      intermediate_weights_ = add_variable("intermediate_weights", s);
    } else if (classes != num_classes_) {
      fail(Code::kInvalidArgument, name(), ": y_pred ", y_pred_in.description(), " has ", classes,
           " classes; the metric counts ", num_classes_, " (from its first update)");
    }
    const Tensor y_true = ops::cast(y_true_in, DType::kFloat32),
                 y_pred = ops::cast(y_pred_in, DType::kFloat32);
    Tensor hit;
    if (threshold_) {
      hit = ops::greater(y_pred, ops::fill(Shape{}, *threshold_, DType::kFloat32));
    } else {  // each row's maximum, unless it is 0 (a row of zeros predicts nothing)
      hit = ops::logical_and(ops::greater_equal(y_pred, ops::max(y_pred, {-1}, true)),
                             ops::greater(ops::abs(y_pred), ops::fill(Shape{}, 1e-9, DType::kFloat32)));
    }
    const Tensor pred = ops::cast(hit, DType::kFloat32);
    Tensor sw;
    if (sample_weight.defined()) {
      sw = ops::cast(sample_weight, DType::kFloat32);
      if (sw.rank() > 2)
        fail(Code::kInvalidArgument, name(), ": sample_weight is ", sample_weight.description(),
             "; expected a scalar, one weight per row or one per score");
      while (sw.rank() < 2) sw = ops::expand_dims(sw, sw.rank());
    }
    const Tensor one = ops::fill(Shape{}, 1.0, DType::kFloat32);
    auto weighted_sum = [&](const Tensor &v) {
      const Tensor x = sw.defined() ? ops::mul(v, sw) : v;
      return micro() ? ops::sum(x) : ops::sum(x, {0});
    };
    const Tensor tp = weighted_sum(ops::mul(pred, y_true));
    const Tensor fp = weighted_sum(ops::mul(pred, ops::sub(one, y_true)));
    const Tensor fn = weighted_sum(ops::mul(ops::sub(one, pred), y_true));
    const Tensor support = weighted_sum(y_true);
    true_positives_->assign_add(tp);
    false_positives_->assign_add(fp);
    false_negatives_->assign_add(fn);
    intermediate_weights_->assign_add(support);
  }

  Tensor result_impl() const override {
    if (!true_positives_) return average_ ? Tensor::scalar(0.0f) : Tensor::empty(DType::kFloat32, Shape{0});
    const std::vector<float> tp = host_values<float>(true_positives_->peek()),
                             fp = host_values<float>(false_positives_->peek()),
                             fn = host_values<float>(false_negatives_->peek()),
                             support = host_values<float>(intermediate_weights_->peek());
    // Keras's formula in float32: beta**2 and 1 + beta**2 are Python floats, rounded once.
    const float b2 = static_cast<float>(beta_ * beta_), scale = static_cast<float>(1.0 + beta_ * beta_);
    std::vector<float> score(tp.size());
    for (size_t i = 0; i < tp.size(); ++i) {
      const float precision = tp[i] / (tp[i] + fp[i] + kEpsilon), recall = tp[i] / (tp[i] + fn[i] + kEpsilon);
      score[i] = precision * recall / (b2 * precision + recall + kEpsilon) * scale;
    }
    if (!average_) return vector_tensor(score);
    float total = 0.0f;
    if (*average_ == "weighted") {
      float weight_sum = 0.0f;
      for (float w : support) weight_sum += w;
      for (size_t i = 0; i < score.size(); ++i) total += score[i] * (support[i] / (weight_sum + kEpsilon));
      return Tensor::scalar(total);
    }
    for (float s : score) total += s;
    return Tensor::scalar(total / static_cast<float>(score.size()));
  }

  void add_config(Config &c) const override {
    c.set("average", average_);
    if (!f1_) c.set("beta", beta_);
    c.set("threshold", threshold_);
  }

 private:
  bool micro() const { return average_ && *average_ == "micro"; }

  bool f1_;
  std::optional<std::string> average_;
  double beta_ = 1.0;
  std::optional<double> threshold_;
  int64_t num_classes_ = 0;
  VariablePtr true_positives_, false_positives_, false_negatives_, intermediate_weights_;
};

}  // namespace

MetricPtr make_fbeta_score(ConfigReader &r) { return std::make_shared<FBetaScore>(r, false); }
MetricPtr make_f1_score(ConfigReader &r) { return std::make_shared<FBetaScore>(r, true); }

}  // namespace kiln::train::detail
