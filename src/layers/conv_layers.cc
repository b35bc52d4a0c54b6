// Convolution and pooling layers, channels last (TF's NHWC): Conv1D/2D/3D, DepthwiseConv1D/2D,
// Conv1D/2D/3DTranspose, SeparableConv1D/2D, MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global
// poolings, each also under its Keras aliases (Convolution2D, MaxPool2D, GlobalAvgPool2D, ...). Weights are
// laid out as TF lays them: kernel [kh, kw, in, filters] (Conv3D [kd, kh, kw, in, filters]),
// Conv2DTranspose kernel [kh, kw, filters, in],
// depthwise_kernel [kh, kw, in, depth_multiplier], SeparableConv2D's pointwise_kernel [1, 1, in *
// depth_multiplier, filters].
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <tuple>

#include "core/error.h"
#include "layers/activations.h"
#include "layers/builtins.h"
#include "layers/conv_util.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/conv3d.h"
#include "ops/fused_activation.h"
#include "ops/ops.h"

namespace kiln::layers {

std::vector<int64_t> required_tuple(ConfigReader &r, const char *key, size_t n) {
  if (!r.has(key)) fail(Code::kInvalidArgument, r.owner(), ": config key '", key, "' is required");
  return tuple_of(r, key, r.get_int_list(key, {}), n, 1);
}

std::string read_padding(ConfigReader &r, bool causal_ok) {
  std::string p = r.get_string("padding", "valid");
  std::transform(p.begin(), p.end(), p.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (p != "valid" && p != "same" && !(causal_ok && p == "causal"))
    fail(Code::kInvalidArgument, r.owner(), ": padding '", p, "' must be 'valid'",
         causal_ok ? ", 'same' or 'causal'" : " or 'same'");
  return p;
}

void read_data_format(ConfigReader &r) {
  if (read_channels_first(r))
    fail(Code::kUnimplemented, r.owner(),
         ": data_format 'channels_first' is not supported; kiln is channels_last");
}

void check_window_span(const std::string &owner, const std::vector<int64_t> &kernel_size,
                       const std::vector<int64_t> &dilation) {
  for (size_t i = 0; i < kernel_size.size(); ++i) {
    int64_t span = 0;
    if (__builtin_mul_overflow(kernel_size[i] - 1, dilation[i], &span) ||
        __builtin_add_overflow(span, int64_t{1}, &span))
      fail(Code::kInvalidArgument, owner, ": kernel_size ", tuple_string(kernel_size), " with dilation_rate ",
           tuple_string(dilation), " spans more than int64 can count");
  }
}

void check_strides_or_dilation(const std::string &owner, const std::vector<int64_t> &strides,
                               const std::vector<int64_t> &dilation) {
  if (*std::max_element(strides.begin(), strides.end()) > 1 &&
      *std::max_element(dilation.begin(), dilation.end()) > 1)
    fail(Code::kInvalidArgument, owner, ": strides ", tuple_string(strides),
         " > 1 together with dilation_rate ", tuple_string(dilation), " > 1 is not supported (as Keras)");
}

void require_float32_layer(const Layer &l) {
  if (l.dtype() != DType::kFloat32 && l.dtype() != DType::kBFloat16)
    fail(Code::kUnimplemented, l.class_name(), ": dtype ", dtype_name(l.dtype()),
         " is not supported; the convolution and pooling layers compute in float32 (bfloat16 through float32)");
}

void check_rank(const Layer &l, const PartialShape &s, size_t spatial) {
  if (s.size() != spatial + 2)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): input has shape ",
         partial_shape_string(s), "; expected rank ", spatial + 2);
}

int64_t window_output_length(const Layer &l, const PartialShape &s, int64_t in, int64_t k, int64_t stride,
                             int64_t dilation, const std::string &padding) {
  if (in < 0) return kUnknownDim;
  if (padding != "valid") return (in + stride - 1) / stride;  // same, causal
  const int64_t span = (k - 1) * dilation + 1;
  if (in < span)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): input shape ",
         partial_shape_string(s), " is too small for a window of ", span, " with 'valid' padding");
  return (in - span) / stride + 1;
}

Tensor convolution(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
                   const std::vector<int64_t> &dilation, ops::Padding padding) {
  switch (strides.size()) {
    case 1:
      return ops::conv1d(x, filter, strides[0], dilation[0], padding);
    case 2:
      return ops::conv2d(x, filter, strides, dilation, padding);
    default:
      return ops::conv3d(x, filter, strides, dilation, padding);
  }
}

namespace {

using ops::Padding;

// Keras's deconv_output_length along one axis.
int64_t transpose_output_length(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                                const std::string &padding, std::optional<int64_t> output_padding) {
  if (in < 0) return kUnknownDim;
  const int64_t span = (k - 1) * dilation + 1;
  if (!output_padding)
    return padding == "valid" ? in * stride + std::max<int64_t>(span - stride, 0) : in * stride;
  const int64_t pad = padding == "same" ? span / 2 : 0;
  return (in - 1) * stride + span - 2 * pad + *output_padding;
}

// ------------------------------------------------------------------ convolutions

enum class ConvKind { kConv, kDepthwise, kTranspose, kSeparable };

// Conv1D and Conv2D (kConv), DepthwiseConv1D/2D, Conv1DTranspose/2DTranspose and SeparableConv1D/2D (a
// depthwise convolution, then a 1x1 convolution to `filters` channels with the bias and activation): one
// class, as their configs, weights and shapes differ only in these places. Rank 1 runs as rank 2 over a
// height of 1.
class ConvLayer final : public Layer {
 public:
  ConvLayer(const char *class_name, int rank, ConvKind kind, const Config &config)
      : ConvLayer(class_name, rank, kind, config, ConfigReader(config, class_name)) {}

 private:
  ConvLayer(const char *class_name, int rank, ConvKind kind, const Config &config, ConfigReader &&r)
      : Layer(class_name, r), rank_(size_t(rank)), kind_(kind) {
    require_float32_layer(*this);
    const bool separable = kind == ConvKind::kSeparable;
    const bool depthwise = kind == ConvKind::kDepthwise || separable;
    kernel_key_ = depthwise ? "depthwise" : "kernel";
    if (depthwise) {
      depth_multiplier_ = r.get_int("depth_multiplier", 1);
      if (depth_multiplier_ < 1)
        fail(Code::kInvalidArgument, class_name, ": depth_multiplier must be positive; got ",
             depth_multiplier_);
    }
    if (kind != ConvKind::kDepthwise) {
      filters_ = r.get_int("filters");
      if (filters_ < 1)
        fail(Code::kInvalidArgument, class_name, ": filters must be positive; got ", filters_);
    }
    kernel_size_ = required_tuple(r, "kernel_size", rank_);
    strides_ = tuple_of(r, "strides", r.get_int_list("strides", {1}), rank_, 1);
    padding_ = read_padding(r, kind == ConvKind::kConv && rank == 1);
    read_data_format(r);
    dilation_ = tuple_of(r, "dilation_rate", r.get_int_list("dilation_rate", {1}), rank_, 1);
    // The dilated window (k - 1) * dilation + 1 must fit in int64 (it sizes paddings and outputs).
    check_window_span(class_name, kernel_size_, dilation_);
    // Keras refuses both for Conv and ConvTranspose (not for the depthwise and separable ones).
    if (kind == ConvKind::kConv || kind == ConvKind::kTranspose)
      check_strides_or_dilation(class_name, strides_, dilation_);
    if (kind == ConvKind::kConv) {
      const int64_t groups = r.get_int("groups", 1);
      if (groups != 1)
        fail(Code::kUnimplemented, class_name, ": groups ", groups, " is not supported yet; expected 1");
    }
    if (kind == ConvKind::kTranspose) {
      if (const auto op = r.get_optional_int_list("output_padding")) {
        output_padding_ = tuple_of(r, "output_padding", *op, rank_, 0);
        for (size_t i = 0; i < rank_; ++i)
          if (output_padding_[i] >= strides_[i])
            fail(Code::kInvalidArgument, class_name, ": output_padding ", tuple_string(output_padding_),
                 " must be smaller than strides ", tuple_string(strides_));
      }
    }
    activation_ = get_activation(r.get_string("activation", "linear"));
    std::tie(fused_, fused_alpha_) = fused_activation(activation_.name);
    if (ops::internal::activation_kernel(fused_, class_name).reads_pre) {  // not fusable into a convolution
      fused_ = ops::DenseActivation::kLinear;
      fused_alpha_ = 0.0f;
    }
    use_bias_ = r.get_bool("use_bias", true);
    kernel_init_ = initializer_or(config, r, (kernel_key_ + "_initializer").c_str(), "glorot_uniform");
    bias_init_ = initializer_or(config, r, "bias_initializer", "zeros");
    kernel_reg_ = regularizer_from_value(config, kernel_key_ + "_regularizer");
    bias_reg_ = regularizer_from_value(config, "bias_regularizer");
    activity_reg_ = regularizer_from_value(config, "activity_regularizer");
    r.accept({"bias_regularizer", "activity_regularizer"});
    r.accept({depthwise ? "depthwise_regularizer" : "kernel_regularizer"});
    reject_constraints(r, {depthwise ? "depthwise_constraint" : "kernel_constraint", "bias_constraint"});
    if (separable) {
      pointwise_init_ = initializer_or(config, r, "pointwise_initializer", "glorot_uniform");
      pointwise_reg_ = regularizer_from_value(config, "pointwise_regularizer");
      r.accept({"pointwise_regularizer"});
      reject_constraints(r, {"pointwise_constraint"});
    }
    r.finish();
    input_spec_.ndim = rank + 2;
  }

  int64_t out_channels(int64_t in) const {
    return kind_ == ConvKind::kDepthwise ? in * depth_multiplier_ : filters_;
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    const int64_t in = known_dim(*this, s, s.size() - 1, "channel dimension (the last)");
    std::vector<int64_t> k = kernel_size_;
    switch (kind_) {
      case ConvKind::kConv:
        k.insert(k.end(), {in, filters_});
        break;
      case ConvKind::kDepthwise:
      case ConvKind::kSeparable:
        k.insert(k.end(), {in, depth_multiplier_});
        break;
      case ConvKind::kTranspose:
        k.insert(k.end(), {filters_, in});
        break;
    }
    const std::string kernel_name = kernel_key_ == "depthwise" ? "depthwise_kernel" : "kernel";
    kernel_ = add_weight(kernel_name, Shape(k), dtype(), *kernel_init_, true, kernel_reg_);
    if (kind_ == ConvKind::kSeparable) {  // [1, (1,) in * depth_multiplier, filters]
      std::vector<int64_t> pk(rank_, 1);
      pk.insert(pk.end(), {in * depth_multiplier_, filters_});
      pointwise_ = add_weight("pointwise_kernel", Shape(pk), dtype(), *pointwise_init_, true, pointwise_reg_);
    }
    if (use_bias_)
      bias_ = add_weight("bias", Shape({out_channels(in)}), dtype(), *bias_init_, true, bias_reg_);
    input_spec_.last_dim = in;
  }

  std::optional<int64_t> output_padding(size_t axis) const {
    if (output_padding_.empty()) return std::nullopt;
    return output_padding_[axis];
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    build(shapes);
    const PartialShape &s = single_input(*this, shapes);
    check_rank(*this, s, rank_);
    if (s.back() >= 0 && s.back() != input_spec_.last_dim)
      bad_input("input shape ", partial_shape_string(s), " has ", s.back(),
                " channels; the layer was built for ", input_spec_.last_dim);
    PartialShape out = {s[0]};
    for (size_t i = 0; i < rank_; ++i) {
      const int64_t in = s[i + 1];
      out.push_back(
          kind_ == ConvKind::kTranspose
              ? transpose_output_length(in, kernel_size_[i], strides_[i], dilation_[i], padding_,
                                        output_padding(i))
              : window_output_length(*this, s, in, kernel_size_[i], strides_[i], dilation_[i], padding_));
    }
    out.push_back(out_channels(input_spec_.last_dim));
    return {out};
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const DType in_dtype = single_input(*this, inputs).dtype();
    const Tensor x = f32_compute(single_input(*this, inputs));
    const Tensor w = f32_compute(kernel_->read_for_op());
    const Padding p = to_padding(padding_);
    if (kind_ != ConvKind::kTranspose)  // the window must fit: an error naming the layer and its input
      for (size_t i = 0; i < rank_; ++i)
        window_output_length(*this, partial_shape_of(x.shape()), x.shape()[int(i) + 1], kernel_size_[i],
                             strides_[i], dilation_[i], padding_);
    Tensor y;
    if (kind_ == ConvKind::kSeparable) {
      y = separable(x, w, f32_compute(pointwise_->read_for_op()), p);
      if (fused_ == ops::DenseActivation::kLinear) y = activation_(y);
      y = bf16_result(y, in_dtype);
      if (activity_reg_) add_loss(activity_loss(*activity_reg_, y));
      return {y};
    }
    if (kind_ == ConvKind::kDepthwise && rank_ == 2) {
      y = ops::depthwise_conv2d(x, w, strides_, dilation_, p);
    } else if (kind_ == ConvKind::kDepthwise) {
      // DepthwiseConv1D as the 2-D one over a height of 1.
      y = ops::squeeze(ops::depthwise_conv2d(ops::expand_dims(x, 1), ops::expand_dims(w, 0), {1, strides_[0]},
                                             {1, dilation_[0]}, p),
                       {1});
    } else if (kind_ == ConvKind::kTranspose) {
      const Shape &xs = x.shape();
      std::vector<int64_t> out = {xs[0]};
      for (size_t i = 0; i < rank_; ++i)
        out.push_back(transpose_output_length(xs[int(i) + 1], kernel_size_[i], strides_[i], dilation_[i],
                                              padding_, output_padding(i)));
      out.push_back(filters_);
      if (rank_ == 3) {
        y = ops::conv3d_transpose(x, w, out, strides_, dilation_, p);
      } else if (rank_ == 2) {
        y = ops::conv2d_transpose(x, w, out, strides_, dilation_, p);
      } else {  // Conv1DTranspose as the 2-D one over a height of 1
        out.insert(out.begin() + 1, 1);
        y = ops::squeeze(ops::conv2d_transpose(ops::expand_dims(x, 1), ops::expand_dims(w, 0), out,
                                               {1, strides_[0]}, {1, dilation_[0]}, p),
                         {1});
      }
    } else if (rank_ != 2) {
      // Causal: pad (k - 1) * dilation steps on the left, so output t sees inputs <= t only.
      const Tensor xc =
          padding_ == "causal" ? ops::pad(x, {0, 0, (kernel_size_[0] - 1) * dilation_[0], 0, 0, 0}) : x;
      y = convolution(xc, w, strides_, dilation_, p);
    } else {
      // conv2d, bias_add and the activation as one op with their bits (fewer passes over y).
      y = ops::conv2d_bias_act(x, w, bias_ ? f32_compute(bias_->read_for_op()) : Tensor(), strides_,
                               dilation_, p, fused_, fused_alpha_);
      if (fused_ == ops::DenseActivation::kLinear) y = activation_(y);
      y = bf16_result(y, in_dtype);
      if (activity_reg_) add_loss(activity_loss(*activity_reg_, y));
      return {y};
    }
    if (bias_) y = ops::bias_add(y, f32_compute(bias_->read_for_op()));
    y = bf16_result(activation_(y), in_dtype);
    if (activity_reg_) add_loss(activity_loss(*activity_reg_, y));
    return {y};
  }

  // Keras's separable_conv: the depthwise convolution (strides, dilation, padding), then the pointwise
  // 1x1 convolution with the bias and the fused activation. Rank 1 runs as rank 2 over a height of 1.
  Tensor separable(const Tensor &x, const Tensor &depthwise, const Tensor &pointwise, Padding p) const {
    const Tensor bias = bias_ ? f32_compute(bias_->read_for_op()) : Tensor();
    if (rank_ == 2) {
      const Tensor d = ops::depthwise_conv2d(x, depthwise, strides_, dilation_, p);
      return ops::conv2d_bias_act(d, pointwise, bias, {1, 1}, {1, 1}, Padding::kValid, fused_, fused_alpha_);
    }
    const Shape &xs = x.shape(), &ks = depthwise.shape(), &ps = pointwise.shape();
    const Tensor d = ops::depthwise_conv2d(ops::reshape(x, {xs[0], 1, xs[1], xs[2]}),
                                           ops::reshape(depthwise, {1, ks[0], ks[1], ks[2]}),
                                           {1, strides_[0]}, {1, dilation_[0]}, p);
    const Tensor y = ops::conv2d_bias_act(d, ops::reshape(pointwise, {1, 1, ps[1], ps[2]}), bias, {1, 1},
                                          {1, 1}, Padding::kValid, fused_, fused_alpha_);
    return ops::reshape(y, {xs[0], y.shape()[2], filters_});
  }

  // A float32 Conv2D with relu fuses with a MaxPooling2D whose strides equal its pool size
  // (ops::conv2d_bias_act's max_pool): the bias, relu and pooling in one pass, and the unpooled
  // output (4x the pooled one) neither written twice nor kept for the gradient.
  bool fuses_with(const Layer &next, const std::vector<Tensor> &inputs) const override;
  std::vector<Tensor> call_fused_impl(const std::vector<Tensor> &inputs, const Layer &next,
                                      const CallContext &ctx) override;

  void add_config(Config &c) const override {
    if (kernel_key_ == "depthwise") c.set("depth_multiplier", depth_multiplier_);
    if (kind_ != ConvKind::kDepthwise) c.set("filters", filters_);
    c.set("kernel_size", kernel_size_).set("strides", strides_).set("padding", padding_);
    c.set("data_format", "channels_last").set("dilation_rate", dilation_);
    if (kind_ == ConvKind::kConv) c.set("groups", 1);
    c.set("activation", activation_.name).set("use_bias", use_bias_);
    const bool separable = kind_ == ConvKind::kSeparable;
    c.set(kernel_key_ + "_initializer", serialize_initializer(*kernel_init_));
    if (separable) c.set("pointwise_initializer", serialize_initializer(*pointwise_init_));
    c.set("bias_initializer", serialize_initializer(*bias_init_));
    set_regularizer(c, (kernel_key_ + "_regularizer").c_str(), kernel_reg_);
    if (separable) set_regularizer(c, "pointwise_regularizer", pointwise_reg_);
    set_regularizer(c, "bias_regularizer", bias_reg_);
    set_regularizer(c, "activity_regularizer", activity_reg_);
    c.set_null(kernel_key_ + "_constraint");
    if (separable) c.set_null("pointwise_constraint");
    c.set_null("bias_constraint");
    if (kind_ == ConvKind::kTranspose) {
      if (output_padding_.empty())
        c.set_null("output_padding");
      else
        c.set("output_padding", output_padding_);
    }
  }

  const size_t rank_;
  const ConvKind kind_;
  std::string kernel_key_;  // "kernel" or "depthwise": the prefix of the weight's config keys
  int64_t filters_ = 0, depth_multiplier_ = 0;
  std::vector<int64_t> kernel_size_, strides_, dilation_, output_padding_;  // output_padding: empty is None
  std::string padding_;
  Activation activation_;
  // The activation conv2d_bias_act applies (plain 2-D convolutions); kLinear when activation_ runs apart.
  ops::DenseActivation fused_ = ops::DenseActivation::kLinear;
  float fused_alpha_ = 0.0f;
  bool use_bias_ = true;
  InitializerPtr kernel_init_, bias_init_, pointwise_init_;
  RegularizerPtr kernel_reg_, bias_reg_, activity_reg_, pointwise_reg_;
  VariablePtr kernel_, bias_, pointwise_;  // pointwise_: SeparableConv's 1x1 kernel
};

// ------------------------------------------------------------------ pooling

// MaxPooling1D/2D and AveragePooling1D/2D; the 1-D forms pool [N, 1, W, C] with a 1 x k window.
class Pooling final : public Layer {
 public:
  Pooling(const char *class_name, int rank, bool max, const Config &config)
      : Pooling(class_name, rank, max, ConfigReader(config, class_name)) {}

  // The pool size when this is a 2-D max pooling whose windows tile its input (strides equal to
  // the pool size, VALID), else null.
  const std::vector<int64_t> *tiling_max_pool() const {
    return max_ && rank_ == 2 && padding_ == "valid" && strides_ == pool_size_ ? &pool_size_ : nullptr;
  }

 private:
  Pooling(const char *class_name, int rank, bool max, ConfigReader &&r)
      : Layer(class_name, r), rank_(size_t(rank)), max_(max) {
    require_float32_layer(*this);
    pool_size_ = tuple_of(r, "pool_size", r.get_int_list("pool_size", {2}), rank_, 1);
    strides_ = tuple_of(r, "strides", r.get_int_list("strides", pool_size_), rank_, 1);  // None: pool_size
    padding_ = read_padding(r, false);
    read_data_format(r);
    r.finish();
    input_spec_.ndim = rank + 2;
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    check_rank(*this, s, rank_);
    PartialShape out = {s[0]};
    for (size_t i = 0; i < rank_; ++i)
      out.push_back(window_output_length(*this, s, s[i + 1], pool_size_[i], strides_[i], 1, padding_));
    out.push_back(s.back());
    return {out};
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const DType in_dtype = single_input(*this, inputs).dtype();
    const Tensor x = f32_compute(single_input(*this, inputs));
    const Padding p = to_padding(padding_);
    for (size_t i = 0; i < rank_; ++i)  // the window must fit: an error naming the layer and its input
      window_output_length(*this, partial_shape_of(x.shape()), x.shape()[int(i) + 1], pool_size_[i],
                           strides_[i], 1, padding_);
    if (rank_ == 3)
      return {bf16_result(
          max_ ? ops::max_pool3d(x, pool_size_, strides_, p) : ops::avg_pool3d(x, pool_size_, strides_, p),
          in_dtype)};
    std::vector<int64_t> k = pool_size_, s = strides_;
    Tensor x4 = x;
    if (rank_ == 1) {
      k.insert(k.begin(), 1);
      s.insert(s.begin(), 1);
      x4 = ops::expand_dims(x, 1);
    }
    Tensor y = max_ ? ops::max_pool2d(x4, k, s, p) : ops::avg_pool2d(x4, k, s, p);
    return {bf16_result(rank_ == 1 ? ops::squeeze(y, {1}) : y, in_dtype)};
  }

  void add_config(Config &c) const override {
    c.set("pool_size", pool_size_)
        .set("padding", padding_)
        .set("strides", strides_)
        .set("data_format", "channels_last");
  }

  const size_t rank_;
  const bool max_;
  std::vector<int64_t> pool_size_, strides_;
  std::string padding_;
};

bool ConvLayer::fuses_with(const Layer &next, const std::vector<Tensor> &inputs) const {
  const auto *pool = dynamic_cast<const Pooling *>(&next);
  return pool && pool->tiling_max_pool() && kind_ == ConvKind::kConv && rank_ == 2 &&
         fused_ == ops::DenseActivation::kRelu && !activity_reg_ && inputs.size() == 1 &&
         inputs[0].dtype() == DType::kFloat32 && compute_dtype() == DType::kFloat32 &&
         next.compute_dtype() == DType::kFloat32;
}

std::vector<Tensor> ConvLayer::call_fused_impl(const std::vector<Tensor> &inputs, const Layer &next,
                                               const CallContext &) {
  const std::vector<int64_t> &pool = *dynamic_cast<const Pooling &>(next).tiling_max_pool();
  return {ops::conv2d_bias_act(inputs[0], kernel_->read_for_op(), bias_ ? bias_->read_for_op() : Tensor(),
                               strides_, dilation_, to_padding(padding_), fused_, fused_alpha_, pool)};
}

// GlobalAveragePooling1D/2D/3D and GlobalMaxPooling1D/2D/3D: mean or max over the spatial axes.
class GlobalPooling final : public Layer {
 public:
  GlobalPooling(const char *class_name, int rank, bool max, const Config &config)
      : GlobalPooling(class_name, rank, max, ConfigReader(config, class_name)) {}

 private:
  GlobalPooling(const char *class_name, int rank, bool max, ConfigReader &&r)
      : Layer(class_name, r), max_(max) {
    read_data_format(r);
    keepdims_ = r.get_bool("keepdims", false);
    r.finish();
    input_spec_.ndim = rank + 2;
    for (int64_t a = 1; a <= rank; ++a) axes_.push_back(a);
    set_supports_masking(rank == 1 && !max);  // Keras: GlobalAveragePooling1D takes a mask
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = single_input(*this, inputs);
    // Keras's ops.mean gives float32 for integer (and bool) inputs.
    if (!max_ && !is_floating(x.dtype())) x = ops::cast(x, DType::kFloat32);
    const Tensor *mask = supports_masking() ? input_mask(ctx, 0) : nullptr;
    if (mask) {
      // Keras: the mean over the unmasked steps, sum(where(m, x, 0)) / sum(m), so a NaN or inf
      // at a masked step stays out (a row with no valid step gives 0/0, as in Keras).
      if (mask->rank() != 2)
        bad_input("mask has shape ", mask->shape().to_string(), "; expected [batch, steps] for input ",
                  x.shape().to_string());
      const Tensor m = ops::expand_dims(ops::cast(*mask, DType::kBool), 2);
      const Tensor kept = ops::where(ops::broadcast_to(m, x.shape()), x, ops::zeros_like(x));
      return {ops::truediv(ops::sum(kept, axes_, keepdims_),
                           ops::sum(ops::cast(m, x.dtype()), axes_, keepdims_))};
    }
    return {max_ ? ops::max(x, axes_, keepdims_) : ops::mean(x, axes_, keepdims_)};
  }

  // Keras: the pooled output has no steps left to mask.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &) override {
    return {};
  }

  void add_config(Config &c) const override {
    c.set("data_format", "channels_last").set("keepdims", keepdims_);
  }

  const bool max_;
  bool keepdims_;
  std::vector<int64_t> axes_;
};

// Adaptive pooling of x along `axis` to `out` positions, as Keras 3's (and PyTorch's): position i
// pools the window [floor(i * in / out), ceil((i + 1) * in / out)), whose size is small = ceil(in /
// out) or small + 1. Average: both window sizes run as one VALID average pooling with stride 1 over
// the axis (x seen as [before, in, rest, C]), and each position gathers its window's mean. Max: each
// position gathers its window's rows (a small window repeats its last row) and takes their max, so a
// NaN in a window gives NaN and a window of -inf gives -inf, as PyTorch and reduce_max give.
__extension__ using Wide = __int128;

Tensor adaptive_pool_axis(const Tensor &x, int axis, int64_t out, bool max) {
  const std::vector<int64_t> dims = x.shape().to_vector();
  const int64_t in = dims[size_t(axis)], channels = dims.back();
  if (in == out) return x;
  int64_t before = 1, rest = 1;
  for (int a = 0; a < axis; ++a) before *= dims[size_t(a)];
  for (size_t a = size_t(axis) + 1; a + 1 < dims.size(); ++a) rest *= dims[a];
  const Tensor x4 = ops::reshape(x, {before, in, rest, channels});
  const int64_t small = (in + out - 1) / out, width = max ? std::min(small + 1, in) : 1;
  std::vector<int64_t> picks;  // average: [out] window starts; max: [out, width] rows
  picks.reserve(size_t(out * width));
  bool any_big = false;
  for (int64_t i = 0; i < out; ++i) {
    // floor(i * in / out) and ceil((i + 1) * in / out), exact in 128 bits.
    const int64_t start = static_cast<int64_t>(Wide(i) * in / out);
    const int64_t end = static_cast<int64_t>((Wide(i + 1) * in + out - 1) / out);
    const bool big = end - start > small;
    any_big = any_big || big;
    if (max) {
      for (int64_t k = 0; k < width; ++k) picks.push_back(std::min(start + k, end - 1));
    } else {
      picks.push_back(big ? start + (in - small + 1) : start);  // the big windows follow the small ones
    }
  }
  const Shape idx_shape = max ? Shape({out, width}) : Shape({out});
  const Tensor idx =
      Tensor::from_data(DType::kInt64, idx_shape, picks.data(), picks.size() * sizeof(int64_t));
  Tensor pooled;
  if (max) {
    pooled = ops::max(ops::gather(x4, idx, 1), {2});
  } else {
    const auto pool = [&](int64_t k) { return ops::avg_pool2d(x4, {k, 1}, {1, 1}, Padding::kValid); };
    const Tensor means = any_big ? ops::concat({pool(small), pool(small + 1)}, 1) : pool(small);
    pooled = ops::gather(means, idx, 1);
  }
  std::vector<int64_t> shape = dims;
  shape[size_t(axis)] = out;
  return ops::reshape(pooled, shape);
}

// keras.layers.AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D(output_size,
// data_format=None): each spatial axis pooled to output_size positions (adaptive_pool_axis), one axis
// after the other (a window's mean or max is the mean or max of its rows' means or maxima).
class AdaptivePooling final : public Layer {
 public:
  AdaptivePooling(const char *class_name, int rank, bool max, const Config &config)
      : AdaptivePooling(class_name, rank, max, ConfigReader(config, class_name)) {}

 private:
  AdaptivePooling(const char *class_name, int rank, bool max, ConfigReader &&r)
      : Layer(class_name, r), rank_(size_t(rank)), max_(max) {
    require_float32_layer(*this);
    output_size_ = required_tuple(r, "output_size", rank_);
    channels_first_ = read_channels_first(r);
    r.finish();
    input_spec_.ndim = rank + 2;
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    check_rank(*this, s, rank_);
    PartialShape out = s;
    const size_t first = channels_first_ ? 2 : 1;
    for (size_t i = 0; i < rank_; ++i) out[first + i] = output_size_[i];
    return {out};
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &in = single_input(*this, inputs);
    if (!is_floating(in.dtype())) bad_input("input is ", in.description(), "; expected a floating dtype");
    std::vector<int64_t> to_last{0}, to_first{0, int64_t(rank_) + 1};
    for (int64_t a = 1; a <= int64_t(rank_); ++a) {
      to_last.push_back(a + 1);
      to_first.push_back(a);
    }
    to_last.push_back(1);
    Tensor x = channels_first_ ? ops::transpose(in, to_last) : in;
    if (x.dtype() != DType::kFloat32) x = ops::cast(x, DType::kFloat32);  // the window ops' dtype
    for (int64_t a = 1; a < x.rank() - 1; ++a)
      if (x.shape()[a] == 0)
        bad_input("input has shape ", in.shape().to_string(), "; a spatial axis is empty");
    for (size_t i = 0; i < rank_; ++i) x = adaptive_pool_axis(x, int(i) + 1, output_size_[i], max_);
    x = bf16_result(x, in.dtype());
    return {channels_first_ ? ops::transpose(x, to_first) : x};
  }

  void add_config(Config &c) const override {
    c.set("output_size", output_size_).set("data_format", data_format_name(channels_first_));
  }

  const size_t rank_;
  const bool max_;
  std::vector<int64_t> output_size_;
  bool channels_first_ = false;
};

// Registers a factory under a class name and its Keras aliases; the layers all report the class name.
void add_with_aliases(std::initializer_list<const char *> names, const LayerFactory &factory) {
  for (const char *n : names) add_layer_factory(n, factory);
}

template <typename L, typename... Args>
LayerFactory factory(const char *class_name, Args... args) {
  return [=](const Config &c) -> LayerPtr { return std::make_shared<L>(class_name, args..., c); };
}

}  // namespace

void register_conv_layers() {
  add_with_aliases({"Conv1D", "Convolution1D"}, factory<ConvLayer>("Conv1D", 1, ConvKind::kConv));
  add_with_aliases({"Conv2D", "Convolution2D"}, factory<ConvLayer>("Conv2D", 2, ConvKind::kConv));
  add_with_aliases({"Conv3D", "Convolution3D"}, factory<ConvLayer>("Conv3D", 3, ConvKind::kConv));
  add_with_aliases({"DepthwiseConv1D"}, factory<ConvLayer>("DepthwiseConv1D", 1, ConvKind::kDepthwise));
  add_with_aliases({"DepthwiseConv2D"}, factory<ConvLayer>("DepthwiseConv2D", 2, ConvKind::kDepthwise));
  add_with_aliases({"SeparableConv1D", "SeparableConvolution1D"},
                   factory<ConvLayer>("SeparableConv1D", 1, ConvKind::kSeparable));
  add_with_aliases({"SeparableConv2D", "SeparableConvolution2D"},
                   factory<ConvLayer>("SeparableConv2D", 2, ConvKind::kSeparable));
  add_with_aliases({"Conv1DTranspose", "Convolution1DTranspose"},
                   factory<ConvLayer>("Conv1DTranspose", 1, ConvKind::kTranspose));
  add_with_aliases({"Conv2DTranspose", "Convolution2DTranspose"},
                   factory<ConvLayer>("Conv2DTranspose", 2, ConvKind::kTranspose));
  add_with_aliases({"Conv3DTranspose", "Convolution3DTranspose"},
                   factory<ConvLayer>("Conv3DTranspose", 3, ConvKind::kTranspose));
  add_with_aliases({"MaxPooling1D", "MaxPool1D"}, factory<Pooling>("MaxPooling1D", 1, true));
  add_with_aliases({"MaxPooling2D", "MaxPool2D"}, factory<Pooling>("MaxPooling2D", 2, true));
  add_with_aliases({"AveragePooling1D", "AvgPool1D"}, factory<Pooling>("AveragePooling1D", 1, false));
  add_with_aliases({"AveragePooling2D", "AvgPool2D"}, factory<Pooling>("AveragePooling2D", 2, false));
  add_with_aliases({"MaxPooling3D", "MaxPool3D"}, factory<Pooling>("MaxPooling3D", 3, true));
  add_with_aliases({"AveragePooling3D", "AvgPool3D"}, factory<Pooling>("AveragePooling3D", 3, false));
  add_with_aliases({"GlobalAveragePooling1D", "GlobalAvgPool1D"},
                   factory<GlobalPooling>("GlobalAveragePooling1D", 1, false));
  add_with_aliases({"GlobalAveragePooling2D", "GlobalAvgPool2D"},
                   factory<GlobalPooling>("GlobalAveragePooling2D", 2, false));
  add_with_aliases({"GlobalMaxPooling1D", "GlobalMaxPool1D"},
                   factory<GlobalPooling>("GlobalMaxPooling1D", 1, true));
  add_with_aliases({"GlobalMaxPooling2D", "GlobalMaxPool2D"},
                   factory<GlobalPooling>("GlobalMaxPooling2D", 2, true));
  add_with_aliases({"GlobalAveragePooling3D", "GlobalAvgPool3D"},
                   factory<GlobalPooling>("GlobalAveragePooling3D", 3, false));
  add_with_aliases({"GlobalMaxPooling3D", "GlobalMaxPool3D"},
                   factory<GlobalPooling>("GlobalMaxPooling3D", 3, true));
  for (int rank = 1; rank <= 3; ++rank) {
    static const char *const kAverage[] = {"AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
                                           "AdaptiveAveragePooling3D"};
    static const char *const kMax[] = {"AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
                                       "AdaptiveMaxPooling3D"};
    add_layer_factory(kAverage[rank - 1], factory<AdaptivePooling>(kAverage[rank - 1], rank, false));
    add_layer_factory(kMax[rank - 1], factory<AdaptivePooling>(kMax[rank - 1], rank, true));
  }
}

}  // namespace kiln::layers
