// Custom layer classes registered from outside (C, kiln.hpp, Python): a class factory callback
// table behind the core's layer registry, so from_config and deserialization make them by name.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "capi/handles.h"

using kiln::Code;
using kiln::fail;
using kiln::capi::require_not_null;

namespace {

// One registration: its callbacks and user_data. The core registry's factory holds it, so its
// destroy runs when the last copy goes: after unregistration and after every running factory.
class ForeignClass {
 public:
  ForeignClass(std::string name, const kiln_layer_class_callbacks &cb, void *user_data)
      : name_(std::move(name)), cb_(cb), user_data_(user_data) {}
  ~ForeignClass() {
    if (cb_.destroy) cb_.destroy(user_data_);
  }
  void disarm() { cb_.destroy = nullptr; }
  ForeignClass(const ForeignClass &) = delete;
  ForeignClass &operator=(const ForeignClass &) = delete;

  kiln::layers::LayerPtr make(const kiln::Config &config) const {
    kiln_config c{config};
    kiln_layer *out = nullptr;
    if (kiln_status *st = cb_.from_config(&out, &c, user_data_)) {
      kiln_status_code code = kiln_status_get_code(st);
      std::string msg = kiln_status_get_message(st);
      kiln_status_free(st);
      kiln_layer_free(out);
      if (code <= KILN_STATUS_OK || code > KILN_STATUS_INTERNAL) code = KILN_STATUS_INTERNAL;
      fail(static_cast<Code>(code), "layer class '", name_, "' from_config: ", msg);
    }
    if (!out) fail(Code::kInternal, "layer class '", name_, "' from_config succeeded but gave no layer");
    kiln::layers::LayerPtr layer = kiln::capi::peek_layer(out);
    kiln_layer_free(out);
    if (!layer) fail(Code::kInternal, "layer class '", name_, "' from_config gave a weak handle to a layer that is gone");
    return layer;
  }

 private:
  std::string name_;
  kiln_layer_class_callbacks cb_;
  void *user_data_;
};

}  // namespace

extern "C" {

kiln_status *kiln_layer_register_class(const char *class_name, const kiln_layer_class_callbacks *callbacks,
                                       void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(class_name, __func__, "class_name");
  require_not_null(callbacks, __func__, "callbacks");
  if (callbacks->struct_size < offsetof(kiln_layer_class_callbacks, destroy) + sizeof(callbacks->destroy))
    fail(Code::kInvalidArgument, __func__, ": callbacks->struct_size is ", callbacks->struct_size,
         "; expected sizeof(kiln_layer_class_callbacks)");
  if (!callbacks->from_config)
    fail(Code::kInvalidArgument, __func__, ": callbacks->from_config is NULL; a class needs a factory");
  if (!*class_name) fail(Code::kInvalidArgument, __func__, ": class_name is empty");
  kiln_layer_class_callbacks cb{};
  std::memcpy(&cb, callbacks, std::min(callbacks->struct_size, sizeof cb));
  auto cls = std::make_shared<ForeignClass>(class_name, cb, user_data);
  try {
    kiln::layers::register_layer(class_name, [cls](const kiln::Config &config) { return cls->make(config); });
  } catch (...) {
    cls->disarm();  // a failed registration leaves user_data the caller's
    throw;
  }
  KILN_CAPI_END
}

kiln_status *kiln_layer_unregister_class(const char *class_name) {
  KILN_CAPI_BEGIN
  require_not_null(class_name, __func__, "class_name");
  kiln::layers::unregister_layer(class_name);
  KILN_CAPI_END
}

bool kiln_layer_class_is_registered(const char *class_name) {
  if (!class_name) return false;
  try {
    return kiln::layers::layer_registered(class_name);
  } catch (...) {
    return false;
  }
}

}  // extern "C"
