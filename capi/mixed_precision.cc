// keras.mixed_precision through the C ABI: the global dtype policy and a layer's policy.
#include <cstdlib>
#include <cstring>
#include <new>

#include "capi/handles.h"
#include "kiln/layers.h"
#include "layers/layer.h"
#include "layers/policy.h"

namespace {

using kiln::capi::require_not_null;
using kiln::layers::Layer;

}  // namespace

kiln_status *kiln_dtype_policy_get_dtypes(kiln_dtype *out_compute, kiln_dtype *out_variable, const char *name) {
  KILN_CAPI_BEGIN
  require_not_null(out_compute, __func__, "out_compute");
  require_not_null(out_variable, __func__, "out_variable");
  require_not_null(name, __func__, "name");
  const kiln::layers::DTypePolicy p = kiln::layers::dtype_policy(name, __func__);
  *out_compute = static_cast<kiln_dtype>(p.compute_dtype);
  *out_variable = static_cast<kiln_dtype>(p.variable_dtype);
  KILN_CAPI_END
}

kiln_status *kiln_set_global_dtype_policy(const char *name) {
  KILN_CAPI_BEGIN
  require_not_null(name, __func__, "name");
  kiln::layers::set_global_policy(kiln::layers::dtype_policy(name, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_get_global_dtype_policy(char **out) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const std::string name = kiln::layers::global_policy().name;
  char *p = static_cast<char *>(std::malloc(name.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, name.c_str(), name.size() + 1);
  *out = p;
  KILN_CAPI_END
}

const char *kiln_layer_get_dtype_policy(const kiln_layer *layer) {
  const std::shared_ptr<Layer> l = kiln::capi::peek_layer(layer);
  return l ? l->dtype_policy().name.c_str() : nullptr;
}

kiln_dtype kiln_layer_get_compute_dtype(const kiln_layer *layer) {
  const std::shared_ptr<Layer> l = kiln::capi::peek_layer(layer);
  return l ? static_cast<kiln_dtype>(l->compute_dtype()) : static_cast<kiln_dtype>(0);
}

kiln_dtype kiln_layer_get_variable_dtype(const kiln_layer *layer) {
  const std::shared_ptr<Layer> l = kiln::capi::peek_layer(layer);
  return l ? static_cast<kiln_dtype>(l->variable_dtype()) : static_cast<kiln_dtype>(0);
}
