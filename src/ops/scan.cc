// cumsum, cumprod and top_k: hand-written kernels (kernels/scan.cc) with gradient rules in ops.
#include "kernels/scan.h"

#include <limits>

#include "ops/array_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"
#include "ops/reduce_internal.h"

namespace kiln::ops {

namespace {

using ScanKernel = void (*)(bool, bool, DType, const void *, int64_t, int64_t, int64_t, void *);

// cumsum's and cumprod's checks and kernel call along axis; *a gets the axis made non-negative.
Tensor scan(const char *op, ScanKernel kernel, const Tensor &x, int64_t axis, bool exclusive, bool reverse,
            int *a) {
  require_dtype(x, op, "x", {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64});
  if (x.rank() == 0)
    fail(Code::kInvalidArgument, op, ": argument 'x' is ", x.description(), "; expected rank >= 1");
  *a = normalize_axis(axis, x.rank(), op);
  const internal::AxisView v = internal::axis_view(x.shape(), *a);
  Tensor out = Tensor::empty(x.dtype(), x.shape());
  kernel(exclusive, reverse, x.dtype(), x.raw_data(), v.outer, v.n, v.inner, out.raw_mutable_data());
  return out;
}

}  // namespace

Tensor cumsum(const Tensor &x, int64_t axis, bool exclusive, bool reverse) {
  // bfloat16 computes in float32 and rounds once, as TF's mixed precision; the casts carry the gradient.
  if (x.dtype() == DType::kBFloat16)
    return cast(cumsum(cast(x, DType::kFloat32), axis, exclusive, reverse), x.dtype());
  int a = 0;
  Tensor out = scan("cumsum", kernels::cumsum, x, axis, exclusive, reverse, &a);
  if (internal::has_float_gradient(x) && should_record({&x})) {
    // Each input feeds the sums after it (before it when reversed): the reverse scan of g.
    record("cumsum", {x}, {out}, [a, exclusive, reverse](const Grads &g) -> Grads {
      return {cumsum(g[0], a, exclusive, !reverse)};
    });
  }
  return out;
}

Tensor cumprod(const Tensor &x, int64_t axis, bool exclusive, bool reverse) {
  // bfloat16 computes in float32 and rounds once, as TF's mixed precision; the casts carry the gradient.
  if (x.dtype() == DType::kBFloat16)
    return cast(cumprod(cast(x, DType::kFloat32), axis, exclusive, reverse), x.dtype());
  int a = 0;
  Tensor out = scan("cumprod", kernels::cumprod, x, axis, exclusive, reverse, &a);
  if (internal::has_float_gradient(x) && should_record({&x})) {
    // TF's rule: each input feeds the products after it, each of which it divides out; inputs
    // that are 0 get 0 (div_no_nan).
    record("cumprod", {x}, {out}, [x, a, exclusive, reverse](const Grads &g) -> Grads {
      const Tensor prod = cumprod(x, a, exclusive, reverse);
      const Tensor s = cumsum(mul(prod, g[0]), a, exclusive, !reverse);
      const Tensor is_zero = equal(x, fill(Shape({}), 0.0, x.dtype()));
      return {where(is_zero, zeros_like(x), div(s, where(is_zero, ones_like(x), x)))};
    });
  }
  return out;
}

TopKResult top_k(const Tensor &x, int64_t k, bool sorted) {
  (void)sorted;  // the k values always come out sorted, which TF allows for sorted=false too
  // bfloat16 through float32 (exact both ways); the casts carry the gradient.
  if (x.dtype() == DType::kBFloat16) {
    TopKResult r = top_k(cast(x, DType::kFloat32), k, sorted);
    r.values = cast(r.values, DType::kBFloat16);
    return r;
  }
  require_dtype(x, "top_k", "x", {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64});
  if (x.rank() == 0)
    fail(Code::kInvalidArgument, "top_k: argument 'x' is ", x.description(), "; expected rank >= 1");
  const int64_t n = x.shape()[x.rank() - 1];
  if (k < 0 || k > n)
    fail(Code::kInvalidArgument, "top_k: k is ", k, " for ", x.description(), "; expected 0 <= k <= ", n,
         " (the last dim)");
  if (n > std::numeric_limits<int32_t>::max())
    fail(Code::kInvalidArgument, "top_k: the last dim of ", x.description(),
         " does not fit the int32 indices; expected at most 2^31 - 1");
  Shape out_shape = x.shape();
  out_shape.set_dim(x.rank() - 1, k, "top_k");
  const int64_t rows = n == 0 ? 0 : x.num_elements() / n;
  TopKResult r{Tensor::empty(x.dtype(), out_shape), Tensor::empty(DType::kInt32, out_shape)};
  kernels::top_k(x.dtype(), x.raw_data(), rows, n, k, r.values.raw_mutable_data(),
                 r.indices.mutable_data<int32_t>());
  if (internal::has_float_gradient(x) && should_record({&x})) {
    Shape x_shape = x.shape();
    Tensor indices = r.indices;
    record("top_k", {x}, {r.values, r.indices}, [x_shape, indices, rows, n, k](const Grads &g) -> Grads {
      // Scatter each value's gradient back to the position it came from: flatten to one axis,
      // offsetting each row's indices by row * n (scatter_add is gather's gradient and has its own).
      Tensor offsets = reshape(
          range(0.0, static_cast<double>(rows * n), static_cast<double>(n), DType::kInt64), {rows, 1});
      Tensor flat = reshape(add(reshape(cast(indices, DType::kInt64), {rows, k}), offsets), {rows * k});
      Tensor dx = internal::scatter_add(reshape(g[0], {rows * k}), flat, Shape{rows * n}, 0);
      return {reshape(dx, x_shape.to_vector())};
    });
  }
  return r;
}

}  // namespace kiln::ops
