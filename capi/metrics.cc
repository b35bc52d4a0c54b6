// Metrics across the ABI: kiln_metric handles over the core's metric objects.
#include "train/metrics.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "capi/handles.h"
#include "capi/train_handles.h"

using kiln::Code;
using kiln::Config;
using kiln::fail;
using kiln::Tensor;
using kiln::capi::require_not_null;
using kiln::train::MetricPtr;

namespace {

const MetricPtr &metric_of(const kiln_metric *m, const char *fn) {
  require_not_null(m, fn, "metric");
  return m->metric;
}

Tensor optional_tensor(const kiln_tensor *t) { return t ? t->value : Tensor(); }

std::vector<int64_t> dims_of(const int64_t *dims, size_t rank, const char *fn, const char *what) {
  if (rank > KILN_MAX_RANK)
    fail(Code::kInvalidArgument, fn, ": ", what, " has rank ", rank, "; at most KILN_MAX_RANK (",
         KILN_MAX_RANK, ")");
  if (rank > 0) require_not_null(dims, fn, what);
  return std::vector<int64_t>(dims, dims + rank);
}

}  // namespace

extern "C" {

kiln_status *kiln_metric_create(kiln_metric **out, const char *name, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(name, __func__, "name");
  *out = new kiln_metric{kiln::train::create_metric(name, config ? config->value : Config())};
  KILN_CAPI_END
}

kiln_status *kiln_metric_function_call(kiln_tensor **out, const char *name, const kiln_tensor *y_true,
                                       const kiln_tensor *y_pred, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(name, __func__, "name");
  const kiln::Tensor &t = kiln::capi::tensor_of(y_true, __func__, "y_true");
  const kiln::Tensor &p = kiln::capi::tensor_of(y_pred, __func__, "y_pred");
  *out = kiln::capi::new_tensor(kiln::train::metric_function(name, t, p, config ? config->value : Config()));
  KILN_CAPI_END
}

kiln_status *kiln_metric_create_mean_wrapper(kiln_metric **out, const kiln_loss *loss, const char *name) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const auto &l = kiln::capi::loss_of(loss, __func__, "loss");
  *out = new kiln_metric{kiln::train::mean_metric_wrapper(l, name ? name : "")};
  KILN_CAPI_END
}

kiln_status *kiln_metric_resolve(kiln_metric **out, const char *identifier, const kiln_loss *loss,
                                 const int64_t *y_true_dims, size_t y_true_rank, const int64_t *y_pred_dims,
                                 size_t y_pred_rank) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(identifier, __func__, "identifier");
  const kiln::train::Loss *l = loss ? loss->loss.get() : nullptr;
  *out = new kiln_metric{
      kiln::train::resolve_metric(identifier, l, dims_of(y_true_dims, y_true_rank, __func__, "y_true_dims"),
                                  dims_of(y_pred_dims, y_pred_rank, __func__, "y_pred_dims"))};
  KILN_CAPI_END
}

kiln_status *kiln_metric_deserialize(kiln_metric **out, const kiln_config *serialized) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(serialized, __func__, "serialized");
  *out = new kiln_metric{kiln::train::deserialize_metric(serialized->value)};
  KILN_CAPI_END
}

kiln_status *kiln_metric_serialize(kiln_config **out, const kiln_metric *metric) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{kiln::train::serialize_metric(*metric_of(metric, __func__))};
  KILN_CAPI_END
}

kiln_status *kiln_metric_get_config(kiln_config **out, const kiln_metric *metric) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{metric_of(metric, __func__)->get_config()};
  KILN_CAPI_END
}

kiln_status *kiln_metric_clone(kiln_metric **out, const kiln_metric *metric) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_metric{metric_of(metric, __func__)};
  KILN_CAPI_END
}

void kiln_metric_free(kiln_metric *metric) { delete metric; }

uint64_t kiln_metric_get_id(const kiln_metric *metric) { return metric ? metric->metric->id() : 0; }
const char *kiln_metric_get_name(const kiln_metric *metric) {
  return metric ? metric->metric->name().c_str() : nullptr;
}
const char *kiln_metric_get_class_name(const kiln_metric *metric) {
  return metric ? metric->metric->class_name().c_str() : nullptr;
}
bool kiln_metric_takes_values(const kiln_metric *metric) { return metric && metric->metric->takes_values(); }

kiln_status *kiln_metric_update_state(kiln_metric *metric, const kiln_tensor *y_true,
                                      const kiln_tensor *y_pred, const kiln_tensor *sample_weight) {
  KILN_CAPI_BEGIN
  const MetricPtr &m = metric_of(metric, __func__);
  const Tensor &t = kiln::capi::tensor_of(y_true, __func__, "y_true");
  const Tensor &p = kiln::capi::tensor_of(y_pred, __func__, "y_pred");
  m->update_state(t, p, optional_tensor(sample_weight));
  KILN_CAPI_END
}

kiln_status *kiln_metric_update_state_values(kiln_metric *metric, const kiln_tensor *values,
                                             const kiln_tensor *sample_weight) {
  KILN_CAPI_BEGIN
  const MetricPtr &m = metric_of(metric, __func__);
  m->update_state_values(kiln::capi::tensor_of(values, __func__, "values"), optional_tensor(sample_weight));
  KILN_CAPI_END
}

kiln_status *kiln_metric_result(kiln_tensor **out, const kiln_metric *metric) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = kiln::capi::new_tensor(metric_of(metric, __func__)->result());
  KILN_CAPI_END
}

kiln_status *kiln_metric_reset_state(kiln_metric *metric) {
  KILN_CAPI_BEGIN
  metric_of(metric, __func__)->reset_state();
  KILN_CAPI_END
}

kiln_status *kiln_metric_get_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                       const kiln_metric *metric) {
  KILN_CAPI_BEGIN
  require_not_null(out_count, __func__, "out_count");
  const std::vector<kiln::train::VariablePtr> vars = metric_of(metric, __func__)->variables();
  if (std::min(capacity, vars.size()) > 0) require_not_null(out, __func__, "out");
  kiln::capi::write_variables(out, capacity, out_count, vars);
  KILN_CAPI_END
}

bool kiln_metric_is_registered(const char *name) {
  if (!name) return false;
  try {
    for (const std::string &n : kiln::train::registered_metrics())
      if (n == name) return true;
    return kiln::train::loss_registered(name);
  } catch (...) {
    return false;
  }
}

}  // extern "C"
