// kiln.hpp: custom layer classes by name (register_layer_class), so a Sequential holding a C++
// subclass deserializes; the objects a class factory makes live exactly as long as their layers.
#include <gtest/gtest.h>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Config;
using kiln::Dims;
using kiln::Tensor;

int g_live = 0;  // ScaledDense objects alive

class ScaledDense : public kiln::Layer {
 public:
  ScaledDense(int64_t units, double scale, const Config &base = Config())
      : Layer("HppTest>ScaledDense", base), units_(units), scale_(scale) {
    ++g_live;
  }
  explicit ScaledDense(const Config &c) : ScaledDense(c.get_int("units"), c.get_float("scale"), base_config(c)) {}
  ~ScaledDense() override { --g_live; }

 protected:
  void build(const std::vector<Dims> &shapes) override { w_ = add_weight("kernel", {shapes[0].back(), units_}, "ones"); }
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override {
    return {kiln::matmul(x[0], w_.value()) * Tensor::scalar(static_cast<float>(scale_))};
  }
  void get_config(Config &c) const override { c.set("units", units_).set("scale", scale_); }

 private:
  int64_t units_;
  double scale_;
  kiln::Variable w_;
};

// A model with a sub-layer, made from its config: its children are tracked as usual.
class Tower : public kiln::Model {
 public:
  explicit Tower(const Config &c) : Model("HppTest>Tower", base_config(c)), inner_(2, 0.5) { track(inner_); }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {kiln::relu(inner_(x[0], training))};
  }

 private:
  ScaledDense inner_;
};

Tensor input() { return kiln::testing::sawtooth({3, 4}, 5, 0.5f); }

TEST(HppLayerRegistry, SequentialWithCustomLayerRoundTrips) {
  kiln::clear_session();
  kiln::register_layer_class<ScaledDense>("HppTest>ScaledDense");
  EXPECT_TRUE(kiln::layer_class_registered("HppTest>ScaledDense"));
  Config serialized;
  Tensor want;
  {
    ScaledDense custom(3, 0.25);
    EXPECT_EQ(custom.class_name(), "ScaledDense");
    kiln::layers::DenseOptions ones;
    ones.kernel_initializer = "ones";
    kiln::Sequential seq({kiln::layers::Dense(5, ones), custom});
    want = seq(input());
    serialized = seq.serialize();
  }
  EXPECT_EQ(g_live, 0);
  {
    kiln::Layer clone = kiln::Layer::deserialize(serialized);
    EXPECT_EQ(g_live, 1);  // made by the factory, owned by the layer
    ASSERT_EQ(clone.layers().size(), 2u);
    EXPECT_EQ(clone.layers()[1].class_name(), "ScaledDense");
    EXPECT_EQ(clone.layers()[1].get_config().get_float("scale"), 0.25);
    EXPECT_EQ(clone(input()).to_vector<float>(), want.to_vector<float>());
    EXPECT_EQ(clone.serialize().to_json(), serialized.to_json());
  }
  EXPECT_EQ(g_live, 0);  // gone with its layer
  kiln::unregister_layer_class("HppTest>ScaledDense");
  EXPECT_FALSE(kiln::layer_class_registered("HppTest>ScaledDense"));
  try {
    kiln::Layer::deserialize(serialized);
    FAIL() << "expected NOT_FOUND";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("ScaledDense"), std::string::npos) << e.what();
  }
}

TEST(HppLayerRegistry, ModelSubclassFromConfig) {
  kiln::clear_session();
  kiln::register_layer_class<Tower>("HppTest>Tower");
  {
    kiln::Layer tower = kiln::Layer::create("HppTest>Tower", Config().set("name", "t"));
    EXPECT_EQ(tower.name(), "t");
    EXPECT_TRUE(tower.is_model());
    Tensor y = tower(input());
    EXPECT_EQ(y.shape(), (Dims{3, 2}));
    ASSERT_EQ(tower.trainable_variables().size(), 1u);
    EXPECT_EQ(tower.trainable_variables()[0].name(), "t/scaled_dense/kernel");
    EXPECT_EQ(g_live, 1);
  }
  EXPECT_EQ(g_live, 0);
  kiln::unregister_layer_class("HppTest>Tower");
}

TEST(HppLayerRegistry, FactoryFunctionsAndErrors) {
  kiln::register_layer_class("HppTest>Twice", [](const Config &c) {
    if (!c.has("units")) throw kiln::Error(KILN_STATUS_INVALID_ARGUMENT, "Twice needs units");
    return kiln::layers::Dense(c.get_int("units"));
  });
  EXPECT_EQ(kiln::Layer::create("HppTest>Twice", Config().set("units", int64_t{2})).class_name(), "Dense");
  try {
    kiln::Layer::create("HppTest>Twice");
    FAIL() << "expected INVALID_ARGUMENT";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("Twice needs units"), std::string::npos) << e.what();
  }
  kiln::unregister_layer_class("HppTest>Twice");
  EXPECT_THROW(kiln::register_layer_class<ScaledDense>("Dense"), kiln::Error);  // a built-in name
}

}  // namespace
