// The fused activations of ops/fused_activation.h.
#include "ops/fused_activation.h"

#include "core/error.h"
#include "kernels/reduce.h"
#include "ops/elementwise_internal.h"
#include "ops/recorder.h"

namespace kiln::ops::internal {

namespace {
using kernels::UnaryOp;
using DA = DenseActivation;

Tensor k(double v, const Tensor &like) { return scalar_like(v, like); }
}  // namespace

ActivationKernel activation_kernel(DA a, const char *op) {
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
  fail(Code::kInvalidArgument, op, ": unknown activation ", static_cast<int>(a));
}

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
  fail(Code::kInvalidArgument, "unknown fused activation ", static_cast<int>(a));
}

Tensor pre_activation_grad(DA a, float alpha, const Tensor &g, const Tensor &y, const Tensor &z) {
  switch (a) {
    case DA::kLinear:
      return g;
    case DA::kRelu:
      return relu_grad(y, g, 0.0f);
    case DA::kLeakyRelu:
      return relu_grad(y, g, alpha);
    case DA::kRelu6:
      return mul(g, cast(logical_and(greater(y, k(0.0, y)), less(y, k(6.0, y))), y.dtype()));
    case DA::kSigmoid:
      return mul(g, mul(y, sub(k(1.0, y), y)));
    case DA::kTanh:
      return mul(g, sub(k(1.0, y), square(y)));
    case DA::kElu:  // as ops::elu's rule (TF's EluGrad): alpha at 0 and NaN
      return mul(g, where(greater(y, k(0.0, y)), k(1.0, y),
                          where(less(y, k(0.0, y)), add(y, k(alpha, y)), k(alpha, y))));
    case DA::kSelu: {  // as ops::selu's rule (TF's SeluGrad): scale at 0 and NaN
      constexpr double kScale = kernels::activation::kSeluScale,
                       kScaleAlpha = kScale * kernels::activation::kSeluAlpha;
      return mul(g, where(less(y, k(0.0, y)), add(y, k(kScaleAlpha, y)), k(kScale, y)));
    }
    case DA::kExp:
      return mul(g, y);
    case DA::kGelu:
      return gelu_grad(z, g, false);
    case DA::kGeluTanh:
      return gelu_grad(z, g, true);
    case DA::kSoftplus:
      return mul(g, sigmoid(z));
    case DA::kSwish: {
      const Tensor s = sigmoid(z);
      return mul(g, add(s, mul(y, sub(k(1.0, z), s))));
    }
  }
  fail(Code::kInvalidArgument, "unknown fused activation ", static_cast<int>(a));
}

PreActivationGrads pre_activation_grads(DA a, float alpha, const Tensor &g, const Tensor &y, const Tensor &z,
                                        const Tensor &erfc, bool need_bias, int64_t channels) {
  const bool relu = a == DA::kRelu || a == DA::kLeakyRelu;
  if (need_bias && relu && g.dtype() == DType::kFloat32 && y.dtype() == DType::kFloat32 &&
      g.shape() == y.shape() && g.rank() >= 2 && g.shape()[g.rank() - 1] == channels && channels >= 2 &&
      g.num_elements() / channels >= 2 && !should_record({&g, &y})) {
    // gz goes over g when nothing else can see g: this pass is memory-bound.
    PreActivationGrads out{overwritable_or_empty(g), Tensor::empty(DType::kFloat32, Shape{channels})};
    kernels::relu_grad_column_sum(y.data<float>(), g.data<float>(), out.gz.mutable_data<float>(),
                                  out.dbias.mutable_data<float>(), g.num_elements() / channels, channels,
                                  a == DA::kLeakyRelu ? alpha : 0.0f);
    return out;
  }
  Tensor gz = erfc.defined() ? gelu_grad_from_erfc(z, erfc, g) : pre_activation_grad(a, alpha, g, y, z);
  Tensor dbias = need_bias ? sum_to_shape(gz, Shape{channels}) : Tensor();
  return {std::move(gz), std::move(dbias)};
}

float activation_kernel_alpha(DA a, float alpha) {
  return a == DA::kLeakyRelu || a == DA::kElu ? alpha : 0.0f;
}

}  // namespace kiln::ops::internal
