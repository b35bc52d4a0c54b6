// kiln.hpp layers: built-in layers, Sequential, summary, and the seed's custom-layer examples
// (a MyDense in a Model subclass; a SegPosEmbedding whose build creates tables).
#include <gtest/gtest.h>

#include <thread>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Dims;
using kiln::Tensor;
using kiln::testing::expect_code;

Tensor iota(const Dims &shape, float scale = 0.1f) { return kiln::testing::sawtooth(shape, 7, scale); }

class MyDense : public kiln::Layer {
 public:
  MyDense(int64_t in, int64_t out) : Layer("MyDense") {
    w_ = add_weight("kernel", {in, out});
    b_ = add_weight("bias", {out}, "zeros");
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override {
    return {kiln::matmul(x[0], w_.value()) + b_.value()};
  }

 private:
  kiln::Variable w_, b_;
};

class MyModel : public kiln::Model {
 public:
  MyModel() : Model("MyModel"), d1_(4, 8), d2_(8, 2) {
    track(d1_);
    track(d2_);
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {d2_(kiln::relu(d1_(x[0], training)), training)};
  }

 private:
  MyDense d1_, d2_;
};

class SegPosEmbedding : public kiln::Layer {
 public:
  SegPosEmbedding(int64_t types, int64_t max_len) : Layer("SegPosEmbedding"), types_(types), max_len_(max_len) {
    norm_ = track(kiln::layers::LayerNormalization());
    drop_ = track(kiln::layers::Dropout(0.1));
  }

 protected:
  void build(const std::vector<Dims> &shapes) override {
    const int64_t hidden = shapes[0].back();
    type_table_ = add_weight("token_type_embeddings", {types_, hidden}, "truncated_normal");
    pos_table_ = add_weight("position_embeddings", {max_len_, hidden}, "truncated_normal");
  }
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    const Tensor &x = in[0];       // [batch, seq, hidden]
    const Tensor &types = in[1];   // [batch, seq] int32
    const int64_t seq = x.shape()[1];
    Tensor pos = kiln::range(0, static_cast<double>(seq), 1, kiln::DType::int32);
    Tensor y = x + kiln::gather(type_table_.value(), types) + kiln::gather(pos_table_.value(), pos);
    return {drop_(norm_(y), training)};
  }

 private:
  int64_t types_, max_len_;
  kiln::Layer norm_, drop_;
  kiln::Variable type_table_, pos_table_;
};

// Keras's call context: call() calls its Dropout without a training argument.
class DropBlock : public kiln::Layer {
 public:
  DropBlock() : Layer("DropBlock") { drop_ = track(kiln::layers::Dropout(0.5)); }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override { return {drop_(x[0])}; }

 private:
  kiln::Layer drop_;
};

int64_t zeros_in(const Tensor &y) {
  int64_t z = 0;
  for (float v : y.to_vector<float>()) z += v == 0.0f;
  return z;
}

TEST(HppLayers, NestedCallsWithoutTrainingTakeTheEnclosingCallsTraining) {
  kiln::clear_session();
  DropBlock block;
  kiln::Sequential model({block});
  const Tensor x = kiln::ones({50, 40});
  const int64_t dropped = zeros_in(model(x, true));  // Sequential -> DropBlock -> Dropout: training
  EXPECT_GT(dropped, 700);
  EXPECT_LT(dropped, 1300);
  EXPECT_EQ(zeros_in(model(x, false)), 0);
  EXPECT_EQ(zeros_in(model(x)), 0);  // no training anywhere: inference, as Keras
  EXPECT_GT(zeros_in(block(x, true)), 700);
  // A layer called with no training outside any call: false; CallOptions without training too.
  kiln::Layer drop = kiln::layers::Dropout(0.5);
  EXPECT_EQ(zeros_in(drop(x)), 0);
  EXPECT_EQ(zeros_in(drop.call_with_options({x}).outputs[0]), 0);
  EXPECT_GT(zeros_in(drop.call_with_options({x}, {true, {}}).outputs[0]), 700);
}

// Adds a constant: which object serves a call shows in the result.
class AddConst : public kiln::Layer {
 public:
  explicit AddConst(float c) : Layer("AddConst"), c_(c) {}

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override { return {x[0] + c_}; }

 private:
  float c_;
};

TEST(HppLayers, AssigningSubclassObjectsKeepsEveryLayerServed) {
  kiln::clear_session();
  const Tensor x = kiln::ones({1, 2});
  {  // copy: a's own layer dies with its last handle; a then shares b's layer (run by b)
    AddConst a(1), b(2);
    a = b;
    EXPECT_EQ(a(x).to_vector<float>()[0], 3.0f);
    EXPECT_EQ(a.id(), b.id());
  }  // (ASan: ~Layer used to write to the freed link here)
  {  // copy while a's layer lives on in a model: the model still reaches a's object (whose
     // members the assignment copied from b)
    AddConst a(1), b(2);
    kiln::Sequential model({a});
    a = b;
    EXPECT_EQ(model(x).to_vector<float>()[0], 3.0f);
    EXPECT_NE(model.layers()[0].id(), a.id());
    EXPECT_EQ(a(x).to_vector<float>()[0], 3.0f);
  }
  {  // move between objects of one class: the target takes the layer and serves it; o is empty
    AddConst a(1), b(2);
    kiln::Sequential model({b});
    a = std::move(b);
    EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
    EXPECT_EQ(a(x).to_vector<float>()[0], 3.0f);
    EXPECT_EQ(model(x).to_vector<float>()[0], 3.0f);
  }
  {  // move into a plain handle: the layer moves, the object stays behind and still serves it
    AddConst b(5);
    kiln::Layer plain;
    plain = std::move(b);
    EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(plain(x).to_vector<float>()[0], 6.0f);
  }
  {  // self-assignment
    AddConst a(1);
    a = *&a;
    EXPECT_EQ(a(x).to_vector<float>()[0], 2.0f);
  }
}

// Keras's `self.w = tf.Variable(...)`: variables made apart, tracked as the layer's weights.
class VariableLinear : public kiln::Layer {
 public:
  VariableLinear()
      : Layer("VariableLinear"),
        w_(Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2}), "w"),
        b_(Tensor::from_vector(std::vector<float>{0.5f, -0.5f}, {2}), "b", false) {
    track_variable(w_, "w");
    track_variable(b_, "b");
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override {
    return {kiln::matmul(x[0], w_.value()) + b_.value()};
  }

 private:
  kiln::Variable w_, b_;
};

TEST(HppLayers, VariablesTrackedAsWeights) {
  VariableLinear layer;
  ASSERT_EQ(layer.variables().size(), 2u);
  EXPECT_EQ(layer.variables()[0].id(), layer.trainable_variables().at(0).id());
  EXPECT_EQ(layer.trainable_variables().size(), 1u);  // b was made non-trainable
  const Tensor y = layer(Tensor::from_vector(std::vector<float>{1, 0, 1}, {1, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{6.5f, 7.5f}));
}

TEST(HppLayers, DenseAndSequentialFromTypedConstructors) {
  kiln::clear_session();
  kiln::Sequential model({kiln::layers::Dense(64, "relu"), kiln::layers::Dense(10)});
  model.build_for({-1, 784});
  EXPECT_EQ(model.count_params(), 50890);
  auto vars = model.trainable_variables();
  ASSERT_EQ(vars.size(), 4u);
  EXPECT_EQ(vars[0].name(), "sequential/dense/kernel");
  EXPECT_EQ(vars[3].name(), "sequential/dense_1/bias");
  EXPECT_NE(model.summary().find(" dense_1 (Dense)             (None, 10)                650       \n"),
            std::string::npos)
      << model.summary();
  Tensor y = model(iota({3, 784}));
  EXPECT_EQ(y.shape(), (Dims{3, 10}));
  EXPECT_EQ(model.get_layer("dense").get_config().get_int("units"), 64);
  EXPECT_THROW(model.get_layer("nope"), kiln::Error);
  EXPECT_EQ(model.layers().size(), 2u);
  EXPECT_EQ(model.layers()[0].id(), model.get_layer("dense").id());  // two handles, one layer
}

// An activity regularizer's loss is divided by the batch size, as tf.keras adds it: y = 3 over
// [4, 2], l2 0.01 * 8 * 9 = 0.72, over 4 rows 0.18.
TEST(HppLayers, ActivityRegularizerLossIsPerExample) {
  kiln::layers::DenseOptions o;
  o.kernel_initializer = "ones";
  o.activity_regularizer = "l2";
  kiln::Layer d = kiln::layers::Dense(2, o);
  EXPECT_EQ(d.get_config().get_config("activity_regularizer").get_string("class_name"), "L2");
  d(kiln::ones({4, 3}));
  const std::vector<Tensor> losses = d.losses();
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_NEAR(losses[0].item<float>(), 0.18f, 1e-6);
}

TEST(HppLayers, MyDenseInAModelSubclassListsWeightsInCreationOrder) {
  kiln::clear_session();
  MyModel m;
  Tensor y = m(iota({5, 4}));
  EXPECT_EQ(y.shape(), (Dims{5, 2}));
  auto vars = m.trainable_variables();
  ASSERT_EQ(vars.size(), 4u);
  EXPECT_EQ(vars[0].name(), "my_dense/kernel");  // created in MyDense's constructor, before tracking
  EXPECT_EQ(vars[1].name(), "my_dense/bias");
  EXPECT_EQ(vars[2].name(), "my_dense_1/kernel");
  EXPECT_TRUE(m.is_model());
  EXPECT_EQ(m.name(), "my_model");
  // Gradients flow to every weight through the trampoline.
  kiln::GradientTape tape;
  Tensor loss = kiln::sum(m(iota({5, 4})));
  auto grads = tape.gradient(loss, vars);
  for (const Tensor &g : grads) EXPECT_TRUE(g.valid());
  EXPECT_NE(m.summary().find("Model: \"my_model\""), std::string::npos);
}

TEST(HppLayers, SegPosEmbeddingBuildsFromTheFirstInput) {
  kiln::clear_session();
  SegPosEmbedding emb(2, 16);
  EXPECT_FALSE(emb.built());
  Tensor x = iota({2, 5, 8});
  Tensor types = Tensor::from_vector(std::vector<int32_t>{0, 0, 1, 1, 1, 0, 1, 0, 1, 0}, {2, 5});
  auto y = emb({x, types}, false);
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].shape(), (Dims{2, 5, 8}));
  EXPECT_TRUE(emb.built());
  auto vars = emb.variables();
  ASSERT_EQ(vars.size(), 4u);
  EXPECT_EQ(vars[0].name(), "seg_pos_embedding/token_type_embeddings");
  EXPECT_EQ(vars[1].name(), "seg_pos_embedding/position_embeddings");
  EXPECT_EQ(vars[2].name(), "seg_pos_embedding/layer_normalization/gamma");
  // Inference is deterministic; training drops.
  auto again = emb({x, types}, false);
  EXPECT_EQ(y[0].to_vector<float>(), again[0].to_vector<float>());
}

TEST(HppLayers, ErrorsNameTheLayer) {
  kiln::clear_session();
  kiln::Layer d = kiln::layers::Dense(3);
  d(iota({2, 4}));
  try {
    d(iota({2, 5}));
    FAIL();
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("layer 'dense' (Dense)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kiln::Layer::create("NoSuchLayer"), kiln::Error);
  kiln::Config bad;
  bad.set("units", 2).set("unitz", 3);
  EXPECT_THROW(kiln::Layer::create("Dense", bad), kiln::Error);
}

TEST(HppLayers, ConcurrentInferenceGivesIdenticalResults) {
  kiln::clear_session();
  kiln::Sequential model({kiln::layers::Dense(16, "gelu"), kiln::layers::LayerNormalization(),
                          kiln::layers::Dense(4)});
  const Tensor x = iota({8, 12});
  const std::vector<float> want = model(x).to_vector<float>();
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) got[t] = model(x).to_vector<float>();
    });
  for (auto &th : threads) th.join();
  for (const auto &g : got) EXPECT_EQ(g, want);
}

TEST(HppLayers, InitializersByNameAndConfig) {
  kiln::Config rn;
  rn.set("class_name", "RandomNormal").set("config", kiln::Config().set("stddev", 0.5).set("seed", 3));
  EXPECT_EQ(kiln::initialize(rn, {4, 4}).to_vector<float>(), kiln::initialize(rn, {4, 4}).to_vector<float>());
  const std::vector<float> ones = kiln::initialize("ones", {3}).to_vector<float>();
  EXPECT_EQ(ones, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(kiln::initialize("he_normal", {2, 2}, kiln::DType::float64).dtype(), kiln::DType::float64);
  EXPECT_THROW(kiln::initialize("no_such_init", {2}), kiln::Error);
}

TEST(HppLayers, ConfigRoundTrip) {
  kiln::clear_session();
  kiln::layers::DenseOptions o;
  o.use_bias = false;
  kiln::Layer d = kiln::layers::Dense(7, "tanh", o);
  kiln::Layer back = kiln::Layer::deserialize(d.serialize());
  EXPECT_EQ(back.get_config(), d.get_config());
  EXPECT_EQ(back.class_name(), "Dense");
}

// Keras's clone pattern: Sequential.from_config(model.get_config()) is built (the config has
// build_input_shape), so set_weights(model.get_weights()) fills it.
TEST(HppLayers, BuiltSequentialConfigRebuildsTheClone) {
  kiln::clear_session();
  kiln::Sequential model({kiln::layers::Dense(4, "relu"), kiln::layers::Dense(2)});
  EXPECT_FALSE(model.get_config().has("build_input_shape"));  // not built yet: no key, as Keras
  model.build_for({-1, 3});
  EXPECT_NE(model.get_config().to_json().find("\"build_input_shape\":[null,3]"), std::string::npos)
      << model.get_config().to_json();
  kiln::Layer clone = kiln::Layer::deserialize(model.serialize());
  EXPECT_TRUE(clone.built());
  ASSERT_EQ(clone.weights().size(), 4u);
  for (size_t i = 0; i < 4; ++i) clone.weights()[i].assign(model.weights()[i].value());
  const Tensor x = iota({2, 3});
  EXPECT_EQ(clone(x).to_vector<float>(), model(x).to_vector<float>());
}

// keras.Input first in a Sequential: the model is built as it is made, the InputLayer is not one
// of its layers, an int32 input feeds an Embedding, and a second input layer is refused.
TEST(HppLayers, InputBuildsTheSequentialAsItIsMade) {
  kiln::clear_session();
  kiln::Sequential model({kiln::Input({3}), kiln::layers::Dense(4, "relu"), kiln::layers::Dense(2)});
  EXPECT_TRUE(model.built());
  EXPECT_EQ(model.weights().size(), 4u);
  EXPECT_EQ(model.layers().size(), 2u);
  EXPECT_EQ(model(iota({5, 3})).shape(), (Dims{5, 2}));
  EXPECT_NE(model.get_config().to_json().find("\"class_name\":\"InputLayer\""), std::string::npos);
  kiln::Layer clone = kiln::Layer::deserialize(model.serialize());
  EXPECT_TRUE(clone.built());
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "already been configured to use input shape (None, 3)",
              [&] { model.add(kiln::layers::InputLayer({3})); });
  kiln::layers::DenseOptions same_name;
  same_name.name = model.layers()[0].name();
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "should have unique names",
              [&] { model.add(kiln::layers::Dense(2, same_name)); });
  EXPECT_EQ(model.layers().size(), 2u);

  kiln::layers::InputOptions ids;
  ids.dtype = "int32";
  ids.batch_size = 2;
  kiln::Sequential emb({kiln::layers::InputLayer({4}, ids), kiln::layers::Embedding(10, 3)});
  EXPECT_TRUE(emb.built());
  EXPECT_EQ(emb.weights().size(), 1u);
  EXPECT_NE(emb.get_config().to_json().find("\"batch_shape\":[2,4]"), std::string::npos)
      << emb.get_config().to_json();
  EXPECT_NE(emb.get_config().to_json().find("\"dtype\":\"int32\""), std::string::npos);
  kiln::layers::InputOptions wrong;
  wrong.dtype = "float16";
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "'float16' is not a kiln dtype",
              [&] { kiln::Input({3}, wrong); });
}

// Class names are UTF-8 text: a custom model whose class name is not is refused when it is made.
class BadlyNamed : public kiln::Model {
 public:
  BadlyNamed() : Model("Badly\xffNamed") {}

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override { return x; }
};

TEST(HppLayers, ClassNamesMustBeUtf8) {
  expect_code(KILN_STATUS_INVALID_ARGUMENT, "the class name is not valid UTF-8", [] { BadlyNamed m; });
}

// A model with an int32 input, built by its first call: it sees that call's inputs (no extra
// call on float zeros, which Embedding would refuse), and runs once.
class IdsAndFeatures : public kiln::Model {
 public:
  IdsAndFeatures() : Model("IdsAndFeatures") {
    emb_ = track(kiln::layers::Embedding(10, 2));
    dense_ = track(kiln::layers::Dense(2));
  }
  int calls = 0;

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override {
    ++calls;
    return {dense_(x[0]) + kiln::sum(emb_(x[1]), {1})};
  }

 private:
  kiln::Layer emb_, dense_;
};

TEST(HppLayers, ModelBuiltByItsFirstCallSeesTheRealInputs) {
  IdsAndFeatures m;
  const Tensor x = iota({2, 3});
  const Tensor ids = Tensor::from_vector<int32_t>({1, 2, 3, 4}, {2, 2});
  const Tensor y = m({x, ids})[0];
  EXPECT_EQ(m.calls, 1);
  EXPECT_TRUE(m.built());
  EXPECT_EQ(y.shape(), (Dims{2, 2}));
  EXPECT_EQ(m.trainable_variables().size(), 3u);
}

}  // namespace
