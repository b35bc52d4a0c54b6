// Keras metrics (Keras 3 metrics/*.py): stateful objects with update_state / result / reset_state
// whose state lives in non-trainable Variables named like Keras's (total, count, true_positives...),
// listed by variables() so checkpoints can hold them. One mutex per metric serialises updates,
// results and resets, so several threads may update one metric.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "core/config.h"
#include "core/tensor.h"
#include "train/losses.h"

namespace kiln::train {

using VariablePtr = std::shared_ptr<autodiff::Variable>;

class Metric {
 public:
  // Reads name and dtype from r; subclasses read theirs, then call r.finish().
  Metric(std::string class_name, ConfigReader &r, const std::string &default_name);
  virtual ~Metric() = default;
  Metric(const Metric &) = delete;
  Metric &operator=(const Metric &) = delete;

  const std::string &class_name() const { return class_name_; }
  const std::string &name() const { return name_; }
  uint64_t id() const { return id_; }

  // update_state(y_true, y_pred, sample_weight) (sample_weight undefined: none). Mean and Sum
  // take values instead (update_state_values); calling this on them is InvalidArgument.
  void update_state(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight = Tensor());
  // Mean / Sum: update_state(values, sample_weight). Other metrics: InvalidArgument.
  void update_state_values(const Tensor &values, const Tensor &sample_weight = Tensor());
  // Whether the metric takes values (Mean, Sum) rather than y_true and y_pred.
  virtual bool takes_values() const { return false; }
  // The current value (a new float32 tensor).
  Tensor result() const;
  // Every state variable back to zero.
  void reset_state();
  // The state, in creation order (F1Score, FBetaScore and R2Score make theirs at the first update, so this
  // takes the metric's mutex as the other calls do).
  std::vector<VariablePtr> variables() const;
  // name, dtype, then the class's own keys.
  Config get_config() const;

 protected:
  // As above, for a metric whose state may be integer (Keras's IoU metrics, dtype "int" by
  // default): dtype may also be "int" (int64), "int64" or "int32".
  Metric(std::string class_name, ConfigReader &r, const std::string &default_name, bool integer_state);
  // The dtype of the state: float32 unless the class takes integer state.
  DType state_dtype() const { return state_dtype_; }
  // A new non-trainable state variable of zeros, named "<metric name>/<name>".
  VariablePtr add_variable(const std::string &name, const Shape &shape = Shape{},
                           DType dtype = DType::kFloat32);
  // The bodies, called with the metric's mutex held.
  virtual void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight);
  virtual void update_values_impl(const Tensor &values, const Tensor &sample_weight);
  virtual Tensor result_impl() const = 0;
  virtual void add_config(Config &) const {}

 private:
  std::string class_name_;
  std::string name_;
  uint64_t id_;
  DType state_dtype_ = DType::kFloat32;
  mutable std::mutex mu_;
  std::vector<VariablePtr> variables_;
};
using MetricPtr = std::shared_ptr<Metric>;

// A metric by class name ("SparseCategoricalAccuracy") or Keras function name / alias
// ("sparse_categorical_accuracy", "acc", "mse", "categorical_crossentropy" -> a MeanMetricWrapper of
// the loss function). Unknown names: NotFound listing the known ones.
MetricPtr create_metric(const std::string &name, const Config &config = Config());
// A Mean of a loss's per-sample values (Keras's MeanMetricWrapper(loss_fn)); name empty: the loss's.
MetricPtr mean_metric_wrapper(const LossPtr &loss, const std::string &name = "");
// What compile does with a metric identifier (Keras's get_metric): "accuracy"/"acc" picks
// BinaryAccuracy, SparseCategoricalAccuracy or CategoricalAccuracy from the loss (when it is a
// cross-entropy) and otherwise from the shapes of y_true and y_pred (-1: unknown); "crossentropy"/"ce"
// picks the cross-entropy likewise; any other name as create_metric. loss may be null.
MetricPtr resolve_metric(const std::string &identifier, const Loss *loss,
                         const std::vector<int64_t> &y_true_shape, const std::vector<int64_t> &y_pred_shape);
Config serialize_metric(const Metric &metric);
MetricPtr deserialize_metric(const Config &serialized);
std::vector<std::string> registered_metrics();

// Keras 3's metric functions: accuracy and binary_accuracy elementwise (so an elementwise
// sample_weight weighs each match), the categorical ones per sample.
Tensor accuracy(const Tensor &y_true, const Tensor &y_pred);
Tensor binary_accuracy(const Tensor &y_true, const Tensor &y_pred, double threshold = 0.5);
Tensor categorical_accuracy(const Tensor &y_true, const Tensor &y_pred);
Tensor sparse_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred);
Tensor top_k_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred, int64_t k = 5);
Tensor sparse_top_k_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred, int64_t k = 5,
                                         bool from_sorted_ids = false);

// Keras 3's metric functions by name (keras.metrics.binary_accuracy(y_true, y_pred, threshold=0.5),
// ...): the values the metric of that name averages. accuracy and binary_accuracy (threshold) give
// one value per element; categorical_accuracy, sparse_categorical_accuracy,
// top_k_categorical_accuracy (k), sparse_top_k_categorical_accuracy (k, from_sorted_ids) one per
// sample; pearson_correlation and concordance_correlation (axis) one per sample along axis; any
// loss function's name (keras.metrics re-exports mean_squared_error, binary_crossentropy, huber,
// ...; kiln/losses.h's names and aliases) its per-sample losses, config holding the loss's
// arguments. config holds the function's keyword arguments; NotFound for any other name.
Tensor metric_function(const std::string &name, const Tensor &y_true, const Tensor &y_pred,
                       const Config &config = Config());

}  // namespace kiln::train
