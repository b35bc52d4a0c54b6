// Keras masking in the C++ core: Embedding(mask_zero) makes a mask, mask-transparent layers pass
// it on, Sequential carries it from layer to layer, MultiHeadAttention turns padding masks into
// its attention mask, GlobalAveragePooling1D averages the valid steps, merge layers combine
// masks, custom layers read and make masks, and bad masks give errors naming the layer.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/error.h"
#include "layers/layer.h"
#include "layers/sequential.h"
#include "ops/ops.h"
#include "test_util.h"
#include "train/losses.h"

namespace kiln::layers {
namespace {

using testing::expect_error;
using testing::expect_near;
using testing::make;
using testing::make_bool;
using testing::make_typed;
using testing::random_tensor;
using testing::values;

class MaskingTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_session(); }
};

std::vector<int> bools(const Tensor &m) {
  EXPECT_EQ(m.dtype(), DType::kBool);
  std::vector<int> out;
  for (uint8_t b : values<uint8_t>(m)) out.push_back(b);
  return out;
}

LayerPtr embedding(int64_t input_dim, int64_t output_dim, bool mask_zero) {
  Config c;
  c.set("input_dim", input_dim).set("output_dim", output_dim).set("mask_zero", mask_zero);
  return create_layer("Embedding", c);
}

LayerPtr layer(const std::string &cls, Config c = Config()) { return create_layer(cls, c); }

LayerPtr dense(int64_t units, const std::string &name = "") {
  Config c;
  c.set("units", units);
  if (!name.empty()) c.set("name", name);
  return create_layer("Dense", c);
}

LayerPtr dropout(double rate) {
  Config c;
  c.set("rate", rate);
  return create_layer("Dropout", c);
}

CallResult call_masked(Layer &l, const std::vector<Tensor> &inputs, const std::vector<Tensor> &masks,
                       bool training = false) {
  CallContext ctx;
  ctx.training = training;
  ctx.mask = &masks;
  return l.call(inputs, ctx);
}

// ids [2, 4] with padding (0) at the end of each row.
Tensor padded_ids() { return make_typed<int32_t>(Shape({2, 4}), {3, 1, 0, 0, 2, 5, 4, 0}); }

TEST_F(MaskingTest, EmbeddingMaskZeroGivesIdsNotZero) {
  LayerPtr e = embedding(6, 3, true);
  EXPECT_TRUE(e->supports_masking());
  CallResult r = e->call({padded_ids()});
  ASSERT_EQ(r.outputs.size(), 1u);
  ASSERT_EQ(r.masks.size(), 1u);
  ASSERT_TRUE(r.masks[0].defined());
  EXPECT_EQ(r.masks[0].shape(), Shape({2, 4}));
  EXPECT_EQ(bools(r.masks[0]), (std::vector<int>{1, 1, 0, 0, 1, 1, 1, 0}));
  // compute_mask alone gives the same, without running the layer.
  EXPECT_EQ(bools(e->compute_mask({padded_ids()}, {})[0]), bools(r.masks[0]));
  // input_dim counts index 0, as Keras: ids up to input_dim - 1 are valid, the table is [6, 3].
  EXPECT_EQ(e->variables()[0]->shape(), Shape({6, 3}));
  EXPECT_NO_THROW(e->call({make_typed<int32_t>(Shape({1, 2}), {5, 0})}));
}

TEST_F(MaskingTest, EmbeddingWithoutMaskZeroGivesNoMask) {
  LayerPtr e = embedding(6, 3, false);
  EXPECT_FALSE(e->supports_masking());
  CallResult r = e->call({padded_ids()});
  ASSERT_EQ(r.masks.size(), 1u);
  EXPECT_FALSE(r.masks[0].defined());
}

TEST_F(MaskingTest, SupportsMaskingFlagsFollowKeras) {
  EXPECT_TRUE(dense(2)->supports_masking());
  EXPECT_TRUE(dropout(0.5)->supports_masking());
  EXPECT_TRUE(layer("Activation")->supports_masking());
  EXPECT_TRUE(layer("LayerNormalization")->supports_masking());
  EXPECT_TRUE(layer("BatchNormalization")->supports_masking());
  EXPECT_TRUE(layer("Add")->supports_masking());
  EXPECT_TRUE(layer("Concatenate")->supports_masking());
  EXPECT_TRUE(layer("GlobalAveragePooling1D")->supports_masking());
  EXPECT_FALSE(layer("GlobalMaxPooling1D")->supports_masking());
  EXPECT_FALSE(layer("Flatten")->supports_masking());
}

TEST_F(MaskingTest, MaskFlowsThroughSequential) {
  auto seq = std::make_shared<Sequential>(Config());
  seq->add(embedding(6, 4, true));
  seq->add(dense(5));
  seq->add(dropout(0.5));
  seq->add(layer("LayerNormalization"));
  for (bool training : {false, true}) {
    CallContext ctx;
    ctx.training = training;
    CallResult r = seq->call({padded_ids()}, ctx);
    ASSERT_EQ(r.masks.size(), 1u);
    ASSERT_TRUE(r.masks[0].defined());
    EXPECT_EQ(r.outputs[0].shape(), Shape({2, 4, 5}));
    EXPECT_EQ(bools(r.masks[0]), (std::vector<int>{1, 1, 0, 0, 1, 1, 1, 0}));
  }
  EXPECT_EQ(bools(seq->compute_mask({padded_ids()}, {})[0]), (std::vector<int>{1, 1, 0, 0, 1, 1, 1, 0}));
  // A layer that does not support masking ends the mask (Flatten), as Keras.
  seq->add(layer("Flatten"));
  CallResult r = seq->call({padded_ids()});
  ASSERT_EQ(r.masks.size(), 1u);
  EXPECT_FALSE(r.masks[0].defined());
}

// Keras's _keras_mask: a layer's output carries its mask, the next layer called on it takes it
// as its mask, and a loss leaves the masked steps out (Loss.__call__'s apply_mask).
TEST_F(MaskingTest, OutputsCarryTheirMasksToTheNextLayerAndTheLoss) {
  LayerPtr e = embedding(6, 2, true);
  const Tensor x = (*e)(padded_ids());
  ASSERT_TRUE(x.keras_mask().defined());
  EXPECT_EQ(bools(x.keras_mask()), (std::vector<int>{1, 1, 0, 0, 1, 1, 1, 0}));
  LayerPtr d = dense(1);
  const Tensor y = (*d)(x);  // no mask given: x's own is the call's, and Dense passes it on
  ASSERT_TRUE(y.keras_mask().defined());
  EXPECT_EQ(bools(y.keras_mask()), bools(x.keras_mask()));
  // A mask given explicitly wins over the carried one.
  const std::vector<Tensor> ones = {make_bool({2, 4}, {1, 1, 1, 1, 1, 1, 1, 1})};
  EXPECT_EQ(bools(call_masked(*d, {x}, ones).outputs[0].keras_mask()), (std::vector<int>(8, 1)));
  // MSE over the 5 valid steps only: Keras weighs them total / valid.
  const Tensor target = ops::zeros_like(y);
  const Tensor per_step = ops::square(y);
  const std::vector<float> sq = values(per_step);
  const std::vector<int> m = bools(y.keras_mask());
  double valid = 0, all = 0;
  for (size_t i = 0; i < sq.size(); ++i) {
    valid += m[i] ? sq[i] : 0.0;
    all += sq[i];
  }
  const train::LossPtr mse = train::create_loss("mse");
  expect_near((*mse)(target, y), {static_cast<float>(valid / 5)}, 1e-5f);
  expect_near((*mse)(target, y.with_keras_mask(Tensor())), {static_cast<float>(all / 8)}, 1e-5f);
  // A layer that does not support masking ends it.
  EXPECT_FALSE((*layer("Flatten"))(x).keras_mask().defined());
}

TEST_F(MaskingTest, ExplicitMaskPassesThroughTransparentLayers) {
  LayerPtr d = dense(2);
  const Tensor m = make_bool(Shape({2, 3}), {1, 0, 1, 1, 1, 0});
  CallResult r = call_masked(*d, {random_tensor(Shape({2, 3, 4}), 1)}, {m});
  EXPECT_EQ(bools(r.masks[0]), bools(m));
  // A numeric mask is read as "nonzero".
  r = call_masked(*d, {random_tensor(Shape({2, 3, 4}), 1)}, {make(Shape({2, 3}), {1, 0, 2, 1, 1, 0})});
  EXPECT_EQ(bools(r.masks[0]), bools(m));
  // No masks in, none out.
  EXPECT_FALSE(d->call({random_tensor(Shape({2, 3, 4}), 1)}).masks[0].defined());
}

// The output of MHA with padding masks on query [B, T] and value [B, S] equals the output with
// the explicit attention_mask q[:, :, None] & v[:, None, :], and masked keys get zero scores.
TEST_F(MaskingTest, AttentionPaddingMasksEqualExplicitAttentionMask) {
  Config c;
  c.set("num_heads", 2).set("key_dim", 3).set("bias_initializer", "random_uniform");
  LayerPtr a = create_layer("MultiHeadAttention", c);
  const Tensor q = random_tensor(Shape({2, 3, 4}), 11), v = random_tensor(Shape({2, 4, 4}), 12);
  const Tensor qm = make_bool(Shape({2, 3}), {1, 1, 0, 1, 1, 1});
  const Tensor vm = make_bool(Shape({2, 4}), {1, 1, 1, 0, 1, 0, 0, 0});
  std::vector<int> explicit_mask;
  const std::vector<int> qv = bools(qm), vv = bools(vm);
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 3; ++t)
      for (int s = 0; s < 4; ++s) explicit_mask.push_back(qv[size_t(b * 3 + t)] & vv[size_t(b * 4 + s)]);
  const Tensor am = make_bool(Shape({2, 3, 4}), explicit_mask);
  const Tensor yes = ops::cast(ops::ones(Shape({})), DType::kBool);

  CallResult with_masks = call_masked(*a, {q, v, yes}, {qm, vm, Tensor()});
  std::vector<Tensor> with_explicit = (*a)({q, v, v, am, yes});
  ASSERT_EQ(with_masks.outputs.size(), 2u);
  expect_near(with_masks.outputs[0], values(with_explicit[0]), 1e-5f, "output");
  expect_near(with_masks.outputs[1], values(with_explicit[1]), 1e-6f, "scores");
  // Scores [B, heads, T, S]: zero at masked key positions.
  const std::vector<float> scores = values(with_masks.outputs[1]);
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < 3; ++t)
        for (int s = 0; s < 4; ++s)
          if (!vv[size_t(b * 4 + s)]) {
            EXPECT_EQ(scores[size_t(((b * 2 + h) * 3 + t) * 4 + s)], 0.0f);
          }
  // The output keeps the query's mask; the scores have none.
  EXPECT_EQ(bools(with_masks.masks[0]), qv);
  EXPECT_FALSE(with_masks.masks[1].defined());
}

TEST_F(MaskingTest, AttentionMasksCombineWithCausalAndExplicitMasks) {
  Config c;
  c.set("num_heads", 1).set("key_dim", 2);
  LayerPtr a = create_layer("MultiHeadAttention", c);
  const Tensor x = random_tensor(Shape({1, 3, 2}), 5);
  const Tensor xm = make_bool(Shape({1, 3}), {1, 1, 0});
  const Tensor am = make_bool(Shape({1, 3, 3}), {1, 0, 1, 1, 1, 1, 1, 1, 1});
  const Tensor yes = ops::cast(ops::ones(Shape({})), DType::kBool);
  // Padding mask (key = value = x), explicit mask and causal mask together ...
  CallResult r = call_masked(*a, {x, x, x, am, yes, yes}, {xm, xm, xm, Tensor(), Tensor(), Tensor()});
  // ... equal the explicit AND of all three: causal (j <= i) & am & x mask on both sides.
  const Tensor all = make_bool(Shape({1, 3, 3}), {1, 0, 0, 1, 1, 0, 0, 0, 0});
  std::vector<Tensor> want = (*a)({x, x, x, all, yes});
  expect_near(r.outputs[0], values(want[0]), 1e-5f, "output");
  expect_near(r.outputs[1], values(want[1]), 1e-6f, "scores");
}

TEST_F(MaskingTest, EmbeddingThenAttentionTakesThePaddingMask) {
  LayerPtr e = embedding(6, 4, true);
  Config c;
  c.set("num_heads", 2).set("key_dim", 2);
  LayerPtr a = create_layer("MultiHeadAttention", c);
  CallResult emb = e->call({padded_ids()});
  const Tensor x = emb.outputs[0], m = emb.masks[0];
  CallResult r = call_masked(*a, {x, x}, {m, m});
  // Equivalent explicit mask: m[:, :, None] & m[:, None, :].
  const Tensor am = ops::logical_and(ops::expand_dims(m, 2), ops::expand_dims(m, 1));
  std::vector<Tensor> want = (*a)({x, x, x, am});
  expect_near(r.outputs[0], values(want[0]), 1e-5f);
  EXPECT_EQ(bools(r.masks[0]), bools(m));
}

TEST_F(MaskingTest, GlobalAveragePooling1DAveragesValidSteps) {
  LayerPtr g = layer("GlobalAveragePooling1D");
  const Tensor x = make(Shape({2, 3, 2}), {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60});
  const Tensor m = make_bool(Shape({2, 3}), {1, 1, 0, 0, 1, 1});
  CallResult r = call_masked(*g, {x}, {m});
  expect_near(r.outputs[0], {2, 3, 40, 50});
  ASSERT_EQ(r.masks.size(), 1u);
  EXPECT_FALSE(r.masks[0].defined());
  // keepdims keeps the steps axis.
  Config k;
  k.set("keepdims", true);
  CallResult rk = call_masked(*layer("GlobalAveragePooling1D", k), {x}, {m});
  EXPECT_EQ(rk.outputs[0].shape(), Shape({2, 1, 2}));
  expect_near(rk.outputs[0], {2, 3, 40, 50});
  // Without a mask: the plain mean.
  expect_near((*g)(x), {3, 4, 30, 40});
}

TEST_F(MaskingTest, MergeLayersAndTheirMasks) {
  const Tensor a = random_tensor(Shape({2, 3, 2}), 1), b = random_tensor(Shape({2, 3, 2}), 2);
  const Tensor ma = make_bool(Shape({2, 3}), {1, 1, 0, 1, 0, 1});
  const Tensor mb = make_bool(Shape({2, 3}), {1, 0, 0, 1, 1, 1});
  for (const char *cls : {"Add", "Multiply", "Average", "Maximum", "Minimum", "Subtract"}) {
    LayerPtr l = layer(cls);
    // Keras 3's Merge.compute_mask: the OR of the masks ...
    EXPECT_EQ(bools(call_masked(*l, {a, b}, {ma, mb}).masks[0]), (std::vector<int>{1, 1, 0, 1, 1, 1})) << cls;
    // ... and none unless every input has one.
    EXPECT_FALSE(call_masked(*l, {a, b}, {ma, Tensor()}).masks[0].defined()) << cls;
    // No masks at all: none.
    EXPECT_FALSE(call_masked(*l, {a, b}, {Tensor(), Tensor()}).masks[0].defined()) << cls;
    EXPECT_FALSE(l->call({a, b}).masks[0].defined()) << cls;
  }
  // Concatenate on the feature axis: each mask widened to its input, concatenated, any() over
  // the last axis: [2, 3] again.
  LayerPtr cat = layer("Concatenate");
  EXPECT_EQ(bools(call_masked(*cat, {a, b}, {ma, mb}).masks[0]), (std::vector<int>{1, 1, 0, 1, 1, 1}));
  EXPECT_EQ(bools(call_masked(*cat, {a, b}, {ma, Tensor()}).masks[0]), (std::vector<int>{1, 1, 1, 1, 1, 1}));
  // Concatenate along the steps axis: the masks follow the steps.
  Config c;
  c.set("axis", 1);
  CallResult r = call_masked(*layer("Concatenate", c), {a, b}, {ma, mb});
  EXPECT_EQ(r.masks[0].shape(), Shape({2, 6}));
  EXPECT_EQ(bools(r.masks[0]), (std::vector<int>{1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1}));
  EXPECT_FALSE(cat->call({a, b}).masks[0].defined());
}

// Keras 3's masked values: Add, Average and Subtract ignore the masks; Maximum and Minimum take
// each position from the inputs valid there (the first input where none is); Multiply counts a
// masked entry as 1 and zeroes the positions no input covers (when every input has a mask).
TEST_F(MaskingTest, MaximumMinimumAndMultiplyUseOnlyValidEntries) {
  const Tensor a = make(Shape({1, 4, 1}), {1, 5, 2, 7}), b = make(Shape({1, 4, 1}), {3, 4, 9, 6});
  const Tensor ma = make_bool(Shape({1, 4}), {1, 1, 0, 0}), mb = make_bool(Shape({1, 4}), {1, 0, 1, 0});
  // both valid, only a, only b, neither
  expect_near(call_masked(*layer("Maximum"), {a, b}, {ma, mb}).outputs[0], {3, 5, 9, 7});
  expect_near(call_masked(*layer("Minimum"), {a, b}, {ma, mb}).outputs[0], {1, 5, 9, 7});
  expect_near(call_masked(*layer("Multiply"), {a, b}, {ma, mb}).outputs[0], {3, 5, 9, 0});
  expect_near(call_masked(*layer("Add"), {a, b}, {ma, mb}).outputs[0], {4, 9, 11, 13});
  // One input without a mask: Maximum keeps that input where the other is masked; Multiply
  // counts the masked entries as 1 and zeroes nothing.
  expect_near(call_masked(*layer("Maximum"), {a, b}, {ma, Tensor()}).outputs[0], {3, 5, 9, 6});
  expect_near(call_masked(*layer("Multiply"), {a, b}, {ma, Tensor()}).outputs[0], {3, 20, 9, 6});
  // Three inputs, masks on each.
  const Tensor c = make(Shape({1, 4, 1}), {8, 0, 1, 2});
  const Tensor mc = make_bool(Shape({1, 4}), {0, 1, 1, 0});
  expect_near(call_masked(*layer("Maximum"), {a, b, c}, {ma, mb, mc}).outputs[0], {3, 5, 9, 7});
}

// A custom layer that reads its mask: the masked sum over the steps.
class MaskedSum final : public Layer {
 public:
  MaskedSum() : MaskedSum(ConfigReader(Config(), "MaskedSum")) {}
  explicit MaskedSum(ConfigReader &&r) : Layer("MaskedSum", r) { r.finish(); }

 protected:
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor *m = input_mask(ctx, 0);
    Tensor x = inputs[0];
    if (m) x = ops::mul(x, ops::expand_dims(ops::cast(*m, x.dtype()), -1));
    return {ops::sum(x, {1})};
  }
};

// A custom layer that makes a mask: steps whose features are all zero are padding (Keras's Masking).
class ZeroStepMask final : public Layer {
 public:
  ZeroStepMask() : ZeroStepMask(ConfigReader(Config(), "ZeroStepMask")) {}
  explicit ZeroStepMask(ConfigReader &&r) : Layer("ZeroStepMask", r) { r.finish(); }
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs, const std::vector<Tensor> &) override {
    return {ops::reduce_any(ops::not_equal(inputs[0], ops::zeros(Shape({}))), {-1})};
  }

 protected:
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    return inputs;
  }
};

TEST_F(MaskingTest, CustomLayersReadAndMakeMasks) {
  auto seq = std::make_shared<Sequential>(Config());
  seq->add(std::make_shared<ZeroStepMask>());
  seq->add(std::make_shared<MaskedSum>());
  const Tensor x = make(Shape({1, 3, 2}), {1, 2, 0, 0, 3, 4});
  // The mask hides nothing that was not zero; so compare with an explicit mask that hides a step.
  CallResult r = seq->call({x});
  expect_near(r.outputs[0], {4, 6});
  EXPECT_FALSE(r.masks[0].defined());  // MaskedSum does not support masking
  auto sum = std::make_shared<MaskedSum>();
  expect_near(call_masked(*sum, {x}, {make_bool(Shape({1, 3}), {0, 1, 1})}).outputs[0], {3, 4});
  auto zm = std::make_shared<ZeroStepMask>();
  EXPECT_EQ(bools(zm->call({x}).masks[0]), (std::vector<int>{1, 0, 1}));
}

// Keras: in training, BatchNormalization's batch statistics come from the valid steps only.
TEST_F(MaskingTest, BatchNormalizationMomentsSkipMaskedSteps) {
  Config c;
  c.set("momentum", 0.0);  // the moving statistics become the batch's
  LayerPtr bn = layer("BatchNormalization", c);
  // Valid steps hold 1 and 3 (mean 2, variance 1); the masked step holds 100.
  const Tensor x = make(Shape({1, 3, 1}), {1, 100, 3});
  const Tensor m = make_bool(Shape({1, 3}), {1, 0, 1});
  CallResult r = call_masked(*bn, {x}, {m}, true);
  const float inv = 1.0f / std::sqrt(1.0f + 1e-3f);
  expect_near(r.outputs[0], {-inv, 98 * inv, inv}, 1e-4f);
  EXPECT_EQ(bools(r.masks[0]), bools(m));
  expect_near(bn->variables()[2]->value(), {2}, 1e-4f, "moving_mean");
  expect_near(bn->variables()[3]->value(), {1}, 1e-4f, "moving_variance");
  // Without a mask, the same call sees all three steps.
  LayerPtr plain = layer("BatchNormalization", c);
  CallContext ctx;
  ctx.training = true;
  (*plain)({x}, ctx);
  expect_near(plain->variables()[2]->value(), {104.0f / 3}, 1e-4f, "moving_mean");
}

TEST_F(MaskingTest, MaskingLayerZeroesAndMasksPaddingSteps) {
  Config c;
  c.set("mask_value", -1.0);
  LayerPtr m = layer("Masking", c);
  const Tensor x = make(Shape({1, 3, 2}), {1, 2, -1, -1, -1, 3});
  CallResult r = m->call({x});
  expect_near(r.outputs[0], {1, 2, 0, 0, -1, 3});
  EXPECT_EQ(bools(r.masks[0]), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(m->get_config().get_float("mask_value"), -1.0);
}

// Softmax's mask as Keras's: one that only broadcasts (an attention mask [B, 1, T]) is used but not
// passed on (the layers after it, a Dropout as in Keras's attention, would refuse it); one with the
// input's leading dims is passed on as bool, a float one read as > 0.5.
TEST_F(MaskingTest, SoftmaxPassesOnlyLeadingDimMasksOn) {
  LayerPtr sm = create_layer("Softmax", Config());
  const Tensor scores = make(Shape({2, 3, 3}), std::vector<float>(18, 0.5f));
  const CallResult narrow = call_masked(*sm, {scores}, {make_bool(Shape({2, 1, 3}), {1, 0, 1, 1, 1, 0})});
  EXPECT_TRUE(narrow.masks.empty() || !narrow.masks[0].defined());
  EXPECT_EQ(dropout(0.1)->call({narrow.outputs[0]}).outputs[0].shape(), Shape({2, 3, 3}));
  const Tensor rows = make(Shape({2, 3}), std::vector<float>(6, 0.5f));
  const CallResult lead = call_masked(*sm, {rows}, {make(Shape({2, 3}), {1, 0.3f, 0.7f, 0, 1, 1})});
  ASSERT_EQ(lead.masks.size(), 1u);
  EXPECT_EQ(lead.masks[0].dtype(), DType::kBool);
  EXPECT_EQ(bools(lead.masks[0]), (std::vector<int>{1, 0, 1, 0, 1, 1}));
  EXPECT_EQ(call_masked(*dropout(0.1), {lead.outputs[0]}, lead.masks).outputs[0].shape(), Shape({2, 3}));
}

TEST_F(MaskingTest, BadMasksNameTheLayerAndShapes) {
  LayerPtr d = dense(2, "proj");
  const Tensor x = random_tensor(Shape({2, 3, 4}), 1);
  expect_error(
      [&] {
        call_masked(*d, {x}, {make_bool(Shape({2, 4}), {1, 1, 1, 1, 1, 1, 1, 1})});
      },
      Code::kInvalidArgument, {"'proj'", "Dense", "mask 0", "[2, 4]", "[2, 3, 4]"});
  expect_error(
      [&] {
        call_masked(*d, {x}, {Tensor(), Tensor()});
      },
      Code::kInvalidArgument, {"'proj'", "2 masks for 1 inputs"});
  LayerPtr add = layer("Add");
  expect_error(
      [&] {
        call_masked(*add, {x, x}, {make_bool(Shape({2, 3}), {1, 1, 1, 1, 1, 1})});
      },
      Code::kInvalidArgument, {"1 masks for 2 inputs"});
  expect_error([&] { d->call({Tensor()}); }, Code::kInvalidArgument, {"'proj'", "input 0 is empty"});
}

TEST_F(MaskingTest, MaskedCallsFromSeveralThreadsAgree) {
  Config c;
  c.set("num_heads", 2).set("key_dim", 3);
  LayerPtr a = create_layer("MultiHeadAttention", c);
  const Tensor x = random_tensor(Shape({2, 4, 4}), 3);
  std::vector<Tensor> masks[2] = {{make_bool(Shape({2, 4}), {1, 1, 0, 0, 1, 1, 1, 0}), Tensor()},
                                  {make_bool(Shape({2, 4}), {1, 0, 0, 0, 1, 1, 1, 1}), Tensor()}};
  masks[0][1] = masks[0][0];
  masks[1][1] = masks[1][0];
  std::vector<float> want[2];
  for (int k = 0; k < 2; ++k) want[k] = values(call_masked(*a, {x, x}, masks[k]).outputs[0]);
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const int k = (t + i) % 2;
        CallResult r = call_masked(*a, {x, x}, masks[k]);
        if (values(r.outputs[0]) != want[k] || bools(r.masks[0]) != bools(masks[k][0])) ++bad[size_t(t)];
      }
    });
  for (std::thread &th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace kiln::layers
