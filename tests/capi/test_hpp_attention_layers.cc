// kiln.hpp attention, merge and reshaping layers: the typed constructors, attention_inputs (the
// call's keywords as the layer's input list), outputs against compositions of kiln.hpp ops,
// gradients to every weight, configs that round-trip, errors naming the layer.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.hpp"

namespace {

using kiln::Dims;
using kiln::Tensor;

void expect_close(const Tensor &got, const Tensor &want, float tol, const char *what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(g[i], w[i], tol * (1 + std::fabs(w[i]))) << what << " at " << i;
}

kiln::Layer attention(int64_t heads, int64_t key_dim, kiln::layers::MultiHeadAttentionOptions o = {}) {
  o.bias_initializer = "random_uniform";  // biases that matter in the comparisons
  return kiln::layers::MultiHeadAttention(heads, key_dim, o);
}

// Keras's attention written with kiln.hpp ops: the layer's own weights, einsum projections,
// a where-masked softmax. Returns {output, probabilities}.
std::vector<Tensor> composed(const kiln::Layer &l, const Tensor &q_in, const Tensor &v_in, const Tensor &k_in,
                             const Tensor &mask, int64_t key_dim) {
  const std::vector<kiln::Variable> w = l.variables();
  auto proj = [&](const Tensor &x, size_t i) {
    return kiln::einsum("btc,chd->bthd", {x, w[i]}) + w[i + 1].value();
  };
  const Tensor q = proj(q_in, 0), k = proj(k_in, 2), v = proj(v_in, 4);
  Tensor scores =
      kiln::einsum("bthd,bshd->bhts", {q, k}) * static_cast<float>(1.0 / std::sqrt(double(key_dim)));
  Tensor probs;
  if (mask.valid()) {
    const Tensor m = kiln::expand_dims(mask, 1);
    probs =
        kiln::softmax(kiln::where(m, scores, kiln::fill({}, -1e9)), -1) * kiln::cast(m, kiln::DType::float32);
  } else {
    probs = kiln::softmax(scores, -1);
  }
  const Tensor out =
      kiln::einsum("bthd,hde->bte", {kiln::einsum("bhts,bshd->bthd", {probs, v}), w[6]}) + w[7].value();
  return {out, probs};
}

TEST(HppAttentionLayers, MultiHeadAttentionMatchesAComposition) {
  kiln::clear_session();
  kiln::layers::MultiHeadAttentionOptions o;
  o.value_dim = 3;
  kiln::Layer l = attention(2, 4, o);
  EXPECT_EQ(l.name(), "multi_head_attention");
  const Tensor q = kiln::random_uniform({2, 3, 6}, -1, 1, 1), v = kiln::random_uniform({2, 5, 6}, -1, 1, 2),
               k = kiln::random_uniform({2, 5, 4}, -1, 1, 3);
  kiln::layers::AttentionCall call;
  call.key = k;
  std::vector<Tensor> y = l(kiln::layers::attention_inputs(q, v, call));
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].shape(), (Dims{2, 3, 6}));
  const std::vector<kiln::Variable> w = l.variables();
  ASSERT_EQ(w.size(), 8u);
  EXPECT_EQ(w[0].name(), "multi_head_attention/query/kernel");
  EXPECT_EQ(w[0].value().shape(), (Dims{6, 2, 4}));
  EXPECT_EQ(w[3].name(), "multi_head_attention/key/bias");
  EXPECT_EQ(w[4].value().shape(), (Dims{6, 2, 3}));
  EXPECT_EQ(w[6].name(), "multi_head_attention/attention_output/kernel");
  EXPECT_EQ(w[6].value().shape(), (Dims{2, 3, 6}));
  expect_close(y[0], composed(l, q, v, k, Tensor(), 4)[0], 1e-4f, "no mask");

  // A padding mask, with the scores returned; masked probabilities are zero.
  std::vector<bool> mv(2 * 3 * 5);
  for (size_t i = 0; i < mv.size(); ++i) mv[i] = i % 4 != 2;
  const Tensor mask = Tensor::from_vector(mv, {2, 3, 5});
  call.attention_mask = mask;
  call.return_attention_scores = true;
  y = l(kiln::layers::attention_inputs(q, v, call));
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(y[1].shape(), (Dims{2, 2, 3, 5}));
  std::vector<Tensor> want = composed(l, q, v, k, mask, 4);
  expect_close(y[0], want[0], 1e-4f, "padding mask");
  expect_close(y[1], want[1], 1e-5f, "padding mask scores");
  const std::vector<float> p = y[1].to_vector<float>();
  for (size_t i = 0; i < p.size(); ++i) {
    const size_t s = i % 5, t = (i / 5) % 3, b = i / 30;
    if (!mv[(b * 3 + t) * 5 + s]) {
      EXPECT_EQ(p[i], 0.0f) << i;
    }
  }

  // The causal mask: the same as an explicit lower-triangular mask.
  call.attention_mask = Tensor();
  call.use_causal_mask = true;
  y = l(kiln::layers::attention_inputs(q, v, call));
  std::vector<bool> lower(2 * 3 * 5);
  for (size_t i = 0; i < lower.size(); ++i) lower[i] = i % 5 <= (i / 5) % 3;
  want = composed(l, q, v, k, Tensor::from_vector(lower, {2, 3, 5}), 4);
  expect_close(y[0], want[0], 1e-4f, "causal");
  expect_close(y[1], want[1], 1e-5f, "causal scores");
}

TEST(HppAttentionLayers, GradientsReachEveryWeight) {
  kiln::clear_session();
  kiln::Layer l = attention(2, 3);
  const Tensor x = kiln::random_uniform({2, 4, 5}, -1, 1, 4);
  kiln::layers::AttentionCall call;
  call.use_causal_mask = true;
  l(kiln::layers::attention_inputs(x, x, call));
  kiln::GradientTape tape;
  const Tensor loss = kiln::sum(kiln::square(l(kiln::layers::attention_inputs(x, x, call), true)[0]));
  const std::vector<kiln::Variable> vars = l.trainable_variables();
  ASSERT_EQ(vars.size(), 8u);
  const std::vector<Tensor> g = tape.gradient(loss, vars);
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(g[i].valid()) << vars[i].name();
    EXPECT_GT(kiln::sum(kiln::abs(g[i])).item<float>(), 0.0f) << vars[i].name();
  }
}

// kiln.hpp's GroupedQueryAttention: with one key/value head per query head it is MultiHeadAttention
// with the same weights (use_gate and sliding_window too); two query heads per key/value head give the
// weights Keras gives; the scores have the query heads.
TEST(HppAttentionLayers, GroupedQueryAttention) {
  kiln::clear_session();
  kiln::layers::MultiHeadAttentionOptions o;
  o.use_gate = true;
  o.sliding_window = 2;
  kiln::Layer g = kiln::layers::GroupedQueryAttention(3, 2, 2, o);
  kiln::Layer m = kiln::layers::MultiHeadAttention(2, 3, o);
  const Tensor q = kiln::random_uniform({2, 4, 5}, -1, 1, 7), v = kiln::random_uniform({2, 6, 5}, -1, 1, 8);
  kiln::layers::AttentionCall call;
  call.return_attention_scores = true;
  const std::vector<Tensor> a = g(kiln::layers::attention_inputs(q, v, call));
  m(kiln::layers::attention_inputs(q, v, call));
  ASSERT_EQ(g.variables().size(), m.variables().size());
  for (size_t i = 0; i < g.variables().size(); ++i) m.variables()[i].assign(g.variables()[i].value());
  const std::vector<Tensor> b = m(kiln::layers::attention_inputs(q, v, call));
  EXPECT_EQ(a[0].to_vector<float>(), b[0].to_vector<float>());
  EXPECT_EQ(a[1].shape(), (kiln::Dims{2, 2, 4, 6}));
  EXPECT_EQ(g.variables()[4].name(), g.name() + "/gate/kernel");

  kiln::Layer grouped = kiln::layers::GroupedQueryAttention(2, 4, 2);
  grouped(kiln::layers::attention_inputs(q, v, {}));
  EXPECT_EQ(grouped.variables()[2].value().shape(), (kiln::Dims{5, 2, 2}));  // key: 2 heads
  EXPECT_EQ(grouped.get_config().get_int("num_key_value_heads"), 2);
  EXPECT_EQ(kiln::layers::GroupQueryAttention(2, 2, 1).class_name(),
            "GroupedQueryAttention");  // Keras's alias
  try {
    kiln::layers::GroupedQueryAttention(2, 3, 2);
    ADD_FAILURE() << "num_query_heads 3 over 2 key/value heads was accepted";
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("divisible"), std::string::npos) << e.what();
  }
}

TEST(HppAttentionLayers, ConfigRoundTripAndErrors) {
  kiln::clear_session();
  kiln::layers::MultiHeadAttentionOptions o;
  o.dropout = 0.1;
  o.output_shape = {8};
  o.seed = 3;
  kiln::Layer l = kiln::layers::MultiHeadAttention(4, 16, o);
  const kiln::Config c = l.get_config();
  EXPECT_EQ(c.get_int("num_heads"), 4);
  EXPECT_EQ(c.get_int("value_dim"), 16);
  EXPECT_EQ(c.get_int("output_shape"), 8);
  kiln::Layer back = kiln::Layer::deserialize(l.serialize());
  EXPECT_EQ(back.get_config(), c);
  EXPECT_EQ(back.class_name(), "MultiHeadAttention");

  kiln::Config no_key;
  no_key.set("num_heads", 2);
  try {
    kiln::Layer::create("MultiHeadAttention", no_key);
    FAIL();
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("key_dim"), std::string::npos) << e.what();
  }
  const Tensor q = kiln::random_uniform({1, 2, 4});
  try {
    l({q});
    FAIL();
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("layer '" + l.name() + "' (MultiHeadAttention)"), std::string::npos)
        << e.what();
  }
}

// Keras's Attention and AdditiveAttention against kiln.hpp ops: scores, the value mask (masked
// scores less 1e9), the causal mask, softmax, weights . value, the query mask zeroing rows.
TEST(HppAttentionLayers, AttentionAndAdditiveAttention) {
  kiln::clear_session();
  const Tensor q = kiln::random_uniform({2, 3, 4}, -1, 1, 5), v = kiln::random_uniform({2, 5, 4}, -1, 1, 6);
  const std::vector<bool> vm = {true, true, false, true, false, true, true, true, true, false};
  const std::vector<bool> qm = {true, false, true, true, true, true};
  const Tensor vmask = Tensor::from_vector(vm, {2, 5}), qmask = Tensor::from_vector(qm, {2, 3});
  std::vector<bool> lower(3 * 5);
  for (size_t i = 0; i < lower.size(); ++i) lower[i] = i % 5 <= i / 5;
  const Tensor causal = Tensor::from_vector(lower, {3, 5});
  kiln::layers::DotAttentionOptions scaled;
  scaled.use_scale = true;
  kiln::Layer dot = kiln::layers::Attention(scaled);
  kiln::Layer add = kiln::layers::AdditiveAttention();
  EXPECT_EQ(dot.name(), "attention");
  EXPECT_EQ(add.name(), "additive_attention");
  kiln::layers::AttentionCall call;
  call.return_attention_scores = true;
  call.use_causal_mask = true;
  for (kiln::Layer *l : {&dot, &add}) {
    const kiln::CallResult r = l->call_with_options(kiln::layers::attention_inputs(q, v, call),
                                                    {false, {qmask, vmask, Tensor(), Tensor()}});
    ASSERT_EQ(r.outputs.size(), 2u);
    const std::vector<kiln::Variable> w = l->variables();
    ASSERT_EQ(w.size(), 1u);
    Tensor scores;
    if (l == &dot) {
      EXPECT_EQ(w[0].name(), "attention/scale");
      scores = kiln::einsum("btd,bsd->bts", {q, v}) * w[0].value();
    } else {
      EXPECT_EQ(w[0].value().shape(), (Dims{4}));
      scores = kiln::sum(w[0].value() * kiln::tanh(kiln::expand_dims(q, 2) + kiln::expand_dims(v, 1)), {-1});
    }
    const Tensor keep = kiln::logical_and(kiln::expand_dims(vmask, 1), causal);
    const Tensor weights = kiln::softmax(kiln::where(keep, scores, scores - 1e9f), -1);
    const Tensor out =
        kiln::where(kiln::expand_dims(qmask, -1), kiln::matmul(weights, v), kiln::fill({}, 0.0));
    expect_close(r.outputs[1], weights, 1e-5f, "weights");
    expect_close(r.outputs[0], out, 1e-5f, "output");
    EXPECT_EQ(r.masks[0].to_vector<bool>(), qm);
    EXPECT_FALSE(r.masks[1].valid());
  }
  EXPECT_EQ(dot.get_config().get_string("score_mode"), "dot");
  // compute_output_shapes: several inputs, and several outputs (LSTM's states).
  EXPECT_EQ(add.compute_output_shapes({{-1, 3, 4}, {-1, 5, 4}}), (std::vector<Dims>{{-1, 3, 4}}));
  kiln::layers::RecurrentOptions ro;
  ro.return_state = true;
  EXPECT_EQ(kiln::layers::LSTM(2, ro).compute_output_shapes({{-1, 6, 3}}),
            (std::vector<Dims>{{-1, 2}, {-1, 2}, {-1, 2}}));
  EXPECT_EQ(kiln::layers::Concatenate(1).compute_output_shapes({{2, 3}, {2, 4}}),
            (std::vector<Dims>{{2, 7}}));
  kiln::layers::DotAttentionOptions bad;
  bad.score_mode = "general";
  EXPECT_THROW(kiln::layers::Attention(bad), kiln::Error);
}

TEST(HppAttentionLayers, MergeAndReshapingLayers) {
  kiln::clear_session();
  const Tensor a = kiln::random_uniform({2, 3}, -1, 1, 5), b = kiln::random_uniform({2, 3}, -1, 1, 6),
               c = kiln::random_uniform({2, 1}, -1, 1, 7);
  expect_close(kiln::layers::Add()({a, b, c})[0], a + b + c, 1e-6f, "Add");
  expect_close(kiln::layers::Subtract()({a, b})[0], a - b, 1e-6f, "Subtract");
  expect_close(kiln::layers::Multiply()({a, b})[0], a * b, 1e-6f, "Multiply");
  expect_close(kiln::layers::Average()({a, b})[0], (a + b) / 2.0f, 1e-6f, "Average");
  expect_close(kiln::layers::Maximum()({a, b})[0], kiln::maximum(a, b), 0, "Maximum");
  expect_close(kiln::layers::Minimum()({a, b})[0], kiln::minimum(a, b), 0, "Minimum");
  expect_close(kiln::layers::Concatenate()({a, b})[0], kiln::concat({a, b}, 1), 0, "Concatenate");
  expect_close(kiln::layers::Concatenate(0)({a, b})[0], kiln::concat({a, b}, 0), 0, "Concatenate axis 0");
  const Tensor x = kiln::random_uniform({2, 3, 4}, -1, 1, 8);
  expect_close(kiln::layers::Permute({2, 1})(x), kiln::transpose(x, {0, 2, 1}), 0, "Permute");
  expect_close(kiln::layers::RepeatVector(4)(a), kiln::tile(kiln::expand_dims(a, 1), {1, 4, 1}), 0,
               "RepeatVector");

  kiln::Layer add = kiln::layers::Add("sum");
  EXPECT_EQ(add.name(), "sum");
  try {
    add({a, kiln::random_uniform({2, 4})});
    FAIL();
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("layer 'sum' (Add): inputs have incompatible shapes"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(kiln::layers::Subtract()({a, b, c}), kiln::Error);
  EXPECT_THROW(kiln::layers::Permute({1, 1}), kiln::Error);
  kiln::Layer perm = kiln::layers::Permute({2, 1});
  EXPECT_EQ(kiln::Layer::deserialize(perm.serialize()).get_config(), perm.get_config());
}

}  // namespace
