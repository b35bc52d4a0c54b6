// Random ops: determinism (seeds, global sequence, thread count), moments,
// truncation bounds, dropout keep rate / scaling / gradient, the Philox stream, errors.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;
using testing::values;

struct Moments {
  double mean = 0, stddev = 0, min = 0, max = 0;
};

Moments moments(const Tensor &t) {
  std::vector<float> v = values(t);
  Moments m{0, 0, v[0], v[0]};
  for (float x : v) {
    m.mean += x;
    m.min = std::min<double>(m.min, x);
    m.max = std::max<double>(m.max, x);
  }
  m.mean /= static_cast<double>(v.size());
  for (float x : v) m.stddev += (x - m.mean) * (x - m.mean);
  m.stddev = std::sqrt(m.stddev / static_cast<double>(v.size()));
  return m;
}

// The three generators behind one signature, so every test runs on each.
struct Generator {
  std::string name;
  std::function<Tensor(const Shape &, int64_t seed)> draw;
};

std::vector<Generator> generators() {
  return {
      {"random_uniform", [](const Shape &s, int64_t seed) { return ops::random_uniform(s, -1, 2, seed); }},
      {"random_normal", [](const Shape &s, int64_t seed) { return ops::random_normal(s, 0.5f, 2, seed); }},
      {"truncated_normal",
       [](const Shape &s, int64_t seed) { return ops::truncated_normal(s, 0, 1, seed); }}};
}

// TF2: with an op seed, each call advances a counter of that (global seed, op seed), so successive
// calls differ, and the sequence repeats after set_seed.
TEST(RandomDeterminism, SeededCallsAdvanceAndRepeatAfterSetSeed) {
  for (const Generator &g : generators()) {
    set_global_seed(3);
    std::vector<float> a = values(g.draw({7, 13}, 42)), b = values(g.draw({7, 13}, 42));
    EXPECT_NE(a, b) << g.name << ": the second call with op seed 42";
    std::vector<float> other = values(g.draw({7, 13}, 43));
    EXPECT_NE(a, other) << g.name << ": another op seed";
    EXPECT_NE(b, other) << g.name << ": another op seed";
    set_global_seed(3);
    EXPECT_EQ(values(g.draw({7, 13}, 42)), a) << g.name << ": after set_seed, the first call again";
    EXPECT_EQ(values(g.draw({7, 13}, 43)), other) << g.name << ": op seeds count their calls apart";
    EXPECT_EQ(values(g.draw({7, 13}, 42)), b) << g.name << ": then the second";
    set_global_seed(4);
    EXPECT_NE(a, values(g.draw({7, 13}, 42))) << g.name << ": another global seed";
    // Element i uses counter i: a longer draw extends a shorter one.
    set_global_seed(3);
    std::vector<float> longer = values(g.draw({200}, 42));
    EXPECT_EQ(std::vector<float>(longer.begin(), longer.begin() + 91), a) << g.name;
  }
}

TEST(RandomDeterminism, GlobalSeedRepeatsTheUnseededSequence) {
  for (const Generator &g : generators()) {
    set_global_seed(11);
    std::vector<float> first = values(g.draw({50}, -1)), second = values(g.draw({50}, -1));
    EXPECT_NE(first, second) << g.name << ": consecutive unseeded calls";
    set_global_seed(11);
    EXPECT_EQ(values(g.draw({50}, -1)), first) << g.name;
    EXPECT_EQ(values(g.draw({50}, -1)), second) << g.name;
  }
}

TEST(RandomDeterminism, IndependentOfThreadCount) {
  const int before = num_threads();
  for (const Generator &g : generators()) {
    set_num_threads(1);
    set_global_seed(8);
    std::vector<float> one = values(g.draw({300, 301}, 5));
    set_num_threads(2);
    set_global_seed(8);
    EXPECT_EQ(values(g.draw({300, 301}, 5)), one) << g.name;
  }
  set_num_threads(before);
}

TEST(RandomMoments, UniformNormalTruncatedNormal) {
  const Shape n{100000};
  Moments u = moments(ops::random_uniform(n, -2.0f, 3.0f, 1));
  EXPECT_NEAR(u.mean, 0.5, 0.03);
  EXPECT_NEAR(u.stddev, 5.0 / std::sqrt(12.0), 0.02);
  EXPECT_GE(u.min, -2.0);
  EXPECT_LT(u.max, 3.0);
  EXPECT_LT(u.min, -1.99);
  EXPECT_GT(u.max, 2.99);

  Moments z = moments(ops::random_normal(n, 1.5f, 2.0f, 2));
  EXPECT_NEAR(z.mean, 1.5, 0.03);
  EXPECT_NEAR(z.stddev, 2.0, 0.03);
  EXPECT_LT(z.min, 1.5 - 4 * 2.0);  // the tails are really there

  // N(0, 1) cut at +-2 has stddev sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.87957.
  Moments t = moments(ops::truncated_normal(n, 3.0f, 0.5f, 3));
  EXPECT_NEAR(t.mean, 3.0, 0.01);
  EXPECT_NEAR(t.stddev, 0.5 * 0.87957, 0.01);
  EXPECT_GE(t.min, 2.0);
  EXPECT_LE(t.max, 4.0);
  EXPECT_LT(t.min, 2.01);
  EXPECT_GT(t.max, 3.99);
}

TEST(RandomMoments, DegenerateRanges) {
  EXPECT_EQ(values(ops::random_uniform({5}, 2, 2, 1)), std::vector<float>(5, 2.0f));
  EXPECT_EQ(values(ops::random_normal({5}, 3, 0, 1)), std::vector<float>(5, 3.0f));
  EXPECT_EQ(ops::random_normal({0, 4}, 0, 1, 1).shape(), Shape({0, 4}));
}

// ---------------- dropout ----------------

TEST(RandomDropout, KeepRateAndScaling) {
  for (float rate : {0.1f, 0.5f, 0.8f}) {
    Tensor x = testing::random_tensor({100000}, 7, 0.5f, 1.5f);
    set_global_seed(1);
    Tensor y = ops::dropout(x, rate, true, 9);
    std::vector<float> xv = values(x), yv = values(y);
    int64_t kept = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
      if (yv[i] == 0.0f) continue;
      ++kept;
      ASSERT_NEAR(yv[i], xv[i] / (1.0f - rate), 1e-5f) << "rate " << rate << " element " << i;
    }
    EXPECT_NEAR(static_cast<double>(kept) / 100000.0, 1.0 - rate, 0.01) << "rate " << rate;
    EXPECT_NE(values(ops::dropout(x, rate, true, 9)), yv) << "the next call with the seed: another mask";
    set_global_seed(1);
    EXPECT_EQ(values(ops::dropout(x, rate, true, 9)), yv) << "after set_seed: the same mask";
  }
}

TEST(RandomDropout, IdentityWhenNotTrainingOrRateZero) {
  Tensor x = testing::random_tensor({3, 5}, 1);
  EXPECT_EQ(values(ops::dropout(x, 0.5f, false, 1)), values(x));
  EXPECT_EQ(values(ops::dropout(x, 0.0f, true, 1)), values(x));
}

TEST(RandomDropout, GradientUsesTheForwardMaskEvenUnseeded) {
  set_global_seed(21);
  Tensor x = testing::random_tensor({40, 50}, 2, 0.5f, 1.5f);
  autodiff::Tape tape(false, false);
  tape.watch(x);
  Tensor y = ops::dropout(x, 0.4f, true);
  ops::random_uniform({10});  // advances the global sequence between forward and backward
  std::vector<Tensor> g = tape.gradient(y, {x}, autodiff::Unconnected::kNone);
  std::vector<float> yv = values(y), gv = values(g[0]);
  int64_t dropped = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    dropped += yv[i] == 0.0f;
    ASSERT_NEAR(gv[i], yv[i] == 0.0f ? 0.0f : 1.0f / 0.6f, 1e-5f) << "element " << i;
  }
  EXPECT_GT(dropped, 0);
}

TEST(RandomGradients, Table) {
  struct Case {
    std::string name;
    Shape shape;
    float rate;
  };
  std::vector<Case> cases = {
      {"dropout_3x5", {3, 5}, 0.5f}, {"dropout_7", {7}, 0.2f}, {"dropout_2x3x4", {2, 3, 4}, 0.7f}};
  unsigned seed = 30;
  for (const Case &c : cases) {
    // A stateless seed gives the same mask on every call of the check.
    testing::check_gradients(c.name,
                             [&](const std::vector<Tensor> &x) {
                               return ops::stateless_dropout(x[0], c.rate, {77, 1});
                             },
                             {testing::random_tensor(c.shape, seed++)});
  }
}

// ---------------- the stream itself ----------------

// Philox4x32-10's published known answers (Salmon et al., Random123's kat_vectors): kiln's block
// is the standard generator with counter (block lo, block hi, stream lo, stream hi) and key (seed lo,
// seed hi), as TF's.
TEST(RandomPhilox, KnownAnswers) {
  using Words = std::array<uint32_t, 4>;
  EXPECT_EQ(Philox(0, 0).block(0), (Words{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(Philox(~uint64_t{0}, ~uint64_t{0}).block(~uint64_t{0}),
            (Words{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(Philox(0x299f31d0a4093822ull, 0x0370734413198a2eull).block(0x85a308d3243f6a88ull),
            (Words{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

// The ops give the scalar definition (element i: word i % 4 of block i / 4) at sizes on both sides
// of the vector widths and of the parallel threshold, and dropout keeps exactly the elements whose
// uniform draw of the same seed is >= rate.
TEST(RandomPhilox, UniformOpAndDropoutMaskFollowTheScalarStream) {
  const int before = num_threads();
  for (int threads : {1, 2})
    for (const Shape &shape : {Shape{1}, Shape{3}, Shape{17}, Shape{37, 41}, Shape{300, 301}}) {
      set_num_threads(threads);
      const Philox gen(11, 12);
      std::vector<float> u = values(ops::stateless_random_uniform(shape, {11, 12}, 0, 1));
      std::vector<float> scaled = values(ops::stateless_random_uniform(shape, {11, 12}, -3, 5));
      Tensor x = testing::random_tensor(shape, 4, 0.5f, 1.5f);
      std::vector<float> xv = values(x), y = values(ops::stateless_dropout(x, 0.3f, {11, 12}));
      for (size_t i = 0; i < u.size(); ++i) {
        ASSERT_EQ(u[i], gen.uniform(i)) << shape.to_string() << " element " << i;
        ASSERT_EQ(scaled[i], -3.0f + 8.0f * gen.uniform(i)) << shape.to_string() << " element " << i;
        ASSERT_EQ(y[i], u[i] >= 0.3f ? xv[i] * (1.0f / 0.7f) : 0.0f) << shape.to_string() << " element " << i;
      }
    }
  set_num_threads(before);
}

// tf.random.uniform's other dtypes follow the documented word mapping of the scalar stream at every
// size and thread count: int32 and bfloat16 word i % 4 of block i / 4, int64 and float64 words
// 2 (i % 2) and 2 (i % 2) + 1 of block i / 2.
TEST(RandomPhilox, UniformDtypesFollowTheScalarStream) {
  const int before = num_threads();
  for (int threads : {1, 2})
    for (const Shape &shape : {Shape{1}, Shape{5}, Shape{300, 301}}) {
      set_num_threads(threads);
      const Philox gen(3, 4);
      const ops::SeedPair seed{3, 4};
      const Tensor i32 = ops::stateless_random_uniform_int(shape, seed, DType::kInt32, -7, 1000);
      const Tensor i64 = ops::stateless_random_uniform_int(shape, seed, DType::kInt64, INT64_MIN, 5);
      const Tensor f64 = ops::stateless_random_uniform_float(shape, seed, DType::kFloat64, -1, 3);
      const Tensor bf = ops::stateless_random_uniform_float(shape, seed, DType::kBFloat16, 2, 4);
      for (int64_t i = 0; i < shape.num_elements(); ++i) {
        const uint64_t k = static_cast<uint64_t>(i);
        const uint32_t w = gen.block(k >> 2)[k & 3];
        const std::array<uint32_t, 4> b = gen.block(k >> 1);
        const uint64_t bits = uint64_t{b[2 * (k & 1)]} << 32 | b[2 * (k & 1) + 1];
        ASSERT_EQ(i32.data<int32_t>()[i], -7 + static_cast<int32_t>(w % 1007)) << i;
        ASSERT_EQ(i64.data<int64_t>()[i],
                  static_cast<int64_t>(static_cast<uint64_t>(INT64_MIN) + bits % (uint64_t{1} << 63 | 5)))
            << i;
        ASSERT_EQ(f64.data<double>()[i], -1.0 + 4.0 * (static_cast<double>(bits >> 11) * 0x1p-53)) << i;
        ASSERT_EQ(bf.data<bfloat16>()[i].bits,
                  bfloat16(2.0f + 2.0f * static_cast<float>(w >> 24) / 256.0f).bits)
            << i;
      }
    }
  set_num_threads(before);
}

// The backward pass draws the forward mask again: a dropped element's gradient is 0 even where the
// incoming gradient is inf or NaN (as TF's where-based dropout), and the rule is itself recorded,
// so an outer tape differentiates through it.
TEST(RandomDropout, GradientRedrawsTheMaskAndNests) {
  Tensor x = testing::random_tensor({33, 7}, 3, 0.5f, 1.5f);
  std::vector<float> upstream(33 * 7);
  for (size_t i = 0; i < upstream.size(); ++i)
    upstream[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? -INFINITY : static_cast<float>(i) - 100.0f;
  Tensor w = testing::make({33, 7}, upstream);
  autodiff::Tape outer(true, false);
  outer.watch(w);
  Tensor y, dx;
  {
    autodiff::Tape inner(false, false);
    inner.watch(x);
    set_global_seed(5);
    y = ops::dropout(x, 0.5f, true);
    dx = inner.gradient(y, {x}, autodiff::Unconnected::kNone, w)[0];
  }
  std::vector<float> yv = values(y), gv = values(dx);
  for (size_t i = 0; i < yv.size(); ++i) {
    if (yv[i] == 0.0f) {
      ASSERT_EQ(gv[i], 0.0f) << "dropped element " << i << " (upstream " << upstream[i] << ")";
      ASSERT_FALSE(std::signbit(gv[i])) << i;
    } else if (std::isnan(upstream[i])) {
      ASSERT_TRUE(std::isnan(gv[i])) << "kept element " << i;
    } else {
      ASSERT_EQ(gv[i], upstream[i] * 2.0f) << "kept element " << i;
    }
  }
  std::vector<float> mask = values(outer.gradient(dx, {w}, autodiff::Unconnected::kNone)[0]);
  for (size_t i = 0; i < yv.size(); ++i) ASSERT_EQ(mask[i], yv[i] == 0.0f ? 0.0f : 2.0f) << "element " << i;
}

// ---------------- errors ----------------

TEST(RandomErrors, EveryOpNamesItselfAndTheArgument) {
  const Code kBad = Code::kInvalidArgument;
  const float nan = std::nanf("");
  expect_error([] { ops::random_uniform({2}, 3, 1); }, kBad,
               {"random_uniform", "minval 3", "maxval 1", "[2]"});
  expect_error([&] { ops::random_uniform({2}, nan, 1); }, kBad, {"random_uniform", "minval", "finite"});
  expect_error([] { ops::random_uniform({2}, 0, INFINITY); }, kBad, {"random_uniform", "maxval", "finite"});
  expect_error([] { ops::random_normal({2, 3}, 0, -1); }, kBad, {"random_normal", "stddev is -1", "[2, 3]"});
  expect_error([&] { ops::random_normal({2}, nan, 1); }, kBad, {"random_normal", "mean", "finite"});
  expect_error([] { ops::truncated_normal({4}, 0, -2); }, kBad, {"truncated_normal", "stddev is -2", "[4]"});
  expect_error([&] { ops::truncated_normal({4}, 0, nan); }, kBad, {"truncated_normal", "stddev", "finite"});
  Tensor x = testing::random_tensor({2, 3}, 1);
  expect_error([&] { ops::dropout(x, 1.0f, true); }, kBad,
               {"dropout", "rate is 1", "float32[2, 3]", "[0, 1)"});
  expect_error([&] { ops::dropout(x, -0.1f, false); }, kBad, {"dropout", "rate is -0.1", "[0, 1)"});
  expect_error([&] { ops::dropout(x, nan, true); }, kBad, {"dropout", "rate is nan"});
  Tensor i = testing::make_typed<int32_t>({2}, {1, 2});
  expect_error([&] { ops::dropout(i, 0.5f, true); }, kBad, {"dropout", "int32[2]", "float32"});
  expect_error([] { ops::dropout(Tensor(), 0.5f, true); }, kBad, {"dropout", "undefined"});
}

}  // namespace
}  // namespace kiln
