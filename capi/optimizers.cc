// Optimizers and learning-rate schedules across the ABI.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capi/handles.h"
#include "capi/optimizer_handle.h"
#include "train/schedules.h"

using kiln::Code;
using kiln::Config;
using kiln::fail;
using kiln::Tensor;
using kiln::capi::config_or_empty;
using kiln::capi::element_of;
using kiln::capi::new_tensor;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
using kiln::train::Optimizer;
using kiln::train::OptimizerPtr;
using kiln::train::VariablePtr;

namespace {

const OptimizerPtr &optimizer_of(const kiln_optimizer *o, const char *fn) {
  require_not_null(o, fn, "optimizer");
  return o->optimizer;
}

}  // namespace

kiln_status *kiln_optimizer_create(kiln_optimizer **out, const char *class_name, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(class_name, __func__, "class_name");
  *out = new kiln_optimizer{kiln::train::make_optimizer(class_name, config_or_empty(config))};
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_deserialize(kiln_optimizer **out, const kiln_config *serialized) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(serialized, __func__, "serialized");
  *out = new kiln_optimizer{kiln::train::deserialize_optimizer(serialized->value)};
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_serialize(kiln_config **out, const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{optimizer_of(optimizer, __func__)->serialize()};
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_get_config(kiln_config **out, const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{optimizer_of(optimizer, __func__)->get_config()};
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_clone(kiln_optimizer **out, const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_optimizer{optimizer_of(optimizer, __func__)};
  KILN_CAPI_END
}

void kiln_optimizer_free(kiln_optimizer *optimizer) { delete optimizer; }

uint64_t kiln_optimizer_get_id(const kiln_optimizer *optimizer) {
  return optimizer ? optimizer->optimizer->id() : 0;
}

const char *kiln_optimizer_get_class_name(const kiln_optimizer *optimizer) {
  return optimizer ? optimizer->optimizer->class_name().c_str() : nullptr;
}

const char *kiln_optimizer_get_name(const kiln_optimizer *optimizer) {
  return optimizer ? optimizer->optimizer->name().c_str() : nullptr;
}

kiln_status *kiln_optimizer_apply_gradients(kiln_optimizer *optimizer, const kiln_tensor *const *grads,
                                            kiln_variable *const *vars, size_t n) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  if (n > 0) {
    require_not_null(grads, __func__, "grads");
    require_not_null(vars, __func__, "vars");
  }
  std::vector<Tensor> gs(n);
  std::vector<VariablePtr> vs(n);
  for (size_t i = 0; i < n; ++i) {
    if (!vars[i]) fail(Code::kInvalidArgument, __func__, ": vars[", i, "] is NULL");
    vs[i] = vars[i]->variable;
    if (grads[i]) gs[i] = grads[i]->value;
  }
  o->apply_gradients(gs, vs);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_build(kiln_optimizer *optimizer, kiln_variable *const *vars, size_t n) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  if (n > 0) require_not_null(vars, __func__, "vars");
  std::vector<VariablePtr> vs(n);
  for (size_t i = 0; i < n; ++i) {
    if (!vars[i]) fail(Code::kInvalidArgument, __func__, ": vars[", i, "] is NULL");
    vs[i] = vars[i]->variable;
  }
  o->build(vs);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_minimize(kiln_tensor **out_loss, kiln_optimizer *optimizer, kiln_loss_fn loss_fn,
                                     void *user_data, kiln_variable *const *vars, size_t n) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  if (!loss_fn) fail(Code::kInvalidArgument, __func__, ": loss_fn is NULL");
  if (n == 0) fail(Code::kInvalidArgument, __func__, ": no variables (n is 0); expected at least one");
  require_not_null(vars, __func__, "vars");
  std::vector<VariablePtr> vs(n);
  kiln::autodiff::GradientSources sources;
  for (size_t i = 0; i < n; ++i) {
    if (!vars[i]) fail(Code::kInvalidArgument, __func__, ": vars[", i, "] is NULL");
    vs[i] = vars[i]->variable;
    sources.emplace_back(*vs[i]);
  }
  Tensor loss;
  std::vector<Tensor> grads;
  {
    kiln::autodiff::Tape tape(false, true);
    for (const VariablePtr &v : vs) tape.watch(*v);
    kiln_tensor *written = nullptr;
    kiln_status *st = loss_fn(&written, user_data);
    std::unique_ptr<kiln_tensor> taken(written);
    kiln::capi::check_foreign(st, "kiln_optimizer_minimize: loss_fn");
    if (!taken)
      fail(Code::kInvalidArgument, __func__,
           ": loss_fn wrote no loss (*out_loss is NULL); expected a float tensor");
    loss = taken->value;
    const Tensor scaled = o->scale_loss(loss);  // Keras 3: apply_gradients unscales again
    tape.stop_recording();
    grads = tape.gradient(scaled, sources, kiln::autodiff::Unconnected::kNone);
  }
  o->apply_gradients(grads, vs);
  if (out_loss) *out_loss = new kiln_tensor{loss};
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_get_iterations(int64_t *out, const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = optimizer_of(optimizer, __func__)->iterations();
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_get_learning_rate(double *out, const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = optimizer_of(optimizer, __func__)->learning_rate();
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_set_learning_rate(kiln_optimizer *optimizer, double learning_rate) {
  KILN_CAPI_BEGIN
  optimizer_of(optimizer, __func__)->set_learning_rate(learning_rate);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_set_learning_rate_schedule(kiln_optimizer *optimizer,
                                                       const kiln_config *schedule) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  require_not_null(schedule, __func__, "schedule");
  o->set_learning_rate_schedule(kiln::train::deserialize_schedule(schedule->value));
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_set_learning_rate_fn(kiln_optimizer *optimizer, const char *class_name,
                                                 kiln_learning_rate_fn fn, kiln_learning_rate_config_fn get_config,
                                                 kiln_user_data_destroy_fn destroy, void *user_data) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  require_not_null(class_name, __func__, "class_name");
  require_not_null(reinterpret_cast<const void *>(fn), __func__, "fn");
  auto state = std::make_shared<kiln::capi::ForeignUserData>(user_data);
  const std::string name = class_name;
  auto call = [fn, state, name](int64_t step) {
    double lr = 0.0;
    kiln::capi::check_foreign(fn(&lr, step, state->user_data), "learning rate schedule " + name);
    return lr;
  };
  std::function<Config()> config;
  if (get_config != nullptr)
    config = [get_config, state, name] {
      kiln_config c{Config()};
      kiln::capi::check_foreign(get_config(&c, state->user_data), "learning rate schedule " + name + " get_config");
      return std::move(c.value);
    };
  o->set_learning_rate_schedule(kiln::train::make_function_schedule(name, std::move(call), std::move(config)));
  state->destroy = destroy;  // handed over: the schedule's end frees user_data
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_get_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                          const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out_count, __func__, "out_count");
  const std::vector<VariablePtr> vars = optimizer_of(optimizer, __func__)->variables();
  if (capacity > 0) require_not_null(out, __func__, "out");
  kiln::capi::write_variables(out, capacity, out_count, vars);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_get_slot(kiln_variable **out, const kiln_optimizer *optimizer,
                                     const kiln_variable *variable, const char *slot_name) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  require_not_null(variable, __func__, "variable");
  require_not_null(slot_name, __func__, "slot_name");
  *out = new kiln_variable{o->slot(variable->variable->id(), slot_name)};
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_exclude_from_weight_decay(kiln_optimizer *optimizer, kiln_variable *const *vars,
                                                      size_t num_vars, const char *const *var_names,
                                                      size_t num_names) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  require_array_fits(num_vars, sizeof(kiln_variable *), __func__, "num_vars");
  require_array_fits(num_names, sizeof(const char *), __func__, "num_names");
  if (num_vars > 0) require_not_null(vars, __func__, "vars");
  if (num_names > 0) require_not_null(var_names, __func__, "var_names");
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < num_vars; ++i) ids.push_back(element_of(vars, i, __func__, "vars")->variable->id());
  std::vector<std::string> names;
  for (size_t i = 0; i < num_names; ++i) names.emplace_back(element_of(var_names, i, __func__, "var_names"));
  o->exclude_from_weight_decay(ids, names);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_scale_loss(kiln_tensor **out, const kiln_optimizer *optimizer,
                                       const kiln_tensor *loss) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  *out = new_tensor(o->scale_loss(tensor_of(loss, __func__, "loss")));
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_finalize_variable_values(kiln_optimizer *optimizer, kiln_variable *const *vars,
                                                     size_t n) {
  KILN_CAPI_BEGIN
  const OptimizerPtr &o = optimizer_of(optimizer, __func__);
  require_array_fits(n, sizeof(kiln_variable *), __func__, "n");
  if (n > 0) require_not_null(vars, __func__, "vars");
  std::vector<VariablePtr> vs;
  for (size_t i = 0; i < n; ++i) vs.push_back(element_of(vars, i, __func__, "vars")->variable);
  o->finalize_variable_values(vs);
  KILN_CAPI_END
}

kiln_status *kiln_learning_rate_schedule_call(double *out, const kiln_config *schedule, int64_t step) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(schedule, __func__, "schedule");
  *out = (*kiln::train::deserialize_schedule(schedule->value))(step);
  KILN_CAPI_END
}

kiln_status *kiln_learning_rate_schedule_get_config(kiln_config **out, const kiln_config *schedule) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(schedule, __func__, "schedule");
  *out = new kiln_config{kiln::train::deserialize_schedule(schedule->value)->serialize()};
  KILN_CAPI_END
}
