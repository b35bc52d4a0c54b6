// Reductions over axes, argmax, and sum_to_shape (the reverse of broadcasting).
#include "kernels/reduce.h"

#include <string>

#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"
#include "ops/reduce_internal.h"

namespace kiln::ops {

namespace {

using kernels::ReduceKind;

// What a reduction over `axes` of x does: which axes go, and the output shapes with and without them.
struct Plan {
  std::vector<bool> reduced;
  std::vector<int64_t> keep_shape;  // x's shape with reduced axes set to 1
  Shape out_shape;
  int64_t count = 1;  // elements combined into each output
};

Plan make_plan(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims, const char *op) {
  const int rank = x.rank();
  Plan p;
  p.reduced.assign(static_cast<size_t>(rank), axes.empty());
  for (int64_t axis : axes) {
    int a = normalize_axis(axis, rank, op);
    if (p.reduced[static_cast<size_t>(a)])
      fail(Code::kInvalidArgument, op, ": axes ", list_string(axes), " name axis ", a, " of ",
           x.description(), " more than once; expected distinct axes");
    p.reduced[static_cast<size_t>(a)] = true;
  }
  for (int i = 0; i < rank; ++i) {
    bool r = p.reduced[static_cast<size_t>(i)];
    p.keep_shape.push_back(r ? 1 : x.shape()[i]);
    if (r) p.count *= x.shape()[i];
    if (!r || keepdims) p.out_shape.push_back(r ? 1 : x.shape()[i]);
  }
  return p;
}

// g has the reduction's output shape; returns it broadcast back to x's shape.
Tensor expand_grad(const Tensor &g, const std::vector<int64_t> &keep_shape, const Shape &x_shape,
                   bool keepdims) {
  Tensor gk = keepdims ? g : reshape(g, keep_shape);
  return broadcast_to(gk, x_shape);
}

Tensor run_reduce(ReduceKind kind, const Tensor &x, const Plan &p) {
  Tensor out = Tensor::empty(x.dtype(), p.out_shape);
  kernels::reduce(kind, x.dtype(), x.raw_data(), x.shape(), p.reduced, out.raw_mutable_data());
  return out;
}

// max and min: the gradient goes to the positions holding the extreme value, split
// equally among ties (as TF does). Like TF, an empty reduction gives -inf (max) or +inf
// (min); for integers the lowest or highest value.
Tensor reduce_extreme(ReduceKind kind, const char *op, const Tensor &x, const std::vector<int64_t> &axes,
                      bool keepdims) {
  require_dtype(x, op, "x", kArithmetic);
  Plan p = make_plan(x, axes, keepdims, op);
  Tensor out = run_reduce(kind, x, p);
  if (is_floating(x.dtype()) && should_record({&x})) {
    record(op, {x}, {out}, [x, out, axes, keepdims, keep = p.keep_shape](const Grads &g) -> Grads {
      // bfloat16 through float32 (exact for the comparison; the share rounds once at the end).
      const DType ct = internal::gradient_dtype(x);
      const Tensor y = internal::as_dtype(keepdims ? out : reshape(out, keep), ct);
      const Tensor hit = cast(equal(internal::as_dtype(x, ct), y), ct);
      const Tensor share = div(hit, sum(hit, axes, true));
      const Tensor dy = internal::as_dtype(keepdims ? g[0] : reshape(g[0], keep), ct);
      return {internal::as_dtype(mul(share, dy), x.dtype())};
    });
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  require_dtype(x, "sum", "x", kArithmetic);
  Plan p = make_plan(x, axes, keepdims, "sum");
  Tensor out = run_reduce(ReduceKind::kSum, x, p);
  if (is_floating(x.dtype()) && should_record({&x})) {
    Shape x_shape = x.shape();
    record("sum", {x}, {out}, [keep = p.keep_shape, x_shape, keepdims](const Grads &g) -> Grads {
      return {expand_grad(g[0], keep, x_shape, keepdims)};
    });
  }
  return out;
}

Tensor mean(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  require_dtype(x, "mean", "x", kArithmetic);
  Plan p = make_plan(x, axes, keepdims, "mean");
  if (!is_floating(x.dtype())) {
    // As TF's integer mean: the (wrapping) sum divided by the count, truncated toward zero; 0
    // where no element is combined. No gradient, as for every integer op.
    Tensor total = run_reduce(ReduceKind::kSum, x, p);
    return p.count == 0 ? total : div(total, fill(Shape{}, static_cast<double>(p.count), x.dtype()));
  }
  Tensor out = run_reduce(ReduceKind::kMean, x, p);
  if (should_record({&x})) {
    Shape x_shape = x.shape();
    record("mean", {x}, {out},
           [keep = p.keep_shape, count = p.count, x_shape, keepdims,
            dtype = x.dtype()](const Grads &g) -> Grads {
             // The gradient divided by the count, as TF's mean gradient divides (bfloat16 through
             // float32, rounded once).
             const DType ct = dtype == DType::kBFloat16 ? DType::kFloat32 : dtype;
             const Tensor divisor = fill(Shape{}, static_cast<double>(count), ct);
             const Tensor dx =
                 div(expand_grad(internal::as_dtype(g[0], ct), keep, x_shape, keepdims), divisor);
             return {internal::as_dtype(dx, dtype)};
           });
  }
  return out;
}

Tensor max(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  return reduce_extreme(ReduceKind::kMax, "max", x, axes, keepdims);
}

Tensor min(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  return reduce_extreme(ReduceKind::kMin, "min", x, axes, keepdims);
}

Tensor internal::arg_reduce(const char *op, const Tensor &x, int64_t axis, ArgKernel kernel) {
  require_dtype(x, op, "x", kArithmetic);
  if (x.rank() == 0) fail(Code::kInvalidArgument, op, ": argument 'x' is ", x.description(), "; expected rank >= 1");
  const int a = normalize_axis(axis, x.rank(), op);
  if (x.shape()[a] == 0)
    fail(Code::kInvalidArgument, op, ": axis ", axis, " of ", x.description(), " is empty; expected at least one element");
  Shape out_shape;
  for (int i = 0; i < x.rank(); ++i)
    if (i != a) out_shape.push_back(x.shape()[i]);
  Tensor out = Tensor::empty(DType::kInt64, out_shape);
  const internal::AxisView v = internal::axis_view(x.shape(), a);
  kernel(x.dtype(), x.raw_data(), v.outer, v.n, v.inner, out.mutable_data<int64_t>());
  return out;
}

Tensor argmax(const Tensor &x, int64_t axis) { return internal::arg_reduce("argmax", x, axis, kernels::argmax); }

Tensor sum_to_shape(const Tensor &grad, const Shape &shape) {
  require_dtype(grad, "sum_to_shape", "grad", kArithmetic);
  if (grad.shape() == shape) return grad;
  const int rank = grad.rank(), lead = rank - shape.rank();
  std::vector<bool> reduced(static_cast<size_t>(rank > 0 ? rank : 0));
  bool ok = lead >= 0;
  for (int i = 0; ok && i < rank; ++i) {
    int64_t want = i < lead ? 1 : shape[i - lead];
    ok = want == grad.shape()[i] || want == 1;
    reduced[static_cast<size_t>(i)] = i < lead || (want == 1 && grad.shape()[i] != 1);
  }
  if (!ok)
    fail(Code::kInvalidArgument, "sum_to_shape: cannot sum ", grad.description(), " down to shape ",
         shape.to_string(), "; expected a shape that broadcasts to ", grad.shape().to_string());
  Tensor out = Tensor::empty(grad.dtype(), shape);
  kernels::reduce(ReduceKind::kSum, grad.dtype(), grad.raw_data(), grad.shape(), reduced,
                  out.raw_mutable_data());
  if (is_floating(grad.dtype()) && should_record({&grad})) {
    Shape grad_shape = grad.shape();
    record("sum_to_shape", {grad}, {out},
           [grad_shape](const Grads &g) -> Grads { return {broadcast_to(g[0], grad_shape)}; });
  }
  return out;
}

}  // namespace kiln::ops
