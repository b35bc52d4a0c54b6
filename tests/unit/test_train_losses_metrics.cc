// Keras losses and metrics (src/train): golden values from NumPy references of Keras's formulas
// (tests/golden/losses_metrics_golden.json, made by tests/golden/make_loss_metric_golden.py),
// hand-computed cases, gradients of every loss, metric state and reset, the "accuracy"
// resolution, bad input, and one metric updated from four threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "autodiff/tape.h"
#include "layers/activations.h"
#include "ops/ops.h"
#include "test_util.h"
#include "train/callbacks.h"
#include "train/losses.h"
#include "train/metrics.h"

namespace kiln::train {
namespace {

using Json = nlohmann::ordered_json;
using testing::expect_error;
using testing::expect_near;
using testing::make;
using testing::make_typed;
using testing::values;

Json load_golden() {
  std::ifstream in(testing::source_dir() + "/tests/golden/losses_metrics_golden.json");
  EXPECT_TRUE(in.good()) << "cannot open tests/golden/losses_metrics_golden.json";
  return in ? Json::parse(in) : Json();
}

Tensor tensor_from(const Json &t) {
  if (t.is_null()) return Tensor();
  const std::vector<int64_t> shape = t.at("shape").get<std::vector<int64_t>>();
  if (t.at("dtype") == "int64")
    return make_typed<int64_t>(Shape(shape), t.at("data").get<std::vector<int64_t>>());
  std::vector<float> v;
  for (const Json &x : t.at("data")) v.push_back(static_cast<float>(x.get<double>()));
  return make(Shape(shape), v);
}

void expect_golden(const Tensor &got, const Json &c) {
  const Tensor want = tensor_from(c.at("want"));
  const double rtol = c.at("tolerance").at("rtol"), atol = c.at("tolerance").at("atol");
  const std::string name = c.at("name");
  ASSERT_EQ(got.shape(), want.shape()) << name << ": got " << got.description();
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double w = want.data<float>()[i], g = got.data<float>()[i];
    EXPECT_NEAR(g, w, atol + rtol * std::fabs(w)) << name << " element " << i;
  }
}

TEST(TrainGolden, LossesAndMetricsMatchNumPy) {
  const Json doc = load_golden();
  ASSERT_TRUE(doc.contains("cases"));
  int losses = 0, metrics = 0;
  for (const Json &c : doc.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const Config config = Config::from_json(c.at("config").dump());
    const std::string cls = c.at("class_name");
    if (c.at("kind") == "loss") {
      const Json &b = c.at("batches").at(0);
      LossPtr loss = create_loss(cls, config);
      expect_golden((*loss)(tensor_from(b.at("y_true")), tensor_from(b.at("y_pred")),
                            tensor_from(b.at("sample_weight"))),
                    c);
      ++losses;
    } else {
      MetricPtr m = create_metric(cls, config);
      for (const Json &b : c.at("batches")) {
        if (b.contains("values"))
          m->update_state_values(tensor_from(b.at("values")), tensor_from(b.at("sample_weight")));
        else
          m->update_state(tensor_from(b.at("y_true")), tensor_from(b.at("y_pred")),
                          tensor_from(b.at("sample_weight")));
      }
      expect_golden(m->result(), c);
      // A metric rebuilt from its config and fed the same batches gives the same result.
      MetricPtr again = deserialize_metric(serialize_metric(*m));
      EXPECT_EQ(again->get_config(), m->get_config());
      ++metrics;
    }
  }
  EXPECT_GT(losses, 80);
  EXPECT_GT(metrics, 30);
}

// ------------------------------------------------------------------ hand-computed

TEST(TrainLosses, HandComputed) {
  // -log(0.5) and -log(0.25): mean, sum, none.
  const Tensor p = make({2, 3}, {0.5f, 0.25f, 0.25f, 0.25f, 0.25f, 0.5f});
  const Tensor labels = make_typed<int64_t>({2}, {0, 1});
  const float a = -std::log(0.5f), b = -std::log(0.25f);
  expect_near((*create_loss("SparseCategoricalCrossentropy"))(labels, p), {(a + b) / 2});
  Config sum;
  sum.set("reduction", "sum");
  expect_near((*create_loss("sparse_categorical_crossentropy", sum))(labels, p), {a + b});
  Config none;
  none.set("reduction", "none");
  expect_near((*create_loss("SparseCategoricalCrossentropy", none))(labels, p), {a, b});
  // Weights: sum_over_batch_size divides by the number of losses (2), not by the weights' sum.
  expect_near((*create_loss("SparseCategoricalCrossentropy"))(labels, p, make({2}, {2.0f, 0.0f})), {a});
  // Keras 3's "mean" is sum_over_batch_size under its own name; "mean_with_sample_weight" divides by
  // the weights' sum (0 when it is 0), or by the count without weights.
  Config mean, mws;
  mean.set("reduction", "mean");
  mws.set("reduction", "mean_with_sample_weight");
  const LossPtr mean_loss = create_loss("SparseCategoricalCrossentropy", mean);
  expect_near((*mean_loss)(labels, p, make({2}, {2.0f, 0.0f})), {a});
  EXPECT_EQ(mean_loss->get_config().get_string("reduction"), "mean");
  const LossPtr mws_loss = create_loss("SparseCategoricalCrossentropy", mws);
  expect_near((*mws_loss)(labels, p, make({2}, {2.0f, 0.0f})), {2 * a / 2});
  expect_near((*mws_loss)(labels, p, make({2}, {1.0f, 3.0f})), {(a + 3 * b) / 4});
  expect_near((*mws_loss)(labels, p, make({2}, {0.0f, 0.0f})), {0.0f});
  expect_near((*mws_loss)(labels, p), {(a + b) / 2});
  EXPECT_EQ(mws_loss->get_config().get_string("reduction"), "mean_with_sample_weight");
  // MSE: ((1-0)^2 + (2-4)^2) / 2 per row.
  expect_near((*create_loss("mse"))(make({1, 2}, {0, 4}), make({1, 2}, {1, 2})), {2.5f});
  // Huber, delta 1: errors 0.5 (quadratic: 0.125) and 3 (linear: 2.5).
  expect_near((*create_loss("Huber"))(make({1, 2}, {0, 0}), make({1, 2}, {0.5f, 3.0f})), {1.3125f});
  // Cosine similarity of parallel vectors is -1.
  expect_near((*create_loss("CosineSimilarity"))(make({1, 2}, {1, 1}), make({1, 2}, {2, 2})), {-1.0f});
  // Clipping: log(1e-7) for a wrong certain prediction.
  expect_near((*create_loss("binary_crossentropy"))(make({1, 1}, {1}), make({1, 1}, {0})), {-std::log(1e-7f)},
              1e-4f);
  // ignore_class: the ignored sample neither counts nor divides.
  Config ign;
  ign.set("ignore_class", int64_t{1});
  expect_near((*create_loss("SparseCategoricalCrossentropy", ign))(labels, p), {a}, 1e-5f);
}

// Keras's TensorFlow backend: the output of a sigmoid or softmax activation carries its logits,
// and crossentropy uses them in place of the clipped probabilities, so a saturated output keeps
// its loss and its gradient. from_logits=True on such an output warns (once) and uses them too.
TEST(TrainLosses, CrossentropyReadsTheLogitsAnActivationCarries) {
  const Tensor z = make({3, 1}, {30, -30, 2});
  const Tensor y = make({3, 1}, {0, 1, 1});
  const Tensor p = layers::get_activation("sigmoid")(z);
  ASSERT_TRUE(p.keras_logits().defined());
  double want = 0;
  for (int i = 0; i < 3; ++i) {
    const double zi = values(z)[i], ti = values(y)[i];
    want += std::max(zi, 0.0) - zi * ti + std::log1p(std::exp(-std::fabs(zi)));
  }
  const LossPtr bce = create_loss("binary_crossentropy");
  expect_near((*bce)(y, p), {static_cast<float>(want / 3)}, 1e-4f);
  // The clipped probabilities without the logits: -log(1e-7) caps the saturated samples.
  EXPECT_LT((*bce)(y, p.with_keras_logits(Tensor())).item_as_double(), 11.0);
  {
    autodiff::Tape tape(false, false);
    tape.watch(z);
    const Tensor loss = (*bce)(y, layers::get_activation("sigmoid")(z));
    const std::vector<float> g = values(tape.gradient(loss, {z}, autodiff::Unconnected::kNone)[0]);
    EXPECT_NEAR(g[0], 1.0f / 3, 1e-5f);  // (sigmoid(30) - 0) / 3: not the clip's 0
    EXPECT_NEAR(g[1], -1.0f / 3, 1e-5f);
  }
  const Tensor zs = make({1, 2}, {40, 0});
  const Tensor ps = layers::get_activation("softmax")(zs);
  const Tensor label = make_typed<int64_t>({1}, {1});
  expect_near((*create_loss("sparse_categorical_crossentropy"))(label, ps), {40.0f}, 1e-4f);
  expect_near((*create_loss("categorical_crossentropy"))(make({1, 2}, {0, 1}), ps), {40.0f}, 1e-4f);
  Config ignore;
  ignore.set("ignore_class", int64_t{7});  // Keras multiplies y_pred by the mask first: no logits
  expect_near((*create_loss("SparseCategoricalCrossentropy", ignore))(label, ps), {-std::log(1e-7f)}, 1e-3f);
  std::vector<std::string> warnings;
  set_callback_warning_sink([&](const std::string &w) { warnings.push_back(w); });
  Config logits;
  logits.set("from_logits", true);
  const LossPtr from_logits = create_loss("SparseCategoricalCrossentropy", logits);
  expect_near((*from_logits)(label, ps), {40.0f}, 1e-4f);
  expect_near((*from_logits)(label, ps), {40.0f}, 1e-4f);
  set_callback_warning_sink(nullptr);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("from_logits=True"), std::string::npos) << warnings[0];
}

TEST(TrainLosses, FromLogitsMatchesProbabilities) {
  const Tensor logits = testing::random_tensor({3, 4}, 5u, -2, 2);
  const Tensor probs = ops::softmax(logits);
  const Tensor labels = make_typed<int32_t>({3}, {0, 3, 2});
  Config logit;
  logit.set("from_logits", true);
  const Tensor l1 = (*create_loss("SparseCategoricalCrossentropy", logit))(labels, logits);
  const Tensor l2 = (*create_loss("SparseCategoricalCrossentropy"))(labels, probs);
  expect_near(l1, {l2.data<float>()[0]}, 1e-5f);
  const Tensor onehot = ops::one_hot(labels, 4);
  expect_near((*create_loss("CategoricalCrossentropy", logit))(onehot, logits), {l2.data<float>()[0]}, 1e-5f);
  const Tensor z = make({2, 2}, {1, 0, 0, 1});
  expect_near((*create_loss("BinaryCrossentropy", logit))(z, make({2, 2}, {3, -1, 0.5f, 2})),
              {(*create_loss("BinaryCrossentropy"))(z, ops::sigmoid(make({2, 2}, {3, -1, 0.5f, 2})))
                   .data<float>()[0]},
              1e-5f);
}

// ------------------------------------------------------------------ gradients

TEST(TrainLosses, GradientsMatchFiniteDifferences) {
  testing::GradCheckOptions opt;
  opt.eps = 1e-3f;
  const Tensor probs = ops::softmax(testing::random_tensor({3, 4}, 11u));
  const Tensor targets = ops::softmax(testing::random_tensor({3, 4}, 12u));
  const Tensor labels = make_typed<int64_t>({3}, {1, 0, 3});
  const Tensor w = make({3}, {1.0f, 0.5f, 2.0f});
  struct Case {
    std::string name;
    Config config;
    Tensor y_true;
    Tensor y_pred;
  };
  Config logits, smooth, delta;
  logits.set("from_logits", true);
  smooth.set("label_smoothing", 0.1);
  delta.set("delta", 0.2);
  Config axis1;
  axis1.set("axis", int64_t{1}).set("alpha", 0.3).set("beta", 0.7);
  const Tensor raw = testing::random_tensor({3, 4}, 13u);
  const std::vector<Case> cases = {
      {"SparseCategoricalCrossentropy", {}, labels, probs},
      {"SparseCategoricalCrossentropy", logits, labels, raw},
      {"CategoricalCrossentropy", smooth, targets, probs},
      {"CategoricalCrossentropy", logits, targets, raw},
      {"BinaryCrossentropy", smooth, targets, probs},
      {"BinaryCrossentropy", logits, targets, raw},
      {"MeanSquaredError", {}, targets, raw},
      {"MeanAbsoluteError", {}, targets, raw},
      {"Huber", delta, targets, raw},
      {"KLDivergence", {}, targets, probs},
      {"CosineSimilarity", {}, targets, raw},
      {"MeanAbsolutePercentageError", {}, targets, raw},
      {"MeanSquaredLogarithmicError", {}, targets, probs},
      {"LogCosh", {}, targets, raw},
      {"Poisson", {}, targets, probs},
      {"Hinge", {}, targets, raw},
      {"SquaredHinge", {}, targets, raw},
      {"CategoricalHinge", {}, targets, raw},
      {"BinaryFocalCrossentropy", smooth, targets, probs},
      {"BinaryFocalCrossentropy", logits, targets, raw},
      {"CategoricalFocalCrossentropy", smooth, targets, probs},
      {"CategoricalFocalCrossentropy", logits, targets, raw},
      {"Dice", {}, targets, probs},
      {"Tversky", axis1, targets, probs},
      {"CategoricalGeneralizedCrossEntropy", {}, labels, probs},
  };
  for (const Case &c : cases) {
    LossPtr loss = create_loss(c.name, c.config);
    testing::check_gradients(
        c.name + " " + c.config.to_json(),
        [&](const std::vector<Tensor> &x) { return (*loss)(c.y_true, x[0], w); }, {c.y_pred}, opt);
  }
}

// float64 end to end, for the losses whose ops all take it: the tape's gradient against central
// differences of the loss itself (eps 1e-6), with a weighted, reduced loss.
TEST(TrainLosses, GradientsInFloat64) {
  auto f64 = [](const Shape &s, const std::vector<double> &v) { return make_typed<double>(s, v); };
  const Shape s{2, 3};
  const Tensor probs = f64(s, {0.2, 0.5, 0.3, 0.6, 0.1, 0.3});
  const Tensor target = f64(s, {0.1, 0.7, 0.2, 0.5, 0.25, 0.25});
  const Tensor raw = f64(s, {0.3, -1.2, 0.8, 2.0, -0.4, 0.05});
  const Tensor w = f64({2}, {1.5, 0.5});
  Config delta;
  delta.set("delta", 0.5);
  Config smooth;
  smooth.set("label_smoothing", 0.1);
  const std::vector<std::tuple<std::string, Config, Tensor>> cases = {
      {"MeanSquaredError", {}, raw},
      {"MeanAbsoluteError", {}, raw},
      {"Huber", delta, raw},
      {"KLDivergence", {}, probs},
      {"CosineSimilarity", {}, raw},
      {"CategoricalCrossentropy", smooth, probs},
      {"BinaryCrossentropy", smooth, probs},
      {"MeanAbsolutePercentageError", {}, raw},
      {"MeanSquaredLogarithmicError", {}, probs},
      {"LogCosh", {}, raw},
      {"Poisson", {}, probs},
      {"Hinge", {}, probs},  // raw has a margin of exactly 0 (a kink)
      {"SquaredHinge", {}, raw},
      {"CategoricalHinge", {}, raw},
      {"BinaryFocalCrossentropy", smooth, probs},
      {"CategoricalFocalCrossentropy", smooth, probs},
      {"Dice", {}, probs},
      {"Tversky", {}, probs},
  };
  for (const auto &[cls, config, y_pred] : cases) {
    LossPtr loss = create_loss(cls, config);
    Tensor grad;
    {
      autodiff::Tape tape(false, true);
      tape.watch(y_pred);
      Tensor value = (*loss)(target, y_pred, w);
      ASSERT_EQ(value.dtype(), DType::kFloat64) << cls;
      tape.stop_recording();
      grad = tape.gradient(value, {y_pred}, autodiff::Unconnected::kZero)[0];
    }
    ASSERT_TRUE(grad.defined()) << cls;
    const std::vector<double> base = testing::values<double>(y_pred);
    for (size_t i = 0; i < base.size(); ++i) {
      std::vector<double> up = base, down = base;
      up[i] += 1e-6;
      down[i] -= 1e-6;
      const double numeric = ((*loss)(target, f64(s, up), w).data<double>()[0] -
                              (*loss)(target, f64(s, down), w).data<double>()[0]) /
                             2e-6;
      EXPECT_NEAR(grad.data<double>()[i], numeric, 1e-6 + 1e-5 * std::fabs(numeric))
          << cls << " element " << i;
    }
  }
}

// ------------------------------------------------------------------ configs, registry, errors

TEST(TrainLosses, ConfigRoundTrip) {
  for (const char *cls : {"SparseCategoricalCrossentropy",
                          "CategoricalCrossentropy",
                          "BinaryCrossentropy",
                          "MeanSquaredError",
                          "MeanAbsoluteError",
                          "Huber",
                          "KLDivergence",
                          "CosineSimilarity",
                          "MeanAbsolutePercentageError",
                          "MeanSquaredLogarithmicError",
                          "LogCosh",
                          "Poisson",
                          "Hinge",
                          "SquaredHinge",
                          "CategoricalHinge",
                          "BinaryFocalCrossentropy",
                          "CategoricalFocalCrossentropy",
                          "Dice",
                          "Tversky",
                          "CategoricalGeneralizedCrossEntropy",
                          "Circle"}) {
    LossPtr a = create_loss(cls);
    LossPtr b = deserialize_loss(serialize_loss(*a));
    EXPECT_EQ(a->get_config(), b->get_config()) << cls;
    EXPECT_EQ(b->class_name(), cls);
    EXPECT_NE(a->id(), b->id());
  }
  Config c;
  c.set("from_logits", true).set("ignore_class", int64_t{-1}).set("reduction", "sum").set("name", "x");
  EXPECT_EQ(create_loss("SparseCategoricalCrossentropy", c)->get_config().to_json(),
            R"({"name":"x","reduction":"sum","from_logits":true,"ignore_class":-1,"axis":-1})");
  EXPECT_EQ(create_loss("mse")->name(), "mean_squared_error");
  EXPECT_EQ(create_loss("huber")->name(), "huber_loss");
  // Keras 3's names and aliases of the other losses.
  for (const auto &[alias, cls, name] : std::vector<std::array<std::string, 3>>{
           {"mape", "MeanAbsolutePercentageError", "mean_absolute_percentage_error"},
           {"MSLE", "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"},
           {"logcosh", "LogCosh", "log_cosh"},
           {"poisson", "Poisson", "poisson"},
           {"squared_hinge", "SquaredHinge", "squared_hinge"},
           {"categorical_hinge", "CategoricalHinge", "categorical_hinge"},
           {"binary_focal_crossentropy", "BinaryFocalCrossentropy", "binary_focal_crossentropy"},
           {"categorical_focal_crossentropy", "CategoricalFocalCrossentropy",
            "categorical_focal_crossentropy"},
           {"dice", "Dice", "dice"},
           {"tversky", "Tversky", "tversky"},
           {"circle", "Circle", "circle"},
           {"bce", "BinaryCrossentropy", "binary_crossentropy"},
           {"BCE", "BinaryCrossentropy", "binary_crossentropy"}}) {
    LossPtr l = create_loss(alias);
    EXPECT_EQ(l->class_name(), cls) << alias;
    EXPECT_EQ(l->name(), name) << alias;
  }
  EXPECT_EQ(
      create_loss("BinaryFocalCrossentropy")->get_config().to_json(),
      R"({"name":"binary_focal_crossentropy","reduction":"sum_over_batch_size","apply_class_balancing":false,)"
      R"("alpha":0.25,"gamma":2.0,"from_logits":false,"label_smoothing":0.0,"axis":-1})");
  Config bad_gamma;
  bad_gamma.set("gamma", -1.0);
  expect_error([&] { create_loss("BinaryFocalCrossentropy", bad_gamma); }, Code::kInvalidArgument,
               {"gamma is -1", ">= 0"});
  expect_error([&] { create_loss("CategoricalFocalCrossentropy", bad_gamma); }, Code::kInvalidArgument,
               {"gamma is -1", ">= 0"});
  // Keras 3's configs, in its key order; alpha and axis come back as given (a number or a list).
  EXPECT_EQ(
      create_loss("CategoricalFocalCrossentropy")->get_config().to_json(),
      R"({"name":"categorical_focal_crossentropy","reduction":"sum_over_batch_size","from_logits":false,)"
      R"("label_smoothing":0.0,"axis":-1,"alpha":0.25,"gamma":2.0})");
  Config per_class;
  per_class.set("alpha", std::vector<double>{0.5, 0.25});
  EXPECT_EQ(create_loss("CategoricalFocalCrossentropy", per_class)->get_config().get_float_list("alpha"),
            (std::vector<double>{0.5, 0.25}));
  EXPECT_EQ(create_loss("Dice")->get_config().to_json(),
            R"({"name":"dice","reduction":"sum_over_batch_size","axis":null})");
  Config axes;
  axes.set("axis", std::vector<int64_t>{1, 2});
  EXPECT_EQ(create_loss("Tversky", axes)->get_config().to_json(),
            R"({"name":"tversky","reduction":"sum_over_batch_size","alpha":0.5,"beta":0.5,"axis":[1,2]})");
  Config one_axis;
  one_axis.set("axis", int64_t{-1});
  EXPECT_EQ(create_loss("Dice", one_axis)->get_config().to_json(),
            R"({"name":"dice","reduction":"sum_over_batch_size","axis":-1})");
  EXPECT_EQ(create_loss("CategoricalGeneralizedCrossEntropy")->get_config().to_json(),
            R"({"name":"categorical_generalized_cross_entropy","reduction":"sum_over_batch_size","q":0.5})");
  EXPECT_EQ(
      create_loss("Circle")->get_config().to_json(),
      R"({"name":"circle","reduction":"sum_over_batch_size","gamma":80.0,"margin":0.4,"remove_diagonal":true})");
  for (double q : {0.0, 1.0, -0.5}) {
    Config bad_q;
    bad_q.set("q", q);
    expect_error([&] { create_loss("CategoricalGeneralizedCrossEntropy", bad_q); }, Code::kInvalidArgument,
                 {"q is", "(0, 1)"});
  }
}

// Keras's documented values: Dice over the whole batch and per image, and the focal loss's
// per-sample values of its docstring example.
TEST(TrainLosses, KerasDocExamples) {
  const Tensor t = make({2, 2, 2, 1}, {1, 1, 0, 0, 1, 1, 0, 0});
  const Tensor p = make({2, 2, 2, 1}, {0, 1, 0, 1, 0.4f, 0, 0, 0.9f});
  expect_near((*create_loss("Dice"))(t, p), {0.6164384f}, 1e-6f);
  Config per_image;
  per_image.set("axis", std::vector<int64_t>{1, 2, 3}).set("reduction", "none");
  expect_near((*create_loss("Dice", per_image))(t, p), {0.5f, 0.75757575f}, 1e-6f);
  Config none;
  none.set("reduction", "none");
  expect_near((*create_loss("categorical_focal_crossentropy", none))(
                  make({2, 3}, {0, 1, 0, 0, 0, 1}), make({2, 3}, {0.05f, 0.9f, 0.05f, 0.1f, 0.85f, 0.05f})),
              {2.63401289e-04f, 6.75912094e-01f}, 1e-6f);
}

// Circle's mask: samples without a positive pair have no loss and do not count in the mean, and
// its gradient stays finite for them.
TEST(TrainLosses, CircleMasksSamplesWithoutPairs) {
  const Tensor emb = ops::l2_normalize(testing::random_tensor({5, 3}, 21u), {1});
  const Tensor ids = make_typed<int64_t>({5}, {0, 1, 0, 2, 1});
  Config none;
  none.set("reduction", "none");
  const Tensor per_sample = (*create_loss("Circle", none))(ids, emb);
  const std::vector<float> v = values<float>(per_sample);
  EXPECT_EQ(v[3], 0.0f);  // label 2 alone
  float total = 0;
  for (float x : v) total += x;
  expect_near((*create_loss("Circle"))(ids, emb), {total / 4}, 1e-4f);  // 4 samples with a pair
  autodiff::Tape tape(false, true);
  tape.watch(emb);
  Tensor value = (*create_loss("Circle"))(ids, emb);
  tape.stop_recording();
  const Tensor g = tape.gradient(value, {emb}, autodiff::Unconnected::kZero)[0];
  for (float x : values<float>(g)) EXPECT_TRUE(std::isfinite(x));
  // A batch where no label repeats: zero loss and zero gradient, no NaN.
  autodiff::Tape tape2(false, true);
  tape2.watch(emb);
  Tensor alone = (*create_loss("Circle"))(make_typed<int64_t>({5}, {0, 1, 2, 3, 4}), emb);
  tape2.stop_recording();
  EXPECT_EQ(alone.item_as_double(), 0.0);
  for (float x : values<float>(tape2.gradient(alone, {emb}, autodiff::Unconnected::kZero)[0]))
    EXPECT_EQ(x, 0.0f);
}

// Custom losses by name (Keras's registered custom objects): a function's LossFunctionWrapper and
// a Loss subclass come back from their configs, by compile's names and as a metric's "fn".
TEST(TrainLosses, RegisteredCustomLosses) {
  const LossFn cube = [](const Tensor &t, const Tensor &p) {
    Tensor d = ops::sub(p, t);
    return ops::mean(ops::mul(ops::mul(d, d), d), {-1});
  };
  std::vector<Config> seen;
  register_loss("my_cube", [&](const Config &config) {
    seen.push_back(config);
    return make_function_loss(kLossFunctionWrapper, "my_cube", cube, config);
  });
  register_loss("MyPackage>CubeLoss", [&](const Config &config) {
    return make_function_loss("MyPackage>CubeLoss", "cube_loss", cube, config);
  });
  EXPECT_TRUE(loss_registered("my_cube"));
  EXPECT_TRUE(loss_registered("mse"));
  EXPECT_FALSE(loss_registered("my_square"));
  const std::vector<std::string> names = registered_losses();
  EXPECT_NE(std::find(names.begin(), names.end(), "MyPackage>CubeLoss"), names.end());
  const Tensor t = make(Shape{2, 2}, {0, 1, 2, 3}), p = make(Shape{2, 2}, {1, 1, 0, 4});
  // (1 + 0) / 2 = 0.5 and (-8 + 1) / 2 = -3.5, averaged: -1.5.
  EXPECT_NEAR(create_loss("my_cube")->operator()(t, p).item_as_double(), -1.5, 1e-6);
  Config sum;
  sum.set("reduction", "sum").set("name", "c");
  LossPtr a = create_loss("my_cube", sum);
  EXPECT_NEAR((*a)(t, p).item_as_double(), -3.0, 1e-6);
  // The serialized form names the function; the factory gets name and reduction, not "fn".
  const Config ser = serialize_loss(*a);
  EXPECT_EQ(ser.to_json(),
            R"({"class_name":"LossFunctionWrapper","config":{"name":"c","reduction":"sum","fn":"my_cube"}})");
  LossPtr b = deserialize_loss(ser);
  EXPECT_EQ(b->get_config(), a->get_config());
  EXPECT_EQ(seen.back().to_json(), R"({"name":"c","reduction":"sum"})");
  LossPtr sub = deserialize_loss(serialize_loss(*create_loss("MyPackage>CubeLoss")));
  EXPECT_EQ(sub->class_name(), "MyPackage>CubeLoss");
  EXPECT_NEAR((*sub)(t, p).item_as_double(), -1.5, 1e-6);
  // A metric of the function: by name, and back from its config.
  MetricPtr m = create_metric("my_cube");
  m->update_state(t, p, Tensor());
  EXPECT_NEAR(m->result().item_as_double(), -1.5, 1e-6);
  EXPECT_EQ(seen.back().to_json(), R"({"reduction":"none"})");
  MetricPtr m2 = deserialize_metric(serialize_metric(*m));
  m2->update_state(t, p, Tensor());
  EXPECT_NEAR(m2->result().item_as_double(), -1.5, 1e-6);
  EXPECT_EQ(m2->name(), "my_cube");
  // Bad registrations and an ended one.
  std::vector<std::string> metric_names = registered_metrics();
  EXPECT_EQ(std::find(metric_names.begin(), metric_names.end(), "my_cube"), metric_names.end());
  expect_error([&] { register_loss("mse", [](const Config &) { return LossPtr(); }); },
               Code::kInvalidArgument, {"'mse' is a built-in loss"});
  expect_error([&] { register_loss("LossFunctionWrapper", [](const Config &) { return LossPtr(); }); },
               Code::kInvalidArgument, {"built-in"});
  expect_error([&] { register_loss("", [](const Config &) { return LossPtr(); }); }, Code::kInvalidArgument,
               {"empty"});
  expect_error([&] { register_loss("x", LossFactory()); }, Code::kInvalidArgument, {"no factory"});
  register_loss("gives_nothing", [](const Config &) { return LossPtr(); });
  expect_error([&] { create_loss("gives_nothing"); }, Code::kInternal, {"'gives_nothing'", "gave no loss"});
  unregister_loss("gives_nothing");
  unregister_loss("my_cube");
  unregister_loss("MyPackage>CubeLoss");
  expect_error([&] { unregister_loss("my_cube"); }, Code::kNotFound, {"no custom loss 'my_cube'"});
  expect_error([&] { unregister_loss("mse"); }, Code::kInvalidArgument, {"built-in"});
  expect_error([&] { deserialize_loss(ser); }, Code::kNotFound,
               {"LossFunctionWrapper of 'my_cube'", "register"});
  expect_error([&] { create_loss("my_cube"); }, Code::kNotFound, {"unknown loss 'my_cube'"});
  EXPECT_NEAR((*b)(t, p).item_as_double(), -3.0, 1e-6);  // made before: lives on
  // A built-in function wrapped (LossFunctionWrapper(keras.losses.mse)) comes back as its class.
  Config builtin = Config::from_json(
      R"({"class_name":"LossFunctionWrapper","config":{"name":"w","reduction":"sum","fn":"mse"}})");
  LossPtr mse = deserialize_loss(builtin);
  EXPECT_EQ(mse->class_name(), "MeanSquaredError");
  EXPECT_EQ(mse->get_config().to_json(), R"({"name":"w","reduction":"sum"})");
}

// Keras's hinge losses turn labels that are all 0 or 1 into -1 or 1, and leave any others as
// they are: the gradient of a 0 label is that of -1.
TEST(TrainLosses, HingeLabels) {
  const Tensor p = make({1, 3}, {0.3f, -0.2f, 0.7f});
  LossPtr hinge = create_loss("Hinge");
  expect_near((*hinge)(make({1, 3}, {0, 1, 1}), p), {(1.3f + 1.2f + 0.3f) / 3});
  expect_near((*hinge)(make({1, 3}, {-1, 1, 1}), p), {(1.3f + 1.2f + 0.3f) / 3});
  expect_near((*hinge)(make({1, 3}, {0, 0.5f, 1}), p), {(1.0f + 1.1f + 0.3f) / 3});
  expect_near((*create_loss("SquaredHinge"))(make({1, 3}, {0, 1, 1}), p),
              {(1.3f * 1.3f + 1.2f * 1.2f + 0.3f * 0.3f) / 3});
}

TEST(TrainLosses, BadInputOfTheSegmentationAndMetricLearningLosses) {
  const Tensor p = make({2, 3}, {0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f});
  Config axis5;
  axis5.set("axis", int64_t{5});
  expect_error([&] { (*create_loss("Dice", axis5))(p, p); }, Code::kInvalidArgument,
               {"dice", "axis 5", "rank 2"});
  Config twice;
  twice.set("axis", std::vector<int64_t>{1, -1});
  expect_error([&] { (*create_loss("Tversky", twice))(p, p); }, Code::kInvalidArgument,
               {"tversky", "given twice"});
  expect_error(
      [&] {
        (*create_loss("Dice"))(make({3}, {1, 0, 1}), p);
      },
      Code::kInvalidArgument, {"dice", "different shapes"});
  // A mask that does not fit the losses is named as the mask, not as a sample weight.
  const Tensor masked = p.with_keras_mask(ops::cast(make({3}, {1, 0, 1}), DType::kBool));
  expect_error([&] { (*create_loss("mse"))(p, masked); }, Code::kInvalidArgument,
               {"the mask of y_pred", "does not broadcast"});
  Config three;
  three.set("alpha", std::vector<double>{0.1, 0.2});
  expect_error([&] { (*create_loss("CategoricalFocalCrossentropy", three))(p, p); }, Code::kInvalidArgument,
               {"alpha has 2 values", "one alpha per class"});
  LossPtr gce = create_loss("CategoricalGeneralizedCrossEntropy");
  expect_error(
      [&] {
        (*gce)(make_typed<int64_t>({2}, {0, 3}), p);
      },
      Code::kInvalidArgument, {"categorical_generalized_cross_entropy", "label 3", "[0, 3)"});
  expect_error(
      [&] {
        (*gce)(make_typed<int64_t>({3}, {0, 1, 2}), p);
      },
      Code::kInvalidArgument, {"does not match"});
  LossPtr circle = create_loss("Circle");
  expect_error(
      [&] {
        (*circle)(make_typed<int64_t>({2}, {0, 1}), make({2, 1, 3}, {0, 0, 1, 0, 1, 0}));
      },
      Code::kInvalidArgument, {"circle", "expected embeddings [batch, dims]"});
  expect_error(
      [&] {
        (*circle)(make_typed<int64_t>({3}, {0, 1, 1}), p);
      },
      Code::kInvalidArgument, {"circle", "expected integer labels [2] or [2, 1]"});
  // Integer embeddings compute as their float32 copies (Keras converts y_pred), not an error.
  EXPECT_EQ(values((*circle)(make_typed<int64_t>({2}, {0, 1}), make_typed<int64_t>({2, 2}, {0, 1, 1, 0}))),
            values((*circle)(make_typed<int64_t>({2}, {0, 1}), make({2, 2}, {0, 1, 1, 0}))));
}

TEST(TrainLosses, IntegerPredictionsComputeInFloat32) {
  // Keras converts y_pred to the loss's dtype (float32): integer, uint8 and bool predictions give
  // the values of their float32 copies, in losses and in the metrics made of them.
  const Tensor t = make({2, 2}, {1, 2, 0, 1});
  const std::vector<std::pair<std::string, Tensor>> preds = {
      {"int32", make_typed<int32_t>({2, 2}, {1, 3, 0, 1})},
      {"int64", make_typed<int64_t>({2, 2}, {1, 3, 0, 1})},
      {"uint8", make_typed<uint8_t>({2, 2}, {1, 3, 0, 1})}};
  const Tensor as_float = make({2, 2}, {1, 3, 0, 1});
  for (const char *name : {"mse", "mae", "BinaryCrossentropy", "Hinge", "poisson"}) {
    const LossPtr loss = create_loss(name);
    const std::vector<float> want = values((*loss)(t, as_float));
    for (const auto &[dtype, p] : preds) {
      const Tensor got = (*loss)(t, p);
      EXPECT_EQ(got.dtype(), DType::kFloat32) << name << " " << dtype;
      EXPECT_EQ(values(got), want) << name << " " << dtype;
    }
    MetricPtr metric = create_metric(name);
    metric->update_state(t, preds[0].second);
    EXPECT_NEAR(metric->result().item_as_double(), want[0], 1e-6) << name;
  }
  expect_near((*create_loss("mse"))(make({1, 2}, {1, 0}), testing::make_bool({1, 2}, {1, 1})), {0.5f});
}

TEST(TrainLosses, BadInput) {
  LossPtr scce = create_loss("SparseCategoricalCrossentropy");
  const Tensor p = make({2, 3}, {0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f});
  expect_error(
      [&] {
        (*scce)(make_typed<int64_t>({2}, {0, 3}), p);
      },
      Code::kInvalidArgument, {"sparse_categorical_crossentropy", "label 3", "[0, 3)"});
  expect_error([&] { (*scce)(make_typed<int64_t>({2}, {-1, 0}), p); }, Code::kInvalidArgument, {"label -1"});
  // Float labels are named as given, not as their int64 cast (NaN would read 0, 1e30 INT64_MAX).
  expect_error(
      [&] {
        (*scce)(make({2}, {0.0f, std::nanf("")}), p);
      },
      Code::kInvalidArgument, {"label nan", "flat index 1"});
  expect_error(
      [&] {
        (*scce)(make({2}, {1e30f, 0.0f}), p);
      },
      Code::kInvalidArgument, {"label 1e+30", "[0, 3)"});
  expect_error(
      [&] {
        (*scce)(make({2}, {2.5f, 3.0f}), p);
      },
      Code::kInvalidArgument, {"label 3", "flat index 1"});
  EXPECT_TRUE(std::isfinite((*scce)(make({2}, {2.5f, 0.0f}), p).data<float>()[0]));  // 2.5 truncates to 2
  expect_error(
      [&] {
        (*scce)(make_typed<int64_t>({3}, {0, 1, 2}), p);
      },
      Code::kInvalidArgument, {"does not match", "[2]"});
  expect_error(
      [&] {
        (*create_loss("mse"))(make({2, 2}, {0, 0, 0, 0}), p);
      },
      Code::kInvalidArgument, {"mean_squared_error", "do not broadcast"});
  {
    // Keras's elementwise losses broadcast: y_true [2, 1] against y_pred [2, 3].
    const Tensor t = make({2, 1}, {1, 2}), q = make({2, 3}, {1, 2, 3, 0, 1, 2});
    // rows: (0 + 1 + 4) / 3 and (4 + 1 + 0) / 3, averaged: 5 / 3
    EXPECT_NEAR((*create_loss("mse"))(t, q).item_as_double(), 5.0 / 3.0, 1e-6);
    // [2] against [2, 3] stays refused, as in Keras (ranks are matched only over a last dim of 1).
    expect_error(
        [&] {
          (*create_loss("mse"))(make({2}, {1, 2}), q);
        },
        Code::kInvalidArgument, {"do not broadcast"});
    EXPECT_NEAR((*create_loss("mae"))(t, q).item_as_double(), 1.0, 1e-6);
    // |e| <= 1: 0.5 e^2; |e| = 2: 2 - 0.5 = 1.5. Rows (0 + 0.5 + 1.5) / 3 twice.
    EXPECT_NEAR((*create_loss("huber"))(t, q).item_as_double(), 2.0 / 3.0, 1e-6);
    // The crossentropies keep Keras's same-shape rule.
    expect_error([&] { (*create_loss("binary_crossentropy"))(t, ops::sigmoid(q)); }, Code::kInvalidArgument,
                 {"different shapes"});
  }
  expect_error(
      [&] {
        (*create_loss("mse"))(p, p, make({3}, {1, 1, 1}));
      },
      Code::kInvalidArgument, {"sample_weight", "does not broadcast"});
  expect_error([] { create_loss("nope"); }, Code::kNotFound,
               {"unknown loss 'nope'", "known:", "SparseCategoricalCrossentropy", "mse"});
  Config bad;
  bad.set("from_logit", true);
  expect_error([&] { create_loss("BinaryCrossentropy", bad); }, Code::kInvalidArgument, {"from_logit"});
  Config red;
  red.set("reduction", "mean_of_nothing");
  expect_error([&] { create_loss("mae", red); }, Code::kInvalidArgument, {"reduction", "mean_of_nothing"});
}

TEST(TrainMetrics, StateResetAndVariables) {
  MetricPtr m = create_metric("Mean");
  ASSERT_EQ(m->variables().size(), 2u);
  EXPECT_EQ(m->variables()[0]->name(), "mean/total");
  EXPECT_EQ(m->variables()[1]->name(), "mean/count");
  EXPECT_FALSE(m->variables()[0]->trainable());
  m->update_state_values(make({2}, {1, 3}));
  m->update_state_values(make({1}, {5}));
  expect_near(m->result(), {3.0f});
  m->reset_state();
  expect_near(m->result(), {0.0f});
  m->update_state_values(make({}, {7}));
  expect_near(m->result(), {7.0f});
  // The variables hold the state: writing them changes the result (a checkpoint restore).
  m->variables()[0]->assign(make({}, {10}));
  m->variables()[1]->assign(make({}, {4}));
  expect_near(m->result(), {2.5f});
  MetricPtr auc = create_metric("AUC");
  std::vector<std::string> names;
  for (const VariablePtr &v : auc->variables()) names.push_back(v->name());
  EXPECT_EQ(names, (std::vector<std::string>{"auc/true_positives", "auc/false_positives",
                                             "auc/true_negatives", "auc/false_negatives"}));
  EXPECT_EQ(auc->variables()[0]->shape(), Shape({200}));
  expect_error([&] { m->update_state(make({1}, {1}), make({1}, {1})); }, Code::kInvalidArgument,
               {"takes values"});
  expect_error([&] { auc->update_state_values(make({1}, {1})); }, Code::kInvalidArgument,
               {"y_true and y_pred"});
}

// Keras's metric classes over a loss function: their default names, their configs (the loss's
// options they take), a serialized round trip, and CosineSimilarity as the similarity itself.
TEST(TrainMetrics, LossFunctionClasses) {
  for (const auto &[cls, name] : std::vector<std::array<std::string, 2>>{
           {"MeanAbsoluteError", "mean_absolute_error"},
           {"MeanAbsolutePercentageError", "mean_absolute_percentage_error"},
           {"MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"},
           {"LogCoshError", "logcosh"},
           {"Poisson", "poisson"},
           {"KLDivergence", "kl_divergence"},
           {"Hinge", "hinge"},
           {"SquaredHinge", "squared_hinge"},
           {"CategoricalHinge", "categorical_hinge"},
           {"CosineSimilarity", "cosine_similarity"},
           {"BinaryCrossentropy", "binary_crossentropy"},
           {"CategoricalCrossentropy", "categorical_crossentropy"},
           {"SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"}}) {
    MetricPtr m = create_metric(cls);
    EXPECT_EQ(m->name(), name) << cls;
    EXPECT_EQ(m->class_name(), cls);
    MetricPtr back = deserialize_metric(serialize_metric(*m));
    EXPECT_EQ(back->class_name(), cls);
    EXPECT_EQ(back->get_config(), m->get_config()) << cls;
  }
  EXPECT_EQ(
      create_metric("CategoricalCrossentropy")->get_config().to_json(),
      R"({"name":"categorical_crossentropy","dtype":"float32","from_logits":false,"label_smoothing":0.0,)"
      R"("axis":-1})");
  EXPECT_EQ(create_metric("SparseCategoricalCrossentropy")->get_config().to_json(),
            R"({"name":"sparse_categorical_crossentropy","dtype":"float32","from_logits":false,)"
            R"("ignore_class":null,"axis":-1})");
  Config logits;
  logits.set("from_logits", true).set("name", "bce");
  MetricPtr bce = create_metric("BinaryCrossentropy", logits);
  EXPECT_EQ(bce->name(), "bce");
  EXPECT_TRUE(bce->get_config().get_bool("from_logits"));
  // The similarity, not its negative (the loss), also by Keras's snake_case name.
  for (const char *name : {"CosineSimilarity", "cosine_similarity"}) {
    MetricPtr cos = create_metric(name);
    EXPECT_EQ(cos->class_name(), "CosineSimilarity");
    cos->update_state(make({1, 2}, {1, 0}), make({1, 2}, {2, 0}));
    expect_near(cos->result(), {1.0f});
  }
  EXPECT_EQ(create_metric("bce")->class_name(), "BinaryCrossentropy");
  EXPECT_EQ(create_metric("bce")->name(), "bce");
  EXPECT_EQ(create_metric("mae")->class_name(), "MeanMetricWrapper");  // a legacy loss alias, as Keras
  Config axis;
  axis.set("axis", int64_t{0});
  // Keras passes the metric's axis to the loss function, which takes the last axis only.
  MetricPtr axis0 = create_metric("SparseCategoricalCrossentropy", axis);
  expect_error(
      [&] {
        axis0->update_state(make_typed<int64_t>({1}, {0}), make({1, 2}, {0.5f, 0.5f}));
      },
      Code::kInvalidArgument, {"only axis=-1", "axis=0"});
  Config reduction;
  reduction.set("reduction", "sum");
  expect_error([&] { create_metric("MeanAbsoluteError", reduction); }, Code::kInvalidArgument, {"reduction"});
}

TEST(TrainMetrics, AccuracyResolution) {
  LossPtr bce = create_loss("BinaryCrossentropy"), scce = create_loss("SparseCategoricalCrossentropy"),
          cce = create_loss("CategoricalCrossentropy"), mse = create_loss("mse");
  EXPECT_EQ(resolve_metric("accuracy", bce.get(), {-1, 10}, {-1, 10})->class_name(), "BinaryAccuracy");
  EXPECT_EQ(resolve_metric("acc", scce.get(), {-1, 10}, {-1, 10})->class_name(), "SparseCategoricalAccuracy");
  EXPECT_EQ(resolve_metric("accuracy", cce.get(), {-1}, {-1, 10})->class_name(), "CategoricalAccuracy");
  EXPECT_EQ(resolve_metric("accuracy", mse.get(), {-1, 1}, {-1, 1})->class_name(), "BinaryAccuracy");
  EXPECT_EQ(resolve_metric("accuracy", nullptr, {-1}, {-1, 10})->class_name(), "SparseCategoricalAccuracy");
  EXPECT_EQ(resolve_metric("accuracy", nullptr, {-1, 1}, {-1, 10})->class_name(),
            "SparseCategoricalAccuracy");
  EXPECT_EQ(resolve_metric("accuracy", nullptr, {-1, 10}, {-1, 10})->class_name(), "CategoricalAccuracy");
  MetricPtr acc = resolve_metric("acc", nullptr, {-1}, {-1, 3});
  EXPECT_EQ(acc->name(), "acc");
  MetricPtr ce = resolve_metric("crossentropy", nullptr, {-1}, {-1, 3});
  EXPECT_EQ(ce->class_name(), "MeanMetricWrapper");
  EXPECT_EQ(ce->get_config().get_string("fn"), "SparseCategoricalCrossentropy");
  EXPECT_EQ(resolve_metric("mae", nullptr, {}, {})->name(), "mae");
  // A Mean of a loss object's values.
  MetricPtr wrapped = mean_metric_wrapper(scce, "");
  wrapped->update_state(make_typed<int64_t>({1}, {0}), make({1, 2}, {0.5f, 0.5f}));
  expect_near(wrapped->result(), {-std::log(0.5f)});
  EXPECT_EQ(wrapped->name(), "sparse_categorical_crossentropy");
}

// Found by the probe of 2026-12-06: the sparse crossentropy takes Keras's axis (the last only); top-k
// accuracy follows TF's in_top_k (a row with a non-finite score, or a label out of range, is a miss)
// and takes from_sorted_ids; the accuracy metrics' argmax ranks -0.0 below +0.0, as Keras's.
TEST(TrainMetrics, TopKAxisAndSignedZeroAsKeras) {
  const Tensor logits = make({1, 3}, {2.0f, 0.5f, -1.0f});
  const Tensor label = make_typed<int64_t>({1}, {0});
  const float want = -std::log(std::exp(2.0f) / (std::exp(2.0f) + std::exp(0.5f) + std::exp(-1.0f)));
  Config c;
  c.set("from_logits", true).set("axis", int64_t{1});
  expect_near((*create_loss("SparseCategoricalCrossentropy", c))(label, logits), {want}, 1e-6);
  EXPECT_EQ(create_loss("SparseCategoricalCrossentropy", c)->get_config().get_int("axis"), 1);
  c.set("axis", int64_t{0});
  expect_error([&] { (*create_loss("SparseCategoricalCrossentropy", c))(label, logits); },
               Code::kInvalidArgument, {"only axis=-1", "axis=0"});

  expect_near(sparse_top_k_categorical_accuracy(make_typed<int64_t>({3}, {1, 4, 0}),
                                                make({3, 4}, {NAN, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0}), 1),
              {0, 0, 1});
  expect_near(sparse_top_k_categorical_accuracy(make_typed<int64_t>({2}, {3, 2}),
                                                make({2, 3}, {7, 3, 1, 2, 0, 7}), 2, true),
              {1, 1});
  expect_near(sparse_top_k_categorical_accuracy(make_typed<int64_t>({2}, {1, 2}),
                                                make({2, 3}, {7, 3, 1, 2, 0, 7}), 2, true),
              {0, 1});
  const Tensor zeros = make({1, 3}, {-0.0f, 0.0f, -1.0f});
  expect_near(sparse_categorical_accuracy(make_typed<int64_t>({1}, {1}), zeros), {1});
  expect_near(categorical_accuracy(make({1, 3}, {0, 1, 0}), zeros), {1});
}

// Keras 3's semantics the audit of 2026-12-05 found missing: a per-sample weight (N,) weighs every
// column of (N, C) labels in the confusion metrics; AUC sorts its thresholds, and with evenly
// distributed thresholds clips the scores to [0, 1]; accuracy is elementwise, so an elementwise
// weight weighs each match.
TEST(TrainMetrics, KerasWeightAndThresholdSemantics) {
  Config top2;
  top2.set("top_k", int64_t{2});
  MetricPtr p = create_metric("Precision", top2);
  // Row 0 predicts columns 0 (right) and 1; row 1 columns 0 and 2 (both wrong), weighing 2.
  p->update_state(make({2, 3}, {1, 0, 0, 0, 1, 0}), make({2, 3}, {0.9f, 0.8f, 0.1f, 0.7f, 0.1f, 0.9f}),
                  make({2}, {1, 2}));
  expect_near(p->result(), {1.0f / 6.0f});

  Config unsorted, sorted;
  unsorted.set("thresholds", std::vector<double>{0.8, 0.2, 0.5});
  sorted.set("thresholds", std::vector<double>{0.2, 0.5, 0.8});
  MetricPtr a = create_metric("AUC", unsorted), b = create_metric("AUC", sorted);
  const Tensor yt = make({6}, {0, 0, 1, 1, 0, 1}), yp = make({6}, {0.1f, 0.6f, 0.35f, 0.9f, 0.3f, 0.7f});
  a->update_state(yt, yp);
  b->update_state(yt, yp);
  const float want = static_cast<float>(b->result().item_as_double());
  EXPECT_GT(want, 0.5f);
  expect_near(a->result(), {want});
  EXPECT_EQ(a->get_config().get_float_list("thresholds"), (std::vector<double>{0.2, 0.5, 0.8}));
  MetricPtr clipped = create_metric("AUC");
  clipped->update_state(make({2}, {0, 1}), make({2}, {-0.3f, 1.5f}));
  expect_near(clipped->result(), {1.0f}, 1e-5f);

  const Tensor w = make({2, 2}, {1, 2, 0, 3});
  MetricPtr acc = create_metric("Accuracy");
  acc->update_state(make({2, 2}, {1, 0, 1, 1}), make({2, 2}, {1, 1, 1, 1}), w);
  expect_near(acc->result(), {2.0f / 3.0f});
  MetricPtr bin = create_metric("BinaryAccuracy");
  bin->update_state(make({2, 2}, {1, 0, 1, 1}), make({2, 2}, {0.9f, 0.6f, 0.7f, 0.8f}), w);
  expect_near(bin->result(), {2.0f / 3.0f});
  MetricPtr unweighted = create_metric("BinaryAccuracy");  // per-sample means, then their mean
  unweighted->update_state(make({2, 2}, {1, 0, 1, 1}), make({2, 2}, {0.9f, 0.6f, 0.7f, 0.8f}));
  expect_near(unweighted->result(), {0.75f});
}

TEST(TrainMetrics, BadInput) {
  expect_error([] { create_metric("Accuracyy"); }, Code::kNotFound,
               {"unknown metric 'Accuracyy'", "known:", "AUC"});
  // AUC's counts are bounded up front (2^31 thresholds used to fill gigabytes before failing).
  expect_error([] { create_metric("AUC", Config().set("num_thresholds", int64_t{1} << 31)); },
               Code::kInvalidArgument, {"num_thresholds is 2147483648", "at most 67108864"});
  expect_error(
      [] {
        create_metric(
            "AUC",
            Config().set("num_thresholds", 1 << 20).set("multi_label", true).set("num_labels", 1 << 10));
      },
      Code::kInvalidArgument, {"1048576 thresholds x 1024 labels", "67108864"});
  MetricPtr sca = create_metric("SparseCategoricalAccuracy");
  expect_error(
      [&] {
        sca->update_state(make_typed<int64_t>({3}, {0, 1, 2}), make({2, 3}, {0, 0, 0, 0, 0, 0}));
      },
      Code::kInvalidArgument, {"sparse_categorical_accuracy", "does not match"});
  MetricPtr p = create_metric("Precision");
  expect_error(
      [&] {
        p->update_state(make({2}, {1, 0}), make({3}, {1, 0, 1}));
      },
      Code::kInvalidArgument, {"precision", "different shapes"});
  expect_error(
      [&] {
        p->update_state(make({2}, {1, 0}), make({2}, {1, 0}), make({3}, {1, 1, 1}));
      },
      Code::kInvalidArgument, {"sample_weight"});
  expect_near(p->result(), {0.0f});  // failed updates left no trace
  Config labels_alone;
  labels_alone.set("num_labels", int64_t{3});
  expect_error([&] { create_metric("AUC", labels_alone); }, Code::kInvalidArgument,
               {"num_labels", "only when multi_label"});
  Config curve;
  curve.set("curve", "XY");
  expect_error([&] { create_metric("AUC", curve); }, Code::kInvalidArgument, {"curve", "XY"});
}

// Keras's AUC(multi_label=True): counts per label ([thresholds, labels]) and the labels' AUCs
// averaged, or weighted by label_weights; without multi_label, label_weights weigh y_pred's columns.
// Column 0 is sklearn's 0.75 case (3 of 4 positive/negative pairs in order), column 1 in order.
TEST(TrainMetrics, AUCMultiLabel) {
  const Tensor yt = make({4, 2}, {0, 0, 0, 0, 1, 1, 1, 1});
  const Tensor yp = make({4, 2}, {0.1f, 0.2f, 0.4f, 0.3f, 0.35f, 0.6f, 0.8f, 0.9f});
  Config multi;
  multi.set("multi_label", true);
  MetricPtr lazy = create_metric("AUC", multi);
  EXPECT_TRUE(lazy->variables().empty());  // built by the first update, from y_pred's labels
  lazy->update_state(yt, yp);
  ASSERT_EQ(lazy->variables().size(), 4u);
  EXPECT_EQ(lazy->variables()[0]->shape(), Shape({200, 2}));
  expect_near(lazy->result(), {(0.75f + 1.0f) / 2}, 1e-5f);
  // Each label's counts are those of a single-label AUC over that column.
  for (int64_t col = 0; col < 2; ++col) {
    MetricPtr one = create_metric("AUC");
    one->update_state(ops::slice(yt, {0, col}, {-1, 1}), ops::slice(yp, {0, col}, {-1, 1}));
    for (size_t v = 0; v < 4; ++v)
      expect_near(ops::slice(lazy->variables()[v]->peek(), {0, col}, {-1, 1}),
                  testing::values(ops::expand_dims(one->variables()[v]->peek(), -1)));
  }
  expect_error(
      [&] {
        lazy->update_state(make({2, 3}, {0, 1, 0, 1, 0, 1}), make({2, 3}, {0, 1, 0, 1, 0, 1}));
      },
      Code::kInvalidArgument, {"3 labels", "counts 2"});
  expect_error(
      [&] {
        lazy->update_state(make({4}, {0, 1, 0, 1}), make({4}, {0, 1, 0, 1}));
      },
      Code::kInvalidArgument, {"rank 2", "multi_label"});

  Config weighted = multi;
  weighted.set("num_labels", int64_t{2}).set("label_weights", std::vector<double>{1, 3});
  MetricPtr w = create_metric("AUC", weighted);
  EXPECT_EQ(w->variables()[0]->shape(), Shape({200, 2}));  // num_labels: built at creation
  w->update_state(yt, yp);
  expect_near(w->result(), {(0.75f + 3.0f) / 4}, 1e-5f);
  const Config c = w->get_config();
  EXPECT_TRUE(c.get_bool("multi_label"));
  EXPECT_EQ(c.get_int("num_labels"), 2);
  EXPECT_EQ(c.get_float_list("label_weights"), (std::vector<double>{1, 3}));
  EXPECT_NEAR(deserialize_metric(serialize_metric(*w))->get_config().get_float_list("label_weights")[1], 3,
              0);
  w->reset_state();
  expect_near(w->variables()[0]->peek(), testing::values(ops::zeros(Shape{200, 2}, DType::kFloat32)));

  // PR curves average per label too; a sample weight weighs every label of its row.
  Config pr = multi;
  pr.set("curve", "PR");
  MetricPtr prm = create_metric("AUC", pr);
  const Tensor sw = make({4}, {1, 2, 0.5f, 1});
  prm->update_state(yt, yp, sw);
  double want = 0;
  for (int64_t col = 0; col < 2; ++col) {
    Config one_pr;
    one_pr.set("curve", "PR");
    MetricPtr one = create_metric("AUC", one_pr);
    one->update_state(ops::slice(yt, {0, col}, {-1, 1}), ops::slice(yp, {0, col}, {-1, 1}), sw);
    want += one->result().item_as_double() / 2;
  }
  expect_near(prm->result(), {static_cast<float>(want)}, 1e-6f);

  // Without multi_label, label_weights weigh the columns in the flattened counts: [1, 0] leaves
  // column 0 alone.
  Config flat;
  flat.set("label_weights", std::vector<double>{1, 0});
  MetricPtr f = create_metric("AUC", flat);
  f->update_state(yt, yp);
  expect_near(f->result(), {0.75f}, 1e-5f);
  expect_error(
      [&] {
        f->update_state(make({4}, {0, 1, 0, 1}), make({4}, {0, 1, 0, 1}));
      },
      Code::kInvalidArgument, {"label_weights", "column"});

  Config bad = multi;
  bad.set("num_labels", int64_t{3}).set("label_weights", std::vector<double>{1, 2});
  expect_error([&] { create_metric("AUC", bad); }, Code::kInvalidArgument,
               {"label_weights", "one per label"});
  Config negative;
  negative.set("label_weights", std::vector<double>{1, -2});
  expect_error([&] { create_metric("AUC", negative); }, Code::kInvalidArgument, {"label weight", "-2"});
  Config zero = multi;
  zero.set("num_labels", int64_t{0});
  expect_error([&] { create_metric("AUC", zero); }, Code::kInvalidArgument, {"num_labels"});
}

TEST(TrainMetrics, UpdatesFromFourThreads) {
  MetricPtr mean = create_metric("Mean");
  MetricPtr acc = create_metric("SparseCategoricalAccuracy");
  MetricPtr auc = create_metric("AUC");
  const Tensor labels = make_typed<int64_t>({4}, {0, 1, 1, 0});
  const Tensor probs = make({4, 2}, {0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f, 0.3f, 0.7f});
  const Tensor scores = make({4}, {0.1f, 0.8f, 0.4f, 0.7f});
  const Tensor binary = make({4}, {0, 1, 1, 0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        mean->update_state_values(make({2}, {static_cast<float>(t), static_cast<float>(t)}));
        acc->update_state(labels, probs);
        auc->update_state(binary, scores);
        (void)mean->result();
      }
    });
  for (std::thread &th : threads) th.join();
  expect_near(mean->result(), {1.5f});
  expect_near(mean->variables()[1]->peek(), {400.0f});
  expect_near(acc->result(), {0.5f});
  MetricPtr once = create_metric("AUC");
  once->update_state(binary, scores);
  expect_near(auc->result(), {once->result().data<float>()[0]}, 1e-5f);
  expect_near(auc->variables()[0]->peek(),
              testing::values(ops::mul(once->variables()[0]->peek(), make({}, {200}))));
}

}  // namespace
}  // namespace kiln::train
