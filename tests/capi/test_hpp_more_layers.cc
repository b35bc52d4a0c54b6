// kiln.hpp's activation, spatial reshaping, noise, Identity and Rescaling layers: the typed
// constructors write Keras's configs, outputs agree with compositions of kiln ops, Softmax takes
// a mask, errors name the layer, and a small image model with them trains under fit; Normalization
// Discretization and IntegerLookup adapt to an array and a dataset, and models with them save and load their
// adapted state; CenterCrop crops and resizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../temp_dir.h"
#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

namespace kl = kiln::layers;
using kiln::Dims;
using kiln::Tensor;
using kiln::testing::expect_code;

// fit's options: a few epochs, no progress output.
kiln::FitOptions quiet_epochs(int epochs) {
  kiln::FitOptions o;
  o.epochs = epochs;
  o.verbose = 0;
  return o;
}

Tensor doc_input() { return Tensor::from_vector({-10.0f, -5.0f, 0.0f, 5.0f, 10.0f}, {5}); }

TEST(HppMoreLayers, ActivationLayers) {
  kiln::clear_session();
  kl::ReLUOptions o;
  o.max_value = 6;
  o.negative_slope = 0.5;
  o.threshold = 2;
  kiln::Layer relu = kl::ReLU(o);
  EXPECT_EQ(relu.name(), "re_lu");
  EXPECT_EQ(relu(doc_input()).to_vector<float>(), (std::vector<float>{-6, -3.5f, -1, 5, 6}));
  EXPECT_EQ(kl::ReLU().get_config().type("max_value"), kiln::Config::Type::null);
  EXPECT_EQ(kl::ReLU()(doc_input()).to_vector<float>(), (std::vector<float>{0, 0, 0, 5, 10}));
  EXPECT_EQ(kl::LeakyReLU(0.1)(doc_input()).to_vector<float>(), (std::vector<float>{-1, -0.5f, 0, 5, 10}));
  EXPECT_EQ(kl::LeakyReLU().get_config().get_float("negative_slope"), 0.3);
  EXPECT_EQ(kl::ELU(2.0)(doc_input()).to_vector<float>(), kiln::elu(doc_input(), 2.0f).to_vector<float>());

  const Tensor x = kiln::testing::sawtooth({2, 3, 4}, 7, 0.5f);
  EXPECT_EQ(kl::Softmax()(x).to_vector<float>(), kiln::softmax(x, -1).to_vector<float>());
  EXPECT_EQ(kl::Softmax({1, 2}).get_config().get_int_list("axis"), (Dims{1, 2}));
  const std::vector<float> both = kiln::sum(kl::Softmax({1, 2})(x), {1, 2}).to_vector<float>();
  for (float s : both) EXPECT_NEAR(s, 1.0f, 1e-6f);
  // A mask: masked entries give 0.
  kiln::Layer sm = kl::Softmax();
  const Tensor logits = Tensor::from_vector({1.0f, 2.0f, 3.0f}, {1, 3});
  const Tensor mask = Tensor::from_vector(std::vector<bool>{true, true, false}, {1, 3});
  const std::vector<float> p = sm.call_with_options({logits}, {false, {mask}}).outputs[0].to_vector<float>();
  EXPECT_NEAR(p[0], 1 / (1 + std::exp(1.0f)), 1e-6f);
  EXPECT_EQ(p[2], 0.0f);
  // Keras: a non-bool mask means > 0.5, and a mask that broadcasts ([1, 1, 3] over [1, 2, 3]) is taken.
  const Tensor soft = Tensor::from_vector({1.0f, 0.7f, 0.3f}, {1, 3});
  EXPECT_EQ(sm.call_with_options({logits}, {false, {soft}}).outputs[0].to_vector<float>(), p);
  const Tensor two_rows = kiln::reshape(kiln::concat({logits, logits}, 0), {1, 2, 3});
  const Tensor narrow = Tensor::from_vector(std::vector<bool>{true, true, false}, {1, 1, 3});
  const std::vector<float> masked_rows =
      sm.call_with_options({two_rows}, {false, {narrow}}).outputs[0].to_vector<float>();
  EXPECT_EQ(std::vector<float>(masked_rows.begin() + 3, masked_rows.end()), p);

  // GroupNormalization: two groups of two channels; each group of a row has mean 0 (gamma 1, beta 0).
  kl::GroupNormalizationOptions gno;
  gno.groups = 2;
  kiln::Layer gn = kl::GroupNormalization(gno);
  const std::vector<float> gy = gn(Tensor::from_vector({1.0f, 3.0f, -2.0f, 6.0f}, {1, 4})).to_vector<float>();
  EXPECT_NEAR(gy[0], -1.0f, 1e-3f);  // (1 - 2) / sqrt(1 + 1e-3)
  EXPECT_NEAR(gy[0] + gy[1], 0.0f, 1e-6f);
  EXPECT_NEAR(gy[2] + gy[3], 0.0f, 1e-6f);
  EXPECT_EQ(gn.variables().size(), 2u);
  EXPECT_EQ(gn.get_config().get_int("groups"), 2);

  // UnitNormalization: unit L2 norm over the axes; a zero row stays 0.
  const Tensor rows = Tensor::from_vector({3.0f, 4.0f, 0.0f, 0.0f}, {2, 2});
  EXPECT_EQ(kl::UnitNormalization()(rows).to_vector<float>(), (std::vector<float>{0.6f, 0.8f, 0, 0}));
  EXPECT_EQ(kl::UnitNormalization({0, 1})(rows).to_vector<float>(), (std::vector<float>{0.6f, 0.8f, 0, 0}));
  EXPECT_EQ(kl::UnitNormalization({0}).get_config().get_int_list("axis"), (Dims{0}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "axis 2", [&] { kl::UnitNormalization({2})(rows); });
  // RMSNormalization: x * rsqrt(mean(x^2) + epsilon) * scale.
  const std::vector<float> rms = kl::RMSNormalization({-1}, 0.5)(rows).to_vector<float>();
  EXPECT_NEAR(rms[0], 3 / std::sqrt(12.5 + 0.5), 1e-6);
  EXPECT_NEAR(rms[1], 4 / std::sqrt(12.5 + 0.5), 1e-6);
  EXPECT_EQ(rms[2], 0.0f);
  EXPECT_EQ(kl::RMSNormalization().get_config().get_float("epsilon"), 1e-6);

  // Dot: Keras's docstring example, and the cosine proximity of two rank-2 inputs ([B, 1]).
  const Tensor dx = kiln::reshape(kiln::range(0, 10, 1), {1, 5, 2}),
               dy = kiln::reshape(kiln::range(10, 20, 1), {1, 2, 5});
  kiln::Layer dot = kl::Dot({1, 2});
  EXPECT_EQ(dot({dx, dy})[0].to_vector<float>(), (std::vector<float>{260, 360, 320, 445}));
  EXPECT_EQ(dot.get_config().get_int_list("axes"), (Dims{1, 2}));
  const Tensor ca = Tensor::from_vector({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2}),
               cb = Tensor::from_vector({3.0f, 4.0f, 0.0f, 1.0f}, {2, 2});
  const Tensor cos = kl::Dot({-1}, true)({ca, cb})[0];
  EXPECT_EQ(cos.shape(), (Dims{2, 1}));
  EXPECT_NEAR(cos.to_vector<float>()[1], 0.8f, 1e-6f);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "batch axis 0", [&] { kl::Dot({0})({ca, cb}); });

  // Keras 3's newer activations by name.
  const Tensor v = Tensor::from_vector({-2.0f, -0.75f, 0.0f, 3.0f}, {4});
  EXPECT_EQ(kl::Activation("hard_tanh")(v).to_vector<float>(), (std::vector<float>{-1, -0.75f, 0, 1}));
  EXPECT_EQ(kl::Activation("hard_shrink")(v).to_vector<float>(), (std::vector<float>{-2, -0.75f, 0, 3}));
  EXPECT_EQ(kl::Activation("sparse_plus")(v).to_vector<float>(),
            (std::vector<float>{0, 0.015625f, 0.25f, 3}));
  const std::vector<float> celu = kl::Activation("celu")(v).to_vector<float>();
  EXPECT_NEAR(celu[0], std::expm1(-2.0f), 1e-6f);
  EXPECT_EQ(celu[3], 3.0f);
  EXPECT_EQ(kl::Activation("tanh_shrink").get_config().get_string("activation"), "tanh_shrink");
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "even size", [&] {
    kl::Activation("glu")(Tensor::from_vector({1.0f, 2.0f, 3.0f}, {3}));
  });

  kl::PReLUOptions po;
  po.alpha_initializer = "ones";
  po.shared_axes = {1};
  kiln::Layer prelu = kl::PReLU(po);
  const Tensor y = prelu(x);
  ASSERT_EQ(prelu.variables().size(), 1u);
  EXPECT_EQ(prelu.variables()[0].value().shape(), (Dims{1, 4}));
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());  // alpha 1: the identity
  EXPECT_EQ(prelu.get_config().get_int_list("shared_axes"), (Dims{1}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "negative_slope cannot be negative", [] { kl::LeakyReLU(-1); });
}

// kiln.hpp's SimpleRNN, GRU and LSTM: h = x + 0.5 h (linear, kernel ones, recurrent 0.5, no bias) over
// steps 1, 2, 3; the LSTM's weights under Keras's names; a model with Embedding(mask_zero) and an LSTM
// trains under fit.
TEST(HppMoreLayers, RecurrentLayers) {
  kiln::clear_session();
  kl::RecurrentOptions o;
  o.activation = "linear";
  o.use_bias = false;
  o.kernel_initializer = "ones";
  o.return_sequences = true;
  kiln::Layer rnn = kl::SimpleRNN(1, o);
  const Tensor x = Tensor::from_vector({1.0f, 2.0f, 3.0f}, {1, 3, 1});
  rnn.build_for(Dims{-1, 3, 1});
  rnn.variables().at(1).assign(Tensor::from_vector({0.5f}, {1, 1}));
  EXPECT_EQ(rnn(x).to_vector<float>(), (std::vector<float>{1, 2.5f, 4.25f}));
  EXPECT_EQ(rnn.get_config().get_bool("return_sequences"), true);

  kl::RecurrentOptions lo;
  lo.return_state = true;
  kiln::Layer lstm = kl::LSTM(3, lo);
  const std::vector<Tensor> out = lstm(std::vector<Tensor>{kiln::testing::sawtooth({2, 4, 5}, 7, 0.25f)});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].shape(), (Dims{2, 3}));
  EXPECT_EQ(out[0].to_vector<float>(), out[1].to_vector<float>());  // the last output is h
  ASSERT_EQ(lstm.variables().size(), 3u);
  EXPECT_EQ(lstm.variables()[0].name(), "lstm/lstm_cell/kernel");
  EXPECT_EQ(lstm.variables()[1].value().shape(), (Dims{3, 12}));
  kl::RecurrentOptions go;
  go.reset_after = false;
  EXPECT_EQ(kl::GRU(2, go).get_config().get_bool("reset_after"), false);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "rank 3", [&] {
    kl::GRU(2)(Tensor::from_vector({1.0f}, {1, 1}));
  });
  // Bidirectional: the forward and backward copies concatenated; TimeDistributed: a layer per step.
  kiln::Layer bi = kl::Bidirectional(kl::LSTM(2));
  EXPECT_EQ(bi(kiln::testing::sawtooth({3, 4, 5}, 7, 0.25f)).shape(), (Dims{3, 4}));
  ASSERT_EQ(bi.variables().size(), 6u);
  EXPECT_EQ(bi.variables()[3].name(), bi.name() + "/backward_lstm_1/lstm_cell/kernel");
  EXPECT_EQ(kl::Bidirectional(kl::GRU(2), "").get_config().type("merge_mode"), kiln::Config::Type::null);
  kiln::Layer td = kl::TimeDistributed(kl::Dense(3));
  EXPECT_EQ(td(kiln::testing::sawtooth({2, 4, 5}, 7, 0.25f)).shape(), (Dims{2, 4, 3}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "expected a recurrent layer",
              [] { kl::Bidirectional(kl::Dense(2)); });
  // SpectralNormalization: a training call divides a one-column kernel [3, 4] by its norm.
  kiln::Layer sn = kl::SpectralNormalization(kl::Dense(1), 2);
  const Tensor row = Tensor::from_vector<float>({1, 1}, {1, 2});
  sn(row);
  ASSERT_EQ(sn.variables().size(), 3u);
  EXPECT_EQ(sn.variables()[0].name(), sn.name() + "/vector_u");
  sn.variables()[1].assign(Tensor::from_vector<float>({3, 4}, {2, 1}));
  EXPECT_NEAR(sn(row, true).to_vector<float>()[0], 1.4f, 1e-5);
  const std::vector<float> k = sn.variables()[1].value().to_vector<float>();
  EXPECT_NEAR(k[0], 0.6f, 1e-6);
  EXPECT_NEAR(k[1], 0.8f, 1e-6);
  EXPECT_EQ(sn.get_config().get_int("power_iterations"), 2);

  kiln::set_seed(2);
  kl::EmbeddingOptions eo;
  eo.mask_zero = true;
  kiln::Sequential model({kl::Embedding(10, 4, eo), kl::LSTM(6), kl::Dense(2)});
  model.compile("adam", "sparse_categorical_crossentropy");
  std::vector<int32_t> ids(8 * 5, 0), labels(8);
  for (int i = 0; i < 8; ++i) {
    for (int t = 0; t < 3; ++t) ids[size_t(i * 5 + t)] = 1 + (i * 3 + t) % 9;  // two padding steps
    labels[size_t(i)] = ids[size_t(i * 5)] > 5;
  }
  const Tensor tokens = Tensor::from_vector(ids, {8, 5}), y = Tensor::from_vector(labels, {8});
  const double first = model.train_on_batch(tokens, y).at("loss");
  double last = first;
  for (int i = 0; i < 20; ++i) last = model.train_on_batch(tokens, y).at("loss");
  EXPECT_LT(last, first);
  EXPECT_EQ(model.predict(tokens).shape(), (Dims{8, 2}));
}

// kiln.hpp's ConvLSTM1D/2D/3D: the typed options write Keras's config, the states' shapes follow the
// input convolution, Bidirectional wraps one, and a model with ConvLSTM2D trains under fit and
// predicts the same after a SavedModel round trip.
TEST(HppMoreLayers, ConvLstmLayers) {
  kiln::clear_session();
  kl::ConvLSTMOptions o;
  o.strides = {2};
  o.padding = "same";
  o.return_sequences = true;
  o.return_state = true;
  kiln::Layer l = kl::ConvLSTM2D(3, {3, 2}, o);
  EXPECT_EQ(l.name(), "conv_lstm2d");
  const std::vector<Tensor> out = l(std::vector<Tensor>{kiln::testing::sawtooth({2, 4, 5, 6, 2}, 7, 0.25f)});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].shape(), (Dims{2, 4, 3, 3, 3}));
  EXPECT_EQ(out[1].shape(), (Dims{2, 3, 3, 3}));
  ASSERT_EQ(l.variables().size(), 3u);
  EXPECT_EQ(l.variables()[0].name(), "conv_lstm2d/conv_lstm_cell/kernel");
  EXPECT_EQ(l.variables()[1].value().shape(), (Dims{3, 2, 3, 12}));
  const kiln::Config c = l.get_config();
  EXPECT_EQ(c.get_string("padding"), "same");
  EXPECT_EQ(c.get_bool("unit_forget_bias"), true);
  EXPECT_EQ(kl::ConvLSTM1D(2, {3}).get_config().get_string("activation"), "tanh");
  EXPECT_EQ(kl::ConvLSTM3D(2, {1})(kiln::testing::sawtooth({1, 2, 2, 2, 2, 1}, 5, 0.5f)).shape(),
            (Dims{1, 2, 2, 2, 2}));
  EXPECT_EQ(kl::Bidirectional(kl::ConvLSTM1D(2, {2}))(kiln::testing::sawtooth({2, 3, 4, 1}, 5, 0.5f)).shape(),
            (Dims{2, 3, 4}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "expected rank 5", [] {
    kl::ConvLSTM2D(2, {3})(Tensor::from_vector({1.0f}, {1, 1}));
  });

  kiln::set_seed(3);
  kiln::Sequential model({kl::Input({3, 4, 4, 1}), kl::ConvLSTM2D(2, {3}), kl::Flatten(), kl::Dense(2)});
  model.compile("adam", "sparse_categorical_crossentropy");
  const Tensor x = kiln::testing::sawtooth({6, 3, 4, 4, 1}, 11, 0.1f);
  const Tensor y = Tensor::from_vector<int32_t>({0, 1, 0, 1, 0, 1}, {6});
  const double first = model.train_on_batch(x, y).at("loss");
  double last = first;
  for (int i = 0; i < 10; ++i) last = model.train_on_batch(x, y).at("loss");
  EXPECT_LT(last, first);
  kiln::testing::TempDir dir("kiln_hpp_conv_lstm");
  model.save(dir / "m");
  kiln::Model loaded = kiln::models::load_model(dir / "m");
  EXPECT_EQ(loaded.predict(x).to_vector<float>(), model.predict(x).to_vector<float>());
}

// kiln.hpp's adaptive poolings and ActivityRegularization: PyTorch's windows, channels first, a model
// with AdaptiveAveragePooling2D that trains, and the activity loss.
TEST(HppMoreLayers, AdaptivePoolingAndActivityRegularization) {
  kiln::clear_session();
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 6}, {1, 5, 1});
  EXPECT_EQ(kl::AdaptiveMaxPooling1D({3})(x).to_vector<float>(), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(kl::AdaptiveAveragePooling1D({3})(x).to_vector<float>(), (std::vector<float>{1.5f, 3, 5}));
  kiln::Layer first = kl::AdaptiveMaxPooling2D({1}, true);
  EXPECT_EQ(first(Tensor::from_vector<float>({1, 5, 2, 3, -1, -2, -3, -4}, {1, 2, 2, 2})).to_vector<float>(),
            (std::vector<float>{5, -1}));
  EXPECT_EQ(first.get_config().get_string("data_format"), "channels_first");
  EXPECT_EQ(
      kl::AdaptiveAveragePooling3D({2, 1, 3})(kiln::testing::sawtooth({1, 4, 5, 6, 2}, 7, 0.5f)).shape(),
      (Dims{1, 2, 1, 3, 2}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "output_size", [] { kl::AdaptiveMaxPooling2D({1, 2, 3}); });
  kiln::Layer reg = kl::ActivityRegularization(0.1, 0.01);
  EXPECT_EQ(reg(Tensor::from_vector<float>({1, -2}, {1, 2})).to_vector<float>(), (std::vector<float>{1, -2}));
  ASSERT_EQ(reg.losses().size(), 1u);
  EXPECT_NEAR(reg.losses()[0].to_vector<float>()[0], 0.35f, 1e-6);

  kiln::set_seed(5);
  kiln::Sequential model({kl::Input({6, 6, 1}), kl::Conv2D(4, {3}), kl::AdaptiveAveragePooling2D({2}),
                          kl::Flatten(), kl::ActivityRegularization(0.0, 0.001), kl::Dense(2)});
  model.compile("adam", "sparse_categorical_crossentropy");
  const Tensor images = kiln::testing::sawtooth({6, 6, 6, 1}, 11, 0.1f);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 0, 1, 0, 1}, {6});
  const double before = model.train_on_batch(images, labels).at("loss");
  double after = before;
  for (int i = 0; i < 10; ++i) after = model.train_on_batch(images, labels).at("loss");
  EXPECT_LT(after, before);
}

// A custom cell in C++: y = x @ kernel + 0.5 h, its state y (Keras's MinimalRNNCell with a fixed
// recurrence), made a cell by set_state_size.
class HalfCell : public kiln::Layer {
 public:
  explicit HalfCell(int64_t units) : Layer("HalfCell"), units_(units) { set_state_size({units}); }

 protected:
  void build(const std::vector<Dims> &shapes) override {
    kernel_ = add_weight("kernel", {shapes.at(0).back(), units_}, "ones");
  }
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool) override {
    const Tensor y = kiln::matmul(in.at(0), kernel_.value()) + in.at(1) * Tensor::scalar(0.5f);
    return {y, y};
  }

 private:
  int64_t units_;
  kiln::Variable kernel_;
};

// kiln.hpp's RNN around a custom cell and the built-in cells: the same h = x + 0.5 h over steps 1, 2, 3,
// the cell called alone, a stack's state sizes, a model of RNN(LSTMCell) that trains, and errors.
TEST(HppMoreLayers, RnnAndCells) {
  kiln::clear_session();
  const Tensor x = Tensor::from_vector({1.0f, 2.0f, 3.0f}, {1, 3, 1});
  auto cell = std::make_shared<HalfCell>(1);
  EXPECT_EQ(cell->state_size(), (Dims{1}));
  kl::RNNOptions ro;
  ro.return_sequences = true;
  kiln::Layer rnn = kl::RNN(*cell, ro);
  EXPECT_EQ(rnn(x).to_vector<float>(), (std::vector<float>{1, 2.5f, 4.25f}));
  ASSERT_EQ(rnn.variables().size(), 1u);
  EXPECT_EQ(rnn.layers().at(0).name(), cell->name());  // the cell itself, not a copy
  auto [y, states] =
      cell->call_cell(Tensor::from_vector({2.0f}, {1, 1}), {Tensor::from_vector({1.0f}, {1, 1})});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2.5f}));
  ASSERT_EQ(states.size(), 1u);

  kl::RecurrentOptions co;
  co.activation = "linear";
  co.use_bias = false;
  co.kernel_initializer = "ones";
  kiln::Layer simple = kl::SimpleRNNCell(1, co);
  EXPECT_EQ(simple.state_size(), (Dims{1}));
  kiln::Layer over = kl::RNN(simple, ro);
  over.build_for(Dims{-1, 3, 1});
  over.variables().at(1).assign(Tensor::from_vector({0.5f}, {1, 1}));
  EXPECT_EQ(over(x).to_vector<float>(), (std::vector<float>{1, 2.5f, 4.25f}));
  EXPECT_EQ(over.get_config().get_config("cell").get_string("class_name"), "SimpleRNNCell");

  kiln::Layer stack = kl::StackedRNNCells({kl::LSTMCell(3), kl::GRUCell(2)});
  EXPECT_EQ(stack.state_size(), (Dims{3, 3, 2}));
  kl::RNNOptions so;
  so.return_state = true;
  const std::vector<Tensor> out = kl::RNN({kl::LSTMCell(3), kl::GRUCell(2)}, so)(
      std::vector<Tensor>{kiln::testing::sawtooth({2, 4, 5}, 7, 0.25f)});
  ASSERT_EQ(out.size(), 4u);  // the output, then h, c of the LSTM cell and h of the GRU cell
  EXPECT_EQ(out[0].shape(), (Dims{2, 2}));
  EXPECT_EQ(out[2].shape(), (Dims{2, 3}));

  kiln::set_seed(2);
  kiln::Sequential model({kl::Input({4, 3}), kl::RNN(kl::LSTMCell(6)), kl::Dense(1)});
  model.compile("adam", "mse");
  const Tensor xs = kiln::testing::sawtooth({8, 4, 3}, 7, 0.25f),
               ys = kiln::testing::sawtooth({8, 1}, 5, 0.5f);
  const double first = model.train_on_batch(xs, ys).at("loss");
  double last = first;
  for (int i = 0; i < 20; ++i) last = model.train_on_batch(xs, ys).at("loss");
  EXPECT_LT(last, first);

  expect_code(KILN_STATUS_INVALID_ARGUMENT, "state_size", [] { kl::RNN(kl::Dense(2)); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "positive", [&] { cell->set_state_size({0}); });
}

TEST(HppMoreLayers, SpatialLayers) {
  const Tensor img = kiln::reshape(kiln::range(1, 7, 1), {1, 2, 3, 1});  // H 2, W 3
  // ZeroPadding2D({top, bottom, left, right}).
  const Tensor p = kl::ZeroPadding2D({1, 0, 0, 2})(img);
  EXPECT_EQ(p.shape(), (Dims{1, 3, 5, 1}));
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 0, 0}));
  for (const Dims &same : {Dims{2}, Dims{2, 2}, Dims{2, 2, 2, 2}})  // Keras's forms, written as pairs
    EXPECT_NE(kl::ZeroPadding2D(same).get_config().to_json().find("\"padding\":[[2,2],[2,2]]"),
              std::string::npos);
  EXPECT_EQ(kl::Cropping2D({0, 1})(img).to_vector<float>(), (std::vector<float>{2, 5}));
  EXPECT_EQ(kl::UpSampling2D({1, 2})(img).to_vector<float>(),
            (std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6}));
  kl::SpatialOptions cf;
  cf.data_format = "channels_first";  // the same image as [N, C, H, W]
  const Tensor chw = kiln::reshape(img, {1, 1, 2, 3});
  EXPECT_EQ(kl::ZeroPadding2D({1, 0, 0, 2}, cf)(chw).to_vector<float>(), p.to_vector<float>());
  EXPECT_EQ(kl::UpSampling2D({2}, cf)(chw).shape(), (Dims{1, 1, 4, 6}));

  const Tensor seq = kiln::reshape(kiln::range(1, 5, 1), {1, 4, 1});
  EXPECT_EQ(kl::ZeroPadding1D({0, 1})(seq).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 0}));
  EXPECT_EQ(kl::Cropping1D({1, 2})(seq).to_vector<float>(), (std::vector<float>{2}));
  EXPECT_EQ(kl::UpSampling1D(3)(seq).shape(), (Dims{1, 12, 1}));
  const Tensor vol = kiln::ones({1, 2, 2, 2, 1});
  EXPECT_EQ(kl::ZeroPadding3D()(vol).shape(), (Dims{1, 4, 4, 4, 1}));
  EXPECT_EQ(kl::Cropping3D({0})(vol).shape(), (Dims{1, 2, 2, 2, 1}));
  EXPECT_EQ(kl::UpSampling3D({1, 2, 3})(vol).shape(), (Dims{1, 2, 4, 6, 1}));

  expect_code(KILN_STATUS_INVALID_ARGUMENT, "smaller than", [&] { kl::Cropping2D({1})(img); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "cannot be negative", [] { kl::ZeroPadding2D({-1}); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "data_format", [] {
    kl::SpatialOptions bad;
    bad.data_format = "NHWC";
    kl::UpSampling2D({2}, bad);
  });
}

// Resizing and UpSampling2D's bilinear interpolation on kiln::image_resize (tf.image.resize).
TEST(HppMoreLayers, ResizingAndBilinearUpSampling) {
  kiln::clear_session();
  const Tensor img = kiln::reshape(kiln::range(0, 16, 4), {1, 2, 2, 1});  // [[0, 4], [8, 12]]
  EXPECT_EQ(kiln::image_resize(img, {4, 4}).to_vector<float>(),
            (std::vector<float>{0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12}));
  EXPECT_EQ(kiln::image_resize(img, {1, 4}, kiln::ResizeMethod::nearest).to_vector<float>(),
            (std::vector<float>{8, 8, 12, 12}));
  kiln::Layer r = kl::Resizing(4, 4);
  EXPECT_EQ(r.name(), "resizing");
  EXPECT_EQ(r(img).to_vector<float>(), kiln::image_resize(img, {4, 4}).to_vector<float>());
  EXPECT_EQ(kl::UpSampling2D({2}, {}, "bilinear")(img).to_vector<float>(), r(img).to_vector<float>());
  kl::ResizingOptions crop;
  crop.crop_to_aspect_ratio = true;
  const Tensor wide = kiln::reshape(kiln::range(0, 8, 1), {1, 2, 4, 1});
  // The centred 2x2 box of a 2x4 image, for a square target.
  EXPECT_EQ(kl::Resizing(2, 2, crop)(wide).to_vector<float>(), (std::vector<float>{1, 2, 5, 6}));
  kl::ResizingOptions pad;
  pad.pad_to_aspect_ratio = true;
  pad.fill_value = -1;
  EXPECT_EQ(kl::Resizing(4, 4, pad)(wide).to_vector<float>(),
            (std::vector<float>{-1, -1, -1, -1, 0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1}));
  kl::ResizingOptions bad;
  bad.interpolation = "lanczos3";
  expect_code(KILN_STATUS_UNIMPLEMENTED, "interpolation 'lanczos3'", [&] { kl::Resizing(2, 2, bad); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "size needs 2 values", [&] { kiln::image_resize(img, {2}); });
}

TEST(HppMoreLayers, NoiseIdentityRescalingAndAModelThatTrains) {
  const Tensor x = kiln::ones({8, 4, 4, 2});
  EXPECT_EQ(kl::GaussianNoise(0.1)(x, false).to_vector<float>(), x.to_vector<float>());
  EXPECT_NE(kl::GaussianNoise(0.1, 3)(x, true).to_vector<float>(), x.to_vector<float>());
  EXPECT_NE(kl::GaussianDropout(0.2)(x, true).to_vector<float>(), x.to_vector<float>());
  kl::SpatialDropoutOptions so;
  so.seed = 5;
  const std::vector<float> d = kl::SpatialDropout2D(0.5, so)(x, true).to_vector<float>();
  for (size_t i = 0; i < d.size(); ++i) {  // [N, H, W, C]: one draw per sample and channel
    const size_t n = i / 32, c = i % 2;
    EXPECT_EQ(d[i], d[n * 32 + c]) << i;
    EXPECT_TRUE(d[i] == 0 || d[i] == 2) << i;
  }
  EXPECT_EQ(kl::SpatialDropout2D(0.5, so).get_config().get_int("seed"), 5);
  // AlphaDropout: identity outside training; in training two kinds of values for a constant input.
  EXPECT_EQ(kl::AlphaDropout(0.3)(x, false).to_vector<float>(), x.to_vector<float>());
  const std::vector<float> ad = kl::AlphaDropout(0.3)(x, true).to_vector<float>();
  std::vector<float> kinds(ad);
  std::sort(kinds.begin(), kinds.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  EXPECT_EQ(kinds.size(), 2u);
  EXPECT_EQ(kl::Identity()(x).to_vector<float>(), x.to_vector<float>());
  const Tensor u8 = Tensor::from_vector(std::vector<uint8_t>{0, 255}, {1, 2});
  EXPECT_EQ(kl::Rescaling(1.0 / 255)(u8).to_vector<float>(), (std::vector<float>{0, 1}));
  EXPECT_EQ(kl::Rescaling({1, 2}, {0, 1})(Tensor::from_vector({3.0f, 4.0f}, {1, 2})).to_vector<float>(),
            (std::vector<float>{3, 9}));

  kiln::set_seed(3);
  kiln::Sequential model({kl::Input({6, 6, 1}), kl::Rescaling(0.5), kl::ZeroPadding2D(), kl::Conv2D(4, {3}),
                          kl::LeakyReLU(), kl::SpatialDropout2D(0.25), kl::Cropping2D({1}),
                          kl::UpSampling2D(), kl::GaussianNoise(0.05), kl::Flatten(), kl::Dense(3),
                          kl::Softmax()});
  model.compile("adam", "sparse_categorical_crossentropy");
  const Tensor images = kiln::testing::sawtooth({16, 6, 6, 1}, 13, 0.3f);
  std::vector<int32_t> labels(16);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  const Tensor y = Tensor::from_vector(labels, {16});
  const double first = model.train_on_batch(images, y).at("loss");
  double last = first;
  for (int i = 0; i < 30; ++i) last = model.train_on_batch(images, y).at("loss");
  EXPECT_LT(last, first);
  EXPECT_EQ(model.predict(images).shape(), (Dims{16, 3}));
}

TEST(HppMoreLayers, CategoryEncoding) {
  const Tensor ids = Tensor::from_vector<int64_t>({0, 1, 0, 0}, {2, 2});
  EXPECT_EQ(kl::CategoryEncoding(3)(ids).to_vector<float>(), (std::vector<float>{1, 1, 0, 1, 0, 0}));
  kiln::Layer count = kl::CategoryEncoding(3, "count");
  EXPECT_EQ(count(ids).to_vector<float>(), (std::vector<float>{1, 1, 0, 2, 0, 0}));
  const Tensor w = Tensor::from_vector({0.5f, 2.0f, 1.0f, 3.0f}, {2, 2});
  EXPECT_EQ(count({ids, w})[0].to_vector<float>(), (std::vector<float>{0.5f, 2, 0, 4, 0, 0}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "out of range",
              [&] { count(Tensor::from_vector<int64_t>({5}, {1})); });
}

TEST(HppMoreLayers, EinsumDense) {
  kl::EinsumDenseOptions o;
  o.bias_axes = "c";
  o.kernel_initializer = "ones";
  o.bias_initializer = "ones";
  kiln::Layer plain = kl::EinsumDense("ab,bc->ac", {2}, o);
  EXPECT_EQ(plain(Tensor::from_vector({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3})).to_vector<float>(),
            (std::vector<float>{7, 7, 16, 16}));
  EXPECT_EQ(plain.get_config().get_string("bias_axes"), "c");
  // MultiHeadAttention's query projection: [B, T, D] -> [B, T, H, K], the bias on H and K.
  kl::EinsumDenseOptions q;
  q.bias_axes = "de";
  kiln::Layer proj = kl::EinsumDense("abc,cde->abde", {-1, 2, 4}, q);
  EXPECT_EQ(proj(kiln::ones({3, 5, 6})).shape(), (Dims{3, 5, 2, 4}));
  EXPECT_NE(proj.get_config().to_json().find(R"("output_shape":[null,2,4])"), std::string::npos);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "not of a form", [] { kl::EinsumDense("ab->b", {2}); });
  // In a model that trains.
  kiln::set_seed(4);
  kl::EinsumDenseOptions d;
  d.bias_axes = "d";
  kiln::Sequential model({kl::Input({5, 3}), kl::EinsumDense("abc,cd->abd", {-1, 2}, d)});
  model.compile("adam", "mse");
  const Tensor x = kiln::testing::sawtooth({8, 5, 3}, 7, 0.5f);
  const Tensor y = kiln::testing::sawtooth({8, 5, 2}, 5, 0.5f);
  const double first = model.train_on_batch(x, y).at("loss");
  double last = first;
  for (int i = 0; i < 20; ++i) last = model.train_on_batch(x, y).at("loss");
  EXPECT_LT(last, first);
}

TEST(HppMoreLayers, NormalizationAdaptsAndSaves) {
  kiln::clear_session();
  // Keras's docstring example: per feature of the last axis
  const Tensor data = Tensor::from_vector<float>({0, 7, 4, 2, 9, 6, 0, 7, 4, 2, 9, 6}, {4, 3});
  kiln::Layer norm = kl::Normalization();
  norm.adapt(data);
  EXPECT_EQ(norm.name(), "normalization");
  EXPECT_EQ(norm(Tensor::from_vector<float>({0, 7, 4}, {1, 3})).to_vector<float>(),
            (std::vector<float>{-1, -1, -1}));
  ASSERT_EQ(norm.non_trainable_variables().size(), 3u);
  EXPECT_EQ(norm.trainable_variables().size(), 0u);
  EXPECT_EQ(norm.variables()[0].value().to_vector<float>(), (std::vector<float>{1, 8, 5}));
  EXPECT_EQ(norm.variables()[2].value().to_vector<int64_t>(), (std::vector<int64_t>{4}));
  // a dataset of (x, y) batches reads x; axis None: one mean and variance over every value
  kl::NormalizationOptions all;
  all.axis = {};
  kiln::Layer scalar = kl::Normalization(all);
  const Tensor five = Tensor::from_vector<float>({1, 2, 3, 4, 5}, {5});
  scalar.adapt(kiln::data::Dataset::from_tensor_slices({five, five}).batch(2));
  const std::vector<float> got = scalar(Tensor::from_vector<float>({1, 2, 3}, {3})).to_vector<float>();
  EXPECT_NEAR(got[0], -1.4142135f, 1e-6);
  EXPECT_NEAR(got[1], -0.70710677f, 1e-6);
  EXPECT_EQ(got[2], 0.0f);
  // given values, nested by mean_shape, and invert
  kl::NormalizationOptions given;
  given.axis = {1, 2};
  given.mean = {1, 2};
  given.variance = {4, 4};
  given.mean_shape = {2, 1};
  given.invert = true;
  kiln::Layer inv = kl::Normalization(given);
  EXPECT_NE(inv.get_config().to_json().find("\"mean\":[[1.0],[2.0]]"), std::string::npos)
      << inv.get_config().to_json();
  EXPECT_EQ(inv(kiln::ones({1, 2, 2})).to_vector<float>(), (std::vector<float>{3, 3, 4, 4}));
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "given mean and variance", [&] { inv.adapt(data); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "(Dense) has no adapt", [&] { kl::Dense(2).adapt(data); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "rank 1", [&] { norm.adapt(five); });
  kl::NormalizationOptions bad;
  bad.mean = {1, 2, 3};
  bad.variance = {1, 2, 3};
  bad.mean_shape = {2};
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "has 3 values; mean_shape holds 2",
              [&] { kl::Normalization(bad); });
  // in a model: fit leaves the state alone; a SavedModel keeps it
  kiln::Sequential model({kl::Input({3}), norm, kl::Dense(1)});
  model.compile("sgd", "mse");
  model.fit(data, Tensor::from_vector<float>({0, 1, 0, 1}, {4, 1}), quiet_epochs(2));
  EXPECT_EQ(norm.variables()[0].value().to_vector<float>(), (std::vector<float>{1, 8, 5}));
  kiln::testing::TempDir dir("kiln_hpp_normalization");
  model.save(dir / "m");
  kiln::Model loaded = kiln::models::load_model(dir / "m");
  EXPECT_EQ(loaded.predict(data).to_vector<float>(), model.predict(data).to_vector<float>());
}

TEST(HppMoreLayers, DiscretizationAdaptsAndSaves) {
  kiln::clear_session();
  // Keras's docstring examples: given boundaries, and 4 bins adapted to the data
  const Tensor x = Tensor::from_vector<float>({-1.5f, 1.0f, 3.4f, .5f, 0.0f, 3.0f, 1.3f, 0.0f}, {2, 4});
  kl::DiscretizationOptions given;
  given.bin_boundaries = {0, 1, 2};
  kiln::Layer fixed = kl::Discretization(given);
  EXPECT_EQ(fixed.name(), "discretization");
  EXPECT_EQ(fixed(x).to_vector<int32_t>(), (std::vector<int32_t>{0, 2, 3, 1, 1, 3, 2, 1}));
  kl::DiscretizationOptions quantiles;
  quantiles.num_bins = 4;
  quantiles.output_mode = "one_hot";
  kiln::Layer bins = kl::Discretization(quantiles);
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "adapt()", [&] { bins(x); });
  bins.adapt(kiln::data::Dataset::from_tensor_slices({kiln::reshape(x, {8})}).batch(5));
  EXPECT_EQ(bins.get_config().get_float_list("bin_boundaries"),
            (std::vector<double>{0.0, 0.5, static_cast<double>(1.3f)}));
  const Tensor hot = bins(x);
  EXPECT_EQ(hot.shape(), (Dims{2, 4, 4}));
  EXPECT_EQ(kiln::argmax(hot, -1).to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 3, 2, 1, 3, 3, 1}));
  kl::DiscretizationOptions none;
  kiln::Layer one_bin = kl::Discretization(none);  // no boundaries: every value in bin 0
  EXPECT_EQ(one_bin(x).to_vector<int32_t>(), std::vector<int32_t>(8, 0));
  kl::DiscretizationOptions both = quantiles;
  both.bin_boundaries = {1};
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "not both", [&] { kl::Discretization(both); });
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "made with bin_boundaries", [&] { fixed.adapt(x); });
  // in a model: a SavedModel keeps the adapted boundaries
  kiln::Sequential model({kl::Input({4}), bins, kl::Flatten(), kl::Dense(1)});
  model.compile("sgd", "mse");
  model.fit(x, Tensor::from_vector<float>({0, 1}, {2, 1}), quiet_epochs(2));
  kiln::testing::TempDir dir("kiln_hpp_discretization");
  model.save(dir / "m");
  kiln::Model loaded = kiln::models::load_model(dir / "m");
  const Tensor probe = Tensor::from_vector<float>({-1, 0.25f, 0.75f, 2, 0, 0.5f, 1.3f, 9}, {2, 4});
  EXPECT_EQ(loaded.predict(probe).to_vector<float>(), model.predict(probe).to_vector<float>());
}

TEST(HppMoreLayers, IntegerLookupAdaptsAndSaves) {
  kiln::clear_session();
  // Keras's docstring examples: a given vocabulary (OOV index 0), and one learned by adapt()
  const Tensor data = Tensor::from_vector<int64_t>({12, 1138, 42, 42, 1000, 36}, {2, 3});
  kl::IntegerLookupOptions given;
  given.vocabulary = {12, 36, 1138, 42};
  kiln::Layer lookup = kl::IntegerLookup(given);
  EXPECT_EQ(lookup.name(), "integer_lookup");
  EXPECT_EQ(lookup(data).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 4, 4, 0, 2}));
  EXPECT_EQ(lookup.vocabulary_size(), 5);
  EXPECT_EQ(lookup.get_vocabulary(false).to_vector<int64_t>(), given.vocabulary);
  kiln::Layer learned = kl::IntegerLookup();
  learned.adapt(kiln::data::Dataset::from_tensor_slices({data}).batch(1));
  EXPECT_EQ(learned.get_vocabulary().to_vector<int64_t>(),
            (std::vector<int64_t>{-1, 42, 1138, 1000, 36, 12}));
  // invert maps the indices back; multi_hot is float32 over the vocabulary
  kl::IntegerLookupOptions inverse = given;
  inverse.invert = true;
  EXPECT_EQ(kl::IntegerLookup(inverse)(lookup(data)).to_vector<int64_t>(),
            (std::vector<int64_t>{12, 1138, 42, 42, -1, 36}));
  kl::IntegerLookupOptions hot = given;
  hot.output_mode = "multi_hot";
  const Tensor multi = kl::IntegerLookup(hot)(data);
  EXPECT_EQ(multi.dtype(), kiln::DType::float32);
  EXPECT_EQ(multi.to_vector<float>(), (std::vector<float>{0, 1, 0, 1, 1, 1, 0, 1, 0, 1}));
  // a vocabulary file; set_vocabulary with tf_idf weights
  kiln::testing::TempDir dir("kiln_hpp_integer_lookup");
  {
    std::FILE *f = std::fopen((dir / "vocab.txt").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("12\n36\n1138\n42\n", f);
    std::fclose(f);
  }
  kl::IntegerLookupOptions file;
  file.vocabulary_file = dir / "vocab.txt";
  EXPECT_EQ(kl::IntegerLookup(file)(data).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 4, 4, 0, 2}));
  kl::IntegerLookupOptions weighted;
  weighted.output_mode = "tf_idf";
  kiln::Layer tf_idf = kl::IntegerLookup(weighted);
  tf_idf.set_vocabulary(Tensor::from_vector<int64_t>({12, 36, 1138, 42}, {4}),
                        Tensor::from_vector<float>({0.25f, 0.75f, 0.6f, 0.4f}, {4}));
  const std::vector<float> got =
      tf_idf(Tensor::from_vector<int64_t>({12, 1138, 42, 42, 42, 7, 36, 7}, {2, 4})).to_vector<float>();
  const std::vector<float> want = {0, 0.25f, 0, 0.6f, 0.8f, 1.0f, 0, 0.75f, 0, 0.4f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "idf_weights", [&] {
    tf_idf.set_vocabulary(Tensor::from_vector<int64_t>({1, 2}, {2}));
  });
  expect_code(KILN_STATUS_FAILED_PRECONDITION, "made with a vocabulary", [&] { lookup.adapt(data); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "no vocabulary", [&] { kl::Dense(2).get_vocabulary(); });
  // in a model before an Embedding: a SavedModel keeps the learned vocabulary
  kiln::Sequential model({kl::Input({3}), learned, kl::Embedding(6, 2), kl::Flatten(), kl::Dense(1)});
  model.compile("sgd", "mse");
  model.fit(data, Tensor::from_vector<float>({0, 1}, {2, 1}), quiet_epochs(2));
  model.save(dir / "m");
  kiln::Model loaded = kiln::models::load_model(dir / "m");
  const Tensor probe = Tensor::from_vector<int64_t>({7, 42, 12, 1000, 1000, 36}, {2, 3});
  EXPECT_EQ(loaded.predict(probe).to_vector<float>(), model.predict(probe).to_vector<float>());
}

TEST(HppMoreLayers, HashingAndHashedCrossing) {
  kiln::clear_session();
  // Keras's tests: integers hashed as their digits, FarmHash or SipHash keyed by the salt
  const Tensor x = Tensor::from_vector<int64_t>({0, 1, 2, 3, 4}, {5, 1});
  kiln::Layer fast = kl::Hashing(3);
  EXPECT_EQ(fast.name(), "hashing");
  EXPECT_EQ(fast(x).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1, 0, 2}));
  kl::HashingOptions salted;
  salted.salt = {133, 137};
  EXPECT_EQ(kl::Hashing(3, salted)(x).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 2, 0, 1}));
  kl::HashingOptions masked;
  masked.mask_value = 3;
  masked.output_mode = "one_hot";
  const Tensor hot = kl::Hashing(3, masked)(x);
  EXPECT_EQ(hot.shape(), (Dims{5, 3}));
  EXPECT_EQ(hot.to_vector<float>()[9], 1.0f);  // the mask 3 in bin 0
  EXPECT_EQ(kl::Hashing(3, masked).get_config().get_int("mask_value"), 3);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "positive", [&] { kl::Hashing(0); });
  // IntegerLookup's farmhash OOV buckets (Keras's test values)
  kl::IntegerLookupOptions o;
  o.vocabulary = {10, 20, 30};
  o.num_oov_indices = 4;
  o.oov_method = "farmhash";
  EXPECT_EQ(
      kl::IntegerLookup(o)(Tensor::from_vector<int64_t>({100, 200, 300, 400}, {4})).to_vector<int64_t>(),
      (std::vector<int64_t>{3, 1, 3, 1}));
  EXPECT_EQ(kl::IntegerLookup(o).vocabulary_size(), 7);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "no vocabulary", [&] { fast.vocabulary_size(); });
  // HashedCrossing on a list of features: the same pair, the same bin
  kiln::Layer cross = kl::HashedCrossing(1000);
  const std::vector<int64_t> bins =
      cross({Tensor::from_vector<int64_t>({1, 2, 1}, {3}), Tensor::from_vector<int64_t>({4, 5, 4}, {3})})[0]
          .to_vector<int64_t>();
  EXPECT_EQ(bins[0], bins[2]);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "two features",
              [&] { cross({Tensor::from_vector<int64_t>({1}, {1})}); });
}

TEST(HppMoreLayers, CenterCrop) {
  kiln::clear_session();
  std::vector<uint8_t> px(16);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i);
  const Tensor images = Tensor::from_vector<uint8_t>(px, {1, 4, 4, 1});
  const Tensor y = kl::CenterCrop(2, 2)(images);
  EXPECT_EQ(y.dtype(), kiln::DType::float32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{5, 6, 9, 10}));
  EXPECT_EQ(kl::CenterCrop(2, 3, "channels_first")(kiln::ones({1, 1, 4, 4})).shape(), (Dims{1, 1, 2, 3}));
  // larger than the image: the image (its aspect ratio the target's) is resized
  EXPECT_EQ(kl::CenterCrop(8, 8)(images).to_vector<float>(),
            kl::Resizing(8, 8)(kiln::cast(images, kiln::DType::float32)).to_vector<float>());
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "rank 4", [&] { kl::CenterCrop(2, 2)(kiln::ones({4, 4})); });
}

TEST(HppMoreLayers, RandomImageLayers) {
  kiln::clear_session();
  const Tensor x = Tensor::from_vector<float>({10, 200, 30, 40}, {1, 2, 2, 1});
  kl::RandomImageOptions seeded;
  seeded.seed = 7;
  kiln::Layer flip = kl::RandomFlip("vertical", seeded);
  EXPECT_EQ(flip.get_config().get_int("seed"), 7);
  EXPECT_EQ(flip(x).to_vector<float>(), x.to_vector<float>());
  const std::vector<float> once = flip(x, true).to_vector<float>();
  EXPECT_TRUE(once == x.to_vector<float>() || once == (std::vector<float>{30, 40, 10, 200}));
  EXPECT_EQ(kl::RandomCrop(1, 1)(x, true).shape(), (Dims{1, 1, 1, 1}));
  const std::vector<float> c = kl::RandomContrast(0.5, 0.5, {-1000, 1000})(x, true).to_vector<float>();
  EXPECT_NEAR(c[0] + c[1] + c[2] + c[3], 280.0f, 1e-3);  // the mean stays
  const std::vector<float> b = kl::RandomBrightness(0.5, 0.5, {0, 100})(x, true).to_vector<float>();
  EXPECT_EQ(b, (std::vector<float>{60, 100, 80, 90}));  // +0.5 * 100, clipped at 100
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "factor", [&] { kl::RandomBrightness(1.5); });
  // kiln::image_affine_transform: a quarter turn about the centre of the 2 x 2 image, and a shift.
  const Tensor turn = Tensor::from_vector<float>({0, -1, 1, 1, 0, 0, 0, 0}, {8});
  EXPECT_EQ(kiln::image_affine_transform(x, turn, kiln::ResizeMethod::nearest).to_vector<float>(),
            (std::vector<float>{200, 40, 10, 30}));
  const Tensor right = Tensor::from_vector<float>({1, 0, -1, 0, 1, 0, 0, 0}, {1, 8});
  EXPECT_EQ(kiln::image_affine_transform(x, right, kiln::ResizeMethod::bilinear, kiln::FillMode::constant, -1)
                .to_vector<float>(),
            (std::vector<float>{-1, 10, -1, 30}));
  EXPECT_EQ(kiln::image_affine_transform(x, right, kiln::ResizeMethod::nearest, kiln::FillMode::wrap)
                .to_vector<float>(),
            (std::vector<float>{200, 10, 40, 30}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "fill_mode", [&] {
    kiln::image_affine_transform(x, right, kiln::ResizeMethod::nearest, kiln::FillMode(7));
  });
  // kiln::image_perspective_transform: the corners one to the right is a shift; RandomPerspective.
  const Tensor corners = Tensor::from_vector<float>({0, 0, 1, 0, 0, 1, 1, 1}, {4, 2});
  const Tensor moved = Tensor::from_vector<float>({1, 0, 2, 0, 1, 1, 2, 1}, {4, 2});
  EXPECT_EQ(kiln::image_perspective_transform(x, corners, moved, kiln::ResizeMethod::bilinear, -1)
                .to_vector<float>(),
            (std::vector<float>{-1, 10, -1, 30}));
  const Tensor line = Tensor::from_vector<float>({0, 0, 1, 1, 2, 2, 3, 3}, {4, 2});
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "singular",
              [&] { kiln::image_perspective_transform(x, corners, line); });
  EXPECT_EQ(kl::RandomPerspective(1.0, 0.0)(x, true).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(kl::RandomPerspective({0.2, 0.6}, 0.5).get_config().get_float_list("factor"),
            (std::vector<double>{0.2, 0.6}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "scale", [&] { kl::RandomPerspective(1.0, 3.0); });
  kl::RandomTransformOptions nearest;
  nearest.interpolation = "nearest";
  EXPECT_EQ(kl::RandomRotation(0.25, 0.25, nearest)(x, true).to_vector<float>(),
            (std::vector<float>{200, 40, 10, 30}));
  nearest.fill_mode = "constant";
  EXPECT_EQ(kl::RandomTranslation(0, 0.5, nearest)(x, false).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(kl::RandomZoom(0.2).get_config().type("width_factor"), kiln::Config::Type::null);
  EXPECT_EQ(kl::RandomZoom(0.2, -0.3).get_config().get_float_list("width_factor"),
            (std::vector<double>{-0.3, 0.3}));
  EXPECT_EQ(kl::RandomZoom(0.2, 0.1).get_config().get_float_list("width_factor"),
            (std::vector<double>{-0.1, 0.1}));
}

TEST(HppMoreLayers, ColorLayers) {
  kiln::clear_session();
  const Tensor x = Tensor::from_vector<float>({10, 50, 90, 30, 70, 200}, {1, 1, 2, 3});
  EXPECT_EQ(kl::AutoContrast()(x).to_vector<float>(), (std::vector<float>{0, 0, 0, 255, 255, 255}));
  const Tensor unit = Tensor::from_vector<float>({0.2f, 0.6f}, {1, 2, 1});
  EXPECT_NEAR(kl::AutoContrast({0, 1})(unit).to_vector<float>()[1], 1.0f, 1e-6);
  // Equalization with 3 bins: 0, 100, 200, 255, 255 fall in bins 0, 0, 1, 2, 2; the table is 0, 85, 255.
  const Tensor five = Tensor::from_vector<float>({0, 100, 200, 255, 255}, {1, 5, 1});
  EXPECT_EQ(kl::Equalization({0, 255}, 3)(five, true).to_vector<float>(),
            (std::vector<float>{0, 0, 85, 255, 255}));
  EXPECT_EQ(kl::Equalization()(five).to_vector<float>(), five.to_vector<float>());
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "bins", [&] { kl::Equalization({0, 255}, 0); });
  // MixUp and CutMix on {images, labels}: labels stay a distribution over the batch's images; inference
  // keeps.
  const Tensor four = Tensor::from_vector<float>({0, 1, 2, 3}, {4, 1, 1, 1});
  const Tensor eye = Tensor::from_vector<float>({1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, {4, 4});
  for (int which = 0; which < 2; ++which) {
    kiln::Layer mixer = which == 0 ? kl::MixUp(0.5) : kl::CutMix({0.2, 0.8});
    const std::vector<Tensor> mixed = mixer({four, eye}, true);
    ASSERT_EQ(mixed.size(), 2u);
    const std::vector<float> rows = mixed[1].to_vector<float>();
    for (int i = 0; i < 4; ++i)
      EXPECT_NEAR(
          rows[size_t(4 * i)] + rows[size_t(4 * i + 1)] + rows[size_t(4 * i + 2)] + rows[size_t(4 * i + 3)],
          1.0f, 1e-5f);
    EXPECT_EQ(mixer({four, eye}, false)[1].to_vector<float>(), eye.to_vector<float>());
  }
  EXPECT_EQ(kl::CutMix().get_config().get_float_list("factor"), (std::vector<double>{0, 1}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "alpha", [&] { kl::MixUp(-1.0); });
  // kiln::random_gamma, random_beta, random_shuffle.
  for (float g : kiln::random_gamma({50}, 2.0, 0.5).to_vector<float>()) EXPECT_GE(g, 0.0f);
  for (float b : kiln::random_beta({50}, 0.3, 0.3).to_vector<float>()) EXPECT_TRUE(b >= 0.0f && b <= 1.0f);
  std::vector<float> shuffled =
      kiln::random_shuffle(Tensor::from_vector<float>({3, 1, 2}, {3})).to_vector<float>();
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, (std::vector<float>{1, 2, 3}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "alpha", [&] { kiln::random_beta({2}, 0.0, 1.0); });
  // RandAugment: no ops keep the images; its config; a negative count.
  EXPECT_EQ(kl::RandAugment({0, 255}, 0)(x, true).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(kl::RandAugment({0, 1}, 3, {0.1, 0.2}).get_config().get_int("num_ops"), 3);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "num_ops", [&] { kl::RandAugment({0, 255}, -1); });
  const std::vector<float> inverted = {245, 205, 165, 225, 185, 55};
  EXPECT_EQ(kl::Solarization()(x, true).to_vector<float>(), inverted);
  EXPECT_EQ(kl::Solarization({0.2, 0.2}, {0, 0}, {0, 255})(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(kl::RandomInvert(1, 1)(x, true).to_vector<float>(), inverted);
  EXPECT_EQ(kl::RandomInvert().get_config().get_float_list("factor"), (std::vector<double>{0, 1}));
  const std::vector<float> g = kl::RandomGrayscale(1.0)(x, true).to_vector<float>();
  EXPECT_NEAR(g[0], 0.2989f * 10 + 0.5870f * 50 + 0.1140f * 90, 1e-3);
  EXPECT_EQ(g[0], g[2]);
  EXPECT_EQ(kl::RandomPosterization(2, 2)(x, true).to_vector<float>(),
            (std::vector<float>{0, 0, 64, 0, 64, 192}));
  EXPECT_EQ(kl::RandomPosterization(4).get_config().get_int_list("factor"), (std::vector<int64_t>{1, 4}));
  const std::vector<float> half = kl::RandomColorDegeneration(0.5, 0.5)(x, true).to_vector<float>();
  EXPECT_NEAR(half[0], 10 + 0.5f * (g[0] - 10), 1e-3);
  EXPECT_EQ(kl::RandomColorDegeneration(0.3).get_config().get_float_list("factor"),
            (std::vector<double>{0, 0.3}));
  const std::vector<float> same = kl::RandomSharpness(0.5, 0.5)(x, true).to_vector<float>();
  for (size_t i = 0; i < same.size(); ++i) EXPECT_NEAR(same[i], x.to_vector<float>()[i], 1e-3) << i;
  kl::RandomTransformOptions nearest;
  nearest.interpolation = "nearest";
  const Tensor row = Tensor::from_vector<float>({1, 2, 3}, {1, 1, 3, 1});
  EXPECT_EQ(kl::RandomShear({1, 1}, {0, 0}, nearest)(row, true).to_vector<float>(), row.to_vector<float>());
  EXPECT_EQ(kl::RandomShear(0.2).get_config().get_float_list("x_factor"), (std::vector<double>{-0.2, 0.2}));
  // HSV: a round trip, and the layers built on it.
  const Tensor rgb = Tensor::from_vector<float>({1, 0.5f, 0, 0.2f, 0.7f, 0.7f}, {2, 3});
  const std::vector<float> hsv = kiln::image_rgb_to_hsv(rgb).to_vector<float>();
  EXPECT_NEAR(hsv[0], 1.0f / 12, 1e-6);
  EXPECT_NEAR(hsv[3], 0.5f, 1e-6);
  const std::vector<float> back = kiln::image_hsv_to_rgb(kiln::image_rgb_to_hsv(rgb)).to_vector<float>();
  for (size_t i = 0; i < back.size(); ++i) EXPECT_NEAR(back[i], rgb.to_vector<float>()[i], 1e-6) << i;
  EXPECT_EQ(kiln::image_rgb_to_grayscale(rgb).shape(), (Dims{2, 1}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "3 channels", [&] {
    kiln::image_rgb_to_hsv(kiln::ones({2, 2}));
  });
  const std::vector<float> kept = kl::RandomSaturation(0.5, 0.5)(x, true).to_vector<float>();
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_NEAR(kept[i], x.to_vector<float>()[i], 1e-3) << i;
  EXPECT_EQ(kl::RandomHue(0.2).get_config().get_float_list("factor"), (std::vector<double>{0, 0.2}));
  kl::ColorJitterFactors jitter;
  jitter.brightness = {{0.1, 0.1}};
  const std::vector<float> lit = kl::RandomColorJitter(jitter)(x, true).to_vector<float>();
  EXPECT_NEAR(lit[0], 10 + 25.5f, 1e-3);
  EXPECT_EQ(kl::RandomColorJitter(jitter).get_config().type("hue_factor"), kiln::Config::Type::null);
  EXPECT_EQ(kl::RandomErasing({1, 1}, {1, 1}, std::vector<double>{0})(x, true).to_vector<float>(),
            std::vector<float>(6, 0.0f));
  const std::vector<float> capped =
      kl::RandomGaussianBlur({0, 0}, {3, 3}, {0, 1}, {0, 100})(x, true).to_vector<float>();
  EXPECT_EQ(capped, (std::vector<float>{10, 50, 90, 30, 70, 100}));
  EXPECT_EQ(kl::RandomGaussianBlur().get_config().get_int_list("kernel_size"), (std::vector<int64_t>{3, 3}));
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "factor", [&] { kl::RandomSharpness(1.5, 2.0); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "[1, 8]", [&] { kl::RandomPosterization(0); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "channels", [&] {
    kl::RandomGrayscale(1.0)(kiln::ones({1, 2, 2, 2}), true);
  });
}

TEST(HppMoreLayers, LambdaInASequentialTrains) {
  kiln::clear_session();
  kiln::Layer twice = kl::Lambda([](const Tensor &x) { return x * 2.0f; });
  EXPECT_EQ(twice.name(), "lambda");
  EXPECT_EQ(twice(Tensor::from_vector({1.0f, -2.0f}, {1, 2})).to_vector<float>(),
            (std::vector<float>{2, -4}));
  std::vector<bool> seen;
  kiln::Layer flagged = kl::Lambda([&seen](const Tensor &x, bool training) {
    seen.push_back(training);
    return x;
  });
  flagged(Tensor::from_vector({1.0f}, {1, 1}), true);
  flagged(Tensor::from_vector({1.0f}, {1, 1}), false);
  EXPECT_EQ(seen, (std::vector<bool>{true, false}));

  kiln::set_seed(2);
  kiln::Sequential model({kl::Input({3}), kl::Dense(4),
                          kl::Lambda([](const Tensor &x) { return kiln::tanh(x); }), kl::Dense(1)});
  model.compile("adam", "mse");
  const Tensor x = kiln::testing::sawtooth({16, 3}, 5, 0.2f);
  const Tensor y = kiln::testing::sawtooth({16, 1}, 7, 0.1f);
  const double first = model.train_on_batch(x, y).at("loss");
  double last = first;
  for (int i = 0; i < 20; ++i) last = model.train_on_batch(x, y).at("loss");
  EXPECT_LT(last, first);
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "expected 1", [&] { twice(std::vector<Tensor>{x, x}); });
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "empty",
              [] { kl::Lambda(std::function<Tensor(const Tensor &)>()); });
}

}  // namespace
