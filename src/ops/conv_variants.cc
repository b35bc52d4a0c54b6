// The convolutions beside conv2d: conv2d_transpose (conv2d's input gradient as an op), depthwise_conv2d
// (oneDNN's grouped convolution, one group per input channel) with its two backward ops, and conv1d
// (conv2d over a height of 1).
#include <cstring>

#include "core/count.h"
#include "kernels/conv.h"
#include "ops/conv_internal.h"
#include "ops/nn_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

using kernels::Window2d;

void require_rank_of(const Shape &s, int rank, const char *op, const char *arg, const char *layout) {
  if (s.rank() != rank)
    fail(Code::kInvalidArgument, op, ": ", arg, " has shape ", s.to_string(), "; expected rank ", rank, " ",
         layout);
}

// Geometry of depthwise_conv2d(x of x_shape, filter of filter_shape [KH, KW, C, M]).
Window2d depthwise_window(const char *op, const Shape &x_shape, const Shape &filter_shape,
                          const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                          Padding padding) {
  require_rank_of(x_shape, 4, op, "x", "[N, H, W, C]");
  if (filter_shape.rank() != 4 || filter_shape[0] < 1 || filter_shape[1] < 1 || filter_shape[3] < 1)
    fail(Code::kInvalidArgument, op, ": filter has shape ", filter_shape.to_string(),
         "; expected rank 4 [KH, KW, C, M] with KH, KW, M >= 1");
  if (filter_shape[2] != x_shape[3])
    fail(Code::kInvalidArgument, op, ": filter of shape ", filter_shape.to_string(), " is for ",
         filter_shape[2], " channels but x of shape ", x_shape.to_string(), " has ", x_shape[3],
         "; expected filter dim 2 == x dim 3");
  int64_t out_channels = 0;
  if (!checked_mul(filter_shape[2], filter_shape[3], &out_channels))
    fail(Code::kInvalidArgument, op, ": filter ", filter_shape.to_string(), " has too many output channels");
  Window2d g = internal::window2d(op, x_shape, filter_shape[0], filter_shape[1], out_channels, strides,
                                  dilations, padding);
  g.groups = x_shape[3];
  return g;
}

// depthwise_conv2d's family: oneDNN's grouped convolution, one group per input channel.
const internal::ConvFamily kDepthwise{depthwise_window, depthwise_conv2d,
                                      internal::depthwise_conv2d_backprop_input,
                                      internal::depthwise_conv2d_backprop_filter};

}  // namespace

Tensor conv2d_transpose(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &output_shape,
                        const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                        Padding padding) {
  const char *op = "conv2d_transpose";
  if (internal::all_bfloat16({&x, &filter}))
    return internal::as_bfloat16(conv2d_transpose(internal::as_float32(x), internal::as_float32(filter),
                                                  output_shape, strides, dilations, padding));
  require_float32(x, op, "x");
  require_float32(filter, op, "filter");
  require_rank_of(x.shape(), 4, op, "x", "[N, H, W, C]");
  require_rank_of(filter.shape(), 4, op, "filter", "[KH, KW, O, C]");
  const Shape &xs = x.shape(), &fs = filter.shape();
  if (output_shape.size() != 4)
    fail(Code::kInvalidArgument, op, ": output_shape ", list_string(output_shape),
         " has the wrong rank; expected 4 values [N, OH, OW, O]");
  for (int64_t d : output_shape)
    if (d < 0)
      fail(Code::kInvalidArgument, op, ": output_shape ", list_string(output_shape), " has a negative dim");
  const Shape out(output_shape, op);
  if (fs[3] != xs[3])
    fail(Code::kInvalidArgument, op, ": filter of shape ", fs.to_string(), " takes ", fs[3],
         " input channels but x of shape ", xs.to_string(), " has ", xs[3],
         "; expected filter dim 3 == x dim 3");
  if (out[3] != fs[2] || out[0] != xs[0])
    fail(Code::kInvalidArgument, op, ": output_shape ", out.to_string(), " for x ", xs.to_string(),
         " and filter ", fs.to_string(), "; expected batch ", xs[0], " and ", fs[2],
         " channels (filter dim 2)");
  if (fs[0] < 1 || fs[1] < 1)
    fail(Code::kInvalidArgument, op, ": filter has shape ", fs.to_string(), "; expected KH, KW >= 1");
  // The forward convolution this op is the adjoint of must map output_shape onto x's shape.
  const Window2d g = internal::window2d(op, out, fs[0], fs[1], fs[3], strides, dilations, padding);
  if (g.oh != xs[1] || g.ow != xs[2])
    fail(Code::kInvalidArgument, op, ": output_shape ", out.to_string(), " with a ", fs[0], "x", fs[1],
         " filter, strides ", list_string(strides), " and dilations ", list_string(dilations),
         " convolves to ", g.oh, "x", g.ow, ", not x's ", xs[1], "x", xs[2],
         "; expected an output_shape whose ", "convolution gives x's spatial size");
  // Exactly conv2d's input gradient with x as dy, which records the gradient rules.
  return internal::conv2d_backprop_input(out, filter, x, strides, dilations, padding);
}

Tensor depthwise_conv2d(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
                        const std::vector<int64_t> &dilations, Padding padding) {
  if (internal::all_bfloat16({&x, &filter}))
    return internal::as_bfloat16(
        depthwise_conv2d(internal::as_float32(x), internal::as_float32(filter), strides, dilations, padding));
  return internal::conv_forward(kDepthwise, "depthwise_conv2d", x, filter, strides, dilations, padding);
}

Tensor internal::depthwise_conv2d_backprop_input(const Shape &x_shape, const Tensor &filter, const Tensor &dy,
                                                 const std::vector<int64_t> &strides,
                                                 const std::vector<int64_t> &dilations, Padding padding) {
  return internal::conv_backprop_input(kDepthwise, "depthwise_conv2d_backprop_input", x_shape, filter, dy,
                                       strides, dilations, padding);
}

Tensor internal::depthwise_conv2d_backprop_filter(const Tensor &x, const Shape &filter_shape,
                                                  const Tensor &dy, const std::vector<int64_t> &strides,
                                                  const std::vector<int64_t> &dilations, Padding padding) {
  return internal::conv_backprop_filter(kDepthwise, "depthwise_conv2d_backprop_filter", x, filter_shape, dy,
                                        strides, dilations, padding);
}

Tensor conv1d(const Tensor &x, const Tensor &filter, int64_t stride, int64_t dilation, Padding padding) {
  const char *op = "conv1d";
  if (internal::all_bfloat16({&x, &filter}))
    return internal::as_bfloat16(
        conv1d(internal::as_float32(x), internal::as_float32(filter), stride, dilation, padding));
  require_float32(x, op, "x");
  require_float32(filter, op, "filter");
  require_rank_of(x.shape(), 3, op, "x", "[N, W, C]");
  require_rank_of(filter.shape(), 3, op, "filter", "[KW, C, O]");
  const Shape &xs = x.shape(), &fs = filter.shape();
  if (fs[1] != xs[2])
    fail(Code::kInvalidArgument, op, ": filter of shape ", fs.to_string(), " takes ", fs[1],
         " input channels but x of shape ", xs.to_string(), " has ", xs[2],
         "; expected filter dim 1 == x dim 2");
  if (stride < 1 || dilation < 1)
    fail(Code::kInvalidArgument, op, ": stride ", stride, " and dilation ", dilation,
         "; expected values >= 1");
  if (fs[0] < 1)
    fail(Code::kInvalidArgument, op, ": filter has shape ", fs.to_string(), "; expected KW >= 1");
  const Window2d g = internal::window2d(op, Shape{xs[0], 1, xs[1], xs[2]}, 1, fs[0], fs[2], {1, stride},
                                        {1, dilation}, padding);
  const Tensor y = conv2d(reshape(x, {xs[0], 1, xs[1], xs[2]}), reshape(filter, {1, fs[0], fs[1], fs[2]}),
                          {1, stride}, {1, dilation}, padding);
  return reshape(y, {g.n, g.ow, g.o});
}

}  // namespace kiln::ops
