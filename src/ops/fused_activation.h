// The activations that dense (and the convolutions with an epilogue) apply in their own pass:
// which kernel op runs them, the ops they stand for, and the gradient through them, written in
// those ops so that a fused op keeps the bits of the composition.
#pragma once

#include <optional>

#include "kernels/elementwise.h"
#include "ops/ops.h"

namespace kiln::ops::internal {

// The activation's kernel op, and whether its gradient reads the pre-activation z (the others'
// read only y, which decides the same branches: y > 0 exactly where z > 0, 0 < y < 6 exactly
// where 0 < z < 6, NaN where z is NaN). InvalidArgument naming op for an out-of-range enum.
struct ActivationKernel {
  std::optional<kernels::UnaryOp> op;
  bool reads_pre = false;
};
ActivationKernel activation_kernel(DenseActivation a, const char *op);

// alpha as the kernel op takes it: leaky_relu's slope and elu's scale, 0 for the others.
float activation_kernel_alpha(DenseActivation a, float alpha);

// The activation as its op (what the fused path must equal).
Tensor activate(const Tensor &z, DenseActivation a, float alpha);

// g through the activation's derivative, in the same ops (and operand order) as the activation
// op's own rule, so the gradient has the composition's bits. y is the output; z the
// pre-activation (defined only where activation_kernel says the rule reads it).
Tensor pre_activation_grad(DenseActivation a, float alpha, const Tensor &g, const Tensor &y, const Tensor &z);

// pre_activation_grad's gz (from the exact gelu's saved erfc when erfc is defined:
// gelu_grad_from_erfc) and, when need_bias, the bias gradient: gz summed over every axis but the
// last (sum_to_shape to [channels]). relu and leaky_relu over float32 with no tape recording run as
// one pass (kernels::relu_grad_column_sum) with the bits of the two ops, writing gz over g when g
// is the only handle on a buffer kiln owns.
struct PreActivationGrads {
  Tensor gz, dbias;
};
PreActivationGrads pre_activation_grads(DenseActivation a, float alpha, const Tensor &g, const Tensor &y,
                                        const Tensor &z, const Tensor &erfc, bool need_bias,
                                        int64_t channels);

}  // namespace kiln::ops::internal
