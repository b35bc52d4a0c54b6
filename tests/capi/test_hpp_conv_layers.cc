// kiln.hpp convolution and pooling layers: the typed constructors write Keras's configs, outputs
// and gradients agree with compositions of kiln ops, errors name the layer, and a small CNN
// builds, counts its parameters as Keras does and trains one step.
#include <gtest/gtest.h>

#include <cmath>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

namespace kl = kiln::layers;
using kiln::Dims;
using kiln::Padding;
using kiln::Tensor;
using kiln::testing::expect_code;

Tensor ramp(const Dims &shape, int shift = 0) { return kiln::testing::sawtooth(shape, 11, 0.1f, shift); }

void expect_close(const Tensor &got, const Tensor &want, float tol = 1e-5f) {
  ASSERT_EQ(got.shape(), want.shape());
  const std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(g[i], w[i], tol * (1 + std::fabs(w[i]))) << "element " << i;
}

// Gives every variable distinct values, biases included.
void ramp_weights(const kiln::Layer &l) {
  int shift = 1;
  for (kiln::Variable v : l.variables()) v.assign(ramp(v.value().shape(), shift++));
}

TEST(HppConvLayers, FlattenChannelsFirstMovesTheChannelAxisLast) {
  const Tensor x = kiln::reshape(kiln::range(0, 24, 1), {2, 3, 2, 2});  // (batch, channels, h, w)
  const Tensor y = kiln::layers::Flatten("", "channels_first")(x);
  EXPECT_EQ(y.to_vector<float>(),
            kiln::reshape(kiln::transpose(x, {0, 2, 3, 1}), {2, -1}).to_vector<float>());
  EXPECT_EQ(y.to_vector<float>()[1], 4.0f);  // the second channel of the first position
  EXPECT_EQ(kiln::layers::Flatten()(x).to_vector<float>()[1], 1.0f);
  EXPECT_THROW(kiln::layers::Flatten("", "nchw"), kiln::Error);
}

TEST(HppConvLayers, TypedConstructorsWriteKerasConfigs) {
  kiln::clear_session();
  kiln::Layer conv = kl::Conv2D(16, {3}, "relu");
  kiln::Config c = conv.get_config();
  EXPECT_EQ(conv.class_name(), "Conv2D");
  EXPECT_EQ(conv.name(), "conv2d");
  EXPECT_EQ(c.get_int("filters"), 16);
  EXPECT_EQ(c.get_int_list("kernel_size"), (Dims{3, 3}));
  EXPECT_EQ(c.get_int_list("strides"), (Dims{1, 1}));
  EXPECT_EQ(c.get_string("padding"), "valid");
  EXPECT_EQ(c.get_string("data_format"), "channels_last");
  EXPECT_EQ(c.get_string("activation"), "relu");
  EXPECT_EQ(c.get_config("kernel_initializer").get_string("class_name"), "GlorotUniform");

  kl::DepthwiseConv2DOptions dopt;
  dopt.depth_multiplier = 3;
  dopt.padding = "same";
  dopt.kernel_initializer = "he_normal";
  kiln::Config d = kl::DepthwiseConv2D({3, 1}, dopt).get_config();
  EXPECT_EQ(d.get_int("depth_multiplier"), 3);
  EXPECT_EQ(d.get_int_list("kernel_size"), (Dims{3, 1}));
  EXPECT_EQ(d.get_config("depthwise_initializer").get_string("class_name"), "HeNormal");

  kl::Conv2DTransposeOptions topt;
  topt.strides = {2};
  topt.output_padding = {1, 0};
  kiln::Config t = kl::Conv2DTranspose(4, {3}, topt).get_config();
  EXPECT_EQ(t.get_int_list("output_padding"), (Dims{1, 0}));
  EXPECT_EQ(t.get_int_list("strides"), (Dims{2, 2}));

  kiln::Config p = kl::MaxPooling2D().get_config();
  EXPECT_EQ(p.get_int_list("pool_size"), (Dims{2, 2}));
  EXPECT_EQ(p.get_int_list("strides"), (Dims{2, 2}));  // None: pool_size
  kl::PoolingOptions popt;
  popt.strides = {1};
  popt.padding = "same";
  EXPECT_EQ(kl::AveragePooling2D({3}, popt).get_config().get_int_list("strides"), (Dims{1, 1}));
  kl::GlobalPoolingOptions gopt;
  gopt.keepdims = true;
  EXPECT_TRUE(kl::GlobalAveragePooling2D(gopt).get_config().get_bool("keepdims"));

  // Aliases make the layers themselves.
  EXPECT_EQ(kl::MaxPool2D().class_name(), "MaxPooling2D");
  EXPECT_EQ(kl::AvgPool2D().class_name(), "AveragePooling2D");
  EXPECT_EQ(kl::GlobalAvgPool2D().class_name(), "GlobalAveragePooling2D");
  EXPECT_EQ(kl::GlobalMaxPool1D().class_name(), "GlobalMaxPooling1D");
  EXPECT_EQ(kl::Convolution2D(2, {1}).class_name(), "Conv2D");
  EXPECT_EQ(kl::Convolution1D(2, {1}).class_name(), "Conv1D");
  EXPECT_EQ(kl::Convolution2DTranspose(2, {1}).class_name(), "Conv2DTranspose");
  EXPECT_EQ(kiln::Layer::create("GlobalAvgPool1D").class_name(), "GlobalAveragePooling1D");
  // Round trip through the serialized form.
  EXPECT_EQ(kiln::Layer::deserialize(conv.serialize()).get_config().to_json(), c.to_json());
}

TEST(HppConvLayers, OutputsAgreeWithCompositionsOfOps) {
  kiln::clear_session();
  const Tensor x = ramp({2, 7, 6, 3});
  kl::ConvOptions o;
  o.strides = {2, 1};
  o.padding = "same";
  o.activation = "relu";
  kiln::Layer conv = kl::Conv2D(4, {3, 2}, o);
  conv.build_for({-1, 7, 6, 3});
  ramp_weights(conv);
  auto w = conv.variables();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].value().shape(), (Dims{3, 2, 3, 4}));
  expect_close(conv(x), kiln::relu(kiln::bias_add(
                            kiln::conv2d(x, w[0].value(), {2, 1}, {1, 1}, Padding::same), w[1].value())));
  EXPECT_EQ(conv.compute_output_shape({-1, 7, 6, 3}), (Dims{-1, 4, 6, 4}));

  kl::DepthwiseConv2DOptions dopt;
  dopt.depth_multiplier = 2;
  dopt.use_bias = false;
  kiln::Layer dw = kl::DepthwiseConv2D({2}, dopt);
  dw.build_for({-1, 7, 6, 3});
  ramp_weights(dw);
  expect_close(dw(x), kiln::depthwise_conv2d(x, dw.variables()[0].value()));

  // SeparableConv2D: the depthwise convolution, then the 1x1 pointwise one with the bias.
  kl::SeparableConvOptions sopt;
  sopt.depth_multiplier = 2;
  sopt.strides = {2};
  kiln::Layer sep = kl::SeparableConv2D(4, {2}, sopt);
  sep.build_for({-1, 7, 6, 3});
  ramp_weights(sep);
  auto sw = sep.variables();
  ASSERT_EQ(sw.size(), 3u);
  EXPECT_EQ(sw[1].name(), sep.name() + "/pointwise_kernel");
  EXPECT_EQ(sw[1].value().shape(), (Dims{1, 1, 6, 4}));
  const Tensor depthwise =
      kiln::depthwise_conv2d(x, sw[0].value(), kiln::Conv2dOptions{}.with_strides({2, 2}));
  expect_close(sep(x), kiln::bias_add(kiln::conv2d(depthwise, sw[1].value()), sw[2].value()));
  EXPECT_EQ(sep.compute_output_shape({-1, 7, 6, 3}), (Dims{-1, 3, 3, 4}));
  EXPECT_EQ(kl::SeparableConv1D(2, {3}).get_config().get_int("depth_multiplier"), 1);

  kl::Conv2DTransposeOptions topt;
  topt.strides = {2};
  kiln::Layer up = kl::Conv2DTranspose(2, {3}, topt);
  up.build_for({-1, 7, 6, 3});
  ramp_weights(up);
  auto uw = up.variables();
  EXPECT_EQ(uw[0].value().shape(), (Dims{3, 3, 2, 3}));
  const Tensor want_up = kiln::bias_add(
      kiln::conv2d_transpose(x, uw[0].value(), {2, 15, 13, 2}, kiln::Conv2dOptions{}.with_strides({2, 2})),
      uw[1].value());
  expect_close(up(x), want_up);
  EXPECT_EQ(up.compute_output_shape({-1, 7, 6, 3}), (Dims{-1, 15, 13, 2}));

  // Conv1DTranspose and DepthwiseConv1D are the 2-D layers over a height of 1.
  const Tensor xw = ramp({2, 9, 3});
  kiln::Layer up1 = kl::Conv1DTranspose(2, {3}, topt);
  up1.build_for({-1, 9, 3});
  ramp_weights(up1);
  auto u1 = up1.variables();
  EXPECT_EQ(u1[0].value().shape(), (Dims{3, 2, 3}));
  const Tensor want_up1 = kiln::bias_add(
      kiln::conv2d_transpose(kiln::reshape(xw, {2, 1, 9, 3}), kiln::reshape(u1[0].value(), {1, 3, 2, 3}),
                             {2, 1, 19, 2}, kiln::Conv2dOptions{}.with_strides({1, 2})),
      u1[1].value());
  expect_close(up1(xw), kiln::reshape(want_up1, {2, 19, 2}));
  EXPECT_EQ(kl::Convolution1DTranspose(2, {1}).class_name(), "Conv1DTranspose");
  kl::DepthwiseConv2DOptions d1o;
  d1o.depth_multiplier = 2;
  kiln::Layer dw1 = kl::DepthwiseConv1D({3}, d1o);
  EXPECT_EQ(dw1(xw).shape(), (Dims{2, 7, 6}));
  EXPECT_EQ(dw1.variables()[0].value().shape(), (Dims{3, 3, 2}));

  const Tensor x1 = ramp({2, 9, 3});
  kl::ConvOptions c1;
  c1.padding = "causal";
  c1.dilation_rate = {2};
  kiln::Layer conv1 = kl::Conv1D(2, {3}, c1);
  conv1.build_for({-1, 9, 3});
  ramp_weights(conv1);
  auto w1 = conv1.variables();
  const Tensor padded = kiln::pad(x1, {{0, 0}, {4, 0}, {0, 0}});
  expect_close(conv1(x1),
               kiln::bias_add(kiln::conv1d(padded, w1[0].value(), 1, Padding::valid, 2), w1[1].value()));

  expect_close(kl::MaxPooling2D()(x), kiln::max_pool2d(x, {2, 2}, {2, 2}));
  kl::PoolingOptions popt;
  popt.strides = {2};
  popt.padding = "same";
  expect_close(kl::AveragePooling2D({3}, popt)(x), kiln::avg_pool2d(x, {3, 3}, {2, 2}, Padding::same));
  expect_close(kl::MaxPooling1D({3}, popt)(x1),
               kiln::squeeze(kiln::max_pool2d(kiln::expand_dims(x1, 1), {1, 3}, {1, 2}, Padding::same), {1}));
  expect_close(kl::GlobalAveragePooling2D()(x), kiln::mean(x, {1, 2}));
  expect_close(kl::GlobalMaxPooling2D()(x), kiln::max(x, {1, 2}));
  expect_close(kl::GlobalAveragePooling1D()(x1), kiln::mean(x1, {1}));
}

// Conv3D as the sum over its depth taps of Conv2D over depth slices, Conv3DTranspose with a one-tap
// depth as Conv2DTranspose over each slice, the 3-D poolings as 2-D ones and maxima / means across
// depth, and the gradients of Conv3D as those of that composition.
TEST(HppConvLayers, Layers3DAgreeWithCompositionsOf2DOps) {
  kiln::clear_session();
  const Tensor x = ramp({2, 4, 5, 6, 3});
  auto depth = [](const Tensor &t, int64_t d) {  // [N, H, W, C] of depth d
    const Dims s = t.shape();
    return kiln::reshape(kiln::slice(t, {0, d, 0, 0, 0}, {s[0], 1, s[2], s[3], s[4]}),
                         {s[0], s[2], s[3], s[4]});
  };
  auto tap = [](const Tensor &k, int64_t d) {  // the 2-D filter of depth tap d
    const Dims s = k.shape();
    return kiln::reshape(kiln::slice(k, {d, 0, 0, 0, 0}, {1, s[1], s[2], s[3], s[4]}),
                         {s[1], s[2], s[3], s[4]});
  };
  kl::ConvOptions o;
  o.strides = {1, 2, 1};
  o.padding = "same";
  kiln::Layer conv = kl::Conv3D(2, {2, 3, 2}, o);
  EXPECT_EQ(conv.name(), "conv3d");
  conv.build_for({-1, 4, 5, 6, 3});
  ramp_weights(conv);
  auto w = conv.trainable_variables();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].value().shape(), (Dims{2, 3, 2, 3, 2}));
  EXPECT_EQ(conv.compute_output_shape({-1, 4, 5, 6, 3}), (Dims{-1, 4, 3, 6, 2}));
  // SAME along depth with a 2-tap window: no padding before, one cell after (depth 4 reads zeros).
  auto composed = [&](const Tensor &k, const Tensor &b) {
    std::vector<Tensor> outs;
    for (int64_t d = 0; d < 4; ++d) {
      Tensor acc = kiln::conv2d(depth(x, d), tap(k, 0), {2, 1}, {1, 1}, Padding::same);
      if (d + 1 < 4) acc = acc + kiln::conv2d(depth(x, d + 1), tap(k, 1), {2, 1}, {1, 1}, Padding::same);
      outs.push_back(kiln::bias_add(acc, b));
    }
    return kiln::stack(outs, 1);
  };
  expect_close(conv(x), composed(w[0].value(), w[1].value()), 1e-4f);
  {
    kiln::GradientTape tape;
    const Tensor loss = kiln::sum(kiln::square(conv(x)));
    const auto grads = tape.gradient(loss, w);
    const Tensor k = w[0].value(), b = w[1].value();
    kiln::GradientTape ref;
    ref.watch(k);
    ref.watch(b);
    const auto want = ref.gradient(kiln::sum(kiln::square(composed(k, b))), {k, b});
    expect_close(grads[0], want[0], 1e-4f);
    expect_close(grads[1], want[1], 1e-4f);
  }

  kl::Conv2DTransposeOptions topt;
  topt.strides = {1, 2, 2};
  topt.use_bias = false;
  kiln::Layer up = kl::Convolution3DTranspose(2, {1, 3, 3}, topt);
  EXPECT_EQ(up.class_name(), "Conv3DTranspose");
  const Tensor y = up(x);
  ASSERT_EQ(y.shape(), (Dims{2, 4, 11, 13, 2}));
  const Tensor k = up.variables()[0].value();
  for (int64_t d = 0; d < 4; ++d)
    expect_close(depth(y, d), kiln::conv2d_transpose(depth(x, d), tap(k, 0), {2, 11, 13, 2},
                                                     kiln::Conv2dOptions{}.with_strides({2, 2})));

  // MaxPooling3D(2) and AveragePooling3D((2, 3, 3), strides 1, same) over depth 4.
  const Tensor mp = kl::MaxPooling3D()(x);
  ASSERT_EQ(mp.shape(), (Dims{2, 2, 2, 3, 3}));
  for (int64_t d = 0; d < 2; ++d)
    expect_close(depth(mp, d), kiln::maximum(kiln::max_pool2d(depth(x, 2 * d), {2, 2}, {2, 2}),
                                             kiln::max_pool2d(depth(x, 2 * d + 1), {2, 2}, {2, 2})));
  kl::PoolingOptions popt;
  popt.strides = {1};
  popt.padding = "same";
  const Tensor ap = kl::AvgPool3D({2, 3, 3}, popt)(x);
  ASSERT_EQ(ap.shape(), (Dims{2, 4, 5, 6, 3}));
  auto avg2 = [&](int64_t d) { return kiln::avg_pool2d(depth(x, d), {3, 3}, {1, 1}, Padding::same); };
  expect_close(depth(ap, 1), (avg2(1) + avg2(2)) * 0.5f);
  expect_close(depth(ap, 3), avg2(3));  // the window's second cell is padding: not averaged in
  expect_close(kl::GlobalAveragePooling3D()(x), kiln::mean(x, {1, 2, 3}));
  kl::GlobalPoolingOptions keep;
  keep.keepdims = true;
  expect_close(kl::GlobalMaxPool3D(keep)(x), kiln::max(x, {1, 2, 3}, true));
  // The ops the layers run: kiln::conv3d, conv3d_transpose, max_pool3d and avg_pool3d.
  const kiln::Conv3dOptions co = kiln::Conv3dOptions().with_strides({1, 2, 1}).with_padding(Padding::same);
  expect_close(conv(x), kiln::bias_add(kiln::conv3d(x, w[0].value(), co), w[1].value()), 1e-4f);
  expect_close(y, kiln::conv3d_transpose(x, k, {2, 4, 11, 13, 2}, kiln::Conv3dOptions().with_strides({1, 2, 2})));
  expect_close(mp, kiln::max_pool3d(x));
  expect_close(ap, kiln::avg_pool3d(x, kiln::Pool3dOptions()
                                           .with_ksize({2, 3, 3})
                                           .with_strides({1, 1, 1})
                                           .with_padding(Padding::same)));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "strides and dilations need 3 values",
              [&] { kiln::conv3d(x, k, kiln::Conv3dOptions().with_strides({1, 2})); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "layer 'conv3d' (Conv3D)", [&] { conv(ramp({2, 5, 6, 3})); });
}

TEST(HppConvLayers, GradientsAgreeWithTheOpsGradients) {
  kiln::clear_session();
  const Tensor x = ramp({2, 5, 5, 2});
  kl::ConvOptions o;
  o.activation = "tanh";
  o.padding = "same";
  kiln::Layer conv = kl::Conv2D(3, {3}, o);
  conv.build_for({-1, 5, 5, 2});
  ramp_weights(conv);
  auto vars = conv.trainable_variables();
  kiln::GradientTape tape;
  tape.watch(x);
  const Tensor loss = kiln::sum(kiln::square(conv(x)));
  auto grads = tape.gradient(loss, vars);
  // The same function of plain tensors, differentiated by a second tape.
  const Tensor k = vars[0].value(), b = vars[1].value();
  kiln::GradientTape ref;
  ref.watch(k);
  ref.watch(b);
  const Tensor want = kiln::sum(
      kiln::square(kiln::tanh(kiln::bias_add(kiln::conv2d(x, k, {1, 1}, {1, 1}, Padding::same), b))));
  auto want_grads = ref.gradient(want, {k, b});
  ASSERT_EQ(grads.size(), 2u);
  expect_close(grads[0], want_grads[0], 1e-4f);
  expect_close(grads[1], want_grads[1], 1e-4f);
}

TEST(HppConvLayers, ErrorsNameTheLayer) {
  kiln::clear_session();
  kiln::Layer conv = kl::Conv2D(2, {3});
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "layer 'conv2d' (Conv2D)", [&] { conv(ramp({2, 5, 5})); });
  conv(ramp({1, 5, 5, 3}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "expected the last axis to be 3", [&] {
    conv(ramp({1, 5, 5, 4}));
  });
  kiln::Config cf;
  cf.set("filters", 2).set("kernel_size", 3).set("data_format", "channels_first");
  expect_code(KILN_STATUS_UNIMPLEMENTED, "channels_first", [&] { kiln::Layer::create("Conv2D", cf); });
  kl::ConvOptions bad;
  bad.padding = "full";
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "padding 'full'", [&] { kl::Conv2D(2, {3}, bad); });
}

TEST(HppConvLayers, SmallCnnBuildsCountsAndTrainsOneStep) {
  kiln::clear_session();
  kiln::Sequential model({kl::Conv2D(8, {3}, "relu"), kl::MaxPooling2D(), kl::Conv2D(16, {3}, "relu"),
                          kl::GlobalAveragePooling2D(), kl::Dense(10)});
  model.build_for({-1, 28, 28, 1});
  EXPECT_EQ(model.count_params(), 1418);
  const std::vector<int64_t> params = {80, 0, 1168, 0, 170};
  auto layers = model.layers();
  ASSERT_EQ(layers.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_EQ(layers[i].count_params(), params[i]) << layers[i].name();
  const std::string s = model.summary();
  EXPECT_NE(s.find(" conv2d_1 (Conv2D)           (None, 11, 11, 16)        1168"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 1418 (5.54 KB)"), std::string::npos) << s;

  const Tensor x = ramp({4, 28, 28, 1});
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 7, 3, 0}, {4});
  auto vars = model.trainable_variables();
  ASSERT_EQ(vars.size(), 6u);
  auto loss_of = [&] {
    return kiln::mean(kiln::sparse_softmax_cross_entropy_with_logits(labels, model(x, true)));
  };
  kiln::GradientTape tape;
  const Tensor loss = loss_of();
  auto grads = tape.gradient(loss, vars);
  for (size_t i = 0; i < vars.size(); ++i) {
    ASSERT_TRUE(grads[i].valid()) << vars[i].name();
    vars[i].assign_sub(grads[i] * 0.05f);
  }
  EXPECT_LT(loss_of().to_vector<float>()[0], loss.to_vector<float>()[0]);
}

}  // namespace
