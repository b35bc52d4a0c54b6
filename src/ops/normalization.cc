// layer_norm and batch_norm (channels last) and their backward ops.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/norm.h"
#include "ops/nn_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

void require_channels(const Tensor &t, int64_t channels, const char *op, const char *arg, const Tensor &x) {
  require_float32(t, op, arg);
  if (t.rank() != 1 || t.shape()[0] != channels)
    fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected float32[",
         channels, "] to match the last dim of x ", x.description());
}

void require_epsilon(float epsilon, const char *op) {
  if (!(epsilon >= 0.0f) || !std::isfinite(epsilon))
    fail(Code::kInvalidArgument, op, ": epsilon is ", epsilon, "; expected a finite value >= 0");
}

// Checks that x is float32 of rank >= min_rank and returns its channel count (the last dim).
int64_t channels_of(const Tensor &x, int min_rank, const char *op) {
  require_float32(x, op, "x");
  if (x.rank() < min_rank)
    fail(Code::kInvalidArgument, op, ": argument 'x' is ", x.description(), "; expected rank >= ", min_rank,
         min_rank == 2 ? " ([N, C] or [N, H, W, C])" : "");
  return x.shape()[x.rank() - 1];
}

void require_like_x(const Tensor &dy, const Tensor &x, const char *op) {
  require_float32(dy, op, "dy");
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

Tensor f32(const Shape &shape) { return Tensor::empty(DType::kFloat32, shape); }

bool all_zero(const Tensor &t) {
  const float *p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i)
    if (p[i] != 0.0f) return false;
  return true;
}

// Sums over the leading axes of x (none for a rank-1 x: sum() with no axes would reduce all).
Tensor sum_leading(const Tensor &t, const std::vector<int64_t> &axes) {
  return axes.empty() ? t : sum(t, axes);
}

Tensor rstd_of(const Tensor &variance, float epsilon) {
  return rsqrt(add(variance, Tensor::scalar(epsilon)));
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
  const int64_t rows = rows_of(x);
  const bool recording = should_record({&x, &gamma, &beta});
  Tensor y = f32(x.shape());
  Tensor mu, variance;
  if (recording) {
    mu = f32(Shape{rows});
    variance = f32(Shape{rows});
  }
  kernels::layer_norm_forward(rows, channels, epsilon, x.data<float>(), gamma.data<float>(),
                              beta.data<float>(), y.mutable_data<float>(),
                              recording ? mu.mutable_data<float>() : nullptr,
                              recording ? variance.mutable_data<float>() : nullptr);
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
  for (const Tensor *t : {&mean, &variance}) {
    require_float32(*t, op, "statistics");
    if (t->shape() != Shape{rows})
      fail(Code::kInvalidArgument, op, ": statistics tensor is ", t->description(), "; expected float32[",
           rows, "] (one per row of x ", x.description(), ")");
  }
  if (should_record({&x, &gamma, &dy})) return layer_norm_grad_ops(x, gamma, dy, epsilon);
  internal::NormGrads r{f32(x.shape()), f32(gamma.shape()), f32(gamma.shape())};
  kernels::layer_norm_backward(rows, channels, epsilon, x.data<float>(), gamma.data<float>(),
                               mean.data<float>(), variance.data<float>(), dy.data<float>(),
                               r.dx.mutable_data<float>(), r.dgamma.mutable_data<float>(),
                               r.dbeta.mutable_data<float>());
  return r;
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

  const bool recording = should_record({&x, &gamma, &beta});
  BatchNormResult out{f32(x.shape()), mean, variance};
  float *y = out.y.mutable_data<float>();
  if (training) {
    out.mean = f32(Shape{channels});
    out.variance = f32(Shape{channels});
    kernels::batch_norm_forward_training(rows, channels, epsilon, x.data<float>(), gamma.data<float>(),
                                         beta.data<float>(), y, out.mean.mutable_data<float>(),
                                         out.variance.mutable_data<float>());
  } else {
    kernels::batch_norm_forward_inference(rows, channels, epsilon, x.data<float>(), gamma.data<float>(),
                                          beta.data<float>(), mean.data<float>(), variance.data<float>(), y);
  }
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
         [x, gamma, batch_mean, batch_variance, epsilon, rows](const Grads &grads) -> Grads {
           internal::NormGrads r =
               internal::batch_norm_grad(x, gamma, batch_mean, batch_variance, grads[0], true, epsilon);
           // The returned statistics are outputs too: usually unused (zero gradients), so skipped then.
           // d mean / dx = 1/rows; d variance / dx = 2 (x - mean) / rows.
           const Tensor &g_mean = grads[1], &g_variance = grads[2];
           const float inv_rows = 1.0f / static_cast<float>(rows);
           if (!all_zero(g_mean)) r.dx = add(r.dx, mul(g_mean, Tensor::scalar(inv_rows)));
           if (!all_zero(g_variance))
             r.dx = add(r.dx, mul(sub(x, batch_mean), mul(g_variance, Tensor::scalar(2.0f * inv_rows))));
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
  if (should_record({&x, &gamma, &dy}))
    return batch_norm_grad_ops(x, gamma, mean, variance, dy, training, epsilon);
  internal::NormGrads r{f32(x.shape()), f32(gamma.shape()), f32(gamma.shape())};
  kernels::batch_norm_backward(rows, channels, epsilon, training, x.data<float>(), gamma.data<float>(),
                               mean.data<float>(), variance.data<float>(), dy.data<float>(),
                               r.dx.mutable_data<float>(), r.dgamma.mutable_data<float>(),
                               r.dbeta.mutable_data<float>());
  return r;
}

// Keras LayerNormalization(axis=[...]) over trailing axes: the normalised axes are reshaped into one,
// so the one-axis kernel (and its gradient, through reshape) serves every case unchanged.
Tensor layer_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, float epsilon,
                  const std::vector<int64_t> &axes) {
  if (axes.empty()) return layer_norm_last_axis(x, gamma, beta, epsilon);
  const char *op = "layer_norm";
  require_float32(x, op, "x");
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
    require_float32(t, op, arg);
    if (t.shape() != Shape(trailing))
      fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected float32",
           list_string(trailing), " to match the normalised axes ", list_string(axes), " of x ",
           x.description());
  }
  lead.push_back(cols);
  const Tensor y =
      layer_norm_last_axis(reshape(x, lead), reshape(gamma, {cols}), reshape(beta, {cols}), epsilon);
  return reshape(y, x.shape().to_vector());
}

}  // namespace kiln::ops
