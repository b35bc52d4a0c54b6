// Eager ops. Each validates its arguments (InvalidArgument naming the op, what
// it got and what it expected), infers the output shape, runs a kernel and, when
// a tape watches an input, records its gradient rule (written in ops).
//
// Broadcasting follows NumPy. Axes may be negative. Float ops take float32
// unless said otherwise; gradients flow only through float32 tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace kiln::ops {

enum class Padding { kValid = 0, kSame = 1 };

// ---- elementwise binary (float32, int32, int64; same dtype both sides) ----
Tensor add(const Tensor &a, const Tensor &b);
Tensor sub(const Tensor &a, const Tensor &b);
Tensor mul(const Tensor &a, const Tensor &b);
Tensor div(const Tensor &a, const Tensor &b);
Tensor maximum(const Tensor &a, const Tensor &b);
Tensor minimum(const Tensor &a, const Tensor &b);
Tensor pow(const Tensor &a, const Tensor &b);  // float32 only

// ---- elementwise unary (float32; neg/abs/square also int32/int64) ----
Tensor neg(const Tensor &x);
Tensor abs(const Tensor &x);
Tensor exp(const Tensor &x);
Tensor log(const Tensor &x);
Tensor sqrt(const Tensor &x);
Tensor rsqrt(const Tensor &x);
Tensor square(const Tensor &x);
Tensor tanh(const Tensor &x);
Tensor sigmoid(const Tensor &x);
Tensor relu(const Tensor &x);
Tensor gelu(const Tensor &x, bool approximate);  // approximate: the tanh form
Tensor softplus(const Tensor &x);
Tensor elu(const Tensor &x, float alpha);
Tensor leaky_relu(const Tensor &x, float alpha);
Tensor swish(const Tensor &x);
// float32, as tf.math / tf.nn: round is to nearest, ties to even; sign(+-0) = +-0 and
// sign(NaN) = NaN; floor, round and sign have a zero gradient.
Tensor log1p(const Tensor &x);
Tensor expm1(const Tensor &x);
Tensor floor(const Tensor &x);
Tensor round(const Tensor &x);
Tensor sign(const Tensor &x);
Tensor sin(const Tensor &x);
Tensor cos(const Tensor &x);
Tensor relu6(const Tensor &x);
Tensor selu(const Tensor &x);

// ---- comparison (same dtype both sides, broadcast) -> bool ----
Tensor equal(const Tensor &a, const Tensor &b);
Tensor not_equal(const Tensor &a, const Tensor &b);
Tensor greater(const Tensor &a, const Tensor &b);
Tensor greater_equal(const Tensor &a, const Tensor &b);
Tensor less(const Tensor &a, const Tensor &b);
Tensor less_equal(const Tensor &a, const Tensor &b);

// ---- logical (bool) ----
Tensor logical_and(const Tensor &a, const Tensor &b);
Tensor logical_or(const Tensor &a, const Tensor &b);
Tensor logical_xor(const Tensor &a, const Tensor &b);
Tensor logical_not(const Tensor &x);

// cond (bool) picks x where true, y where false; all three broadcast.
Tensor where(const Tensor &cond, const Tensor &x, const Tensor &y);
Tensor cast(const Tensor &x, DType dtype);
Tensor clip_by_value(const Tensor &x, float clip_min, float clip_max);

// ---- linear algebra, reductions, softmax ----
// Batched: the last two dims multiply, leading dims broadcast. float32 or bfloat16.
Tensor matmul(const Tensor &a, const Tensor &b, bool transpose_a = false, bool transpose_b = false);
// Empty axes: reduce over all axes.
Tensor sum(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor mean(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor max(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor min(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor argmax(const Tensor &x, int64_t axis = -1);  // -> int64
Tensor softmax(const Tensor &x, int64_t axis = -1);
Tensor log_softmax(const Tensor &x, int64_t axis = -1);
// Sums `grad` down to `shape` (the reverse of broadcasting); used by gradient rules.
Tensor sum_to_shape(const Tensor &grad, const Shape &shape);

// ---- normalisation, convolution, pooling (channels last) ----
// Normalises over the last axis; gamma and beta have shape [C].
Tensor layer_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, float epsilon = 1e-3f);
struct BatchNormResult {
  Tensor y;
  Tensor mean;      // batch mean [C] when training, else the given mean
  Tensor variance;  // batch variance [C] (biased) when training, else the given variance
};
// Normalises over all axes but the last. training: batch statistics (mean, variance ignored);
// inference: the given moving mean and variance.
BatchNormResult batch_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, const Tensor &mean,
                           const Tensor &variance, bool training, float epsilon = 1e-3f);
// x: [N, H, W, C]; filter: [KH, KW, C, O] (TF's HWIO).
Tensor conv2d(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
              const std::vector<int64_t> &dilations, Padding padding);
Tensor max_pool2d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding);
Tensor avg_pool2d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding);

// ---- shape and indexing ----
Tensor reshape(const Tensor &x, const std::vector<int64_t> &shape);  // one -1 allowed
Tensor transpose(const Tensor &x, const std::vector<int64_t> &perm = {});  // empty: reverse
Tensor concat(const std::vector<Tensor> &values, int64_t axis);
// sizes empty: num_splits equal parts; otherwise one part per size (one -1 allowed).
std::vector<Tensor> split(const Tensor &x, const std::vector<int64_t> &sizes, int64_t num_splits, int64_t axis);
Tensor slice(const Tensor &x, const std::vector<int64_t> &begin, const std::vector<int64_t> &size);  // size -1: to the end
Tensor stack(const std::vector<Tensor> &values, int64_t axis);
Tensor expand_dims(const Tensor &x, int64_t axis);
Tensor squeeze(const Tensor &x, const std::vector<int64_t> &axes = {});  // empty: all size-1 dims
Tensor broadcast_to(const Tensor &x, const Shape &shape);
Tensor tile(const Tensor &x, const std::vector<int64_t> &multiples);
// indices int32/int64; gradient scatter-adds into params' shape.
Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis = 0);
Tensor one_hot(const Tensor &indices, int64_t depth, float on_value = 1.0f, float off_value = 0.0f);
Tensor stop_gradient(const Tensor &x);

// ---- creation and randomness (seed < 0: next value of the global sequence) ----
Tensor zeros(const Shape &shape, DType dtype = DType::kFloat32);
Tensor ones(const Shape &shape, DType dtype = DType::kFloat32);
// Integer dtypes: an integer value fills exactly; a fraction truncates toward zero; NaN, inf
// or a value out of the dtype's range is InvalidArgument.
Tensor fill(const Shape &shape, double value, DType dtype = DType::kFloat32);
// fill with an exact int64 value (for values beyond 2^53 that double cannot hold).
Tensor fill_int64(const Shape &shape, int64_t value, DType dtype = DType::kInt64);
Tensor zeros_like(const Tensor &x);
Tensor ones_like(const Tensor &x);
// Integer dtypes with integer arguments count and fill in exact int64 arithmetic; NaN or inf
// arguments, or values out of the dtype's range, are InvalidArgument.
Tensor range(double start, double limit, double delta, DType dtype = DType::kFloat32);
Tensor range_int64(int64_t start, int64_t limit, int64_t delta, DType dtype = DType::kInt64);
Tensor random_uniform(const Shape &shape, float minval = 0.0f, float maxval = 1.0f, int64_t seed = -1);
Tensor random_normal(const Shape &shape, float mean = 0.0f, float stddev = 1.0f, int64_t seed = -1);
Tensor truncated_normal(const Shape &shape, float mean = 0.0f, float stddev = 1.0f, int64_t seed = -1);
// Inverted dropout: kept values scaled by 1/(1-rate); identity when !training. noise_shape (TF's):
// the shape the keep/drop mask is drawn in, broadcast over x; empty means x's shape, and a -1 entry
// takes x's dim. Its rank is x's; each dim is 1 or x's.
Tensor dropout(const Tensor &x, float rate, bool training, int64_t seed = -1,
               const std::vector<int64_t> &noise_shape = {});

// ---- stateless randomness: the same seed pair gives the same values on any call and thread ----
// TF's `seed=[a, b]` of tf.random.stateless_*: a keys the Philox generator, b selects the stream.
struct SeedPair {
  int64_t a = 0;
  int64_t b = 0;
};
Tensor stateless_random_uniform(const Shape &shape, SeedPair seed, float minval = 0.0f, float maxval = 1.0f);
Tensor stateless_random_normal(const Shape &shape, SeedPair seed, float mean = 0.0f, float stddev = 1.0f);
Tensor stateless_truncated_normal(const Shape &shape, SeedPair seed, float mean = 0.0f, float stddev = 1.0f);
// tf.nn.experimental.stateless_dropout: dropout (always training) with its mask drawn from seed.
Tensor stateless_dropout(const Tensor &x, float rate, SeedPair seed,
                         const std::vector<int64_t> &noise_shape = {});

}  // namespace kiln::ops
