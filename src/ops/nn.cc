// conv2d, max_pool2d, avg_pool2d and their backward ops (channels last, TF's VALID/SAME arithmetic).
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "core/count.h"
#include "kernels/conv.h"
#include "kernels/conv_direct.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "ops/conv_internal.h"
#include "ops/elementwise_internal.h"
#include "ops/fused_activation.h"
#include "ops/nn_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

using kernels::Window2d;

const char *padding_name(Padding p) { return p == Padding::kSame ? "SAME" : "VALID"; }

void require_pair(const std::vector<int64_t> &v, const char *op, const char *arg) {
  if (v.size() != 2 || v[0] < 1 || v[1] < 1)
    fail(Code::kInvalidArgument, op, ": ", arg, " is ", list_string(v), "; expected 2 positive values");
}

void require_padding(Padding p, const char *op) {
  if (p != Padding::kValid && p != Padding::kSame)
    fail(Code::kInvalidArgument, op, ": padding is ", static_cast<int>(p), "; expected VALID or SAME");
}

// The stride and dilation the kernel sees. With one output along an axis the stride moves
// nothing, and with a one-tap window the dilation spaces nothing; oneDNN still rejects huge
// values there (INT64_MAX strides), so they are replaced by the smallest equivalent ones.
void normalize_axis_steps(int64_t in, int64_t k, int64_t out, int64_t before, int64_t after, int64_t &s,
                          int64_t &d) {
  if (k == 1) d = 1;
  if (out == 1) s = std::max<int64_t>(1, std::min(s, in + before + after - ((k - 1) * d + 1) + 1));
}

// Validates the window arguments and computes the geometry of a window op over x_shape [N, H, W, C].
Window2d window(const char *op, const Shape &x_shape, int64_t kh, int64_t kw, int64_t out_channels,
                const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations, Padding padding) {
  require_pair(strides, op, "strides");
  require_pair(dilations, op, "dilations");
  require_padding(padding, op);
  Window2d g;
  g.n = x_shape[0];
  g.h = x_shape[1];
  g.w = x_shape[2];
  g.c = x_shape[3];
  g.kh = kh;
  g.kw = kw;
  g.o = out_channels;
  g.sh = strides[0];
  g.sw = strides[1];
  g.dh = dilations[0];
  g.dw = dilations[1];
  if (!internal::window_axis(g.h, kh, g.sh, g.dh, padding, g.oh, g.pad_top, g.pad_bottom) ||
      !internal::window_axis(g.w, kw, g.sw, g.dw, padding, g.ow, g.pad_left, g.pad_right))
    fail(Code::kInvalidArgument, op, ": a ", kh, "x", kw, " window with dilations ", list_string(dilations),
         " spans more than ", kMaxElements, " (2^62) cells; expected (size - 1) * dilation + 1 <= 2^62");
  if (g.oh < 1 || g.ow < 1)
    fail(Code::kInvalidArgument, op, ": input of shape ", x_shape.to_string(), " with a ", kh, "x", kw,
         " window, strides ", list_string(strides), ", dilations ", list_string(dilations), " and ",
         padding_name(padding), " padding gives an empty ", g.oh, "x", g.ow,
         " output; expected a window that fits the input");
  // SAME padding as large as a huge dilated window: far beyond what oneDNN's kernels are built
  // for (their run time grows with the padding: a 2^19-cell padding already takes seconds).
  const int64_t kMaxPad = std::numeric_limits<int32_t>::max();
  if (std::max({g.pad_top, g.pad_bottom, g.pad_left, g.pad_right}) > kMaxPad)
    fail(Code::kInvalidArgument, op, ": a ", kh, "x", kw, " window with dilations ", list_string(dilations),
         " and SAME padding over input ", x_shape.to_string(), " needs padding [", g.pad_top, ", ",
         g.pad_bottom, ", ", g.pad_left, ", ", g.pad_right, "]; expected padding <= ", kMaxPad);
  normalize_axis_steps(g.h, kh, g.oh, g.pad_top, g.pad_bottom, g.sh, g.dh);
  normalize_axis_steps(g.w, kw, g.ow, g.pad_left, g.pad_right, g.sw, g.dw);
  return g;
}

void require_nhwc(const Shape &x_shape, const char *op, const char *arg) {
  if (x_shape.rank() != 4)
    fail(Code::kInvalidArgument, op, ": ", arg, " has shape ", x_shape.to_string(),
         "; expected rank 4 [N, H, W, C]");
}

// Geometry of conv2d(x of x_shape, filter of filter_shape), validating both.
Window2d conv_window(const char *op, const Shape &x_shape, const Shape &filter_shape,
                     const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                     Padding padding) {
  require_nhwc(x_shape, op, "x");
  if (filter_shape.rank() != 4 || filter_shape[0] < 1 || filter_shape[1] < 1)
    fail(Code::kInvalidArgument, op, ": filter has shape ", filter_shape.to_string(),
         "; expected rank 4 [KH, KW, C, O] with KH, KW >= 1");
  if (filter_shape[2] != x_shape[3])
    fail(Code::kInvalidArgument, op, ": filter of shape ", filter_shape.to_string(), " takes ",
         filter_shape[2], " input channels but x of shape ", x_shape.to_string(), " has ", x_shape[3],
         "; expected filter dim 2 == x dim 3");
  return window(op, x_shape, filter_shape[0], filter_shape[1], filter_shape[3], strides, dilations, padding);
}

// Geometry of a pooling of x of x_shape, validating the arguments.
Window2d pool_window(const char *op, const Shape &x_shape, const std::vector<int64_t> &ksize,
                     const std::vector<int64_t> &strides, Padding padding) {
  require_nhwc(x_shape, op, "x");
  require_pair(ksize, op, "ksize");
  return window(op, x_shape, ksize[0], ksize[1], x_shape[3], strides, {1, 1}, padding);
}

// Max pooling's routing by argmax as differentiable ops (kernels::max_pool2d_gather and
// _scatter): the gradient of one is the other, so max_pool2d has gradients of every order.
Tensor max_pool2d_scatter(const Window2d &g, const Tensor &x, const Tensor &dy);

Tensor max_pool2d_gather(const Window2d &g, const Tensor &x, const Tensor &src) {
  Tensor dst = Tensor::empty(DType::kFloat32, internal::output_shape(g));
  kernels::max_pool2d_gather(g, x.data<float>(), src.data<float>(), dst.mutable_data<float>());
  if (should_record({&src}))  // linear in src; piecewise constant in x
    record("max_pool2d_gather", {src}, {dst},
           [g, x](const Grads &grads) -> Grads { return {max_pool2d_scatter(g, x, grads[0])}; });
  return dst;
}

Tensor max_pool2d_scatter(const Window2d &g, const Tensor &x, const Tensor &dy) {
  Tensor dx = Tensor::empty(DType::kFloat32, x.shape());
  kernels::max_pool2d_scatter(g, x.data<float>(), dy.data<float>(), dx.mutable_data<float>());
  if (should_record({&dy}))
    record("max_pool2d_scatter", {dy}, {dx},
           [g, x](const Grads &grads) -> Grads { return {max_pool2d_gather(g, x, grads[0])}; });
  return dx;
}

// max_pool2d's backward pass: routes dy to the maxima the forward pass recorded in its
// workspace (oneDNN). Its own gradient with respect to dy gathers at the same maxima.
Tensor max_pool2d_grad(const Window2d &g, const Tensor &x, const Tensor &dy,
                       const std::shared_ptr<Storage> &workspace) {
  const Shape x_shape{g.n, g.h, g.w, g.c};
  internal::require_shape(dy, internal::output_shape(g), "max_pool2d_grad", "dy");
  if (!workspace) return internal::zero_tensor(x_shape);  // the forward pass had nothing to pool
  Tensor dx = Tensor::empty(DType::kFloat32, x_shape);
  kernels::pool2d_backward(kernels::PoolKind::kMax, g, dy.data<float>(), workspace.get(),
                           dx.mutable_data<float>());
  if (should_record({&dy}))
    record("max_pool2d_grad", {dy}, {dx},
           [g, x](const Grads &grads) -> Grads { return {max_pool2d_gather(g, x, grads[0])}; });
  return dx;
}

// The fused conv + relu + max pooling's routing (kernels::max_pool2d_route / _pick) by the
// argmax its forward pass kept: each is the other's adjoint, so the routing is differentiable.
Tensor max_pool2d_pick(const Window2d &g, const std::shared_ptr<Storage> &arg, const Tensor &dz);

Tensor max_pool2d_route(const Window2d &g, const std::shared_ptr<Storage> &arg, const Tensor &dp) {
  internal::require_shape(dp, internal::output_shape(g), "max_pool2d_route", "dp");
  Tensor dz = Tensor::empty(DType::kFloat32, Shape{g.n, g.h, g.w, g.c});
  kernels::max_pool2d_route(g, static_cast<const uint8_t *>(arg->data()), dp.data<float>(),
                            dz.mutable_data<float>());
  if (should_record({&dp}))
    record("max_pool2d_route", {dp}, {dz},
           [g, arg](const Grads &grads) -> Grads { return {max_pool2d_pick(g, arg, grads[0])}; });
  return dz;
}

Tensor max_pool2d_pick(const Window2d &g, const std::shared_ptr<Storage> &arg, const Tensor &dz) {
  internal::require_shape(dz, Shape{g.n, g.h, g.w, g.c}, "max_pool2d_pick", "dz");
  Tensor dp = Tensor::empty(DType::kFloat32, internal::output_shape(g));
  kernels::max_pool2d_pick(g, static_cast<const uint8_t *>(arg->data()), dz.data<float>(),
                           dp.mutable_data<float>());
  if (should_record({&dz}))
    record("max_pool2d_pick", {dz}, {dp},
           [g, arg](const Grads &grads) -> Grads { return {max_pool2d_route(g, arg, grads[0])}; });
  return dp;
}

// The filter gradient of a conv whose output was pooled by conv_bias_relu_max_pool, from the
// pooled cells' gradient dp: the routing by arg writes each batch piece of the filter gradient's
// computation just before that piece runs, into a buffer of its thread's
// (kernels::conv2d_backward_filter's DyWriter), so that the convolution's gradient is never
// whole. The bits of max_pool2d_route then conv2d_backprop_filter; not recorded (the caller takes
// those two when a tape records the gradient).
Tensor routed_filter_grad(const Window2d &g, const Window2d &pool, const std::shared_ptr<Storage> &arg,
                          const Tensor &x, const Shape &filter_shape, const Tensor &dp) {
  internal::require_shape(dp, internal::output_shape(pool), "max_pool2d_route", "dp");
  Tensor dfilter = Tensor::empty(DType::kFloat32, filter_shape);
  const auto *args = static_cast<const uint8_t *>(arg->data());
  const float *pooled = dp.data<float>();
  kernels::conv2d_backward_filter(
      g, x.data<float>(),
      [&pool, args, pooled](int64_t first, int64_t count, float *out) {
        kernels::max_pool2d_route_images(pool, args, pooled, first, count, out);
      },
      dfilter.mutable_data<float>());
  return dfilter;
}

// A convolution of x [N, H, W, C] by filter whose output is pooled by bias_relu_max_pool2d
// (pool: the pooling's geometry) into p, with its args: in batch slices whose convolution output
// (at most kPoolSliceBytes) is still in the caches when the pooling reads it, through one buffer.
void conv_bias_relu_max_pool(const Window2d &g, const Window2d &pool, const float *x, const float *filter,
                             const kernels::FilterSource &filter_source, const float *bias, float *p,
                             uint8_t *arg) {
  if (kernels::direct_conv_fuses_pool(g, pool))  // one input channel: no convolution output at all
    return kernels::direct_conv_bias_relu_max_pool(g, pool, x, filter, bias, p, arg);
  constexpr int64_t kPoolSliceBytes = int64_t{1} << 20;
  const int64_t z_image = g.oh * g.ow * g.o, x_image = g.h * g.w * g.c, p_image = pool.oh * pool.ow * pool.c;
  const int64_t slice = std::clamp<int64_t>(kPoolSliceBytes / (z_image * int64_t{sizeof(float)}), 1, g.n);
  Tensor z = Tensor::empty(DType::kFloat32, Shape{slice, g.oh, g.ow, g.o});
  for (int64_t n0 = 0; n0 < g.n; n0 += slice) {
    Window2d gs = g, ps = pool;
    gs.n = ps.n = std::min(slice, g.n - n0);
    kernels::conv2d_forward(gs, x + n0 * x_image, filter, filter_source, z.mutable_data<float>());
    kernels::bias_relu_max_pool2d(ps, z.data<float>(), bias, p + n0 * p_image,
                                  arg ? arg + n0 * p_image : nullptr);
  }
}

}  // namespace

bool internal::window_axis(int64_t in, int64_t k, int64_t s, int64_t d, Padding p, int64_t &out,
                           int64_t &before, int64_t &after) {
  int64_t span;
  if (!checked_mul(k - 1, d, &span) || !checked_add(span, 1, &span)) return false;
  if (p == Padding::kValid) {
    out = in >= span ? (in - span) / s + 1 : 0;
    before = after = 0;
    return true;
  }
  out = in > 0 ? (in - 1) / s + 1 : 0;
  // out >= 2 implies s < in, so (out - 1) * s <= in and the sum stays below 2^63.
  const int64_t total = std::max<int64_t>((out > 0 ? (out - 1) * s : 0) + span - in, 0);
  before = total / 2;
  after = total - before;
  return true;
}

Window2d internal::window2d(const char *op, const Shape &x_shape, int64_t kh, int64_t kw,
                            int64_t out_channels, const std::vector<int64_t> &strides,
                            const std::vector<int64_t> &dilations, Padding padding) {
  return window(op, x_shape, kh, kw, out_channels, strides, dilations, padding);
}

Shape internal::output_shape(const Window2d &g) { return Shape{g.n, g.oh, g.ow, g.o}; }

Tensor internal::zero_tensor(const Shape &shape) {
  Tensor t = Tensor::empty(DType::kFloat32, shape);
  if (t.num_elements() > 0) std::memset(t.raw_mutable_data(), 0, t.byte_size());
  return t;
}

bool internal::any_empty(std::initializer_list<const Tensor *> ts) {
  for (const Tensor *t : ts)
    if (t->num_elements() == 0) return true;
  return false;
}

void internal::require_shape(const Tensor &t, const Shape &want, const char *op, const char *arg) {
  require_float32(t, op, arg);
  if (t.shape() != want)
    fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected shape ",
         want.to_string());
}

Tensor internal::conv_forward(const internal::ConvFamily &f, const char *op, const Tensor &x,
                              const Tensor &filter, const std::vector<int64_t> &strides,
                              const std::vector<int64_t> &dilations, Padding padding,
                              const internal::ConvEpilogue &epilogue) {
  require_float32(x, op, "x");
  require_float32(filter, op, "filter");
  const Window2d g = f.window(op, x.shape(), filter.shape(), strides, dilations, padding);
  const Tensor &bias = epilogue.bias;
  const DenseActivation act = epilogue.activation;
  const internal::ActivationKernel ak = internal::activation_kernel(act, op);
  if (bias.defined()) {
    require_float32(bias, op, "bias");
    internal::require_shape(bias, Shape{g.o}, op, "bias");
  }
  if (ak.reads_pre)
    fail(Code::kInvalidArgument, op, ": activation ", static_cast<int>(act),
         " reads its input in its gradient; expected one whose gradient reads its output (relu, relu6, "
         "leaky_relu, sigmoid, tanh, elu, selu, exponential or linear)");
  const bool plain = !bias.defined() && act == DenseActivation::kLinear;
  const Shape y_shape = internal::output_shape(g);
  const bool empty = y_shape.num_elements() == 0 || internal::any_empty({&x, &filter});
  // The pooling's geometry when it runs in this op (tiled: see ConvEpilogue), else nullopt.
  std::optional<Window2d> pool;
  if (!epilogue.max_pool.empty()) {
    const std::vector<int64_t> &k = epilogue.max_pool;
    const Window2d pg = pool_window(op, y_shape, k, k, Padding::kValid);
    const bool tiled = act == DenseActivation::kRelu && kernels::max_pool_tiles(pg) && !empty;
    if (!tiled) {
      internal::ConvEpilogue unpooled = epilogue;
      unpooled.max_pool.clear();
      return max_pool2d(conv_forward(f, op, x, filter, strides, dilations, padding, unpooled), k, k,
                        Padding::kValid);
    }
    pool = pg;
  }
  std::shared_ptr<Storage> arg;  // the pooling's argmax per output, for the gradient
  Tensor y;
  if (pool) {
    y = Tensor::empty(DType::kFloat32, internal::output_shape(*pool));
    if (should_record({&x, &filter, &bias})) arg = Storage::allocate(static_cast<size_t>(y.num_elements()));
    conv_bias_relu_max_pool(g, *pool, x.data<float>(), filter.data<float>(),
                            kernels::filter_source(*filter.storage()),
                            bias.defined() ? bias.data<float>() : nullptr, y.mutable_data<float>(),
                            arg ? static_cast<uint8_t *>(arg->data()) : nullptr);
  } else if (empty) {
    if (!plain) {  // sums over nothing: the plain convolution's zeros, then the epilogue as its own ops
      y = conv_forward(f, op, x, filter, strides, dilations, padding);
      if (bias.defined()) y = bias_add(y, bias);
      return internal::activate(y, act, epilogue.alpha);
    }
    y = internal::zero_tensor(y_shape);
  } else {
    y = Tensor::empty(DType::kFloat32, y_shape);
    kernels::conv2d_forward(g, x.data<float>(), filter.data<float>(),
                            kernels::filter_source(*filter.storage()), y.mutable_data<float>());
    // The bias and the activation in one pass over y, in place (oneDNN's own bias argument made
    // its convolution about 10 % slower here, more than the separate pass it saved).
    if (!plain)
      kernels::bias_unary_inplace(
          y.mutable_data<float>(), y.num_elements(), bias.defined() ? bias.data<float>() : nullptr, g.o,
          ak.op ? &*ak.op : nullptr, internal::activation_kernel_alpha(act, epilogue.alpha));
  }
  if (should_record({&x, &filter, &bias})) {
    const bool need_dx = should_record({&x}), need_df = should_record({&filter}),
               need_db = bias.defined() && should_record({&bias});
    const Tensor saved_x = need_df ? x : Tensor();
    const Tensor saved_filter = need_dx ? filter : Tensor();
    const Tensor saved_y = act != DenseActivation::kLinear ? y : Tensor();
    const Shape x_shape = x.shape(), filter_shape = filter.shape();
    const float alpha = epilogue.alpha;
    const int64_t channels = g.o;
    record(op, {x, filter, bias}, {y}, [=, &f](const Grads &grads) -> Grads {
      // As the activation's, bias_add's and the convolution's rules, one after another.
      auto [gz, dbias] = internal::pre_activation_grads(act, alpha, grads[0], saved_y, Tensor(), Tensor(),
                                                        need_db, channels);
      // Pooled: gz is the pooled cells' gradient (relu's mask read where each window's maximum
      // was, which is that maximum's own mask); the argmax routes it to the convolution's output,
      // piece by piece into the filter gradient when that is all there is to compute.
      if (pool && need_df && !need_dx && !should_record({&gz, &saved_x}))
        return {Tensor(), routed_filter_grad(g, *pool, arg, saved_x, filter_shape, gz), dbias};
      if (pool) gz = max_pool2d_route(*pool, arg, gz);
      Tensor dx, dfilter;
      if (need_dx) dx = f.backprop_input(x_shape, saved_filter, gz, strides, dilations, padding);
      if (need_df) dfilter = f.backprop_filter(saved_x, filter_shape, gz, strides, dilations, padding);
      return {dx, dfilter, dbias};
    });
  }
  return y;
}

Tensor internal::conv_backprop_input(const internal::ConvFamily &f, const char *op, const Shape &x_shape,
                                     const Tensor &filter, const Tensor &dy,
                                     const std::vector<int64_t> &strides,
                                     const std::vector<int64_t> &dilations, Padding padding) {
  require_float32(filter, op, "filter");
  const Window2d g = f.window(op, x_shape, filter.shape(), strides, dilations, padding);
  internal::require_shape(dy, internal::output_shape(g), op, "dy");
  Tensor dx = Tensor::empty(DType::kFloat32, x_shape);
  if (internal::any_empty({&filter, &dy, &dx}))
    dx = internal::zero_tensor(x_shape);
  else
    kernels::conv2d_backward_data(g, dy.data<float>(), filter.data<float>(),
                                  kernels::filter_source(*filter.storage()), dx.mutable_data<float>());
  if (should_record({&filter, &dy}))
    record(op, {filter, dy}, {dx}, [=, &f](const Grads &grads) -> Grads {
      return {f.backprop_filter(grads[0], filter.shape(), dy, strides, dilations, padding),
              f.forward(grads[0], filter, strides, dilations, padding)};
    });
  return dx;
}

Tensor internal::conv_backprop_filter(const internal::ConvFamily &f, const char *op, const Tensor &x,
                                      const Shape &filter_shape, const Tensor &dy,
                                      const std::vector<int64_t> &strides,
                                      const std::vector<int64_t> &dilations, Padding padding) {
  require_float32(x, op, "x");
  const Window2d g = f.window(op, x.shape(), filter_shape, strides, dilations, padding);
  internal::require_shape(dy, internal::output_shape(g), op, "dy");
  Tensor dfilter = Tensor::empty(DType::kFloat32, filter_shape);
  if (internal::any_empty({&x, &dy, &dfilter}))
    dfilter = internal::zero_tensor(filter_shape);
  else
    kernels::conv2d_backward_filter(g, x.data<float>(), dy.data<float>(), dfilter.mutable_data<float>());
  if (should_record({&x, &dy}))
    record(op, {x, dy}, {dfilter}, [=, &f](const Grads &grads) -> Grads {
      return {f.backprop_input(x.shape(), grads[0], dy, strides, dilations, padding),
              f.forward(x, grads[0], strides, dilations, padding)};
    });
  return dfilter;
}

// conv2d's family; conv_window validates its [KH, KW, C, O] filter.
const internal::ConvFamily kConv2d{conv_window, conv2d, internal::conv2d_backprop_input,
                                   internal::conv2d_backprop_filter};

Tensor conv2d(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
              const std::vector<int64_t> &dilations, Padding padding) {
  if (internal::all_bfloat16({&x, &filter}))
    return internal::as_bfloat16(
        conv2d(internal::as_float32(x), internal::as_float32(filter), strides, dilations, padding));
  return internal::conv_forward(kConv2d, "conv2d", x, filter, strides, dilations, padding);
}

Tensor conv2d_bias_act(const Tensor &x, const Tensor &filter, const Tensor &bias,
                       const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                       Padding padding, DenseActivation activation, float alpha,
                       const std::vector<int64_t> &max_pool) {
  return internal::conv_forward(kConv2d, "conv2d", x, filter, strides, dilations, padding,
                                internal::ConvEpilogue{bias, activation, alpha, max_pool});
}

Tensor internal::conv2d_backprop_input(const Shape &x_shape, const Tensor &filter, const Tensor &dy,
                                       const std::vector<int64_t> &strides,
                                       const std::vector<int64_t> &dilations, Padding padding) {
  return internal::conv_backprop_input(kConv2d, "conv2d_backprop_input", x_shape, filter, dy, strides,
                                       dilations, padding);
}

Tensor internal::conv2d_backprop_filter(const Tensor &x, const Shape &filter_shape, const Tensor &dy,
                                        const std::vector<int64_t> &strides,
                                        const std::vector<int64_t> &dilations, Padding padding) {
  return internal::conv_backprop_filter(kConv2d, "conv2d_backprop_filter", x, filter_shape, dy, strides,
                                        dilations, padding);
}

Tensor max_pool2d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding) {
  const char *op = "max_pool2d";
  if (internal::all_bfloat16({&x}))
    return internal::as_bfloat16(max_pool2d(internal::as_float32(x), ksize, strides, padding));
  require_float32(x, op, "x");
  const Window2d g = pool_window(op, x.shape(), ksize, strides, padding);
  Tensor y = Tensor::empty(DType::kFloat32, internal::output_shape(g));
  const bool recording = should_record({&x});
  std::shared_ptr<Storage> workspace;
  if (x.num_elements() > 0)
    workspace = kernels::pool2d_forward(kernels::PoolKind::kMax, g, x.data<float>(), y.mutable_data<float>(),
                                        recording);
  // x is kept for the gradient's own gradient (second order), which needs the argmax positions.
  if (recording)
    record(op, {x}, {y}, [g, x, workspace](const Grads &grads) -> Grads {
      return {max_pool2d_grad(g, x, grads[0], workspace)};
    });
  return y;
}

Tensor avg_pool2d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding) {
  const char *op = "avg_pool2d";
  if (internal::all_bfloat16({&x}))
    return internal::as_bfloat16(avg_pool2d(internal::as_float32(x), ksize, strides, padding));
  require_float32(x, op, "x");
  const Window2d g = pool_window(op, x.shape(), ksize, strides, padding);
  Tensor y = Tensor::empty(DType::kFloat32, internal::output_shape(g));
  if (x.num_elements() > 0)
    kernels::pool2d_forward(kernels::PoolKind::kAvg, g, x.data<float>(), y.mutable_data<float>(), false);
  if (should_record({&x})) {
    const Shape x_shape = x.shape();
    record(op, {x}, {y}, [=](const Grads &grads) -> Grads {
      return {internal::avg_pool2d_grad(x_shape, grads[0], ksize, strides, padding)};
    });
  }
  return y;
}

Tensor internal::avg_pool2d_grad(const Shape &x_shape, const Tensor &dy, const std::vector<int64_t> &ksize,
                                 const std::vector<int64_t> &strides, Padding padding) {
  const char *op = "avg_pool2d_grad";
  const Window2d g = pool_window(op, x_shape, ksize, strides, padding);
  internal::require_shape(dy, internal::output_shape(g), op, "dy");
  Tensor dx = Tensor::empty(DType::kFloat32, x_shape);
  if (dx.num_elements() > 0)
    kernels::pool2d_backward(kernels::PoolKind::kAvg, g, dy.data<float>(), nullptr, dx.mutable_data<float>());
  if (should_record({&dy})) {
    // Linear in dy; its adjoint is the pooling itself.
    record(op, {dy}, {dx},
           [=](const Grads &grads) -> Grads { return {avg_pool2d(grads[0], ksize, strides, padding)}; });
  }
  return dx;
}

}  // namespace kiln::ops
