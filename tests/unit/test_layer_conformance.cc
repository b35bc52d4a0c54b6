// One conformance check run over every built-in layer (Keras's testing/test_case.py run_layer_test
// idea): config round trip through the registry, weight count and shapes after build, output
// shape and dtype, compute_output_shape agrees with the real output, one gradient step changes
// every trainable weight and no non-trainable one, and training vs inference where they differ.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "autodiff/tape.h"
#include "core/error.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln::layers {
namespace {

struct Case {
  std::string class_name;
  Config config;
  std::vector<int64_t> input_shape;  // batch first
  DType input_dtype = DType::kFloat32;
  std::vector<Shape> weight_shapes;  // in variables() order
  int64_t num_trainable;
  bool training_differs = false;                       // training and inference outputs differ
  std::vector<std::vector<int64_t>> more_inputs = {};  // multi-input layers: the inputs after the first
  float lo = 0.5f, hi = 2.0f;                          // the float input's range
};

Config cfg(const std::function<void(Config &)> &fill) {
  Config c;
  fill(c);
  return c;
}

std::vector<Case> cases() {
  return {
      {"Dense",
       cfg([](Config &c) { c.set("units", 4).set("activation", "relu"); }),
       {3, 5},
       DType::kFloat32,
       {Shape({5, 4}), Shape({4})},
       2},
      {"Dense",
       cfg([](Config &c) { c.set("units", 2).set("use_bias", false); }),
       {2, 3, 5},
       DType::kFloat32,
       {Shape({5, 2})},
       1},
      {"EinsumDense",
       cfg([](Config &c) {
         c.set("equation", "abc,cde->abde").set_dims("output_shape", {-1, 2, 3}).set("bias_axes", "de");
       }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({5, 2, 3}), Shape({2, 3})},
       2},
      {"Activation", cfg([](Config &c) { c.set("activation", "gelu"); }), {2, 6}, DType::kFloat32, {}, 0},
      {"Dropout", cfg([](Config &c) { c.set("rate", 0.5); }), {4, 64}, DType::kFloat32, {}, 0, true},
      {"AlphaDropout", cfg([](Config &c) { c.set("rate", 0.3); }), {4, 64}, DType::kFloat32, {}, 0, true},
      {"Flatten", Config(), {2, 3, 4}, DType::kFloat32, {}, 0},
      {"InputLayer",
       cfg([](Config &c) { c.set("shape", std::vector<int64_t>{5}); }),
       {3, 5},
       DType::kFloat32,
       {},
       0},
      {"Reshape",
       cfg([](Config &c) {
         c.set("target_shape", std::vector<int64_t>{3, -1});
       }),
       {2, 12},
       DType::kFloat32,
       {},
       0},
      {"Embedding",
       cfg([](Config &c) { c.set("input_dim", 10).set("output_dim", 3); }),
       {2, 5},
       DType::kInt32,
       {Shape({10, 3})},
       1},
      {"LayerNormalization", Config(), {3, 6}, DType::kFloat32, {Shape({6}), Shape({6})}, 2},
      {"LayerNormalization",
       cfg([](Config &c) {
         c.set("axis", std::vector<int64_t>{-2, -1});
       }),
       {2, 3, 4},
       DType::kFloat32,
       {Shape({3, 4}), Shape({3, 4})},
       2},
      {"BatchNormalization",
       Config(),
       {8, 3},
       DType::kFloat32,
       {Shape({3}), Shape({3}), Shape({3}), Shape({3})},
       2,
       true},
      {"SpectralNormalization",
       cfg([](Config &c) {
         Config dense, inner;
         inner.set("units", 4);
         dense.set("class_name", "Dense").set("config", inner);
         c.set("layer", dense);
       }),
       {2, 3},
       DType::kFloat32,
       {Shape({1, 4}), Shape({3, 4}), Shape({4})},
       2,
       true},
      {"MultiHeadAttention",
       cfg([](Config &c) { c.set("num_heads", 2).set("key_dim", 3); }),
       {2, 3, 4},
       DType::kFloat32,
       {Shape({4, 2, 3}), Shape({2, 3}), Shape({4, 2, 3}), Shape({2, 3}), Shape({4, 2, 3}), Shape({2, 3}),
        Shape({2, 3, 4}), Shape({4})},
       8,
       false,
       {{2, 5, 4}}},
      {"GroupedQueryAttention",
       cfg([](Config &c) {
         c.set("head_dim", 2).set("num_query_heads", 4).set("num_key_value_heads", 2).set("use_gate", true);
       }),
       {2, 3, 4},
       DType::kFloat32,
       {Shape({4, 4, 2}), Shape({4, 2}), Shape({4, 2, 2}), Shape({2, 2}), Shape({4, 4, 2}), Shape({4, 2}),
        Shape({4, 2, 2}), Shape({2, 2}), Shape({4, 2, 4}), Shape({4})},
       10,
       false,
       {{2, 5, 4}}},
      {"Attention",
       cfg([](Config &c) { c.set("use_scale", true).set("score_mode", "concat"); }),
       {2, 3, 4},
       DType::kFloat32,
       {Shape({}), Shape({})},
       2,
       false,
       {{2, 5, 4}}},
      {"Attention", Config(), {2, 3, 4}, DType::kFloat32, {}, 0, false, {{2, 5, 6}, {2, 5, 4}}},
      {"AdditiveAttention", Config(), {2, 3, 4}, DType::kFloat32, {Shape({4})}, 1, false, {{2, 5, 4}}},
      {"Add", Config(), {2, 3, 4}, DType::kFloat32, {}, 0, false, {{2, 1, 4}, {2, 3, 4}}},
      {"Subtract", Config(), {2, 3}, DType::kFloat32, {}, 0, false, {{2, 3}}},
      {"Multiply", Config(), {2, 3, 4}, DType::kFloat32, {}, 0, false, {{2, 4}}},
      {"Average", Config(), {2, 3}, DType::kFloat32, {}, 0, false, {{2, 3}, {2, 3}}},
      {"Maximum", Config(), {2, 3}, DType::kFloat32, {}, 0, false, {{2, 3}}},
      {"Minimum", Config(), {2, 3}, DType::kFloat32, {}, 0, false, {{2, 3}}},
      {"Concatenate",
       cfg([](Config &c) { c.set("axis", 1); }),
       {2, 3, 4},
       DType::kFloat32,
       {},
       0,
       false,
       {{2, 2, 4}}},
      {"Dot",
       cfg([](Config &c) {
         c.set("axes", std::vector<int64_t>{1, 2});
       }),
       {2, 3, 4},
       DType::kFloat32,
       {},
       0,
       false,
       {{2, 5, 3}}},
      {"UnitNormalization", Config(), {2, 5}, DType::kFloat32, {}, 0},
      {"LSTM",
       cfg([](Config &c) { c.set("units", 3); }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({5, 12}), Shape({3, 12}), Shape({12})},
       3},
      {"AdaptiveAveragePooling2D",
       cfg([](Config &c) {
         c.set_dims("output_size", {2, 3});
       }),
       {2, 5, 4, 3},
       DType::kFloat32,
       {},
       0},
      {"AdaptiveMaxPooling1D",
       cfg([](Config &c) { c.set("output_size", 3); }),
       {2, 7, 2},
       DType::kFloat32,
       {},
       0},
      {"ActivityRegularization",
       cfg([](Config &c) { c.set("l1", 0.1).set("l2", 0.2); }),
       {2, 3},
       DType::kFloat32,
       {},
       0},
      {"ConvLSTM2D",
       cfg([](Config &c) {
         c.set("filters", 2)
             .set_dims("kernel_size", {3, 3})
             .set("padding", "same")
             .set("recurrent_dropout", 0.5);
       }),
       {2, 3, 4, 4, 1},
       DType::kFloat32,
       {Shape({3, 3, 1, 8}), Shape({3, 3, 2, 8}), Shape({8})},
       3,
       true},
      {"GRU",
       cfg([](Config &c) { c.set("units", 2).set("dropout", 0.5); }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({5, 6}), Shape({2, 6}), Shape({2, 6})},
       3,
       true},
      {"SimpleRNN",
       cfg([](Config &c) { c.set("units", 2).set("return_sequences", true); }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({5, 2}), Shape({2, 2}), Shape({2})},
       3},
      {"Conv1DTranspose",
       cfg([](Config &c) { c.set("filters", 3).set("kernel_size", 2).set("strides", 2); }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({2, 3, 5}), Shape({3})},
       2},
      {"Conv3D",
       cfg([](Config &c) { c.set("filters", 3).set("kernel_size", 2).set("padding", "same"); }),
       {2, 3, 4, 2, 2},
       DType::kFloat32,
       {Shape({2, 2, 2, 2, 3}), Shape({3})},
       2},
      {"Conv3DTranspose",
       cfg([](Config &c) { c.set("filters", 2).set("kernel_size", 2).set("strides", 2); }),
       {2, 2, 3, 2, 3},
       DType::kFloat32,
       {Shape({2, 2, 2, 2, 3}), Shape({2})},
       2},
      {"MaxPooling3D", cfg([](Config &) {}), {2, 4, 4, 2, 3}, DType::kFloat32, {}, 0},
      {"AveragePooling3D",
       cfg([](Config &c) { c.set("padding", "same"); }),
       {2, 3, 4, 2, 3},
       DType::kFloat32,
       {},
       0},
      {"GlobalMaxPooling3D", cfg([](Config &) {}), {2, 3, 4, 2, 3}, DType::kFloat32, {}, 0},
      {"DepthwiseConv1D",
       cfg([](Config &c) { c.set("kernel_size", 2).set("depth_multiplier", 2).set("padding", "same"); }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({2, 5, 2}), Shape({10})},
       2},
      {"RNN",
       cfg([](Config &c) {
         c.set("cell",
               Config::from_json(R"({"class_name": "LSTMCell", "config": {"units": 3, "dropout": 0.5}})"));
       }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({5, 12}), Shape({3, 12}), Shape({12})},
       3,
       true},
      {"RNN",
       cfg([](Config &c) {
         c.set("return_sequences", true)
             .set("cell", Config::from_json(R"({"class_name": "StackedRNNCells", "config": {"cells": [
               {"class_name": "GRUCell", "config": {"units": 2}},
               {"class_name": "SimpleRNNCell", "config": {"units": 3}}]}})"));
       }),
       {2, 4, 5},
       DType::kFloat32,
       {Shape({5, 6}), Shape({2, 6}), Shape({2, 6}), Shape({2, 3}), Shape({3, 3}), Shape({3})},
       6},
      {"GroupNormalization",
       cfg([](Config &c) { c.set("groups", 2); }),
       {2, 3, 4},
       DType::kFloat32,
       {Shape({4}), Shape({4})},
       2},
      {"Permute",
       cfg([](Config &c) {
         c.set("dims", std::vector<int64_t>{2, 1});
       }),
       {2, 3, 4},
       DType::kFloat32,
       {},
       0},
      {"RepeatVector", cfg([](Config &c) { c.set("n", 3); }), {2, 5}, DType::kFloat32, {}, 0},
      {"Masking", cfg([](Config &c) { c.set("mask_value", 1.0); }), {2, 3, 4}, DType::kFloat32, {}, 0},
      {"Embedding",
       cfg([](Config &c) { c.set("input_dim", 10).set("output_dim", 3).set("mask_zero", true); }),
       {2, 5},
       DType::kInt32,
       {Shape({10, 3})},
       1},
      {"ReLU",
       cfg([](Config &c) { c.set("max_value", 1.5).set("negative_slope", 0.1).set("threshold", 0.2); }),
       {2, 5},
       DType::kFloat32,
       {},
       0,
       false,
       {},
       -2.0f,
       2.0f},
      {"LeakyReLU", Config(), {2, 5}, DType::kFloat32, {}, 0, false, {}, -2.0f, 2.0f},
      {"ELU", Config(), {2, 5}, DType::kFloat32, {}, 0, false, {}, -2.0f, 2.0f},
      {"Softmax", cfg([](Config &c) { c.set("axis", 1); }), {2, 3, 4}, DType::kFloat32, {}, 0},
      {"PReLU",
       cfg([](Config &c) { c.set("shared_axes", std::vector<int64_t>{1}); }),
       {2, 3, 4},
       DType::kFloat32,
       {Shape({1, 4})},
       1,
       false,
       {},
       -2.0f,
       2.0f},
      {"ZeroPadding1D", Config(), {2, 3, 4}, DType::kFloat32, {}, 0},
      {"ZeroPadding2D", Config(), {2, 3, 4, 2}, DType::kFloat32, {}, 0},
      {"ZeroPadding3D", Config(), {1, 2, 3, 2, 2}, DType::kFloat32, {}, 0},
      {"Cropping1D", Config(), {2, 4, 3}, DType::kFloat32, {}, 0},
      {"Cropping2D", cfg([](Config &c) { c.set("cropping", 1); }), {2, 4, 4, 2}, DType::kFloat32, {}, 0},
      {"Cropping3D", Config(), {1, 3, 3, 3, 2}, DType::kFloat32, {}, 0},
      {"UpSampling1D", Config(), {2, 3, 4}, DType::kFloat32, {}, 0},
      {"UpSampling2D", Config(), {2, 3, 4, 2}, DType::kFloat32, {}, 0},
      {"UpSampling3D", Config(), {1, 2, 3, 2, 2}, DType::kFloat32, {}, 0},
      {"GaussianNoise", cfg([](Config &c) { c.set("stddev", 0.1); }), {4, 16}, DType::kFloat32, {}, 0, true},
      {"GaussianDropout", cfg([](Config &c) { c.set("rate", 0.3); }), {4, 16}, DType::kFloat32, {}, 0, true},
      {"SpatialDropout1D",
       cfg([](Config &c) { c.set("rate", 0.5); }),
       {4, 8, 16},
       DType::kFloat32,
       {},
       0,
       true},
      {"SpatialDropout2D",
       cfg([](Config &c) { c.set("rate", 0.5); }),
       {4, 4, 4, 8},
       DType::kFloat32,
       {},
       0,
       true},
      {"SpatialDropout3D",
       cfg([](Config &c) { c.set("rate", 0.5); }),
       {2, 2, 2, 2, 16},
       DType::kFloat32,
       {},
       0,
       true},
      {"Identity", Config(), {2, 3}, DType::kFloat32, {}, 0},
      {"CenterCrop",
       cfg([](Config &c) { c.set("height", 2).set("width", 3); }),
       {2, 4, 5, 1},
       DType::kFloat32,
       {},
       0},
      {"Discretization",
       cfg([](Config &c) {
         c.set("bin_boundaries", std::vector<double>{0.8, 1.2, 1.6}).set("output_mode", "multi_hot");
       }),
       {2, 5},
       DType::kFloat32,
       {},
       0},
      {"IntegerLookup",
       cfg([](Config &c) {
         c.set("vocabulary", std::vector<int64_t>{3, 1, 4, 5})
             .set("output_mode", "count")
             .set("mask_token", 0);
       }),
       {2, 5},
       DType::kInt32,
       {},
       0},
      {"RandomCrop",
       cfg([](Config &c) { c.set("height", 2).set("width", 3); }),
       {2, 4, 5, 1},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomContrast",
       cfg([](Config &c) { c.set("factor", 0.5); }),
       {2, 3, 3, 2},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomBrightness",
       cfg([](Config &c) { c.set("factor", 0.5); }),
       {2, 3, 3, 2},
       DType::kFloat32,
       {},
       0,
       true},
      {"AutoContrast",
       cfg([](Config &c) {
         c.set("value_range", std::vector<double>{0, 4});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0},
      {"Solarization",
       cfg([](Config &c) {
         c.set("addition_factor", std::vector<double>{0.1, 0.1});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomInvert",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{1, 1});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomGrayscale",
       cfg([](Config &c) { c.set("factor", 1.0); }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomPosterization",
       cfg([](Config &c) {
         c.set("factor", 2).set("value_range", std::vector<double>{0, 4});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomColorDegeneration",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{0.5, 1});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomSharpness",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{0, 0.2});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomSaturation",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{0.9, 1});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomHue",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{0.5, 1}).set("value_range", std::vector<double>{0, 2});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomColorJitter",
       cfg([](Config &c) { c.set("brightness_factor", 0.5).set("hue_factor", 0.5); }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomErasing",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{1, 1}).set("scale", std::vector<double>{0.5, 1});
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomGaussianBlur",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{1, 1})
             .set("sigma", std::vector<double>{1, 1});  // a sigma near 0 keeps the image
       }),
       {2, 3, 3, 3},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomShear",
       cfg([](Config &c) {
         c.set("x_factor", std::vector<double>{0.5, 0.5});
       }),
       {2, 4, 4, 1},
       DType::kFloat32,
       {},
       0,
       true},
      {"RandomPerspective",
       cfg([](Config &c) {
         c.set("factor", std::vector<double>{1, 1});
       }),
       {2, 4, 4, 1},
       DType::kFloat32,
       {},
       0,
       true},
      {"Rescaling",
       cfg([](Config &c) { c.set("scale", 0.5).set("offset", 1.0); }),
       {2, 3},
       DType::kFloat32,
       {},
       0},
  };
}

Tensor input_for(const Case &c, unsigned seed) {
  if (c.input_dtype == DType::kInt32) {
    std::vector<int32_t> ids;
    int64_t n = 1;
    for (int64_t d : c.input_shape) n *= d;
    for (int64_t i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 7 + seed) % 10));
    return testing::make_typed<int32_t>(Shape(c.input_shape), ids);
  }
  return testing::random_tensor(Shape(c.input_shape), seed, c.lo, c.hi);
}

std::vector<std::vector<float>> snapshot(const std::vector<VariablePtr> &vars) {
  std::vector<std::vector<float>> out;
  for (const VariablePtr &v : vars) out.push_back(testing::values<float>(v->peek()));
  return out;
}

TEST(LayerConformance, EveryBuiltinLayer) {
  unsigned seed = 1;
  for (const Case &c : cases()) {
    SCOPED_TRACE(c.class_name + " " + c.config.to_json());
    LayerPtr layer = create_layer(c.class_name, c.config);
    std::vector<Tensor> x = {input_for(c, seed++)};
    for (const std::vector<int64_t> &shape : c.more_inputs)
      x.push_back(testing::random_tensor(Shape(shape), seed++, 0.5f, 2.0f));

    // Config round trip: the registry rebuilds an equal layer from get_config.
    const Config config = layer->get_config();
    EXPECT_EQ(create_layer(c.class_name, config)->get_config(), config);
    EXPECT_EQ(deserialize_layer(serialize_layer(*layer))->class_name(), c.class_name);

    // Output, compute_output_shape (batch unknown) and weights after build.
    CallContext infer;
    const std::vector<Tensor> y = (*layer)(x, infer);
    ASSERT_EQ(y.size(), 1u);
    EXPECT_EQ(y[0].dtype(), DType::kFloat32);
    std::vector<PartialShape> in;
    for (const Tensor &t : x) {
      in.push_back(partial_shape_of(t.shape()));
      in.back()[0] = kUnknownDim;
    }
    PartialShape want = partial_shape_of(y[0].shape());
    want[0] = kUnknownDim;
    EXPECT_EQ(layer->compute_output_shape(in), std::vector<PartialShape>{want});
    const std::vector<VariablePtr> vars = layer->variables();
    ASSERT_EQ(vars.size(), c.weight_shapes.size());
    for (size_t i = 0; i < vars.size(); ++i)
      EXPECT_EQ(vars[i]->shape(), c.weight_shapes[i]) << vars[i]->name();
    ASSERT_EQ(static_cast<int64_t>(layer->trainable_variables().size()), c.num_trainable);

    // Training vs inference.
    CallContext train;
    train.training = true;
    if (c.training_differs)
      EXPECT_NE(testing::values<float>((*layer)(x, train)[0]), testing::values<float>(y[0]));
    else
      EXPECT_EQ(testing::values<float>((*layer)(x, train)[0]), testing::values<float>(y[0]));

    // One gradient step changes every trainable weight and no non-trainable one.
    const std::vector<VariablePtr> trainable = layer->trainable_variables();
    if (trainable.empty()) continue;
    autodiff::Tape tape(false, true);
    const Tensor out = (*layer)(x, train)[0];
    const Tensor loss = ops::sum(ops::mul(out, testing::random_tensor(out.shape(), seed++)));
    autodiff::GradientSources sources;
    for (const VariablePtr &v : trainable) sources.push_back(*v);
    const std::vector<Tensor> grads = tape.gradient(loss, sources, autodiff::Unconnected::kNone);
    const auto before_trainable = snapshot(trainable);
    const auto before_frozen = snapshot(layer->non_trainable_variables());
    for (size_t i = 0; i < trainable.size(); ++i) {
      ASSERT_TRUE(grads[i].defined()) << trainable[i]->name() << " got no gradient";
      trainable[i]->assign_sub(ops::mul(grads[i], ops::fill(Shape({}), 0.1)));
    }
    const auto after_trainable = snapshot(trainable);
    for (size_t i = 0; i < trainable.size(); ++i)
      EXPECT_NE(after_trainable[i], before_trainable[i]) << trainable[i]->name() << " did not change";
    EXPECT_EQ(snapshot(layer->non_trainable_variables()), before_frozen);
  }
}

}  // namespace
}  // namespace kiln::layers
