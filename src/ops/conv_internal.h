// The convolution family's shared geometry, for the ops beside conv2d (conv_variants.cc).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/shape.h"
#include "kernels/conv.h"
#include "ops/ops.h"

namespace kiln::ops::internal {

// TF's output size and padding along one axis: VALID fits whole windows; SAME gives ceil(in / stride)
// outputs and pads the difference, the odd cell after (bottom/right). Overflow-safe for any
// k, s, d >= 1: the dilated span is checked, and ceil(in / s) is computed without in + s.
// Returns false when the span exceeds kMaxElements.
bool window_axis(int64_t in, int64_t k, int64_t s, int64_t d, Padding p, int64_t &out, int64_t &before,
                 int64_t &after);

// bfloat16 window ops run as TF's oneDNN ones do (float32 accumulation, one rounding): when every
// operand is bfloat16, the op's float32 form on float32 copies, its result cast back; the casts carry
// the gradient. Other dtype mixes reach the float32 form's checks.
inline bool all_bfloat16(std::initializer_list<const Tensor *> ts) {
  for (const Tensor *t : ts)
    if (!t->defined() || t->dtype() != DType::kBFloat16) return false;
  return true;
}
inline Tensor as_float32(const Tensor &t) { return cast(t, DType::kFloat32); }
inline Tensor as_bfloat16(const Tensor &t) { return cast(t, DType::kBFloat16); }

// Validates strides, dilations (2 positive values each) and padding, and computes the geometry of
// a window op with a kh x kw window over x_shape [N, H, W, C] with TF's VALID/SAME arithmetic;
// InvalidArgument naming op when the output would be empty.
kernels::Window2d window2d(const char *op, const Shape &x_shape, int64_t kh, int64_t kw, int64_t out_channels,
                           const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                           Padding padding);

// [N, OH, OW, O] of a window geometry.
Shape output_shape(const kernels::Window2d &g);
// A float32 tensor of zeros; used where some operand is empty so the kernel has nothing to do.
Tensor zero_tensor(const Shape &shape);
bool any_empty(std::initializer_list<const Tensor *> ts);

// A float32 tensor of shape `want`, or InvalidArgument naming op and arg.
void require_shape(const Tensor &t, const Shape &want, const char *op, const char *arg);

// A convolution family (conv2d, depthwise_conv2d): its validated geometry and its three ops,
// which are each other's adjoints. One implementation of each pass below serves every family.
struct ConvFamily {
  kernels::Window2d (*window)(const char *op, const Shape &x_shape, const Shape &filter_shape,
                              const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                              Padding padding);
  Tensor (*forward)(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
                    const std::vector<int64_t> &dilations, Padding padding);
  Tensor (*backprop_input)(const Shape &x_shape, const Tensor &filter, const Tensor &dy,
                           const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                           Padding padding);
  Tensor (*backprop_filter)(const Tensor &x, const Shape &filter_shape, const Tensor &dy,
                            const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                            Padding padding);
};

// What a convolution may do to its output in the same op (a Conv layer's bias and activation):
// add bias [O] and apply an activation whose gradient reads only the output, both in one pass in
// place over the output. The result has the bits of conv, bias_add and the activation op run one
// after another, and so have its gradients.
// max_pool (2 positive values; empty: none) adds a VALID max pooling with that window and equal
// strides after the activation: the op's output is the pooled tensor, with the bits of max_pool2d
// over the unpooled result. With relu and a window that tiles its input (strides equal to the
// window after TF's arithmetic, at most 256 cells) the bias, relu and pooling run in one pass and
// the unpooled output is never kept; otherwise max_pool2d runs as its own op after this one.
struct ConvEpilogue {
  Tensor bias;
  DenseActivation activation = DenseActivation::kLinear;
  float alpha = 0.0f;  // leaky_relu's slope, elu's scale
  std::vector<int64_t> max_pool;
};

// y = the family's convolution of x by filter (zeros when an operand is empty), then the
// epilogue, recorded with its gradient rule: each gradient only where a tape follows that input,
// which skips the costly input gradient of a first layer. The filter gradient reads x; the input
// gradient the filter.
Tensor conv_forward(const ConvFamily &f, const char *op, const Tensor &x, const Tensor &filter,
                    const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                    Padding padding, const ConvEpilogue &epilogue = ConvEpilogue());
// d(forward)/dx applied to dy (a tensor of x_shape); linear in filter and dy, whose adjoints
// (the filter gradient and the forward op) are recorded as its gradient.
Tensor conv_backprop_input(const ConvFamily &f, const char *op, const Shape &x_shape, const Tensor &filter,
                           const Tensor &dy, const std::vector<int64_t> &strides,
                           const std::vector<int64_t> &dilations, Padding padding);
// d(forward)/dfilter applied to dy (a tensor of filter_shape); linear in x and dy likewise.
Tensor conv_backprop_filter(const ConvFamily &f, const char *op, const Tensor &x, const Shape &filter_shape,
                            const Tensor &dy, const std::vector<int64_t> &strides,
                            const std::vector<int64_t> &dilations, Padding padding);

// d(depthwise_conv2d(x, filter))/dx applied to dy: a tensor of x_shape. Differentiable (in filter and dy).
Tensor depthwise_conv2d_backprop_input(const Shape &x_shape, const Tensor &filter, const Tensor &dy,
                                       const std::vector<int64_t> &strides,
                                       const std::vector<int64_t> &dilations, Padding padding);
// d(depthwise_conv2d(x, filter))/dfilter applied to dy: a tensor of filter_shape. Differentiable (in x and
// dy).
Tensor depthwise_conv2d_backprop_filter(const Tensor &x, const Shape &filter_shape, const Tensor &dy,
                                        const std::vector<int64_t> &strides,
                                        const std::vector<int64_t> &dilations, Padding padding);

}  // namespace kiln::ops::internal
