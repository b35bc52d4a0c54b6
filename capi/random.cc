// Stateless random ops and dropout with options (noise_shape, stateless seed).
#include <vector>

#include "capi/handles.h"
#include "capi/options.h"
#include "ops/ops.h"

using kiln::Shape;
using kiln::Tensor;
using kiln::capi::new_tensor;
using kiln::capi::read_options;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

extern "C" {

kiln_status *kiln_stateless_random_uniform(kiln_tensor **out, const int64_t *dims, size_t rank, float minval,
                                           float maxval, int64_t seed0, int64_t seed1) {
  return kiln::capi::shaped(out, dims, rank, "kiln_stateless_random_uniform", [&](const Shape &s) {
    return ops::stateless_random_uniform(s, {seed0, seed1}, minval, maxval);
  });
}

kiln_status *kiln_stateless_random_uniform_float(kiln_tensor **out, const int64_t *dims, size_t rank,
                                                 double minval, double maxval, kiln_dtype dtype,
                                                 int64_t seed0, int64_t seed1) {
  const char *fn = "kiln_stateless_random_uniform_float";
  return kiln::capi::shaped(out, dims, rank, fn, [&](const Shape &s) {
    return ops::stateless_random_uniform_float(s, {seed0, seed1}, kiln::capi::dtype_from_c(dtype, fn), minval,
                                               maxval);
  });
}

kiln_status *kiln_stateless_random_uniform_int(kiln_tensor **out, const int64_t *dims, size_t rank,
                                               int64_t minval, int64_t maxval, kiln_dtype dtype,
                                               int64_t seed0, int64_t seed1) {
  const char *fn = "kiln_stateless_random_uniform_int";
  return kiln::capi::shaped(out, dims, rank, fn, [&](const Shape &s) {
    return ops::stateless_random_uniform_int(s, {seed0, seed1}, kiln::capi::dtype_from_c(dtype, fn), minval,
                                             maxval);
  });
}

kiln_status *kiln_stateless_random_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean,
                                          float stddev, int64_t seed0, int64_t seed1) {
  return kiln::capi::shaped(out, dims, rank, "kiln_stateless_random_normal", [&](const Shape &s) {
    return ops::stateless_random_normal(s, {seed0, seed1}, mean, stddev);
  });
}

kiln_status *kiln_stateless_truncated_normal(kiln_tensor **out, const int64_t *dims, size_t rank, float mean,
                                             float stddev, int64_t seed0, int64_t seed1) {
  return kiln::capi::shaped(out, dims, rank, "kiln_stateless_truncated_normal", [&](const Shape &s) {
    return ops::stateless_truncated_normal(s, {seed0, seed1}, mean, stddev);
  });
}

void kiln_dropout_options_init(kiln_dropout_options *options) {
  if (!options) return;
  *options = kiln_dropout_options{};
  options->struct_size = sizeof(kiln_dropout_options);
  options->rate = 0.5f;
  options->training = true;
  options->seed = -1;
}

kiln_status *kiln_dropout_with_options(kiln_tensor **out, const kiln_tensor *x,
                                       const kiln_dropout_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_dropout_with_options";
  require_not_null(out, fn, "out");
  const Tensor &xt = tensor_of(x, fn, "x");
  require_not_null(options, fn, "options");
  kiln_dropout_options defaults;
  kiln_dropout_options_init(&defaults);
  const kiln_dropout_options known =
      read_options(options, defaults, KILN_OPTIONS_V1_SIZE(kiln_dropout_options, stateless_seed), fn,
                   "kiln_dropout_options", "kiln_dropout_options_init(&options)");
  options = &known;
  std::vector<int64_t> noise;
  if (options->noise_rank > 0) {
    require_not_null(options->noise_shape, fn, "options->noise_shape");
    if (options->noise_rank > KILN_MAX_RANK)
      kiln::fail(kiln::Code::kInvalidArgument, fn, ": options->noise_rank ", options->noise_rank,
                 " is larger than KILN_MAX_RANK (", KILN_MAX_RANK, ")");
    noise.assign(options->noise_shape, options->noise_shape + options->noise_rank);
  }
  if (options->stateless) {
    const ops::SeedPair seed{options->stateless_seed[0], options->stateless_seed[1]};
    *out = new_tensor(ops::stateless_dropout(xt, options->rate, seed, noise));
  } else {
    *out = new_tensor(ops::dropout(xt, options->rate, options->training, options->seed, noise));
  }
  KILN_CAPI_END
}

}  // extern "C"
