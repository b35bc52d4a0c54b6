// The convolution family's shared geometry, for the ops beside conv2d (conv_variants.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "core/shape.h"
#include "kernels/conv.h"
#include "ops/ops.h"

namespace kiln::ops {

// Validates strides, dilations (2 positive values each) and padding, and computes the geometry of
// a window op with a kh x kw window over x_shape [N, H, W, C] with TF's VALID/SAME arithmetic;
// InvalidArgument naming op when the output would be empty.
kernels::Window2d window2d(const char *op, const Shape &x_shape, int64_t kh, int64_t kw, int64_t out_channels,
                           const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                           Padding padding);

// d(depthwise_conv2d(x, filter))/dx applied to dy: a tensor of x_shape. Differentiable (in filter and dy).
Tensor depthwise_conv2d_backprop_input(const Shape &x_shape, const Tensor &filter, const Tensor &dy,
                                       const std::vector<int64_t> &strides,
                                       const std::vector<int64_t> &dilations, Padding padding);
// d(depthwise_conv2d(x, filter))/dfilter applied to dy: a tensor of filter_shape. Differentiable (in x and
// dy).
Tensor depthwise_conv2d_backprop_filter(const Tensor &x, const Shape &filter_shape, const Tensor &dy,
                                        const std::vector<int64_t> &strides,
                                        const std::vector<int64_t> &dilations, Padding padding);

}  // namespace kiln::ops
