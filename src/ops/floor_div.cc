// floordiv and floormod (Python's // and %): integer division rounds toward -inf and the
// remainder takes the divisor's sign, as in Python and TF. Integer division by zero is an
// InvalidArgument error, as TF raises.
#include "kernels/floor_div.h"

#include <optional>

#include "kernels/elementwise.h"
#include "ops/elementwise_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

Tensor floor_forward(const char *op, const Tensor &a, const Tensor &b, bool div) {
  require_same_dtype(a, b, op);
  require_dtype(a, op, "a", {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64});
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  if (kernels::contains_zero(b.dtype(), b.raw_data(), b.num_elements()))
    fail(Code::kInvalidArgument, op, ": integer division by zero (b is ", b.description(),
         "); expected no zero divisor");
  // The kernel reads same-shaped operands; broadcasting here keeps it one flat loop.
  Tensor ab = a.shape() == shape ? a : stop_gradient(broadcast_to(a, shape));
  Tensor bb = b.shape() == shape ? b : stop_gradient(broadcast_to(b, shape));
  Tensor out = Tensor::empty(a.dtype(), shape);
  (div ? kernels::floordiv : kernels::floormod)(a.dtype(), ab.raw_data(), bb.raw_data(), out.num_elements(),
                                                out.raw_mutable_data());
  return out;
}

// bfloat16 operands compute in float32 and round once, as TF's bfloat16 kernels; the casts carry
// the gradient. nullopt for other dtypes.
std::optional<Tensor> in_float32(const Tensor &a, const Tensor &b, const char *op,
                                 Tensor (*f)(const Tensor &, const Tensor &)) {
  if (a.dtype() != DType::kBFloat16 && b.dtype() != DType::kBFloat16) return std::nullopt;
  require_same_dtype(a, b, op);
  return cast(f(cast(a, DType::kFloat32), cast(b, DType::kFloat32)), DType::kBFloat16);
}

}  // namespace

Tensor floordiv(const Tensor &a, const Tensor &b) {
  if (auto r = in_float32(a, b, "floordiv", floordiv)) return *r;
  // No gradient, as in TF: the result is piecewise constant.
  return floor_forward("floordiv", a, b, true);
}

Tensor floormod(const Tensor &a, const Tensor &b) {
  if (auto r = in_float32(a, b, "floormod", floormod)) return *r;
  Tensor out = floor_forward("floormod", a, b, false);
  if (is_floating(a.dtype()) && should_record({&a, &b})) {
    // a - floor(a / b) * b: d/da = 1, d/db = -floor(a / b) (TF's rule).
    record("floormod", {a, b}, {out}, [a, b](const Grads &g) {
      return Grads{internal::reduce_to(g[0], a.shape()),
                   internal::reduce_to(mul(g[0], neg(floordiv(a, b))), b.shape())};
    });
  }
  return out;
}

}  // namespace kiln::ops
