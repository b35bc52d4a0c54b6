// Random ops: uniform, normal, truncated normal, dropout, and their stateless forms.
// Stateful ops draw from the Philox stream resolve_op_seed() picks for each call, as TF2
// does (a program repeats after set_global_seed); stateless ones from the stream their
// seed pair names, whatever the call, thread or global seed.
#include "kernels/random.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "core/rng.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/random.h"
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
Philox generator(SeedPair seed) {
  return Philox(static_cast<uint64_t>(seed.a), static_cast<uint64_t>(seed.b));
}

// The values are minval + u (maxval - minval): a width beyond the dtype's range would give inf.
void check_uniform_width(const char *op, double minval, double maxval, bool width_finite, DType dtype) {
  if (!width_finite)
    fail(Code::kInvalidArgument, op, ": maxval - minval (", maxval, " - ", minval, ") overflows ",
         dtype_name(dtype), "; expected bounds whose difference is finite");
}

void check_uniform_args(const char *op, const Shape &shape, float minval, float maxval) {
  require_finite(op, "minval", minval);
  require_finite(op, "maxval", maxval);
  if (minval > maxval)
    fail(Code::kInvalidArgument, op, ": minval ", minval, " is greater than maxval ", maxval, " for shape ",
         shape.to_string(), "; expected minval <= maxval");
  check_uniform_width(op, minval, maxval, std::isfinite(maxval - minval), DType::kFloat32);
}

Tensor uniform_from(const Philox &gen, const Shape &shape, float minval, float maxval) {
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  kernels::random_uniform(gen, minval, maxval, out.mutable_data<float>(), out.num_elements());
  return out;
}

Tensor normal_from(const Philox &gen, const Shape &shape, float mean, float stddev) {
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  kernels::random_normal(gen, mean, stddev, out.mutable_data<float>(), out.num_elements());
  return out;
}

Tensor truncated_from(const Philox &gen, const Shape &shape, float mean, float stddev) {
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  kernels::truncated_normal(gen, mean, stddev, out.mutable_data<float>(), out.num_elements());
  return out;
}

// ---- tf.random.uniform's other dtypes ----

template <typename G>
Tensor uniform_float_from(const char *op, const G &seed, const Shape &shape, DType dtype, double minval,
                          double maxval) {
  if (dtype != DType::kFloat32 && dtype != DType::kBFloat16 && dtype != DType::kFloat64)
    fail(Code::kInvalidArgument, op, ": dtype is ", dtype_name(dtype),
         "; expected float32, bfloat16 or float64 (integer dtypes take integer bounds)");
  auto bound = [&](const char *arg, double v) {
    // Compared before any conversion: a double beyond float's range has no float value.
    const bool in_range =
        std::isfinite(v) &&
        (dtype == DType::kFloat64 ||
         (std::fabs(v) <= std::numeric_limits<float>::max() &&
          (dtype != DType::kBFloat16 || std::isfinite(static_cast<float>(bfloat16(static_cast<float>(v)))))));
    if (!in_range)
      fail(Code::kInvalidArgument, op, ": ", arg, " is ", v, "; expected a finite ", dtype_name(dtype),
           " value");
  };
  bound("minval", minval);
  bound("maxval", maxval);
  if (minval > maxval)
    fail(Code::kInvalidArgument, op, ": minval ", minval, " is greater than maxval ", maxval, " for shape ",
         shape.to_string(), "; expected minval <= maxval");
  check_uniform_width(op, minval, maxval,
                      dtype == DType::kFloat64
                          ? std::isfinite(maxval - minval)
                          : std::isfinite(static_cast<float>(maxval) - static_cast<float>(minval)),
                      dtype);
  const Philox gen = generator(seed);
  if (dtype == DType::kFloat32)
    return uniform_from(gen, shape, static_cast<float>(minval), static_cast<float>(maxval));
  Tensor out = Tensor::empty(dtype, shape);
  if (dtype == DType::kFloat64)
    kernels::random_uniform_f64(gen, minval, maxval, out.mutable_data<double>(), out.num_elements());
  else
    kernels::random_uniform_bf16(gen, static_cast<float>(minval), static_cast<float>(maxval),
                                 out.mutable_data<bfloat16>(), out.num_elements());
  return out;
}

template <typename G>
Tensor uniform_int_from(const char *op, const G &seed, const Shape &shape, DType dtype, int64_t minval,
                        int64_t maxval) {
  if (dtype != DType::kInt32 && dtype != DType::kInt64)
    fail(Code::kInvalidArgument, op, ": dtype is ", dtype_name(dtype),
         "; expected int32 or int64 (floating dtypes take floating bounds)");
  if (dtype == DType::kInt32)
    for (int64_t v : {minval, maxval})
      if (v < INT32_MIN || v > INT32_MAX)
        fail(Code::kInvalidArgument, op, ": bound ", v, " is outside int32's range; expected ", INT32_MIN,
             " to ", INT32_MAX);
  if (minval >= maxval)
    fail(Code::kInvalidArgument, op, ": minval ", minval, " is not less than maxval ", maxval, " for shape ",
         shape.to_string(), "; expected minval < maxval");
  const Philox gen = generator(seed);
  Tensor out = Tensor::empty(dtype, shape);
  // The difference as unsigned arithmetic gives it exactly, even for int64's full range.
  const uint64_t range = static_cast<uint64_t>(maxval) - static_cast<uint64_t>(minval);
  if (dtype == DType::kInt32)
    kernels::random_uniform_i32(gen, static_cast<int32_t>(minval), static_cast<uint32_t>(range),
                                out.mutable_data<int32_t>(), out.num_elements());
  else
    kernels::random_uniform_i64(gen, minval, range, out.mutable_data<int64_t>(), out.num_elements());
  return out;
}

void check_dropout_args(const char *op, const Tensor &x, float rate) {
  require_floating(x, op, "x");
  if (!(rate >= 0.0f && rate < 1.0f))
    fail(Code::kInvalidArgument, op, ": rate is ", rate, " for x ", x.description(),
         "; expected a rate in [0, 1)");
}

// TF's noise_shape with its None (-1) dims filled from x, checked to broadcast to x.
Shape noise_shape_of(const char *op, const Tensor &x, const std::vector<int64_t> &noise_shape) {
  if (noise_shape.empty()) return x.shape();
  if (noise_shape.size() != static_cast<size_t>(x.rank()))
    fail(Code::kInvalidArgument, op, ": noise_shape ", list_string(noise_shape), " has rank ",
         noise_shape.size(), " for x ", x.description(), "; expected rank ", x.rank());
  std::vector<int64_t> dims(noise_shape);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t xd = x.shape()[static_cast<int>(i)];
    if (dims[i] == -1) dims[i] = xd;
    if (dims[i] != 1 && dims[i] != xd)
      fail(Code::kInvalidArgument, op, ": noise_shape ", list_string(noise_shape),
           " does not broadcast to x ", x.description(), " at dim ", i, "; expected 1, -1 or ", xd);
  }
  return Shape(dims);
}

// x * scale where u_i >= rate, else 0. Its gradient is the same op on the incoming gradient with
// the same generator: the mask is drawn again rather than kept, since a vector Philox pass costs
// less than writing a float mask in forward and reading it back in backward (and holds no memory
// between the passes). Recorded again in backward, so tapes nest; a dropped element's gradient is
// 0 even where the incoming one is inf or NaN, as TF's where-based dropout gives.
Tensor masked(const Philox &gen, const Tensor &x, float rate, float scale) {
  Tensor out = Tensor::empty(DType::kFloat32, x.shape());
  kernels::dropout(gen, rate, scale, x.data<float>(), out.mutable_data<float>(), nullptr, x.num_elements());
  if (should_record({&x}))
    record("dropout", {x}, {out},
           [gen, rate, scale](const Grads &g) { return Grads{masked(gen, g[0], rate, scale)}; });
  return out;
}

Tensor dropout_from(const Philox &gen, const Tensor &x, float rate, const Shape &noise) {
  if (x.dtype() != DType::kFloat32) {
    // bfloat16 and float64 as TF's: x * scale in x's dtype, times the 0/1 keep mask (the same draws as
    // float32's), by ops whose rules give the gradient.
    Tensor keep = Tensor::empty(DType::kFloat32, noise);
    kernels::dropout(gen, rate, 1.0f, nullptr, nullptr, keep.mutable_data<float>(), keep.num_elements());
    const Tensor scaled = mul(x, fill(Shape{}, 1.0 / (1.0 - double(rate)), x.dtype()));
    return mul(scaled, cast(keep, x.dtype()));
  }
  const float scale = 1.0f / (1.0f - rate);
  if (noise != x.shape()) {
    // The mask is drawn in noise's shape (element i kept when u_i >= rate, as the fused path) and
    // broadcast by mul, whose gradient rule gives the gradient.
    Tensor mask = Tensor::empty(DType::kFloat32, noise);
    kernels::dropout(gen, rate, scale, nullptr, nullptr, mask.mutable_data<float>(), mask.num_elements());
    return mul(x, mask);
  }
  return masked(gen, x, rate, scale);
}

}  // namespace

Tensor random_uniform(const Shape &shape, float minval, float maxval, int64_t seed) {
  check_uniform_args("random_uniform", shape, minval, maxval);
  return uniform_from(generator(seed), shape, minval, maxval);
}

namespace {

// 2^-32 (w + 1): a 32-bit word as a double in (0, 1].
double open_unit(uint32_t w) { return (static_cast<double>(w) + 1.0) * (1.0 / 4294967296.0); }

// log of a Gamma(a) draw for element e of gen (Marsaglia and Tsang; a < 1 boosted by U^(1 / a)). Round r of
// element e reads block e * 64 + r: a normal from its first two words (Box-Muller), the acceptance
// uniform from the third; the boost's uniform is round 0's fourth word.
double log_gamma_draw(const Philox &gen, uint64_t e, double a) {
  const double boost = a < 1.0 ? std::log(open_unit(gen.block(e * 64)[3])) / a : 0.0;
  const double d = (a < 1.0 ? a + 1.0 : a) - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (uint64_t r = 0; r < 64; ++r) {
    const auto b = gen.block(e * 64 + r);
    const double x =
        std::sqrt(-2.0 * std::log(open_unit(b[0]))) * std::cos(6.283185307179586 * open_unit(b[1]));
    const double v = (1.0 + c * x) * (1.0 + c * x) * (1.0 + c * x);
    if (v <= 0.0) continue;
    if (std::log(open_unit(b[2])) < 0.5 * x * x + d - d * v + d * std::log(v)) return std::log(d * v) + boost;
  }
  return std::log(d) + boost;  // 64 rejections in a row: chance below 1e-80
}

void check_gamma_args(const char *op, double alpha, double beta) {
  for (const auto &[name, v] : {std::pair<const char *, double>{"alpha", alpha}, {"beta", beta}})
    if (!(v > 0.0) || !std::isfinite(v))
      fail(Code::kInvalidArgument, op, ": ", name, " is ", v, "; expected a positive finite number");
}

}  // namespace

Tensor random_gamma(const Shape &shape, double alpha, double beta, int64_t seed) {
  check_gamma_args("random_gamma", alpha, beta);
  const Philox gen = generator(seed);
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  float *o = out.mutable_data<float>();
  for (int64_t i = 0; i < out.num_elements(); ++i)
    o[i] = static_cast<float>(std::exp(log_gamma_draw(gen, static_cast<uint64_t>(i), alpha)) / beta);
  return out;
}

Tensor random_beta(const Shape &shape, double alpha, double beta, int64_t seed) {
  check_gamma_args("random_beta", alpha, beta);
  const Philox gen = generator(seed);
  Tensor out = Tensor::empty(DType::kFloat32, shape);
  float *o = out.mutable_data<float>();
  for (int64_t i = 0; i < out.num_elements(); ++i) {
    const double g = log_gamma_draw(gen, 2 * static_cast<uint64_t>(i), alpha),
                 h = log_gamma_draw(gen, 2 * static_cast<uint64_t>(i) + 1, beta);
    const double value = 1.0 / (1.0 + std::exp(h - g));  // G / (G + H)
    o[i] = std::isnan(value) ? 0.5f : static_cast<float>(value);
  }
  return out;
}

Tensor random_permutation(int64_t n, int64_t seed) {
  if (n < 0) fail(Code::kInvalidArgument, "random_permutation: n is ", n, "; expected n >= 0");
  const Philox gen = generator(seed);
  Tensor out = Tensor::empty(DType::kInt64, Shape({n}));
  int64_t *p = out.mutable_data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t j = n - 1; j > 0; --j) {  // Fisher-Yates: position j takes one of 0 .. j, 53 random bits
    const auto b = gen.block(static_cast<uint64_t>(j));
    const double u = static_cast<double>((uint64_t{b[0]} << 21) ^ (b[1] >> 11)) * (1.0 / 9007199254740992.0);
    std::swap(p[j], p[std::min(j, static_cast<int64_t>(u * static_cast<double>(j + 1)))]);
  }
  return out;
}

Tensor random_shuffle(const Tensor &value, int64_t axis, int64_t seed) {
  require_defined(value, "random_shuffle", "value");
  if (value.rank() == 0 || axis < -value.rank() || axis >= value.rank())
    fail(Code::kInvalidArgument, "random_shuffle: axis ", axis, " is out of range for value ",
         value.description(), "; expected an axis in [-rank, rank) of a value of rank >= 1");
  const int64_t a = axis < 0 ? axis + value.rank() : axis;
  return gather(value, random_permutation(value.shape()[static_cast<int>(a)], seed), a);
}

Tensor random_uniform_float(const Shape &shape, DType dtype, double minval, double maxval, int64_t seed) {
  return uniform_float_from("random_uniform", seed, shape, dtype, minval, maxval);
}

Tensor random_uniform_int(const Shape &shape, DType dtype, int64_t minval, int64_t maxval, int64_t seed) {
  return uniform_int_from("random_uniform", seed, shape, dtype, minval, maxval);
}

Tensor stateless_random_uniform_float(const Shape &shape, SeedPair seed, DType dtype, double minval,
                                      double maxval) {
  return uniform_float_from("stateless_random_uniform", seed, shape, dtype, minval, maxval);
}

Tensor stateless_random_uniform_int(const Shape &shape, SeedPair seed, DType dtype, int64_t minval,
                                    int64_t maxval) {
  return uniform_int_from("stateless_random_uniform", seed, shape, dtype, minval, maxval);
}

Tensor random_normal(const Shape &shape, float mean, float stddev, int64_t seed) {
  check_normal_args("random_normal", shape, mean, stddev);
  return normal_from(generator(seed), shape, mean, stddev);
}

Tensor truncated_normal(const Shape &shape, float mean, float stddev, int64_t seed) {
  check_normal_args("truncated_normal", shape, mean, stddev);
  return truncated_from(generator(seed), shape, mean, stddev);
}

Tensor dropout(const Tensor &x, float rate, bool training, int64_t seed,
               const std::vector<int64_t> &noise_shape) {
  check_dropout_args("dropout", x, rate);
  const Shape noise = noise_shape_of("dropout", x, noise_shape);
  if (!training || rate == 0.0f) return x;
  return dropout_from(generator(seed), x, rate, noise);
}

Tensor stateless_random_uniform(const Shape &shape, SeedPair seed, float minval, float maxval) {
  check_uniform_args("stateless_random_uniform", shape, minval, maxval);
  return uniform_from(generator(seed), shape, minval, maxval);
}

Tensor stateless_random_normal(const Shape &shape, SeedPair seed, float mean, float stddev) {
  check_normal_args("stateless_random_normal", shape, mean, stddev);
  return normal_from(generator(seed), shape, mean, stddev);
}

Tensor stateless_truncated_normal(const Shape &shape, SeedPair seed, float mean, float stddev) {
  check_normal_args("stateless_truncated_normal", shape, mean, stddev);
  return truncated_from(generator(seed), shape, mean, stddev);
}

Tensor stateless_dropout(const Tensor &x, float rate, SeedPair seed,
                         const std::vector<int64_t> &noise_shape) {
  check_dropout_args("stateless_dropout", x, rate);
  const Shape noise = noise_shape_of("stateless_dropout", x, noise_shape);
  if (rate == 0.0f) return x;
  return dropout_from(generator(seed), x, rate, noise);
}

}  // namespace kiln::ops
