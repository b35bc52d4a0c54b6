// Entry point of einsum (kiln/ops.h, "einsum").
#include <string>
#include <vector>

#include "capi/handles.h"
#include "ops/ops.h"

using kiln::capi::element_of;
using kiln::capi::new_tensor;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;

extern "C" {

kiln_status *kiln_einsum(kiln_tensor **out, const char *equation, const kiln_tensor *const *inputs,
                         size_t num_inputs) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_einsum";
  require_not_null(out, fn, "out");
  require_not_null(equation, fn, "equation");
  require_array_fits(num_inputs, sizeof(const kiln_tensor *), fn, "num_inputs");
  if (num_inputs > 0) require_not_null(inputs, fn, "inputs");
  std::vector<kiln::Tensor> ts;
  for (size_t i = 0; i < num_inputs; ++i) {
    if (!inputs[i]) kiln::fail(kiln::Code::kInvalidArgument, fn, ": inputs[", i, "] is NULL");
    ts.push_back(inputs[i]->value);
  }
  *out = new_tensor(kiln::ops::einsum(std::string(equation), ts));
  KILN_CAPI_END
}

}  // extern "C"
