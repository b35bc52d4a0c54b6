// Keras masking through kiln.hpp: call_with_options giving output masks, compute_mask and
// supports_masking on built-in layers, MultiHeadAttention with padding masks, custom layers whose
// call_masked reads masks and whose compute_mask makes them, and bad masks as kiln::Error.
#include <gtest/gtest.h>

#include <cmath>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Dims;
using kiln::Tensor;
namespace L = kiln::layers;

Tensor padded_ids() { return Tensor::from_vector<int32_t>({3, 1, 0, 0, 2, 5, 4, 0}, {2, 4}); }
const std::vector<bool> kIdsMask = {true, true, false, false, true, true, true, false};

void expect_close(const Tensor &got, const Tensor &want, float tol) {
  ASSERT_EQ(got.shape(), want.shape());
  const std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], w[i], tol * (1 + std::fabs(w[i]))) << i;
}

TEST(HppMasking, EmbeddingMaskFlowsThroughSequential) {
  kiln::clear_session();
  L::EmbeddingOptions eo;
  eo.mask_zero = true;
  kiln::Layer e = L::Embedding(6, 4, eo);
  EXPECT_TRUE(e.supports_masking());
  EXPECT_EQ(e.compute_mask({padded_ids()})[0].to_vector<bool>(), kIdsMask);
  kiln::Sequential seq({e, L::Dense(5), L::Dropout(0.5), L::LayerNormalization()});
  const kiln::CallResult r = seq.call_with_options({padded_ids()}, {true, {}});
  ASSERT_EQ(r.masks.size(), 1u);
  EXPECT_EQ(r.outputs[0].shape(), (Dims{2, 4, 5}));
  EXPECT_EQ(r.masks[0].to_vector<bool>(), kIdsMask);
  // Without mask_zero: no mask.
  const kiln::CallResult plain = L::Embedding(6, 4).call_with_options({padded_ids()});
  EXPECT_FALSE(plain.masks[0].valid());
}

// Keras's _keras_mask: outputs carry their masks to the next layer and to the loss.
TEST(HppMasking, OutputsCarryMasksToTheNextLayerAndTheLoss) {
  L::EmbeddingOptions eo;
  eo.mask_zero = true;
  eo.embeddings_initializer = "ones";
  kiln::Layer e = L::Embedding(6, 2, eo);
  L::DenseOptions dopt;
  dopt.kernel_initializer = "ones";
  kiln::Layer d = L::Dense(1, dopt);
  const Tensor h = e(padded_ids());
  EXPECT_EQ(h.keras_mask().to_vector<bool>(), kIdsMask);
  EXPECT_FALSE(padded_ids().keras_mask().valid());
  const Tensor y = d(h);  // 2.0 at every step
  EXPECT_EQ(y.keras_mask().to_vector<bool>(), kIdsMask);
  // Targets 0 where valid, 2 where padded: the error is 4 on the 5 valid steps, 0 elsewhere.
  std::vector<float> t(8);
  for (size_t i = 0; i < 8; ++i) t[i] = kIdsMask[i] ? 0.0f : 2.0f;
  const Tensor target = Tensor::from_vector(t, {2, 4, 1});
  EXPECT_NEAR(kiln::losses::MeanSquaredError()(target, y).item<float>(), 4.0f, 1e-6f);
}

// Keras's TensorFlow backend: crossentropy reads the logits a sigmoid output carries.
TEST(HppMasking, CrossentropyReadsTheLogitsOfASigmoidOutput) {
  L::DenseOptions dopt;
  dopt.activation = "sigmoid";
  dopt.kernel_initializer = "ones";
  kiln::Layer d = L::Dense(1, dopt);
  const Tensor x = Tensor::from_vector<float>({30, -30, 2}, {3, 1});
  const Tensor y = Tensor::from_vector<float>({0, 1, 1}, {3, 1});
  const double want = (60 + std::log1p(std::exp(-2.0))) / 3;  // sum of max(z, 0) - z t + log1p(e^-|z|)
  EXPECT_NEAR(kiln::losses::BinaryCrossentropy()(y, d(x)).item<float>(), want, 1e-4);
}

TEST(HppMasking, AttentionPaddingMasksEqualExplicitMask) {
  kiln::Layer mha = L::MultiHeadAttention(2, 3);
  EXPECT_TRUE(mha.supports_masking());
  const Tensor q = kiln::testing::sawtooth({2, 3, 4}, 7), v = kiln::testing::sawtooth({2, 4, 4}, 5, 0.2f);
  const Tensor qm = Tensor::from_vector(std::vector<bool>{true, true, false, true, true, true}, {2, 3});
  const Tensor vm =
      Tensor::from_vector(std::vector<bool>{true, true, true, false, true, false, false, false}, {2, 4});
  const Tensor am = kiln::logical_and(kiln::expand_dims(qm, 2), kiln::expand_dims(vm, 1));
  L::AttentionCall scores;
  scores.return_attention_scores = true;
  const kiln::CallResult r =
      mha.call_with_options(L::attention_inputs(q, v, scores), {false, {qm, vm, Tensor()}});
  scores.attention_mask = am;
  const std::vector<Tensor> want = mha(L::attention_inputs(q, v, scores));
  expect_close(r.outputs[0], want[0], 1e-5f);
  expect_close(r.outputs[1], want[1], 1e-6f);
  const std::vector<float> s = r.outputs[1].to_vector<float>();
  const std::vector<bool> vv = vm.to_vector<bool>();
  for (size_t i = 0; i < s.size(); ++i)
    if (!vv[(i / 24) * 4 + i % 4]) {
      EXPECT_EQ(s[i], 0.0f) << i;
    }
  EXPECT_EQ(r.masks[0].to_vector<bool>(), qm.to_vector<bool>());
  EXPECT_FALSE(r.masks[1].valid());
}

TEST(HppMasking, PoolingAndMergeMasks) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}, {2, 3, 2});
  const Tensor m = Tensor::from_vector(std::vector<bool>{true, true, false, false, true, true}, {2, 3});
  const kiln::CallResult g = L::GlobalAveragePooling1D().call_with_options({x}, {false, {m}});
  EXPECT_EQ(g.outputs[0].to_vector<float>(), (std::vector<float>{2, 3, 40, 50}));
  EXPECT_FALSE(g.masks[0].valid());
  const Tensor m2 = Tensor::from_vector(std::vector<bool>{true, false, true, true, true, true}, {2, 3});
  kiln::Layer add = L::Add();
  // Keras 3: the OR of the masks, and none unless every input has one.
  EXPECT_EQ(add.call_with_options({x, x}, {false, {m, m2}}).masks[0].to_vector<bool>(),
            (std::vector<bool>{true, true, true, true, true, true}));
  const std::vector<Tensor> one = add.compute_mask({x, x}, {m, Tensor()});
  EXPECT_TRUE(one.empty() || !one[0].valid());
  EXPECT_TRUE(add.compute_mask({x, x}).empty());
}

// Reads its mask: the masked sum over the steps.
class MaskedSum : public kiln::Layer {
 public:
  MaskedSum() : Layer("MaskedSum") {}
  int masked_calls = 0;

 protected:
  std::vector<Tensor> call_masked(const std::vector<Tensor> &inputs, const std::vector<Tensor> &masks,
                                  bool) override {
    Tensor x = inputs[0];
    if (!masks.empty() && masks[0].valid()) {
      ++masked_calls;
      x = x * kiln::expand_dims(kiln::cast(masks[0], kiln::DType::float32), -1);
    }
    return {kiln::sum(x, {1})};
  }
};

// Makes a mask: a step is valid when any feature is not zero (Keras's Masking(0)).
class ZeroStepMask : public kiln::Layer {
 public:
  ZeroStepMask() : Layer("ZeroStepMask") { set_supports_masking(true); }
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs, const std::vector<Tensor> &) override {
    return {kiln::reduce_any(kiln::not_equal(inputs[0], Tensor::scalar(0.0f)), {-1})};
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &inputs, bool) override { return inputs; }
};

TEST(HppMasking, CustomLayersReadAndMakeMasks) {
  ZeroStepMask maker;
  MaskedSum reader;
  EXPECT_TRUE(maker.supports_masking());
  EXPECT_FALSE(reader.supports_masking());
  const Tensor x = Tensor::from_vector<float>({1, 2, 0, 0, 3, 4}, {1, 3, 2});
  const kiln::CallResult made = maker.call_with_options({x});
  EXPECT_EQ(made.masks[0].to_vector<bool>(), (std::vector<bool>{true, false, true}));
  // The reader leaves out the masked step (its values would add 5 and 6).
  const Tensor y = Tensor::from_vector<float>({1, 2, 5, 6, 3, 4}, {1, 3, 2});
  const kiln::CallResult summed = reader.call_with_options({y}, {false, {made.masks[0]}});
  EXPECT_EQ(summed.outputs[0].to_vector<float>(), (std::vector<float>{4, 6}));
  EXPECT_EQ(reader.masked_calls, 1);
  EXPECT_FALSE(summed.masks[0].valid());
  // Through a Sequential, with the maker's compute_mask reached from C.
  kiln::Sequential seq({maker, L::Dense(2)});
  EXPECT_EQ(seq.call_with_options({x}).masks[0].to_vector<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(seq.compute_mask({x})[0].to_vector<bool>(), (std::vector<bool>{true, false, true}));
  // Plain calls still work.
  EXPECT_EQ(reader(y).to_vector<float>(), (std::vector<float>{9, 12}));
}

TEST(HppMasking, BadMasksAreErrors) {
  L::DenseOptions o;
  o.name = "proj";
  kiln::Layer d = L::Dense(2, o);
  const Tensor x = kiln::testing::sawtooth({2, 3, 4}, 5);
  const Tensor bad = Tensor::from_vector(std::vector<bool>(8, true), {2, 4});
  try {
    d.call_with_options({x}, {false, {bad}});
    ADD_FAILURE() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("layer 'proj'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 4]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(d.call_with_options({x}, {false, {Tensor(), Tensor()}}), kiln::Error);
}

}  // namespace
