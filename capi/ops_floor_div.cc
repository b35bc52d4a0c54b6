// Entry points of floordiv and floormod (kiln/ops.h, "floor division").
#include "capi/handles.h"
#include "ops/ops.h"

using kiln::capi::new_tensor;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

extern "C" {

kiln_status *kiln_floordiv(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_floordiv", "out");
  *out = new_tensor(ops::floordiv(tensor_of(a, "kiln_floordiv", "a"), tensor_of(b, "kiln_floordiv", "b")));
  KILN_CAPI_END
}

kiln_status *kiln_floormod(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_floormod", "out");
  *out = new_tensor(ops::floormod(tensor_of(a, "kiln_floormod", "a"), tensor_of(b, "kiln_floormod", "b")));
  KILN_CAPI_END
}

}  // extern "C"
