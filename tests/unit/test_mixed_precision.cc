// Keras's dtype policies and mixed_bfloat16: float32 variables and optimizer state, bfloat16
// compute and outputs, float32 gradients, float32 normalization statistics, the per-layer
// dtype override, the policy in get_config/from_config, and the bf16 matmul fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "autodiff/autocast.h"
#include "autodiff/tape.h"
#include "core/config.h"
#include "kernels/matmul.h"
#include "layers/layer.h"
#include "layers/policy.h"
#include "ops/ops.h"
#include "test_util.h"
#include "train/optimizer.h"

namespace kiln::layers {
namespace {

using testing::random_tensor;
using testing::values;

// Every test restores the global policy, so a failing test cannot leak mixed precision.
class MixedPrecisionTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = global_policy(); }
  void TearDown() override {
    set_global_policy(saved_);
    kernels::set_matmul_bf16_force_fallback(false);
  }
  DTypePolicy saved_;
};

Config dense_config(int64_t units, const std::string &activation = "linear") {
  Config c;
  c.set("units", units).set("activation", activation);
  return c;
}

LayerPtr sequential(const std::vector<LayerPtr> &layers) {
  std::vector<Config> serialized;
  for (const LayerPtr &l : layers) serialized.push_back(serialize_layer(*l));
  Config c;
  c.set("layers", serialized);
  return create_layer("Sequential", c);
}

std::vector<float> as_floats(const Tensor &t) { return values<float>(ops::cast(t, DType::kFloat32)); }

// max |a - b| / (1 + |b|)
float max_rel_diff(const Tensor &a, const Tensor &b) {
  const std::vector<float> x = as_floats(a), y = as_floats(b);
  EXPECT_EQ(x.size(), y.size());
  float m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]) / (1 + std::fabs(y[i])));
  return m;
}

// Copies every variable value of `from` into the same-position variable of `to` (cast to its dtype).
void copy_weights(const Layer &from, const Layer &to) {
  const auto a = from.variables(), b = to.variables();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) b[i]->assign(ops::cast(a[i]->peek(), b[i]->dtype()));
}

TEST_F(MixedPrecisionTest, PoliciesByName) {
  const DTypePolicy m = dtype_policy("mixed_bfloat16");
  EXPECT_EQ(m.name, "mixed_bfloat16");
  EXPECT_EQ(m.compute_dtype, DType::kBFloat16);
  EXPECT_EQ(m.variable_dtype, DType::kFloat32);
  EXPECT_TRUE(m.mixed());
  for (const char *name : {"float32", "float64", "bfloat16"}) {
    const DTypePolicy p = dtype_policy(name);
    EXPECT_EQ(p.compute_dtype, p.variable_dtype) << name;
    EXPECT_EQ(dtype_name(p.compute_dtype), std::string(name));
  }
  try {
    dtype_policy("mixed_float32");
    FAIL() << "expected InvalidArgument";
  } catch (const Error &e) {
    EXPECT_EQ(e.code(), Code::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("mixed_bfloat16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'mixed_float32'"), std::string::npos) << e.what();
  }
  for (const char *name : {"float16", "mixed_float16"}) {
    try {
      dtype_policy(name);
      FAIL() << "expected Unimplemented for " << name;
    } catch (const Error &e) {
      EXPECT_EQ(e.code(), Code::kUnimplemented) << e.what();
    }
  }
}

TEST_F(MixedPrecisionTest, GlobalPolicyAppliesToNewLayersOnly) {
  EXPECT_EQ(global_policy().name, "float32");
  const LayerPtr before = create_layer("Dense", dense_config(2));
  set_global_policy(dtype_policy("mixed_bfloat16"));
  EXPECT_EQ(global_policy().name, "mixed_bfloat16");
  const LayerPtr after = create_layer("Dense", dense_config(2));
  EXPECT_EQ(before->dtype_policy().name, "float32");
  EXPECT_EQ(after->dtype_policy().name, "mixed_bfloat16");
  EXPECT_EQ(after->compute_dtype(), DType::kBFloat16);
  EXPECT_EQ(after->variable_dtype(), DType::kFloat32);
  EXPECT_EQ(after->dtype(), DType::kFloat32);  // Keras: layer.dtype is the variable dtype
  // A failed set leaves the global policy as it was.
  EXPECT_THROW(set_global_policy(DTypePolicy{"float8", DType::kFloat32, DType::kFloat32}), Error);
  EXPECT_EQ(global_policy().name, "mixed_bfloat16");
}

TEST_F(MixedPrecisionTest, DenseModelKeepsFloat32VariablesAndGradients) {
  set_global_policy(dtype_policy("mixed_bfloat16"));
  const LayerPtr hidden = create_layer("Dense", dense_config(16, "relu"));
  // Keras's advice: the last layer in float32, for a float32 softmax.
  Config last = dense_config(3, "softmax");
  last.set("dtype", "float32");
  const LayerPtr out = create_layer("Dense", last);
  const LayerPtr model = sequential({hidden, out});
  EXPECT_EQ(model->dtype_policy().name, "mixed_bfloat16");
  const Tensor x = random_tensor({8, 5}, 1);
  const Tensor h = (*model->layers()[0])(x);
  EXPECT_EQ(h.dtype(), DType::kBFloat16);  // autocast input, bf16 compute
  const Tensor y = (*model)(x);
  EXPECT_EQ(y.dtype(), DType::kFloat32);  // the float32 layer casts its bf16 input back
  ASSERT_EQ(model->variables().size(), 4u);
  for (const VariablePtr &v : model->variables()) EXPECT_EQ(v->dtype(), DType::kFloat32) << v->name();

  // Close to the same model in float32 (bf16 has 8 bits of mantissa).
  set_global_policy(dtype_policy("float32"));
  const LayerPtr ref = sequential({create_layer("Dense", dense_config(16, "relu")),
                                   create_layer("Dense", dense_config(3, "softmax"))});
  ref->build({{kUnknownDim, 5}});
  copy_weights(*model, *ref);
  EXPECT_LT(max_rel_diff(y, (*ref)(x)), 2e-2f);

  // Gradients arrive in float32, each with its variable's shape, and close to float32's.
  const Tensor labels = random_tensor({8, 3}, 2, 0.0f, 1.0f);
  auto loss_of = [&](Layer &m) {
    return ops::mean(ops::square(ops::sub(ops::cast(m(x, true), DType::kFloat32), labels)));
  };
  std::vector<Tensor> g, gref;
  {
    autodiff::Tape tape(false, true);
    const Tensor loss = loss_of(*model);
    autodiff::GradientSources src;
    for (const VariablePtr &v : model->trainable_variables()) src.push_back(*v);
    g = tape.gradient(loss, src, autodiff::Unconnected::kNone);
  }
  {
    autodiff::Tape tape(false, true);
    const Tensor loss = loss_of(*ref);
    autodiff::GradientSources src;
    for (const VariablePtr &v : ref->trainable_variables()) src.push_back(*v);
    gref = tape.gradient(loss, src, autodiff::Unconnected::kNone);
  }
  ASSERT_EQ(g.size(), 4u);
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(g[i].defined()) << i;
    EXPECT_EQ(g[i].dtype(), DType::kFloat32) << i;
    EXPECT_EQ(g[i].shape(), model->trainable_variables()[i]->shape()) << i;
    EXPECT_LT(max_rel_diff(g[i], gref[i]), 3e-2f) << i;
  }
}

TEST_F(MixedPrecisionTest, AdamTrainsWithFloat32Slots) {
  set_global_policy(dtype_policy("mixed_bfloat16"));
  Config last = dense_config(1);
  last.set("dtype", "float32");
  const LayerPtr model = sequential({create_layer("Dense", dense_config(8, "tanh")), create_layer("Dense", last)});
  const Tensor x = random_tensor({16, 4}, 3);
  // y = sum of x's features: learnable.
  const Tensor y = ops::sum(x, {1}, true);
  train::OptimizerPtr adam = train::make_optimizer("Adam", Config().set("learning_rate", 0.02));
  std::vector<double> losses;
  for (int step = 0; step < 30; ++step) {
    autodiff::Tape tape(false, true);
    const Tensor loss = ops::mean(ops::square(ops::sub(ops::cast((*model)(x, true), DType::kFloat32), y)));
    losses.push_back(values<float>(loss)[0]);
    const std::vector<VariablePtr> vars = model->trainable_variables();
    autodiff::GradientSources src;
    for (const VariablePtr &v : vars) src.push_back(*v);
    adam->apply_gradients(tape.gradient(loss, src, autodiff::Unconnected::kNone), vars);
  }
  EXPECT_LT(losses.back(), 0.5 * losses.front()) << losses.front() << " -> " << losses.back();
  for (const VariablePtr &v : model->trainable_variables()) {
    EXPECT_EQ(v->dtype(), DType::kFloat32);
    EXPECT_EQ(adam->slot(v->id(), "momentum")->dtype(), DType::kFloat32);
    EXPECT_EQ(adam->slot(v->id(), "velocity")->dtype(), DType::kFloat32);
  }
}

TEST_F(MixedPrecisionTest, ConvModelComputesInBfloat16) {
  set_global_policy(dtype_policy("mixed_bfloat16"));
  Config conv;
  conv.set("filters", 4).set("kernel_size", std::vector<int64_t>{3, 3}).set("activation", "relu");
  Config pool;
  pool.set("pool_size", std::vector<int64_t>{2, 2});
  const LayerPtr model = sequential({create_layer("Conv2D", conv), create_layer("MaxPooling2D", pool),
                                     create_layer("Flatten", Config()), create_layer("Dense", dense_config(3))});
  const Tensor x = random_tensor({2, 6, 6, 2}, 4);
  const Tensor y = (*model)(x);
  EXPECT_EQ(y.dtype(), DType::kBFloat16);
  EXPECT_EQ((*model->layers()[0])(x).dtype(), DType::kBFloat16);
  for (const VariablePtr &v : model->variables()) EXPECT_EQ(v->dtype(), DType::kFloat32) << v->name();

  set_global_policy(dtype_policy("float32"));
  const LayerPtr ref = sequential({create_layer("Conv2D", conv), create_layer("MaxPooling2D", pool),
                                   create_layer("Flatten", Config()), create_layer("Dense", dense_config(3))});
  ref->build({{kUnknownDim, 6, 6, 2}});
  copy_weights(*model, *ref);
  EXPECT_LT(max_rel_diff(y, (*ref)(x)), 3e-2f);

  autodiff::Tape tape(false, true);
  const Tensor loss = ops::sum(ops::cast((*model)(x, true), DType::kFloat32));
  autodiff::GradientSources src;
  for (const VariablePtr &v : model->trainable_variables()) src.push_back(*v);
  const std::vector<Tensor> g = tape.gradient(loss, src, autodiff::Unconnected::kNone);
  for (const Tensor &t : g) {
    ASSERT_TRUE(t.defined());
    EXPECT_EQ(t.dtype(), DType::kFloat32);
  }
}

TEST_F(MixedPrecisionTest, NormalizationComputesStatisticsInFloat32) {
  set_global_policy(dtype_policy("mixed_bfloat16"));
  const LayerPtr ln = create_layer("LayerNormalization", Config());
  const LayerPtr bn = create_layer("BatchNormalization", Config());
  EXPECT_FALSE(ln->autocast());
  // Large offsets: bf16 statistics would lose the small spread around them.
  const Tensor x = ops::add(random_tensor({4, 6}, 5), ops::fill(Shape({}), 300.0));
  const Tensor xb = ops::cast(x, DType::kBFloat16);
  const Tensor y = (*ln)(xb);
  EXPECT_EQ(y.dtype(), DType::kBFloat16);
  const Tensor z = (*bn)(xb, true);
  EXPECT_EQ(z.dtype(), DType::kBFloat16);
  for (const LayerPtr &l : {ln, bn})
    for (const VariablePtr &v : l->variables()) EXPECT_EQ(v->dtype(), DType::kFloat32) << v->name();

  set_global_policy(dtype_policy("float32"));
  const LayerPtr ln32 = create_layer("LayerNormalization", Config());
  const LayerPtr bn32 = create_layer("BatchNormalization", Config());
  // The reference sees the same bf16-rounded input, in float32.
  const Tensor x32 = ops::cast(xb, DType::kFloat32);
  EXPECT_LT(max_rel_diff(y, (*ln32)(x32)), 1e-2f);
  EXPECT_LT(max_rel_diff(z, (*bn32)(x32, true)), 1e-2f);
  // The moving statistics moved in float32 exactly as float32's did.
  const auto a = bn->non_trainable_variables(), b = bn32->non_trainable_variables();
  ASSERT_EQ(a.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LT(max_rel_diff(a[i]->peek(), b[i]->peek()), 1e-5f);
}

TEST_F(MixedPrecisionTest, EmbeddingDoesNotRoundIdsThroughBfloat16) {
  set_global_policy(dtype_policy("mixed_bfloat16"));
  Config c;
  c.set("input_dim", 400).set("output_dim", 2);
  const LayerPtr emb = create_layer("Embedding", c);
  // 301 is not a bfloat16 value (it would round to 300): ids must not be autocast.
  const Tensor ids = testing::make(Shape({1}), {301.0f});
  const Tensor y = (*emb)(ids);
  EXPECT_EQ(y.dtype(), DType::kBFloat16);
  const Tensor row = ops::gather(emb->variables()[0]->peek(), ops::cast(ids, DType::kInt32), 0);
  EXPECT_EQ(as_floats(y), as_floats(ops::cast(row, DType::kBFloat16)));
}

TEST_F(MixedPrecisionTest, PolicyRoundTripsThroughConfig) {
  set_global_policy(dtype_policy("mixed_bfloat16"));
  const LayerPtr d = create_layer("Dense", dense_config(3));
  const Config cfg = d->get_config();
  ASSERT_EQ(cfg.type("dtype"), Config::Type::kConfig);  // Keras 3's serialized DTypePolicy
  EXPECT_EQ(cfg.get_config("dtype").get_string("class_name"), "DTypePolicy");
  EXPECT_EQ(cfg.get_config("dtype").get_config("config").get_string("name"), "mixed_bfloat16");
  set_global_policy(dtype_policy("float32"));
  // from_config restores the layer's own policy, whatever the global one is now.
  const LayerPtr again = deserialize_layer(serialize_layer(*d));
  EXPECT_EQ(again->dtype_policy().name, "mixed_bfloat16");
  EXPECT_EQ(again->get_config(), cfg);
  // A plain name, and tf.keras 2's {"class_name": "Policy", ...}, are read too.
  Config by_name = dense_config(3);
  by_name.set("dtype", "mixed_bfloat16");
  EXPECT_EQ(create_layer("Dense", by_name)->compute_dtype(), DType::kBFloat16);
  Config tf2 = dense_config(3);
  tf2.set("dtype", Config::from_json(R"({"class_name": "Policy", "config": {"name": "mixed_bfloat16"}})"));
  EXPECT_EQ(create_layer("Dense", tf2)->dtype_policy().name, "mixed_bfloat16");
  // One-dtype policies keep the plain name, as tf.keras 2 writes them.
  EXPECT_EQ(create_layer("Dense", dense_config(3))->get_config().get_string("dtype"), "float32");
  // A Sequential's config carries each layer's policy.
  const LayerPtr seq = sequential({d});
  const LayerPtr seq2 = deserialize_layer(serialize_layer(*seq));
  EXPECT_EQ(seq2->layers()[0]->dtype_policy().name, "mixed_bfloat16");
}

TEST_F(MixedPrecisionTest, BadDtypeConfigsAreInvalidArgument) {
  for (const char *json : {R"("mixed_bf16")", R"({"class_name": "Nope", "config": {"name": "float32"}})",
                           R"({"class_name": "DTypePolicy", "config": {}})", "3"}) {
    Config c = dense_config(3);
    c.update(Config::from_json(std::string("{\"dtype\": ") + json + "}"));
    try {
      create_layer("Dense", c);
      FAIL() << "expected InvalidArgument for " << json;
    } catch (const Error &e) {
      EXPECT_EQ(e.code(), Code::kInvalidArgument) << json << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("Dense"), std::string::npos) << e.what();
    }
  }
}

TEST_F(MixedPrecisionTest, ModelsLeaveInputCastsToTheirLayers) {
  // A float32-policy Sequential holding float64 layers: its float64 input reaches them as it is,
  // not rounded through float32.
  Config c = dense_config(2);
  c.set("dtype", "float64");
  const LayerPtr d = create_layer("Dense", c);
  const LayerPtr model = sequential({d});
  EXPECT_EQ(model->compute_dtype(), DType::kFloat32);
  const Tensor x = ops::add(ops::cast(random_tensor({3, 4}, 7), DType::kFloat64), ops::fill(Shape({}), 1e-12, DType::kFloat64));
  const Tensor y = (*model)(x);
  ASSERT_EQ(y.dtype(), DType::kFloat64);
  const auto vars = model->variables();
  const Tensor want = ops::add(ops::matmul(x, vars[0]->peek()), vars[1]->peek());
  EXPECT_EQ(values<double>(y), values<double>(want));
  // A float32 layer still casts a float64 input (Keras's autocast).
  EXPECT_EQ((*create_layer("Dense", dense_config(2)))(x).dtype(), DType::kFloat32);
}

TEST_F(MixedPrecisionTest, NestedFloat32LayerInsideMixedCall) {
  // Keras's AutocastScope rules: a float32 layer called inside a mixed layer's call reads its
  // variables in float32; the scope ends with the call.
  set_global_policy(dtype_policy("mixed_bfloat16"));
  const LayerPtr mixed = create_layer("Dense", dense_config(2));
  mixed->build({{kUnknownDim, 3}});
  {
    autodiff::AutocastScope scope(DType::kBFloat16);
    EXPECT_EQ(mixed->variables()[0]->value().dtype(), DType::kBFloat16);
    autodiff::AutocastScope off(std::nullopt);
    EXPECT_EQ(mixed->variables()[0]->value().dtype(), DType::kFloat32);
  }
  EXPECT_EQ(mixed->variables()[0]->value().dtype(), DType::kFloat32);
  EXPECT_FALSE(autodiff::AutocastScope::current().has_value());
}

TEST_F(MixedPrecisionTest, MatmulFallbackGivesTheNativeResult) {
  // Without AVX512-BF16 (or with ONEDNN_MAX_CPU_ISA=AVX2, as the unit_mixed_precision_avx2 test
  // runs this binary) oneDNN has no bf16 matmul and kiln converts, multiplies in float32 and
  // rounds once; mixed_bfloat16 gives the same values either way.
  const char *isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (isa && std::string(isa) == "AVX2") {
    EXPECT_FALSE(kernels::matmul_bf16_native());
  }
  set_global_policy(dtype_policy("mixed_bfloat16"));
  const LayerPtr d = create_layer("Dense", dense_config(7, "relu"));
  const Tensor x = random_tensor({5, 9}, 6);
  const Tensor a = (*d)(x);
  kernels::set_matmul_bf16_force_fallback(true);
  const Tensor b = (*d)(x);
  kernels::set_matmul_bf16_force_fallback(false);
  EXPECT_EQ(a.dtype(), DType::kBFloat16);
  EXPECT_LT(max_rel_diff(a, b), 8e-3f);  // at most one bf16 rounding step apart
}

}  // namespace
}  // namespace kiln::layers
