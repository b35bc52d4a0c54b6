// Internal ops of the NN family: the backward passes of conv2d, pooling and the normalisations,
// as ops so that gradient rules can call them and tapes can record them.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/ops.h"

namespace kiln::ops::internal {

// d(conv2d(x, filter))/dx applied to dy: a tensor of x_shape. Differentiable (in filter and dy).
Tensor conv2d_backprop_input(const Shape &x_shape, const Tensor &filter, const Tensor &dy,
                             const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                             Padding padding);
// d(conv2d(x, filter))/dfilter applied to dy: a tensor of filter_shape. Differentiable (in x and dy).
Tensor conv2d_backprop_filter(const Tensor &x, const Shape &filter_shape, const Tensor &dy,
                              const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                              Padding padding);
// d(avg_pool2d(x))/dx applied to dy: a tensor of x_shape. Differentiable (in dy).
Tensor avg_pool2d_grad(const Shape &x_shape, const Tensor &dy, const std::vector<int64_t> &ksize,
                       const std::vector<int64_t> &strides, Padding padding);

struct NormGrads {
  Tensor dx;
  Tensor dgamma;
  Tensor dbeta;
};
// Gradients of layer_norm(x, gamma, beta, epsilon) for dy, given the row statistics [rows] of x
// that the forward pass computed. Uses the fused kernel, or composes ops (so that higher-order
// gradients flow) when a tape records x, gamma or dy.
NormGrads layer_norm_grad(const Tensor &x, const Tensor &gamma, const Tensor &mean, const Tensor &variance,
                          const Tensor &dy, float epsilon);
// Gradients of batch_norm's y for dy, given the statistics [C] used by the forward pass (the batch's
// own when training). Fused kernel or composed ops, as layer_norm_grad.
NormGrads batch_norm_grad(const Tensor &x, const Tensor &gamma, const Tensor &mean, const Tensor &variance,
                          const Tensor &dy, bool training, float epsilon);

}  // namespace kiln::ops::internal
