// layer_norm and batch_norm (channels last) and their backward ops.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "ops/nn_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"
#include "ops/reduce_internal.h"

namespace kiln::ops {

namespace {

// x's dtype rules. float64 computes in double; float32 and bfloat16 in float32 (bfloat16 rounds
// the result once, as TF's mixed precision). gamma and beta (and batch_norm's mean and variance)
// have x's dtype; with a bfloat16 x they may also be float32, as TF's fused batch norm takes them
// and Keras mixed precision keeps its LayerNormalization/BatchNormalization variables. Statistics
// the ops compute (batch_norm's batch mean and variance) come out in the compute dtype: float32
// for a bfloat16 x, as TF's FusedBatchNormV3.
DType compute_dtype(const Tensor &x) {
  return x.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

void require_param_dtype(const Tensor &t, const Tensor &x, const char *op, const char *arg) {
  if (x.dtype() == DType::kBFloat16)
    require_dtype(t, op, arg, {DType::kBFloat16, DType::kFloat32});
  else
    require_dtype(t, op, arg, {x.dtype()});
}

void require_channels(const Tensor &t, int64_t channels, const char *op, const char *arg, const Tensor &x) {
  require_param_dtype(t, x, op, arg);
  if (t.rank() != 1 || t.shape()[0] != channels)
    fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected ",
         dtype_name(t.dtype()), "[", channels, "] to match the last dim of x ", x.description());
}

void require_epsilon(float epsilon, const char *op) {
  if (!(epsilon >= 0.0f) || !std::isfinite(epsilon))
    fail(Code::kInvalidArgument, op, ": epsilon is ", epsilon, "; expected a finite value >= 0");
}

// Checks that x is floating of rank >= min_rank and returns its channel count (the last dim).
int64_t channels_of(const Tensor &x, int min_rank, const char *op) {
  require_floating(x, op, "x");
  if (x.rank() < min_rank)
    fail(Code::kInvalidArgument, op, ": argument 'x' is ", x.description(), "; expected rank >= ", min_rank,
         min_rank == 2 ? " ([N, C] or [N, H, W, C])" : "");
  return x.shape()[x.rank() - 1];
}

void require_like_x(const Tensor &dy, const Tensor &x, const char *op) {
  require_dtype(dy, op, "dy", {x.dtype()});
  if (dy.shape() != x.shape())
    fail(Code::kInvalidArgument, op, ": argument 'dy' is ", dy.description(), "; expected the shape of x ",
         x.description());
}

// Rows of the [rows, channels] matrix that x is seen as.
int64_t rows_of(const Tensor &x) {
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.rank(); ++i) rows *= x.shape()[i];
  return rows;
}

std::vector<int64_t> leading_axes(const Tensor &x) {
  std::vector<int64_t> axes;
  for (int i = 0; i + 1 < x.rank(); ++i) axes.push_back(i);
  return axes;
}

// t's values in dtype, converted by the kernel without recording (the forward ops record their own
// gradients); t itself when it has that dtype.
Tensor converted(const Tensor &t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(dtype, t.shape());
  kernels::cast(t.dtype(), t.raw_data(), dtype, out.raw_mutable_data(), t.num_elements());
  return out;
}

Tensor as(const Tensor &t, DType dtype) { return internal::as_dtype(t, dtype); }

// Calls f(T{}) with T the C++ type of a compute dtype (float32 or float64).
template <typename F>
void with_compute_type(DType cdt, F &&f) {
  if (cdt == DType::kFloat64)
    f(double{});
  else
    f(float{});
}

Tensor scalar_of(double v, DType dtype) { return fill(Shape{}, v, dtype); }

bool all_zero(const Tensor &t) {
  bool zero = true;
  with_compute_type(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = t.data<T>();
    for (int64_t i = 0; zero && i < t.num_elements(); ++i) zero = p[i] == T(0);
  });
  return zero;
}

// The gradients of a backward pass computed in the compute dtype, returned in x's and gamma's.
internal::NormGrads to_input_dtypes(const internal::NormGrads &r, const Tensor &x, const Tensor &gamma) {
  return {as(r.dx, x.dtype()), as(r.dgamma, gamma.dtype()), as(r.dbeta, gamma.dtype())};
}

// Sums over the leading axes of x (none for a rank-1 x: sum() with no axes would reduce all).
Tensor sum_leading(const Tensor &t, const std::vector<int64_t> &axes) {
  return axes.empty() ? t : sum(t, axes);
}

Tensor rstd_of(const Tensor &variance, float epsilon) {
  return rsqrt(add(variance, scalar_of(epsilon, variance.dtype())));
}

// ---- the backward passes as compositions of ops, so that an outer tape can differentiate them ----

internal::NormGrads layer_norm_grad_ops(const Tensor &x, const Tensor &gamma, const Tensor &dy,
                                        float epsilon) {
  const std::vector<int64_t> last{-1};
  const Tensor centred = sub(x, mean(x, last, true));
  const Tensor rstd = rstd_of(mean(square(centred), last, true), epsilon);
  const Tensor xhat = mul(centred, rstd);
  const Tensor g = mul(dy, gamma);
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) over the last axis.
  const Tensor dx = mul(rstd, sub(sub(g, mean(g, last, true)), mul(xhat, mean(mul(g, xhat), last, true))));
  const std::vector<int64_t> axes = leading_axes(x);
  return {dx, sum_leading(mul(dy, xhat), axes), sum_leading(dy, axes)};
}

internal::NormGrads batch_norm_grad_ops(const Tensor &x, const Tensor &gamma, const Tensor &mean_in,
                                        const Tensor &variance_in, const Tensor &dy, bool training,
                                        float epsilon) {
  const std::vector<int64_t> axes = leading_axes(x);
  const Tensor mu = training ? mean(x, axes) : mean_in;
  const Tensor centred = sub(x, mu);
  const Tensor rstd = rstd_of(training ? mean(square(centred), axes) : variance_in, epsilon);
  const Tensor xhat = mul(centred, rstd);
  const Tensor dgamma = sum(mul(dy, xhat), axes);
  const Tensor dbeta = sum(dy, axes);
  const Tensor scale = mul(gamma, rstd);
  if (!training) return {mul(dy, scale), dgamma, dbeta};
  // Through the batch statistics: dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
  const Tensor dx = mul(scale, sub(sub(dy, mean(dy, axes)), mul(xhat, mean(mul(dy, xhat), axes))));
  return {dx, dgamma, dbeta};
}

}  // namespace

// The kernel's case: the last axis. layer_norm below reshapes every other case into it.
static Tensor layer_norm_last_axis(const Tensor &x, const Tensor &gamma, const Tensor &beta, float epsilon) {
  const char *op = "layer_norm";
  const int64_t channels = channels_of(x, 1, op);
  require_channels(gamma, channels, op, "gamma", x);
  require_channels(beta, channels, op, "beta", x);
  require_epsilon(epsilon, op);
  require_dtype(beta, op, "beta", {gamma.dtype()});
  const int64_t rows = rows_of(x);
  const bool recording = should_record({&x, &gamma, &beta});
  const DType cdt = compute_dtype(x);
  const Tensor xc = converted(x, cdt), gc = converted(gamma, cdt), bc = converted(beta, cdt);
  Tensor yc = Tensor::empty(cdt, x.shape());
  Tensor mu, variance;
  if (recording) {
    mu = Tensor::empty(cdt, Shape{rows});
    variance = Tensor::empty(cdt, Shape{rows});
  }
  with_compute_type(cdt, [&](auto tag) {
    using T = decltype(tag);
    kernels::layer_norm_forward<T>(rows, channels, static_cast<T>(epsilon), xc.data<T>(), gc.data<T>(),
                                   bc.data<T>(), yc.mutable_data<T>(),
                                   recording ? mu.mutable_data<T>() : nullptr,
                                   recording ? variance.mutable_data<T>() : nullptr);
  });
  const Tensor y = converted(yc, x.dtype());
  if (recording)
    record(op, {x, gamma, beta}, {y}, [x, gamma, mu, variance, epsilon](const Grads &grads) -> Grads {
      internal::NormGrads r = internal::layer_norm_grad(x, gamma, mu, variance, grads[0], epsilon);
      return {r.dx, r.dgamma, r.dbeta};
    });
  return y;
}

internal::NormGrads internal::layer_norm_grad(const Tensor &x, const Tensor &gamma, const Tensor &mean,
                                              const Tensor &variance, const Tensor &dy, float epsilon) {
  const char *op = "layer_norm_grad";
  const int64_t channels = channels_of(x, 1, op), rows = rows_of(x);
  require_channels(gamma, channels, op, "gamma", x);
  require_like_x(dy, x, op);
  const DType cdt = compute_dtype(x);
  for (const Tensor *t : {&mean, &variance}) {
    require_dtype(*t, op, "statistics", {cdt});
    if (t->shape() != Shape{rows})
      fail(Code::kInvalidArgument, op, ": statistics tensor is ", t->description(), "; expected ",
           dtype_name(cdt), "[", rows, "] (one per row of x ", x.description(), ")");
  }
  if (should_record({&x, &gamma, &dy}))
    return to_input_dtypes(layer_norm_grad_ops(as(x, cdt), as(gamma, cdt), as(dy, cdt), epsilon), x, gamma);
  internal::NormGrads r{Tensor::empty(cdt, x.shape()), Tensor::empty(cdt, gamma.shape()),
                        Tensor::empty(cdt, gamma.shape())};
  const Tensor xc = converted(x, cdt), gc = converted(gamma, cdt), dyc = converted(dy, cdt);
  with_compute_type(cdt, [&](auto tag) {
    using T = decltype(tag);
    kernels::layer_norm_backward<T>(rows, channels, static_cast<T>(epsilon), xc.data<T>(), gc.data<T>(),
                                    mean.data<T>(), variance.data<T>(), dyc.data<T>(), r.dx.mutable_data<T>(),
                                    r.dgamma.mutable_data<T>(), r.dbeta.mutable_data<T>());
  });
  return to_input_dtypes(r, x, gamma);
}

BatchNormResult batch_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, const Tensor &mean,
                           const Tensor &variance, bool training, float epsilon) {
  const char *op = "batch_norm";
  const int64_t channels = channels_of(x, 2, op), rows = rows_of(x);
  require_channels(gamma, channels, op, "gamma", x);
  require_channels(beta, channels, op, "beta", x);
  // Training ignores the given statistics but checks them when given (they are usually the moving ones).
  if (!training || mean.defined()) require_channels(mean, channels, op, "mean", x);
  if (!training || variance.defined()) require_channels(variance, channels, op, "variance", x);
  require_epsilon(epsilon, op);
  if (training && rows == 0 && channels > 0)
    fail(Code::kInvalidArgument, op, ": x is ", x.description(),
         "; training needs at least one value per channel for the batch statistics");

  require_dtype(beta, op, "beta", {gamma.dtype()});

  const bool recording = should_record({&x, &gamma, &beta});
  const DType cdt = compute_dtype(x);
  const Tensor xc = converted(x, cdt), gc = converted(gamma, cdt), bc = converted(beta, cdt);
  Tensor yc = Tensor::empty(cdt, x.shape());
  BatchNormResult out{Tensor(), mean, variance};
  if (training) {
    out.mean = Tensor::empty(cdt, Shape{channels});
    out.variance = Tensor::empty(cdt, Shape{channels});
  }
  with_compute_type(cdt, [&](auto tag) {
    using T = decltype(tag);
    const T eps = static_cast<T>(epsilon);
    if (training) {
      kernels::batch_norm_forward_training<T>(rows, channels, eps, xc.data<T>(), gc.data<T>(), bc.data<T>(),
                                              yc.mutable_data<T>(), out.mean.mutable_data<T>(),
                                              out.variance.mutable_data<T>());
    } else {
      const Tensor mc = converted(mean, cdt), vc = converted(variance, cdt);
      kernels::batch_norm_forward_inference<T>(rows, channels, eps, xc.data<T>(), gc.data<T>(), bc.data<T>(),
                                               mc.data<T>(), vc.data<T>(), yc.mutable_data<T>());
    }
  });
  out.y = converted(yc, x.dtype());
  if (!recording) return out;
  if (!training) {
    // The given statistics are constants here, as in TF: no gradient for them.
    record(op, {x, gamma, beta}, {out.y}, [x, gamma, mean, variance, epsilon](const Grads &grads) -> Grads {
      internal::NormGrads r = internal::batch_norm_grad(x, gamma, mean, variance, grads[0], false, epsilon);
      return {r.dx, r.dgamma, r.dbeta};
    });
    return out;
  }
  const Tensor batch_mean = out.mean, batch_variance = out.variance;
  record(op, {x, gamma, beta}, {out.y, out.mean, out.variance},
         [x, gamma, batch_mean, batch_variance, epsilon, rows, cdt](const Grads &grads) -> Grads {
           internal::NormGrads r =
               internal::batch_norm_grad(x, gamma, batch_mean, batch_variance, grads[0], true, epsilon);
           // The returned statistics are outputs too: usually unused (zero gradients), so skipped then.
           // d mean / dx = 1/rows; d variance / dx = 2 (x - mean) / rows.
           const Tensor &g_mean = grads[1], &g_variance = grads[2];
           // Computed in the statistics' dtype, added in x's.
           const double inv_rows = 1.0 / static_cast<double>(rows);
           if (!all_zero(g_mean)) r.dx = add(r.dx, as(mul(g_mean, scalar_of(inv_rows, cdt)), x.dtype()));
           if (!all_zero(g_variance))
             r.dx = add(r.dx,
                        as(mul(sub(as(x, cdt), batch_mean), mul(g_variance, scalar_of(2.0 * inv_rows, cdt))),
                           x.dtype()));
           return {r.dx, r.dgamma, r.dbeta};
         });
  return out;
}

internal::NormGrads internal::batch_norm_grad(const Tensor &x, const Tensor &gamma, const Tensor &mean,
                                              const Tensor &variance, const Tensor &dy, bool training,
                                              float epsilon) {
  const char *op = "batch_norm_grad";
  const int64_t channels = channels_of(x, 2, op), rows = rows_of(x);
  require_channels(gamma, channels, op, "gamma", x);
  require_channels(mean, channels, op, "mean", x);
  require_channels(variance, channels, op, "variance", x);
  require_like_x(dy, x, op);
  const DType cdt = compute_dtype(x);
  if (should_record({&x, &gamma, &dy}))
    return to_input_dtypes(batch_norm_grad_ops(as(x, cdt), as(gamma, cdt), as(mean, cdt), as(variance, cdt),
                                               as(dy, cdt), training, epsilon),
                           x, gamma);
  internal::NormGrads r{Tensor::empty(cdt, x.shape()), Tensor::empty(cdt, gamma.shape()),
                        Tensor::empty(cdt, gamma.shape())};
  const Tensor xc = converted(x, cdt), gc = converted(gamma, cdt), dyc = converted(dy, cdt);
  const Tensor mc = converted(mean, cdt), vc = converted(variance, cdt);
  with_compute_type(cdt, [&](auto tag) {
    using T = decltype(tag);
    kernels::batch_norm_backward<T>(rows, channels, static_cast<T>(epsilon), training, xc.data<T>(),
                                    gc.data<T>(), mc.data<T>(), vc.data<T>(), dyc.data<T>(),
                                    r.dx.mutable_data<T>(), r.dgamma.mutable_data<T>(),
                                    r.dbeta.mutable_data<T>());
  });
  return to_input_dtypes(r, x, gamma);
}

// Keras LayerNormalization(axis=[...]) over trailing axes: the normalised axes are reshaped into one,
// so the one-axis kernel (and its gradient, through reshape) serves every case unchanged.
Tensor layer_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, float epsilon,
                  const std::vector<int64_t> &axes) {
  if (axes.empty()) return layer_norm_last_axis(x, gamma, beta, epsilon);
  const char *op = "layer_norm";
  require_floating(x, op, "x");
  const int r = x.rank();
  std::vector<int> norm;
  for (int64_t a : axes) norm.push_back(normalize_axis(a, r, op));
  std::sort(norm.begin(), norm.end());
  const int k = static_cast<int>(norm.size());
  for (int i = 0; i < k; ++i)
    if (norm[static_cast<size_t>(i)] != r - k + i)
      fail(Code::kInvalidArgument, op, ": axes ", list_string(axes), " for x ", x.description(),
           "; expected distinct trailing axes (the last ", k, " of rank ", r, ")");
  if (k == 1) return layer_norm_last_axis(x, gamma, beta, epsilon);
  std::vector<int64_t> lead, trailing;
  int64_t cols = 1;
  for (int i = 0; i < r; ++i) (i < r - k ? lead : trailing).push_back(x.shape()[i]);
  for (int64_t d : trailing) cols *= d;
  for (const auto &[t, arg] : {std::pair<const Tensor &, const char *>{gamma, "gamma"}, {beta, "beta"}}) {
    require_param_dtype(t, x, op, arg);
    if (t.shape() != Shape(trailing))
      fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected ",
           dtype_name(t.dtype()), list_string(trailing), " to match the normalised axes ", list_string(axes),
           " of x ", x.description());
  }
  lead.push_back(cols);
  const Tensor y =
      layer_norm_last_axis(reshape(x, lead), reshape(gamma, {cols}), reshape(beta, {cols}), epsilon);
  return reshape(y, x.shape().to_vector());
}

}  // namespace kiln::ops
