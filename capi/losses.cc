// Losses and metrics across the ABI: kiln_loss and kiln_metric handles, each holding one shared
// reference to a core object (as kiln_layer does).
#include "train/losses.h"

#include <memory>

#include "capi/handles.h"
#include "capi/options.h"
#include "capi/train_handles.h"

using kiln::Config;
using kiln::capi::config_or_empty;
using kiln::capi::require_not_null;
using kiln::train::LossPtr;

namespace {

}  // namespace

namespace kiln::capi {

const LossPtr &loss_of(const kiln_loss *l, const char *fn, const char *arg) {
  require_not_null(l, fn, arg);
  return l->loss;
}

}  // namespace kiln::capi

using kiln::capi::loss_of;

extern "C" {

kiln_status *kiln_loss_create(kiln_loss **out, const char *name, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(name, __func__, "name");
  *out = new kiln_loss{kiln::train::create_loss(name, config_or_empty(config))};
  KILN_CAPI_END
}

kiln_status *kiln_loss_create_custom(kiln_loss **out, const char *class_name, const char *fn_name,
                                     const kiln_config *config, const kiln_loss_callbacks *callbacks,
                                     void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(fn_name, __func__, "fn_name");
  require_not_null(callbacks, __func__, "callbacks");
  const kiln_loss_callbacks cb = kiln::capi::read_options(
      callbacks, kiln_loss_callbacks{}, KILN_OPTIONS_V1_SIZE(kiln_loss_callbacks, destroy), __func__,
      "kiln_loss_callbacks", "callbacks.struct_size = sizeof(kiln_loss_callbacks)");
  if (!cb.call)
    kiln::fail(kiln::Code::kInvalidArgument, __func__, ": callbacks->call is NULL; a loss needs a call");
  auto state = std::make_shared<kiln::capi::ForeignUserData>(user_data);
  const std::string name = fn_name;
  const auto fn = cb.call;
  auto call = [fn, state, name](const kiln::Tensor &y_true, const kiln::Tensor &y_pred) {
    const kiln_tensor t{y_true}, p{y_pred};
    kiln_tensor *values = nullptr;
    kiln_status *st = fn(&values, &t, &p, state->user_data);
    if (values == &t || values == &p) {
      values = nullptr;  // a borrowed argument handed back: not the callback's to give
      if (!st)
        kiln::fail(
            kiln::Code::kInvalidArgument, "loss function ", name,
            ": it gave back its borrowed y_true or y_pred; expected a new tensor (kiln_tensor_clone it)");
    }
    std::unique_ptr<kiln_tensor> owned(values);
    kiln::capi::check_foreign(st, "loss function " + name);
    if (!owned) kiln::fail(kiln::Code::kInvalidArgument, "loss function ", name, ": it gave no tensor");
    return std::move(owned->value);
  };
  kiln::train::LossPtr loss =
      kiln::train::make_function_loss(class_name ? class_name : kiln::train::kLossFunctionWrapper, name,
                                      std::move(call), config_or_empty(config));
  *out = new kiln_loss{std::move(loss)};
  state->destroy = cb.destroy;  // handed over: the loss's end frees user_data
  KILN_CAPI_END
}

kiln_status *kiln_loss_register_class(const char *name, const kiln_loss_class_callbacks *callbacks,
                                      void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(name, __func__, "name");
  require_not_null(callbacks, __func__, "callbacks");
  const kiln_loss_class_callbacks cb = kiln::capi::read_options(
      callbacks, kiln_loss_class_callbacks{}, KILN_OPTIONS_V1_SIZE(kiln_loss_class_callbacks, destroy),
      __func__, "kiln_loss_class_callbacks", "callbacks.struct_size = sizeof(kiln_loss_class_callbacks)");
  if (!cb.from_config)
    kiln::fail(kiln::Code::kInvalidArgument, __func__,
               ": callbacks->from_config is NULL; a loss class needs a factory");
  if (!*name) kiln::fail(kiln::Code::kInvalidArgument, __func__, ": name is empty");
  // Shared by the copies of the factory: destroy runs after unregistration and the last running call.
  auto state = std::make_shared<kiln::capi::ForeignUserData>(user_data);
  const std::string what = std::string("loss '") + name + "' from_config";
  const auto from_config = cb.from_config;
  kiln::train::register_loss(name, [state, from_config, what](const Config &config) {
    const kiln_config c{config};
    kiln_loss *made = nullptr;
    kiln_status *st = from_config(&made, &c, state->user_data);
    std::unique_ptr<kiln_loss> owned(made);
    kiln::capi::check_foreign(st, what);
    if (!owned || !owned->loss) kiln::fail(kiln::Code::kInternal, what, " succeeded but gave no loss");
    return owned->loss;
  });
  state->destroy = cb.destroy;  // registered: from here on kiln frees user_data
  KILN_CAPI_END
}

kiln_status *kiln_loss_unregister_class(const char *name) {
  KILN_CAPI_BEGIN
  require_not_null(name, __func__, "name");
  kiln::train::unregister_loss(name);
  KILN_CAPI_END
}

kiln_status *kiln_loss_deserialize(kiln_loss **out, const kiln_config *serialized) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(serialized, __func__, "serialized");
  *out = new kiln_loss{kiln::train::deserialize_loss(serialized->value)};
  KILN_CAPI_END
}

kiln_status *kiln_loss_serialize(kiln_config **out, const kiln_loss *loss) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{kiln::train::serialize_loss(*loss_of(loss, __func__, "loss"))};
  KILN_CAPI_END
}

kiln_status *kiln_loss_get_config(kiln_config **out, const kiln_loss *loss) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{loss_of(loss, __func__, "loss")->get_config()};
  KILN_CAPI_END
}

kiln_status *kiln_loss_clone(kiln_loss **out, const kiln_loss *loss) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_loss{loss_of(loss, __func__, "loss")};
  KILN_CAPI_END
}

void kiln_loss_free(kiln_loss *loss) { delete loss; }

uint64_t kiln_loss_get_id(const kiln_loss *loss) { return loss ? loss->loss->id() : 0; }
const char *kiln_loss_get_name(const kiln_loss *loss) { return loss ? loss->loss->name().c_str() : nullptr; }
const char *kiln_loss_get_class_name(const kiln_loss *loss) {
  return loss ? loss->loss->class_name().c_str() : nullptr;
}

bool kiln_loss_is_registered(const char *name) {
  try {
    return name && kiln::train::loss_registered(name);
  } catch (...) {
    return false;
  }
}

kiln_status *kiln_loss_call(kiln_tensor **out, const kiln_loss *loss, const kiln_tensor *y_true,
                            const kiln_tensor *y_pred, const kiln_tensor *sample_weight) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const LossPtr &l = loss_of(loss, __func__, "loss");
  const kiln::Tensor &t = kiln::capi::tensor_of(y_true, __func__, "y_true");
  const kiln::Tensor &p = kiln::capi::tensor_of(y_pred, __func__, "y_pred");
  *out = kiln::capi::new_tensor((*l)(t, p, sample_weight ? sample_weight->value : kiln::Tensor()));
  KILN_CAPI_END
}

}  // extern "C"
