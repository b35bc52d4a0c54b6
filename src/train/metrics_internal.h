// Shared by the metric files: the confusion-matrix and IoU metrics' factories, and helpers.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "train/metrics.h"

namespace kiln::train::detail {

MetricPtr make_precision(ConfigReader &r);
MetricPtr make_recall(ConfigReader &r);
MetricPtr make_auc(ConfigReader &r);
MetricPtr make_iou(ConfigReader &r);
MetricPtr make_mean_iou(ConfigReader &r);
MetricPtr make_binary_iou(ConfigReader &r);
MetricPtr make_one_hot_iou(ConfigReader &r);
MetricPtr make_one_hot_mean_iou(ConfigReader &r);
MetricPtr make_fbeta_score(ConfigReader &r);
MetricPtr make_f1_score(ConfigReader &r);
MetricPtr make_true_positives(ConfigReader &r);
MetricPtr make_false_positives(ConfigReader &r);
MetricPtr make_true_negatives(ConfigReader &r);
MetricPtr make_false_negatives(ConfigReader &r);
MetricPtr make_sensitivity_at_specificity(ConfigReader &r);
MetricPtr make_specificity_at_sensitivity(ConfigReader &r);
MetricPtr make_precision_at_recall(ConfigReader &r);
MetricPtr make_recall_at_precision(ConfigReader &r);
MetricPtr make_r2_score(ConfigReader &r);

// A float32 vector tensor of v's values (a metric's per-threshold or per-class result).
inline Tensor vector_tensor(const std::vector<float> &v) {
  return Tensor::from_data(DType::kFloat32, Shape{static_cast<int64_t>(v.size())}, v.data(),
                           v.size() * sizeof(float));
}

// t as float32 (itself when it is).
inline Tensor f32(const Tensor &t) {
  return t.dtype() == DType::kFloat32 ? t : ops::cast(t, DType::kFloat32);
}

// A tensor's values on the host as T (float or double), through a cast when its dtype differs.
template <typename T>
std::vector<T> host_values(const Tensor &t) {
  const Tensor c = t.dtype() == dtype_of<T>::value ? t : ops::cast(t, dtype_of<T>::value);
  const T *p = c.data<T>();
  return std::vector<T>(p, p + c.num_elements());
}

// y_true and y_pred checked as defined, y_pred numeric.
void require_pair(const Tensor &y_true, const Tensor &y_pred, const std::string &owner);

}  // namespace kiln::train::detail
