// Stateless random ops (an explicit seed pair, as TF's tf.random.stateless_*) and dropout's
// noise_shape.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "autodiff/tape.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::SeedPair;
using testing::expect_error;
using testing::values;

struct Stateless {
  std::string name;
  std::function<Tensor(const Shape &, SeedPair)> draw;
};

std::vector<Stateless> stateless_ops() {
  Tensor x = testing::random_tensor({64, 33}, 5, 0.5f, 1.5f);
  return {
      {"stateless_random_uniform",
       [](const Shape &s, SeedPair p) { return ops::stateless_random_uniform(s, p, -1, 2); }},
      {"stateless_random_normal",
       [](const Shape &s, SeedPair p) { return ops::stateless_random_normal(s, p, 0.5f, 2); }},
      {"stateless_truncated_normal",
       [](const Shape &s, SeedPair p) { return ops::stateless_truncated_normal(s, p); }},
      {"stateless_dropout", [x](const Shape &, SeedPair p) { return ops::stateless_dropout(x, 0.5f, p); }}};
}

TEST(RandomStateless, SameSeedSameValuesWhateverHappensBetween) {
  for (const Stateless &g : stateless_ops()) {
    set_global_seed(1);
    std::vector<float> a = values(g.draw({64, 33}, {1, 2}));
    EXPECT_EQ(values(g.draw({64, 33}, {1, 2})), a) << g.name << ": the same seed again";
    ops::random_uniform({10}, 0, 1, 7);  // stateful calls in between change nothing
    ops::random_uniform({10});
    set_global_seed(99);
    EXPECT_EQ(values(g.draw({64, 33}, {1, 2})), a) << g.name << ": another global seed";
    EXPECT_NE(values(g.draw({64, 33}, {1, 3})), a) << g.name << ": seed [1, 3]";
    EXPECT_NE(values(g.draw({64, 33}, {2, 2})), a) << g.name << ": seed [2, 2]";
  }
}

TEST(RandomStateless, SameResultOnEveryThread) {
  for (const Stateless &g : stateless_ops()) {
    const std::vector<float> want = values(g.draw({300, 301}, {-5, 1LL << 40}));
    std::vector<std::vector<float>> got(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t)
      threads.emplace_back([&, t] {
        for (int rep = 0; rep < 3; ++rep) got[t] = values(g.draw({300, 301}, {-5, 1LL << 40}));
      });
    for (auto &t : threads) t.join();
    for (size_t t = 0; t < got.size(); ++t) EXPECT_EQ(got[t], want) << g.name << " on thread " << t;
  }
}

TEST(RandomStateless, Errors) {
  const Code kBad = Code::kInvalidArgument;
  expect_error(
      [] {
        ops::stateless_random_uniform({2}, {1, 2}, 3, 1);
      },
      kBad, {"stateless_random_uniform", "minval 3", "maxval 1"});
  expect_error(
      [] {
        ops::stateless_random_normal({2}, {1, 2}, 0, -1);
      },
      kBad, {"stateless_random_normal", "stddev is -1"});
  expect_error(
      [] {
        ops::stateless_truncated_normal({2}, {1, 2}, 0, -1);
      },
      kBad, {"stateless_truncated_normal", "stddev is -1"});
  Tensor x = testing::random_tensor({2, 3}, 1);
  expect_error([&] { ops::stateless_dropout(x, 1.0f, {1, 2}); }, kBad, {"stateless_dropout", "rate is 1"});
  EXPECT_EQ(values(ops::stateless_dropout(x, 0.0f, {1, 2})), values(x));
}

// ---------------- dropout's noise_shape ----------------

TEST(RandomDropoutNoiseShape, MaskIsDrawnInNoiseShapeAndBroadcast) {
  Tensor x = testing::random_tensor({40, 6}, 3, 0.5f, 1.5f);
  for (const std::vector<int64_t> &noise : {std::vector<int64_t>{40, 1}, std::vector<int64_t>{-1, 1}}) {
    std::vector<float> xv = values(x), yv = values(ops::dropout(x, 0.5f, true, 4, noise));
    int kept_rows = 0;
    for (int r = 0; r < 40; ++r) {
      const bool kept = yv[r * 6] != 0.0f;
      kept_rows += kept;
      for (int c = 0; c < 6; ++c)
        ASSERT_FLOAT_EQ(yv[r * 6 + c], kept ? xv[r * 6 + c] * 2.0f : 0.0f) << "row " << r << " col " << c;
    }
    EXPECT_GT(kept_rows, 5);
    EXPECT_LT(kept_rows, 35);
  }
  // Columns: noise [1, 6].
  std::vector<float> yv = values(ops::stateless_dropout(x, 0.5f, {3, 4}, {1, 6}));
  for (int r = 1; r < 40; ++r)
    for (int c = 0; c < 6; ++c)
      ASSERT_EQ(yv[r * 6 + c] == 0.0f, yv[c] == 0.0f) << "row " << r << " col " << c;
  // A noise shape equal to x's is the plain dropout (same draws).
  EXPECT_EQ(values(ops::stateless_dropout(x, 0.3f, {3, 4}, {40, 6})),
            values(ops::stateless_dropout(x, 0.3f, {3, 4})));
  EXPECT_EQ(values(ops::stateless_dropout(x, 0.3f, {3, 4}, {-1, -1})),
            values(ops::stateless_dropout(x, 0.3f, {3, 4})));
  // Not training: x itself.
  EXPECT_EQ(values(ops::dropout(x, 0.5f, false, 4, {40, 1})), values(x));
}

TEST(RandomDropoutNoiseShape, Gradient) {
  testing::check_gradients("stateless_dropout_noise_3x1x4",
                           [](const std::vector<Tensor> &x) {
                             return ops::stateless_dropout(x[0], 0.5f, {5, 6}, {3, 1, 4});
                           },
                           {testing::random_tensor({3, 5, 4}, 8)});
  // The stateful form's gradient is the mask of its own forward pass.
  Tensor x = testing::random_tensor({30, 4}, 9, 0.5f, 1.5f);
  autodiff::Tape tape(false, false);
  tape.watch(x);
  Tensor y = ops::dropout(x, 0.25f, true, -1, {30, 1});
  std::vector<float> g = values(tape.gradient(y, {x}, autodiff::Unconnected::kNone)[0]), yv = values(y);
  for (size_t i = 0; i < yv.size(); ++i) ASSERT_FLOAT_EQ(g[i], yv[i] == 0.0f ? 0.0f : 1.0f / 0.75f) << i;
}

TEST(RandomDropoutNoiseShape, Errors) {
  const Code kBad = Code::kInvalidArgument;
  Tensor x = testing::random_tensor({4, 6}, 1);
  expect_error([&] { ops::dropout(x, 0.5f, true, 1, {4}); }, kBad, {"dropout", "noise_shape [4]", "rank 2"});
  expect_error(
      [&] {
        ops::dropout(x, 0.5f, true, 1, {4, 3});
      },
      kBad, {"dropout", "noise_shape [4, 3]", "does not broadcast", "float32[4, 6]", "dim 1"});
  expect_error([&] { ops::dropout(x, 0.5f, false, 1, {2, 6}); }, kBad, {"dropout", "dim 0"});
  expect_error(
      [&] {
        ops::stateless_dropout(x, 0.5f, {1, 2}, {4, 6, 1});
      },
      kBad, {"stateless_dropout", "rank"});
}

}  // namespace
}  // namespace kiln
