// Random ops: uniform, normal, truncated normal, dropout. A (global seed, op
// seed) pair names a Philox stream; an unseeded op (seed < 0) takes the next op
// seed of the global sequence, so a program repeats after set_global_seed.
#include "kernels/random.h"

#include <cmath>

#include "core/rng.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

void require_finite(const char *op, const char *arg, float v) {
  if (!std::isfinite(v)) fail(Code::kInvalidArgument, op, ": ", arg, " is ", v, "; expected a finite value");
}

void check_normal_args(const char *op, const Shape &shape, float mean, float stddev) {
  require_finite(op, "mean", mean);
  require_finite(op, "stddev", stddev);
  if (stddev < 0)
    fail(Code::kInvalidArgument, op, ": stddev is ", stddev, " for shape ", shape.to_string(),
         "; expected stddev >= 0");
}

Philox generator(int64_t seed) { return Philox(global_seed(), resolve_op_seed(seed)); }

}  // namespace

Tensor random_uniform(const Shape &shape, float minval, float maxval, int64_t seed) {
  require_finite("random_uniform", "minval", minval);
  require_finite("random_uniform", "maxval", maxval);
  if (minval > maxval)
    fail(Code::kInvalidArgument, "random_uniform: minval ", minval, " is greater than maxval ", maxval,
         " for shape ", shape.to_string(), "; expected minval <= maxval");
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  kernels::random_uniform(generator(seed), minval, maxval, out.mutable_data<float>(), out.num_elements());
  return out;
}

Tensor random_normal(const Shape &shape, float mean, float stddev, int64_t seed) {
  check_normal_args("random_normal", shape, mean, stddev);
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  kernels::random_normal(generator(seed), mean, stddev, out.mutable_data<float>(), out.num_elements());
  return out;
}

Tensor truncated_normal(const Shape &shape, float mean, float stddev, int64_t seed) {
  check_normal_args("truncated_normal", shape, mean, stddev);
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  kernels::truncated_normal(generator(seed), mean, stddev, out.mutable_data<float>(), out.num_elements());
  return out;
}

Tensor dropout(const Tensor &x, float rate, bool training, int64_t seed) {
  require_float32(x, "dropout", "x");
  if (!(rate >= 0.0f && rate < 1.0f))
    fail(Code::kInvalidArgument, "dropout: rate is ", rate, " for x ", x.description(),
         "; expected a rate in [0, 1)");
  if (!training || rate == 0.0f) return x;
  const float scale = 1.0f / (1.0f - rate);
  Tensor out = Tensor::empty(DType::kFloat32, x.shape());
  // The mask is kept only for a tape; regenerating it in backward would cost a second Philox pass.
  const bool recording = should_record({&x});
  Tensor mask = recording ? Tensor::empty(DType::kFloat32, x.shape()) : Tensor();
  kernels::dropout(generator(seed), rate, scale, x.data<float>(), out.mutable_data<float>(),
                   recording ? mask.mutable_data<float>() : nullptr, x.num_elements());
  if (recording) record("dropout", {x}, {out}, [mask](const Grads &g) { return Grads{mul(g[0], mask)}; });
  return out;
}

}  // namespace kiln::ops
