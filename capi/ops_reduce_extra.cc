// Entry points of the extra reductions, scans and normalisation helpers (kiln/ops.h,
// "more reductions, scans").
#include <memory>
#include <vector>

#include "capi/handles.h"
#include "ops/ops.h"

using kiln::Tensor;
using kiln::capi::new_tensor;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

namespace {

std::vector<int64_t> axes_list(const int64_t *axes, size_t n, const char *fn) {
  if (n > 0) require_not_null(axes, fn, "axes");
  if (n > KILN_MAX_RANK)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": num_axes is ", n, "; expected at most KILN_MAX_RANK (",
               KILN_MAX_RANK, ")");
  return std::vector<int64_t>(axes, axes + n);
}

using ReduceFn = Tensor (*)(const Tensor &, const std::vector<int64_t> &, bool);

kiln_status *reduce_entry(ReduceFn f, const char *fn, kiln_tensor **out, const kiln_tensor *x,
                          const int64_t *axes, size_t num_axes, bool keepdims) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(x, fn, "x");
  *out = new_tensor(f(t, axes_list(axes, num_axes, fn), keepdims));
  KILN_CAPI_END
}

}  // namespace

extern "C" {

kiln_status *kiln_reduce_prod(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                              bool keepdims) {
  return reduce_entry(ops::reduce_prod, "kiln_reduce_prod", out, x, axes, num_axes, keepdims);
}

kiln_status *kiln_reduce_any(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                             bool keepdims) {
  return reduce_entry(ops::reduce_any, "kiln_reduce_any", out, x, axes, num_axes, keepdims);
}

kiln_status *kiln_reduce_all(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                             bool keepdims) {
  return reduce_entry(ops::reduce_all, "kiln_reduce_all", out, x, axes, num_axes, keepdims);
}

kiln_status *kiln_reduce_logsumexp(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes,
                                   size_t num_axes, bool keepdims) {
  return reduce_entry(ops::reduce_logsumexp, "kiln_reduce_logsumexp", out, x, axes, num_axes, keepdims);
}

kiln_status *kiln_argmin(kiln_tensor **out, const kiln_tensor *x, int64_t axis) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_argmin", "out");
  *out = new_tensor(ops::argmin(tensor_of(x, "kiln_argmin", "x"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_bias_add(kiln_tensor **out, const kiln_tensor *value, const kiln_tensor *bias) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_bias_add";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::bias_add(tensor_of(value, fn, "value"), tensor_of(bias, fn, "bias")));
  KILN_CAPI_END
}

kiln_status *kiln_moments(kiln_tensor **out_mean, kiln_tensor **out_variance, const kiln_tensor *x,
                          const int64_t *axes, size_t num_axes, bool keepdims) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_moments";
  require_not_null(out_mean, fn, "out_mean");
  require_not_null(out_variance, fn, "out_variance");
  ops::MomentsResult r = ops::moments(tensor_of(x, fn, "x"), axes_list(axes, num_axes, fn), keepdims);
  auto m = std::make_unique<kiln_tensor>(kiln_tensor{r.mean});
  auto v = std::make_unique<kiln_tensor>(kiln_tensor{r.variance});
  *out_mean = m.release();
  *out_variance = v.release();
  KILN_CAPI_END
}

kiln_status *kiln_l2_normalize(kiln_tensor **out, const kiln_tensor *x, const int64_t *axes, size_t num_axes,
                               float epsilon) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_l2_normalize";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::l2_normalize(tensor_of(x, fn, "x"), axes_list(axes, num_axes, fn), epsilon));
  KILN_CAPI_END
}

kiln_status *kiln_cumsum(kiln_tensor **out, const kiln_tensor *x, int64_t axis, bool exclusive,
                         bool reverse) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_cumsum", "out");
  *out = new_tensor(ops::cumsum(tensor_of(x, "kiln_cumsum", "x"), axis, exclusive, reverse));
  KILN_CAPI_END
}

kiln_status *kiln_cumprod(kiln_tensor **out, const kiln_tensor *x, int64_t axis, bool exclusive,
                          bool reverse) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_cumprod", "out");
  *out = new_tensor(ops::cumprod(tensor_of(x, "kiln_cumprod", "x"), axis, exclusive, reverse));
  KILN_CAPI_END
}

kiln_status *kiln_top_k(kiln_tensor **out_values, kiln_tensor **out_indices, const kiln_tensor *x, int64_t k,
                        bool sorted) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_top_k";
  require_not_null(out_values, fn, "out_values");
  require_not_null(out_indices, fn, "out_indices");
  ops::TopKResult r = ops::top_k(tensor_of(x, fn, "x"), k, sorted);
  auto v = std::make_unique<kiln_tensor>(kiln_tensor{r.values});
  auto i = std::make_unique<kiln_tensor>(kiln_tensor{r.indices});
  *out_values = v.release();
  *out_indices = i.release();
  KILN_CAPI_END
}

}  // extern "C"
