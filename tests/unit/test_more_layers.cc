// The activation layers (ReLU, LeakyReLU, ELU, Softmax, PReLU), the spatial reshaping layers
// (ZeroPadding, Cropping, UpSampling 1D-3D), the noise layers (GaussianNoise, GaussianDropout,
// SpatialDropout), Identity / Rescaling and the preprocessing layers (CategoryEncoding,
// Discretization, CenterCrop) in the C++ core: values against Keras's documented
// examples and written-out loops, channels_first, configs as Keras writes them, gradients and
// errors naming the layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include "autodiff/tape.h"
#include "core/error.h"
#include "layers/adapt.h"
#include "layers/initializers.h"
#include "layers/layer.h"
#include "layers/lookup.h"
#include "ops/image.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln::layers {
namespace {

using testing::expect_error;
using testing::expect_near;
using testing::make;
using testing::random_tensor;
using testing::values;

class MoreLayersTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_session(); }
};

LayerPtr layer(const char *cls, const std::string &json = "{}") {
  return create_layer(cls, Config::from_json(json));
}

Tensor run(const char *cls, const std::string &json, const Tensor &x, bool training = false) {
  LayerPtr l = layer(cls, json);
  CallContext ctx;
  ctx.training = training;
  return (*l)({x}, ctx)[0];
}

Tensor run_multi(const char *cls, const std::string &json, const std::vector<Tensor> &x) {
  return (*layer(cls, json))(x, CallContext())[0];
}

const std::vector<float> kDocInput = {-10, -5, 0, 5, 10};  // Keras's ReLU docstring example

// Values at least 0.05 from the activation layers' kinks (0, 0.5, 2) for the gradient checks.
Tensor away_from_kinks() {
  return make({3, 4}, {-2.7f, -1.3f, -0.4f, 0.1f, 0.3f, 0.8f, 1.2f, 1.7f, 2.4f, 2.9f, -0.9f, 1.05f});
}

// Keras 3's newer activations by name (Activation, Dense's activation), against written-out double
// formulas at values past every kink (+-1, +-0.5) and at +-inf / NaN as Keras's ops give them, with
// finite-difference gradients away from the kinks.
TEST_F(MoreLayersTest, NewerKerasActivationsByName) {
  const std::vector<float> xs = {-30, -3, -1.5f, -1, -0.7f, -0.5f, -0.2f, 0, 0.3f, 0.5f, 0.9f, 1, 2, 30};
  using F = double (*)(double);
  const std::vector<std::pair<const char *, F>> cases = {
      {"celu", [](double v) { return v > 0 ? v : std::expm1(v); }},
      {"hard_shrink", [](double v) { return std::fabs(v) > 0.5 ? v : 0.0; }},
      {"soft_shrink", [](double v) { return v > 0.5    ? v - 0.5
                                            : v < -0.5 ? v + 0.5
                                                       : 0.0; }},
      {"hard_silu", [](double v) { return v * std::min(std::max(v + 3, 0.0), 6.0) / 6; }},
      {"hard_swish", [](double v) { return v * std::min(std::max(v + 3, 0.0), 6.0) / 6; }},
      {"hard_tanh", [](double v) { return std::min(std::max(v, -1.0), 1.0); }},
      {"log_sigmoid", [](double v) { return -std::log1p(std::exp(-v)); }},
      {"sparse_plus", [](double v) { return v <= -1 ? 0.0
                                            : v < 1 ? (v + 1) * (v + 1) / 4
                                                    : v; }},
      {"sparse_sigmoid", [](double v) { return v <= -1  ? 0.0
                                               : v >= 1 ? 1.0
                                                        : (v + 1) / 2; }},
      {"squareplus", [](double v) { return (v + std::sqrt(v * v + 4)) / 2; }},
      {"tanh_shrink", [](double v) { return v - std::tanh(v); }},
  };
  const Tensor x = make({int64_t(xs.size())}, xs);
  for (const auto &[name, f] : cases) {
    std::vector<float> want;
    for (float v : xs) want.push_back(static_cast<float>(f(v)));
    expect_near(run("Activation", std::string(R"({"activation": ")") + name + "\"}", x), want, 2e-6f);
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> special =
        values(run("Activation", std::string(R"({"activation": ")") + name + "\"}",
                   make({3}, {inf, -inf, std::nanf("")})));
    const bool shrink =
        std::string(name).find("shrink") != std::string::npos && std::string(name) != "tanh_shrink";
    for (int i = 0; i < 2; ++i) {  // +-inf as the formula gives them (NaN where it is inf - inf or inf * 0)
      const double w = f(i == 0 ? inf : -inf);
      if (std::isnan(w))
        EXPECT_TRUE(std::isnan(special[size_t(i)])) << name << " at " << (i == 0 ? "inf" : "-inf");
      else
        EXPECT_EQ(special[size_t(i)], static_cast<float>(w)) << name << " at " << (i == 0 ? "inf" : "-inf");
    }
    // NaN: where() picks the else branch (0 for the two shrinks, as Keras's where), NaN elsewhere.
    if (shrink)
      EXPECT_EQ(special[2], 0.0f) << name;
    else
      EXPECT_TRUE(std::isnan(special[2])) << name;
    testing::check_gradients(
        name,
        [&](const std::vector<Tensor> &in) {
          return run("Activation", std::string(R"({"activation": ")") + name + "\"}", in[0]);
        },
        {make({3, 4}, {-2.7f, -1.3f, -0.8f, -0.3f, 0.1f, 0.3f, 0.8f, 1.2f, 1.7f, 2.4f, -0.9f, 0.65f})});
  }
  // glu: the first half of the last axis times the sigmoid of the second.
  const Tensor g = run("Activation", R"({"activation": "glu"})", make({1, 4}, {1, 2, 0, -1}));
  expect_near(g, {0.5f, 2 / (1 + std::exp(1.0f))}, 1e-6f);
  expect_error(
      [&] {
        run("Activation", R"({"activation": "glu"})", make({1, 3}, {1, 2, 3}));
      },
      Code::kInvalidArgument, {"glu", "even size"});
  // TF's gradients at the kinks: celu's maximum and minimum both pass 1 at 0.
  autodiff::Tape tape(false, true);
  const Tensor z = make({1}, {0.0f});
  tape.watch(z);
  const Tensor c = run("Activation", R"({"activation": "celu"})", z);
  tape.stop_recording();
  EXPECT_EQ(values(tape.gradient(c, {z}, autodiff::Unconnected::kZero)[0])[0], 2.0f);
}

// keras.layers.UnitNormalization: x * rsqrt(max(sum(x^2), 1e-24)) over the axes, as Keras 3's
// ops.normalize; its config writes the axis as given (an int or a list).
// keras.layers.GroupNormalization against a written-out loop of Keras 3's formula: groups of
// channels normalized over the group's channels and the other non-batch axes, gamma and beta per
// channel; groups -1 (instance normalization, the config then holds the channel count), another
// axis, and errors.
TEST_F(MoreLayersTest, GroupNormalizationAsKeras) {
  const int64_t B = 2, T = 3, C = 4, G = 2;
  const Tensor x = random_tensor({B, T, C}, 31, -2.0f, 2.0f);
  LayerPtr gn = layer("GroupNormalization", R"({"groups": 2, "epsilon": 0.01})");
  const Tensor y = (*gn)({x}, CallContext())[0];
  ASSERT_EQ(gn->variables().size(), 2u);
  std::vector<float> gamma = {0.5f, 1.5f, -1.0f, 2.0f}, beta = {0.1f, -0.2f, 0.3f, 0.0f};
  gn->variables()[0]->assign(make({C}, gamma));
  gn->variables()[1]->assign(make({C}, beta));
  const std::vector<float> got = values((*gn)({x}, CallContext())[0]);
  EXPECT_EQ(y.shape(), x.shape());
  const std::vector<float> xv = values(x);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) {
      double sum = 0, sq = 0;
      const int64_t n = T * (C / G);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = g * (C / G); c < (g + 1) * (C / G); ++c) sum += xv[size_t((b * T + t) * C + c)];
      const double mean = sum / double(n);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = g * (C / G); c < (g + 1) * (C / G); ++c) {
          const double d = xv[size_t((b * T + t) * C + c)] - mean;
          sq += d * d;
        }
      const double inv = 1 / std::sqrt(sq / double(n) + 0.01);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = g * (C / G); c < (g + 1) * (C / G); ++c) {
          const size_t i = size_t((b * T + t) * C + c);
          EXPECT_NEAR(got[i], (xv[i] - mean) * inv * gamma[size_t(c)] + beta[size_t(c)], 2e-5)
              << b << "," << t << "," << c;
        }
    }
  // groups -1: one channel per group, normalized over the time axis alone.
  LayerPtr inst = layer("GroupNormalization", R"({"groups": -1})");
  const std::vector<float> iy = values((*inst)({x}, CallContext())[0]);
  double s0 = 0;
  for (int64_t t = 0; t < T; ++t) s0 += iy[size_t(t * C)];
  EXPECT_NEAR(s0, 0.0, 1e-5);
  EXPECT_EQ(inst->get_config().get_int("groups"), C);
  // axis 1: the channels are the time axis here.
  LayerPtr first =
      layer("GroupNormalization", R"({"groups": 3, "axis": 1, "center": false, "scale": false})");
  EXPECT_EQ((*first)({x}, CallContext())[0].shape(), x.shape());
  EXPECT_TRUE(first->variables().empty());
  testing::check_gradients("GroupNormalization",
                           [&](const std::vector<Tensor> &in) { return (*gn)({in[0]}, CallContext())[0]; },
                           {random_tensor({2, 3, 4}, 32)});
  expect_error([&] { run("GroupNormalization", R"({"groups": 3})", x); }, Code::kInvalidArgument,
               {"GroupNormalization", "3 groups do not divide the 4 channels"});
  expect_error([&] { layer("GroupNormalization", R"({"groups": 0})"); }, Code::kInvalidArgument,
               {"GroupNormalization", "groups is 0"});
  expect_error([&] { run("GroupNormalization", R"({"groups": 1, "axis": 0})", x); }, Code::kInvalidArgument,
               {"GroupNormalization", "non-batch axis"});
  expect_error([&] { layer("GroupNormalization", R"({"beta_constraint": "non_neg"})"); },
               Code::kUnimplemented, {"beta_constraint"});
}

// keras.layers.SimpleRNN, GRU and LSTM: gradients through time against central differences (the
// inputs', with and without a mask, forwards and backwards), and a masked step that keeps the state.
TEST_F(MoreLayersTest, RecurrentGradientsAndMasks) {
  const Tensor x = random_tensor({2, 4, 3}, 41);
  for (const char *json :
       {R"({"units": 3})", R"({"units": 2, "go_backwards": true, "return_sequences": true})"}) {
    for (const char *cls : {"SimpleRNN", "GRU", "LSTM"}) {
      LayerPtr l = layer(cls, json);
      testing::check_gradients(
          cls, [&](const std::vector<Tensor> &in) { return (*l)({in[0]}, CallContext())[0]; }, {x});
    }
  }
  LayerPtr gru = layer("GRU", R"({"units": 2, "reset_after": false, "return_sequences": true})");
  const Tensor mask = testing::make_bool(Shape({2, 4}), {1, 1, 0, 1, 0, 1, 1, 0});
  const std::vector<Tensor> masks{mask};
  CallContext ctx;
  ctx.mask = &masks;
  testing::check_gradients(
      "GRU masked", [&](const std::vector<Tensor> &in) { return gru->call({in[0]}, ctx).outputs[0]; }, {x});
  // The masked step 2 of row 0 repeats step 1's output; the output mask is the input's.
  const CallResult r = gru->call({x}, ctx);
  const std::vector<float> y = values(r.outputs[0]);
  EXPECT_EQ(y[2 * 2], y[1 * 2]);
  EXPECT_EQ(y[2 * 2 + 1], y[1 * 2 + 1]);
  ASSERT_EQ(r.masks.size(), 1u);
  EXPECT_EQ(values<uint8_t>(r.masks[0]), values<uint8_t>(mask));
  // Bidirectional (the backward outputs flipped back into time order) and TimeDistributed.
  LayerPtr bi = layer("Bidirectional", R"({"layer": {"class_name": "GRU", "config": {"units": 2,
                                           "return_sequences": true}}, "merge_mode": "sum"})");
  testing::check_gradients(
      "Bidirectional", [&](const std::vector<Tensor> &in) { return (*bi)({in[0]}, CallContext())[0]; }, {x});
  LayerPtr td = layer("TimeDistributed", R"({"layer": {"class_name": "Dense", "config": {"units": 2}}})");
  testing::check_gradients("TimeDistributed",
                           [&](const std::vector<Tensor> &in) { return (*td)({in[0]}, CallContext())[0]; },
                           {x});
  // Through the initial states too (h0 and c0 given as inputs); the weights' gradients are checked
  // against torch in the layer golden cases.
  LayerPtr lstm = layer("LSTM", R"({"units": 2})");
  testing::check_gradients("LSTM with initial states",
                           [&](const std::vector<Tensor> &in) { return (*lstm)(in, CallContext())[0]; },
                           {x, random_tensor({2, 2}, 42), random_tensor({2, 2}, 43)});
}

// keras.layers.RNN over a stack of one LSTMCell (the per-step cell calls) gives the LSTM layer's
// outputs and states with the same weights, masked or not, with gradients through time; a masked first
// step outputs zeros whatever the initial state (Keras's backend rnn); dropout masks hold for a sequence.
TEST_F(MoreLayersTest, RnnOfCellsAsTheLayers) {
  const Tensor x = random_tensor({2, 4, 3}, 44);
  const Tensor h0 = random_tensor({2, 2}, 45), c0 = random_tensor({2, 2}, 46);
  LayerPtr rnn = layer("RNN", R"({"return_sequences": true, "return_state": true, "cell": {"class_name":
      "StackedRNNCells", "config": {"cells": [{"class_name": "LSTMCell", "config": {"units": 2}}]}}})");
  LayerPtr lstm = layer("LSTM", R"({"units": 2, "return_sequences": true, "return_state": true})");
  rnn->build({{kUnknownDim, 4, 3}});
  lstm->build({{kUnknownDim, 4, 3}});
  EXPECT_EQ(rnn->state_size(), std::vector<int64_t>{});  // the layer is no cell; its cell has the sizes
  EXPECT_EQ(rnn->layers().at(0)->state_size(), (std::vector<int64_t>{2, 2}));
  const std::vector<VariablePtr> from = rnn->variables(), to = lstm->variables();
  ASSERT_EQ(from.size(), to.size());
  for (size_t i = 0; i < from.size(); ++i) to[i]->assign(from[i]->value());
  const Tensor mask = testing::make_bool(Shape({2, 4}), {0, 1, 0, 1, 1, 1, 1, 0});
  const std::vector<Tensor> masks{mask, Tensor(), Tensor()};
  for (bool masked : {false, true}) {
    CallContext ctx;
    if (masked) ctx.mask = &masks;
    const std::vector<Tensor> a = rnn->call({x, h0, c0}, ctx).outputs,
                              b = lstm->call({x, h0, c0}, ctx).outputs;
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), 3u);
    for (size_t i = 0; i < 3; ++i) expect_near(a[i], values(b[i]), 1e-6f);
    if (masked) {  // row 0's first step is masked: zeros, not h0
      EXPECT_EQ(values(a[0])[0], 0.0f);
      EXPECT_EQ(values(a[0])[1], 0.0f);
    }
  }
  testing::check_gradients("RNN(StackedRNNCells)",
                           [&](const std::vector<Tensor> &in) { return (*rnn)(in, CallContext())[0]; },
                           {x, h0, c0});
  // A linear cell without recurrence over a repeated input: every step's output is equal exactly
  // when the dropout mask holds for the whole sequence.
  const Tensor same = ops::tile(random_tensor({2, 1, 6}, 47), {1, 4, 1});
  for (const char *json :
       {R"({"return_sequences": true, "cell": {"class_name": "SimpleRNNCell", "config": {"units": 5,
           "activation": "linear", "dropout": 0.5, "recurrent_initializer": "zeros"}}})",
        R"({"return_sequences": true, "cell": {"class_name": "StackedRNNCells", "config": {"cells": [
           {"class_name": "SimpleRNNCell", "config": {"units": 5, "activation": "linear", "dropout": 0.5,
           "recurrent_initializer": "zeros"}}]}}})"}) {
    CallContext train;
    train.training = true;
    const std::vector<float> y = values((*layer("RNN", json))({same}, train)[0]);
    for (size_t t = 1; t < 4; ++t)
      for (size_t b = 0; b < 2; ++b)
        for (size_t u = 0; u < 5; ++u) EXPECT_EQ(y[(b * 4 + t) * 5 + u], y[(b * 4) * 5 + u]) << json;
  }
  // The states in the cell's dtype, the outputs in the layer's (Keras's casts).
  LayerPtr wide =
      layer("RNN", R"({"dtype": "float64", "cell": {"class_name": "LSTMCell", "config": {"units": 2}}})");
  EXPECT_EQ((*wide)({x}, CallContext())[0].dtype(), DType::kFloat64);
  LayerPtr narrow =
      layer("RNN", R"({"cell": {"class_name": "GRUCell", "config": {"units": 2, "dtype": "float64"}}})");
  EXPECT_EQ((*narrow)({x}, CallContext())[0].dtype(), DType::kFloat32);
  expect_error([&] { layer("RNN", R"({"cell": {"class_name": "Dense", "config": {"units": 2}}})"); },
               Code::kInvalidArgument, {"RNN", "state_size"});
  expect_error(
      [&] {
        (*layer("LSTMCell", R"({"units": 2})"))({random_tensor({2, 3}, 1)}, CallContext());
      },
      Code::kInvalidArgument, {"LSTMCell", "expected the input, then its 2 states"});
}

// keras.layers.ConvLSTM1D/2D/3D (their values and gradients against torch are golden cases):
// gradients through time and the initial states, a masked step keeps h and c, dropout masks hold for
// a call, the output shapes, and Keras's errors.
TEST_F(MoreLayersTest, ConvLstmAsKeras) {
  const Tensor x = random_tensor({2, 3, 4, 4, 2}, 61);
  LayerPtr l = layer("ConvLSTM2D", R"({"filters": 2, "kernel_size": 3, "padding": "same",
                                       "return_sequences": true, "return_state": true})");
  testing::check_gradients("ConvLSTM2D",
                           [&](const std::vector<Tensor> &in) { return (*l)(in, CallContext())[0]; },
                           {x, random_tensor({2, 4, 4, 2}, 62), random_tensor({2, 4, 4, 2}, 63)});
  // Weights as Keras lays them out, the forget gate's bias one, paths under the cell.
  const std::vector<VariablePtr> w = l->variables();
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0]->shape(), Shape({3, 3, 2, 8}));
  EXPECT_EQ(w[1]->shape(), Shape({3, 3, 2, 8}));
  EXPECT_EQ(values(w[2]->value()), (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(w[0]->name(), l->name() + "/conv_lstm_cell/kernel");
  // A masked step keeps the states and repeats the previous output.
  const Tensor mask = testing::make_bool(Shape({2, 3}), {1, 0, 1, 1, 1, 1});
  const std::vector<Tensor> masks{mask};
  CallContext ctx;
  ctx.mask = &masks;
  const std::vector<Tensor> y = l->call({x}, ctx).outputs;
  ASSERT_EQ(y.size(), 3u);
  const std::vector<float> seq = values(y[0]);
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(seq[32 + i], seq[i]);  // row 0, step 1 = step 0
  // Valid padding with strides shrinks the states; compute_output_shape agrees with the call.
  LayerPtr small = layer("ConvLSTM1D", R"({"filters": 3, "kernel_size": 2, "strides": 2})");
  const Tensor seq1 = random_tensor({2, 5, 7, 2}, 64);
  EXPECT_EQ((*small)({seq1}, CallContext())[0].shape(), Shape({2, 3, 3}));
  EXPECT_EQ(small->compute_output_shape({{kUnknownDim, 5, 7, 2}}),
            (std::vector<PartialShape>{{kUnknownDim, 3, 3}}));
  // Dropout masks hold for the whole sequence: with the recurrence cut off (zero recurrent kernel)
  // and the same input at every step, every step's output is the same.
  LayerPtr drop = layer("ConvLSTM1D", R"({"filters": 2, "kernel_size": 1, "dropout": 0.5,
                                          "recurrent_initializer": "zeros", "return_sequences": true})");
  CallContext train;
  train.training = true;
  const std::vector<float> d =
      values((*drop)({ops::tile(random_tensor({2, 1, 3, 4}, 65), {1, 4, 1, 1})}, train)[0]);
  EXPECT_NE(d, values((*drop)({ops::tile(random_tensor({2, 1, 3, 4}, 65), {1, 4, 1, 1})}, CallContext())[0]));
  // (The cell state still grows step by step, so compare through h's pre-activation sign pattern:
  // an input dropped at step 0 is dropped at every step, so zeros line up.)
  LayerPtr lin = layer("ConvLSTM1D", R"({"filters": 2, "kernel_size": 1, "dropout": 0.5, "use_bias": false,
      "recurrent_initializer": "zeros", "kernel_initializer": "ones", "activation": "linear",
      "recurrent_activation": "linear", "return_sequences": true})");
  const Tensor ones = ops::ones(Shape({1, 3, 2, 1}), DType::kFloat32);
  const std::vector<float> o = values((*lin)({ones}, train)[0]);  // [1, 3, 2, 2]
  for (size_t t = 1; t < 3; ++t)
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(o[t * 4 + i] == 0.0f, o[i] == 0.0f) << t << " " << i;
  expect_error(
      [&] { layer("ConvLSTM2D", R"({"filters": 2, "kernel_size": 3, "data_format": "channels_first"})"); },
      Code::kUnimplemented, {"ConvLSTM2D", "channels_first"});
  expect_error([&] { layer("ConvLSTM2D", R"({"filters": 2, "kernel_size": 3, "stateful": true})"); },
               Code::kUnimplemented, {"ConvLSTM2D", "stateful"});
  expect_error(
      [&] { layer("ConvLSTM2D", R"({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2})"); },
      Code::kInvalidArgument, {"ConvLSTM2D", "dilation_rate"});
  expect_error([&] { layer("ConvLSTM3D", R"({"filters": 0, "kernel_size": 3})"); }, Code::kInvalidArgument,
               {"ConvLSTM3D", "filters must be positive"});
  expect_error([&] { layer("ConvLSTM2D", R"({"filters": 2, "kernel_size": 3, "dtype": "float64"})"); },
               Code::kUnimplemented, {"ConvLSTM2D", "float64"});
  expect_error([&] { (*layer("ConvLSTM2D", R"({"filters": 2, "kernel_size": 3})"))({seq1}, CallContext()); },
               Code::kInvalidArgument, {"ConvLSTM2D", "expected rank 5"});
  expect_error([&] { (*layer("ConvLSTM1D", R"({"filters": 2, "kernel_size": 9})"))({seq1}, CallContext()); },
               Code::kInvalidArgument, {"ConvLSTM1D", "too small for a window of 9"});
  expect_error(
      [&] {
        (*small)({random_tensor({2, 5, 7, 3}, 66)}, CallContext());
      },
      Code::kInvalidArgument, {"ConvLSTM1D", "built for"});
  expect_error(
      [&] {
        (*small)({seq1, random_tensor({2, 4, 3}, 67), random_tensor({2, 3, 3}, 68)}, CallContext());
      },
      Code::kInvalidArgument, {"initial state h", "expected (2, 3, 3)"});
}

// keras.layers.AdaptiveAveragePooling / AdaptiveMaxPooling (values and gradients against torch are
// golden cases): PyTorch's windows by hand, channels first, output shapes, and errors;
// ActivityRegularization's loss.
TEST_F(MoreLayersTest, AdaptivePoolingAndActivityRegularization) {
  // 5 steps to 3: windows [0, 2), [1, 4), [3, 5).
  const Tensor x = make({1, 5, 1}, {1, 2, 3, 4, 6});
  expect_near(run("AdaptiveAveragePooling1D", R"({"output_size": 3})", x), {1.5f, 3, 5}, 1e-7f);
  expect_near(run("AdaptiveMaxPooling1D", R"({"output_size": 3})", x), {2, 4, 6}, 0);
  // Max as reduce_max: a NaN in a window is NaN, a window of -inf is -inf (PyTorch's).
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> special =
      values(run("AdaptiveMaxPooling1D", R"({"output_size": 2})", make({1, 4, 1}, {-inf, -inf, 1, nan})));
  EXPECT_EQ(special[0], -inf);
  EXPECT_TRUE(std::isnan(special[1]));
  // 2 steps to 3 (growing): windows [0, 1), [0, 2), [1, 2).
  expect_near(run("AdaptiveAveragePooling1D", R"({"output_size": 3})", make({1, 2, 1}, {1, 3})), {1, 2, 3},
              0);
  // channels first: [N, C, H, W] 1 x 2 x 2 x 2 to 1 x 1
  expect_near(run("AdaptiveMaxPooling2D", R"({"output_size": 1, "data_format": "channels_first"})",
                  make({1, 2, 2, 2}, {1, 5, 2, 3, -1, -2, -3, -4})),
              {5, -1}, 0);
  LayerPtr l = layer("AdaptiveAveragePooling3D", R"({"output_size": [2, 1, 3]})");
  EXPECT_EQ(l->compute_output_shape({{kUnknownDim, 4, 5, 6, 2}}),
            (std::vector<PartialShape>{{kUnknownDim, 2, 1, 3, 2}}));
  expect_error([&] { layer("AdaptiveAveragePooling2D", "{}"); }, Code::kInvalidArgument,
               {"AdaptiveAveragePooling2D", "output_size"});
  expect_error([&] { layer("AdaptiveMaxPooling2D", R"({"output_size": [1, 2, 3]})"); },
               Code::kInvalidArgument, {"AdaptiveMaxPooling2D", "output_size"});
  expect_error([&] { layer("AdaptiveMaxPooling1D", R"({"output_size": 0})"); }, Code::kInvalidArgument,
               {"AdaptiveMaxPooling1D", "output_size"});
  expect_error([&] { layer("AdaptiveMaxPooling1D", R"({"output_size": 2, "dtype": "float64"})"); },
               Code::kUnimplemented, {"AdaptiveMaxPooling1D", "float64"});
  expect_error(
      [&] {
        run("AdaptiveMaxPooling1D", R"({"output_size": 2})", make({1, 0, 1}, {}));
      },
      Code::kInvalidArgument, {"AdaptiveMaxPooling1D", "empty"});
  expect_error([&] { run("AdaptiveMaxPooling2D", R"({"output_size": 2})", x); }, Code::kInvalidArgument,
               {"AdaptiveMaxPooling2D", "rank 4"});

  // ActivityRegularization: the input, and (0.1 * 10 + 0.01 * 30) / 2 as its loss.
  LayerPtr reg = layer("ActivityRegularization", R"({"l1": 0.1, "l2": 0.01})");
  const Tensor a = make({2, 2}, {1, -2, 3, 4});
  EXPECT_EQ(values((*reg)({a}, CallContext())[0]), values(a));
  const std::vector<Tensor> losses = reg->losses();
  ASSERT_EQ(losses.size(), 1u);
  expect_near(losses[0], {0.65f}, 1e-6f);
  expect_error([&] { layer("ActivityRegularization", R"({"l1": -1})"); }, Code::kInvalidArgument,
               {"ActivityRegularization", "l1 is -1"});
}

// keras.layers.GroupedQueryAttention (values and gradients against torch are golden cases, with
// use_gate and sliding_window, which MultiHeadAttention takes too): one key/value head per query head
// is MultiHeadAttention with the same weights; Keras's config; errors.
TEST_F(MoreLayersTest, GroupedQueryAttentionAsKeras) {
  LayerPtr gqa = layer("GroupedQueryAttention", R"({"head_dim": 3, "num_query_heads": 2,
                                                   "num_key_value_heads": 2, "sliding_window": 2})");
  LayerPtr mha = layer("MultiHeadAttention", R"({"num_heads": 2, "key_dim": 3, "sliding_window": 2})");
  const Tensor q = random_tensor({2, 4, 5}, 71), v = random_tensor({2, 4, 5}, 72);
  gqa->build({{2, 4, 5}, {2, 4, 5}});
  mha->build({{2, 4, 5}, {2, 4, 5}});
  const std::vector<VariablePtr> from = gqa->variables(), to = mha->variables();
  ASSERT_EQ(from.size(), to.size());
  for (size_t i = 0; i < from.size(); ++i) to[i]->assign(from[i]->value());
  expect_near((*gqa)({q, v}, CallContext())[0], values((*mha)({q, v}, CallContext())[0]), 0);
  // An empty batch gives an empty output (the heads reshape spells out every dim).
  EXPECT_EQ(
      (*gqa)({ops::slice(q, {0, 0, 0}, {0, 4, 5}), ops::slice(v, {0, 0, 0}, {0, 4, 5})}, CallContext())[0]
          .shape(),
      Shape({0, 4, 5}));
  EXPECT_EQ(layer("GroupQueryAttention", R"({"head_dim": 1, "num_query_heads": 1, "num_key_value_heads": 1})")
                ->class_name(),
            "GroupedQueryAttention");  // Keras 3's second name for the class
  const Config c = gqa->get_config();
  EXPECT_EQ(c.get_int("sliding_window"), 2);
  EXPECT_FALSE(c.get_bool("use_gate"));
  EXPECT_FALSE(c.has("num_heads"));
  expect_error(
      [&] {
        layer("GroupedQueryAttention", R"({"head_dim": 2, "num_query_heads": 3,
                                                        "num_key_value_heads": 2})");
      },
      Code::kInvalidArgument, {"GroupedQueryAttention", "divisible"});
  expect_error([&] { layer("MultiHeadAttention", R"({"num_heads": 2, "key_dim": 2, "sliding_window": 0})"); },
               Code::kInvalidArgument, {"MultiHeadAttention", "sliding_window"});
  expect_error(
      [&] {
        (*layer("GroupedQueryAttention",
                R"({"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1})"))(
            {random_tensor({2, 2, 3, 4}, 73), random_tensor({2, 2, 3, 4}, 74)}, CallContext());
      },
      Code::kInvalidArgument, {"GroupedQueryAttention", "expected rank 3"});
}

TEST_F(MoreLayersTest, UnitNormalizationAsKeras) {
  const Tensor x = make({2, 3}, {1, 2, 2, 0, 0, 0});
  expect_near(run("UnitNormalization", "{}", x), {1 / 3.0f, 2 / 3.0f, 2 / 3.0f, 0, 0, 0}, 1e-7f);
  expect_near(run("UnitNormalization", R"({"axis": 0})", make({2, 1}, {3, 4})), {0.6f, 0.8f}, 1e-7f);
  expect_near(run("UnitNormalization", R"({"axis": [0, 1]})", x), {1 / 3.0f, 2 / 3.0f, 2 / 3.0f, 0, 0, 0},
              1e-7f);
  EXPECT_EQ(layer("UnitNormalization", R"({"axis": [-1]})")->get_config().get_int_list("axis"),
            (std::vector<int64_t>{-1}));
  EXPECT_EQ(layer("UnitNormalization")->get_config().get_int("axis"), -1);
  expect_error([&] { run("UnitNormalization", R"({"axis": 2})", x); }, Code::kInvalidArgument,
               {"UnitNormalization", "axis 2", "out of range"});
  testing::check_gradients(
      "UnitNormalization",
      [&](const std::vector<Tensor> &in) { return run("UnitNormalization", "{}", in[0]); },
      {random_tensor({2, 3}, 5)});
}

// keras.layers.SpectralNormalization: a training call divides the kernel by sigma = v W u^T from one
// power iteration of the kept u (written out in double), assigned to the kernel and u; inference leaves
// them; many calls bring the largest singular value to 1; a zero kernel stays; weights in Keras's order
// (vector_u first); the gradient is the wrapped layer's; errors.
TEST_F(MoreLayersTest, SpectralNormalizationAsKeras) {
  LayerPtr sn =
      layer("SpectralNormalization", R"({"layer": {"class_name": "Dense", "config": {"units": 2}}})");
  const Tensor x = make({1, 3}, {1, -2, 0.5f});
  (*sn)({x}, CallContext());
  const std::vector<VariablePtr> vars = sn->variables();
  ASSERT_EQ(vars.size(), 3u);
  EXPECT_EQ(vars[0]->name(), "spectral_normalization/vector_u");
  EXPECT_FALSE(vars[0]->trainable());
  EXPECT_EQ(vars[1]->name(), "spectral_normalization/dense/kernel");
  EXPECT_EQ(sn->trainable_variables().size(), 2u);
  const std::vector<double> w = {1, 2, 3, 4, 5, 6}, u0 = {0.6, -0.8};  // W [3, 2]
  vars[1]->assign(make({3, 2}, {1, 2, 3, 4, 5, 6}));
  vars[0]->assign(make({1, 2}, {0.6f, -0.8f}));
  const auto normalized = [](std::vector<double> a) {
    double n = 0;
    for (double ai : a) n += ai * ai;
    for (double &ai : a) ai /= std::sqrt(std::max(n, 1e-14));
    return a;
  };
  std::vector<double> v(3), u(2, 0.0);
  for (int i = 0; i < 3; ++i) v[size_t(i)] = u0[0] * w[size_t(2 * i)] + u0[1] * w[size_t(2 * i + 1)];
  v = normalized(v);
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 3; ++i) u[size_t(j)] += v[size_t(i)] * w[size_t(2 * i + j)];
  const std::vector<double> vw = u;
  u = normalized(u);
  const double sigma = vw[0] * u[0] + vw[1] * u[1];
  const std::vector<float> before = values<float>((*sn)({x}, CallContext())[0]);
  EXPECT_EQ(values<float>(vars[1]->peek()), (std::vector<float>{1, 2, 3, 4, 5, 6}));  // inference: as it was
  CallContext train;
  train.training = true;
  const std::vector<float> after = values<float>((*sn)({x}, train)[0]);
  std::vector<float> want_kernel;
  for (double wi : w) want_kernel.push_back(float(wi / sigma));
  expect_near(vars[1]->peek(), want_kernel, 1e-6f);
  expect_near(vars[0]->peek(), {float(u[0]), float(u[1])}, 1e-6f);
  for (size_t k = 0; k < after.size(); ++k) EXPECT_NEAR(after[k], before[k] / sigma, 1e-5) << k;
  for (int i = 0; i < 50; ++i) (*sn)({x}, train);
  // The largest singular value of the 3 x 2 kernel: sqrt of the largest eigenvalue of W^T W.
  const std::vector<float> k = values<float>(vars[1]->peek());
  double a = 0, b = 0, c = 0;
  for (int i = 0; i < 3; ++i) {
    a += double(k[size_t(2 * i)]) * k[size_t(2 * i)];
    b += double(k[size_t(2 * i)]) * k[size_t(2 * i + 1)];
    c += double(k[size_t(2 * i + 1)]) * k[size_t(2 * i + 1)];
  }
  EXPECT_NEAR(std::sqrt((a + c) / 2 + std::sqrt((a - c) * (a - c) / 4 + b * b)), 1.0, 1e-5);
  // The gradient is Dense's: d sum(y) / d kernel = x^T 1.
  autodiff::Tape tape(false, true);
  const Tensor y = ops::sum((*sn)({x}, train)[0]);
  tape.stop_recording();
  const autodiff::GradientSources kernel{autodiff::GradientSource(*vars[1])};
  expect_near(tape.gradient(y, kernel, autodiff::Unconnected::kZero)[0], {1, 1, -2, -2, 0.5f, 0.5f}, 1e-6f);

  // A kernel of zeros stays; a conv kernel is seen as [-1, filters]; an Embedding's vectors too, its output
  // not cast to the int input's dtype.
  vars[1]->assign(ops::zeros(Shape({3, 2})));
  (*sn)({x}, train);
  EXPECT_EQ(values<float>(vars[1]->peek()), std::vector<float>(6, 0.0f));
  LayerPtr conv =
      layer("SpectralNormalization", R"({"layer": {"class_name": "Conv2D", "config": {"filters": 2,
      "kernel_size": 2}}, "power_iterations": 3})");
  EXPECT_EQ((*conv)({random_tensor({1, 3, 3, 2}, 4)}, train)[0].shape(), Shape({1, 2, 2, 2}));
  EXPECT_EQ(conv->variables()[0]->shape(), Shape({1, 2}));
  LayerPtr emb =
      layer("SpectralNormalization", R"({"layer": {"class_name": "Embedding", "config": {"input_dim": 5,
      "output_dim": 3}}})");
  EXPECT_EQ((*emb)({testing::make_typed<int32_t>(Shape({2}), {1, 4})}, train)[0].dtype(), DType::kFloat32);
  EXPECT_EQ(emb->variables()[0]->shape(), Shape({1, 3}));
  LayerPtr depthwise = layer("SpectralNormalization", R"({"layer": {"class_name": "DepthwiseConv2D", "config":
      {"kernel_size": 2, "depth_multiplier": 2}}})");
  EXPECT_EQ((*depthwise)({random_tensor({1, 3, 3, 2}, 6)}, train)[0].shape(), Shape({1, 2, 2, 4}));
  EXPECT_EQ(depthwise->variables()[0]->shape(), Shape({1, 2}));
  const Config config = conv->get_config();
  EXPECT_EQ(config.get_int("power_iterations"), 3);
  EXPECT_EQ(create_layer("SpectralNormalization", config)->get_config(), config);
  EXPECT_EQ(sn->compute_output_shape({{-1, 3}})[0], (PartialShape{-1, 2}));

  expect_error(
      [] {
        layer("SpectralNormalization", R"({"layer": {"class_name": "Dense", "config": {"units": 2}},
      "power_iterations": 0})");
      },
      Code::kInvalidArgument, {"SpectralNormalization", "power_iterations", "0"});
  expect_error(
      [&] {
        (*layer("SpectralNormalization", R"({"layer": {"class_name": "Dropout", "config": {"rate": 0.5}}})"))(
            {x}, train);
      },
      Code::kInvalidArgument, {"SpectralNormalization", "Dropout", "no weight 'kernel' nor 'embeddings'"});
}

// keras.layers.RMSNormalization and LayerNormalization's rms_scaling (Keras's: the variance, not
// the mean square, and gamma without beta), with gradients; BatchNormalization's current config keys.
TEST_F(MoreLayersTest, RmsNormalizationAndRmsScaling) {
  const Tensor x = random_tensor({3, 2, 5}, 61, -2.0f, 3.0f);
  const std::vector<float> xv = values(x);
  std::vector<float> rms(xv.size()), scaled(xv.size());
  for (size_t r = 0; r < xv.size() / 5; ++r) {
    double sq = 0, mean = 0;
    for (size_t i = 0; i < 5; ++i) mean += xv[r * 5 + i] / 5.0;
    double var = 0;
    for (size_t i = 0; i < 5; ++i) {
      sq += double(xv[r * 5 + i]) * xv[r * 5 + i] / 5.0;
      var += (xv[r * 5 + i] - mean) * (xv[r * 5 + i] - mean) / 5.0;
    }
    for (size_t i = 0; i < 5; ++i) {
      rms[r * 5 + i] = static_cast<float>(xv[r * 5 + i] / std::sqrt(sq + 1e-6));
      scaled[r * 5 + i] = static_cast<float>(xv[r * 5 + i] / std::sqrt(var + 1e-3));
    }
  }
  LayerPtr rn = layer("RMSNormalization");
  expect_near((*rn)(x), rms, 2e-6f);
  ASSERT_EQ(rn->own_weights().size(), 1u);
  EXPECT_EQ(rn->own_weights()[0].first, "scale");
  EXPECT_EQ(rn->get_config().get_float("epsilon"), 1e-6);
  EXPECT_FALSE(rn->get_config().has("center"));
  testing::check_gradients("RMSNormalization", [&](const std::vector<Tensor> &xs) { return (*rn)(xs[0]); },
                           {random_tensor({3, 2, 5}, 62)});
  LayerPtr ln = layer("LayerNormalization", R"({"rms_scaling": true})");
  expect_near((*ln)(x), scaled, 2e-6f);
  ASSERT_EQ(ln->own_weights().size(), 1u);
  EXPECT_EQ(ln->own_weights()[0].first, "gamma");
  EXPECT_TRUE(ln->get_config().get_bool("rms_scaling"));
  expect_error([&] { layer("LayerNormalization", R"({"beta_constraint": "non_neg"})"); },
               Code::kUnimplemented, {"beta_constraint"});
  expect_error([&] { (*layer("RMSNormalization", R"({"axis": [-1, 2]})"))(x); }, Code::kInvalidArgument,
               {"duplicate axes"});
  // BatchNormalization: synchronized kept, renorm refused, constraints refused.
  EXPECT_TRUE(
      layer("BatchNormalization", R"({"synchronized": true})")->get_config().get_bool("synchronized"));
  expect_error([&] { layer("BatchNormalization", R"({"renorm": true})"); }, Code::kUnimplemented, {"renorm"});
  expect_error([&] { layer("BatchNormalization", R"({"gamma_constraint": "non_neg"})"); },
               Code::kUnimplemented, {"gamma_constraint"});
  // Keras 3's current config keys at their defaults load; set, they are refused by name.
  EXPECT_NO_THROW(layer("Dense", R"({"units": 2, "quantization_config": null})"));
  expect_error([&] { layer("Dense", R"({"units": 2, "lora_rank": 4})"); }, Code::kUnimplemented,
               {"lora_rank"});
}

// Masked statistics select the valid steps (Keras's where), so a NaN or inf at a masked step stays out.
TEST_F(MoreLayersTest, MaskedStatisticsIgnoreNonFiniteMaskedSteps) {
  std::vector<float> xv(24);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(i % 7) - 2.5f;
  xv[21] = NAN;  // batch 1, step 3, channel 0
  xv[22] = INFINITY;
  const Tensor x = make({2, 4, 3}, xv);
  const std::vector<Tensor> mask{testing::make_bool(Shape({2, 4}), {1, 1, 1, 1, 1, 1, 1, 0})};
  CallContext ctx;
  ctx.mask = &mask;
  const std::vector<float> pooled = values((*layer("GlobalAveragePooling1D"))({x}, ctx)[0]);
  for (float v : pooled) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(pooled[3], (xv[12] + xv[15] + xv[18]) / 3, 1e-6);
  LayerPtr bn = layer("BatchNormalization");
  ctx.training = true;
  const std::vector<float> y = values((*bn)({x}, ctx)[0]);
  for (size_t i = 0; i < 21; ++i) EXPECT_TRUE(std::isfinite(y[i])) << i;
  for (const VariablePtr &v : bn->variables())
    for (float m : values(v->peek())) EXPECT_TRUE(std::isfinite(m)) << v->name();
}

TEST_F(MoreLayersTest, ReLUAsKerasDocuments) {
  EXPECT_EQ(layer("ReLU")->name(), "re_lu");
  const Tensor x = make({5}, kDocInput);
  expect_near(run("ReLU", "{}", x), {0, 0, 0, 5, 10}, 0);
  expect_near(run("ReLU", R"({"negative_slope": 0.5})", x), {-5, -2.5f, 0, 5, 10}, 0);
  expect_near(run("ReLU", R"({"max_value": 5})", x), {0, 0, 0, 5, 5}, 0);
  expect_near(run("ReLU", R"({"threshold": 5})", x), {0, 0, 0, 0, 10}, 0);
  expect_near(run("ReLU", R"({"max_value": 6})", x), {0, 0, 0, 5, 6}, 0);
  // All three: negative_slope * (x - threshold) below the threshold, clipped at max_value.
  expect_near(run("ReLU", R"({"max_value": 6, "negative_slope": 0.5, "threshold": 2})", x),
              {-6, -3.5f, -1, 5, 6}, 0);
  const Config c = layer("ReLU", R"({"max_value": 6})")->get_config();
  EXPECT_EQ(c.get_float("max_value"), 6.0);
  EXPECT_TRUE(layer("ReLU")->get_config().is_null("max_value"));
  EXPECT_EQ(c.get_float("negative_slope"), 0.0);
  EXPECT_EQ(c.get_float("threshold"), 0.0);
  for (const char *key : {"max_value", "negative_slope", "threshold"})
    expect_error([&] { layer("ReLU", std::string("{\"") + key + "\": -1}"); }, Code::kInvalidArgument,
                 {"ReLU", key, "cannot be negative"});
  const Tensor g = away_from_kinks();
  LayerPtr l = layer("ReLU", R"({"max_value": 2, "negative_slope": 0.1, "threshold": 0.5})");
  testing::check_gradients("ReLU", [&](const std::vector<Tensor> &xs) { return (*l)(xs[0]); }, {g});
}

TEST_F(MoreLayersTest, LeakyReLUEluAndPReLU) {
  const Tensor x = make({5}, kDocInput);
  expect_near(run("LeakyReLU", "{}", x), {-3, -1.5f, 0, 5, 10}, 1e-6f);
  expect_near(run("LeakyReLU", R"({"alpha": 0.1})", x), {-1, -0.5f, 0, 5, 10}, 1e-6f);  // tf.keras 2's key
  EXPECT_EQ(layer("LeakyReLU", R"({"alpha": 0.1})")->get_config().get_float("negative_slope"), 0.1);
  expect_error([&] { layer("LeakyReLU", R"({"alpha": 0.1, "negative_slope": 0.2})"); },
               Code::kInvalidArgument, {"LeakyReLU", "not both"});
  expect_error([&] { layer("LeakyReLU", R"({"negative_slope": -0.1})"); }, Code::kInvalidArgument,
               {"negative_slope", "cannot be negative"});
  // negative_slope 0 is TF's LeakyRelu, x > 0 ? x : x * 0: -0 for a negative x, NaN for -inf.
  const std::vector<float> zero_slope =
      values(run("LeakyReLU", R"({"negative_slope": 0})", make({3}, {-INFINITY, -1, 2})));
  EXPECT_TRUE(std::isnan(zero_slope[0]));
  EXPECT_TRUE(zero_slope[1] == 0 && std::signbit(zero_slope[1]));
  EXPECT_EQ(zero_slope[2], 2.0f);
  const float e1 = std::exp(-1.0f) - 1, e2 = std::exp(-2.0f) - 1;
  expect_near(run("ELU", R"({"alpha": 0.5})", make({3}, {-1, -2, 3})), {0.5f * e1, 0.5f * e2, 3}, 1e-6f);
  EXPECT_EQ(layer("ELU")->get_config().get_float("alpha"), 1.0);

  // PReLU: alpha of the input's shape without the batch axis, shared along shared_axes.
  LayerPtr p = layer("PReLU", R"({"alpha_initializer": {"class_name": "Constant", "config": {"value": 0.25}},
                                  "shared_axes": [1, 2]})");
  const Tensor img = random_tensor({2, 3, 4, 5}, 7, -2.0f, 2.0f);
  const Tensor y = (*p)(img);
  ASSERT_EQ(p->variables().size(), 1u);
  EXPECT_EQ(p->variables()[0]->shape(), Shape({1, 1, 5}));
  EXPECT_EQ(p->own_weights()[0].first, "alpha");
  std::vector<float> want = values(img);
  for (float &v : want) v = v > 0 ? v : 0.25f * v;
  expect_near(y, want, 1e-7f);
  EXPECT_EQ(p->get_config().get_int_list("shared_axes"), (std::vector<int64_t>{1, 2}));
  LayerPtr q = layer("PReLU");
  (*q)(random_tensor({2, 3}, 8));
  EXPECT_EQ(q->variables()[0]->shape(), Shape({3}));
  EXPECT_TRUE(q->get_config().is_null("shared_axes"));
  LayerPtr p2 =
      layer("PReLU", R"({"alpha_initializer": {"class_name": "Constant", "config": {"value": 0.25}}})");
  testing::check_gradients("PReLU", [&](const std::vector<Tensor> &xs) { return (*p2)(xs[0]); },
                           {away_from_kinks()});
  expect_error([&] { layer("PReLU", R"({"shared_axes": [0]})"); }, Code::kInvalidArgument,
               {"PReLU", "1-based"});
  expect_error([&] { layer("PReLU", R"({"alpha_constraint": "non_neg"})"); }, Code::kUnimplemented,
               {"alpha_constraint"});
}

TEST_F(MoreLayersTest, SoftmaxAxesAndMask) {
  const Tensor x = random_tensor({2, 3, 4}, 11, -3.0f, 3.0f);
  expect_near(run("Softmax", "{}", x), values(ops::softmax(x, -1)), 0);
  expect_near(run("Softmax", R"({"axis": 1})", x), values(ops::softmax(x, 1)), 0);
  EXPECT_EQ(layer("Softmax", R"({"axis": 1})")->get_config().get_int("axis"), 1);
  // Several axes: one distribution over both.
  const Tensor y = run("Softmax", R"({"axis": [1, 2]})", x);
  const std::vector<float> sums = values(ops::sum(y, {1, 2}));
  for (float s : sums) EXPECT_NEAR(s, 1.0f, 1e-6f);
  EXPECT_EQ(layer("Softmax", R"({"axis": [1, 2]})")->get_config().get_int_list("axis"),
            (std::vector<int64_t>{1, 2}));
  // A mask (as an attention mask): masked entries give 0, the rest a distribution of their own.
  LayerPtr l = layer("Softmax");
  const Tensor logits = make({1, 4}, {1, 2, 3, 4});
  const std::vector<Tensor> masks = {testing::make_bool({1, 4}, {1, 0, 1, 0})};
  CallContext ctx;
  ctx.mask = &masks;
  const std::vector<float> got = values((*l)({logits}, ctx)[0]);
  const float a = std::exp(1.0f), b = std::exp(3.0f);
  EXPECT_NEAR(got[0], a / (a + b), 1e-6f);
  EXPECT_EQ(got[1], 0.0f);
  EXPECT_NEAR(got[2], b / (a + b), 1e-6f);
  EXPECT_EQ(got[3], 0.0f);
  // Keras 3's rule: the mask broadcasts against the input from the last axis (a [B, T] mask of a
  // [B, T, F] input does not, unless T == F).
  const std::vector<Tensor> bad = {testing::make_bool({1, 3}, {1, 0, 1})};
  ctx.mask = &bad;
  expect_error(
      [&] {
        (*l)({random_tensor({1, 3, 4}, 12)}, ctx);
      },
      Code::kInvalidArgument, {"(Softmax)", "broadcastable"});
  // Keras: a mask that broadcasts reaches the call as given ([B, 1, T] over [B, H, T], as attention
  // scores are masked), and a non-bool one means > 0.5.
  const Tensor scores = random_tensor({2, 3, 4}, 13);
  const std::vector<int> bits = {1, 0, 1, 1, 0, 1, 1, 0};
  std::vector<int> wide_bits;
  for (size_t row = 0; row < 2; ++row)
    for (int h = 0; h < 3; ++h)
      wide_bits.insert(wide_bits.end(), bits.begin() + 4 * row, bits.begin() + 4 * row + 4);
  const std::vector<Tensor> narrow = {testing::make_bool({2, 1, 4}, bits)};
  const std::vector<Tensor> wide = {testing::make_bool({2, 3, 4}, wide_bits)};
  ctx.mask = &narrow;
  const Tensor from_narrow = (*l)({scores}, ctx)[0];
  ctx.mask = &wide;
  EXPECT_EQ(values(from_narrow), values((*l)({scores}, ctx)[0]));
  const std::vector<Tensor> soft = {make({1, 4}, {1.0f, 0.3f, 0.51f, 0.0f})};
  ctx.mask = &soft;
  const std::vector<float> halves = values((*l)({logits}, ctx)[0]);
  const float c = std::exp(3.0f);
  EXPECT_NEAR(halves[0], a / (a + c), 1e-6f);
  EXPECT_EQ(halves[1], 0.0f);
  EXPECT_NEAR(halves[2], c / (a + c), 1e-6f);
  EXPECT_EQ(halves[3], 0.0f);
  expect_error([&] { run("Softmax", R"({"axis": 3})", x); }, Code::kInvalidArgument,
               {"axis 3", "out of range"});
  testing::check_gradients(
      "Softmax", [&](const std::vector<Tensor> &xs) { return run("Softmax", R"({"axis": [1, 2]})", xs[0]); },
      {x});
}

// x[n, h, w, c] of a [N, H, W, C] tensor, or of [N, C, H, W] when channels_first.
float at(const std::vector<float> &v, const Shape &s, int64_t n, int64_t i, int64_t j, int64_t c, bool cf) {
  if (cf) return v[size_t(((n * s[1] + c) * s[2] + i) * s[3] + j)];
  return v[size_t(((n * s[1] + i) * s[2] + j) * s[3] + c)];
}

TEST_F(MoreLayersTest, ZeroPaddingCroppingUpSampling2D) {
  EXPECT_EQ(layer("ZeroPadding2D")->name(), "zero_padding2d");
  for (bool cf : {false, true}) {
    SCOPED_TRACE(cf ? "channels_first" : "channels_last");
    const std::string fmt = cf ? R"("data_format": "channels_first")" : R"("data_format": "channels_last")";
    const Shape in = cf ? Shape({2, 3, 4, 5}) : Shape({2, 4, 5, 3});  // H 4, W 5, C 3
    const Tensor x = random_tensor(in, 21);
    const std::vector<float> xv = values(x);
    const int64_t H = 4, W = 5, C = 3;

    // ((top, bottom), (left, right)) = ((1, 2), (0, 3))
    const Tensor p = run("ZeroPadding2D", "{\"padding\": [[1, 2], [0, 3]], " + fmt + "}", x);
    EXPECT_EQ(p.shape(), cf ? Shape({2, 3, 7, 8}) : Shape({2, 7, 8, 3}));
    const std::vector<float> pv = values(p);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 7; ++i)
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t c = 0; c < C; ++c) {
            const bool inside = i >= 1 && i < 1 + H && j < W;
            EXPECT_EQ(at(pv, p.shape(), n, i, j, c, cf), inside ? at(xv, in, n, i - 1, j, c, cf) : 0.0f);
          }

    const Tensor k = run("Cropping2D", "{\"cropping\": [[1, 2], [1, 1]], " + fmt + "}", x);
    EXPECT_EQ(k.shape(), cf ? Shape({2, 3, 1, 3}) : Shape({2, 1, 3, 3}));
    const std::vector<float> kv = values(k);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t c = 0; c < C; ++c)
          EXPECT_EQ(at(kv, k.shape(), n, 0, j, c, cf), at(xv, in, n, 1, j + 1, c, cf));

    const Tensor u = run("UpSampling2D", "{\"size\": [2, 3], " + fmt + "}", x);
    EXPECT_EQ(u.shape(), cf ? Shape({2, 3, 8, 15}) : Shape({2, 8, 15, 3}));
    const std::vector<float> uv = values(u);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t j = 0; j < 15; ++j)
          for (int64_t c = 0; c < C; ++c)
            EXPECT_EQ(at(uv, u.shape(), n, i, j, c, cf), at(xv, in, n, i / 2, j / 3, c, cf));
  }
  // Keras's forms: an int, one int per axis, a pair per axis; the config writes the pairs.
  Config a = layer("ZeroPadding2D")->get_config(),
         b = layer("ZeroPadding2D", R"({"padding": [1, 1]})")->get_config();
  a.erase("name");
  b.erase("name");
  EXPECT_EQ(a, b);
  const Config c = layer("ZeroPadding2D", R"({"padding": 2})")->get_config();
  EXPECT_EQ(c.json().at("padding"), Config::Json::parse("[[2, 2], [2, 2]]"));
  EXPECT_EQ(c.get_string("data_format"), "channels_last");
  EXPECT_EQ(layer("Cropping2D")->get_config().json().at("cropping"), Config::Json::parse("[[0, 0], [0, 0]]"));
  EXPECT_EQ(layer("UpSampling2D")->get_config().get_int_list("size"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(layer("UpSampling2D")->get_config().get_string("interpolation"), "nearest");

  const Tensor g = random_tensor({1, 3, 4, 2}, 22);
  for (const char *cls : {"ZeroPadding2D", "Cropping2D", "UpSampling2D"}) {
    LayerPtr l = layer(cls, std::string(cls) == "Cropping2D" ? R"({"cropping": [[1, 0], [0, 2]]})" : "{}");
    testing::check_gradients(cls, [&](const std::vector<Tensor> &xs) { return (*l)(xs[0]); }, {g});
  }

  expect_error([&] { layer("ZeroPadding2D", R"({"padding": [1, 2, 3]})"); }, Code::kInvalidArgument,
               {"ZeroPadding2D", "padding", "[1,2,3]"});
  expect_error([&] { layer("ZeroPadding2D", R"({"padding": -1})"); }, Code::kInvalidArgument,
               {"ZeroPadding2D", "cannot be negative"});
  expect_error([&] { layer("Cropping2D", R"({"cropping": [[1], [1, 1]]})"); }, Code::kInvalidArgument,
               {"Cropping2D", "tuples of 2 ints"});
  expect_error(
      [&] {
        run("Cropping2D", R"({"cropping": [[2, 2], [0, 0]]})", random_tensor({1, 4, 4, 1}, 23));
      },
      Code::kInvalidArgument, {"(Cropping2D)", "smaller than", "4"});
  expect_error(
      [&] {
        run("ZeroPadding2D", "{}", random_tensor({4, 4, 1}, 24));
      },
      Code::kInvalidArgument, {"zero_padding2d", "4"});
  expect_error([&] { layer("UpSampling2D", R"({"interpolation": "bicubic"})"); }, Code::kUnimplemented,
               {"UpSampling2D", "bicubic", "bilinear"});
  expect_error([&] { layer("UpSampling2D", R"({"size": 0})"); }, Code::kInvalidArgument,
               {"UpSampling2D", "size"});
  expect_error([&] { layer("ZeroPadding2D", R"({"data_format": "NHWC"})"); }, Code::kInvalidArgument,
               {"ZeroPadding2D", "data_format 'NHWC'"});
}

TEST_F(MoreLayersTest, OneAndThreeSpatialAxes) {
  const Tensor x = make({1, 3, 2}, {1, 2, 3, 4, 5, 6});  // [N, steps, C]
  expect_near(run("ZeroPadding1D", R"({"padding": [1, 2]})", x), {0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0}, 0);
  expect_near(run("ZeroPadding1D", "{}", x), {0, 0, 1, 2, 3, 4, 5, 6, 0, 0}, 0);
  expect_near(run("Cropping1D", "{}", x), {3, 4}, 0);  // Keras's default (1, 1)
  expect_near(run("UpSampling1D", R"({"size": 2})", x), {1, 2, 1, 2, 3, 4, 3, 4, 5, 6, 5, 6}, 0);
  EXPECT_EQ(layer("UpSampling1D")->get_config().get_int("size"), 2);
  EXPECT_FALSE(layer("Cropping1D")->get_config().has("data_format"));
  EXPECT_EQ(layer("Cropping1D")->get_config().get_int_list("cropping"), (std::vector<int64_t>{1, 1}));
  expect_error([&] { layer("Cropping1D", R"({"data_format": "channels_last"})"); }, Code::kInvalidArgument,
               {"Cropping1D", "data_format"});

  const Tensor v = random_tensor({1, 2, 3, 4, 2}, 31);  // [N, D, H, W, C]
  EXPECT_EQ(run("ZeroPadding3D", "{}", v).shape(), Shape({1, 4, 5, 6, 2}));
  EXPECT_EQ(run("Cropping3D", R"({"cropping": [0, 1, [1, 2]]})", v).shape(), Shape({1, 2, 1, 1, 2}));
  const Tensor u = run("UpSampling3D", R"({"data_format": "channels_first"})", v);  // [N, C=2, 3, 4, 2]
  EXPECT_EQ(u.shape(), Shape({1, 2, 6, 8, 4}));
  expect_near(u,
              values(ops::reshape(ops::broadcast_to(ops::reshape(v, {1, 2, 3, 1, 4, 1, 2, 1}),
                                                    Shape({1, 2, 3, 2, 4, 2, 2, 2})),
                                  {1, 2, 6, 8, 4})),
              0);
  EXPECT_EQ(layer("Cropping3D")->get_config().json().at("cropping"),
            Config::Json::parse("[[1, 1], [1, 1], [1, 1]]"));
}

TEST_F(MoreLayersTest, CroppingOfUnknownDimsAndHugeCrops) {
  // Keras checks the dims it knows: an unknown one stays unknown whatever the crop.
  LayerPtr crop = layer("Cropping2D", R"({"cropping": [[2, 3], [1, 1]]})");
  EXPECT_EQ(crop->compute_output_shape({{kUnknownDim, kUnknownDim, 9, 4}}),
            (std::vector<PartialShape>{{kUnknownDim, kUnknownDim, 7, 4}}));
  expect_error(
      [&] {
        crop->compute_output_shape({{kUnknownDim, 5, kUnknownDim, 4}});
      },
      Code::kInvalidArgument, {"(Cropping2D)", "cropping 2 + 3", "dimension 5"});
  // Crops whose sum overflows int64 are refused as too large, not wrapped around.
  expect_error(
      [&] {
        run("Cropping1D", R"({"cropping": [9223372036854775807, 9223372036854775807]})",
            random_tensor({1, 4, 1}, 51));
      },
      Code::kInvalidArgument, {"(Cropping1D)", "smaller than"});
  // PReLU keeps the sizes of the axes it does not share (Keras's input spec).
  LayerPtr p = layer("PReLU", R"({"shared_axes": [1]})");
  (*p)(random_tensor({2, 3, 4}, 52));
  (*p)(random_tensor({5, 7, 4}, 53));  // the shared axis may change
  expect_error(
      [&] {
        (*p)(random_tensor({2, 3, 1}, 54));
      },
      Code::kInvalidArgument, {"(PReLU)", "axis 2 must be 4"});
}

TEST_F(MoreLayersTest, NoiseLayersOnlyInTraining) {
  const Tensor x = ops::fill(Shape({64, 8, 8, 4}), 2.0);
  for (const char *spec : {"GaussianNoise|{\"stddev\": 0.5}", "GaussianDropout|{\"rate\": 0.2}",
                           "SpatialDropout1D|{\"rate\": 0.5}", "SpatialDropout2D|{\"rate\": 0.5}",
                           "SpatialDropout3D|{\"rate\": 0.5}"}) {
    const std::string s(spec), cls = s.substr(0, s.find('|')), json = s.substr(s.find('|') + 1);
    SCOPED_TRACE(cls);
    const Tensor in = cls == "SpatialDropout1D"   ? ops::reshape(x, {64, 64, 4})
                      : cls == "SpatialDropout3D" ? ops::reshape(x, {64, 4, 2, 8, 4})
                                                  : x;
    EXPECT_EQ(values(run(cls.c_str(), json, in)), values(in));  // inference: the input
    EXPECT_NE(values(run(cls.c_str(), json, in, true)), values(in));
  }
  // GaussianNoise: x + N(0, 0.5^2); GaussianDropout(0.2): x * N(1, 0.25): mean and spread.
  auto moments = [](const Tensor &t) {
    const std::vector<float> v = values(t);
    double m = 0, q = 0;
    for (float f : v) m += f;
    m /= double(v.size());
    for (float f : v) q += (f - m) * (f - m);
    return std::pair<double, double>{m, std::sqrt(q / double(v.size()))};
  };
  auto [m1, s1] = moments(run("GaussianNoise", R"({"stddev": 0.5, "seed": 3})", x, true));
  EXPECT_NEAR(m1, 2.0, 0.02);
  EXPECT_NEAR(s1, 0.5, 0.02);
  auto [m2, s2] = moments(run("GaussianDropout", R"({"rate": 0.2})", x, true));
  EXPECT_NEAR(m2, 2.0, 0.02);
  EXPECT_NEAR(s2, 2.0 * 0.5, 0.03);  // sqrt(0.2 / 0.8) = 0.5
  // SpatialDropout2D: each (sample, channel) map is all dropped or all kept (scaled by 2).
  for (bool cf : {false, true}) {
    const Tensor y =
        run("SpatialDropout2D", cf ? R"({"rate": 0.5, "data_format": "channels_first"})" : R"({"rate": 0.5})",
            cf ? ops::fill(Shape({64, 4, 8, 8}), 2.0) : x, true);
    const std::vector<float> v = values(y);
    int dropped = 0;
    for (int64_t n = 0; n < 64; ++n)
      for (int64_t c = 0; c < 4; ++c) {
        const float first = at(v, y.shape(), n, 0, 0, c, cf);
        EXPECT_TRUE(first == 0.0f || first == 4.0f);
        dropped += first == 0.0f;
        for (int64_t i = 0; i < 8; ++i)
          for (int64_t j = 0; j < 8; ++j) ASSERT_EQ(at(v, y.shape(), n, i, j, c, cf), first);
      }
    EXPECT_GT(dropped, 64);
    EXPECT_LT(dropped, 192);
  }
  const Config c = layer("SpatialDropout2D", R"({"rate": 0.25, "seed": 7})")->get_config();
  EXPECT_EQ(c.get_float("rate"), 0.25);
  EXPECT_EQ(c.get_int("seed"), 7);
  EXPECT_EQ(c.get_string("data_format"), "channels_last");
  EXPECT_TRUE(layer("GaussianNoise", R"({"stddev": 1})")->get_config().is_null("seed"));
  expect_error([&] { layer("GaussianDropout", R"({"rate": 1})"); }, Code::kInvalidArgument,
               {"GaussianDropout", "rate must be in [0, 1)"});
  expect_error([&] { layer("GaussianNoise"); }, Code::kInvalidArgument,
               {"GaussianNoise", "stddev is required"});
  expect_error(
      [&] {
        run("SpatialDropout2D", R"({"rate": 0.5})", ops::reshape(x, {64, 256}), true);
      },
      Code::kInvalidArgument, {"spatial_dropout2d"});
}

TEST_F(MoreLayersTest, IdentityAndRescaling) {
  const Tensor x = random_tensor({2, 3}, 41);
  EXPECT_EQ(values(run("Identity", "{}", x)), values(x));
  // uint8 images to floats, as Keras's Rescaling(1 / 255) does.
  const Tensor img = testing::make_typed<uint8_t>(Shape({1, 2, 2, 1}), {0, 51, 128, 255});
  const Tensor y = run("Rescaling", R"({"scale": 0.00392156862745098})", img);
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  const float s = static_cast<float>(1.0 / 255);
  expect_near(y, {0.0f, 51 * s, 128 * s, 255 * s}, 0);
  expect_near(run("Rescaling", R"({"scale": 2, "offset": -1})", make({3}, {0, 0.5f, 1})), {-1, 0, 1}, 0);
  // Per-channel scale and offset, broadcast against the last axis.
  expect_near(run("Rescaling", R"({"scale": [1, 10], "offset": [0, 1]})", make({2, 2}, {1, 2, 3, 4})),
              {1, 21, 3, 41}, 0);
  const Config c = layer("Rescaling", R"({"scale": [1, 10], "offset": 0.5})")->get_config();
  EXPECT_EQ(c.get_float_list("scale"), (std::vector<double>{1, 10}));
  EXPECT_EQ(c.type("offset"), Config::Type::kFloat);
  expect_error([&] { layer("Rescaling"); }, Code::kInvalidArgument, {"Rescaling", "'scale' is required"});
}

// CategoryEncoding: Keras's docstring examples for each output_mode, count weights, shapes, a
// scalar, and errors naming the layer and the bad id.
TEST_F(MoreLayersTest, CategoryEncodingAsKeras) {
  const Tensor ids = testing::make_typed<int64_t>(Shape({4, 2}), {0, 1, 0, 0, 1, 2, 3, 1});
  expect_near(run("CategoryEncoding", R"({"num_tokens": 4, "output_mode": "one_hot"})",
                  testing::make_typed<int64_t>(Shape({4}), {3, 2, 0, 1})),
              {0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0}, 0);
  expect_near(run("CategoryEncoding", R"({"num_tokens": 4})", ids),
              {1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1}, 0);
  LayerPtr count = layer("CategoryEncoding", R"({"num_tokens": 4, "output_mode": "count"})");
  expect_near((*count)({ids}, CallContext())[0], {1, 1, 0, 0, 2, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1}, 0);
  const Tensor w = make({4, 2}, {.1f, .2f, .1f, .1f, .2f, .3f, .4f, .2f});
  expect_near((*count)({ids, w}, CallContext())[0],
              {.1f, .2f, 0, 0, .2f, 0, 0, 0, 0, .2f, .3f, 0, 0, .2f, 0, .4f}, 1e-7f);
  expect_near(run("CategoryEncoding", R"({"num_tokens": 3})", testing::make_typed<int64_t>(Shape({}), {2})),
              {0, 0, 1}, 0);
  EXPECT_EQ(count->compute_output_shape({{-1, 5}})[0], (PartialShape{-1, 4}));
  EXPECT_EQ(layer("CategoryEncoding", R"({"num_tokens": 4, "output_mode": "one_hot"})")
                ->compute_output_shape({{-1, 1}})[0],
            (PartialShape{-1, 4}));
  expect_error(
      [&] {
        (*count)({testing::make_typed<int64_t>(Shape({2}), {1, -1})}, CallContext());
      },
      Code::kInvalidArgument, {"CategoryEncoding", "token id -1 at flat index 1", "[0, 4)"});
  expect_error(
      [&] {
        run("CategoryEncoding", R"({"num_tokens": 4})", make({2}, {1, std::nanf("")}));
      },
      Code::kInvalidArgument, {"CategoryEncoding", "nan"});
  expect_error([&] { layer("CategoryEncoding", R"({"num_tokens": 0})"); }, Code::kInvalidArgument, {">= 1"});
  expect_error([&] { layer("CategoryEncoding", R"({"num_tokens": 2, "output_mode": "tf_idf"})"); },
               Code::kInvalidArgument, {"'tf_idf'"});
  expect_error([&] { layer("CategoryEncoding", R"({"num_tokens": 2, "sparse": true})"); },
               Code::kUnimplemented, {"sparse"});
}

// Discretization with given boundaries: Keras's docstring example, the edges, NaN and +-inf as TF's
// Bucketize places them, integer inputs compared as float32, the encoded modes as CategoryEncoding.
TEST_F(MoreLayersTest, DiscretizationBucketsAsKeras) {
  const Tensor x = make({2, 4}, {-1.5f, 1.0f, 3.4f, .5f, 0.0f, 3.0f, 1.3f, 0.0f});
  const Tensor bins = run("Discretization", R"({"bin_boundaries": [0.0, 1.0, 2.0]})", x);
  EXPECT_EQ(bins.dtype(), DType::kInt32);
  EXPECT_EQ(values<int32_t>(bins), (std::vector<int32_t>{0, 2, 3, 1, 1, 3, 2, 1}));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(values<int32_t>(run("Discretization", R"({"bin_boundaries": [0.0, 1.0]})",
                                make({6}, {-inf, inf, std::nanf(""), -0.0f, 1.0f, 0.99999994f}))),
            (std::vector<int32_t>{0, 2, 2, 1, 2, 1}));
  // 16777217 is 16777216 in float32, so it is below the boundary 16777218.
  EXPECT_EQ(values<int32_t>(run("Discretization", R"({"bin_boundaries": [16777217.0, 16777218.0]})",
                                testing::make_typed<int64_t>(Shape({3}), {16777216, 16777217, 16777218}))),
            (std::vector<int32_t>{1, 1, 2}));
  EXPECT_EQ(values<int32_t>(run("Discretization", R"({"bin_boundaries": []})", make({2}, {-3, 3}))),
            (std::vector<int32_t>{0, 0}));
  const std::string given = R"({"bin_boundaries": [0.0, 1.0, 2.0], "output_mode": ")";
  expect_near(run("Discretization", given + R"(one_hot"})", make({2, 1}, {0.5f, 2.5f})),
              {0, 1, 0, 0, 0, 0, 0, 1}, 0);
  expect_near(run("Discretization", given + R"(multi_hot"})", x), {1, 1, 1, 1, 0, 1, 1, 1}, 0);
  expect_near(run("Discretization", given + R"(count"})", x), {1, 1, 1, 1, 0, 2, 1, 1}, 0);
  expect_near(run("Discretization", given + R"(count"})", Tensor::scalar<float>(1.5f)), {0, 0, 1, 0}, 0);
  // Rank 3: Keras 3 encodes over axis 1, [1, 3, 2] bins to [1, 2, 4].
  const Tensor cube = make({1, 3, 2}, {0.1f, 0.6f, 0.6f, 0.6f, 0.6f, 2.0f});
  const Tensor counted =
      run("Discretization", R"({"bin_boundaries": [0.5, 1.0], "output_mode": "count"})", cube);
  EXPECT_EQ(counted.shape(), Shape({1, 2, 3}));
  expect_near(counted, {1, 2, 0, 0, 2, 1}, 0);
  expect_near(run("CategoryEncoding", R"({"num_tokens": 3})",
                  testing::make_typed<int64_t>(Shape({1, 3, 2}), {0, 1, 1, 1, 1, 2})),
              {1, 1, 0, 0, 1, 1}, 0);
  EXPECT_EQ(layer("CategoryEncoding", R"({"num_tokens": 3})")->compute_output_shape({{-1, 3, 2}})[0],
            (PartialShape{-1, 2, 3}));
  // Infinite boundaries (an adapt can give them) bucket and round-trip through the config.
  LayerPtr wide = layer("Discretization", R"({"bin_boundaries": [-Infinity, 0.0, Infinity]})");
  EXPECT_EQ(values<int32_t>((*wide)({make({4}, {-inf, -1, 1, inf})}, CallContext())[0]),
            (std::vector<int32_t>{1, 1, 2, 3}));
  EXPECT_EQ(create_layer("Discretization", Config::from_json(wide->get_config().to_json()))->get_config(),
            wide->get_config());
  LayerPtr hot = layer("Discretization", given + R"(one_hot"})");
  EXPECT_EQ(hot->compute_output_shape({{-1, 3}})[0], (PartialShape{-1, 3, 4}));
  EXPECT_EQ(layer("Discretization", R"({"num_bins": 5, "output_mode": "count"})")
                ->compute_output_shape({{-1, 3}})[0],
            (PartialShape{-1, 5}));
  EXPECT_EQ(layer("Discretization", R"({"bin_boundaries": [1.0]})")->compute_output_shape({{-1, 3}})[0],
            (PartialShape{-1, 3}));
  const Config c = layer("Discretization", R"({"bin_boundaries": [0.1, 2.0]})")->get_config();
  EXPECT_EQ(c.get_float_list("bin_boundaries"), (std::vector<double>{0.1, 2.0}));
  EXPECT_TRUE(c.is_null("num_bins"));
  EXPECT_EQ(c.get_string("output_mode"), "int");
  EXPECT_DOUBLE_EQ(c.get_float("epsilon"), 0.01);
}

// Discretization.adapt: Keras's docstring example, a summary with fewer points than num_bins (its
// points but the last are the boundaries), and two batches merged as Keras merges them (worked
// by hand from Keras's summarize / merge_summaries / compress_summary); the config after adapt
// holds both num_bins and the boundaries and rebuilds the same layer.
TEST_F(MoreLayersTest, DiscretizationAdaptsAsKeras) {
  const Tensor x = make({2, 4}, {-1.5f, 1.0f, 3.4f, .5f, 0.0f, 3.0f, 1.3f, 0.0f});
  LayerPtr l = layer("Discretization", R"({"num_bins": 4, "epsilon": 0.01})");
  expect_error([&] { (*l)({x}, CallContext()); }, Code::kFailedPrecondition, {"adapt()", "bin_boundaries"});
  adapt(*l, x);
  EXPECT_EQ(l->get_config().get_float_list("bin_boundaries"),
            (std::vector<double>{0.0, 0.5, static_cast<double>(1.3f)}));
  EXPECT_EQ(values<int32_t>((*l)({x}, CallContext())[0]), (std::vector<int32_t>{0, 2, 3, 2, 1, 3, 3, 1}));
  LayerPtr again = create_layer("Discretization", l->get_config());
  EXPECT_EQ(again->get_config(), l->get_config());
  EXPECT_EQ(values<int32_t>((*again)({x}, CallContext())[0]), (std::vector<int32_t>{0, 2, 3, 2, 1, 3, 3, 1}));

  LayerPtr few = layer("Discretization", R"({"num_bins": 5})");
  adapt(*few, testing::make_typed<int32_t>(Shape({2}), {2, 1}));
  EXPECT_EQ(few->get_config().get_float_list("bin_boundaries"), (std::vector<double>{1.0}));

  // Batch [3, 1, 2] sums up to (1.5, 2.25), (3, 2.25); with [6, 5, 4]'s summary the merged points
  // compress to (3, 4.5), (6, 4.5), whose median 3 is the one boundary of 2 bins.
  LayerPtr two = layer("Discretization", R"({"num_bins": 2, "epsilon": 0.5})");
  std::vector<Tensor> batches = {make({3}, {3, 1, 2}), make({3}, {6, 5, 4})};
  size_t next = 0;
  adapt(*two, [&](Tensor *out) {
    if (next == batches.size()) return false;
    *out = batches[next++];
    return true;
  });
  EXPECT_EQ(two->get_config().get_float_list("bin_boundaries"), (std::vector<double>{3.0}));
  EXPECT_EQ(two->get_config().get_int("num_bins"), 2);

  // An empty batch adds nothing; no values at all give no boundaries (one bin).
  LayerPtr none = layer("Discretization", R"({"num_bins": 3})");
  adapt(*none, make({0}, {}));
  EXPECT_EQ(none->get_config().get_float_list("bin_boundaries"), std::vector<double>{});

  // Summaries of -inf and +inf interpolate NaN: sorted last as NumPy sorts them, they leave the
  // boundary +inf here, as Keras; NaN boundaries are an error, where Keras would keep them.
  const float inf = std::numeric_limits<float>::infinity();
  LayerPtr infinite = layer("Discretization", R"({"num_bins": 2, "epsilon": 0.7})");
  std::vector<Tensor> wide = {make({2}, {-inf, inf}), make({4}, {-inf, -inf, -inf, 0})};
  next = 0;
  adapt(*infinite, [&](Tensor *out) {
    if (next == wide.size()) return false;
    *out = wide[next++];
    return true;
  });
  EXPECT_EQ(infinite->get_config().get_float_list("bin_boundaries"), std::vector<double>{inf});
  LayerPtr undefined = layer("Discretization", R"({"num_bins": 2})");
  expect_error(
      [&] {
        adapt(*undefined, make({3}, {-inf, inf, inf}));
      },
      Code::kInvalidArgument, {"between -inf and +inf"});
  EXPECT_TRUE(undefined->get_config().is_null("bin_boundaries"));

  // Errors leave the boundaries as they were.
  expect_error(
      [&] {
        adapt(*l, make({2}, {1, std::nanf("")}));
      },
      Code::kInvalidArgument, {"Discretization", "NaN at flat index 1"});
  EXPECT_EQ(l->get_config().get_float_list("bin_boundaries"),
            (std::vector<double>{0.0, 0.5, static_cast<double>(1.3f)}));
  expect_error([&] { adapt(*l, [](Tensor *) { return false; }); }, Code::kInvalidArgument, {"no batches"});
  expect_error([&] { adapt(*layer("Discretization", R"({"bin_boundaries": [1.0]})"), x); },
               Code::kFailedPrecondition, {"made with bin_boundaries", "num_bins"});
  expect_error([&] { adapt(*layer("Discretization", R"({"num_bins": 0})"), x); }, Code::kInvalidArgument,
               {"num_bins >= 1"});
  expect_error([&] { adapt(*layer("Dense", R"({"units": 1})"), x); }, Code::kInvalidArgument,
               {"no adapt", "Normalization, Discretization"});
  expect_error([] { layer("Discretization", "{}"); }, Code::kInvalidArgument, {"num_bins", "bin_boundaries"});
  expect_error([] { layer("Discretization", R"({"num_bins": -1})"); }, Code::kInvalidArgument, {">= 0"});
  expect_error([] { layer("Discretization", R"({"bin_boundaries": [2.0, 1.0]})"); }, Code::kInvalidArgument,
               {"sorted ascending", "2 before 1"});
  expect_error([] { layer("Discretization", R"({"bin_boundaries": [NaN]})"); }, Code::kInvalidArgument,
               {"NaN"});
  expect_error([] { layer("Discretization", R"({"num_bins": 2, "epsilon": 0})"); }, Code::kInvalidArgument,
               {"epsilon"});
  expect_error([] { layer("Discretization", R"({"num_bins": 2, "output_mode": "tf_idf"})"); },
               Code::kInvalidArgument, {"'tf_idf'"});
  expect_error([] { layer("Discretization", R"({"num_bins": 2, "sparse": true})"); }, Code::kInvalidArgument,
               {"sparse=True", "'int'"});
  expect_error([] { layer("Discretization", R"({"num_bins": 2, "output_mode": "count", "sparse": true})"); },
               Code::kUnimplemented, {"sparse"});
}

// CenterCrop: the centred window (offsets (H - h) // 2, (W - w) // 2) as float32, channels first
// too; an image smaller than the target is cropped to the target's aspect ratio and resized
// (bilinear, half-pixel centres: worked out by hand).
Tensor ints(const Shape &shape, const std::vector<int64_t> &v) {
  return testing::make_typed<int64_t>(shape, v);
}

// IntegerLookup: Keras's docstring examples (adapt, a given vocabulary, OOV indices, the encodings,
// tf_idf, invert, the mask), adapt's order and max_tokens, set_vocabulary's checks, the config.
TEST_F(MoreLayersTest, IntegerLookupAsKeras) {
  const Tensor data = ints({2, 3}, {12, 1138, 42, 42, 1000, 36});
  LayerPtr adapted = layer("IntegerLookup");
  adapt(*adapted, data);  // 42 twice; ties by token, descending
  EXPECT_EQ(values<int64_t>(get_vocabulary(*adapted, true)),
            (std::vector<int64_t>{-1, 42, 1138, 1000, 36, 12}));
  EXPECT_EQ(values<int64_t>(get_vocabulary(*adapted, false)), (std::vector<int64_t>{42, 1138, 1000, 36, 12}));
  EXPECT_EQ(values<int64_t>((*adapted)({data}, CallContext())[0]), (std::vector<int64_t>{5, 2, 1, 1, 3, 4}));
  EXPECT_FALSE(adapted->get_config().get_bool("has_input_vocabulary"));
  LayerPtr rebuilt = create_layer("IntegerLookup", adapted->get_config());
  EXPECT_EQ(rebuilt->get_config(), adapted->get_config());
  adapt(*rebuilt, ints({1}, {7}));  // a learned vocabulary may be learned again
  EXPECT_EQ(values<int64_t>(get_vocabulary(*rebuilt, true)), (std::vector<int64_t>{-1, 7}));

  const std::string vocab = R"("vocabulary": [12, 36, 1138, 42])";
  EXPECT_EQ(values<int64_t>(run("IntegerLookup", "{" + vocab + "}", data)),
            (std::vector<int64_t>{1, 3, 4, 4, 0, 2}));
  EXPECT_EQ(run("IntegerLookup", "{" + vocab + "}", data).dtype(), DType::kInt64);
  EXPECT_EQ(values<int64_t>(run("IntegerLookup", "{" + vocab + R"(, "num_oov_indices": 2})",
                                ints({2, 3}, {12, 1138, 42, 37, 1000, 36}))),
            (std::vector<int64_t>{2, 4, 5, 1, 0, 3}));  // floormod(37, 2) = 1, floormod(1000, 2) = 0
  EXPECT_EQ(
      values<int64_t>(run("IntegerLookup", "{" + vocab + R"(, "num_oov_indices": 3})", ints({2}, {-7, -9}))),
      (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(values<int64_t>(run("IntegerLookup", "{" + vocab + R"(, "mask_token": 0})",
                                ints({2, 3}, {12, 1138, 42, 42, 1000, 0}))),
            (std::vector<int64_t>{2, 4, 5, 5, 1, 0}));
  EXPECT_EQ(values<int64_t>(
                run("IntegerLookup", "{" + vocab + R"(, "invert": true})", ints({2, 3}, {1, 3, 4, 4, 0, 2}))),
            (std::vector<int64_t>{12, 1138, 42, 42, -1, 36}));
  EXPECT_EQ(values<int64_t>(run("IntegerLookup", "{" + vocab + R"(, "invert": true, "mask_token": 0})",
                                ints({3}, {0, 1, 2}))),
            (std::vector<int64_t>{0, -1, 12}));

  const Tensor one_hot =
      run("IntegerLookup", "{" + vocab + R"(, "output_mode": "one_hot"})", ints({5}, {12, 36, 1138, 42, 7}));
  EXPECT_EQ(one_hot.shape(), Shape({5, 5}));
  EXPECT_EQ(one_hot.dtype(), DType::kFloat32);
  expect_near(one_hot, {0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}, 0);
  expect_near(run("IntegerLookup", "{" + vocab + R"(, "output_mode": "multi_hot"})", data),
              {0, 1, 0, 1, 1, 1, 0, 1, 0, 1}, 0);
  expect_near(
      run("IntegerLookup", "{" + vocab + R"(, "output_mode": "count"})", ints({1, 4}, {42, 42, 7, 12})),
      {1, 1, 0, 0, 2}, 0);
  const Tensor padded = run("IntegerLookup", "{" + vocab + R"(, "output_mode": "multi_hot", "max_tokens": 8,
                            "pad_to_max_tokens": true})",
                            data);
  EXPECT_EQ(padded.shape(), Shape({2, 8}));
  // The mask token is dropped from the encodings.
  expect_near(run("IntegerLookup", "{" + vocab + R"(, "output_mode": "count", "mask_token": 0})",
                  ints({1, 3}, {0, 0, 12})),
              {0, 1, 0, 0, 0}, 0);
  const std::string tf_idf =
      "{" + vocab + R"(, "output_mode": "tf_idf", "idf_weights": [0.25, 0.75, 0.6, 0.4]})";
  expect_near(run("IntegerLookup", tf_idf, ints({2, 4}, {12, 1138, 42, 42, 42, 7, 36, 7})),
              {0, 0.25f, 0, 0.6f, 0.8f, 1.0f, 0, 0.75f, 0, 0.4f}, 1e-6);  // the OOV weight is the mean, 0.5

  // tf_idf learned: log(1 + 3 / (1 + documents with the token)); the OOV slot gets the mean.
  LayerPtr idf = layer("IntegerLookup", R"({"output_mode": "tf_idf"})");
  adapt(*idf, ints({3, 2}, {5, 5, 5, 6, 7, 6}));
  EXPECT_EQ(values<int64_t>(get_vocabulary(*idf, true)), (std::vector<int64_t>{-1, 5, 6, 7}));
  const float w5 = float(std::log(1.0 + 3.0 / 3.0)), w6 = w5, w7 = float(std::log(1.0 + 3.0 / 2.0));
  expect_near((*idf)({ints({1, 3}, {5, 5, 9})}, CallContext())[0],
              {float((double(w5) + w6 + w7) / 3), 2 * w5, 0, 0}, 1e-6);
  EXPECT_EQ(create_layer("IntegerLookup", idf->get_config())->get_config(), idf->get_config());

  // max_tokens counts the OOV index; the mask and OOV tokens are never learned; a 1-D array is a
  // column of samples (one document each).
  LayerPtr capped = layer("IntegerLookup", R"({"max_tokens": 3, "mask_token": 0})");
  adapt(*capped, ints({8}, {0, 0, 0, -1, -1, 4, 4, 3}));
  EXPECT_EQ(values<int64_t>(get_vocabulary(*capped, true)), (std::vector<int64_t>{0, -1, 4}));

  // set_vocabulary: special tokens first are accepted, elsewhere refused; sizes are checked.
  LayerPtr l = layer("IntegerLookup", R"({"mask_token": 0})");
  set_vocabulary(*l, ints({4}, {0, -1, 8, 9}));
  EXPECT_EQ(values<int64_t>(get_vocabulary(*l, true)), (std::vector<int64_t>{0, -1, 8, 9}));
  expect_error(
      [&] {
        set_vocabulary(*l, ints({3}, {8, 0, 9}));
      },
      Code::kInvalidArgument, {"mask token 0", "[0, -1]"});
  expect_error([&] { set_vocabulary(*l, ints({3}, {8, 9, 8})); }, Code::kInvalidArgument, {"repeats", "[8]"});
  expect_error([&] { set_vocabulary(*l, ints({0}, {})); }, Code::kInvalidArgument, {"empty vocabulary"});
  expect_error([&] { set_vocabulary(*l, ints({1}, {3}), make({1}, {0.5f})); }, Code::kInvalidArgument,
               {"idf_weights", "'tf_idf'"});
  EXPECT_EQ(values<int64_t>(get_vocabulary(*l, true)), (std::vector<int64_t>{0, -1, 8, 9}));  // unchanged
  LayerPtr hot = layer("IntegerLookup", "{" + vocab + R"(, "output_mode": "multi_hot"})");
  expect_error(
      [&] {
        set_vocabulary(*hot, ints({2}, {1, 2}));
      },
      Code::kFailedPrecondition, {"cannot change", "5", "3"});
  set_vocabulary(*hot, ints({4}, {4, 3, 2, 1}));  // the same size is fine
  LayerPtr small = layer("IntegerLookup", R"({"max_tokens": 3})");
  expect_error(
      [&] {
        set_vocabulary(*small, ints({3}, {1, 2, 3}));
      },
      Code::kInvalidArgument, {"4", "max_tokens 3"});

  // Errors: OOV values without OOV indices, bad tokens, bad configs, adapt of a given vocabulary.
  expect_error(
      [&] {
        run("IntegerLookup", "{" + vocab + R"(, "num_oov_indices": 0})", ints({2}, {12, 5}));
      },
      Code::kInvalidArgument, {"num_oov_indices=0", "[5]"});
  expect_error(
      [&] {
        run("IntegerLookup", "{" + vocab + "}", make({2}, {1.0f, NAN}));
      },
      Code::kInvalidArgument, {"nan", "flat index 1"});
  EXPECT_EQ(values<int64_t>(run("IntegerLookup", "{" + vocab + "}", make({2}, {36.9f, -0.5f}))),
            (std::vector<int64_t>{2, 0}));  // floats truncate, as tf.cast
  expect_error([&] { layer("IntegerLookup", R"({"max_tokens": 1})"); }, Code::kInvalidArgument,
               {"max_tokens"});
  expect_error([&] { layer("IntegerLookup", R"({"output_mode": "one_hot", "invert": true})"); },
               Code::kInvalidArgument, {"invert"});
  expect_error([&] { layer("IntegerLookup", R"({"output_mode": "tf_idf", "vocabulary": [1, 2]})"); },
               Code::kInvalidArgument, {"idf_weights"});
  expect_error([&] { layer("IntegerLookup", R"({"pad_to_max_tokens": true})"); }, Code::kInvalidArgument,
               {"max_tokens"});
  LayerPtr fixed = layer("IntegerLookup", "{" + vocab + "}");
  expect_error([&] { adapt(*fixed, data); }, Code::kFailedPrecondition, {"made with a vocabulary"});
  LayerPtr unset = layer("IntegerLookup", R"({"output_mode": "multi_hot"})");
  expect_error([&] { (*unset)({data}, CallContext()); }, Code::kFailedPrecondition, {"adapt()"});
  expect_error([&] { get_vocabulary(*layer("Dense", R"({"units": 2})"), true); }, Code::kInvalidArgument,
               {"no vocabulary"});
}

// TF's string hashes against the values Keras's and TF's docstrings and tests give: FarmHash's
// Fingerprint64 (to_hash_bucket_fast) and HighwayHash's SipHash keyed by a salt (to_hash_bucket_strong).
TEST_F(MoreLayersTest, StringHashesAsTensorFlow) {
  auto buckets = [](std::vector<std::string_view> words, int64_t n,
                    std::optional<std::array<uint64_t, 2>> key = std::nullopt) {
    std::vector<int64_t> out;
    for (std::string_view w : words) out.push_back(hash_bucket(w, n, key));
    return out;
  };
  const std::vector<std::string_view> letters = {"A", "B", "C", "D", "E"};
  const std::vector<std::string_view> wire = {"omar", "stringer", "marlo", "wire", "skywalker"};
  EXPECT_EQ(buckets(letters, 3), (std::vector<int64_t>{1, 0, 1, 1, 2}));
  EXPECT_EQ(buckets({"Hello", "TensorFlow", "2.x"}, 3), (std::vector<int64_t>{0, 2, 2}));
  EXPECT_EQ(buckets(wire, 2), (std::vector<int64_t>{0, 0, 1, 0, 0}));
  EXPECT_EQ(buckets(letters, 3, std::array<uint64_t, 2>{133, 137}), (std::vector<int64_t>{1, 2, 1, 0, 2}));
  EXPECT_EQ(buckets(letters, 3, std::array<uint64_t, 2>{133, 133}), (std::vector<int64_t>{0, 0, 2, 1, 0}));
  EXPECT_EQ(buckets(wire, 2, std::array<uint64_t, 2>{133, 137}), (std::vector<int64_t>{0, 1, 0, 1, 0}));
  EXPECT_EQ(buckets(wire, 2, std::array<uint64_t, 2>{211, 137}), (std::vector<int64_t>{1, 0, 1, 0, 1}));
  EXPECT_EQ(buckets({"0", "1", "2", "3", "4"}, 3), (std::vector<int64_t>{1, 0, 1, 0, 2}));
}

// Hashing: Keras's tests (integers as their digits, FarmHash and SipHash), the mask bin, the
// encodings, floats and bools as TF converts them, the config, errors.
TEST_F(MoreLayersTest, HashingAsKeras) {
  const Tensor x = ints({5, 1}, {0, 1, 2, 3, 4});
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 3})", x)), (std::vector<int64_t>{1, 0, 1, 0, 2}));
  EXPECT_EQ(run("Hashing", R"({"num_bins": 3})", x).dtype(), DType::kInt64);
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 3, "salt": [133, 137]})", x)),
            (std::vector<int64_t>{1, 1, 2, 0, 1}));
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 1})", x)), std::vector<int64_t>(5, 0));
  // the mask is bin 0, the others hash into the num_bins - 1 bins after it
  const std::vector<int64_t> masked =
      values<int64_t>(run("Hashing", R"({"num_bins": 3, "mask_value": 2})", x));
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_EQ(masked[size_t(i)], i == 2 ? 0 : 1 + hash_bucket(std::to_string(i), 2, std::nullopt)) << i;
  expect_near(run("Hashing", R"({"num_bins": 3, "output_mode": "one_hot"})", x),
              {0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1}, 0);
  expect_near(run("Hashing", R"({"num_bins": 3, "output_mode": "multi_hot"})", ints({1, 5}, {0, 1, 2, 3, 4})),
              {1, 1, 1}, 0);
  expect_near(run("Hashing", R"({"num_bins": 3, "output_mode": "count"})", ints({1, 5}, {0, 1, 2, 3, 4})),
              {2, 2, 1}, 0);
  // floats are truncated to integers first; bools are "true" / "false"; negatives keep their sign
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 3})", make({2}, {2.9f, -0.5f}))),
            (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 1000})", testing::make_bool({2}, {1, 0}))),
            (std::vector<int64_t>{hash_bucket("true", 1000, std::nullopt),
                                  hash_bucket("false", 1000, std::nullopt)}));
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 1000})", ints({1}, {-12}))),
            (std::vector<int64_t>{hash_bucket("-12", 1000, std::nullopt)}));
  LayerPtr salted = layer("Hashing", R"({"num_bins": 4, "salt": 7, "mask_value": 1.5})");
  EXPECT_EQ(salted->get_config().get_int_list("salt"), (std::vector<int64_t>{7, 7}));
  EXPECT_EQ(create_layer("Hashing", salted->get_config())->get_config(), salted->get_config());
  EXPECT_EQ(values<int64_t>((*salted)({make({2}, {1.5f, 1.0f})}, CallContext())[0]),
            (std::vector<int64_t>{0, 1 + hash_bucket("1", 3, std::array<uint64_t, 2>{7, 7})}));
  // the mask converted to the inputs' dtype, as TF's tf.equal converts it: 0.1 as float32, True as 1
  // for numbers; masked values are never cast, so a masked 3.4e38 is bin 0
  EXPECT_EQ(
      values<int64_t>(run("Hashing", R"({"num_bins": 5, "mask_value": 0.1})", make({2}, {0.1f, 0.2f})))[0],
      0);
  EXPECT_EQ(values<int64_t>(run("Hashing", R"({"num_bins": 5, "mask_value": true})", ints({2}, {1, 2})))[0],
            0);
  EXPECT_EQ(values<int64_t>(
                run("Hashing", R"({"num_bins": 5, "mask_value": true})", testing::make_bool({2}, {1, 0})))[0],
            0);
  EXPECT_EQ(values<int64_t>(
                run("Hashing", R"({"num_bins": 5, "mask_value": 3.4e38})", make({2}, {3.4e38f, 1.0f})))[0],
            0);
  expect_error([&] { run("Hashing", R"({"num_bins": 5, "mask_value": 2.0})", ints({1}, {2})); },
               Code::kInvalidArgument, {"mask_value 2.0", "int64"});
  expect_error(
      [&] {
        run("Hashing", R"({"num_bins": 5, "mask_value": 300})", testing::make_typed<uint8_t>({1}, {2}));
      },
      Code::kInvalidArgument, {"mask_value 300", "[0, 255]"});
  // one_hot drops a last axis of 1 twice, as Keras's call and encoding each do
  LayerPtr hot = layer("Hashing", R"({"num_bins": 5, "output_mode": "one_hot"})");
  EXPECT_EQ((*hot)({make({3, 1, 1}, {0, 0, 0})}, CallContext())[0].shape(), Shape({3, 5}));
  const std::vector<PartialShape> hot_shape = {PartialShape{kUnknownDim, 5}};
  EXPECT_EQ(hot->compute_output_shape({{kUnknownDim, 1, 1}}), hot_shape);
  // Keras's int-mode dtype: "int64" (the default) or "int32", as a name or a DTypePolicy
  EXPECT_EQ(layer("Hashing", R"({"num_bins": 3})")->get_config().get_string("dtype"), "int64");
  LayerPtr narrow =
      layer("Hashing", R"({"num_bins": 3, "dtype": {"module": "keras", "class_name": "DTypePolicy",
                                       "config": {"name": "int32"}, "registered_name": null}})");
  EXPECT_EQ((*narrow)({x}, CallContext())[0].dtype(), DType::kInt32);
  EXPECT_EQ(create_layer("Hashing", narrow->get_config())->get_config(), narrow->get_config());
  expect_error([&] { layer("Hashing", R"({"num_bins": 3, "dtype": "float32"})"); }, Code::kInvalidArgument,
               {"dtype", "int32"});
  expect_error([&] { layer("Hashing", R"({"num_bins": 3, "output_mode": null})"); }, Code::kInvalidArgument,
               {"output_mode", "None"});
  expect_error([&] { layer("Hashing", R"({"num_bins": 0})"); }, Code::kInvalidArgument,
               {"num_bins", "positive"});
  expect_error([&] { layer("Hashing", "{}"); }, Code::kInvalidArgument, {"num_bins"});
  expect_error([&] { layer("Hashing", R"({"num_bins": 2, "salt": [1, 2, 3]})"); }, Code::kInvalidArgument,
               {"salt", "[1,2,3]"});
  expect_error([&] { layer("Hashing", R"({"num_bins": 2, "mask_value": ""})"); }, Code::kInvalidArgument,
               {"mask_value", "string"});
  expect_error([&] { layer("Hashing", R"({"num_bins": 2, "output_mode": "tf_idf"})"); },
               Code::kInvalidArgument, {"output_mode"});
  expect_error([&] { layer("Hashing", R"({"num_bins": 2, "output_mode": "count", "sparse": true})"); },
               Code::kUnimplemented, {"sparse"});
  expect_error([&] { run("Hashing", R"({"num_bins": 2})", make({1}, {NAN})); }, Code::kInvalidArgument,
               {"nan", "flat index 0"});
}

// HashedCrossing: TF's sparse.cross_hashed (FingerprintCat64 from 0xDECAFCAFFE over each feature's
// value, a string's Fingerprint64) against Keras's test of ["A", "B", ...] x [101, 101, ...]; the layer
// on integer features, its shapes, dtypes and errors.
TEST_F(MoreLayersTest, HashedCrossingAsKeras) {
  auto cross = [](std::vector<uint64_t> features, int64_t bins) {
    uint64_t h = 0xDECAFCAFFEull;
    for (uint64_t f : features) h = fingerprint_cat64(h, f);
    return static_cast<int64_t>(h % static_cast<uint64_t>(bins));
  };
  const std::vector<std::string_view> letters = {"A", "B", "A", "B", "A"};
  const std::vector<uint64_t> numbers = {101, 101, 101, 102, 102};
  std::vector<int64_t> keras;
  for (size_t i = 0; i < 5; ++i) keras.push_back(cross({fingerprint64(letters[i]), numbers[i]}, 5));
  EXPECT_EQ(keras, (std::vector<int64_t>{1, 4, 1, 1, 3}));

  const Tensor a = ints({4}, {1, 2, -3, 1}), b = ints({4}, {4, 5, 6, 4});
  LayerPtr l = layer("HashedCrossing", R"({"num_bins": 7})");
  const Tensor y = (*l)({a, b}, CallContext())[0];
  EXPECT_EQ(y.dtype(), DType::kInt64);
  EXPECT_EQ(y.shape(), Shape({4}));
  const std::vector<int64_t> got = values<int64_t>(y);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(got[i], cross({uint64_t(values<int64_t>(a)[i]), uint64_t(values<int64_t>(b)[i])}, 7)) << i;
  EXPECT_EQ(got[0], got[3]);  // the same pair, the same bin
  // three features, int32 inputs as int64 values, (batch, 1) shapes, a scalar
  const Tensor c = testing::make_typed<int32_t>({4, 1}, {9, 9, 9, 9});
  const std::vector<int64_t> three =
      values<int64_t>((*l)({ops::reshape(a, {4, 1}), ops::reshape(b, {4, 1}), c}, CallContext())[0]);
  EXPECT_EQ(three[1], cross({2, 5, 9}, 7));
  EXPECT_EQ((*l)({ints({}, {1}), ints({}, {4})}, CallContext())[0].shape(), Shape({}));
  // one_hot rows; Keras's int-mode dtype
  const Tensor hot = run_multi("HashedCrossing", R"({"num_bins": 7, "output_mode": "one_hot"})", {a, b});
  EXPECT_EQ(hot.shape(), Shape({4, 7}));
  EXPECT_EQ(values<float>(hot)[size_t(got[0])], 1.0f);
  EXPECT_EQ(run_multi("HashedCrossing", R"({"num_bins": 7, "dtype": "int32"})", {a, b}).dtype(),
            DType::kInt32);
  EXPECT_EQ(l->get_config().get_string("dtype"), "int64");
  EXPECT_EQ(create_layer("HashedCrossing", l->get_config())->get_config(), l->get_config());
  const std::vector<PartialShape> want = {PartialShape{kUnknownDim, 7}};
  LayerPtr hot_layer = layer("HashedCrossing", R"({"num_bins": 7, "output_mode": "one_hot"})");
  EXPECT_EQ(hot_layer->compute_output_shape({{kUnknownDim, 1}, {kUnknownDim, 1}}), want);
  // a scalar pair is one sample: one one-hot row, as Keras's encoding uprank it
  const std::vector<PartialShape> one_row = {PartialShape{1, 7}};
  EXPECT_EQ(hot_layer->compute_output_shape({{}, {}}), one_row);
  EXPECT_EQ((*hot_layer)({ints({}, {1}), ints({}, {4})}, CallContext())[0].shape(), Shape({1, 7}));
  // errors
  expect_error([&] { (*l)({a}, CallContext()); }, Code::kInvalidArgument, {"at least two features"});
  expect_error(
      [&] {
        (*l)({a, ints({3}, {1, 2, 3})}, CallContext());
      },
      Code::kInvalidArgument, {"one shape"});
  expect_error(
      [&] {
        (*l)({ints({2, 2}, {1, 2, 3, 4}), ints({2, 2}, {1, 2, 3, 4})}, CallContext());
      },
      Code::kInvalidArgument, {"(batch_size, 1)"});
  expect_error(
      [&] {
        (*l)({a, make({4}, {1, 2, 3, 4})}, CallContext());
      },
      Code::kInvalidArgument, {"feature 1", "integer features"});
  expect_error([&] { layer("HashedCrossing", R"({"num_bins": 0})"); }, Code::kInvalidArgument, {"positive"});
  expect_error([&] { layer("HashedCrossing", R"({"num_bins": 2, "output_mode": "count"})"); },
               Code::kInvalidArgument, {"output_mode"});
}

// IntegerLookup's oov_method="farmhash": OOV tokens in TF's hash bucket of their digits (Keras's
// test values), keyed by the salt when given.
TEST_F(MoreLayersTest, IntegerLookupFarmhashBuckets) {
  EXPECT_EQ(
      values<int64_t>(run("IntegerLookup",
                          R"({"vocabulary": [10, 20, 30], "num_oov_indices": 4, "oov_method": "farmhash"})",
                          ints({5}, {100, 200, 300, 400, 20}))),
      (std::vector<int64_t>{3, 1, 3, 1, 5}));
  const std::vector<int64_t> salted = values<int64_t>(
      run("IntegerLookup",
          R"({"vocabulary": [10], "num_oov_indices": 4, "oov_method": "farmhash", "salt": [137, 42],
                         "mask_token": 0})",
          ints({3}, {100, 0, 10})));
  EXPECT_EQ(salted,
            (std::vector<int64_t>{1 + hash_bucket("100", 4, std::array<uint64_t, 2>{137, 42}), 0, 5}));
  expect_error([&] { layer("IntegerLookup", R"({"salt": 3})"); }, Code::kInvalidArgument,
               {"salt", "farmhash"});
  expect_error([&] { layer("IntegerLookup", R"({"oov_method": "md5"})"); }, Code::kInvalidArgument,
               {"oov_method"});
  expect_error([&] { layer("IntegerLookup", R"({"num_oov_indices": 3, "max_tokens": 3})"); },
               Code::kInvalidArgument, {"max_tokens (3)", "(3)"});
  expect_error([&] { layer("IntegerLookup", R"({"output_mode": null})"); }, Code::kInvalidArgument,
               {"output_mode", "None"});
  expect_error([&] { layer("IntegerLookup", R"({"vocabulary": 5})"); }, Code::kInvalidArgument,
               {"vocabulary"});
}

TEST_F(MoreLayersTest, CenterCropAsKeras) {
  std::vector<uint8_t> px(2 * 5 * 6);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i);
  const Tensor images = testing::make_typed<uint8_t>(Shape({2, 5, 6, 1}), px);
  const Tensor y = run("CenterCrop", R"({"height": 3, "width": 4})", images);
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(y.shape(), Shape({2, 3, 4, 1}));
  std::vector<float> want;
  for (int n = 0; n < 2; ++n)
    for (int r = 1; r < 4; ++r)
      for (int c = 1; c < 5; ++c) want.push_back(static_cast<float>(n * 30 + r * 6 + c));
  expect_near(y, want, 0);
  const Tensor first = ops::transpose(ops::cast(images, DType::kFloat32), {0, 3, 1, 2});
  const Tensor yf = run("CenterCrop", R"({"height": 3, "width": 4, "data_format": "channels_first"})", first);
  EXPECT_EQ(yf.shape(), Shape({2, 1, 3, 4}));
  expect_near(yf, want, 0);
  expect_near(run("CenterCrop", R"({"height": 1, "width": 1})", make({2, 2, 1}, {1, 2, 3, 4})), {1}, 0);

  // [[0, 1, 2, 3], [4, 5, 6, 7]] to 4 x 4: the centred 2 x 2 box [[1, 2], [5, 6]], resized.
  const Tensor small =
      run("CenterCrop", R"({"height": 4, "width": 4})", make({1, 2, 4, 1}, {0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(small.shape(), Shape({1, 4, 4, 1}));
  expect_near(small, {1, 1.25f, 1.75f, 2, 2, 2.25f, 2.75f, 3, 4, 4.25f, 4.75f, 5, 5, 5.25f, 5.75f, 6}, 1e-6f);

  LayerPtr l = layer("CenterCrop", R"({"height": 3, "width": 4})");
  EXPECT_EQ(l->compute_output_shape({{-1, 8, 9, 3}})[0], (PartialShape{-1, 3, 4, 3}));
  EXPECT_EQ(l->get_config().get_string("data_format"), "channels_last");
  expect_error(
      [&] {
        (*l)({make({4, 5}, std::vector<float>(20))}, CallContext());
      },
      Code::kInvalidArgument, {"CenterCrop", "rank 4", "[4, 5]"});
  expect_error(
      [&] {
        (*l)({testing::make_bool(Shape({1, 4, 5, 1}), std::vector<int>(20))}, CallContext());
      },
      Code::kInvalidArgument, {"CenterCrop", "bool"});
  expect_error([&] { (*l)({make({1, 0, 5, 1}, {})}, CallContext()); }, Code::kInvalidArgument, {"empty"});
  expect_error([] { layer("CenterCrop", R"({"height": 0, "width": 2})"); }, Code::kInvalidArgument,
               {"positive"});
  expect_error([] { layer("CenterCrop", R"({"height": 2})"); }, Code::kInvalidArgument, {"width"});
}

// The random image layers: outside training the images as float32; in training each output image
// is one of the allowed transforms of its input (checked against all of them), the random choices
// vary across images and calls and stay in their ranges, and errors name the layer.
TEST_F(MoreLayersTest, RandomImageLayers) {
  const int64_t n = 64;
  std::vector<float> px;
  for (int64_t i = 0; i < n * 3 * 4 * 2; ++i) px.push_back(static_cast<float>((i * 37) % 101));
  const Tensor x = make({n, 3, 4, 2}, px);
  CallContext train;
  train.training = true;
  const auto image = [&](const Tensor &t, int64_t i) {
    return values<float>(ops::slice(t, {i, 0, 0, 0}, {1, -1, -1, -1}));
  };
  const auto reversed = [](const Tensor &t, int64_t axis) {
    return ops::gather(t, ops::range_int64(t.shape()[int(axis)] - 1, -1, -1), axis);
  };

  LayerPtr flip = layer("RandomFlip", R"({"seed": 3})");
  EXPECT_EQ(values<float>((*flip)({x}, CallContext())[0]), px);
  const Tensor h = reversed(x, 2), v = reversed(x, 1), hv = reversed(h, 1);
  std::vector<int> seen(4, 0);
  for (int call = 0; call < 2; ++call) {
    const Tensor y = (*flip)({x}, train)[0];
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<float> got = image(y, i);
      int which = -1;
      for (int k = 0; k < 4; ++k)
        if (got == image(std::vector<Tensor>{x, h, v, hv}[size_t(k)], i)) which = k;
      ASSERT_GE(which, 0) << "image " << i << " is no flip of its input";
      ++seen[size_t(which)];
    }
  }
  for (int k = 0; k < 4; ++k) EXPECT_GT(seen[size_t(k)], 10) << "flip " << k;
  const Tensor only_h = (*layer("RandomFlip", R"({"mode": "horizontal"})"))({x}, train)[0];
  for (int64_t i = 0; i < n; ++i)
    EXPECT_TRUE(image(only_h, i) == image(x, i) || image(only_h, i) == image(h, i));

  // RandomCrop: one random window for the batch in training; the centred, resized window otherwise.
  LayerPtr crop = layer("RandomCrop", R"({"height": 2, "width": 2})");
  std::vector<int> offsets(6, 0);
  for (int call = 0; call < 100; ++call) {
    const Tensor y = (*crop)({x}, train)[0];
    ASSERT_EQ(y.shape(), Shape({n, 2, 2, 2}));
    int found = -1;
    for (int64_t a = 0; a <= 1; ++a)
      for (int64_t b = 0; b <= 2; ++b)
        if (values<float>(y) == values<float>(ops::slice(x, {0, a, b, 0}, {n, 2, 2, 2})))
          found = int(a * 3 + b);
    ASSERT_GE(found, 0) << "no window of the batch";
    ++offsets[size_t(found)];
  }
  for (int k = 0; k < 6; ++k) EXPECT_GT(offsets[size_t(k)], 0) << "window " << k;
  // Outside training: the largest centred 3 x 3 box of 3 x 4 images, resized to 2 x 2.
  const Tensor box = ops::slice(x, {0, 0, 0, 0}, {n, 3, 3, 2});
  expect_near((*crop)({x}, CallContext())[0],
              values<float>(ops::resize(box, 2, 2, ops::ResizeMethod::kBilinear)), 0);

  // RandomContrast: per image, (x - mean) * c + mean with c in [0.5, 1.5], clipped to value_range.
  LayerPtr contrast = layer("RandomContrast", R"({"factor": [0.5, 0.2]})");
  EXPECT_EQ(contrast->get_config().get_float_list("factor"), (std::vector<double>{0.2, 0.5}));
  LayerPtr contrast2 = layer("RandomContrast", R"({"factor": 0.5, "value_range": [-1000, 1000]})");
  const Tensor y = (*contrast2)({x}, train)[0];
  const Tensor mean = ops::mean(x, {1, 2}, true);
  const std::vector<float> dx = values<float>(ops::sub(x, mean)), dy = values<float>(ops::sub(y, mean));
  double lo = 9, hi = -9;
  for (int64_t i = 0; i < n; ++i) {
    double c = std::nan("");
    for (int64_t k = i * 24; k < (i + 1) * 24; ++k) {
      if (std::abs(dx[size_t(k)]) < 1) continue;
      const double ck = dy[size_t(k)] / dx[size_t(k)];
      if (std::isnan(c)) c = ck;
      EXPECT_NEAR(ck, c, 1e-4) << "image " << i;
    }
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  EXPECT_GE(lo, 0.5);
  EXPECT_LE(hi, 1.5);
  EXPECT_LT(lo, 0.8);
  EXPECT_GT(hi, 1.2);
  EXPECT_EQ(values<float>((*contrast)({x}, CallContext())[0]), px);

  // RandomBrightness: per image one delta in [-0.1, 0.1] * 255 added, clipped to [0, 255].
  const Tensor b = (*layer("RandomBrightness", R"({"factor": 0.1})"))({x}, train)[0];
  const std::vector<float> bv = values<float>(b);
  std::vector<double> deltas;
  for (int64_t i = 0; i < n; ++i) {
    double d = std::nan("");
    for (int64_t k = i * 24; k < (i + 1) * 24; ++k) {
      const float got = bv[size_t(k)], in = px[size_t(k)];
      EXPECT_GE(got, 0.0f);
      EXPECT_LE(got, 255.0f);
      if (got <= 0.0f || got >= 255.0f) continue;
      if (std::isnan(d)) d = got - in;
      EXPECT_NEAR(got - in, d, 1e-4);
    }
    EXPECT_LE(std::abs(d), 25.5 + 1e-4);
    deltas.push_back(d);
  }
  EXPECT_GT(*std::max_element(deltas.begin(), deltas.end()) - *std::min_element(deltas.begin(), deltas.end()),
            10);

  // One image, channels first, integers: float32 out.
  const Tensor u8 = testing::make_typed<uint8_t>(Shape({1, 2, 3}), {1, 2, 3, 4, 5, 6});
  const Tensor one =
      (*layer("RandomFlip", R"({"mode": "vertical", "data_format": "channels_first"})"))({u8}, train)[0];
  EXPECT_EQ(one.dtype(), DType::kFloat32);
  EXPECT_TRUE(values<float>(one) == std::vector<float>({1, 2, 3, 4, 5, 6}) ||
              values<float>(one) == std::vector<float>({4, 5, 6, 1, 2, 3}));
  EXPECT_EQ(layer("RandomCrop", R"({"height": 5, "width": 7})")->compute_output_shape({{-1, 9, 9, 3}})[0],
            (PartialShape{-1, 5, 7, 3}));

  expect_error([] { layer("RandomFlip", R"({"mode": "diagonal"})"); }, Code::kInvalidArgument,
               {"'diagonal'"});
  expect_error([] { layer("RandomContrast", R"({"factor": 1.5})"); }, Code::kInvalidArgument,
               {"RandomContrast", "[0, 1]", "1.5"});
  expect_error([] { layer("RandomContrast", "{}"); }, Code::kInvalidArgument, {"factor", "required"});
  expect_error([] { layer("RandomBrightness", R"({"factor": [-2, 0.5]})"); }, Code::kInvalidArgument,
               {"RandomBrightness", "[-1, 1]"});
  expect_error([] { layer("RandomBrightness", R"({"factor": 0.2, "value_range": [1, 0]})"); },
               Code::kInvalidArgument, {"value_range", "low <= high"});
  expect_error([] { layer("RandomCrop", R"({"height": 0, "width": 2})"); }, Code::kInvalidArgument,
               {"positive"});
  expect_error(
      [&] {
        (*flip)({make({3, 4}, std::vector<float>(12))}, train);
      },
      Code::kInvalidArgument, {"RandomFlip", "rank 4"});
}

// AlphaDropout: outside training its input; in training each value is a * x + b (kept) or
// a * alpha' + b (dropped), alpha' = -alpha * scale of SELU, dropped at the rate asked, the mask
// broadcast along noise_shape's 1s, and a standard normal input keeps mean 0 and variance 1.
TEST_F(MoreLayersTest, AlphaDropoutAsKeras) {
  const double rate = 0.2, alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946;
  const double a = std::pow((1 - rate) * (1 + rate * alpha_p * alpha_p), -0.5), b = -a * alpha_p * rate;
  const Tensor x = ops::random_normal(Shape({200, 100}), 0, 1, 3);
  EXPECT_EQ(values(run("AlphaDropout", R"({"rate": 0.2})", x)), values(x));
  const std::vector<float> xv = values(x),
                           y = values(run("AlphaDropout", R"({"rate": 0.2, "seed": 1})", x, true));
  int64_t dropped = 0;
  double mean = 0, sq = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const float kept = static_cast<float>(a * xv[i] + b), gone = static_cast<float>(a * alpha_p + b);
    const bool is_kept = std::fabs(y[i] - kept) <= 1e-5f * (1 + std::fabs(kept));
    const bool is_gone = std::fabs(y[i] - gone) <= 1e-5f;
    ASSERT_TRUE(is_kept || is_gone) << i;
    dropped += is_gone && !is_kept;
    mean += y[i];
    sq += double(y[i]) * y[i];
  }
  const double n = static_cast<double>(y.size());
  EXPECT_NEAR(static_cast<double>(dropped) / n, rate, 0.01);
  EXPECT_NEAR(mean / n, 0.0, 0.02);
  EXPECT_NEAR(sq / n - (mean / n) * (mean / n), 1.0, 0.03);
  // noise_shape [None, 1]: one draw per row.
  const std::vector<float> rows = values(
      run("AlphaDropout", R"({"rate": 0.5, "noise_shape": [null, 1]})", ops::ones(Shape({50, 4})), true));
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i], rows[i / 4 * 4]) << i;
  const Config c = layer("AlphaDropout", R"({"rate": 0.1, "seed": 2})")->get_config();
  const std::vector<std::string> keys = c.keys();
  EXPECT_EQ(std::vector<std::string>(keys.end() - 3, keys.end()),
            (std::vector<std::string>{"rate", "seed", "noise_shape"}));
  EXPECT_EQ(c.get_int("seed"), 2);
  expect_error([&] { layer("AlphaDropout", R"({"rate": 1.0})"); }, Code::kInvalidArgument,
               {"AlphaDropout", "[0, 1)"});
  expect_error(
      [&] {
        run("AlphaDropout", R"({"rate": 0.5, "noise_shape": [3]})", ops::ones(Shape({2, 4})), true);
      },
      Code::kInvalidArgument, {"AlphaDropout", "noise_shape [3] has rank 1"});
}

// EinsumDense: Keras's kernel and bias shapes for each equation form, outputs against the einsum
// op with the weights, the output shapes compute_output_shape gives without building, the
// kernel's fans along its input and output axes, configs, and errors naming what is wrong.
TEST_F(MoreLayersTest, EinsumDenseAsKeras) {
  struct Case {
    const char *json;
    Shape input;
    Shape kernel, bias;  // bias rank 0: none
    PartialShape output;
  };
  const std::vector<Case> cases = {
      {R"({"equation": "ab,bc->ac", "output_shape": 5, "bias_axes": "c"})", {3, 4}, {4, 5}, {5}, {-1, 5}},
      {R"({"equation": "abc,cde->abde", "output_shape": [null, 2, 5], "bias_axes": "d"})",
       {2, 3, 4},
       {4, 2, 5},
       {2, 1},
       {-1, 3, 2, 5}},  // None in output_shape: the input's size
      {R"({"equation": "abcd,cde->abe", "output_shape": [3, 4]})", {2, 3, 2, 5}, {2, 5, 4}, {}, {-1, 3, 4}},
      {R"({"equation": "...b,bc->...c", "output_shape": 6, "bias_axes": "c"})",
       {2, 3, 2, 4},
       {4, 6},
       {6},
       {-1, 3, 2, 6}},
      {R"({"equation": "ab...,bc->ac...", "output_shape": 5, "bias_axes": "c"})",
       {2, 4, 3, 2},
       {4, 5},
       {5, 1, 1},
       {-1, 5, 3, 2}},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.json);
    LayerPtr l = layer("EinsumDense", c.json);
    PartialShape in = c.input.to_vector();
    in[0] = -1;
    EXPECT_EQ(l->compute_output_shape({in})[0], c.output);
    EXPECT_FALSE(l->built());
    const Tensor x = random_tensor(c.input, 51);
    const Tensor y = (*l)({x}, CallContext())[0];
    const auto w = l->own_weights();
    ASSERT_EQ(w.size(), c.bias.rank() == 0 ? 1u : 2u);
    EXPECT_EQ(w[0].first, "kernel");
    EXPECT_EQ(w[0].second->value().shape(), c.kernel);
    Tensor want = ops::einsum(Config::from_json(c.json).get_string("equation"), {x, w[0].second->value()});
    if (c.bias.rank() > 0) {
      EXPECT_EQ(w[1].second->value().shape(), c.bias);
      want = ops::add(want, w[1].second->value());
    }
    EXPECT_EQ(values(y), values(want));
  }
  // Fans along the kernel's axes: VarianceScaling(fan_in, uniform) over a [64, 8, 16] kernel has
  // the limit sqrt(3 / 64), not compute_fans's sqrt(3 / (8 * 64)).
  LayerPtr l = layer("EinsumDense", R"({"equation": "abc,cde->abde", "output_shape": [4, 8, 16],
      "kernel_initializer": {"class_name": "VarianceScaling",
                             "config": {"mode": "fan_in", "distribution": "uniform", "seed": 7}}})");
  l->build({{-1, 4, 64}});
  float most = 0;
  for (float v : values(l->own_weights()[0].second->value())) most = std::max(most, std::fabs(v));
  EXPECT_LE(most, std::sqrt(3.0f / 64));
  EXPECT_GT(most, 0.9f * std::sqrt(3.0f / 64));
  // An initializer given its axes keeps them in its config; an axis out of range is named.
  const InitializerPtr own = deserialize_initializer(Config::from_json(
      R"({"class_name": "GlorotUniform", "config": {"seed": 1, "input_axes": [0], "output_axes": [5]}})"));
  EXPECT_EQ(own->get_config().get_int_list("input_axes"), (std::vector<int64_t>{0}));
  expect_error([&] { (*own)(Shape({2, 3}), DType::kFloat32); }, Code::kInvalidArgument,
               {"GlorotUniform", "output_axes has axis 5"});
  // The config keeps the initializer as given, in Keras's key order.
  const Config cfg = l->get_config();
  EXPECT_FALSE(cfg.get_config("kernel_initializer").get_config("config").has("input_axes"));
  const std::vector<std::string> keys = cfg.keys();
  const std::vector<std::string> head(keys.begin() + 3, keys.begin() + 8);
  EXPECT_EQ(head, (std::vector<std::string>{"output_shape", "equation", "activation", "bias_axes",
                                            "kernel_initializer"}));
  EXPECT_EQ(create_layer("EinsumDense", cfg)->get_config(), cfg);
  // compute_output_shape answers where the weights' sizes are unknown (as Keras's); a call whose
  // input does not fit the built weights names the layer and both shapes.
  EXPECT_EQ(layer("EinsumDense", R"({"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "ac"})")
                ->compute_output_shape({{-1, -1}})[0],
            (PartialShape{-1, 4}));
  LayerPtr built = layer("EinsumDense", R"({"equation": "ab,bc->ac", "output_shape": 3})");
  built->build({{-1, 5}});
  expect_error(
      [&] {
        (*built)({make({1, 4}, {1, 2, 3, 4})}, CallContext());
      },
      Code::kInvalidArgument, {"EinsumDense", "needs a kernel of [4, 3]", "built with [5, 3]"});
  // Errors.
  expect_error([&] { layer("EinsumDense", R"({"equation": "ab->b", "output_shape": 3})"); },
               Code::kInvalidArgument, {"EinsumDense", "not of a form"});
  expect_error([&] { layer("EinsumDense", R"({"equation": "ab,bc->ac"})"); }, Code::kInvalidArgument,
               {"'output_shape' is required"});
  expect_error(
      [&] {
        layer("EinsumDense", R"({"equation": "ab,bc->ac", "output_shape": [3, 4]})")->build({{-1, 5}});
      },
      Code::kInvalidArgument, {"output_shape has 2 dims", "needs 1"});
  expect_error(
      [&] {
        layer("EinsumDense", R"({"equation": "abc,cd->abd", "output_shape": [7, 3]})")->build({{-1, 4, 5}});
      },
      Code::kInvalidArgument, {"differ at the shared axis 'b'"});
  expect_error(
      [&] {
        layer("EinsumDense", R"({"equation": "ab,bc->ac", "output_shape": [null]})")->build({{-1, 5}});
      },
      Code::kInvalidArgument, {"axis 'c'", "unknown size"});
  expect_error(
      [&] {
        layer("EinsumDense", R"({"equation": "ab,bc->ac", "output_shape": 3, "bias_axes": "x"})")
            ->build({{-1, 5}});
      },
      Code::kInvalidArgument, {"bias axis 'x'"});
  expect_error(
      [&] {
        layer("EinsumDense", R"({"equation": "abc,cd->abd", "output_shape": [null, 3]})")->build({{-1, 5}});
      },
      Code::kInvalidArgument, {"has rank 2"});
}

}  // namespace
}  // namespace kiln::layers
