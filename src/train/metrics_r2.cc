// Keras 3's R2Score (metrics/regression_metrics.py): the coefficient of determination of
// (batch, outputs) targets, one score per output from float32 sums kept across updates (the
// weighted sum of y_true, of y_true squared, of squared residuals, the weights' sum, and the
// number of samples with a nonzero weight), aggregated as Keras: none, the mean, or weighted by
// each output's variance; adjusted for num_regressors when that leaves a denominator.
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

class R2Score final : public Metric {
 public:
  explicit R2Score(ConfigReader &r) : Metric("R2Score", r, "r2_score") {
    // Absent: Keras's default; null: no aggregation (one score per output).
    aggregation_ = r.config().has("class_aggregation") ? r.get_optional_string("class_aggregation")
                                                       : std::optional<std::string>("uniform_average");
    if (aggregation_ && *aggregation_ != "uniform_average" && *aggregation_ != "variance_weighted_average")
      fail(Code::kInvalidArgument, "R2Score: class_aggregation is '", *aggregation_,
           "'; expected null (None), 'uniform_average' or 'variance_weighted_average'");
    num_regressors_ = r.get_int("num_regressors", 0);
    if (num_regressors_ < 0)
      fail(Code::kInvalidArgument, "R2Score: num_regressors is ", num_regressors_, "; expected >= 0");
    r.finish();
    num_samples_ = add_variable("num_samples");
  }

 protected:
  void update_impl(const Tensor &y_true_in, const Tensor &y_pred_in, const Tensor &sample_weight) override {
    require_pair(y_true_in, y_pred_in, name());
    Tensor t = f32(y_true_in), p = f32(y_pred_in);
    squeeze_or_expand_to_same_rank(t, p);
    // One target per sample against several outputs: Keras's arithmetic broadcasts it.
    if (t.rank() == 2 && p.rank() == 2 && t.shape()[1] == 1 && t.shape()[0] == p.shape()[0])
      t = ops::broadcast_to(t, p.shape());
    if (t.rank() != 2 || p.rank() != 2)
      fail(Code::kInvalidArgument, name(), ": y_true is ", y_true_in.description(), " and y_pred is ",
           y_pred_in.description(), "; expected 2-D inputs of shape (batch_size, output_dim)");
    if (t.shape() != p.shape())
      fail(Code::kInvalidArgument, name(), ": y_true ", y_true_in.description(), " and y_pred ",
           y_pred_in.description(), " differ in shape; expected one target per prediction");
    const int64_t outputs = p.shape()[1];
    if (!sum_) {  // Keras builds the sums at the first update, one per output
      outputs_ = outputs;
      const Shape s{outputs};
      squared_sum_ = add_variable("squared_sum", s);
      sum_ = add_variable("sum", s);
      residual_ = add_variable("residual", s);
      count_ = add_variable("count", s);
    } else if (outputs != outputs_) {
      fail(Code::kInvalidArgument, name(), ": y_pred ", y_pred_in.description(), " has ", outputs,
           " outputs; the metric sums ", outputs_, " (from its first update)");
    }
    Tensor w = sample_weight.defined() ? f32(sample_weight) : ops::fill(Shape{}, 1.0, DType::kFloat32);
    if (w.rank() == 1) w = ops::expand_dims(w, 1);  // Keras: one weight per sample gets an output axis
    try {
      w = ops::broadcast_to(w, t.shape());
    } catch (const Error &) {
      fail(Code::kInvalidArgument, name(), ": sample_weight ", sample_weight.description(),
           " does not broadcast to y_true ", t.description());
    }
    const Tensor weighted = ops::mul(t, w);
    sum_->assign_add(ops::sum(weighted, {0}));
    squared_sum_->assign_add(ops::sum(ops::mul(t, weighted), {0}));
    residual_->assign_add(ops::sum(ops::mul(ops::square(ops::sub(t, p)), w), {0}));
    count_->assign_add(ops::sum(w, {0}));
    // A sample counts when any of its outputs has a nonzero weight.
    const Tensor nonzero = ops::not_equal(w, ops::fill(Shape{}, 0.0, DType::kFloat32));
    num_samples_->assign_add(ops::sum(ops::cast(ops::reduce_any(nonzero, {-1}), DType::kFloat32)));
  }

  Tensor result_impl() const override {
    if (!sum_) return Tensor::scalar(0.0f);  // before the first update (Keras has no sums yet)
    const std::vector<float> sum = host_values<float>(sum_->peek()),
                             sq = host_values<float>(squared_sum_->peek()),
                             res = host_values<float>(residual_->peek()),
                             count = host_values<float>(count_->peek());
    // Keras's float32 arithmetic, output by output.
    std::vector<float> raw(sum.size()), total(sum.size());
    for (size_t i = 0; i < sum.size(); ++i) {
      const float mean = sum[i] / count[i];
      total[i] = sq[i] - sum[i] * mean;
      raw[i] = 1.0f - res[i] / total[i];
      if (std::isinf(raw[i])) raw[i] = 0.0f;
    }
    std::vector<float> score;
    if (!aggregation_) {
      score = raw;
    } else if (*aggregation_ == "uniform_average") {
      float s = 0;
      for (float v : raw) s += v;
      score = {s / static_cast<float>(raw.size())};
    } else {
      float weighted = 0, weights = 0;
      for (size_t i = 0; i < raw.size(); ++i) {
        weighted += total[i] * raw[i];
        weights += total[i];
      }
      score = {weighted / weights};
    }
    // Adjusted R2 when it has a denominator; Keras warns and keeps the plain score otherwise.
    const float n = host_values<float>(num_samples_->peek())[0], k = static_cast<float>(num_regressors_);
    if (num_regressors_ != 0 && k < n - 1.0f)
      for (float &v : score) v = 1.0f - (1.0f - v) * (n - 1.0f) / (n - k - 1.0f);
    if (!aggregation_) return vector_tensor(score);
    return Tensor::scalar(score[0]);
  }

  void add_config(Config &c) const override {
    c.set("class_aggregation", aggregation_).set("num_regressors", num_regressors_);
  }

 private:
  std::optional<std::string> aggregation_;
  int64_t num_regressors_ = 0, outputs_ = 0;
  VariablePtr num_samples_, squared_sum_, sum_, residual_, count_;
};

}  // namespace

MetricPtr make_r2_score(ConfigReader &r) { return std::make_shared<R2Score>(r); }

}  // namespace kiln::train::detail
