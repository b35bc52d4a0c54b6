// The handles of the training objects (losses, metrics): one shared reference each.
#pragma once

#include <memory>

#include "train/callbacks.h"
#include "train/losses.h"
#include "train/metrics.h"

struct kiln_loss {
  std::shared_ptr<kiln::train::Loss> loss;
};

struct kiln_metric {
  std::shared_ptr<kiln::train::Metric> metric;
};

struct kiln_callback {
  std::shared_ptr<kiln::train::Callback> callback;
};

namespace kiln::capi {
// The loss a handle holds; InvalidArgument naming fn and arg for NULL.
const std::shared_ptr<train::Loss> &loss_of(const kiln_loss *l, const char *fn, const char *arg);
}  // namespace kiln::capi
