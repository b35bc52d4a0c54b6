// where (select with three-way broadcasting) and cast.
#include "core/error.h"
#include "kernels/elementwise.h"
#include "ops/elementwise_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

Tensor where(const Tensor &cond, const Tensor &x, const Tensor &y) {
  require_dtype(cond, "where", "cond", {DType::kBool});
  require_defined(x, "where", "x");
  require_defined(y, "where", "y");
  if (x.dtype() != y.dtype())
    fail(Code::kInvalidArgument, "where: x is ", x.description(), " and y is ", y.description(),
         "; expected the same dtype");
  const Shape out_shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(x.shape(), y.shape(), "where"), "where");
  Tensor out = Tensor::empty(x.dtype(), out_shape);
  kernels::select(cond.data<uint8_t>(), cond.shape(), x.raw_data(), x.shape(), y.raw_data(), y.shape(),
                  out.raw_mutable_data(), out_shape, dtype_size(x.dtype()));
  if (is_floating(x.dtype()) && should_record({&x, &y}))
    record("where", {cond, x, y}, {out}, [cond, xs = x.shape(), ys = y.shape()](const Grads &g) {
      const Tensor zero = internal::scalar_like(0.0, g[0]);
      return Grads{Tensor(), internal::reduce_to(where(cond, g[0], zero), xs),
                   internal::reduce_to(where(cond, zero, g[0]), ys)};
    });
  return out;
}

Tensor cast(const Tensor &x, DType dtype) {
  require_defined(x, "cast", "x");
  if (!dtype_valid(static_cast<int>(dtype)))
    fail(Code::kInvalidArgument, "cast: target dtype ", static_cast<int>(dtype), " for ", x.description(),
         " is not a dtype; expected one of float32, bfloat16, int32, int64, uint8, bool, float64");
  if (x.dtype() == dtype) return x;  // values are immutable: the same tensor is the cast
  Tensor out = Tensor::empty(dtype, x.shape());
  kernels::cast(x.dtype(), x.raw_data(), dtype, out.raw_mutable_data(), x.num_elements());
  // Between float types the gradient casts back; integer and bool values carry none.
  if (is_floating(x.dtype()) && is_floating(dtype) && should_record({&x}))
    record("cast", {x}, {out}, [from = x.dtype()](const Grads &g) { return Grads{cast(g[0], from)}; });
  return out;
}

}  // namespace kiln::ops
