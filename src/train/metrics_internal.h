// Shared by the metric files: the confusion-matrix metrics' factories, and helpers.
#pragma once

#include <string>

#include "core/config.h"
#include "core/tensor.h"
#include "train/metrics.h"

namespace kiln::train::detail {

MetricPtr make_precision(ConfigReader &r);
MetricPtr make_recall(ConfigReader &r);
MetricPtr make_auc(ConfigReader &r);

// y_true and y_pred checked as defined, y_pred numeric.
void require_pair(const Tensor &y_true, const Tensor &y_pred, const std::string &owner);

}  // namespace kiln::train::detail
