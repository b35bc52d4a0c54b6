// Keras 3's confusion counts (TruePositives ...), the four rate-at-constraint metrics
// (SensitivityAtSpecificity ...), R2Score and the correlation metrics: the values of Keras's
// docstring examples, each metric against Keras's formula written out here, thresholds, class_id,
// sample weights, NaN predictions in the bucketed path, configs, names, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"
#include "train/callbacks_internal.h"
#include "train/metrics.h"

namespace kiln::train {
namespace {

using testing::expect_error;
using testing::make;
using testing::values;

MetricPtr metric(const std::string &cls, const std::string &json = "{}") {
  return create_metric(cls, Config::from_json(json));
}

float scalar_of(const MetricPtr &m) {
  const Tensor r = m->result();
  EXPECT_EQ(r.rank(), 0) << m->name();
  return values(r)[0];
}

TEST(ConfusionCounts, KerasDocstringValues) {
  const Tensor t = make({4}, {0, 1, 0, 0}), p = make({4}, {0, 0, 1, 1});
  MetricPtr fp = metric("FalsePositives");
  fp->update_state(t, p);
  EXPECT_EQ(scalar_of(fp), 2.0f);
  fp->reset_state();
  fp->update_state(t, p, make({4}, {0, 0, 1, 0}));
  EXPECT_EQ(scalar_of(fp), 1.0f);

  MetricPtr tp = metric("TruePositives");
  tp->update_state(make({4}, {0, 1, 1, 1}), make({4}, {1, 0, 1, 1}));
  EXPECT_EQ(scalar_of(tp), 2.0f);
  MetricPtr tn = metric("TrueNegatives");
  tn->update_state(make({4}, {0, 1, 0, 0}), make({4}, {1, 1, 0, 0}));
  EXPECT_EQ(scalar_of(tn), 2.0f);
  MetricPtr fn = metric("FalseNegatives");
  fn->update_state(make({4}, {0, 1, 1, 1}), make({4}, {0, 1, 0, 0}));
  EXPECT_EQ(scalar_of(fn), 2.0f);
}

TEST(ConfusionCounts, EveryCellAtSeveralThresholdsAcrossBatches) {
  // Predictions above a threshold are positive; a label is positive when nonzero.
  const std::vector<float> thresholds{0.0f, 0.25f, 0.5f, 0.9f};
  const std::vector<float> y1{0, 1, 1, 0, 2, 0}, p1{0.0f, 0.25f, 0.6f, 0.95f, 0.3f, 0.5f};
  const std::vector<float> y2{1, 0}, p2{1.5f, -0.2f}, w2{2.0f, 3.0f};
  const char *classes[] = {"TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives"};
  for (int cell = 0; cell < 4; ++cell) {
    MetricPtr m = metric(classes[cell], R"({"thresholds": [0.0, 0.25, 0.5, 0.9]})");
    m->update_state(make({6}, y1), make({6}, p1));
    m->update_state(make({2}, y2), make({2}, p2), make({2}, w2));
    std::vector<float> want(thresholds.size());
    auto count = [&](const std::vector<float> &y, const std::vector<float> &p, const std::vector<float> &w) {
      for (size_t k = 0; k < thresholds.size(); ++k)
        for (size_t i = 0; i < y.size(); ++i) {
          const bool label = y[i] != 0, pred = p[i] > thresholds[k];
          const int c = label ? (pred ? 0 : 3) : (pred ? 1 : 2);
          if (c == cell) want[k] += w.empty() ? 1.0f : w[i];
        }
    };
    count(y1, p1, {});
    count(y2, p2, w2);
    const Tensor r = m->result();
    ASSERT_EQ(r.shape(), Shape{4}) << classes[cell];
    EXPECT_EQ(values(r), want) << classes[cell];
    ASSERT_EQ(m->variables().size(), 1u);
    EXPECT_EQ(m->variables()[0]->name(), m->name() + "/accumulator");
  }
}

TEST(ConfusionCounts, ConfigNamesAndBadThresholds) {
  MetricPtr m = metric("TruePositives");
  EXPECT_EQ(m->name(), "true_positives");
  EXPECT_TRUE(m->get_config().is_null("thresholds"));  // Keras writes the thresholds as given
  MetricPtr one = metric("FalseNegatives", R"({"thresholds": 0.3})");
  EXPECT_DOUBLE_EQ(one->get_config().get_float("thresholds"), 0.3);
  MetricPtr again = create_metric("FalseNegatives", one->get_config());
  again->update_state(make({2}, {1, 1}), make({2}, {0.3f, 0.31f}));
  EXPECT_EQ(scalar_of(again), 1.0f);
  EXPECT_EQ(create_metric("true_negatives")->class_name(), "TrueNegatives");
  EXPECT_EQ(create_metric("false_positives")->name(), "false_positives");
  expect_error([] { metric("TruePositives", R"({"thresholds": [0.5, 1.5]})"); }, Code::kInvalidArgument,
               {"threshold 1.5", "[0, 1]"});
  expect_error([] { metric("TruePositives", R"({"thresholds": []})"); }, Code::kInvalidArgument,
               {"thresholds is empty"});
  MetricPtr tp = metric("TruePositives");
  expect_error(
      [&] {
        tp->update_state(make({3}, {1, 0, 1}), make({2}, {1, 0}));
      },
      Code::kInvalidArgument, {"different shapes"});
}

// Keras's rate-at-constraint result from its counts, in float32.
struct Rates {
  std::vector<float> tp, fp, tn, fn;
};
Rates counts_at(const std::vector<float> &y, const std::vector<float> &p, const std::vector<float> &w,
                const std::vector<float> &thresholds) {
  // More than one threshold here means evenly spaced ones: Keras's float32 buckets.
  const size_t n = thresholds.size();
  Rates r{std::vector<float>(n), std::vector<float>(n), std::vector<float>(n), std::vector<float>(n)};
  for (size_t k = 0; k < n; ++k)
    for (size_t i = 0; i < y.size(); ++i) {
      const float q = std::min(std::max(p[i], 0.0f), 1.0f);
      const bool pred = n == 1 ? q > thresholds[k]
                               : static_cast<float>(k) <= std::ceil(q * static_cast<float>(n - 1)) - 1.0f;
      const bool label = y[i] != 0;
      (label ? (pred ? r.tp : r.fn) : (pred ? r.fp : r.tn))[k] += w.empty() ? 1.0f : w[i];
    }
  return r;
}
float ratio(float a, float b) { return b == 0.0f ? 0.0f : a / b; }

TEST(RateAtConstraint, KerasDocstringValues) {
  const Tensor y = make({5}, {0, 0, 0, 1, 1}), p = make({5}, {0.0f, 0.3f, 0.8f, 0.3f, 0.8f});
  struct Case {
    const char *cls, *json;
    std::vector<float> weights;
    float want, weighted;
  };
  const Case cases[] = {
      {"SensitivityAtSpecificity", R"({"specificity": 0.5})", {1, 1, 2, 2, 1}, 0.5f, 0.333333f},
      {"SpecificityAtSensitivity", R"({"sensitivity": 0.5})", {1, 1, 2, 2, 2}, 0.66666667f, 0.5f},
      {"PrecisionAtRecall", R"({"recall": 0.5})", {2, 2, 2, 1, 1}, 0.5f, 0.33333333f},
  };
  for (const Case &c : cases) {
    MetricPtr m = metric(c.cls, c.json);
    m->update_state(y, p);
    EXPECT_NEAR(scalar_of(m), c.want, 1e-6) << c.cls;
    m->reset_state();
    m->update_state(y, p, make({5}, c.weights));
    EXPECT_NEAR(scalar_of(m), c.weighted, 1e-6) << c.cls;
  }
  MetricPtr rp = metric("RecallAtPrecision", R"({"precision": 0.8})");
  rp->update_state(make({4}, {0, 0, 1, 1}), make({4}, {0.0f, 0.5f, 0.3f, 0.9f}));
  EXPECT_NEAR(scalar_of(rp), 0.5f, 1e-6);
  rp->reset_state();
  rp->update_state(make({4}, {0, 0, 1, 1}), make({4}, {0.0f, 0.5f, 0.3f, 0.9f}), make({4}, {1, 0, 0, 1}));
  EXPECT_NEAR(scalar_of(rp), 1.0f, 1e-6);
}

TEST(RateAtConstraint, AgainstKerasFormulaAtEveryThresholdCount) {
  std::vector<float> y, p, w;
  for (int i = 0; i < 40; ++i) {
    y.push_back(static_cast<float>((i * 7) % 3 == 0));
    p.push_back(static_cast<float>(((i * 37) % 41) / 40.0 * 1.2 - 0.1));  // some outside [0, 1]
    w.push_back(static_cast<float>(1 + i % 4));
  }
  for (int64_t n : {1, 2, 3, 7, 200}) {
    std::vector<float> thresholds;
    if (n == 1) {
      thresholds = {0.5f};
    } else {
      thresholds.push_back(0.0f);
      for (int64_t i = 0; i < n - 2; ++i)
        thresholds.push_back(static_cast<float>((i + 1) * 1.0 / double(n - 1)));
      thresholds.push_back(1.0f);
    }
    const Rates c = counts_at(y, p, w, thresholds);
    const size_t t = thresholds.size();
    auto best = [&](auto constrained, auto dependent, float value) {
      float b = 0.0f;
      for (size_t k = 0; k < t; ++k)
        if (constrained(k) >= value) b = std::max(b, dependent(k));
      return b;
    };
    auto sens = [&](size_t k) { return ratio(c.tp[k], c.tp[k] + c.fn[k]); };
    auto spec = [&](size_t k) { return ratio(c.tn[k], c.tn[k] + c.fp[k]); };
    auto prec = [&](size_t k) { return ratio(c.tp[k], c.tp[k] + c.fp[k]); };
    const std::string nt = std::to_string(n);
    struct Case {
      const char *cls, *key;
      float want;
    };
    const Case cases[] = {
        {"SensitivityAtSpecificity", "specificity", best(spec, sens, 0.6f)},
        {"SpecificityAtSensitivity", "sensitivity", best(sens, spec, 0.6f)},
        {"PrecisionAtRecall", "recall", best(sens, prec, 0.6f)},
        {"RecallAtPrecision", "precision", best(prec, sens, 0.6f)},
    };
    for (const Case &cs : cases) {
      MetricPtr m = metric(cs.cls, std::string("{\"") + cs.key + "\": 0.6, \"num_thresholds\": " + nt + "}");
      m->update_state(make({20}, std::vector<float>(y.begin(), y.begin() + 20)),
                      make({20}, std::vector<float>(p.begin(), p.begin() + 20)),
                      make({20}, std::vector<float>(w.begin(), w.begin() + 20)));
      m->update_state(make({20}, std::vector<float>(y.begin() + 20, y.end())),
                      make({20}, std::vector<float>(p.begin() + 20, p.end())),
                      make({20}, std::vector<float>(w.begin() + 20, w.end())));
      EXPECT_FLOAT_EQ(scalar_of(m), cs.want) << cs.cls << " n=" << n;
      ASSERT_EQ(m->variables().size(), 4u);
      EXPECT_EQ(m->variables()[0]->shape(), Shape{static_cast<int64_t>(t)});
      EXPECT_EQ(m->variables()[2]->name(), m->name() + "/true_negatives");
    }
  }
}

TEST(RateAtConstraint, ClassIdConfigAndBadInput) {
  MetricPtr m = metric("PrecisionAtRecall", R"({"recall": 0.5, "class_id": 1, "num_thresholds": 3})");
  // Column 1 only: labels {1, 0, 1}, predictions {0.9, 0.8, 0.2}.
  m->update_state(make({3, 2}, {0, 1, 1, 0, 0, 1}), make({3, 2}, {0.1f, 0.9f, 0.7f, 0.8f, 0.3f, 0.2f}));
  // Thresholds 0, 0.5, 1: at 0 recall 1, precision 2/3; at 0.5 recall 1/2, precision 1/2.
  EXPECT_FLOAT_EQ(scalar_of(m), 2.0f / 3.0f);
  const Config c = m->get_config();
  EXPECT_EQ(c.get_int("class_id"), 1);
  EXPECT_EQ(c.get_int("num_thresholds"), 3);
  EXPECT_DOUBLE_EQ(c.get_float("recall"), 0.5);
  EXPECT_EQ(m->name(), "precision_at_recall");
  MetricPtr again = create_metric("PrecisionAtRecall", c);
  EXPECT_EQ(again->get_config().to_json(), c.to_json());
  EXPECT_EQ(
      create_metric("sensitivity_at_specificity", Config::from_json(R"({"specificity": 0.1})"))->class_name(),
      "SensitivityAtSpecificity");

  MetricPtr last = metric("PrecisionAtRecall", R"({"recall": 0.5, "class_id": -1, "num_thresholds": 3})");
  last->update_state(make({3, 2}, {0, 1, 1, 0, 0, 1}), make({3, 2}, {0.1f, 0.9f, 0.7f, 0.8f, 0.3f, 0.2f}));
  EXPECT_FLOAT_EQ(scalar_of(last), 2.0f / 3.0f);  // -1: the last class, as Keras's index
  expect_error(
      [&] {
        metric("PrecisionAtRecall", R"({"recall": 0.5, "class_id": -3})")
            ->update_state(make({1, 2}, {0, 1}), make({1, 2}, {0, 1}));
      },
      Code::kInvalidArgument, {"class_id -3 is out of range for 2 classes"});
  expect_error([] { metric("PrecisionAtRecall"); }, Code::kInvalidArgument, {"needs 'recall'"});
  expect_error([] { metric("RecallAtPrecision", R"({"precision": 1.5})"); }, Code::kInvalidArgument,
               {"precision is 1.5", "[0, 1]"});
  expect_error([] { metric("SensitivityAtSpecificity", R"({"specificity": 0.5, "num_thresholds": 0})"); },
               Code::kInvalidArgument, {"num_thresholds is 0"});
  expect_error([] { metric("SpecificityAtSensitivity", R"({"sensitivity": 0.5, "bogus": 1})"); },
               Code::kInvalidArgument, {"bogus"});
  expect_error(
      [&] {
        m->update_state(make({3}, {0, 1, 1}), make({3}, {0.1f, 0.9f, 0.7f}));
      },
      Code::kInvalidArgument, {"class_id", "rank 2"});
  expect_error(
      [&] {
        m->update_state(make({3, 2}, {0, 1, 1, 0, 0, 1}), make({3, 2}, {0, 1, 1, 0, 0, 1}),
                        make({3, 2, 2}, std::vector<float>(12, 1)));
      },
      Code::kInvalidArgument, {"sample_weight"});
}

TEST(ConfusionBuckets, KerassFloat32BucketsNaNAndInfiniteWeights) {
  // Evenly spaced thresholds take Keras's bucketed path: int32(ceil(p * (n - 1)) - 1) in float32
  // puts 0.3f above the threshold 0.3 of 101 (0.3f * 100 rounds up past 30); compared, it is not.
  std::string even = "[";
  for (int i = 0; i <= 100; ++i) even += (i ? ", " : "") + std::to_string(i / 100.0);
  MetricPtr bucketed = metric("TruePositives", "{\"thresholds\": " + even + "]}");
  bucketed->update_state(make({1}, {1}), make({1}, {0.3f}));
  const std::vector<float> got = values(bucketed->result());
  ASSERT_EQ(got.size(), 101u);
  EXPECT_EQ(got[30], 1.0f);
  EXPECT_EQ(got[31], 0.0f);
  MetricPtr compared = metric("TruePositives", R"({"thresholds": [0.3]})");
  compared->update_state(make({1}, {1}), make({1}, {0.3f}));
  EXPECT_EQ(scalar_of(compared), 0.0f);

  // A NaN prediction has no bucket (TF drops its segment), so it is a negative at every threshold,
  // as it is when compared: the negatives are the label totals less the positives.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const Tensor y = make({3}, {1, 0, 1}), p = make({3}, {nan, 0.7f, 0.9f});
  for (const char *thresholds : {"[0.0, 0.5, 1.0]", "[0.0, 0.6, 1.0]"}) {
    MetricPtr fn = metric("FalseNegatives", std::string("{\"thresholds\": ") + thresholds + "}");
    fn->update_state(y, p);
    EXPECT_EQ(values(fn->result()), (std::vector<float>{1, 1, 2})) << thresholds;
  }
  MetricPtr at = metric("SensitivityAtSpecificity", R"({"specificity": 0.0, "num_thresholds": 3})");
  at->update_state(y, p);
  EXPECT_FLOAT_EQ(scalar_of(at), 0.5f);

  // Keras's y * w and (1 - y) * w: an infinite weight on a positive makes 0 * inf = NaN among the
  // negatives' totals in the bucketed path; the compared path adds each weight to its own cell.
  MetricPtr fp = metric("FalsePositives", R"({"thresholds": [0.0, 0.5, 1.0]})");
  fp->update_state(make({2}, {1, 0}), make({2}, {0.7f, 0.2f}), make({2}, {inf, 1}));
  const std::vector<float> f = values(fp->result());
  EXPECT_TRUE(std::isnan(f[0]) && std::isnan(f[1]));
  EXPECT_EQ(f[2], 0.0f);
  MetricPtr fp2 = metric("FalsePositives", R"({"thresholds": [0.0, 0.6, 1.0]})");
  fp2->update_state(make({2}, {1, 0}), make({2}, {0.7f, 0.2f}), make({2}, {inf, 1}));
  EXPECT_EQ(values(fp2->result()), (std::vector<float>{1, 0, 0}));
}

TEST(R2Score, KerasDocstringAndFormula) {
  MetricPtr m = metric("R2Score");
  EXPECT_EQ(m->name(), "r2_score");
  m->update_state(make({3, 1}, {1, 4, 3}), make({3, 1}, {2, 4, 4}));
  EXPECT_FLOAT_EQ(scalar_of(m), 0.57142854f);

  // Two outputs over two weighted batches, against Keras's sums.
  const std::vector<float> t1{1, 10, 2, 20, 4, 25}, p1{1.5f, 11, 2, 18, 3, 26}, w1{1, 2, 0.5f};
  const std::vector<float> t2{3, 12, 5, 30}, p2{2, 13, 6, 29};
  std::vector<float> sum(2), sq(2), res(2), cnt(2);
  auto add = [&](const std::vector<float> &t, const std::vector<float> &p, const std::vector<float> &w) {
    for (size_t i = 0; i < t.size(); ++i) {
      const float wi = w.empty() ? 1.0f : w[i / 2];
      sum[i % 2] += t[i] * wi;
      sq[i % 2] += t[i] * t[i] * wi;
      res[i % 2] += (t[i] - p[i]) * (t[i] - p[i]) * wi;
      cnt[i % 2] += wi;
    }
  };
  add(t1, p1, w1);
  add(t2, p2, {});
  std::vector<float> raw(2), total(2);
  for (int i = 0; i < 2; ++i) {
    total[i] = sq[i] - sum[i] * (sum[i] / cnt[i]);
    raw[i] = 1.0f - res[i] / total[i];
  }
  const float uniform = (raw[0] + raw[1]) / 2.0f;
  const float weighted = (total[0] * raw[0] + total[1] * raw[1]) / (total[0] + total[1]);
  const float n = 5.0f, k = 2.0f;
  const float adjusted = 1.0f - (1.0f - uniform) * (n - 1.0f) / (n - k - 1.0f);
  struct Case {
    const char *json;
    std::vector<float> want;
  };
  const Case cases[] = {
      {R"({})", {uniform}},
      {R"({"class_aggregation": "variance_weighted_average"})", {weighted}},
      {R"({"class_aggregation": null})", raw},
      {R"({"num_regressors": 2})", {adjusted}},
      {R"({"num_regressors": 4})", {uniform}},  // n - 1 regressors: Keras keeps the plain score
      {R"({"num_regressors": 9})", {uniform}},
  };
  for (const Case &c : cases) {
    MetricPtr r = metric("R2Score", c.json);
    r->update_state(make({3, 2}, t1), make({3, 2}, p1), make({3}, w1));
    r->update_state(make({2, 2}, t2), make({2, 2}, p2));
    const std::vector<float> got = values(r->result());
    ASSERT_EQ(got.size(), c.want.size()) << c.json;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], c.want[i], 2e-6f) << c.json;
  }
  // A zero-weight sample is no sample for the adjustment; y_true [N] meets y_pred [N, 1].
  MetricPtr adj = metric("R2Score", R"({"num_regressors": 1})");
  adj->update_state(make({4}, {1, 4, 3, 7}), make({4, 1}, {2, 4, 4, 1}), make({4}, {1, 1, 1, 0}));
  const float plain = 1.0f - 2.0f / (26.0f - 8.0f * 8.0f / 3.0f);
  EXPECT_NEAR(scalar_of(adj), 1.0f - (1.0f - plain) * 2.0f / 1.0f, 1e-5f);
  EXPECT_EQ(adj->variables().size(), 5u);
  EXPECT_EQ(adj->variables()[0]->name(), adj->name() + "/num_samples");
  adj->reset_state();
  EXPECT_TRUE(std::isnan(scalar_of(adj)));  // 0 / 0, as Keras's after a reset
}

TEST(R2Score, ConstantTargetsConfigAndBadInput) {
  MetricPtr m = metric("R2Score", R"({"class_aggregation": null})");
  // Output 0 constant with residuals: 1 - x / 0 is -inf, which Keras turns to 0; output 1 is exact.
  m->update_state(make({2, 2}, {3, 1, 3, 2}), make({2, 2}, {2, 1, 4, 2}));
  EXPECT_EQ(values(m->result()), (std::vector<float>{0.0f, 1.0f}));
  EXPECT_TRUE(m->get_config().is_null("class_aggregation"));
  EXPECT_EQ(create_metric("R2Score", m->get_config())->get_config().to_json(), m->get_config().to_json());
  expect_error(
      [&] {
        m->update_state(make({2, 3}, {1, 2, 3, 4, 5, 6}), make({2, 3}, {1, 2, 3, 4, 5, 6}));
      },
      Code::kInvalidArgument, {"3 outputs", "sums 2"});
  expect_error(
      [&] {
        m->update_state(make({3}, {1, 2, 3}), make({3}, {1, 2, 3}));
      },
      Code::kInvalidArgument, {"2-D inputs"});
  MetricPtr wide = metric("R2Score", R"({"class_aggregation": null})");
  wide->update_state(make({3, 1}, {1, 4, 3}), make({3, 2}, {2, 1, 4, 4, 4, 3}));
  const std::vector<float> w2 = values(wide->result());  // y_true broadcast over both outputs
  ASSERT_EQ(w2.size(), 2u);
  EXPECT_NEAR(w2[0], 0.57142854f, 1e-6);
  EXPECT_EQ(w2[1], 1.0f);
  expect_error([] { metric("R2Score", R"({"class_aggregation": "median"})"); }, Code::kInvalidArgument,
               {"class_aggregation is 'median'"});
  expect_error([] { metric("R2Score", R"({"num_regressors": -1})"); }, Code::kInvalidArgument,
               {"num_regressors is -1"});
}

TEST(CorrelationMetrics, KerasDocstringAndAxes) {
  const Tensor t = make({2, 3}, {0, 1, 0.5f, 1, 1, 0.2f}),
               p = make({2, 3}, {0.1f, 0.9f, 0.5f, 1, 0.9f, 0.2f});
  MetricPtr pearson = metric("PearsonCorrelation");
  pearson->update_state(t, p);
  EXPECT_NEAR(scalar_of(pearson), 0.9966996338993913, 2e-7);
  EXPECT_EQ(pearson->name(), "pearson_correlation");
  MetricPtr ccc = metric("ConcordanceCorrelation");
  ccc->update_state(t, p);
  EXPECT_NEAR(scalar_of(ccc), 0.9816320385426076, 1e-6);
  // Along axis 0: one coefficient per column, then their mean.
  MetricPtr col = metric("PearsonCorrelation", R"({"axis": 0})");
  col->update_state(make({3, 2}, {1, 2, 2, 4, 3, 7}), make({3, 2}, {2, 1, 4, 2, 6, 3}));
  const float r1 = 1.0f;  // column 0: exactly linear
  const double a[] = {2, 4, 7}, b[] = {1, 2, 3};
  double ma = 13.0 / 3, mb = 2, sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < 3; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  EXPECT_NEAR(scalar_of(col), (r1 + sab / std::sqrt(saa * sbb)) / 2, 1e-6);
  MetricPtr both = metric("PearsonCorrelation", R"({"axis": [0, 1]})");
  both->update_state(t, p);
  EXPECT_EQ(both->get_config().get_int_list("axis"), (std::vector<int64_t>{0, 1}));
  // axis null: every axis, one coefficient for the batch.
  MetricPtr all = metric("PearsonCorrelation", R"({"axis": null})");
  all->update_state(make({2, 3}, {1, 2, 3, 4, 5, 7}), make({2, 3}, {1, 2, 4, 4, 6, 7}));
  EXPECT_NEAR(scalar_of(all), 0.97440, 1e-5);
  EXPECT_TRUE(all->get_config().is_null("axis"));
  // A constant row has no correlation: 0 / 0.
  MetricPtr flat = metric("PearsonCorrelation");
  flat->update_state(make({1, 3}, {1, 1, 1}), make({1, 3}, {1, 2, 3}));
  EXPECT_TRUE(std::isnan(scalar_of(flat)));
  expect_error(
      [] {
        metric("PearsonCorrelation", R"({"axis": 2})")
            ->update_state(make({2, 2}, {1, 2, 3, 4}), make({2, 2}, {1, 2, 3, 4}));
      },
      Code::kInvalidArgument, {"axis 2", "out of range"});
  EXPECT_EQ(create_metric("concordance_correlation")->class_name(), "ConcordanceCorrelation");
}

TEST(NewMetrics, MonitorDirections) {
  for (const char *up : {"val_pearson_correlation", "concordance_correlation", "r2_score",
                         "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity",
                         "specificity_at_sensitivity", "true_positives", "val_true_negatives"})
    EXPECT_TRUE(MonitorRule("EarlyStopping", up, "auto", 0).maximize()) << up;
  for (const char *down : {"false_positives", "val_false_negatives"})
    EXPECT_FALSE(MonitorRule("EarlyStopping", down, "auto", 0).maximize()) << down;
}

}  // namespace
}  // namespace kiln::train
