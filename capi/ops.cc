// Op entry points: each checks its handles, calls the core op, and hands back a new tensor handle.
#include "ops/ops.h"

#include <vector>

#include "capi/handles.h"
#include "ops/random.h"

using kiln::Shape;
using kiln::Tensor;
using kiln::capi::new_tensor;
using kiln::capi::require_not_null;
using kiln::capi::shaped;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

namespace {

std::vector<int64_t> int_list(const int64_t *values, size_t n, const char *fn, const char *arg) {
  if (n > 0) require_not_null(values, fn, arg);
  return std::vector<int64_t>(values, values + n);
}

std::vector<Tensor> tensor_list(const kiln_tensor *const *values, size_t n, const char *fn) {
  if (n > 0) require_not_null(values, fn, "values");
  std::vector<Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!values[i]) kiln::fail(kiln::Code::kInvalidArgument, fn, ": values[", i, "] is NULL");
    out.push_back(values[i]->value);
  }
  return out;
}

}  // namespace

#define KILN_CAPI_UNARY(name)                                              \
  kiln_status *kiln_##name(kiln_tensor **out, const kiln_tensor *x) {     \
    KILN_CAPI_BEGIN                                                        \
    require_not_null(out, "kiln_" #name, "out");                           \
    *out = new_tensor(ops::name(tensor_of(x, "kiln_" #name, "x")));        \
    KILN_CAPI_END                                                          \
  }

#define KILN_CAPI_BINARY(name)                                                                        \
  kiln_status *kiln_##name(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b) {          \
    KILN_CAPI_BEGIN                                                                                   \
    require_not_null(out, "kiln_" #name, "out");                                                      \
    *out = new_tensor(ops::name(tensor_of(a, "kiln_" #name, "a"), tensor_of(b, "kiln_" #name, "b"))); \
    KILN_CAPI_END                                                                                     \
  }

#define KILN_CAPI_REDUCE(name)                                                                     \
  kiln_status *kiln_##name(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,          \
                           size_t num_axes, bool keepdims) {                                      \
    KILN_CAPI_BEGIN                                                                                \
    require_not_null(out, "kiln_" #name, "out");                                                   \
    const Tensor &t = tensor_of(x, "kiln_" #name, "x");                                            \
    *out = new_tensor(ops::name(t, int_list(axes, num_axes, "kiln_" #name, "axes"), keepdims));   \
    KILN_CAPI_END                                                                                  \
  }

extern "C" {

KILN_CAPI_BINARY(add)
KILN_CAPI_BINARY(sub)
KILN_CAPI_BINARY(mul)
KILN_CAPI_BINARY(div)
KILN_CAPI_BINARY(truediv)
KILN_CAPI_BINARY(maximum)
KILN_CAPI_BINARY(minimum)
KILN_CAPI_BINARY(pow)
KILN_CAPI_BINARY(equal)
KILN_CAPI_BINARY(not_equal)
KILN_CAPI_BINARY(greater)
KILN_CAPI_BINARY(greater_equal)
KILN_CAPI_BINARY(less)
KILN_CAPI_BINARY(less_equal)
KILN_CAPI_BINARY(logical_and)
KILN_CAPI_BINARY(logical_or)
KILN_CAPI_BINARY(logical_xor)

KILN_CAPI_UNARY(neg)
KILN_CAPI_UNARY(abs)
KILN_CAPI_UNARY(exp)
KILN_CAPI_UNARY(log)
KILN_CAPI_UNARY(sqrt)
KILN_CAPI_UNARY(rsqrt)
KILN_CAPI_UNARY(square)
KILN_CAPI_UNARY(tanh)
KILN_CAPI_UNARY(sigmoid)
KILN_CAPI_UNARY(relu)
KILN_CAPI_UNARY(softplus)
KILN_CAPI_UNARY(swish)
KILN_CAPI_UNARY(logical_not)
KILN_CAPI_UNARY(stop_gradient)
KILN_CAPI_UNARY(log1p)
KILN_CAPI_UNARY(expm1)
KILN_CAPI_UNARY(floor)
KILN_CAPI_UNARY(round)
KILN_CAPI_UNARY(sign)
KILN_CAPI_UNARY(sin)
KILN_CAPI_UNARY(cos)
KILN_CAPI_UNARY(relu6)
KILN_CAPI_UNARY(selu)

KILN_CAPI_REDUCE(sum)
KILN_CAPI_REDUCE(mean)
KILN_CAPI_REDUCE(max)
KILN_CAPI_REDUCE(min)

kiln_status *kiln_gelu(kiln_tensor **out, const kiln_tensor *x, bool approximate) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_gelu", "out");
  *out = new_tensor(ops::gelu(tensor_of(x, "kiln_gelu", "x"), approximate));
  KILN_CAPI_END
}

kiln_status *kiln_elu(kiln_tensor **out, const kiln_tensor *x, float alpha) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_elu", "out");
  *out = new_tensor(ops::elu(tensor_of(x, "kiln_elu", "x"), alpha));
  KILN_CAPI_END
}

kiln_status *kiln_leaky_relu(kiln_tensor **out, const kiln_tensor *x, float alpha) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_leaky_relu", "out");
  *out = new_tensor(ops::leaky_relu(tensor_of(x, "kiln_leaky_relu", "x"), alpha));
  KILN_CAPI_END
}

kiln_status *kiln_where(kiln_tensor **out, const kiln_tensor *cond, const kiln_tensor *x, const kiln_tensor *y) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_where";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::where(tensor_of(cond, fn, "cond"), tensor_of(x, fn, "x"), tensor_of(y, fn, "y")));
  KILN_CAPI_END
}

kiln_status *kiln_cast(kiln_tensor **out, const kiln_tensor *x, kiln_dtype dtype) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_cast", "out");
  const Tensor &t = tensor_of(x, "kiln_cast", "x");
  *out = new_tensor(ops::cast(t, kiln::capi::dtype_from_c(dtype, "kiln_cast")));
  KILN_CAPI_END
}

kiln_status *kiln_clip_by_value(kiln_tensor **out, const kiln_tensor *x, float clip_min, float clip_max) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_clip_by_value", "out");
  *out = new_tensor(ops::clip_by_value(tensor_of(x, "kiln_clip_by_value", "x"), clip_min, clip_max));
  KILN_CAPI_END
}

kiln_status *kiln_clip_by_value_tensor(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *clip_min,
                                       const kiln_tensor *clip_max) {
  KILN_CAPI_BEGIN
  constexpr const char *op = "kiln_clip_by_value_tensor";
  require_not_null(out, op, "out");
  *out = new_tensor(ops::clip_by_value(tensor_of(x, op, "x"), tensor_of(clip_min, op, "clip_min"),
                                       tensor_of(clip_max, op, "clip_max")));
  KILN_CAPI_END
}

kiln_status *kiln_matmul(kiln_tensor **out, const kiln_tensor *a, const kiln_tensor *b, bool transpose_a,
                         bool transpose_b) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_matmul", "out");
  *out = new_tensor(
      ops::matmul(tensor_of(a, "kiln_matmul", "a"), tensor_of(b, "kiln_matmul", "b"), transpose_a, transpose_b));
  KILN_CAPI_END
}

kiln_status *kiln_argmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_argmax", "out");
  *out = new_tensor(ops::argmax(tensor_of(x, "kiln_argmax", "x"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_softmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_softmax", "out");
  *out = new_tensor(ops::softmax(tensor_of(x, "kiln_softmax", "x"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_log_softmax(kiln_tensor **out, const kiln_tensor *x, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_log_softmax", "out");
  *out = new_tensor(ops::log_softmax(tensor_of(x, "kiln_log_softmax", "x"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_layer_norm(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *gamma,
                             const kiln_tensor *beta, const int64_t *axes, size_t num_axes, float epsilon) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_layer_norm";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(x, fn, "x");
  const Tensor &g = tensor_of(gamma, fn, "gamma");
  *out = new_tensor(ops::layer_norm(t, g, tensor_of(beta, fn, "beta"), epsilon, int_list(axes, num_axes, fn, "axes")));
  KILN_CAPI_END
}

kiln_status *kiln_batch_norm(kiln_tensor **out, kiln_tensor **out_mean, kiln_tensor **out_variance,
                             const kiln_tensor *x, const kiln_tensor *gamma, const kiln_tensor *beta,
                             const kiln_tensor *mean, const kiln_tensor *variance, bool training, float epsilon) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_batch_norm";
  require_not_null(out, fn, "out");
  Tensor m = mean ? mean->value : Tensor();
  Tensor v = variance ? variance->value : Tensor();
  if (!training) {
    require_not_null(mean, fn, "mean");
    require_not_null(variance, fn, "variance");
  }
  ops::BatchNormResult r = ops::batch_norm(tensor_of(x, fn, "x"), tensor_of(gamma, fn, "gamma"),
                                           tensor_of(beta, fn, "beta"), m, v, training, epsilon);
  auto y = std::make_unique<kiln_tensor>(kiln_tensor{r.y});
  auto rm = std::make_unique<kiln_tensor>(kiln_tensor{r.mean});
  auto rv = std::make_unique<kiln_tensor>(kiln_tensor{r.variance});
  *out = y.release();
  if (out_mean) *out_mean = rm.release();
  if (out_variance) *out_variance = rv.release();
  KILN_CAPI_END
}

kiln_status *kiln_reshape(kiln_tensor **out, const kiln_tensor *x, const int64_t *dims, size_t rank) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_reshape";
  require_not_null(out, fn, "out");
  if (rank > KILN_MAX_RANK)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": rank ", rank, " is larger than KILN_MAX_RANK (", KILN_MAX_RANK, ")");
  *out = new_tensor(ops::reshape(tensor_of(x, fn, "x"), int_list(dims, rank, fn, "dims")));
  KILN_CAPI_END
}

kiln_status *kiln_transpose(kiln_tensor **out, const kiln_tensor *x, const int64_t *perm, size_t num_perm) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_transpose", "out");
  *out = new_tensor(
      ops::transpose(tensor_of(x, "kiln_transpose", "x"), int_list(perm, num_perm, "kiln_transpose", "perm")));
  KILN_CAPI_END
}

kiln_status *kiln_concat(kiln_tensor **out, const kiln_tensor *const *values, size_t num_values, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_concat", "out");
  *out = new_tensor(ops::concat(tensor_list(values, num_values, "kiln_concat"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_stack(kiln_tensor **out, const kiln_tensor *const *values, size_t num_values, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_stack", "out");
  *out = new_tensor(ops::stack(tensor_list(values, num_values, "kiln_stack"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_split(kiln_tensor **outs, size_t num_outputs, const kiln_tensor *x, const int64_t *sizes,
                        int64_t axis) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_split";
  require_not_null(outs, fn, "outs");
  if (num_outputs == 0 || num_outputs > static_cast<size_t>(INT64_MAX))
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": num_outputs is ", num_outputs, "; expected >= 1");
  std::vector<int64_t> s = sizes ? int_list(sizes, num_outputs, fn, "sizes") : std::vector<int64_t>{};
  std::vector<Tensor> parts = ops::split(tensor_of(x, fn, "x"), s, static_cast<int64_t>(num_outputs), axis);
  if (parts.size() != num_outputs)
    kiln::fail(kiln::Code::kInternal, fn, ": split made ", parts.size(), " parts for ", num_outputs, " outputs");
  std::vector<std::unique_ptr<kiln_tensor>> handles;
  for (Tensor &p : parts) handles.push_back(std::make_unique<kiln_tensor>(kiln_tensor{std::move(p)}));
  for (size_t i = 0; i < num_outputs; ++i) outs[i] = handles[i].release();
  KILN_CAPI_END
}

kiln_status *kiln_slice(kiln_tensor **out, const kiln_tensor *x, const int64_t *begin, const int64_t *size,
                        size_t num_dims) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_slice";
  require_not_null(out, fn, "out");
  *out = new_tensor(
      ops::slice(tensor_of(x, fn, "x"), int_list(begin, num_dims, fn, "begin"), int_list(size, num_dims, fn, "size")));
  KILN_CAPI_END
}

kiln_status *kiln_expand_dims(kiln_tensor **out, const kiln_tensor *x, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_expand_dims", "out");
  *out = new_tensor(ops::expand_dims(tensor_of(x, "kiln_expand_dims", "x"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_squeeze(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_squeeze", "out");
  *out = new_tensor(
      ops::squeeze(tensor_of(x, "kiln_squeeze", "x"), int_list(axes, num_axes, "kiln_squeeze", "axes")));
  KILN_CAPI_END
}

kiln_status *kiln_broadcast_to(kiln_tensor **out, const kiln_tensor *x, const int64_t *dims, size_t rank) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_broadcast_to", "out");
  const Tensor &t = tensor_of(x, "kiln_broadcast_to", "x");
  *out = new_tensor(ops::broadcast_to(t, kiln::capi::shape_from_c(dims, rank, "kiln_broadcast_to")));
  KILN_CAPI_END
}

kiln_status *kiln_tile(kiln_tensor **out, const kiln_tensor *x, const int64_t *multiples, size_t num_multiples) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_tile", "out");
  *out = new_tensor(
      ops::tile(tensor_of(x, "kiln_tile", "x"), int_list(multiples, num_multiples, "kiln_tile", "multiples")));
  KILN_CAPI_END
}

kiln_status *kiln_dropout(kiln_tensor **out, const kiln_tensor *x, float rate, bool training, int64_t seed) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_dropout", "out");
  *out = new_tensor(ops::dropout(tensor_of(x, "kiln_dropout", "x"), rate, training, seed));
  KILN_CAPI_END
}

kiln_status *kiln_zeros(kiln_tensor **out, const int64_t *dims, size_t rank, kiln_dtype dtype) {
  return shaped(out, dims, rank, "kiln_zeros",
                [&](const Shape &s) { return ops::zeros(s, kiln::capi::dtype_from_c(dtype, "kiln_zeros")); });
}

kiln_status *kiln_ones(kiln_tensor **out, const int64_t *dims, size_t rank, kiln_dtype dtype) {
  return shaped(out, dims, rank, "kiln_ones",
                [&](const Shape &s) { return ops::ones(s, kiln::capi::dtype_from_c(dtype, "kiln_ones")); });
}

kiln_status *kiln_fill(kiln_tensor **out, const int64_t *dims, size_t rank, double value, kiln_dtype dtype) {
  return shaped(out, dims, rank, "kiln_fill",
                [&](const Shape &s) { return ops::fill(s, value, kiln::capi::dtype_from_c(dtype, "kiln_fill")); });
}

kiln_status *kiln_random_uniform(kiln_tensor **out, const int64_t *dims, size_t rank, float minval, float maxval,
                                 int64_t seed) {
  return shaped(out, dims, rank, "kiln_random_uniform",
                [&](const Shape &s) { return ops::random_uniform(s, minval, maxval, seed); });
}

kiln_status *kiln_random_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean, float stddev,
                                int64_t seed) {
  return shaped(out, dims, rank, "kiln_random_normal",
                [&](const Shape &s) { return ops::random_normal(s, mean, stddev, seed); });
}

kiln_status *kiln_random_gamma(kiln_tensor **out, const int64_t *dims, size_t rank, double alpha, double beta,
                               int64_t seed) {
  return shaped(out, dims, rank, "kiln_random_gamma",
                [&](const Shape &s) { return ops::random_gamma(s, alpha, beta, seed); });
}

kiln_status *kiln_random_beta(kiln_tensor **out, const int64_t *dims, size_t rank, double alpha, double beta,
                              int64_t seed) {
  return shaped(out, dims, rank, "kiln_random_beta",
                [&](const Shape &s) { return ops::random_beta(s, alpha, beta, seed); });
}

kiln_status *kiln_random_shuffle(kiln_tensor **out, const kiln_tensor *value, int64_t axis, int64_t seed) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_random_shuffle";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::random_shuffle(tensor_of(value, fn, "value"), axis, seed));
  KILN_CAPI_END
}

kiln_status *kiln_truncated_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean, float stddev,
                                   int64_t seed) {
  return shaped(out, dims, rank, "kiln_truncated_normal",
                [&](const Shape &s) { return ops::truncated_normal(s, mean, stddev, seed); });
}

kiln_status *kiln_range(kiln_tensor **out, double start, double limit, double delta, kiln_dtype dtype) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_range", "out");
  *out = new_tensor(ops::range(start, limit, delta, kiln::capi::dtype_from_c(dtype, "kiln_range")));
  KILN_CAPI_END
}

kiln_status *kiln_fill_int64(kiln_tensor **out, const int64_t *dims, size_t rank, int64_t value,
                             kiln_dtype dtype) {
  return shaped(out, dims, rank, "kiln_fill_int64", [&](const Shape &s) {
    return ops::fill_int64(s, value, kiln::capi::dtype_from_c(dtype, "kiln_fill_int64"));
  });
}

kiln_status *kiln_random_uniform_float(kiln_tensor **out, const int64_t *dims, size_t rank, double minval,
                                       double maxval, kiln_dtype dtype, int64_t seed) {
  const char *fn = "kiln_random_uniform_float";
  return shaped(out, dims, rank, fn, [&](const Shape &s) {
    return ops::random_uniform_float(s, kiln::capi::dtype_from_c(dtype, fn), minval, maxval, seed);
  });
}

kiln_status *kiln_random_uniform_int(kiln_tensor **out, const int64_t *dims, size_t rank, int64_t minval,
                                     int64_t maxval, kiln_dtype dtype, int64_t seed) {
  const char *fn = "kiln_random_uniform_int";
  return shaped(out, dims, rank, fn, [&](const Shape &s) {
    return ops::random_uniform_int(s, kiln::capi::dtype_from_c(dtype, fn), minval, maxval, seed);
  });
}

kiln_status *kiln_range_int64(kiln_tensor **out, int64_t start, int64_t limit, int64_t delta, kiln_dtype dtype) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_range_int64", "out");
  *out = new_tensor(ops::range_int64(start, limit, delta, kiln::capi::dtype_from_c(dtype, "kiln_range_int64")));
  KILN_CAPI_END
}

}  // extern "C"
