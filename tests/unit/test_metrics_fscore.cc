// Keras 3's FBetaScore and F1Score (src/train/metrics_fscore.cc): the values of Keras's docstring
// examples, each average against Keras's formula written here, the argmax rule of threshold None
// (ties and rows of zeros), sample weights, reset, configs as Keras writes them, the logs of fit,
// and bad input.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "ops/ops.h"
#include "test_util.h"
#include "train/metrics.h"

namespace kiln::train {
namespace {

using testing::expect_error;
using testing::make;
using testing::values;

// Keras's docstring example.
const Tensor &y_true() {
  static const Tensor t = make({3, 3}, {1, 1, 1, 1, 0, 0, 1, 1, 0});
  return t;
}
const Tensor &y_pred() {
  static const Tensor t = make({3, 3}, {0.2f, 0.6f, 0.7f, 0.2f, 0.6f, 0.6f, 0.6f, 0.8f, 0.0f});
  return t;
}

MetricPtr metric(const std::string &cls, const std::string &json) {
  return create_metric(cls, Config::from_json(json));
}

// Keras's result() in float32 from per-class counts (tp, fp, fn, support).
std::vector<float> keras_scores(const std::vector<float> &tp, const std::vector<float> &fp,
                                const std::vector<float> &fn, double beta) {
  const float eps = 1e-7f, b2 = static_cast<float>(beta * beta), scale = static_cast<float>(1 + beta * beta);
  std::vector<float> s;
  for (size_t i = 0; i < tp.size(); ++i) {
    const float p = tp[i] / (tp[i] + fp[i] + eps), r = tp[i] / (tp[i] + fn[i] + eps);
    s.push_back(p * r / (b2 * p + r + eps) * scale);
  }
  return s;
}

TEST(FScoreMetrics, KerasDocstringValues) {
  MetricPtr fb = metric("FBetaScore", R"({"beta": 2.0, "threshold": 0.5})");
  fb->update_state(y_true(), y_pred());
  const std::vector<float> got = values(fb->result());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NEAR(got[0], 0.3846154f, 1e-6);
  EXPECT_NEAR(got[1], 0.90909094f, 1e-6);
  EXPECT_NEAR(got[2], 0.8333334f, 1e-6);
  MetricPtr f1 = metric("F1Score", R"({"threshold": 0.5})");
  f1->update_state(y_true(), y_pred());
  const std::vector<float> g1 = values(f1->result());
  ASSERT_EQ(g1.size(), 3u);
  EXPECT_NEAR(g1[0], 0.5f, 1e-6);
  EXPECT_NEAR(g1[1], 0.8f, 1e-6);
  EXPECT_NEAR(g1[2], 0.6666667f, 1e-6);
  EXPECT_EQ(f1->name(), "f1_score");
  EXPECT_EQ(fb->name(), "fbeta_score");
}

TEST(FScoreMetrics, AveragesFollowKerasFormula) {
  // Thresholded at 0.5: per class tp {1, 2, 1}, fp {0, 1, 1}, fn {2, 0, 0}, support {3, 2, 1}.
  const std::vector<float> s = keras_scores({1, 2, 1}, {0, 1, 1}, {2, 0, 0}, 1.0);
  auto result = [](const std::string &average) {
    MetricPtr m = metric("F1Score", R"({"threshold": 0.5, "average": ")" + average + R"("})");
    m->update_state(y_true(), y_pred());
    const Tensor r = m->result();
    EXPECT_EQ(r.rank(), 0) << average;
    return values(r)[0];
  };
  EXPECT_FLOAT_EQ(result("macro"), (s[0] + s[1] + s[2]) / 3.0f);
  const float eps = 1e-7f;
  EXPECT_FLOAT_EQ(result("weighted"),
                  s[0] * (3.0f / (6.0f + eps)) + s[1] * (2.0f / (6.0f + eps)) + s[2] * (1.0f / (6.0f + eps)));
  EXPECT_FLOAT_EQ(result("micro"), keras_scores({4}, {2}, {2}, 1.0)[0]);
}

TEST(FScoreMetrics, ThresholdNoneTakesEachRowsLargestScores) {
  // Row maxima: row 0 predicts class 2; row 1 ties classes 1 and 2 (both count); row 2 class 1.
  // A row of zeros predicts nothing. Per class tp {0, 1, 1}, fp {0, 1, 1}, fn {3, 1, 0}.
  MetricPtr m = metric("F1Score", "{}");
  m->update_state(y_true(), y_pred());
  m->update_state(make({1, 3}, {0, 0, 0}), make({1, 3}, {0, 0, 0}));
  const std::vector<float> want = keras_scores({0, 1, 1}, {0, 1, 1}, {3, 1, 0}, 1.0);
  EXPECT_EQ(values(m->result()), want);
  m->reset_state();
  m->update_state(make({1, 3}, {0, 1, 0}), make({1, 3}, {0.1f, 0.7f, 0.2f}));
  EXPECT_EQ(values(m->result()), keras_scores({0, 1, 0}, {0, 0, 0}, {0, 0, 0}, 1.0));
}

TEST(FScoreMetrics, SampleWeightsScaleEachRowOrScore) {
  // Row weights {2, 0, 1}: row 1 counts nowhere; rows 0 and 2 as before, row 0 twice.
  MetricPtr rows = metric("F1Score", R"({"threshold": 0.5})");
  rows->update_state(y_true(), y_pred(), make({3}, {2, 0, 1}));
  // Row 0: pred {0,1,1} true {1,1,1}: tp {0,2,2} fn {2,0,0}; row 2: pred {1,1,0} true {1,1,0}: tp {1,1,0}.
  EXPECT_EQ(values(rows->result()), keras_scores({1, 3, 2}, {0, 0, 0}, {2, 0, 0}, 1.0));
  MetricPtr same = metric("F1Score", R"({"threshold": 0.5})");
  same->update_state(y_true(), y_pred(), make({3, 1}, {2, 0, 1}));
  EXPECT_EQ(values(same->result()), values(rows->result()));
  MetricPtr scalar = metric("F1Score", R"({"threshold": 0.5})");
  scalar->update_state(y_true(), y_pred(), make({}, {3}));
  EXPECT_EQ(values(scalar->result()), keras_scores({3, 6, 3}, {0, 3, 3}, {6, 0, 0}, 1.0));
}

TEST(FScoreMetrics, ConfigsAsKerasWritesThem) {
  MetricPtr f1 = metric("F1Score", R"({"average": "macro"})");
  Config c = f1->get_config();
  EXPECT_EQ(c.get_string("average"), "macro");
  EXPECT_TRUE(c.is_null("threshold"));
  EXPECT_FALSE(c.has("beta"));
  MetricPtr back = create_metric("F1Score", c);
  EXPECT_EQ(back->get_config().to_json(), c.to_json());
  Config fb = metric("FBetaScore", R"({"beta": 0.5, "threshold": 0.3})")->get_config();
  EXPECT_TRUE(fb.is_null("average"));
  EXPECT_EQ(fb.get_float("beta"), 0.5);
  EXPECT_EQ(fb.get_float("threshold"), 0.3);
  EXPECT_EQ(values(metric("F1Score", R"({"average": "micro"})")->result()), std::vector<float>{0.0f});
  EXPECT_EQ(metric("F1Score", "{}")->result().num_elements(), 0);  // no update: no classes yet
}

TEST(FScoreMetrics, BadInputIsRefused) {
  const Code inv = Code::kInvalidArgument;
  expect_error([] { metric("F1Score", R"({"average": "samples"})"); }, inv,
               {"F1Score", "average is 'samples'", "'micro', 'macro' or 'weighted'"});
  expect_error([] { metric("FBetaScore", R"({"beta": 0})"); }, inv, {"FBetaScore", "beta is 0", "> 0"});
  expect_error([] { metric("F1Score", R"({"threshold": 1.5})"); }, inv, {"F1Score", "threshold is 1.5"});
  expect_error([] { metric("F1Score", R"({"beta": 2})"); }, inv, {"F1Score", "beta"});  // F1 has none
  MetricPtr m = metric("F1Score", "{}");
  expect_error(
      [&] {
        m->update_state(make({3}, {1, 0, 1}), make({3}, {1, 0, 1}));
      },
      inv, {"f1_score", "2-D inputs"});
  expect_error(
      [&] {
        m->update_state(make({1, 2}, {1, 0}), make({1, 3}, {1, 0, 1}));
      },
      inv, {"f1_score", "differ in shape"});
  m->update_state(y_true(), y_pred());
  expect_error(
      [&] {
        m->update_state(make({1, 2}, {1, 0}), make({1, 2}, {1, 0}));
      },
      inv, {"f1_score", "has 2 classes", "counts 3"});
  expect_error(
      [&] {
        m->update_state(y_true(), y_pred(), make({1, 1, 3}, {1, 1, 1}));
      },
      inv, {"f1_score", "sample_weight"});
  expect_error([&] { m->update_state(Tensor(), y_pred()); }, inv, {"f1_score", "y_true is undefined"});
}

// The state is made at the first update; threads updating and listing the variables at once see
// either none or all four, and every update counts.
TEST(FScoreMetrics, ThreadsShareOneMetric) {
  MetricPtr m = metric("F1Score", R"({"threshold": 0.5, "average": "micro"})");
  std::vector<std::thread> threads;
  std::atomic<bool> partial{false};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        m->update_state(y_true(), y_pred());
        const size_t n = m->variables().size();
        if (n != 0 && n != 4) partial = true;
      }
    });
  for (std::thread &t : threads) t.join();
  EXPECT_FALSE(partial.load());
  ASSERT_EQ(m->variables().size(), 4u);
  EXPECT_EQ(values(m->variables()[0]->peek()), std::vector<float>{400.0f});  // 4 true positives a batch
}

}  // namespace
}  // namespace kiln::train
