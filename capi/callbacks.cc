// Callbacks across the ABI: kiln_callback handles, each holding one shared reference to a core
// callback (as kiln_loss does).
#include "train/callbacks.h"

#include <memory>

#include "capi/handles.h"
#include "capi/train_handles.h"

using kiln::capi::config_or_empty;
using kiln::capi::require_not_null;

extern "C" {

kiln_status *kiln_callback_create(kiln_callback **out, const char *class_name, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(class_name, __func__, "class_name");
  *out = new kiln_callback{kiln::train::create_callback(class_name, config_or_empty(config))};
  KILN_CAPI_END
}

kiln_status *kiln_callback_clone(kiln_callback **out, const kiln_callback *callback) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(callback, __func__, "callback");
  *out = new kiln_callback{callback->callback};
  KILN_CAPI_END
}

void kiln_callback_free(kiln_callback *callback) { delete callback; }

const char *kiln_callback_get_class_name(const kiln_callback *callback) {
  return callback ? callback->callback->class_name().c_str() : nullptr;
}

kiln_status *kiln_callback_get_history(kiln_config **out, const kiln_callback *callback) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(callback, __func__, "callback");
  auto *history = dynamic_cast<const kiln::train::History *>(callback->callback.get());
  if (!history)
    kiln::fail(kiln::Code::kFailedPrecondition, __func__, ": callback is a ", callback->callback->class_name(),
               "; expected a History (the callback fit returns)");
  *out = new kiln_config{history->record()};
  KILN_CAPI_END
}

}  // extern "C"
