// Eager ops. Each validates its arguments (InvalidArgument naming the op, what
// it got and what it expected), infers the output shape, runs a kernel and, when
// a tape watches an input, records its gradient rule (written in ops).
//
// Broadcasting follows NumPy. Axes may be negative. Float ops take float32
// unless said otherwise; gradients flow through floating tensors of the dtypes an op takes.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace kiln::ops {

enum class Padding { kValid = 0, kSame = 1 };

// ---- elementwise binary (float32, bfloat16, float64, int32, int64; same dtype both sides) ----
// bfloat16 computes each element in float32 and rounds once; integer div truncates.
Tensor add(const Tensor &a, const Tensor &b);
Tensor sub(const Tensor &a, const Tensor &b);
Tensor mul(const Tensor &a, const Tensor &b);
Tensor div(const Tensor &a, const Tensor &b);
Tensor maximum(const Tensor &a, const Tensor &b);
Tensor minimum(const Tensor &a, const Tensor &b);
// Integer pow multiplies (wrapping; 0^0 = 1) and refuses a negative exponent, as TF.
Tensor pow(const Tensor &a, const Tensor &b);
// tf.math.truediv (Python's /): int32 and int64 divide as float64, uint8 as float32, floats
// as div. Gradients through div for floating operands.
Tensor truediv(const Tensor &a, const Tensor &b);

// ---- elementwise unary (float32, bfloat16, float64; neg/abs/square also int32/int64) ----
// bfloat16 gives bf16(float32 result); float64 computes in double.
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
// As tf.math / tf.nn: round is to nearest, ties to even; sign(+-0) = +-0 and
// sign(NaN) = NaN; floor, round and sign have a zero gradient. round, sign, relu and relu6
// take int32 and int64 too (round the identity), as TF registers them.
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
// Floating, int32 or int64 x; for an integer x both bounds must be whole numbers of its range.
Tensor clip_by_value(const Tensor &x, float clip_min, float clip_max);
// Tensor bounds: each of x's dtype, broadcasting to x's shape; differentiable in x and the bounds.
Tensor clip_by_value(const Tensor &x, const Tensor &clip_min, const Tensor &clip_max);

// ---- linear algebra, reductions, softmax ----
// Batched: the last two dims multiply, leading dims broadcast. float32, bfloat16, float64, int32
// or int64 (integers wrap on overflow; no gradient).
Tensor matmul(const Tensor &a, const Tensor &b, bool transpose_a = false, bool transpose_b = false);
// Empty axes: reduce over all axes.
Tensor sum(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
// mean of int32/int64 is TF's: the sum divided by the count, truncated toward zero (0 if empty).
Tensor mean(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor max(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor min(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor argmax(const Tensor &x, int64_t axis = -1);  // -> int64
Tensor softmax(const Tensor &x, int64_t axis = -1);
Tensor log_softmax(const Tensor &x, int64_t axis = -1);
// Sums `grad` down to `shape` (the reverse of broadcasting); used by gradient rules.
Tensor sum_to_shape(const Tensor &grad, const Shape &shape);

// ---- normalisation, convolution, pooling (channels last) ----
// Normalises over `axes`, which must be the trailing axes of x (any order; empty: the last axis);
// gamma and beta have the shape of those dims ([C] for the last axis; Keras
// LayerNormalization(axis=[-2, -1]) gives [D1, D2]).
Tensor layer_norm(const Tensor &x, const Tensor &gamma, const Tensor &beta, float epsilon = 1e-3f,
                  const std::vector<int64_t> &axes = {});
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
// tf.nn.conv2d_transpose: x [N, H, W, C], filter [KH, KW, O, C], output_shape [N, OH, OW, O] such that
// conv2d of output_shape with filter, strides, dilations and padding gives x's shape (its adjoint).
Tensor conv2d_transpose(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &output_shape,
                        const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations, Padding padding);
// tf.nn.depthwise_conv2d: x [N, H, W, C], filter [KH, KW, C, M] -> [N, OH, OW, C * M], channel c * M + m.
Tensor depthwise_conv2d(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
                        const std::vector<int64_t> &dilations, Padding padding);
// tf.nn.conv1d: x [N, W, C], filter [KW, C, O] -> [N, OW, O] (conv2d over [N, 1, W, C]).
Tensor conv1d(const Tensor &x, const Tensor &filter, int64_t stride, int64_t dilation, Padding padding);
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
// ---- indexing and padding (TF semantics; indices int32/int64; any dtype moves, gradients for float32) ----
// tf.gather: the first batch_dims dims of params and indices are batch dims (axis >= batch_dims);
// result params[:axis] + indices[batch_dims:] + params[axis+1:]. Gradient: scatter_add.
Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis = 0, int64_t batch_dims = 0);
// tf.gather_nd: indices [..., K] address the leading K dims of params after batch_dims batch dims.
Tensor gather_nd(const Tensor &params, const Tensor &indices, int64_t batch_dims = 0);
// tf.scatter_nd: zeros of `shape` plus updates at indices [..., K]; duplicates accumulate (in index
// order). updates: float32, bfloat16, float64, int32 or int64 (integers wrap around on overflow, as
// TF's CPU kernel); the result has updates' dtype. Gradient w.r.t. floating updates.
Tensor scatter_nd(const Tensor &indices, const Tensor &updates, const Shape &shape);
// tf.tensor_scatter_nd_add: tensor plus scatter_nd(indices, updates, tensor.shape); tensor and
// updates of one dtype among scatter_nd's.
Tensor tensor_scatter_nd_add(const Tensor &tensor, const Tensor &indices, const Tensor &updates);
// tf.boolean_mask: the entries of tensor where the bool mask (tensor.shape[axis:axis+mask.rank]) is true.
Tensor boolean_mask(const Tensor &tensor, const Tensor &mask, int64_t axis = 0);
// tf.one_hot: the depth axis inserted at axis (-1: last); on/off converted to dtype.
Tensor one_hot(const Tensor &indices, int64_t depth, double on_value = 1.0, double off_value = 0.0, int64_t axis = -1,
               DType dtype = DType::kFloat32);
enum class PadMode { kConstant = 0, kReflect = 1, kSymmetric = 2 };
// tf.pad: paddings holds [before, after] for every dim (2 * rank values, >= 0). REFLECT needs
// each <= dim - 1, SYMMETRIC <= dim. constant_value converted to x's dtype.
Tensor pad(const Tensor &x, const std::vector<int64_t> &paddings, PadMode mode = PadMode::kConstant,
           double constant_value = 0.0);
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
// keras.random.beta: float32 Beta(alpha, beta) values (alpha, beta > 0, finite), each the ratio
// G_a / (G_a + G_b) of two Gamma draws (Marsaglia and Tsang's method, boosted below 1), computed in
// float64 through their logarithms so tiny alphas give 0s and 1s, not NaN. Not TF's stream of values.
Tensor random_beta(const Shape &shape, double alpha, double beta, int64_t seed = -1);
// keras.random.shuffle of arange(n): a uniformly random permutation of 0 .. n - 1 as int64 (Fisher-Yates).
Tensor random_permutation(int64_t n, int64_t seed = -1);
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

// tf.random.uniform with a dtype (and its stateless form). Floating (float32, bfloat16, float64):
// minval + (maxval - minval) u, u in [0, 1) drawn at the dtype's precision (24, 8, 53 bits) and
// the sum computed in float32 (float64 for float64), then rounded to the dtype: [0, 1) stays
// below 1, while other ranges may round up to maxval, as in TF. float32 gives random_uniform's
// values. Integer (int32, int64): minval + (bits mod (maxval - minval)) over 32 or 64 random
// bits, TF's way (biased by at most range / 2^32 or range / 2^64); minval < maxval. A bound that
// is not finite or not in the dtype's range, and any other dtype, are InvalidArgument.
Tensor random_uniform_float(const Shape &shape, DType dtype, double minval, double maxval, int64_t seed = -1);
Tensor random_uniform_int(const Shape &shape, DType dtype, int64_t minval, int64_t maxval, int64_t seed = -1);
Tensor stateless_random_uniform_float(const Shape &shape, SeedPair seed, DType dtype, double minval,
                                      double maxval);
Tensor stateless_random_uniform_int(const Shape &shape, SeedPair seed, DType dtype, int64_t minval,
                                    int64_t maxval);

// tf.nn.experimental.stateless_dropout: dropout (always training) with its mask drawn from seed.
Tensor stateless_dropout(const Tensor &x, float rate, SeedPair seed,
                         const std::vector<int64_t> &noise_shape = {});

}  // namespace kiln::ops

// ---- losses (tf.nn.*_cross_entropy_with_logits): per-example losses, fused and stable ----
namespace kiln::ops {
// labels int32/int64 with logits' shape minus its last (class) dim; each in [0, classes)
// (InvalidArgument otherwise, as TF on CPU). No one-hot is built. Gradient: logits only.
Tensor sparse_softmax_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits);
// labels float32, logits' shape (or broadcasting to it); classes along axis. Gradients: both.
Tensor softmax_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits, int64_t axis = -1);
// Elementwise; labels and logits float32 of one shape. Gradients: both.
Tensor sigmoid_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits);
// tf.nn.ctc_loss with dense labels: labels int32/int64 [batch, max_label]; logits float
// [frames, batch, classes] (logits_time_major) or [batch, frames, classes]; label_length and
// logit_length int32/int64 [batch] (each in [0, max_label] and [0, frames]); blank_index in
// [-classes, classes) (negative counts from the end). Labels in a sample's length lie in
// [0, classes) and are not the blank. -> [batch] negative log-likelihoods, +inf where no
// alignment fits. Gradient: logits only.
Tensor ctc_loss(const Tensor &labels, const Tensor &logits, const Tensor &label_length,
                const Tensor &logit_length, bool logits_time_major = true, int64_t blank_index = 0);
// keras.ops.ctc_decode: logits float [batch, frames, classes] (bfloat16 runs as float32);
// sequence_lengths int32/int64 [batch], each in [0, frames]; strategy "greedy" or "beam_search"
// (beam_width >= 1, 1 <= top_paths <= beam_width; greedy gives one path); mask_index in
// [-classes, classes) is the blank. -> {decoded int32 [paths, batch, frames], -1 past each path;
// scores [batch, paths] of logits' dtype (float32 for bfloat16): greedy -(sum of the chosen
// logits), beam search log-probabilities}. No gradient.
std::pair<Tensor, Tensor> ctc_decode(const Tensor &logits, const Tensor &sequence_lengths,
                                     const std::string &strategy = "greedy", int64_t beam_width = 100,
                                     int64_t top_paths = 1, bool merge_repeated = true,
                                     int64_t mask_index = 0);
}  // namespace kiln::ops

// ---- more reductions, normalisation helpers (TF names). Empty axes: all axes. ----
namespace kiln::ops {
Tensor argmin(const Tensor &x, int64_t axis = -1);  // -> int64, first index on ties
// float32 (gradient, zeros handled), int32, int64 (wrapping). Empty groups give 1.
Tensor reduce_prod(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
Tensor reduce_any(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);  // bool
Tensor reduce_all(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);  // bool
// log(sum(exp(x))) shifted by the maximum; rows of -inf give -inf, as TF.
Tensor reduce_logsumexp(const Tensor &x, const std::vector<int64_t> &axes = {}, bool keepdims = false);
struct MomentsResult {
  Tensor mean;
  Tensor variance;  // biased (divides by the count), as tf.nn.moments
};
MomentsResult moments(const Tensor &x, const std::vector<int64_t> &axes, bool keepdims = false);
// x / sqrt(max(sum(x^2 over axes), epsilon)); empty axes: all (TF axis=None).
Tensor l2_normalize(const Tensor &x, const std::vector<int64_t> &axes = {}, float epsilon = 1e-12f);
// value [..., C] + bias [C] (channels last, TF's NHWC); value rank >= 2.
Tensor bias_add(const Tensor &value, const Tensor &bias);
}  // namespace kiln::ops

// ---- scans ----
namespace kiln::ops {
// Cumulative sum along axis (float32, int32, int64); exclusive leaves out each element itself,
// reverse sums from the end (tf.math.cumsum).
Tensor cumsum(const Tensor &x, int64_t axis = 0, bool exclusive = false, bool reverse = false);
// Cumulative product along axis (float32, float64, int32, int64; tf.math.cumprod), exclusive and
// reverse as cumsum's. Gradient: TF's (cumsum of cumprod * g the other way, divided by x; 0 where
// x is 0).
Tensor cumprod(const Tensor &x, int64_t axis = 0, bool exclusive = false, bool reverse = false);
struct TopKResult {
  Tensor values;   // x's dtype, [..., k], descending
  Tensor indices;  // int32 [..., k]; ties to the lower index, as TF
};
// The k largest entries along the last axis (tf.math.top_k). Gradient: scattered to their positions.
TopKResult top_k(const Tensor &x, int64_t k, bool sorted = true);
}  // namespace kiln::ops

// ---- floor division (Python's // and %) ----
namespace kiln::ops {
// floor(a / b), broadcasting; float32, int32, int64 (integers round toward -inf; a zero integer
// divisor is InvalidArgument, as TF). No gradient, as TF.
Tensor floordiv(const Tensor &a, const Tensor &b);
// a - floor(a / b) * b, the sign of b (TF's floormod). Gradients: 1 and -floor(a / b).
Tensor floormod(const Tensor &a, const Tensor &b);
}  // namespace kiln::ops

// ---- einsum ----
namespace kiln::ops {
// tf.einsum for one or two float32 operands ("bqhd,bkhd->bhqk", "...ij,...jk->...ik", "ij->ji",
// "ij->i", implicit outputs too), lowered to sum/transpose/reshape/matmul, so gradients come from
// those ops. Diagonals (a label repeated in one operand) and three or more operands are
// Unimplemented; malformed equations are InvalidArgument.
Tensor einsum(const std::string &equation, const std::vector<Tensor> &inputs);
}  // namespace kiln::ops

// ---- fused dense (a Dense layer's forward pass) ----
namespace kiln::ops {
// The activations dense() applies in the same pass (alpha: leaky_relu's slope, elu's scale).
enum class DenseActivation {
  kLinear = 0,
  kRelu,
  kRelu6,
  kLeakyRelu,
  kSigmoid,
  kTanh,
  kGelu,      // the exact (erf) form
  kGeluTanh,  // the tanh approximation
  kElu,
  kSelu,
  kSoftplus,
  kSwish,
  kExp,
};
// act(x · kernel + bias): x [..., in] (rank >= 2), kernel [in, units], bias [units] or undefined.
// float32 with at most 8 rows and no recording tape runs kernels/gemv.cc over the kernel packed
// once (as matmul does for such shapes); otherwise float32 and bfloat16 run one matmul primitive
// with the bias fused and the activation in place. Either way: the bits of matmul, then bias_add,
// then the activation op (bfloat16: bf16 of that float32 result, rounded once); float64 composes
// those ops. One gradient rule: dx, dkernel, dbias.
Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias,
             DenseActivation activation = DenseActivation::kLinear, float alpha = 0.0f);
// A Conv2D layer's forward pass: conv2d, bias_add (when bias is defined) and an activation whose
// gradient reads only its output (linear, relu, relu6, leaky_relu, sigmoid, tanh, elu, selu,
// exponential; InvalidArgument for the others) as one op with the bits of the three: the bias
// and the activation run in one pass, in place on the convolution's output. max_pool (2 values;
// empty: none) appends a MaxPooling2D with that pool size and its default strides (VALID): the
// output is the pooled tensor, with the bits of max_pool2d over the unpooled one. With relu and
// a pooling that tiles (strides equal to the window) the bias, relu and pooling run in one pass
// and the unpooled output is not kept for the gradient (a Sequential's Conv2D + MaxPooling2D).
Tensor conv2d_bias_act(const Tensor &x, const Tensor &filter, const Tensor &bias,
                       const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                       Padding padding, DenseActivation activation, float alpha = 0.0f,
                       const std::vector<int64_t> &max_pool = {});
}  // namespace kiln::ops
