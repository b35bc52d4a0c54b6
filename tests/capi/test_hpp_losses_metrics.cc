// Losses and metrics through kiln.hpp: typed options, values, gradients through a tape, configs,
// metric state, reset and variables, the "accuracy" resolution, errors, and four threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Tensor;

float scalar(const Tensor &t) { return t.to_vector<float>().at(0); }

const Tensor &probs() {
  static const Tensor p = Tensor::from_vector({0.5f, 0.25f, 0.25f, 0.25f, 0.25f, 0.5f}, {2, 3});
  return p;
}
const Tensor &labels() {
  static const Tensor l = Tensor::from_vector<int64_t>({0, 1}, {2});
  return l;
}

TEST(HppLosses, ValuesAndReductions) {
  const float a = -std::log(0.5f), b = -std::log(0.25f);
  EXPECT_NEAR(scalar(kiln::losses::SparseCategoricalCrossentropy()(labels(), probs())), (a + b) / 2, 1e-5);
  kiln::losses::SparseCategoricalCrossentropyOptions sum;
  sum.reduction = "sum";
  EXPECT_NEAR(scalar(kiln::losses::SparseCategoricalCrossentropy(sum)(labels(), probs())), a + b, 1e-5);
  kiln::losses::SparseCategoricalCrossentropyOptions none;
  none.reduction = "none";
  std::vector<float> per =
      kiln::losses::SparseCategoricalCrossentropy(none)(labels(), probs()).to_vector<float>();
  ASSERT_EQ(per.size(), 2u);
  EXPECT_NEAR(per[0], a, 1e-5);
  EXPECT_NEAR(per[1], b, 1e-5);
  // Weighted: divided by the number of samples (2), not by the weights' sum.
  EXPECT_NEAR(scalar(kiln::losses::get("sparse_categorical_crossentropy")(
                  labels(), probs(), Tensor::from_vector({2.f, 0.f}, {2}))),
              a, 1e-5);
  kiln::losses::CrossentropyOptions smooth;
  smooth.label_smoothing = 0.2;
  const Tensor onehot = Tensor::from_vector({1.f, 0.f, 0.f}, {1, 3});
  const Tensor p = Tensor::from_vector({0.7f, 0.2f, 0.1f}, {1, 3});
  const double t0 = 0.8 + 0.2 / 3, t1 = 0.2 / 3;
  EXPECT_NEAR(scalar(kiln::losses::CategoricalCrossentropy(smooth)(onehot, p)),
              -(t0 * std::log(0.7) + t1 * std::log(0.2) + t1 * std::log(0.1)), 1e-5);
  EXPECT_NEAR(scalar(kiln::losses::Huber(0.5)(Tensor::from_vector({0.f}, {1, 1}),
                                              Tensor::from_vector({2.f}, {1, 1}))),
              0.5 * 2 - 0.125, 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::MeanAbsoluteError()(onehot, p)), (0.3 + 0.2 + 0.1) / 3, 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::CosineSimilarity()(onehot, onehot)), -1.0, 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::KLDivergence()(p, p)), 0.0, 1e-6);
  // Keras 3's other losses.
  const Tensor yt = Tensor::from_vector({1.f, 0.f, 1.f}, {1, 3});
  const Tensor yp = Tensor::from_vector({0.5f, 0.2f, 2.f}, {1, 3});
  EXPECT_NEAR(scalar(kiln::losses::Poisson()(yt, yp)),
              ((0.5 - std::log(0.5 + 1e-7)) + 0.2 + (2 - std::log(2 + 1e-7))) / 3, 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::Hinge()(yt, yp)), (0.5 + 1.2 + 0.0) / 3, 1e-6);  // 0/1 labels: -1/1
  EXPECT_NEAR(scalar(kiln::losses::SquaredHinge()(yt, yp)), (0.25 + 1.44) / 3, 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::CategoricalHinge()(onehot, p)), std::max(0.2 - 0.7 + 1, 0.0), 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::LogCosh()(yt, yp)),
              (std::log(std::cosh(0.5)) + std::log(std::cosh(0.2)) + std::log(std::cosh(1.0))) / 3, 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::MeanAbsolutePercentageError()(Tensor::from_vector({2.f, -4.f}, {1, 2}),
                                                                 Tensor::from_vector({1.f, -5.f}, {1, 2}))),
              100 * (0.5 + 0.25) / 2, 1e-4);
  EXPECT_NEAR(scalar(kiln::losses::MeanSquaredLogarithmicError()(yt, yp)),
              (std::pow(std::log(1.5) - std::log(2.0), 2) + std::pow(std::log(1.2) - std::log(1 + 1e-7), 2) +
               std::pow(std::log(3.0) - std::log(2.0), 2)) /
                  3,
              1e-6);
  kiln::losses::BinaryFocalCrossentropyOptions focal;
  focal.gamma = 0.0;  // (1 - p_t)^0 = 1: the binary crossentropy
  EXPECT_NEAR(scalar(kiln::losses::BinaryFocalCrossentropy(focal)(yt, p)),
              scalar(kiln::losses::BinaryCrossentropy()(yt, p)), 1e-6);
  EXPECT_EQ(kiln::losses::BinaryFocalCrossentropy().get_config().get_float("alpha"), 0.25);
  kiln::losses::CrossentropyOptions logits;
  logits.from_logits = true;
  EXPECT_NEAR(scalar(kiln::losses::BinaryCrossentropy(logits)(Tensor::from_vector({1.f}, {1, 1}),
                                                              Tensor::from_vector({0.f}, {1, 1}))),
              std::log(2.0), 1e-6);
}

TEST(HppLosses, SegmentationFocalAndCircleLosses) {
  const Tensor st = Tensor::from_vector({1.f, 1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f}, {2, 2, 2, 1});
  const Tensor sp = Tensor::from_vector({0.f, 1.f, 0.f, 1.f, 0.4f, 0.f, 0.f, 0.9f}, {2, 2, 2, 1});
  EXPECT_NEAR(scalar(kiln::losses::Dice()(st, sp)), 0.6164384, 1e-6);  // Keras's docstring values
  kiln::losses::DiceOptions per_image;
  per_image.axis = {1, 2, 3};
  per_image.reduction = "none";
  const std::vector<float> dice = kiln::losses::Dice(per_image)(st, sp).to_vector<float>();
  EXPECT_NEAR(dice.at(0), 0.5, 1e-6);
  EXPECT_NEAR(dice.at(1), 0.75757575, 1e-6);
  EXPECT_EQ(kiln::losses::Dice(per_image).get_config().get_int_list("axis"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(kiln::losses::Dice().get_config().type("axis"), kiln::Config::Type::null);
  kiln::losses::TverskyOptions tv;
  tv.alpha = 0.7;
  tv.beta = 0.3;
  const double tp = 1.4, fp = 1.9, fn = 2.6;  // over the whole batch
  EXPECT_NEAR(scalar(kiln::losses::Tversky(tv)(st, sp)), 1 - tp / (tp + 0.7 * fp + 0.3 * fn + 1e-7), 1e-6);
  const Tensor onehot = Tensor::from_vector({0.f, 1.f, 0.f, 0.f, 0.f, 1.f}, {2, 3});
  const Tensor probs = Tensor::from_vector({0.05f, 0.9f, 0.05f, 0.1f, 0.85f, 0.05f}, {2, 3});
  kiln::losses::CategoricalFocalCrossentropyOptions focal;
  focal.reduction = "sum";
  EXPECT_NEAR(scalar(kiln::losses::CategoricalFocalCrossentropy(focal)(onehot, probs)),
              2.63401289e-04 + 6.75912094e-01, 1e-6);
  focal.class_alpha = {1.0, 0.5, 2.0};  // the true classes' alphas 0.5 and 2: twice and eight times 0.25
  EXPECT_NEAR(scalar(kiln::losses::CategoricalFocalCrossentropy(focal)(onehot, probs)),
              2 * 2.63401289e-04 + 8 * 6.75912094e-01, 1e-5);
  EXPECT_EQ(kiln::losses::CategoricalFocalCrossentropy(focal).get_config().get_float_list("alpha"),
            focal.class_alpha);
  const Tensor labels = Tensor::from_vector<int64_t>({1, 2}, {2});
  EXPECT_NEAR(scalar(kiln::losses::CategoricalGeneralizedCrossEntropy(0.5)(labels, probs)),
              ((1 - std::sqrt(0.9)) / 0.5 + (1 - std::sqrt(0.05)) / 0.5) / 2, 1e-5);
  EXPECT_THROW(kiln::losses::CategoricalGeneralizedCrossEntropy(1.0), kiln::Error);
  const Tensor emb = Tensor::from_vector({1.f, 0.f, 0.6f, 0.8f, 0.f, 1.f, 0.8f, 0.6f}, {4, 2});
  kiln::losses::CircleOptions circle;
  circle.gamma = 8.0;
  circle.reduction = "none";
  const std::vector<float> per =
      kiln::losses::Circle(circle)(Tensor::from_vector<int64_t>({0, 1, 1, 2}, {4}), emb).to_vector<float>();
  EXPECT_EQ(per.at(0), 0.0f);
  EXPECT_EQ(per.at(3), 0.0f);
  EXPECT_GT(per.at(1), 0.0f);
  EXPECT_EQ(kiln::losses::get("circle").get_config().get_float("gamma"), 80.0);
  try {
    kiln::losses::Circle()(Tensor::from_vector<int64_t>({0, 1}, {2}), emb);
    ADD_FAILURE() << "labels of the wrong batch size were taken";
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("expected integer labels [4] or [4, 1]"), std::string::npos)
        << e.what();
  }
}

TEST(HppLosses, CtcPadsLabelsWithTheBlank) {
  // Uniform logits over two classes and two frames: -log(3/4) for [1], -log(1/4) for no label.
  const Tensor logits = kiln::zeros({2, 2, 2});
  const Tensor labels = Tensor::from_vector<int64_t>({1, 0, 0, 0}, {2, 2});
  kiln::losses::LossOptions none;
  none.reduction = "none";
  const std::vector<float> per = kiln::losses::CTC(none)(labels, logits).to_vector<float>();
  ASSERT_EQ(per.size(), 2u);
  EXPECT_NEAR(per[0], -std::log(0.75), 1e-6);
  EXPECT_NEAR(per[1], -std::log(0.25), 1e-6);
  EXPECT_NEAR(scalar(kiln::losses::get("ctc")(labels, logits)), -(std::log(0.75) + std::log(0.25)) / 2, 1e-6);
  EXPECT_THROW(kiln::losses::CTC()(Tensor::from_vector<int64_t>({0, 1, 0, 0}, {2, 2}), logits), kiln::Error);
  // Integer logits compute as their float32 copies, as Keras converts y_pred.
  EXPECT_NEAR(scalar(kiln::losses::CTC()(
                  labels, Tensor::from_vector<int32_t>(std::vector<int32_t>(8, 0), {2, 2, 2}))),
              -(std::log(0.75) + std::log(0.25)) / 2, 1e-6);
}

TEST(HppLosses, GradientThroughTape) {
  const Tensor y = Tensor::from_vector({1.f, 2.f}, {1, 2});
  const Tensor x = Tensor::from_vector({0.f, 0.f}, {1, 2});
  kiln::GradientTape tape;
  tape.watch(x);
  Tensor loss = kiln::losses::MeanSquaredError()(y, x);
  tape.stop();
  std::vector<float> g = tape.gradient(loss, {x})[0].to_vector<float>();
  EXPECT_NEAR(g[0], -1.0f, 1e-6);  // d/dx mean((x - y)^2) = (x - y)
  EXPECT_NEAR(g[1], -2.0f, 1e-6);
}

// Keras's LossFunctionWrapper(fn) and MeanMetricWrapper(fn) of a C++ function.
TEST(HppLosses, LossFromAFunction) {
  int calls = 0;
  kiln::Loss loss =
      kiln::Loss::from_function("half_squared", [&calls](const Tensor &y_true, const Tensor &y_pred) {
        ++calls;
        const Tensor d = y_true - y_pred;
        return kiln::mean(d * d, {-1}) * Tensor::scalar(0.5f);
      });
  EXPECT_EQ(loss.name(), "half_squared");
  EXPECT_EQ(loss.class_name(), "LossFunctionWrapper");
  EXPECT_EQ(loss.get_config().get_string("fn"), "half_squared");
  const Tensor yt = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}),
               yp = Tensor::from_vector<float>({1, 0, 3, 5}, {2, 2});
  // per-sample: 0.5 * mean(0, 4) = 1, 0.5 * mean(0, 1) = 0.25
  EXPECT_FLOAT_EQ(loss(yt, yp).item<float>(), 0.625f);
  EXPECT_FLOAT_EQ(loss(yt, yp, Tensor::from_vector<float>({0, 4}, {2})).item<float>(), 0.5f);
  kiln::Metric m = kiln::Metric::mean_wrapper(loss);
  m.update_state(yt, yp);
  EXPECT_FLOAT_EQ(m.result().item<float>(), 0.625f);
  EXPECT_EQ(calls, 3);
  kiln::Loss failing = kiln::Loss::from_function("failing", [](const Tensor &, const Tensor &) -> Tensor {
    throw kiln::Error(KILN_STATUS_OUT_OF_RANGE, "no");
  });
  kiln::testing::expect_code(KILN_STATUS_OUT_OF_RANGE, "no", [&] { failing(yt, yp); });
  kiln::testing::expect_code(KILN_STATUS_NOT_FOUND, "cannot be made from its config",
                             [&] { kiln::Loss::deserialize(loss.serialize()); });
}

// Keras's elementwise losses broadcast y_true [2, 1] against y_pred [2, 3]; the crossentropies do not.
TEST(HppLosses, ElementwiseLossesBroadcast) {
  const Tensor t = Tensor::from_vector(std::vector<float>{1, 2}, {2, 1});
  const Tensor q = Tensor::from_vector(std::vector<float>{1, 2, 3, 0, 1, 2}, {2, 3});
  EXPECT_NEAR(kiln::losses::MeanSquaredError()(t, q).item<float>(), 5.0 / 3.0, 1e-6);
  EXPECT_NEAR(kiln::losses::MeanAbsoluteError()(t, q).item<float>(), 1.0, 1e-6);
  kiln::testing::expect_code(KILN_STATUS_INVALID_ARGUMENT, "different shapes",
                             [&] { kiln::losses::BinaryCrossentropy()(t, q * 0.25f); });
  kiln::testing::expect_code(KILN_STATUS_INVALID_ARGUMENT, "do not broadcast", [&] {
    kiln::losses::MeanSquaredError()(Tensor::from_vector(std::vector<float>{0, 0, 0, 0}, {2, 2}), q);
  });
}

TEST(HppLosses, ConfigsAndErrors) {
  kiln::Loss l = kiln::losses::Huber(0.25);
  EXPECT_EQ(l.class_name(), "Huber");
  EXPECT_EQ(l.name(), "huber_loss");
  EXPECT_DOUBLE_EQ(l.get_config().get_float("delta"), 0.25);
  kiln::Loss back = kiln::Loss::deserialize(l.serialize());
  EXPECT_NE(back.id(), l.id());
  EXPECT_DOUBLE_EQ(back.get_config().get_float("delta"), 0.25);
  kiln::Loss copy = l;
  EXPECT_EQ(copy.id(), l.id());
  EXPECT_TRUE(kiln::Loss::is_registered("kld"));
  try {
    kiln::losses::get("nonsense");
    FAIL() << "expected NOT_FOUND";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("known:"), std::string::npos);
  }
  try {
    kiln::losses::SparseCategoricalCrossentropy()(Tensor::from_vector<int64_t>({0, 7}, {2}), probs());
    FAIL() << "expected INVALID_ARGUMENT";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("label 7"), std::string::npos) << e.what();
  }
}

TEST(HppMetrics, AccumulateResetAndVariables) {
  kiln::Metric acc = kiln::metrics::SparseCategoricalAccuracy();
  EXPECT_NEAR(scalar(acc(labels(), probs())), 0.5, 1e-6);
  acc.update_state(labels(), probs(), Tensor::from_vector({1.f, 3.f}, {2}));
  EXPECT_NEAR(scalar(acc.result()), 2.0 / 6.0, 1e-6);
  std::vector<kiln::Variable> vars = acc.variables();
  ASSERT_EQ(vars.size(), 2u);
  EXPECT_EQ(vars[0].name(), "sparse_categorical_accuracy/total");
  EXPECT_EQ(vars[1].name(), "sparse_categorical_accuracy/count");
  EXPECT_FALSE(vars[0].trainable());
  acc.reset_states();
  EXPECT_EQ(scalar(acc.result()), 0.0f);

  kiln::Metric mean = kiln::metrics::Mean("loss");
  EXPECT_EQ(mean.name(), "loss");
  EXPECT_TRUE(mean.takes_values());
  mean.update_state_values(Tensor::from_vector({1.f, 2.f, 6.f}, {3}));
  EXPECT_NEAR(scalar(mean.result()), 3.0, 1e-6);
  kiln::Metric sum = kiln::metrics::Sum();
  sum.update_state_values(Tensor::from_vector({1.f, 2.f}, {2}), Tensor::from_vector({2.f, 0.5f}, {2}));
  EXPECT_NEAR(scalar(sum.result()), 3.0, 1e-6);

  kiln::Metric rmse = kiln::metrics::RootMeanSquaredError();
  rmse.update_state(Tensor::from_vector({0.f, 0.f}, {2, 1}), Tensor::from_vector({3.f, 4.f}, {2, 1}));
  EXPECT_NEAR(scalar(rmse.result()), std::sqrt(12.5), 1e-5);
  kiln::Metric mse = kiln::metrics::MeanSquaredError();
  mse.update_state(Tensor::from_vector({0.f, 0.f}, {2, 1}), Tensor::from_vector({3.f, 4.f}, {2, 1}));
  EXPECT_NEAR(scalar(mse.result()), 12.5, 1e-5);

  kiln::Metric bin = kiln::metrics::BinaryAccuracy(0.7);
  bin.update_state(Tensor::from_vector({1.f, 0.f, 1.f}, {3, 1}),
                   Tensor::from_vector({0.8f, 0.6f, 0.6f}, {3, 1}));
  EXPECT_NEAR(scalar(bin.result()), 2.0 / 3.0, 1e-6);
  kiln::Metric top = kiln::metrics::TopKCategoricalAccuracy(2);
  top.update_state(Tensor::from_vector({0.f, 0.f, 1.f}, {1, 3}),
                   Tensor::from_vector({0.5f, 0.3f, 0.2f}, {1, 3}));
  EXPECT_EQ(scalar(top.result()), 0.0f);
  kiln::Metric stop = kiln::metrics::SparseTopKCategoricalAccuracy(2);
  stop.update_state(Tensor::from_vector<int64_t>({1}, {1}), Tensor::from_vector({0.5f, 0.3f, 0.2f}, {1, 3}));
  EXPECT_EQ(scalar(stop.result()), 1.0f);
}

TEST(HppMetrics, LossFunctionClasses) {
  kiln::Metric mae = kiln::metrics::MeanAbsoluteError();
  EXPECT_EQ(mae.name(), "mean_absolute_error");
  mae.update_state(Tensor::from_vector({1.f, 2.f}, {1, 2}), Tensor::from_vector({2.f, 0.f}, {1, 2}));
  mae.update_state(Tensor::from_vector({0.f, 0.f}, {1, 2}), Tensor::from_vector({0.5f, 0.5f}, {1, 2}));
  EXPECT_NEAR(scalar(mae.result()), (1.5 + 0.5) / 2, 1e-6);
  kiln::Metric cos = kiln::metrics::CosineSimilarity();
  cos.update_state(Tensor::from_vector({1.f, 0.f}, {1, 2}), Tensor::from_vector({3.f, 0.f}, {1, 2}));
  EXPECT_NEAR(scalar(cos.result()), 1.0, 1e-6);  // the similarity; the loss is its negative
  kiln::Metric scce = kiln::metrics::SparseCategoricalCrossentropy(true, std::nullopt, "xent");
  EXPECT_EQ(scce.name(), "xent");
  EXPECT_TRUE(scce.get_config().get_bool("from_logits"));
  scce.update_state(Tensor::from_vector<int64_t>({0}, {1}), Tensor::from_vector({0.f, 0.f}, {1, 2}));
  EXPECT_NEAR(scalar(scce.result()), std::log(2.0), 1e-6);
  EXPECT_EQ(kiln::metrics::CategoricalCrossentropy(false, 0.1).get_config().get_float("label_smoothing"),
            0.1);
  EXPECT_EQ(kiln::metrics::LogCoshError().name(), "logcosh");
  for (kiln::Metric m : {kiln::metrics::MeanAbsolutePercentageError(),
                         kiln::metrics::MeanSquaredLogarithmicError(), kiln::metrics::Poisson(),
                         kiln::metrics::KLDivergence(), kiln::metrics::Hinge(), kiln::metrics::SquaredHinge(),
                         kiln::metrics::CategoricalHinge(), kiln::metrics::BinaryCrossentropy()})
    EXPECT_EQ(kiln::Metric::deserialize(m.serialize()).class_name(), m.class_name());
}

// Keras 3's metric functions: the values each metric averages, without state.
TEST(HppMetrics, MetricFunctions) {
  namespace m = kiln::metrics;
  const Tensor t = Tensor::from_vector({1.f, 0.f, 1.f, 0.f}, {4}),
               p = Tensor::from_vector({.8f, .6f, .4f, .1f}, {4});
  EXPECT_EQ(m::binary_accuracy(t, p).to_vector<float>(), std::vector<float>({1, 0, 0, 1}));
  EXPECT_EQ(m::binary_accuracy(t, p, 0.3).to_vector<float>(), std::vector<float>({1, 0, 1, 1}));
  EXPECT_EQ(m::accuracy(t, Tensor::from_vector({1.f, 1.f, 1.f, 0.f}, {4})).to_vector<float>(),
            std::vector<float>({1, 0, 1, 1}));
  // probs(): row 0's argmax is class 0, row 1's class 2.
  const Tensor onehot = Tensor::from_vector({1.f, 0.f, 0.f, 0.f, 1.f, 0.f}, {2, 3});
  EXPECT_EQ(m::categorical_accuracy(onehot, probs()).to_vector<float>(), std::vector<float>({1, 0}));
  EXPECT_EQ(m::sparse_categorical_accuracy(labels(), probs()).to_vector<float>(), std::vector<float>({1, 0}));
  EXPECT_EQ(m::top_k_categorical_accuracy(onehot, probs(), 3).to_vector<float>(), std::vector<float>({1, 1}));
  EXPECT_EQ(m::sparse_top_k_categorical_accuracy(labels(), probs(), 1).to_vector<float>(),
            std::vector<float>({1, 0}));
  const Tensor sorted_ids = Tensor::from_vector<int64_t>({1, 0, 2, 2, 0, 1}, {2, 3});
  EXPECT_EQ(m::sparse_top_k_categorical_accuracy(labels(), sorted_ids, 1, true).to_vector<float>(),
            std::vector<float>({0, 0}));
  const Tensor a = Tensor::from_vector({1.f, 2.f, 4.f, 1.f, 2.f, 4.f}, {2, 3});
  const Tensor b = Tensor::from_vector({3.f, 5.f, 9.f, -1.f, -3.f, -7.f}, {2, 3});
  const std::vector<float> r = m::pearson_correlation(a, b).to_vector<float>();
  EXPECT_NEAR(r.at(0), 1.0, 1e-5);
  EXPECT_NEAR(r.at(1), -1.0, 1e-5);
  EXPECT_NEAR(m::concordance_correlation(a, a).to_vector<float>().at(0), 1.0, 1e-5);
  // A loss function's name gives its per-sample losses.
  const std::vector<float> ce = m::function("categorical_crossentropy", onehot, probs()).to_vector<float>();
  EXPECT_NEAR(ce.at(0), -std::log(0.5), 1e-6);
  EXPECT_NEAR(ce.at(1), -std::log(0.25), 1e-6);
  EXPECT_THROW(m::function("nope", t, p), kiln::Error);
  EXPECT_THROW(m::categorical_accuracy(onehot, t), kiln::Error);
}

TEST(HppMetrics, PrecisionRecallAuc) {
  const Tensor yt = Tensor::from_vector({0.f, 1.f, 1.f, 0.f}, {4});
  const Tensor yp = Tensor::from_vector({0.6f, 0.9f, 0.3f, 0.2f}, {4});
  kiln::Metric p = kiln::metrics::Precision(), r = kiln::metrics::Recall();
  p.update_state(yt, yp);
  r.update_state(yt, yp);
  EXPECT_NEAR(scalar(p.result()), 0.5, 1e-6);
  EXPECT_NEAR(scalar(r.result()), 0.5, 1e-6);
  kiln::metrics::PrecisionRecallOptions several;
  several.thresholds = {0.1, 0.5, 0.95};
  kiln::Metric ps = kiln::metrics::Precision(several);
  ps.update_state(yt, yp);
  std::vector<float> v = ps.result().to_vector<float>();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_NEAR(v[0], 0.5, 1e-6);
  EXPECT_NEAR(v[1], 0.5, 1e-6);
  EXPECT_EQ(v[2], 0.0f);
  kiln::Metric auc = kiln::metrics::AUC();
  auc.update_state(yt, yp);
  EXPECT_NEAR(scalar(auc.result()), 0.75, 1e-3);  // 3 of 4 positive/negative pairs ordered
  kiln::metrics::AUCOptions pr;
  pr.curve = "PR";
  kiln::Metric aucpr = kiln::metrics::AUC(pr);
  aucpr.update_state(yt, yp);
  EXPECT_GT(scalar(aucpr.result()), 0.5f);
  EXPECT_EQ(auc.variables().size(), 4u);
  EXPECT_EQ(aucpr.get_config().get_string("curve"), "PR");
  // multi_label: one AUC per column (0.75 and 1.0 here), their label_weights-weighted mean.
  kiln::metrics::AUCOptions ml;
  ml.multi_label = true;
  ml.label_weights = {1, 3};
  kiln::Metric multi = kiln::metrics::AUC(ml);
  EXPECT_TRUE(multi.variables().empty());  // no num_labels: built by the first update
  multi.update_state(Tensor::from_vector<float>({0, 0, 0, 0, 1, 1, 1, 1}, {4, 2}),
                     Tensor::from_vector<float>({0.1f, 0.2f, 0.4f, 0.3f, 0.35f, 0.6f, 0.8f, 0.9f}, {4, 2}));
  EXPECT_NEAR(scalar(multi.result()), (0.75 + 3.0) / 4, 1e-5);
  ASSERT_EQ(multi.variables().size(), 4u);
  EXPECT_EQ(multi.variables()[0].value().shape(), (kiln::Dims{200, 2}));
  EXPECT_TRUE(multi.get_config().get_bool("multi_label"));
  kiln::metrics::AUCOptions labels_alone;
  labels_alone.num_labels = 2;
  kiln::testing::expect_code(KILN_STATUS_INVALID_ARGUMENT, "only when multi_label",
                             [&] { kiln::metrics::AUC(labels_alone); });
}

// Keras's F1Score / FBetaScore docstring example: one score per class, or an average.
TEST(HppMetrics, FScores) {
  const Tensor yt = Tensor::from_vector<float>({1, 1, 1, 1, 0, 0, 1, 1, 0}, {3, 3});
  const Tensor yp =
      Tensor::from_vector<float>({0.2f, 0.6f, 0.7f, 0.2f, 0.6f, 0.6f, 0.6f, 0.8f, 0.0f}, {3, 3});
  kiln::metrics::FBetaScoreOptions o;
  o.beta = 2.0;
  o.threshold = 0.5;
  kiln::Metric fb = kiln::metrics::FBetaScore(o);
  fb.update_state(yt, yp);
  const std::vector<float> got = fb.result().to_vector<float>();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NEAR(got[0], 0.3846154f, 1e-6);
  EXPECT_NEAR(got[1], 0.90909094f, 1e-6);
  EXPECT_NEAR(got[2], 0.8333334f, 1e-6);
  kiln::metrics::F1ScoreOptions f;
  f.threshold = 0.5;
  f.average = "weighted";
  f.name = "f1w";
  kiln::Metric f1 = kiln::metrics::F1Score(f);
  f1.update_state(yt, yp);
  EXPECT_NEAR(scalar(f1.result()), (0.5 * 3 + 0.8 * 2 + 2.0 / 3) / 6, 1e-6);
  EXPECT_EQ(f1.name(), "f1w");
  EXPECT_EQ(f1.get_config().get_string("average"), "weighted");
  f.average = "mean";
  EXPECT_THROW(kiln::metrics::F1Score(f), kiln::Error);
}

// Keras 3's confusion counts, rates at a constraint, R2Score and correlations (docstring values).
TEST(HppMetrics, CountsRatesR2AndCorrelations) {
  const Tensor t4 = Tensor::from_vector<float>({0, 1, 0, 0}, {4}),
               p4 = Tensor::from_vector<float>({0, 0, 1, 1}, {4});
  kiln::Metric fp = kiln::metrics::FalsePositives();
  fp.update_state(t4, p4);
  EXPECT_EQ(scalar(fp.result()), 2.0f);
  EXPECT_EQ(fp.name(), "false_positives");
  kiln::Metric tps = kiln::metrics::TruePositives({0.0, 0.5}, "tps");
  tps.update_state(Tensor::from_vector<float>({0, 1, 1, 1}, {4}),
                   Tensor::from_vector<float>({1, 0, 1, 0.3f}, {4}));
  EXPECT_EQ(tps.result().to_vector<float>(), (std::vector<float>{2, 1}));
  EXPECT_EQ(tps.name(), "tps");
  EXPECT_EQ(scalar(kiln::metrics::TrueNegatives().result()), 0.0f);
  EXPECT_EQ(kiln::metrics::FalseNegatives().name(), "false_negatives");

  const Tensor t5 = Tensor::from_vector<float>({0, 0, 0, 1, 1}, {5});
  const Tensor p5 = Tensor::from_vector<float>({0, 0.3f, 0.8f, 0.3f, 0.8f}, {5});
  kiln::metrics::AtConstraintOptions o;
  o.num_thresholds = 100;
  kiln::Metric sens = kiln::metrics::SensitivityAtSpecificity(0.5, o);
  sens.update_state(t5, p5, Tensor::from_vector<float>({1, 1, 2, 2, 1}, {5}));
  EXPECT_NEAR(scalar(sens.result()), 0.333333f, 1e-6);
  EXPECT_EQ(sens.get_config().get_int("num_thresholds"), 100);
  kiln::Metric spec = kiln::metrics::SpecificityAtSensitivity(0.5);
  spec.update_state(t5, p5);
  EXPECT_NEAR(scalar(spec.result()), 0.66666667f, 1e-6);
  kiln::Metric par = kiln::metrics::PrecisionAtRecall(0.5);
  par.update_state(t5, p5);
  EXPECT_NEAR(scalar(par.result()), 0.5f, 1e-6);
  kiln::Metric rap = kiln::metrics::RecallAtPrecision(0.8);
  rap.update_state(Tensor::from_vector<float>({0, 0, 1, 1}, {4}),
                   Tensor::from_vector<float>({0, 0.5f, 0.3f, 0.9f}, {4}));
  EXPECT_NEAR(scalar(rap.result()), 0.5f, 1e-6);
  o.class_id = 3;
  kiln::Metric by_class = kiln::metrics::RecallAtPrecision(0.8, o);
  EXPECT_EQ(by_class.get_config().get_int("class_id"), 3);
  kiln::testing::expect_code(KILN_STATUS_INVALID_ARGUMENT, "specificity is -1",
                             [] { kiln::metrics::SensitivityAtSpecificity(-1); });

  kiln::Metric r2 = kiln::metrics::R2Score();
  r2.update_state(Tensor::from_vector<float>({1, 4, 3}, {3, 1}),
                  Tensor::from_vector<float>({2, 4, 4}, {3, 1}));
  EXPECT_NEAR(scalar(r2.result()), 0.57142854f, 1e-6);
  kiln::metrics::R2ScoreOptions ro;
  ro.class_aggregation.reset();
  kiln::Metric per_output = kiln::metrics::R2Score(ro);
  per_output.update_state(Tensor::from_vector<float>({1, 2, 4, 2, 3, 7}, {3, 2}),
                          Tensor::from_vector<float>({2, 2, 4, 2, 4, 7}, {3, 2}));
  const std::vector<float> per = per_output.result().to_vector<float>();
  ASSERT_EQ(per.size(), 2u);
  EXPECT_NEAR(per[0], 0.57142854f, 1e-6);
  EXPECT_EQ(per[1], 1.0f);

  const Tensor ct = Tensor::from_vector<float>({0, 1, 0.5f, 1, 1, 0.2f}, {2, 3});
  const Tensor cp = Tensor::from_vector<float>({0.1f, 0.9f, 0.5f, 1, 0.9f, 0.2f}, {2, 3});
  kiln::Metric pearson = kiln::metrics::PearsonCorrelation();
  pearson.update_state(ct, cp);
  EXPECT_NEAR(scalar(pearson.result()), 0.9966996338993913, 2e-7);
  kiln::Metric ccc = kiln::metrics::ConcordanceCorrelation(-1, "ccc");
  ccc.update_state(ct, cp);
  EXPECT_NEAR(scalar(ccc.result()), 0.9816320385426076, 1e-6);
  EXPECT_EQ(ccc.name(), "ccc");
  EXPECT_EQ(kiln::metrics::get("r2_score").class_name(), "R2Score");
}

// Keras's IoU metrics: cm = [[1, 1], [1, 1]] gives 1/3 for each class; BinaryIoU thresholds first.
TEST(HppMetrics, IoU) {
  const Tensor yt = Tensor::from_vector<int64_t>({0, 0, 1, 1}, {4});
  const Tensor yp = Tensor::from_vector<int64_t>({0, 1, 0, 1}, {4});
  kiln::Metric mean = kiln::metrics::MeanIoU(2);
  mean.update_state(yt, yp);
  EXPECT_NEAR(scalar(mean.result()), 1.0 / 3, 1e-6);
  EXPECT_EQ(mean.name(), "mean_io_u");
  EXPECT_EQ(mean.get_config().get_string("dtype"), "int64");
  kiln::metrics::IoUOptions f;
  f.dtype = "float32";
  kiln::Metric iou = kiln::metrics::IoU(2, {0}, f);
  iou.update_state(yt, yp, Tensor::from_vector({0.3f, 0.3f, 0.3f, 0.1f}, {4}));
  EXPECT_NEAR(scalar(iou.result()), 1.0 / 3, 1e-6);
  kiln::metrics::BinaryIoUOptions b;
  b.threshold = 0.3;
  kiln::Metric bin = kiln::metrics::BinaryIoU(b);
  bin.update_state(yp,
                   Tensor::from_vector({0.1f, 0.2f, 0.4f, 0.7f}, {4}));  // labels 0 1 0 1, predicted 0 0 1 1
  EXPECT_NEAR(scalar(bin.result()), 1.0 / 3, 1e-6);
  kiln::metrics::IoUOptions ignore;
  ignore.ignore_class = 1;
  kiln::Metric oh = kiln::metrics::OneHotMeanIoU(2, ignore);
  oh.update_state(Tensor::from_vector({1.f, 0.f, 0.f, 1.f}, {2, 2}),
                  Tensor::from_vector({0.9f, 0.1f, 0.2f, 0.8f}, {2, 2}));
  EXPECT_NEAR(scalar(oh.result()), 1.0, 1e-6);  // the class-1 row is ignored; class 0 is right
  EXPECT_EQ(oh.get_config().get_int("ignore_class"), 1);
  EXPECT_THROW(kiln::metrics::IoU(2, {2}), kiln::Error);
  EXPECT_THROW(kiln::metrics::OneHotIoU(3, {}), kiln::Error);
}

TEST(HppMetrics, ResolveAndErrors) {
  kiln::Loss scce = kiln::losses::SparseCategoricalCrossentropy();
  EXPECT_EQ(kiln::Metric::resolve("accuracy", scce, {-1, 10}, {-1, 10}).class_name(),
            "SparseCategoricalAccuracy");
  EXPECT_EQ(kiln::Metric::resolve("acc", kiln::Loss(), {-1, 10}, {-1, 10}).class_name(),
            "CategoricalAccuracy");
  EXPECT_EQ(kiln::Metric::resolve("accuracy", kiln::Loss(), {-1, 1}, {-1, 1}).class_name(), "BinaryAccuracy");
  kiln::Metric wrapped = kiln::Metric::mean_wrapper(kiln::losses::MeanSquaredError());
  EXPECT_EQ(wrapped.name(), "mean_squared_error");
  wrapped.update_state(Tensor::from_vector({0.f}, {1, 1}), Tensor::from_vector({2.f}, {1, 1}));
  EXPECT_NEAR(scalar(wrapped.result()), 4.0, 1e-6);
  kiln::Metric back = kiln::Metric::deserialize(wrapped.serialize());
  EXPECT_EQ(back.class_name(), "MeanMetricWrapper");
  try {
    kiln::metrics::get("acuracy");
    FAIL() << "expected NOT_FOUND";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
  }
  kiln::Metric acc = kiln::metrics::CategoricalAccuracy();
  EXPECT_THROW(acc.update_state(labels(), probs()), kiln::Error);
  EXPECT_THROW(kiln::metrics::Mean().update_state(labels(), probs()), kiln::Error);
}

TEST(HppMetrics, FourThreadsUpdateOneMetric) {
  kiln::Metric acc = kiln::metrics::SparseCategoricalAccuracy();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([acc]() mutable {
      for (int i = 0; i < 50; ++i) acc.update_state(labels(), probs());
    });
  for (std::thread &th : threads) th.join();
  EXPECT_NEAR(acc.variables()[1].value().to_vector<float>()[0], 400.0f, 1e-3);
  EXPECT_NEAR(scalar(acc.result()), 0.5, 1e-6);
}

}  // namespace
