// kiln.hpp mixed precision: kiln::mixed_precision's global policy and DTypePolicy, a layer's
// dtype_policy/compute_dtype/variable_dtype, a mixed_bfloat16 model trained with a tape and Adam
// (float32 weights, gradients and slots), a custom layer whose weight reads in bfloat16 inside
// its call, and bad policy names as errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

namespace mp = kiln::mixed_precision;
namespace kl = kiln::layers;
using kiln::DType;
using kiln::Tensor;

class HppMixedPrecision : public ::testing::Test {
 protected:
  void TearDown() override {
    mp::set_global_policy("float32");
  }
};

TEST_F(HppMixedPrecision, Policies) {
  EXPECT_EQ(mp::global_policy().name(), "float32");
  const mp::DTypePolicy p("mixed_bfloat16");
  EXPECT_EQ(p.compute_dtype(), DType::bfloat16);
  EXPECT_EQ(p.variable_dtype(), DType::float32);
  EXPECT_EQ(mp::Policy("float64").compute_dtype(), DType::float64);
  try {
    mp::set_global_policy("mixed_half");
    FAIL() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("mixed_bfloat16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mp::DTypePolicy("mixed_float16"), kiln::Error);
  EXPECT_EQ(mp::global_policy(), mp::DTypePolicy("float32"));
  {
    mp::PolicyScope scope("mixed_bfloat16");
    EXPECT_EQ(mp::global_policy().name(), "mixed_bfloat16");
    const kiln::Layer d = kl::Dense(3);
    EXPECT_EQ(d.dtype_policy().name(), "mixed_bfloat16");
    EXPECT_EQ(d.compute_dtype(), DType::bfloat16);
    EXPECT_EQ(d.variable_dtype(), DType::float32);
    const kiln::Layer f = kiln::Layer::create("Dense", kiln::Config().set("units", 3).set("dtype", "float32"));
    EXPECT_EQ(f.compute_dtype(), DType::float32);
  }
  EXPECT_EQ(mp::global_policy().name(), "float32");
  EXPECT_EQ(kl::Dense(3).dtype_policy().name(), "float32");
}

TEST_F(HppMixedPrecision, TrainsWithFloat32VariablesGradientsAndSlots) {
  mp::set_global_policy(mp::DTypePolicy("mixed_bfloat16"));
  kiln::Sequential model({kl::Dense(8, "tanh"),
                          kiln::Layer::create("Dense", kiln::Config().set("units", 1).set("dtype", "float32"))});
  mp::set_global_policy("float32");
  const Tensor x = kiln::testing::sawtooth({16, 4}, 13, 0.15f);
  const Tensor y = kiln::sum(x, {1}, true);
  EXPECT_EQ(model.layers()[0](x).dtype(), DType::bfloat16);
  kiln::optimizers::Optimizer adam = kiln::optimizers::Optimizer::create("Adam", kiln::Config().set("learning_rate", 0.02));
  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    kiln::GradientTape tape;
    const Tensor p = model(x, true);
    EXPECT_EQ(p.dtype(), DType::float32);
    const Tensor d = p - y;
    const Tensor loss = kiln::mean(d * d);
    tape.stop();
    const std::vector<kiln::Variable> vars = model.trainable_variables();
    const std::vector<Tensor> g = tape.gradient(loss, vars);
    for (const Tensor &t : g) EXPECT_EQ(t.dtype(), DType::float32);
    adam.apply_gradients(g, vars);
    (step == 0 ? first : last) = loss.to_vector<float>()[0];
  }
  EXPECT_LT(last, 0.5f * first);
  for (const kiln::Variable &v : model.trainable_variables()) {
    EXPECT_EQ(v.value().dtype(), DType::float32);
    EXPECT_EQ(adam.get_slot(v, "momentum").value().dtype(), DType::float32);
  }
  // The policy is in the config and comes back with it.
  const kiln::Layer again = kiln::Layer::deserialize(model.serialize());
  EXPECT_EQ(again.dtype_policy().name(), "mixed_bfloat16");
  EXPECT_EQ(again.layers()[1].dtype_policy().name(), "float32");
}

// A custom layer: y = x * w. Under mixed_bfloat16 its input arrives in bfloat16 and its float32
// weight reads as bfloat16 inside call, so the product is bfloat16 without any cast of its own.
class Scale : public kiln::Layer {
 public:
  Scale() : kiln::Layer("Scale") {}
  DType seen_weight_dtype = DType::int32;

 protected:
  void build(const std::vector<kiln::Dims> &shapes) override { w_ = add_weight("w", {shapes[0].back()}, "ones"); }
  std::vector<Tensor> call(const std::vector<Tensor> &inputs, bool) override {
    const Tensor w = w_.value();
    seen_weight_dtype = w.dtype();
    return {inputs[0] * w};
  }

 private:
  kiln::Variable w_;
};

TEST_F(HppMixedPrecision, CustomLayerReadsWeightsInComputeDtype) {
  mp::PolicyScope scope("mixed_bfloat16");
  Scale s;
  const Tensor y = s(kiln::testing::sawtooth({2, 3}, 5));
  EXPECT_EQ(y.dtype(), DType::bfloat16);
  EXPECT_EQ(s.seen_weight_dtype, DType::bfloat16);
  EXPECT_EQ(s.variables()[0].value().dtype(), DType::float32);  // outside a call: the variable itself
}

}  // namespace
