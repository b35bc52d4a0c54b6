// dense: a Dense layer's act(x · kernel + bias) as one op. float32 and bfloat16 run one matmul
// primitive with the bias fused and the activation in place on its output (kernels::dense), and
// record one tape entry whose rule is written in ops; float64 composes matmul, add and the
// activation op. Either way the bits are those of the composition (few rows: matmul's gemv
// kernel, which an unrecorded call feeds with its kernel packed once and memoised), except with
// DenseOptions::bf16_inference_weights (ops/dense_options.h), which rounds the kernel.
#include <cmath>
#include <optional>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "ops/dense_options.h"
#include "ops/elementwise_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

using kernels::UnaryOp;
using DA = DenseActivation;

// The activation's kernel op, and whether its gradient reads the pre-activation z (the others'
// read only y, which decides the same branches: y > 0 exactly where z > 0, 0 < y < 6 exactly
// where 0 < z < 6, NaN where z is NaN).
struct ActivationKernel {
  std::optional<UnaryOp> op;
  bool reads_pre = false;
};

ActivationKernel activation_kernel(DA a) {
  switch (a) {
    case DA::kLinear:
      return {std::nullopt, false};
    case DA::kRelu:
    case DA::kLeakyRelu:
      return {UnaryOp::kRelu, false};
    case DA::kRelu6:
      return {UnaryOp::kRelu6, false};
    case DA::kSigmoid:
      return {UnaryOp::kSigmoid, false};
    case DA::kTanh:
      return {UnaryOp::kTanh, false};
    case DA::kElu:
      return {UnaryOp::kElu, false};
    case DA::kSelu:
      return {UnaryOp::kSelu, false};
    case DA::kExp:
      return {UnaryOp::kExp, false};
    case DA::kGelu:
      return {UnaryOp::kGeluErf, true};
    case DA::kGeluTanh:
      return {UnaryOp::kGeluTanh, true};
    case DA::kSoftplus:
      return {UnaryOp::kSoftplus, true};
    case DA::kSwish:
      return {UnaryOp::kSwish, true};
  }
  fail(Code::kInvalidArgument, "dense: unknown activation ", static_cast<int>(a));
}

// The activation as its op (the float64 path, and what the fused path must equal).
Tensor activate(const Tensor &z, DA a, float alpha) {
  switch (a) {
    case DA::kLinear:
      return z;
    case DA::kRelu:
      return relu(z);
    case DA::kLeakyRelu:
      return leaky_relu(z, alpha);
    case DA::kRelu6:
      return relu6(z);
    case DA::kSigmoid:
      return sigmoid(z);
    case DA::kTanh:
      return tanh(z);
    case DA::kElu:
      return elu(z, alpha);
    case DA::kSelu:
      return selu(z);
    case DA::kExp:
      return exp(z);
    case DA::kGelu:
      return gelu(z, false);
    case DA::kGeluTanh:
      return gelu(z, true);
    case DA::kSoftplus:
      return softplus(z);
    case DA::kSwish:
      return swish(z);
  }
  fail(Code::kInvalidArgument, "dense: unknown activation ", static_cast<int>(a));
}

Tensor k(double v, const Tensor &like) { return internal::scalar_like(v, like); }

// g through the activation's derivative, in the same ops (and operand order) as the activation
// op's own rule, so the gradient has the composition's bits. y is the output; z the
// pre-activation (defined only where activation_kernel says the rule reads it).
Tensor pre_activation_grad(DA a, float alpha, const Tensor &g, const Tensor &y, const Tensor &z) {
  switch (a) {
    case DA::kLinear:
      return g;
    case DA::kRelu:
      return internal::relu_grad(y, g, 0.0f);
    case DA::kLeakyRelu:
      return internal::relu_grad(y, g, alpha);
    case DA::kRelu6:
      return mul(g, cast(logical_and(greater(y, k(0.0, y)), less(y, k(6.0, y))), y.dtype()));
    case DA::kSigmoid:
      return mul(g, mul(y, sub(k(1.0, y), y)));
    case DA::kTanh:
      return mul(g, sub(k(1.0, y), square(y)));
    case DA::kElu:
      return mul(g, where(greater(y, k(0.0, y)), k(1.0, y), add(y, k(alpha, y))));
    case DA::kSelu: {
      constexpr double kScale = kernels::activation::kSeluScale,
                       kScaleAlpha = kScale * kernels::activation::kSeluAlpha;
      return mul(g, where(greater(y, k(0.0, y)), k(kScale, y), add(y, k(kScaleAlpha, y))));
    }
    case DA::kExp:
      return mul(g, y);
    case DA::kGelu:
      return internal::gelu_grad(z, g, false);
    case DA::kGeluTanh:
      return internal::gelu_grad(z, g, true);
    case DA::kSoftplus:
      return mul(g, sigmoid(z));
    case DA::kSwish: {
      const Tensor s = sigmoid(z);
      return mul(g, add(s, mul(y, sub(k(1.0, z), s))));
    }
  }
  fail(Code::kInvalidArgument, "dense: unknown activation ", static_cast<int>(a));
}

// t [..., n] as [rows, n]; rank-2 tensors as they are.
Tensor rows_of(const Tensor &t) {
  if (t.rank() == 2) return t;
  const int64_t n = t.shape()[t.rank() - 1];
  return reshape(t, {-1, n});
}

void validate(const Tensor &x, const Tensor &kernel, const Tensor &bias, DA activation, float alpha) {
  require_floating(x, "dense", "x");
  require_dtype(kernel, "dense", "kernel", {x.dtype()});
  if (bias.defined()) require_dtype(bias, "dense", "bias", {x.dtype()});
  const int64_t in = x.rank() > 0 ? x.shape()[x.rank() - 1] : 0;
  if (x.rank() < 2 || kernel.rank() != 2 || kernel.shape()[0] != in)
    fail(Code::kInvalidArgument, "dense: x ", x.description(), " and kernel ", kernel.description(),
         " do not match; expected x of rank >= 2 and a kernel [", in, ", units]");
  if (bias.defined() && (bias.rank() != 1 || bias.shape()[0] != kernel.shape()[1]))
    fail(Code::kInvalidArgument, "dense: bias ", bias.description(), " does not match kernel ",
         kernel.description(), "; expected a bias [", kernel.shape()[1], "]");
  if ((activation == DA::kLeakyRelu || activation == DA::kElu) && !std::isfinite(alpha))
    fail(Code::kInvalidArgument, "dense: argument 'alpha' is ", alpha, "; expected a finite value");
  activation_kernel(activation);  // rejects an out-of-range enum
}

}  // namespace

Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias, DenseActivation activation,
             float alpha) {
  return dense(x, kernel, bias, activation, alpha, DenseOptions{});
}

Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias, DenseActivation activation,
             float alpha, const DenseOptions &options) {
  validate(x, kernel, bias, activation, alpha);
  if (x.dtype() == DType::kFloat64) {  // oneDNN 2.6 has no f64 matmul on CPU: the ops themselves
    Tensor z = matmul(x, kernel);
    if (bias.defined()) z = add(z, bias);
    return activate(z, activation, alpha);
  }
  const ActivationKernel act = activation_kernel(activation);
  const float kernel_alpha = activation == DA::kLeakyRelu || activation == DA::kElu ? alpha : 0.0f;
  Shape out_shape = x.shape();
  out_shape.set_dim(x.rank() - 1, kernel.shape()[1], "dense");
  Tensor y = Tensor::empty(x.dtype(), out_shape);
  const bool recording = should_record({&x, &kernel, &bias});
  Tensor z;  // the pre-activation, kept only for a rule that reads it
  if (recording && act.reads_pre) z = Tensor::empty(x.dtype(), out_shape);
  // An inference call (no tape records it) may read the kernel packed and memoised by its
  // storage; a recorded one reads it in place (the same float32 bits).
  kernels::DenseWeightSource source;
  if (!recording) {
    source.storage = kernel.storage().get();
    source.bf16 = options.bf16_inference_weights;
  }
  // The exact gelu under a tape (float32) keeps the erfc its forward computes, so that the rule
  // does not evaluate it again: half of the activation's cost in a step (W4's FFN).
  Tensor erfc;
  const bool save_erfc = z.defined() && activation == DA::kGelu && x.dtype() == DType::kFloat32;
  kernels::dense(save_erfc ? std::nullopt : act.op, kernel_alpha, x.dtype(), x.raw_data(), x.shape(),
                 kernel.raw_data(), kernel.shape(), bias.defined() ? bias.raw_data() : nullptr,
                 z.defined() && !save_erfc ? z.raw_mutable_data() : nullptr,
                 save_erfc ? z.raw_mutable_data() : y.raw_mutable_data(), source);
  if (save_erfc) {
    erfc = Tensor::empty(DType::kFloat32, out_shape);
    kernels::gelu_erf_saving_erfc(z.data<float>(), y.mutable_data<float>(), erfc.mutable_data<float>(),
                                  y.num_elements());
  }
  if (recording) {
    // As matmul's and add's rules on the activation's gradient: dx = gz · kernelᵀ, dkernel =
    // xᵀ · gz with x's leading dims folded into rows, dbias = gz summed over the leading dims.
    // Only the gradients some tape can use are computed (TF's skip_input_indices): the first
    // layer's batch x is watched by no tape, so its dx GEMM, a quarter of an MLP step, is skipped.
    const bool need_dx = should_record({&x}), need_dk = should_record({&kernel}),
               need_db = bias.defined() && should_record({&bias});
    // A rule that reads z recomputes it from x and kernel under a recording outer tape.
    const Tensor saved_x = need_dk || act.reads_pre ? x : Tensor();
    const Tensor saved_kernel = need_dx || act.reads_pre ? kernel : Tensor();
    const Tensor saved_bias = act.reads_pre ? bias : Tensor();
    const int64_t units = kernel.shape()[1];
    record("dense", {x, kernel, bias}, {y},
           [saved_x, saved_kernel, saved_bias, y, z, erfc, activation, alpha, need_dx, need_dk, need_db,
            units](const Grads &g) -> Grads {
             // The kernel's z is no op's output, so a tape recording this rule (higher order)
             // could not differentiate through it: there, z is recomputed as a recorded op.
             const bool recompute = z.defined() && should_record({&saved_x, &saved_kernel, &saved_bias});
             const Tensor pre =
                 recompute ? dense(saved_x, saved_kernel, saved_bias, DenseActivation::kLinear) : z;
             const Tensor gz = erfc.defined() && !recompute
                                   ? internal::gelu_grad_from_erfc(pre, erfc, g[0])
                                   : pre_activation_grad(activation, alpha, g[0], y, pre);
             Tensor dx = need_dx ? matmul(gz, saved_kernel, false, true) : Tensor();
             Tensor dk = need_dk ? matmul(rows_of(saved_x), rows_of(gz), true, false) : Tensor();
             Tensor db = need_db ? sum_to_shape(gz, Shape{units}) : Tensor();
             return {dx, dk, db};
           });
  }
  return y;
}

}  // namespace kiln::ops
