// Shared by the metric files: the confusion-matrix and IoU metrics' factories, and helpers.
#pragma once

#include <string>

#include "core/config.h"
#include "core/tensor.h"
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

// y_true and y_pred checked as defined, y_pred numeric.
void require_pair(const Tensor &y_true, const Tensor &y_pred, const std::string &owner);

}  // namespace kiln::train::detail
