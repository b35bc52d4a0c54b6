// The Layer contract in the C++ core: names, lazy build, weights and their order, trainable,
// configs and the registry, input specs, losses, Sequential and summary.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "autodiff/tape.h"
#include "core/error.h"
#include "layers/layer.h"
#include "layers/sequential.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln::layers {
namespace {

using testing::expect_error;
using testing::random_tensor;

LayerPtr dense(int64_t units, const std::string &activation = "linear") {
  Config c;
  c.set("units", units).set("activation", activation);
  return create_layer("Dense", c);
}

std::vector<std::string> names(const std::vector<VariablePtr> &vars) {
  std::vector<std::string> n;
  for (const VariablePtr &v : vars) n.push_back(v->name());
  return n;
}

class LayersTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_session(); }
};

TEST_F(LayersTest, UniqueNamesPerClassAndClearSession) {
  EXPECT_EQ(dense(2)->name(), "dense");
  EXPECT_EQ(dense(2)->name(), "dense_1");
  EXPECT_EQ(create_layer("LayerNormalization", Config())->name(), "layer_normalization");
  clear_session();
  EXPECT_EQ(dense(2)->name(), "dense");
  Config named;
  named.set("units", 2).set("name", "head");
  EXPECT_EQ(create_layer("Dense", named)->name(), "head");
  EXPECT_EQ(to_snake_case("Conv2DTranspose"), "conv2d_transpose");
  EXPECT_EQ(to_snake_case("MultiHeadAttention"), "multi_head_attention");
  EXPECT_EQ(to_snake_case("HTTPLayer"), "http_layer");
  EXPECT_EQ(to_snake_case("GlobalAveragePooling2D"), "global_average_pooling2d");
  EXPECT_EQ(to_snake_case("LayerNormalization"), "layer_normalization");
  EXPECT_EQ(to_snake_case("MyDense"), "my_dense");
  EXPECT_EQ(to_snake_case("Conv2D"), "conv2d");
  EXPECT_EQ(to_snake_case("SegPosEmbedding"), "seg_pos_embedding");
  // Corner cases, with what Keras's regular expressions give for them.
  EXPECT_EQ(to_snake_case("aBCd"), "a_b_cd");
  EXPECT_EQ(to_snake_case("ABCDef"), "abc_def");
  EXPECT_EQ(to_snake_case("XYz_Ab"), "x_yz__ab");
  EXPECT_EQ(to_snake_case("a_Bc"), "a__bc");
  EXPECT_EQ(to_snake_case("My__Layer2X"), "my___layer2x");
  EXPECT_EQ(to_snake_case("Bad-Name!"), "bad_name");
}

TEST_F(LayersTest, DenseBuildsLazilyFromTheFirstInput) {
  LayerPtr d = dense(3, "relu");
  EXPECT_FALSE(d->built());
  EXPECT_TRUE(d->variables().empty());
  const Tensor x = random_tensor({4, 5}, 1);
  const Tensor y = (*d)(x);
  EXPECT_TRUE(d->built());
  EXPECT_EQ(y.shape(), Shape({4, 3}));
  ASSERT_EQ(d->variables().size(), 2u);
  EXPECT_EQ(names(d->variables()), (std::vector<std::string>{"dense/kernel", "dense/bias"}));
  EXPECT_EQ(d->variables()[0]->shape(), Shape({5, 3}));
  // y = relu(x W + b), checked against the ops.
  const Tensor want = ops::relu(ops::add(ops::matmul(x, d->variables()[0]->peek()), d->variables()[1]->peek()));
  testing::expect_near(y, testing::values<float>(want), 0);
  // The input spec now holds the last dim: 6 columns is an error naming the layer.
  expect_error([&] { (*d)(random_tensor({4, 6}, 2)); }, Code::kInvalidArgument,
               {"layer 'dense' (Dense)", "(4, 6)", "expected the last axis to be 5"});
  expect_error([&] { (*d)(random_tensor({5}, 2)); }, Code::kInvalidArgument, {"expected rank >= 2"});
}

// A deferred checkpoint restore (call_when_built) runs before any other thread's first call goes
// on: a call racing the building one waits for the restored values instead of reading the
// initial weights. The callback sees the layer built on its own thread.
TEST_F(LayersTest, WhenBuiltCallbacksRunBeforeOtherThreadsCall) {
  LayerPtr d = dense(2);
  std::atomic<bool> started{false}, restored{false};
  ASSERT_TRUE(d->call_when_built([&] {
    EXPECT_TRUE(d->built());
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    d->variables()[0]->assign(ops::zeros(Shape({3, 2}), DType::kFloat32));
    // A second restore arriving from another thread meanwhile is kept and runs before the
    // build ends (it was left in a list nobody read again).
    std::thread([&] {
      EXPECT_TRUE(d->call_when_built([&] {
        d->variables()[0]->assign(ops::ones(Shape({3, 2}), DType::kFloat32));
        restored = true;
      }));
    }).join();
  }));
  const Tensor x = ops::ones(Shape({1, 3}), DType::kFloat32);
  std::thread first([&] { (*d)(x); });
  while (!started) std::this_thread::yield();
  EXPECT_FALSE(d->built()) << "built to other threads only once the callbacks have run";
  const Tensor y = (*d)(x);  // waits for the build and its callbacks
  EXPECT_TRUE(restored);
  testing::expect_near(y, {3.0f, 3.0f}, 0);
  first.join();
  EXPECT_TRUE(d->built());
  EXPECT_FALSE(d->call_when_built([] {}));
}

// Integer and bool features go through Dense cast to its compute dtype, as Keras's Dense casts them.
TEST_F(LayersTest, DenseCastsIntegerInputs) {
  LayerPtr d = dense(3, "relu");
  const Tensor xi = testing::make_typed<int64_t>({2, 4}, {1, -2, 3, 0, 5, 6, -7, 8});
  const Tensor y = (*d)(xi);
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  const Tensor want = (*d)(ops::cast(xi, DType::kFloat32));
  testing::expect_near(y, testing::values<float>(want), 0);
  const Tensor yb = (*d)(testing::make_bool({1, 4}, {1, 0, 1, 1}));
  EXPECT_EQ(yb.shape(), Shape({1, 3}));
}

// bfloat16 and float64 Dense layers (with their bias) compute matmul -> bias_add -> activation
// in their own dtype.
TEST_F(LayersTest, DenseInBfloat16AndFloat64) {
  for (const DType dt : {DType::kBFloat16, DType::kFloat64}) {
    Config c;
    c.set("units", int64_t{3}).set("activation", "tanh").set("dtype", dtype_name(dt));
    LayerPtr d = create_layer("Dense", c);
    const Tensor x = ops::cast(random_tensor({4, 5}, 3), dt);
    const Tensor y = (*d)(x);
    EXPECT_EQ(y.dtype(), dt);
    const Tensor want =
        ops::tanh(ops::add(ops::matmul(x, d->variables()[0]->peek()), d->variables()[1]->peek()));
    testing::expect_near(ops::cast(y, DType::kFloat32), testing::values<float>(ops::cast(want, DType::kFloat32)), 0);
  }
}

// A Sequential config's build_input_shape builds the model, in Keras 3's list form and Keras 2's
// encoded TensorShape; a form kiln does not know is left alone (the model builds on its first
// call), as before kiln read the key.
TEST_F(LayersTest, SequentialBuildsFromItsConfigsBuildInputShape) {
  const std::string layers = R"("layers": [{"class_name": "Dense", "config": {"units": 2}}])";
  for (const std::string &shape : {std::string("[null, 3]"), std::string("[4, 3]"),
                                   std::string(R"({"class_name": "TensorShape", "items": [null, 3]})")}) {
    LayerPtr m = create_layer("Sequential",
                              Config::from_json("{" + layers + R"(, "build_input_shape": )" + shape + "}"));
    EXPECT_TRUE(m->built()) << shape;
    EXPECT_EQ(m->variables().size(), 2u) << shape;
    EXPECT_EQ(m->variables()[0]->shape(), Shape({3, 2})) << shape;
  }
  for (const std::string &shape :
       {std::string("\"(None, 3)\""), std::string("[]"), std::string("[null, 2.5]")})
    EXPECT_FALSE(create_layer("Sequential",
                              Config::from_json("{" + layers + R"(, "build_input_shape": )" + shape + "}"))
                     ->built())
        << shape;
}

// Keras's input layer: an InputLayer first (Keras 3's config, or tf.keras 2's with
// batch_input_shape), or a first layer with an input_shape argument, builds the Sequential as its
// layers are added; the InputLayer is not one of its layers and leads its config's list.
TEST_F(LayersTest, SequentialWithAnInputLayerBuildsAsLayersAreAdded) {
  const std::string keras3 = R"({"name": "s3", "layers": [
      {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
       "config": {"batch_shape": [null, 3], "dtype": "float32", "sparse": false, "ragged": false,
                  "name": "input_layer", "optional": false}},
      {"class_name": "Dense", "config": {"units": 2}}]})";
  const std::string keras2 = R"({"name": "s2", "layers": [
      {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "dtype": "float32",
                                             "sparse": false, "ragged": false, "name": "dense_input"}},
      {"class_name": "Dense", "config": {"units": 2, "batch_input_shape": [null, 3]}}]})";
  const std::string legacy =
      R"({"layers": [{"class_name": "Dense", "config": {"units": 2, "input_shape": [3]}}]})";
  for (const std::string &json : {keras3, keras2, legacy}) {
    auto m = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", Config::from_json(json)));
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->built()) << json;
    EXPECT_EQ(m->layers().size(), 1u) << json;
    ASSERT_EQ(m->variables().size(), 2u) << json;
    EXPECT_EQ(m->variables()[0]->shape(), Shape({3, 2})) << json;
    ASSERT_TRUE(m->input_layer());
    EXPECT_EQ(m->input_layer()->batch_shape(), (PartialShape{kUnknownDim, 3}));
    // The config leads with the InputLayer, and builds the same model again.
    const Config c = serialize_layer(*m);
    const std::vector<Config> entries = c.get_config("config").get_config_list("layers");
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].get_string("class_name"), "InputLayer");
    EXPECT_EQ(entries[0].get_config("config").get_dims("batch_shape"), (std::vector<int64_t>{-1, 3}));
    LayerPtr again = deserialize_layer(c);
    EXPECT_TRUE(again->built());
    EXPECT_EQ(again->variables().size(), 2u);
  }

  // add builds after each layer; a layer that does not fit leaves the model as it was.
  auto m = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", Config()));
  Config in;
  in.set("shape", std::vector<int64_t>{3}).set("batch_size", int64_t{5}).set("dtype", "float32");
  m->add(create_layer("InputLayer", in));
  EXPECT_FALSE(m->built());
  m->add(dense(4));
  EXPECT_TRUE(m->built());
  EXPECT_EQ(m->build_input_shapes(), (std::vector<PartialShape>{{5, 3}}));
  Config reshape;
  reshape.set("target_shape", std::vector<int64_t>{5});
  expect_error([&] { m->add(create_layer("Reshape", reshape)); }, Code::kInvalidArgument, {"reshape"});
  EXPECT_EQ(m->layers().size(), 1u);
  m->add(dense(2));
  EXPECT_TRUE(m->built());
  EXPECT_EQ(m->variables().size(), 4u);
  const Tensor y = (*m)(random_tensor({5, 3}, 1));
  EXPECT_EQ(y.shape(), Shape({5, 2}));
  expect_error([&] { m->add(create_layer("InputLayer", in)); }, Code::kInvalidArgument,
               {"already been configured to use input shape (5, 3)"});
  expect_error(
      [&] {
        (*m)(random_tensor({5, 4}, 1));
      },
      Code::kInvalidArgument, {"expected the last axis to be 3"});
  expect_error([&] { (*m)(random_tensor({5, 3, 1}, 1)); }, Code::kInvalidArgument, {"expected rank 2"});
  // A failed first add with a legacy input_shape leaves no trace: a fitting layer goes in after it.
  auto fresh = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", Config()));
  expect_error(
      [&] {
        fresh->add(create_layer(
            "Conv2D", Config::from_json(R"({"filters": 2, "kernel_size": 3, "input_shape": [8, 8]})")));
      },
      Code::kInvalidArgument, {});
  EXPECT_FALSE(fresh->input_layer());
  fresh->add(dense(2));
  EXPECT_EQ((*fresh)(random_tensor({4, 3, 5}, 2)).shape(), Shape({4, 3, 2}));
  // The Input's dtype: int32 data into a float32 Input is cast, as Keras converts it.
  const Tensor ints = ops::cast(random_tensor({5, 3}, 3, -4.0f, 4.0f), DType::kInt32);
  EXPECT_EQ((*m)(ints).dtype(), DType::kFloat32);
  auto late = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", Config()));
  late->add(dense(2));
  expect_error([&] { late->add(create_layer("InputLayer", in)); }, Code::kInvalidArgument,
               {"must be the first layer"});
  m->pop();
  EXPECT_TRUE(m->built());  // rebuilt for the layers left
  EXPECT_EQ(m->variables().size(), 2u);
  // Names are unique within a Sequential (the input layer's too), as Keras's add requires.
  const size_t before = m->layers().size();
  expect_error(
      [&] { m->add(create_layer("Dense", Config().set("units", 2).set("name", m->layers()[0]->name()))); },
      Code::kInvalidArgument, {"unique names", "'" + m->layers()[0]->name() + "'"});
  expect_error(
      [&] { m->add(create_layer("Dense", Config().set("units", 2).set("name", m->input_layer()->name()))); },
      Code::kInvalidArgument, {"unique names"});
  EXPECT_EQ(m->layers().size(), before);
  expect_error(
      [] {
        deserialize_layer(Config::from_json(
            R"({"class_name": "Sequential", "config": {"layers": [
                 {"class_name": "Dense", "config": {"units": 2, "name": "d"}},
                 {"class_name": "Dense", "config": {"units": 2, "name": "d"}}]}})"));
      },
      Code::kInvalidArgument, {"unique names", "'d'"});
}

TEST_F(LayersTest, InputLayerChecksItsConfig) {
  auto make = [](const std::string &json) { return create_layer("InputLayer", Config::from_json(json)); };
  auto in = std::dynamic_pointer_cast<InputLayer>(make(R"({"shape": [null, 8], "dtype": "int32"})"));
  ASSERT_TRUE(in);
  EXPECT_EQ(in->batch_shape(), (PartialShape{kUnknownDim, kUnknownDim, 8}));
  EXPECT_EQ(in->input_dtype(), DType::kInt32);
  EXPECT_EQ(
      std::dynamic_pointer_cast<InputLayer>(
          make(
              R"({"batch_shape": [2, 3], "dtype": {"class_name": "DTypePolicy", "config": {"name": "float64"}}})"))
          ->input_dtype(),
      DType::kFloat64);
  expect_error([&] { make("{}"); }, Code::kInvalidArgument, {"give a shape"});
  expect_error([&] { make(R"({"shape": [3], "batch_shape": [null, 3]})"); }, Code::kInvalidArgument,
               {"not both"});
  expect_error([&] { make(R"({"batch_shape": [null, 3], "batch_size": 2})"); }, Code::kInvalidArgument,
               {"batch_size"});
  expect_error([&] { make(R"({"shape": [-2]})"); }, Code::kInvalidArgument, {"non-negative ints and nulls"});
  expect_error([&] { make(R"({"shape": [3], "batch_size": 0})"); }, Code::kInvalidArgument, {"positive"});
  expect_error([&] { make(R"({"shape": [3], "dtype": "float16"})"); }, Code::kInvalidArgument,
               {"'float16' is not a kiln dtype", "float32"});
  expect_error([&] { make(R"({"shape": [3], "sparse": true})"); }, Code::kUnimplemented, {"sparse"});
  expect_error([&] { make(R"({"shape": [3], "units": 2})"); }, Code::kInvalidArgument, {"units"});
  expect_error(
      [&] {
        create_layer("Dense", Config::from_json(
                                  R"({"units": 2, "input_shape": [3], "batch_input_shape": [null, 3]})"));
      },
      Code::kInvalidArgument, {"not both"});
}

TEST_F(LayersTest, SequentialOrdersVariablesDepthFirstAndScopesNames) {
  // From a config: the layers keep the names their configs hold, as Keras's from_config.
  Config c;
  c.set("layers", std::vector<Config>{serialize_layer(*dense(4)), serialize_layer(*dense(2))});
  auto seq = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", c));
  ASSERT_TRUE(seq);
  seq->build({{kUnknownDim, 3}});
  EXPECT_EQ(names(seq->trainable_variables()),
            (std::vector<std::string>{"sequential/dense/kernel", "sequential/dense/bias",
                                      "sequential/dense_1/kernel", "sequential/dense_1/bias"}));
  EXPECT_EQ(seq->count_params(), 3 * 4 + 4 + 4 * 2 + 2);
  EXPECT_EQ(seq->layers()[1]->output_shapes(), (std::vector<PartialShape>{{kUnknownDim, 2}}));
  const Tensor y = (*seq)(random_tensor({5, 3}, 3));
  EXPECT_EQ(y.shape(), Shape({5, 2}));

  // Nested: a Sequential inside a Sequential.
  Config outer;
  outer.set("layers", std::vector<Config>{serialize_layer(*seq), serialize_layer(*dense(1))});
  LayerPtr o = create_layer("Sequential", outer);
  o->build({{kUnknownDim, 3}});
  EXPECT_EQ(o->variables().size(), 6u);
  EXPECT_EQ(o->variables()[0]->name(), "sequential_1/sequential/dense/kernel");
}

TEST_F(LayersTest, SummaryMatchesKerasLayout) {
  Config c;
  c.set("name", "sequential");
  auto seq = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", c));
  seq->add(dense(64, "relu"));
  seq->add(dense(10));
  seq->build({{kUnknownDim, 784}});
  const std::string want =
      "Model: \"sequential\"\n"
      "_________________________________________________________________\n"
      " Layer (type)                Output Shape              Param #   \n"
      "=================================================================\n"
      " dense (Dense)               (None, 64)                50240     \n"
      "                                                                 \n"
      " dense_1 (Dense)             (None, 10)                650       \n"
      "                                                                 \n"
      "=================================================================\n"
      "Total params: 50890 (198.79 KB)\n"
      "Trainable params: 50890 (198.79 KB)\n"
      "Non-trainable params: 0 (0.00 Byte)\n"
      "_________________________________________________________________\n";
  EXPECT_EQ(summary(*seq), want);
}

// A line too narrow for its columns wraps every field a character at a time and ends (it used
// to loop for ever below 8 columns).
TEST_F(LayersTest, SummaryOfANarrowLineEnds) {
  Config c;
  auto seq = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", c));
  seq->add(dense(3));
  seq->build({{kUnknownDim, 4}});
  for (int64_t width : {0, 1, 2, 5, 7, 8}) {
    const std::string s = summary(*seq, width);
    EXPECT_NE(s.find("Total params: 15"), std::string::npos) << width;
    EXPECT_LT(s.size(), 4000u) << width;
  }
}

TEST_F(LayersTest, TrainableSwitchFreezesLayerAndChildren) {
  Config c;
  c.set("layers", std::vector<Config>{serialize_layer(*dense(2))});
  LayerPtr seq = create_layer("Sequential", c);
  seq->build({{kUnknownDim, 3}});
  seq->set_trainable(false);
  EXPECT_TRUE(seq->trainable_variables().empty());
  EXPECT_EQ(seq->non_trainable_variables().size(), 2u);
  EXPECT_FALSE(seq->layers()[0]->trainable());
  // A frozen variable is not watched by a tape that watches accessed variables.
  autodiff::Tape tape(false, true);
  const Tensor y = ops::sum((*seq)(random_tensor({2, 3}, 4)));
  const std::vector<Tensor> g = tape.gradient(y, {*seq->variables()[0]}, autodiff::Unconnected::kNone);
  EXPECT_FALSE(g[0].defined());
  seq->set_trainable(true);
  EXPECT_EQ(seq->trainable_variables().size(), 2u);
}

TEST_F(LayersTest, ConfigRoundTripsThroughTheRegistry) {
  Config c;
  c.set("units", 7).set("activation", "tanh").set("use_bias", false).set("kernel_regularizer", "l2");
  LayerPtr d = create_layer("Dense", c);
  const Config saved = serialize_layer(*d);
  EXPECT_EQ(saved.get_string("class_name"), "Dense");
  const Config inner = saved.get_config("config");
  EXPECT_EQ(inner.get_int("units"), 7);
  EXPECT_EQ(inner.get_string("activation"), "tanh");
  EXPECT_EQ(inner.get_config("kernel_initializer").get_string("class_name"), "GlorotUniform");
  EXPECT_EQ(inner.get_config("kernel_regularizer").get_config("config").get_float("l2"), 0.01);
  LayerPtr back = deserialize_layer(saved);
  EXPECT_EQ(back->get_config(), inner);

  expect_error([] { create_layer("Dense2", Config()); }, Code::kNotFound, {"unknown layer class 'Dense2'", "Dense"});
  Config typo;
  typo.set("units", 2).set("activaton", "relu");
  expect_error([&] { create_layer("Dense", typo); }, Code::kInvalidArgument, {"Dense: unknown config key 'activaton'"});
  expect_error([] { create_layer("Dense", Config()); }, Code::kInvalidArgument, {"'units' is required"});
  Config bad_act;
  bad_act.set("units", 2).set("activation", "rellu");
  expect_error([&] { create_layer("Dense", bad_act); }, Code::kNotFound, {"unknown activation 'rellu'"});
}

TEST_F(LayersTest, WeightsLockAfterBuildAndNamesAreUnique) {
  LayerPtr d = dense(2);
  d->build({{kUnknownDim, 3}});
  expect_error([&] { d->add_weight("extra", Shape({1}), DType::kFloat32, *get_initializer("zeros"), true); },
               Code::kFailedPrecondition, {"layer 'dense'", "add_weight('extra') after the layer was built"});
  LayerPtr e = dense(2);
  e->add_weight("w", Shape({1}), DType::kFloat32, *get_initializer("zeros"), true);
  expect_error([&] { e->add_weight("w", Shape({1}), DType::kFloat32, *get_initializer("zeros"), true); },
               Code::kInvalidArgument, {"a weight named 'w' already exists"});
}

TEST_F(LayersTest, RegularizerLossesAndBatchNormStatistics) {
  Config c;
  c.set("units", 2).set("kernel_regularizer", "l2").set("kernel_initializer", "ones");
  LayerPtr d = create_layer("Dense", c);
  (*d)(random_tensor({1, 3}, 5));
  const std::vector<Tensor> losses = d->losses();
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_FLOAT_EQ(losses[0].data<float>()[0], 0.01f * 6);

  LayerPtr bn = create_layer("BatchNormalization", Config());
  const Tensor x = random_tensor({8, 3}, 6, 0.0f, 4.0f);
  (*bn)(x);  // inference: no statistics update
  EXPECT_EQ(names(bn->variables()),
            (std::vector<std::string>{"batch_normalization/gamma", "batch_normalization/beta",
                                      "batch_normalization/moving_mean", "batch_normalization/moving_variance"}));
  EXPECT_EQ(bn->trainable_variables().size(), 2u);
  EXPECT_FLOAT_EQ(bn->variables()[2]->peek().data<float>()[0], 0.0f);
  CallContext train;
  train.training = true;
  (*bn)({x}, train);
  const float batch_mean = testing::values<float>(ops::mean(x, {0}))[0];
  EXPECT_NEAR(bn->variables()[2]->peek().data<float>()[0], 0.01f * batch_mean, 1e-6f);
}

TEST_F(LayersTest, ActivityLossesAreThoseOfTheLastCall) {
  Config c;
  c.set("units", 1).set("activity_regularizer", "l2").set("kernel_initializer", "ones");
  LayerPtr d = create_layer("Dense", c);
  for (const float v : {1.0f, 2.0f, 3.0f}) {
    (*d)(ops::fill(Shape({1, 2}), v));  // y = 2 v
    const std::vector<Tensor> losses = d->losses();
    ASSERT_EQ(losses.size(), 1u) << "after the call with " << v;
    EXPECT_FLOAT_EQ(losses[0].data<float>()[0], 0.01f * 4 * v * v);
  }
  // The loss is divided by the batch size (tf.keras, Keras >= 3.14); a batch of none gives 0.
  (*d)(ops::fill(Shape({4, 2}), 1.0f));  // y = 2 in each of 4 rows
  EXPECT_FLOAT_EQ(d->losses()[0].data<float>()[0], 0.01f * 4 * 4 / 4);
  (*d)(Tensor::empty(DType::kFloat32, {0, 2}));
  EXPECT_EQ(d->losses()[0].data<float>()[0], 0.0f);
  LayerPtr conv = create_layer("Conv1D", Config()
                                             .set("filters", 1)
                                             .set("kernel_size", 1)
                                             .set("activity_regularizer", "l1")
                                             .set("kernel_initializer", "ones"));
  (*conv)(ops::fill(Shape({3, 5, 2}), 1.0f));  // y = 2 at each of 3 x 5 places
  EXPECT_FLOAT_EQ(conv->losses()[0].data<float>()[0], 0.01f * 2 * 15 / 3);
  // Embedding's activity regularizer (it was accepted and ignored), and MultiHeadAttention's on each
  // output (Keras's __call__ regularizes every output: the scores too).
  Config ec;
  ec.set("input_dim", 3)
      .set("output_dim", 2)
      .set("embeddings_initializer", "ones")
      .set("activity_regularizer", "l1");
  LayerPtr emb = create_layer("Embedding", ec);
  (*emb)(testing::make_typed<int32_t>(Shape({2, 3}), {0, 1, 2, 2, 1, 0}));
  ASSERT_EQ(emb->losses().size(), 1u);
  EXPECT_FLOAT_EQ(emb->losses()[0].data<float>()[0], 0.01f * 12 / 2);
  EXPECT_EQ(emb->get_config().get_config("activity_regularizer").get_string("class_name"), "L1");
  Config mc;
  mc.set("num_heads", 2).set("key_dim", 2).set("activity_regularizer", "l1");
  LayerPtr mha = create_layer("MultiHeadAttention", mc);
  const Tensor q = random_tensor({2, 3, 4}, 9);
  const Tensor flag = ops::cast(ops::fill(Shape({}), 1.0), DType::kBool),
               no = ops::cast(ops::fill(Shape({}), 0.0), DType::kBool), all = ops::ones(Shape({2, 3, 3}));
  (*mha)({q, q, q, all, flag}, CallContext());
  ASSERT_EQ(mha->losses().size(), 2u);
  // [2, 2 heads, 3, 3] probabilities, each row summing to 1: 0.01 * 12 over a batch of 2
  EXPECT_NEAR(mha->losses()[1].data<float>()[0], 0.01f * 2 * 2 * 3 / 2, 1e-6f);
  (*mha)({q, q, q, all, no}, CallContext());
  EXPECT_EQ(mha->losses().size(), 1u);
  LayerPtr plain = dense(1);
  (*plain)(random_tensor({1, 2}, 7));
  (*plain)(random_tensor({1, 2}, 8));
  EXPECT_TRUE(plain->losses().empty());
}

TEST_F(LayersTest, DropoutOnlyInTraining) {
  Config c;
  c.set("rate", 0.5);
  LayerPtr d = create_layer("Dropout", c);
  const Tensor x = ops::ones(Shape({1000}));
  EXPECT_EQ(testing::values<float>((*d)(x, false)), testing::values<float>(x));
  const std::vector<float> y = testing::values<float>((*d)(x, true));
  int zeros = 0;
  for (float v : y) zeros += v == 0.0f;
  EXPECT_GT(zeros, 400);
  EXPECT_LT(zeros, 600);
}

TEST_F(LayersTest, ComputeOutputShapeKeepsUnknownDims) {
  LayerPtr d = dense(5);
  EXPECT_EQ(d->compute_output_shape({{kUnknownDim, 7, 3}}), (std::vector<PartialShape>{{kUnknownDim, 7, 5}}));
  Config r;
  r.set("target_shape", std::vector<int64_t>{2, -1});
  EXPECT_EQ(create_layer("Reshape", r)->compute_output_shape({{kUnknownDim, 6}}),
            (std::vector<PartialShape>{{kUnknownDim, 2, 3}}));
}

}  // namespace
}  // namespace kiln::layers
