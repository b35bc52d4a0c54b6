// Convolution and pooling entry points, and their options structs.
#include <vector>

#include "capi/handles.h"
#include "capi/options.h"
#include "ops/conv3d.h"
#include "ops/ops.h"

using kiln::capi::new_tensor;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

namespace {

constexpr size_t kConv2dOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_conv2d_options, padding);
constexpr size_t kPool2dOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_pool2d_options, padding);
constexpr size_t kConv3dOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_conv3d_options, padding);
constexpr size_t kPool3dOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_pool3d_options, padding);

kiln_conv2d_options conv2d_defaults() {
  kiln_conv2d_options o{};
  o.struct_size = sizeof o;
  o.strides[0] = o.strides[1] = 1;
  o.dilations[0] = o.dilations[1] = 1;
  o.padding = KILN_PADDING_VALID;
  return o;
}

kiln_pool2d_options pool2d_defaults() {
  kiln_pool2d_options o{};
  o.struct_size = sizeof o;
  o.ksize[0] = o.ksize[1] = 2;
  o.strides[0] = o.strides[1] = 2;
  o.padding = KILN_PADDING_VALID;
  return o;
}

kiln_conv3d_options conv3d_defaults() {
  kiln_conv3d_options o{};
  o.struct_size = sizeof o;
  for (int i = 0; i < 3; ++i) o.strides[i] = o.dilations[i] = 1;
  o.padding = KILN_PADDING_VALID;
  return o;
}

kiln_pool3d_options pool3d_defaults() {
  kiln_pool3d_options o{};
  o.struct_size = sizeof o;
  for (int i = 0; i < 3; ++i) o.ksize[i] = o.strides[i] = 2;
  o.padding = KILN_PADDING_VALID;
  return o;
}

ops::Padding padding_from_c(kiln_padding padding, const char *fn) {
  if (padding != KILN_PADDING_VALID && padding != KILN_PADDING_SAME)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": padding ", static_cast<int>(padding),
               " is not a kiln_padding; expected KILN_PADDING_VALID (0) or KILN_PADDING_SAME (1)");
  return static_cast<ops::Padding>(padding);
}

// The core's form of a conv2d options struct.
struct ConvArgs {
  std::vector<int64_t> strides, dilations;
  ops::Padding padding;
};

ConvArgs conv_args(const kiln_conv2d_options *user, const char *fn) {
  const kiln_conv2d_options o =
      kiln::capi::read_options(user, conv2d_defaults(), kConv2dOptionsV1, fn, "kiln_conv2d_options");
  return {{o.strides[0], o.strides[1]}, {o.dilations[0], o.dilations[1]}, padding_from_c(o.padding, fn)};
}

ConvArgs conv3d_args(const kiln_conv3d_options *user, const char *fn) {
  const kiln_conv3d_options o =
      kiln::capi::read_options(user, conv3d_defaults(), kConv3dOptionsV1, fn, "kiln_conv3d_options");
  return {{o.strides[0], o.strides[1], o.strides[2]},
          {o.dilations[0], o.dilations[1], o.dilations[2]},
          padding_from_c(o.padding, fn)};
}

using PoolOp = kiln::Tensor (*)(const kiln::Tensor &, const std::vector<int64_t> &,
                                const std::vector<int64_t> &, ops::Padding);

kiln_status *pool3d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool3d_options *user, const char *fn,
                    PoolOp pool) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  const kiln::Tensor &t = tensor_of(x, fn, "x");
  const kiln_pool3d_options o =
      kiln::capi::read_options(user, pool3d_defaults(), kPool3dOptionsV1, fn, "kiln_pool3d_options");
  *out = new_tensor(pool(t, {o.ksize[0], o.ksize[1], o.ksize[2]}, {o.strides[0], o.strides[1], o.strides[2]},
                         padding_from_c(o.padding, fn)));
  KILN_CAPI_END
}

kiln_status *pool2d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool2d_options *user, const char *fn,
                    PoolOp pool) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  const kiln::Tensor &t = tensor_of(x, fn, "x");
  const kiln_pool2d_options o =
      kiln::capi::read_options(user, pool2d_defaults(), kPool2dOptionsV1, fn, "kiln_pool2d_options");
  *out = new_tensor(
      pool(t, {o.ksize[0], o.ksize[1]}, {o.strides[0], o.strides[1]}, padding_from_c(o.padding, fn)));
  KILN_CAPI_END
}

}  // namespace

extern "C" {

kiln_status *kiln_conv2d_options_init(kiln_conv2d_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, conv2d_defaults(), kConv2dOptionsV1,
                           "kiln_conv2d_options_init", "kiln_conv2d_options");
  KILN_CAPI_END
}

kiln_status *kiln_pool2d_options_init(kiln_pool2d_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, pool2d_defaults(), kPool2dOptionsV1,
                           "kiln_pool2d_options_init", "kiln_pool2d_options");
  KILN_CAPI_END
}

kiln_status *kiln_conv3d_options_init(kiln_conv3d_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, conv3d_defaults(), kConv3dOptionsV1,
                           "kiln_conv3d_options_init", "kiln_conv3d_options");
  KILN_CAPI_END
}

kiln_status *kiln_pool3d_options_init(kiln_pool3d_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, pool3d_defaults(), kPool3dOptionsV1,
                           "kiln_pool3d_options_init", "kiln_pool3d_options");
  KILN_CAPI_END
}

kiln_status *kiln_conv2d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                         const kiln_conv2d_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_conv2d";
  require_not_null(out, fn, "out");
  const kiln::Tensor &xt = tensor_of(x, fn, "x");
  const kiln::Tensor &ft = tensor_of(filter, fn, "filter");
  const ConvArgs a = conv_args(options, fn);
  *out = new_tensor(ops::conv2d(xt, ft, a.strides, a.dilations, a.padding));
  KILN_CAPI_END
}

kiln_status *kiln_conv2d_transpose(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                   const int64_t *output_shape, size_t output_rank,
                                   const kiln_conv2d_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_conv2d_transpose";
  require_not_null(out, fn, "out");
  const kiln::Tensor &xt = tensor_of(x, fn, "x");
  const kiln::Tensor &ft = tensor_of(filter, fn, "filter");
  if (output_rank != 4)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": output_rank is ", output_rank,
               "; expected 4 [N, OH, OW, O]");
  require_not_null(output_shape, fn, "output_shape");
  const ConvArgs a = conv_args(options, fn);
  *out = new_tensor(ops::conv2d_transpose(xt, ft, std::vector<int64_t>(output_shape, output_shape + 4),
                                          a.strides, a.dilations, a.padding));
  KILN_CAPI_END
}

kiln_status *kiln_depthwise_conv2d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                   const kiln_conv2d_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_depthwise_conv2d";
  require_not_null(out, fn, "out");
  const kiln::Tensor &xt = tensor_of(x, fn, "x");
  const kiln::Tensor &ft = tensor_of(filter, fn, "filter");
  const ConvArgs a = conv_args(options, fn);
  *out = new_tensor(ops::depthwise_conv2d(xt, ft, a.strides, a.dilations, a.padding));
  KILN_CAPI_END
}

kiln_status *kiln_conv1d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                         const kiln_conv2d_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_conv1d";
  require_not_null(out, fn, "out");
  const kiln::Tensor &xt = tensor_of(x, fn, "x");
  const kiln::Tensor &ft = tensor_of(filter, fn, "filter");
  const ConvArgs a = conv_args(options, fn);
  if (a.strides[1] != 1 || a.dilations[1] != 1)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": strides[1] is ", a.strides[1], " and dilations[1] is ",
               a.dilations[1],
               "; expected 1 (conv1d's width stride and dilation are strides[0] and dilations[0])");
  *out = new_tensor(ops::conv1d(xt, ft, a.strides[0], a.dilations[0], a.padding));
  KILN_CAPI_END
}

kiln_status *kiln_max_pool2d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool2d_options *options) {
  return pool2d(out, x, options, "kiln_max_pool2d", ops::max_pool2d);
}

kiln_status *kiln_avg_pool2d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool2d_options *options) {
  return pool2d(out, x, options, "kiln_avg_pool2d", ops::avg_pool2d);
}

kiln_status *kiln_conv3d(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                         const kiln_conv3d_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_conv3d";
  require_not_null(out, fn, "out");
  const kiln::Tensor &xt = tensor_of(x, fn, "x");
  const kiln::Tensor &ft = tensor_of(filter, fn, "filter");
  const ConvArgs a = conv3d_args(options, fn);
  *out = new_tensor(ops::conv3d(xt, ft, a.strides, a.dilations, a.padding));
  KILN_CAPI_END
}

kiln_status *kiln_conv3d_transpose(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *filter,
                                   const int64_t *output_shape, size_t output_rank,
                                   const kiln_conv3d_options *options) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_conv3d_transpose";
  require_not_null(out, fn, "out");
  const kiln::Tensor &xt = tensor_of(x, fn, "x");
  const kiln::Tensor &ft = tensor_of(filter, fn, "filter");
  if (output_rank != 5)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": output_rank is ", output_rank,
               "; expected 5 [N, OD, OH, OW, O]");
  require_not_null(output_shape, fn, "output_shape");
  const ConvArgs a = conv3d_args(options, fn);
  *out = new_tensor(ops::conv3d_transpose(xt, ft, std::vector<int64_t>(output_shape, output_shape + 5),
                                          a.strides, a.dilations, a.padding));
  KILN_CAPI_END
}

kiln_status *kiln_max_pool3d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool3d_options *options) {
  return pool3d(out, x, options, "kiln_max_pool3d", ops::max_pool3d);
}

kiln_status *kiln_avg_pool3d(kiln_tensor **out, const kiln_tensor *x, const kiln_pool3d_options *options) {
  return pool3d(out, x, options, "kiln_avg_pool3d", ops::avg_pool3d);
}

}  // extern "C"
