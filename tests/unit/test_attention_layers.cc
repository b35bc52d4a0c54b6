// MultiHeadAttention, the merge layers, Permute and RepeatVector in the C++ core: outputs
// against reference loops and op compositions, weights named and shaped as Keras makes them,
// masks, gradients to every weight, configs that round-trip, errors naming the layer.
#include <gtest/gtest.h>

#include <cmath>

#include "autodiff/tape.h"
#include "core/error.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln::layers {
namespace {

using testing::expect_error;
using testing::expect_near;
using testing::make;
using testing::make_bool;
using testing::random_tensor;
using testing::values;

class AttentionLayersTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_session(); }
};

LayerPtr mha(int64_t heads, int64_t key_dim, Config extra = Config()) {
  extra.set("num_heads", heads).set("key_dim", key_dim).set("bias_initializer", "random_uniform");
  return create_layer("MultiHeadAttention", extra);
}

Tensor flag(bool v) { return ops::cast(ops::fill(Shape({}), v ? 1.0 : 0.0), DType::kBool); }

std::vector<Tensor> call(Layer &l, const std::vector<Tensor> &inputs, bool training = false) {
  CallContext ctx;
  ctx.training = training;
  return l(inputs, ctx);
}

// Multi-head attention written out as loops over the layer's own weights, in double:
// out [B, T, E] and probs [B, H, T, S]. mask: [B, T, S] 0/1 (empty: none).
struct Reference {
  std::vector<float> out, probs;
};
Reference reference(const Layer &l, const Tensor &query, const Tensor &value, const Tensor &key,
                    const std::vector<int> &mask, bool causal, int64_t heads, int64_t kd, int64_t vd) {
  const std::vector<VariablePtr> w = l.variables();
  const std::vector<float> wq = values(w[0]->value()), bq = values(w[1]->value()), wk = values(w[2]->value()),
                           bk = values(w[3]->value()), wv = values(w[4]->value()), bv = values(w[5]->value()),
                           wo = values(w[6]->value()), bo = values(w[7]->value());
  const std::vector<float> q = values(query), v = values(value), k = values(key);
  const int64_t B = query.shape()[0], T = query.shape()[1], Cq = query.shape()[2], S = value.shape()[1],
                Cv = value.shape()[2], Ck = key.shape()[2], E = w[7]->shape()[0];
  // proj[b, s, h, d] = sum_c x[b, s, c] W[c, h, d] + bias[h, d]
  auto project = [&](const std::vector<float> &x, int64_t n, int64_t c_in, const std::vector<float> &W,
                     const std::vector<float> &bias, int64_t d) {
    std::vector<double> p(size_t(B * n * heads * d));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < n; ++s)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t j = 0; j < d; ++j) {
            double acc = bias[size_t(h * d + j)];
            for (int64_t c = 0; c < c_in; ++c)
              acc += double(x[size_t((b * n + s) * c_in + c)]) * W[size_t((c * heads + h) * d + j)];
            p[size_t(((b * n + s) * heads + h) * d + j)] = acc;
          }
    return p;
  };
  const std::vector<double> Q = project(q, T, Cq, wq, bq, kd), K = project(k, S, Ck, wk, bk, kd),
                            V = project(v, S, Cv, wv, bv, vd);
  Reference r;
  r.probs.assign(size_t(B * heads * T * S), 0.0f);
  std::vector<double> ctx(size_t(B * T * heads * vd), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> sc(static_cast<size_t>(S));
        std::vector<bool> on(static_cast<size_t>(S));
        double mx = -1e300;
        bool any = false;
        for (int64_t s = 0; s < S; ++s) {
          on[size_t(s)] = (mask.empty() || mask[size_t((b * T + t) * S + s)]) && (!causal || s <= t);
          double dot = 0;
          for (int64_t j = 0; j < kd; ++j)
            dot +=
                Q[size_t(((b * T + t) * heads + h) * kd + j)] * K[size_t(((b * S + s) * heads + h) * kd + j)];
          sc[size_t(s)] = dot / std::sqrt(double(kd));
          if (on[size_t(s)]) mx = std::max(mx, sc[size_t(s)]), any = true;
        }
        double z = 0;
        for (int64_t s = 0; s < S; ++s) z += on[size_t(s)] ? std::exp(sc[size_t(s)] - mx) : 0.0;
        for (int64_t s = 0; s < S; ++s) {
          const double p = any && on[size_t(s)] ? std::exp(sc[size_t(s)] - mx) / z : 0.0;
          r.probs[size_t(((b * heads + h) * T + t) * S + s)] = float(p);
          for (int64_t j = 0; j < vd; ++j)
            ctx[size_t(((b * T + t) * heads + h) * vd + j)] +=
                p * V[size_t(((b * S + s) * heads + h) * vd + j)];
        }
      }
  r.out.assign(size_t(B * T * E), 0.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) {
        double acc = bo[size_t(e)];
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t j = 0; j < vd; ++j)
            acc += ctx[size_t(((b * T + t) * heads + h) * vd + j)] * wo[size_t((h * vd + j) * E + e)];
        r.out[size_t((b * T + t) * E + e)] = float(acc);
      }
  return r;
}

std::vector<std::string> names_and_shapes(const Layer &l) {
  std::vector<std::string> out;
  for (const VariablePtr &v : l.variables()) out.push_back(v->name() + " " + v->shape().to_string());
  return out;
}

TEST_F(AttentionLayersTest, WeightsAreNamedAndShapedAsKeras) {
  Config c;
  c.set("value_dim", 5);
  LayerPtr l = mha(2, 3, c);
  EXPECT_EQ(l->name(), "multi_head_attention");
  EXPECT_TRUE(l->variables().empty());  // Keras 3 builds the projections on the first call
  const std::vector<Tensor> y = call(*l, {random_tensor({2, 4, 6}, 1), random_tensor({2, 5, 7}, 2)});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].shape(), Shape({2, 4, 6}));  // output_shape None: the query's last dim
  const std::vector<std::string> want = {
      "multi_head_attention/query/kernel " + Shape({6, 2, 3}).to_string(),
      "multi_head_attention/query/bias " + Shape({2, 3}).to_string(),
      "multi_head_attention/key/kernel " + Shape({7, 2, 3}).to_string(),
      "multi_head_attention/key/bias " + Shape({2, 3}).to_string(),
      "multi_head_attention/value/kernel " + Shape({7, 2, 5}).to_string(),
      "multi_head_attention/value/bias " + Shape({2, 5}).to_string(),
      "multi_head_attention/attention_output/kernel " + Shape({2, 5, 6}).to_string(),
      "multi_head_attention/attention_output/bias " + Shape({6}).to_string()};
  EXPECT_EQ(names_and_shapes(*l), want);
  EXPECT_EQ(l->count_params(), 36 + 6 + 42 + 6 + 70 + 10 + 60 + 6);
  ASSERT_EQ(l->layers().size(), 4u);
  EXPECT_EQ(l->layers()[3]->name(), "attention_output");
  EXPECT_EQ(l->trainable_variables().size(), 8u);

  Config no_bias;
  no_bias.set("use_bias", false).set("output_shape", std::vector<int64_t>{3, 2});
  LayerPtr nb = mha(2, 4, no_bias);
  EXPECT_EQ(call(*nb, {random_tensor({1, 3, 5}, 3), random_tensor({1, 2, 5}, 4)})[0].shape(),
            Shape({1, 3, 3, 2}));
  EXPECT_EQ(names_and_shapes(*nb),
            (std::vector<std::string>{
                "multi_head_attention_1/query/kernel " + Shape({5, 2, 4}).to_string(),
                "multi_head_attention_1/key/kernel " + Shape({5, 2, 4}).to_string(),
                "multi_head_attention_1/value/kernel " + Shape({5, 2, 4}).to_string(),
                "multi_head_attention_1/attention_output/kernel " + Shape({2, 4, 3, 2}).to_string()}));
}

TEST_F(AttentionLayersTest, MatchesAReferenceLoopWithPaddingAndCausalMasks) {
  const int64_t B = 2, T = 4, S = 5, H = 2, KD = 3, VD = 2;
  Config c;
  c.set("value_dim", VD).set("output_shape", 7);
  LayerPtr l = mha(H, KD, c);
  const Tensor q = random_tensor({B, T, 6}, 10), v = random_tensor({B, S, 5}, 11),
               k = random_tensor({B, S, 3}, 12);
  // Plain call, key defaulting to value.
  {
    const std::vector<Tensor> y = call(*l, {q, v, v, ops::ones(Shape({B, T, S}))});  // builds with key dim 5
    EXPECT_EQ(y[0].shape(), Shape({B, T, 7}));
  }
  LayerPtr l2 = mha(H, KD, c);
  const std::vector<Tensor> plain = call(*l2, {q, v, k});
  Reference r = reference(*l2, q, v, k, {}, false, H, KD, VD);
  expect_near(plain[0], r.out, 1e-4f, "no mask");

  std::vector<int> mask(size_t(B * T * S));
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i % 3) != 1;
  for (int64_t s = 0; s < S; ++s) mask[size_t((1 * T + 2) * S + s)] = 0;  // one query row fully masked
  const Tensor bool_mask = make_bool({B, T, S}, mask);
  std::vector<Tensor> y = call(*l2, {q, v, k, bool_mask, flag(true)});
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(y[1].shape(), Shape({B, H, T, S}));
  r = reference(*l2, q, v, k, mask, false, H, KD, VD);
  expect_near(y[0], r.out, 1e-4f, "padding mask");
  expect_near(y[1], r.probs, 1e-5f, "padding mask scores");
  // Masked probabilities are exactly zero (the fully masked row too).
  const std::vector<float> p = values(y[1]);
  for (int64_t i = 0; i < B * H * T * S; ++i) {
    const int64_t s = i % S, t = (i / S) % T, b = i / (S * T * H);
    if (!mask[size_t((b * T + t) * S + s)]) {
      EXPECT_EQ(p[size_t(i)], 0.0f) << i;
    }
  }
  // A float 0/1 mask gives the same; an int mask too.
  std::vector<float> fmask(mask.begin(), mask.end());
  expect_near(call(*l2, {q, v, k, make({B, T, S}, fmask)})[0], r.out, 1e-4f, "float mask");
  expect_near(call(*l2, {q, v, k, ops::cast(bool_mask, DType::kInt32)})[0], r.out, 1e-4f, "int mask");

  // Causal, alone and with the padding mask; a [B, 1, S] padding mask broadcasts over T.
  y = call(*l2, {q, v, k, ops::ones(Shape({B, T, S})), flag(true), flag(true)});
  r = reference(*l2, q, v, k, {}, true, H, KD, VD);
  expect_near(y[0], r.out, 1e-4f, "causal");
  expect_near(y[1], r.probs, 1e-5f, "causal scores");
  y = call(*l2, {q, v, k, bool_mask, flag(false), flag(true)});
  ASSERT_EQ(y.size(), 1u);
  expect_near(y[0], reference(*l2, q, v, k, mask, true, H, KD, VD).out, 1e-4f, "causal and padding");
  std::vector<int> pad = {1, 1, 1, 0, 0, 1, 1, 1, 1, 0};
  std::vector<int> pad_full;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s) pad_full.push_back(pad[size_t(b * S + s)]);
  expect_near(call(*l2, {q, v, k, make_bool({B, 1, S}, pad)})[0],
              reference(*l2, q, v, k, pad_full, false, H, KD, VD).out, 1e-4f, "broadcast padding mask");
}

TEST_F(AttentionLayersTest, MatchesAnOpCompositionForSelfAttention) {
  LayerPtr l = mha(2, 4);
  const Tensor x = random_tensor({3, 5, 8}, 20);
  const std::vector<Tensor> y = call(*l, {x, x, flag(true)});
  const std::vector<VariablePtr> w = l->variables();
  auto proj = [&](int i) {
    return ops::add(ops::einsum("btc,chd->bthd", {x, w[size_t(i)]->value()}), w[size_t(i) + 1]->value());
  };
  const Tensor q = proj(0), k = proj(2), v = proj(4);
  const Tensor scores = ops::mul(ops::einsum("bthd,bshd->bhts", {q, k}), ops::fill(Shape({}), 0.5));
  const Tensor probs = ops::softmax(scores, -1);
  const Tensor out =
      ops::add(ops::einsum("bthd,hde->bte", {ops::einsum("bhts,bshd->bthd", {probs, v}), w[6]->value()}),
               w[7]->value());
  expect_near(y[0], values(out), 1e-4f, "output");
  expect_near(y[1], values(probs), 1e-5f, "scores");
}

TEST_F(AttentionLayersTest, GradientsReachEveryWeightAndTheInputs) {
  LayerPtr l = mha(2, 3);
  const Tensor q = random_tensor({2, 3, 4}, 30), v = random_tensor({2, 4, 4}, 31);
  const Tensor mask =
      make_bool({2, 3, 4}, {1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1});
  call(*l, {q, v});
  {
    autodiff::Tape tape(false, true);
    const Tensor y = ops::sum(ops::square(call(*l, {q, v, v, mask, flag(false), flag(true)})[0]));
    autodiff::GradientSources sources;
    for (const VariablePtr &var : l->trainable_variables()) sources.push_back(*var);
    const std::vector<Tensor> g = tape.gradient(y, sources, autodiff::Unconnected::kNone);
    ASSERT_EQ(g.size(), 8u);
    for (size_t i = 0; i < g.size(); ++i) {
      ASSERT_TRUE(g[i].defined()) << l->trainable_variables()[i]->name();
      EXPECT_GT(ops::sum(ops::abs(g[i])).data<float>()[0], 0.0f) << l->trainable_variables()[i]->name();
    }
  }
  // Central differences through the whole layer, to the query and the value.
  testing::check_gradients("multi_head_attention",
                           [&](const std::vector<Tensor> &xs) {
                             return call(*l, {xs[0], xs[1], xs[1], mask})[0];
                           },
                           {q, v});
}

TEST_F(AttentionLayersTest, DropoutActsOnTheProbabilitiesOnlyWhenTraining) {
  Config c;
  c.set("dropout", 0.5);
  LayerPtr l = mha(2, 3, c);
  const Tensor q = random_tensor({2, 6, 4}, 40), v = random_tensor({2, 6, 4}, 41);
  const std::vector<Tensor> infer = call(*l, {q, v, flag(true)});
  const std::vector<Tensor> again = call(*l, {q, v, flag(true)});
  expect_near(again[0], values(infer[0]), 0.0f, "inference is deterministic");
  const std::vector<Tensor> train = call(*l, {q, v, flag(true)}, true);
  // Keras returns the scores before dropout; the output differs.
  expect_near(train[1], values(infer[1]), 1e-6f, "scores before dropout");
  EXPECT_GT(ops::max(ops::abs(ops::sub(train[0], infer[0]))).data<float>()[0], 1e-4f);
}

TEST_F(AttentionLayersTest, ConfigRoundTripsWithKerasKeysAndDefaults) {
  Config in;
  in.set("num_heads", 3).set("key_dim", 8);
  LayerPtr l = create_layer("MultiHeadAttention", in);
  const Config c = l->get_config();
  EXPECT_EQ(c.keys(), (std::vector<std::string>{"name",
                                                "trainable",
                                                "dtype",
                                                "num_heads",
                                                "key_dim",
                                                "value_dim",
                                                "dropout",
                                                "use_bias",
                                                "use_gate",
                                                "output_shape",
                                                "attention_axes",
                                                "sliding_window",
                                                "kernel_initializer",
                                                "bias_initializer",
                                                "kernel_regularizer",
                                                "bias_regularizer",
                                                "activity_regularizer",
                                                "kernel_constraint",
                                                "bias_constraint",
                                                "seed"}));
  EXPECT_EQ(c.get_int("value_dim"), 8);
  EXPECT_EQ(c.get_float("dropout"), 0.0);
  EXPECT_TRUE(c.get_bool("use_bias"));
  EXPECT_TRUE(c.is_null("output_shape"));
  EXPECT_TRUE(c.is_null("attention_axes"));
  EXPECT_EQ(c.get_config("kernel_initializer").get_string("class_name"), "GlorotUniform");
  EXPECT_EQ(c.get_config("bias_initializer").get_string("class_name"), "Zeros");

  Config full;
  full.set("num_heads", 2).set("key_dim", 4).set("value_dim", 6).set("dropout", 0.25).set("use_bias", false);
  full.set("output_shape", 5).set("attention_axes", 1).set("kernel_regularizer", "l2").set("seed", 7);
  for (const Config &cfg : {in, full}) {
    LayerPtr a = create_layer("MultiHeadAttention", cfg);
    LayerPtr b = deserialize_layer(serialize_layer(*a));
    EXPECT_EQ(b->get_config(), a->get_config()) << a->get_config().to_json();
  }
  const Config fc = create_layer("MultiHeadAttention", full)->get_config();
  EXPECT_EQ(fc.get_int("output_shape"), 5);
  EXPECT_EQ(fc.get_int_list("attention_axes"), std::vector<int64_t>{1});

  for (const char *cls : {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
                          "Permute", "RepeatVector"}) {
    Config cfg;
    if (std::string(cls) == "Concatenate") cfg.set("axis", 1);
    if (std::string(cls) == "Permute") cfg.set("dims", std::vector<int64_t>{2, 1});
    if (std::string(cls) == "RepeatVector") cfg.set("n", 3);
    LayerPtr a = create_layer(cls, cfg);
    EXPECT_EQ(deserialize_layer(serialize_layer(*a))->get_config(), a->get_config()) << cls;
  }
  EXPECT_EQ(create_layer("Concatenate", Config())->get_config().get_int("axis"), -1);
}

TEST_F(AttentionLayersTest, AttentionErrorsNameTheLayer) {
  Config no_key;
  no_key.set("num_heads", 2);
  expect_error([&] { create_layer("MultiHeadAttention", no_key); }, Code::kInvalidArgument,
               {"MultiHeadAttention", "key_dim"});
  Config typo;
  typo.set("num_heads", 2).set("key_dim", 2).set("keydim", 3);
  expect_error([&] { create_layer("MultiHeadAttention", typo); }, Code::kInvalidArgument, {"keydim"});
  expect_error([&] { mha(0, 2); }, Code::kInvalidArgument, {"positive"});

  LayerPtr l = mha(2, 2);
  const Tensor q = random_tensor({2, 3, 4}, 50), v = random_tensor({2, 5, 4}, 51);
  const std::string quoted = "'" + l->name() + "' (MultiHeadAttention)";
  expect_error([&] { call(*l, {q}); }, Code::kInvalidArgument, {quoted, "got 1 inputs", "query and value"});
  expect_error([&] { call(*l, {q, v, v, v, v}); }, Code::kInvalidArgument, {"got 5 inputs"});
  call(*l, {q, v});
  expect_error(
      [&] {
        call(*l, {q, v, random_tensor({2, 4, 4}, 52)});
      },
      Code::kInvalidArgument, {quoted, "key has positions (4,) and value (5,)"});
  expect_error([&] { call(*l, {q, random_tensor({3, 5, 4}, 53)}); }, Code::kInvalidArgument, {"batch sizes"});
  expect_error(
      [&] {
        call(*l, {random_tensor({2, 3, 5}, 54), v});
      },
      Code::kInvalidArgument, {"query has last dimension 5", "built for 4"});
  expect_error(
      [&] {
        call(*l, {q, v, v, ops::ones(Shape({2, 3, 4}))});
      },
      Code::kInvalidArgument, {"attention_mask has shape"});
  expect_error(
      [&] {
        call(*mha(2, 2), {random_tensor({2, 4}, 55), random_tensor({2, 4}, 56)});
      },
      Code::kInvalidArgument, {"expected rank >= 3"});
  expect_error(
      [&] {
        call(*l, {q, random_tensor({2, 5, 1, 4}, 57)});
      },
      Code::kInvalidArgument, {"value has shape (2, 5, 1, 4); expected rank 3"});
  Config axes;
  axes.set("attention_axes", 2);
  expect_error([&] { call(*mha(2, 2, axes), {q, v}); }, Code::kInvalidArgument, {"attention_axes (2,)"});
  const Tensor q4 = random_tensor({1, 2, 3, 4}, 58);
  expect_error(
      [&] {
        call(*mha(2, 2), {q4, q4, flag(false), flag(true)});
      },
      Code::kUnimplemented, {"use_causal_mask and sliding_window need one attention axis"});

  const std::vector<PartialShape> out = l->compute_output_shape({{kUnknownDim, 3, 4}, {kUnknownDim, 5, 4}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (PartialShape{kUnknownDim, 3, 4}));
}

// Ranks above 3 follow Keras's attention_axes: the same attention as a rank-3 call on the
// flattened attention axes, with the other axes joining the batch.
TEST_F(AttentionLayersTest, AttentionAxesOfHigherRankInputs) {
  const int64_t B = 2, H = 2, KD = 3;
  // Default axes (1, 2): all positions of both axes attend to each other.
  {
    LayerPtr l = mha(H, KD);
    const Tensor qv = random_tensor({B, 2, 3, 5}, 102), vv = random_tensor({B, 2, 4, 5}, 103);
    const std::vector<Tensor> y = call(*l, {qv, vv, flag(true)});
    EXPECT_EQ(y[0].shape(), Shape({B, 2, 3, 5}));
    EXPECT_EQ(y[1].shape(), Shape({B, H, 2, 3, 2, 4}));
    const Tensor qf = ops::reshape(qv, {B, 6, 5}), vf = ops::reshape(vv, {B, 8, 5});
    const Reference r = reference(*l, qf, vf, vf, {}, false, H, KD, KD);
    expect_near(y[0], r.out, 1e-4f, "default axes");
    expect_near(y[1], r.probs, 1e-5f, "default axes scores");
  }
  // attention_axes=(1,) (written -3): axis 2 joins the batch. The reference moves it next to the
  // batch axis and flattens the two.
  const Tensor q = random_tensor({B, 3, 2, 5}, 100), v = random_tensor({B, 4, 2, 5}, 101);
  Config axes;
  axes.set("attention_axes", std::vector<int64_t>{-3});
  LayerPtr l = mha(H, KD, axes);
  std::vector<int> mask(size_t(B * 2 * 3 * 4));
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7) % 5 != 0;
  const std::vector<Tensor> y = call(*l, {q, v, v, make_bool({B, 2, 3, 4}, mask), flag(true)});
  EXPECT_EQ(y[0].shape(), Shape({B, 3, 2, 5}));
  EXPECT_EQ(y[1].shape(), Shape({B, 2, H, 3, 4}));
  const Tensor qf = ops::reshape(ops::transpose(q, {0, 2, 1, 3}), {B * 2, 3, 5});
  const Tensor vf = ops::reshape(ops::transpose(v, {0, 2, 1, 3}), {B * 2, 4, 5});
  const Reference r = reference(*l, qf, vf, vf, mask, false, H, KD, KD);
  const Tensor want = ops::transpose(ops::reshape(make({B * 2, 3, 5}, r.out), {B, 2, 3, 5}), {0, 2, 1, 3});
  expect_near(y[0], values(want), 1e-4f, "attention_axes (1,)");
  expect_near(y[1], r.probs, 1e-5f, "attention_axes (1,) scores");
  EXPECT_EQ(l->get_config().get_int_list("attention_axes"), std::vector<int64_t>{-3});
}

// ------------------------------------------------------------------ merges and reshaping

LayerPtr layer(const char *cls, Config c = Config()) { return create_layer(cls, c); }

// Keras's Attention / AdditiveAttention written out in double: scores per score_mode, the value
// mask and causal mask (masked scores less 1e9), softmax, weights . value, the query mask zeroing
// rows. q [B, Tq, D], v [B, Tv, Dv], k [B, Tv, D]; masks 0/1 [B, Tq] and [B, Tv] (empty: none).
struct DotReference {
  std::vector<float> out, weights;
};
DotReference dot_reference(const std::string &mode, const std::vector<float> &scale, float concat_weight,
                           const Tensor &query, const Tensor &value, const Tensor &key,
                           const std::vector<int> &qmask, const std::vector<int> &vmask, bool causal) {
  const std::vector<float> q = values(query), v = values(value), k = values(key);
  const int64_t B = query.shape()[0], Tq = query.shape()[1], D = query.shape()[2], Tv = value.shape()[1],
                Dv = value.shape()[2];
  DotReference r{std::vector<float>(size_t(B * Tq * Dv)), std::vector<float>(size_t(B * Tq * Tv))};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tq; ++i) {
      std::vector<double> s(static_cast<size_t>(Tv));
      for (int64_t j = 0; j < Tv; ++j) {
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) {
          const double a = q[size_t((b * Tq + i) * D + d)], c = k[size_t((b * Tv + j) * D + d)];
          if (mode == "dot")
            acc += a * c;
          else if (mode == "concat")
            acc += std::tanh((scale.empty() ? 1.0 : scale[0]) * (a + c));
          else  // additive
            acc += (scale.empty() ? 1.0 : scale[size_t(d)]) * std::tanh(a + c);
        }
        if (mode == "dot" && !scale.empty()) acc *= scale[0];
        if (mode == "concat") acc *= concat_weight;
        const bool keep = (vmask.empty() || vmask[size_t(b * Tv + j)]) && (!causal || j <= i);
        s[size_t(j)] = keep ? acc : double(float(acc) - 1e9f);  // in float32, as the layer
      }
      double mx = -1e300, sum = 0;
      for (double x : s) mx = std::max(mx, x);
      for (double &x : s) sum += (x = std::exp(x - mx));
      const bool row = qmask.empty() || qmask[size_t(b * Tq + i)];
      for (int64_t j = 0; j < Tv; ++j) r.weights[size_t((b * Tq + i) * Tv + j)] = float(s[size_t(j)] / sum);
      for (int64_t e = 0; e < Dv; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < Tv; ++j) acc += s[size_t(j)] / sum * v[size_t((b * Tv + j) * Dv + e)];
        r.out[size_t((b * Tq + i) * Dv + e)] = row ? float(acc) : 0.0f;
      }
    }
  return r;
}

TEST_F(AttentionLayersTest, AttentionAndAdditiveAttentionMatchKerassFormulas) {
  const int64_t B = 2, Tq = 3, Tv = 4, D = 5;
  const Tensor q = random_tensor({B, Tq, D}, 31), v = random_tensor({B, Tv, 6}, 32),
               k = random_tensor({B, Tv, D}, 33);
  const std::vector<int> qmask = {1, 0, 1, 1, 1, 1}, vmask = {1, 1, 0, 0, 1, 1, 1, 0};
  const std::vector<Tensor> masks = {make_bool({B, Tq}, qmask), make_bool({B, Tv}, vmask), Tensor(), Tensor(),
                                     Tensor()};  // one slot per input: the key's and the flags' empty
  struct Case {
    const char *cls, *mode;
    Config config;
  };
  Config scaled, concat;
  scaled.set("use_scale", true);
  concat.set("use_scale", true).set("score_mode", "concat");
  const Case cases[] = {{"Attention", "dot", Config()},
                        {"Attention", "dot", scaled},
                        {"Attention", "concat", concat},
                        {"AdditiveAttention", "additive", Config()}};
  for (const Case &c : cases) {
    LayerPtr l = create_layer(c.cls, c.config);
    call(*l, {q, v, k});  // builds
    // Non-default weights, so the reference sees them used.
    std::vector<float> scale;
    float concat_weight = 1.0f;
    const std::vector<VariablePtr> w = l->variables();
    if (!w.empty()) {
      const Shape s0 = w[0]->shape();
      std::vector<float> sv(size_t(s0.num_elements()));
      for (size_t i = 0; i < sv.size(); ++i) sv[i] = 0.5f + 0.25f * float(i);
      w[0]->assign(make(s0, sv));
      scale = sv;
    }
    if (w.size() > 1) {
      w[1]->assign(make({}, {1.5f}));
      concat_weight = 1.5f;
    }
    const std::string what = std::string(c.cls) + " " + c.mode;
    std::vector<Tensor> y = call(*l, {q, v, k});
    ASSERT_EQ(y.size(), 1u) << what;
    expect_near(y[0], dot_reference(c.mode, scale, concat_weight, q, v, k, {}, {}, false).out, 1e-5f, what);
    CallContext ctx;
    ctx.mask = &masks;
    y = (*l)({q, v, k, flag(true), flag(true)}, ctx);
    ASSERT_EQ(y.size(), 2u) << what;
    EXPECT_EQ(y[1].shape(), Shape({B, Tq, Tv}));
    const DotReference r = dot_reference(c.mode, scale, concat_weight, q, v, k, qmask, vmask, true);
    expect_near(y[0], r.out, 1e-5f, what + " masked causal");
    expect_near(y[1], r.weights, 1e-5f, what + " masked causal weights");
    // The output keeps the query's mask (Keras's compute_mask).
    const std::vector<Tensor> three(masks.begin(), masks.begin() + 3);
    CallContext ctx3;
    ctx3.mask = &three;
    const CallResult res = l->call({q, v, k}, ctx3);
    ASSERT_EQ(res.masks.size(), 1u);
    EXPECT_EQ(values<int32_t>(ops::cast(res.masks[0], DType::kInt32)),
              std::vector<int32_t>(qmask.begin(), qmask.end()));
    // The key defaults to the value (Keras's [query, value]).
    const Tensor self_v = random_tensor({B, Tv, D}, 34);
    expect_near(call(*l, {q, self_v})[0],
                dot_reference(c.mode, scale, concat_weight, q, self_v, self_v, {}, {}, false).out, 1e-5f,
                what + " key = value");
  }
}

TEST_F(AttentionLayersTest, AttentionWeightsGradientsDropoutConfigAndErrors) {
  Config c;
  c.set("use_scale", true).set("dropout", 0.5).set("seed", 3);
  LayerPtr l = create_layer("Attention", c);
  const Tensor q = random_tensor({2, 3, 4}, 41), v = random_tensor({2, 5, 4}, 42);
  call(*l, {q, v});
  ASSERT_EQ(l->variables().size(), 1u);
  EXPECT_EQ(l->variables()[0]->name(), l->name() + "/scale");
  EXPECT_EQ(l->variables()[0]->shape(), Shape({}));
  // Dropout acts on the weights (returned after dropout, as Keras) only when training.
  const std::vector<Tensor> infer = call(*l, {q, v, flag(true)});
  const std::vector<Tensor> train = call(*l, {q, v, flag(true)}, true);
  const std::vector<float> wi = values(infer[1]), wt = values(train[1]);
  int zeros = 0;
  for (size_t i = 0; i < wt.size(); ++i) {
    if (wt[i] == 0.0f)
      ++zeros;
    else
      EXPECT_NEAR(wt[i], 2.0f * wi[i], 1e-5f) << i;
  }
  EXPECT_GT(zeros, 0);
  // Gradients reach the scale and the inputs.
  testing::check_gradients("Attention",
                           [&](const std::vector<Tensor> &x) {
                             return call(*l, {x[0], x[1]})[0];
                           },
                           {q, v});
  LayerPtr add = create_layer("AdditiveAttention", Config());
  call(*add, {q, v});
  for (const LayerPtr &layer : {l, add}) {
    autodiff::Tape tape(false, true);
    const Tensor y = ops::sum(ops::square(call(*layer, {q, v})[0]));
    autodiff::GradientSources sources;
    for (const VariablePtr &var : layer->trainable_variables()) sources.push_back(*var);
    const std::vector<Tensor> g = tape.gradient(y, sources, autodiff::Unconnected::kNone);
    ASSERT_EQ(g.size(), 1u);
    ASSERT_TRUE(g[0].defined()) << layer->name();
    EXPECT_EQ(g[0].shape(), layer == add ? Shape({4}) : Shape({}));
    EXPECT_GT(ops::sum(ops::abs(g[0])).data<float>()[0], 0.0f) << layer->name();
  }
  testing::check_gradients("AdditiveAttention",
                           [&](const std::vector<Tensor> &x) {
                             return call(*add, {x[0], x[1]})[0];
                           },
                           {q, v});
  // Configs as Keras writes them, round-tripping through the registry.
  const Config cfg = l->get_config();
  EXPECT_TRUE(cfg.get_bool("use_scale"));
  EXPECT_EQ(cfg.get_string("score_mode"), "dot");
  EXPECT_DOUBLE_EQ(cfg.get_float("dropout"), 0.5);
  EXPECT_EQ(cfg.get_int("seed"), 3);
  EXPECT_EQ(create_layer("Attention", cfg)->get_config().to_json(), cfg.to_json());
  const Config acfg = add->get_config();
  EXPECT_TRUE(acfg.get_bool("use_scale"));
  EXPECT_FALSE(acfg.has("score_mode"));
  EXPECT_EQ(add->name(), "additive_attention");
  // Errors name the layer and what was expected.
  Config bad;
  bad.set("score_mode", "general");
  expect_error([&] { create_layer("Attention", bad); }, Code::kInvalidArgument, {"score_mode is 'general'"});
  Config bad_drop;
  bad_drop.set("dropout", 1.5);
  expect_error([&] { create_layer("AdditiveAttention", bad_drop); }, Code::kInvalidArgument,
               {"dropout is 1.5"});
  // AdditiveAttention takes score_mode (checked, then unused) and leaves it out of its config, as Keras.
  Config mode;
  mode.set("score_mode", "concat");
  EXPECT_FALSE(create_layer("AdditiveAttention", mode)->get_config().has("score_mode"));
  mode.set_null("score_mode");
  expect_error([&] { create_layer("AdditiveAttention", mode); }, Code::kInvalidArgument,
               {"score_mode is null"});
  // A scalar that is not a bool flag is an input: a rank-0 key is refused, not read as a flag.
  expect_error([&] { call(*l, {q, v, ops::fill(Shape({}), 0.0)}); }, Code::kInvalidArgument, {"one rank"});
  expect_error([&] { call(*l, {q}); }, Code::kInvalidArgument, {"(Attention)", "[query, value]"});
  expect_error(
      [&] {
        call(*l, {q, random_tensor({2, 5, 3}, 43), random_tensor({2, 4, 4}, 44)});
      },
      Code::kInvalidArgument, {"key needs the query's dim and the value's steps"});
  const std::vector<Tensor> bad_masks = {Tensor(), make_bool({2, 5, 1}, std::vector<int>(10, 1))};
  CallContext ctx;
  ctx.mask = &bad_masks;
  expect_error([&] { (*l)({q, v}, ctx); }, Code::kInvalidArgument, {"(Attention)", "mask 1 has shape"});
}

TEST_F(AttentionLayersTest, ElementwiseMergesMatchOpsAndBroadcastAsKeras) {
  EXPECT_EQ(layer("Add")->name(), "add");
  const Tensor a = random_tensor({2, 3, 4}, 60), b = random_tensor({2, 3, 4}, 61),
               c = random_tensor({2, 3, 4}, 62);
  auto run = [](const char *cls, const std::vector<Tensor> &xs) { return call(*layer(cls), xs)[0]; };
  expect_near(run("Add", {a, b, c}), values(ops::add(ops::add(a, b), c)), 1e-6f, "Add");
  expect_near(run("Subtract", {a, b}), values(ops::sub(a, b)), 1e-6f, "Subtract");
  expect_near(run("Multiply", {a, b, c}), values(ops::mul(ops::mul(a, b), c)), 1e-6f, "Multiply");
  expect_near(run("Average", {a, b, c}),
              values(ops::div(ops::add(ops::add(a, b), c), ops::fill(Shape({}), 3.0))), 1e-6f, "Average");
  expect_near(run("Maximum", {a, b, c}), values(ops::maximum(ops::maximum(a, b), c)), 0, "Maximum");
  expect_near(run("Minimum", {a, b}), values(ops::minimum(a, b)), 0, "Minimum");
  expect_near(run("Add", {a}), values(a), 0, "one input");
  // Size-1 dims broadcast; a lower-rank input gets axes after its batch axis (Keras's reshape).
  const Tensor row = random_tensor({2, 1, 4}, 63), low = random_tensor({2, 4}, 64);
  expect_near(run("Add", {a, row}), values(ops::add(a, row)), 1e-6f, "size-1 dim");
  expect_near(run("Multiply", {a, low}), values(ops::mul(a, ops::expand_dims(low, 1))), 1e-6f, "lower rank");
  // Gradients flow to every input.
  testing::check_gradients("Average", [&](const std::vector<Tensor> &xs) { return run("Average", xs); },
                           {a, row});
  testing::check_gradients("Multiply", [&](const std::vector<Tensor> &xs) { return run("Multiply", xs); },
                           {a, b, low});
}

TEST_F(AttentionLayersTest, MergeErrorsNameTheLayer) {
  const Tensor a = random_tensor({2, 3}, 70);
  expect_error(
      [&] {
        call(*layer("Add"), {a, random_tensor({2, 4}, 71)});
      },
      Code::kInvalidArgument, {"'add' (Add)", "incompatible shapes", "(2, 3)", "(2, 4)"});
  expect_error(
      [&] {
        call(*layer("Multiply"), {a, random_tensor({3, 3}, 72)});
      },
      Code::kInvalidArgument, {"'multiply' (Multiply)", "different batch sizes"});
  expect_error(
      [&] {
        call(*layer("Subtract"), {a, a, a});
      },
      Code::kInvalidArgument, {"'subtract'", "exactly 2"});
  expect_error([&] { call(*layer("Average"), {}); }, Code::kInvalidArgument, {"'average'", "at least 1"});
  expect_error(
      [&] {
        call(*layer("Concatenate"), {a, random_tensor({2, 3, 1}, 73)});
      },
      Code::kInvalidArgument,
      {"'concatenate' (Concatenate)", "matching shapes except for the concatenation axis"});
  Config axis;
  axis.set("axis", 0);
  expect_error(
      [&] {
        call(*layer("Concatenate", axis), {a, random_tensor({2, 4}, 74)});
      },
      Code::kInvalidArgument, {"matching shapes"});
  axis.set("axis", 3);
  expect_error(
      [&] {
        call(*layer("Concatenate", axis), {a, a});
      },
      Code::kInvalidArgument, {"axis 3 is out of range"});
  Config bad;
  bad.set("units", 3);
  expect_error([&] { layer("Add", bad); }, Code::kInvalidArgument, {"units"});
}

// keras.layers.Dot: Keras's docstring example, rank-2 inputs giving [B, 1], an int axis counted from
// each input's end, normalize (cosine proximity), configs as Keras writes them, gradients and errors.
TEST_F(AttentionLayersTest, DotAsKerasBatchDot) {
  std::vector<float> xv, yv;
  for (int i = 0; i < 10; ++i) xv.push_back(float(i)), yv.push_back(float(10 + i));
  const Tensor x = make({1, 5, 2}, xv), y = make({1, 2, 5}, yv);
  Config axes12;
  axes12.set("axes", std::vector<int64_t>{1, 2});
  expect_near(call(*layer("Dot", axes12), {x, y})[0], {260, 360, 320, 445}, 0);
  EXPECT_EQ(call(*layer("Dot", axes12), {x, y})[0].shape(), Shape({1, 2, 2}));
  const Tensor a = make({2, 2}, {1, 2, 3, 4}), b = make({2, 2}, {3, 4, 0, 1});
  Config one;
  one.set("axes", 1);
  const Tensor d = call(*layer("Dot", one), {a, b})[0];
  EXPECT_EQ(d.shape(), Shape({2, 1}));
  expect_near(d, {11, 4}, 0);
  Config cosine;
  cosine.set("axes", -1).set("normalize", true);
  expect_near(call(*layer("Dot", cosine), {a, b})[0], {0.98386991f, 0.8f}, 1e-6f);
  // a rank-3 and a rank-2 input: the batch, then x's other axes
  const Tensor r3 = random_tensor({2, 3, 2}, 70);
  const Tensor mixed = call(*layer("Dot", cosine), {r3, a})[0];
  EXPECT_EQ(mixed.shape(), Shape({2, 3}));
  const Config written = layer("Dot", axes12)->get_config();
  EXPECT_EQ(written.get_int_list("axes"), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(written.get_bool("normalize"));
  EXPECT_EQ(layer("Dot", one)->get_config().get_int("axes"), 1);
  testing::check_gradients("Dot",
                           [&](const std::vector<Tensor> &in) {
                             return call(*layer("Dot", cosine), {in[0], in[1]})[0];
                           },
                           {random_tensor({2, 3}, 71), random_tensor({2, 3}, 72)});
  Config batch;
  batch.set("axes", 0);
  expect_error(
      [&] {
        call(*layer("Dot", batch), {a, b});
      },
      Code::kInvalidArgument, {"(Dot)", "batch axis 0"});
  expect_error(
      [&] {
        call(*layer("Dot", axes12), {x, x});
      },
      Code::kInvalidArgument, {"(Dot)", "incompatible input shapes", "5 (at axis 1) != 2 (at axis 2)"});
  expect_error([&] { call(*layer("Dot", one), {a}); }, Code::kInvalidArgument, {"(Dot)", "got 1 inputs"});
  expect_error([&] { layer("Dot"); }, Code::kInvalidArgument, {"Dot", "'axes' is required"});
  Config three;
  three.set("axes", std::vector<int64_t>{1, 1, 1});
  expect_error([&] { layer("Dot", three); }, Code::kInvalidArgument, {"Dot", "two ints"});
}

TEST_F(AttentionLayersTest, ConcatenateJoinsAlongItsAxis) {
  const Tensor a = random_tensor({2, 3, 4}, 80), b = random_tensor({2, 3, 2}, 81),
               c = random_tensor({2, 1, 4}, 82);
  expect_near(call(*layer("Concatenate"), {a, b})[0], values(ops::concat({a, b}, 2)), 0, "axis -1");
  Config one;
  one.set("axis", 1);
  LayerPtr l = layer("Concatenate", one);
  const Tensor y = call(*l, {a, c})[0];
  EXPECT_EQ(y.shape(), Shape({2, 4, 4}));
  expect_near(y, values(ops::concat({a, c}, 1)), 0, "axis 1");
  EXPECT_EQ(l->compute_output_shape({{kUnknownDim, 3, 4}, {kUnknownDim, 1, 4}})[0],
            (PartialShape{kUnknownDim, 4, 4}));
  testing::check_gradients("Concatenate", [&](const std::vector<Tensor> &xs) { return call(*l, xs)[0]; },
                           {a, c});
}

TEST_F(AttentionLayersTest, PermuteAndRepeatVector) {
  Config p;
  p.set("dims", std::vector<int64_t>{3, 1, 2});
  LayerPtr perm = layer("Permute", p);
  const Tensor x = random_tensor({2, 3, 4, 5}, 90);
  const Tensor y = (*perm)(x);
  EXPECT_EQ(y.shape(), Shape({2, 5, 3, 4}));
  expect_near(y, values(ops::transpose(x, {0, 3, 1, 2})), 0, "Permute");
  EXPECT_EQ(perm->get_config().get_int_list("dims"), (std::vector<int64_t>{3, 1, 2}));
  expect_error(
      [&] {
        (*perm)(random_tensor({2, 3}, 91));
      },
      Code::kInvalidArgument, {"'permute' (Permute)", "rank 4"});
  p.set("dims", std::vector<int64_t>{1, 3});
  expect_error([&] { layer("Permute", p); }, Code::kInvalidArgument,
               {"Permute", "consecutive and start from 1"});
  expect_error([&] { layer("Permute"); }, Code::kInvalidArgument, {"dims"});

  Config r;
  r.set("n", 3);
  LayerPtr rep = layer("RepeatVector", r);
  const Tensor v = random_tensor({2, 4}, 92);
  const Tensor z = (*rep)(v);
  EXPECT_EQ(z.shape(), Shape({2, 3, 4}));
  const std::vector<float> vv = values(v), zz = values(z);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t f = 0; f < 4; ++f) EXPECT_EQ(zz[size_t((b * 3 + i) * 4 + f)], vv[size_t(b * 4 + f)]);
  testing::check_gradients("RepeatVector", [&](const std::vector<Tensor> &xs) { return (*rep)(xs[0]); }, {v});
  expect_error(
      [&] {
        (*rep)(random_tensor({2, 3, 4}, 93));
      },
      Code::kInvalidArgument, {"'repeat_vector'", "rank 2"});
  expect_error([&] { layer("RepeatVector"); }, Code::kInvalidArgument, {"RepeatVector", "'n'"});
}

}  // namespace
}  // namespace kiln::layers
