// More reductions and the small normalisation ops built on them: argmin, reduce_prod,
// reduce_any/all, reduce_logsumexp, moments, l2_normalize and bias_add. Where an op is a
// composition of differentiable ops it takes its gradient from them.
#include <limits>

#include "kernels/scan.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"
#include "ops/reduce_internal.h"

namespace kiln::ops {

namespace {

// A reduction over `axes` seen as rows: x with its kept axes first and reduced axes last,
// reshaped to [rows, n]; the output shapes with and without keepdims.
struct RowPlan {
  Tensor rows;  // [rows, n]
  int64_t num_rows = 1, n = 1;
  Shape keep_shape, out_shape;
  std::vector<int64_t> perm;  // x's axes in rows' order (kept, then reduced)
  bool moved = false;         // rows is a transpose of x (by perm)
};

// Validates the axes; `rows` is only built (a transpose when needed) for with_rows.
RowPlan plan_rows(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims, const char *op,
                  bool with_rows = false) {
  const int rank = x.rank();
  std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty());
  std::vector<bool> named(static_cast<size_t>(rank), false);
  for (int64_t axis : axes) {
    const int a = normalize_axis(axis, rank, op);
    if (named[static_cast<size_t>(a)])
      fail(Code::kInvalidArgument, op, ": axes ", list_string(axes), " name axis ", a, " of ",
           x.description(), " more than once; expected distinct axes");
    named[static_cast<size_t>(a)] = reduced[static_cast<size_t>(a)] = true;
  }
  RowPlan p;
  std::vector<int64_t> perm, kept_perm;
  bool moved = false;
  for (int i = 0; i < rank; ++i) {
    const bool r = reduced[static_cast<size_t>(i)];
    p.keep_shape.push_back(r ? 1 : x.shape()[i]);
    if (!r || keepdims) p.out_shape.push_back(r ? 1 : x.shape()[i]);
    if (r) {
      p.n *= x.shape()[i];
    } else {
      p.num_rows *= x.shape()[i];
      moved = moved || !perm.empty();  // a kept axis after a reduced one
      kept_perm.push_back(i);
    }
    if (r) perm.push_back(i);
  }
  kept_perm.insert(kept_perm.end(), perm.begin(), perm.end());
  p.perm = kept_perm;
  p.moved = moved;
  if (!with_rows) return p;
  p.rows = moved ? transpose(x, kept_perm) : x;
  p.rows = p.rows.reshaped(Shape{p.num_rows, p.n});
  return p;
}

Tensor row_reduce(kernels::RowReduce kind, const Tensor &x, const std::vector<int64_t> &axes, bool keepdims,
                  const char *op) {
  RowPlan p = plan_rows(x, axes, keepdims, op, true);
  Tensor out = Tensor::empty(x.dtype(), p.out_shape);
  kernels::reduce_rows(kind, x.dtype(), p.rows.raw_data(), p.num_rows, p.n, out.raw_mutable_data());
  return out;
}

// A scalar of t's dtype.
Tensor scalar_like(double v, const Tensor &t) { return fill(Shape{}, v, t.dtype()); }

}  // namespace

Tensor argmin(const Tensor &x, int64_t axis) { return internal::arg_reduce("argmin", x, axis, kernels::argmin); }

Tensor reduce_prod(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  // bfloat16 computes in float32 and rounds once, as TF's mixed precision; the casts carry the gradient.
  if (x.dtype() == DType::kBFloat16)
    return cast(reduce_prod(cast(x, DType::kFloat32), axes, keepdims), x.dtype());
  require_dtype(x, "reduce_prod", "x", {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64});
  Tensor out = row_reduce(kernels::RowReduce::kProd, x, axes, keepdims, "reduce_prod");
  if (internal::has_float_gradient(x) && should_record({&x})) {
    record("reduce_prod", {x}, {out}, [x, axes](const Grads &g) -> Grads {
      // d prod / d x_i is the product of the others: TF's rule, the exclusive products from
      // the left times those from the right, over x's groups as rows (kept axes first). No
      // division, so zeros, infinities and NaNs reach only the others' products they are in.
      // Ops throughout (reshape, not a view), so higher orders flow through cumprod's rule.
      const RowPlan p = plan_rows(x, axes, true, "reduce_prod");
      const Tensor rows = reshape(p.moved ? transpose(x, p.perm) : x, {p.num_rows, p.n});
      const Tensor others = mul(cumprod(rows, 1, true, false), cumprod(rows, 1, true, true));
      Tensor dx = mul(others, reshape(g[0], {p.num_rows, 1}));
      if (!p.moved) return {reshape(dx, x.shape().to_vector())};
      std::vector<int64_t> permuted, inverse(p.perm.size());
      for (size_t i = 0; i < p.perm.size(); ++i) {
        permuted.push_back(x.shape()[static_cast<int>(p.perm[i])]);
        inverse[static_cast<size_t>(p.perm[i])] = static_cast<int64_t>(i);
      }
      return {transpose(reshape(dx, permuted), inverse)};
    });
  }
  return out;
}

Tensor reduce_any(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  require_dtype(x, "reduce_any", "x", {DType::kBool});
  return row_reduce(kernels::RowReduce::kAny, x, axes, keepdims, "reduce_any");
}

Tensor reduce_all(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  require_dtype(x, "reduce_all", "x", {DType::kBool});
  return row_reduce(kernels::RowReduce::kAll, x, axes, keepdims, "reduce_all");
}

Tensor reduce_logsumexp(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  // bfloat16 computes in float32 and rounds once, as TF's mixed precision; the casts carry the gradient.
  if (x.dtype() == DType::kBFloat16)
    return cast(reduce_logsumexp(cast(x, DType::kFloat32), axes, keepdims), x.dtype());
  require_dtype(x, "reduce_logsumexp", "x", {DType::kFloat32, DType::kFloat64});
  RowPlan p = plan_rows(x, axes, keepdims, "reduce_logsumexp");  // validates the axes
  // As TF: shift by the maximum, replaced by 0 where it is not finite, so a row of -inf gives
  // log(0) = -inf (not NaN) and a +inf gives +inf. The shift carries no gradient.
  Tensor raw = max(x, axes, true);
  Tensor finite = less(abs(raw), scalar_like(std::numeric_limits<double>::infinity(), x));
  Tensor shift = stop_gradient(where(finite, raw, zeros_like(raw)));
  Tensor r = add(log(sum(exp(sub(x, shift)), axes, true)), shift);
  return keepdims ? r : reshape(r, p.out_shape.to_vector());
}

MomentsResult moments(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  require_floating(x, "moments", "x");
  RowPlan p = plan_rows(x, axes, keepdims, "moments");
  // TF's form: the variance is the mean squared deviation from a mean that carries no gradient
  // (the true gradient through the mean is zero anyway).
  Tensor m = mean(x, axes, true);
  Tensor v = mean(square(sub(x, stop_gradient(m))), axes, true);
  if (!keepdims) {
    m = reshape(m, p.out_shape.to_vector());
    v = reshape(v, p.out_shape.to_vector());
  }
  return {m, v};
}

Tensor l2_normalize(const Tensor &x, const std::vector<int64_t> &axes, float epsilon) {
  require_floating(x, "l2_normalize", "x");
  if (!(epsilon >= 0.0f))
    fail(Code::kInvalidArgument, "l2_normalize: epsilon is ", epsilon, " for ", x.description(),
         "; expected epsilon >= 0");
  plan_rows(x, axes, true, "l2_normalize");  // validates the axes
  // bfloat16 computes in float32 and rounds once, as TF's mixed precision; the casts carry the gradient.
  if (x.dtype() == DType::kBFloat16)
    return cast(l2_normalize(cast(x, DType::kFloat32), axes, epsilon), x.dtype());
  Tensor square_sum = sum(square(x), axes, true);
  return mul(x, rsqrt(maximum(square_sum, scalar_like(epsilon, x))));
}

Tensor bias_add(const Tensor &value, const Tensor &bias) {
  require_dtype(value, "bias_add", "value", kArithmetic);
  require_defined(bias, "bias_add", "bias");
  if (value.rank() < 2 || bias.rank() != 1 || bias.shape()[0] != value.shape()[value.rank() - 1] ||
      bias.dtype() != value.dtype())
    fail(Code::kInvalidArgument, "bias_add: value ", value.description(), " and bias ", bias.description(),
         " do not match; expected value of rank >= 2 and a bias of its dtype with shape [",
         value.rank() > 0 ? value.shape()[value.rank() - 1] : 0, "] (its last dim, channels last)");
  return add(value, bias);  // add's gradient sums the bias gradient over all but the last axis
}

}  // namespace kiln::ops
