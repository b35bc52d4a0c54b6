// argmin, reduce_prod/any/all/logsumexp, moments, l2_normalize, bias_add, cumsum and top_k against
// double-precision reference loops (on both sides of the parallel threshold), their errors, and
// finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "core/threads.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace testing;  // NOLINT

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(ReduceExtra, ArgminMatchesReferenceAndTies) {
  Tensor x = make({2, 3}, {3, 1, 1, -2, 5, -2});
  EXPECT_EQ(values<int64_t>(ops::argmin(x, -1)), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(values<int64_t>(ops::argmin(x, 0)), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(values<int64_t>(ops::argmin(make_typed<int64_t>({3}, {INT64_MAX, INT64_MIN, 0}), 0)),
            (std::vector<int64_t>{1}));
  Tensor big = random_tensor({300, 200}, 3);  // above the parallel threshold
  std::vector<float> v = values(big);
  std::vector<int64_t> got = values<int64_t>(ops::argmin(big, 1));
  for (int r = 0; r < 300; ++r)
    ASSERT_EQ(got[size_t(r)],
              std::min_element(v.begin() + r * 200, v.begin() + (r + 1) * 200) - (v.begin() + r * 200));
  expect_error(
      [&] {
        ops::argmin(make({2, 0}, {}), 1);
      },
      Code::kInvalidArgument, {"argmin: axis 1", "is empty"});
  expect_error(
      [&] {
        ops::argmin(make_bool({2}, {1, 0}), 0);
      },
      Code::kInvalidArgument, {"argmin: argument 'x' is bool[2]"});
}

TEST(ReduceExtra, ProdAnyAll) {
  Tensor x = make({2, 3, 2}, {1, 2, 3, 4, 5, 6, -1, 0.5f, 2, 2, 0, 3});
  expect_near(ops::reduce_prod(x, {1}), {15, 48, -0.0f, 3});
  expect_near(ops::reduce_prod(x, {0, 2}, true), {-1, 48, 0});
  expect_near(ops::reduce_prod(x), {0});
  EXPECT_EQ(ops::reduce_prod(x, {1}, true).shape(), Shape({2, 1, 2}));
  expect_near(ops::reduce_prod(make({2, 0}, {}), {1}), {1, 1});
  EXPECT_EQ(values<int32_t>(ops::reduce_prod(make_typed<int32_t>({2, 2}, {3, -4, 65536, 65536}), {1})),
            (std::vector<int32_t>{-12, 0}));  // wraps, as TF's int32
  // Large: product of values near 1 over the parallel path equals a double reference.
  Tensor big = random_tensor({64, 1024}, 4, 0.999f, 1.001f);
  std::vector<float> bv = values(big);
  Tensor bp = ops::reduce_prod(big, {1});
  for (int r = 0; r < 64; ++r) {
    double p = 1;
    for (int j = 0; j < 1024; ++j) p *= bv[size_t(r * 1024 + j)];
    EXPECT_NEAR(bp.data<float>()[r], p, 1e-6 * p);
  }
  Tensor b = make_bool({2, 3}, {1, 0, 1, 1, 1, 1});
  EXPECT_EQ(values<uint8_t>(ops::reduce_any(b, {1})), (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(values<uint8_t>(ops::reduce_all(b, {1})), (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(values<uint8_t>(ops::reduce_all(b, {0})), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(values<uint8_t>(ops::reduce_any(make_bool({2, 0}, {}), {1})), (std::vector<uint8_t>{0, 0}));
  EXPECT_EQ(values<uint8_t>(ops::reduce_all(make_bool({2, 0}, {}), {1})), (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(ops::reduce_any(b).shape(), Shape({}));
  expect_error([&] { ops::reduce_any(x); }, Code::kInvalidArgument,
               {"reduce_any: argument 'x' is float32", "bool"});
  expect_error([&] { ops::reduce_prod(b); }, Code::kInvalidArgument, {"reduce_prod: argument 'x' is bool"});
  expect_error(
      [&] {
        ops::reduce_prod(x, {1, -2});
      },
      Code::kInvalidArgument, {"reduce_prod: axes [1, -2]", "more than once"});
  expect_error([&] { ops::reduce_all(b, {2}); }, Code::kInvalidArgument, {"reduce_all", "axis 2"});
}

TEST(ReduceExtra, LogSumExpIsStable) {
  Tensor x = make({4, 3}, {1000, 1000, -1000, -kInf, -kInf, -kInf, 0.5f, -1, 2, -kInf, 3, kInf});
  Tensor r = ops::reduce_logsumexp(x, {1});
  EXPECT_NEAR(r.data<float>()[0], 1000 + std::log(2.0), 1e-3);
  EXPECT_EQ(r.data<float>()[1], -kInf);  // a row of -inf gives -inf, not NaN (TF)
  EXPECT_NEAR(r.data<float>()[2], std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0)), 1e-6);
  EXPECT_EQ(r.data<float>()[3], kInf);
  EXPECT_EQ(ops::reduce_logsumexp(x, {0}, true).shape(), Shape({1, 3}));
  expect_error([&] { ops::reduce_logsumexp(make_typed<int32_t>({1}, {1})); }, Code::kInvalidArgument,
               {"reduce_logsumexp: argument 'x' is int32[1]", "float32"});
}

TEST(ReduceExtra, MomentsL2NormalizeBiasAdd) {
  Tensor x = random_tensor({3, 4, 5}, 6, -3, 3);
  std::vector<float> xv = values(x);
  ops::MomentsResult m = ops::moments(x, {0, 2});
  ASSERT_EQ(m.mean.shape(), Shape({4}));
  for (int j = 0; j < 4; ++j) {
    double s = 0, s2 = 0;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) s += xv[size_t(i * 20 + j * 5 + k)];
    const double mean = s / 15;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) s2 += std::pow(xv[size_t(i * 20 + j * 5 + k)] - mean, 2);
    EXPECT_NEAR(m.mean.data<float>()[j], mean, 1e-5);
    EXPECT_NEAR(m.variance.data<float>()[j], s2 / 15, 1e-5);
  }
  EXPECT_EQ(ops::moments(x, {1}, true).variance.shape(), Shape({3, 1, 5}));
  Tensor n = ops::l2_normalize(make({2, 2}, {3, 4, 0, 0}), {1});
  expect_near(n, {0.6f, 0.8f, 0, 0});
  expect_near(ops::l2_normalize(make({2}, {1e-7f, 0}), {}, 1e-12f), {0.1f, 0}, 1e-5f);  // epsilon floor
  expect_near(ops::l2_normalize(make({2, 2}, {3, 0, 4, 0})), {0.6f, 0, 0.8f, 0});       // all axes
  expect_error([&] { ops::l2_normalize(x, {}, -1.0f); }, Code::kInvalidArgument,
               {"l2_normalize: epsilon is -1"});
  Tensor v = make({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_near(ops::bias_add(v, make({3}, {10, 20, 30})), {11, 22, 33, 14, 25, 36});
  expect_error(
      [&] {
        ops::bias_add(v, make({2}, {1, 2}));
      },
      Code::kInvalidArgument,
      {"bias_add: value float32[2, 3] and bias float32[2] do not match", "shape [3]"});
  expect_error(
      [&] {
        ops::bias_add(make({3}, {1, 2, 3}), make({3}, {1, 2, 3}));
      },
      Code::kInvalidArgument, {"bias_add", "rank >= 2"});
}

std::vector<double> ref_cumsum(const std::vector<float> &x, int64_t outer, int64_t n, int64_t inner,
                               bool exclusive, bool reverse) {
  std::vector<double> out(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double acc = 0;
      for (int64_t s = 0; s < n; ++s) {
        int64_t k = reverse ? n - 1 - s : s;
        size_t at = size_t((o * n + k) * inner + i);
        if (exclusive) {
          out[at] = acc;
          acc += x[at];
        } else {
          acc += x[at];
          out[at] = acc;
        }
      }
    }
  return out;
}

TEST(Scan, CumsumMatchesReference) {
  for (Shape s : {Shape{7}, Shape{3, 4, 5}, Shape{40, 30, 40}})
    for (int axis = 0; axis < s.rank(); ++axis)
      for (bool exclusive : {false, true})
        for (bool reverse : {false, true}) {
          Tensor x = random_tensor(s, 7 + unsigned(axis));
          int64_t outer = 1, inner = 1;
          for (int i = 0; i < axis; ++i) outer *= s[i];
          for (int i = axis + 1; i < s.rank(); ++i) inner *= s[i];
          auto want = ref_cumsum(values(x), outer, s[axis], inner, exclusive, reverse);
          Tensor got = ops::cumsum(x, axis - s.rank(), exclusive, reverse);
          ASSERT_EQ(got.shape(), s);
          for (size_t i = 0; i < want.size(); i += 7)
            ASSERT_NEAR(got.data<float>()[i], want[i], 1e-4) << s.to_string() << " axis " << axis << " " << i;
        }
  EXPECT_EQ(values<int64_t>(ops::cumsum(make_typed<int64_t>({3}, {1, 2, 3}), 0, true, true)),
            (std::vector<int64_t>{5, 3, 0}));
  EXPECT_EQ(values<int32_t>(ops::cumsum(make_typed<int32_t>({2, 2}, {1, 2, 3, 4}), 1)),
            (std::vector<int32_t>{1, 3, 3, 7}));
  expect_error([&] { ops::cumsum(make({2}, {1, 2}), 1); }, Code::kInvalidArgument, {"cumsum", "axis 1"});
  expect_error(
      [&] {
        ops::cumsum(make_bool({2}, {1, 0}));
      },
      Code::kInvalidArgument, {"cumsum: argument 'x' is bool"});
}

TEST(Scan, TopKMatchesReferenceWithTies) {
  Tensor x = make({2, 5}, {1, 3, 3, -1, 2, 5, 5, 5, 0, 7});
  ops::TopKResult r = ops::top_k(x, 3);
  ASSERT_EQ(r.values.shape(), Shape({2, 3}));
  expect_near(r.values, {3, 3, 2, 7, 5, 5});
  EXPECT_EQ(values<int32_t>(r.indices), (std::vector<int32_t>{1, 2, 4, 4, 0, 1}));
  ops::TopKResult nan = ops::top_k(make({3}, {1, NAN, 2}), 2);
  EXPECT_TRUE(std::isnan(nan.values.data<float>()[0]));
  EXPECT_EQ(values<int32_t>(nan.indices), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(ops::top_k(x, 0).values.shape(), Shape({2, 0}));
  EXPECT_EQ(values<int64_t>(ops::top_k(make_typed<int64_t>({3}, {4, 9, 4}), 2).values),
            (std::vector<int64_t>{9, 4}));
  Tensor big = random_tensor({200, 300}, 8);  // parallel path
  std::vector<float> bv = values(big);
  ops::TopKResult br = ops::top_k(big, 5);
  for (int row = 0; row < 200; ++row) {
    std::vector<float> sorted(bv.begin() + row * 300, bv.begin() + (row + 1) * 300);
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    for (int j = 0; j < 5; ++j) {
      ASSERT_EQ(br.values.data<float>()[row * 5 + j], sorted[size_t(j)]);
      ASSERT_EQ(bv[size_t(row * 300 + br.indices.data<int32_t>()[row * 5 + j])], sorted[size_t(j)]);
    }
  }
  expect_error([&] { ops::top_k(x, 6); }, Code::kInvalidArgument,
               {"top_k: k is 6 for float32[2, 5]", "k <= 5"});
  expect_error([&] { ops::top_k(make({}, {1}), 1); }, Code::kInvalidArgument, {"top_k", "rank >= 1"});
}

TEST(ReduceExtra, GradientsMatchCentralDifferences) {
  check_gradient_table(
      {
          {"reduce_prod axis 1",
           {{3, 4}},
           [](const std::vector<Tensor> &v) { return ops::reduce_prod(v[0], {1}); }},
          {"reduce_prod all keepdims",
           {{2, 3}},
           [](const std::vector<Tensor> &v) { return ops::reduce_prod(v[0], {}, true); }},
          {"reduce_prod axes 0 2",
           {{2, 3, 2}},
           [](const std::vector<Tensor> &v) {
             return ops::reduce_prod(v[0], {0, 2});
           }},
          {"reduce_logsumexp",
           {{3, 4}},
           [](const std::vector<Tensor> &v) { return ops::reduce_logsumexp(v[0], {1}); }},
          {"reduce_logsumexp all",
           {{2, 3}},
           [](const std::vector<Tensor> &v) { return ops::reduce_logsumexp(v[0]); }},
          {"moments mean",
           {{3, 4}},
           [](const std::vector<Tensor> &v) { return ops::moments(v[0], {0}).mean; }},
          {"moments variance",
           {{3, 4}},
           [](const std::vector<Tensor> &v) {
             return ops::moments(v[0], {0, 1}, true).variance;
           }},
          {"l2_normalize",
           {{3, 4}},
           [](const std::vector<Tensor> &v) { return ops::l2_normalize(v[0], {1}); }},
          {"bias_add",
           {{2, 3, 4}, {4}},
           [](const std::vector<Tensor> &v) { return ops::bias_add(v[0], v[1]); }},
          {"cumsum", {{3, 4}}, [](const std::vector<Tensor> &v) { return ops::cumsum(v[0], 1); }},
          {"cumsum exclusive reverse",
           {{3, 4}},
           [](const std::vector<Tensor> &v) { return ops::cumsum(v[0], 0, true, true); }},
          {"top_k", {{3, 6}}, [](const std::vector<Tensor> &v) { return ops::top_k(v[0], 3).values; }},
          {"cumprod", {{3, 4}}, [](const std::vector<Tensor> &v) { return ops::cumprod(v[0], 1); }},
          {"cumprod exclusive reverse",
           {{3, 4}},
           [](const std::vector<Tensor> &v) { return ops::cumprod(v[0], 0, true, true); }},
      },
      500);
  // reduce_prod's gradient at zeros: one zero gets the product of the others, two zeros give 0.
  Tensor x = make({2, 3}, {2, 0, 3, 0, 0, 5});
  autodiff::Tape tape(false, true);
  tape.watch(x);
  Tensor y = ops::reduce_prod(x, {1});
  tape.stop_recording();
  expect_near(tape.gradient(y, {x}, autodiff::Unconnected::kZero)[0], {0, 6, 0, 0, 0, 0});
}

// TF's reduce_prod gradient (the product of the others, from exclusive cumprods): a NaN or an
// infinity reaches only the others' products it is in, and a zero beside an overflowing product
// gives 0 to the others, as TF gives, not NaN everywhere.
TEST(ReduceExtra, ProdGradientWithSpecialValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  auto grad = [](const Tensor &x, std::vector<int64_t> axes) {
    autodiff::Tape tape(false, true);
    tape.watch(x);
    Tensor y = ops::reduce_prod(x, axes);
    tape.stop_recording();
    return values(tape.gradient(y, {x}, autodiff::Unconnected::kZero)[0]);
  };
  auto same = [](const std::vector<float> &got, const std::vector<float> &want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      if (std::isnan(want[i]))
        EXPECT_TRUE(std::isnan(got[i])) << i;
      else
        EXPECT_EQ(got[i], want[i]) << i;
  };
  same(grad(make({3}, {nan, 2, 3}), {}), {6, nan, nan});
  same(grad(make({3}, {1e30f, 1e30f, 0}), {}), {0, 0, inf});
  same(grad(make({3}, {inf, 2, 0}), {}), {0, nan, inf});
  // kept axes after reduced ones: the rows are a transpose, and the gradient goes back
  same(grad(make({3, 2}, {nan, 1, 2, 4, 3, 0}), {0}), {6, 0, nan, 0, nan, 4});
  // second order: d2/dx0dx1 of x0*x1*x2 is x2
  Tensor x = make({3}, {2, 3, 5});
  autodiff::Tape outer(false, true);
  outer.watch(x);
  autodiff::Tape inner(false, true);
  inner.watch(x);
  Tensor y = ops::reduce_prod(x);
  inner.stop_recording();
  Tensor g = inner.gradient(y, {x}, autodiff::Unconnected::kZero)[0];  // {15, 10, 6}
  Tensor g0 = ops::sum(ops::mul(g, make({3}, {1, 0, 0})));             // x1 * x2
  outer.stop_recording();
  expect_near(outer.gradient(g0, {x}, autodiff::Unconnected::kZero)[0], {0, 5, 3});
}

TEST(Scan, CumprodAsTF) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_near(ops::cumprod(x, 1), {1, 2, 6, 4, 20, 120});
  expect_near(ops::cumprod(x, 1, true), {1, 1, 2, 1, 4, 20});
  expect_near(ops::cumprod(x, 1, false, true), {6, 6, 3, 120, 30, 6});
  expect_near(ops::cumprod(x, -1, true, true), {6, 3, 1, 30, 6, 1});
  expect_near(ops::cumprod(x, 0), {1, 2, 3, 4, 10, 18});
  EXPECT_EQ(values<int64_t>(ops::cumprod(make_typed<int64_t>({3}, {2, 3, 4}), 0, true)),
            (std::vector<int64_t>{1, 2, 6}));
  // TF's gradient divides by x and gives 0 at x = 0 (div_no_nan)
  Tensor z = make({3}, {2, 0, 3});
  autodiff::Tape tape(false, true);
  tape.watch(z);
  Tensor y = ops::sum(ops::cumprod(z, 0));
  tape.stop_recording();
  expect_near(tape.gradient(y, {z}, autodiff::Unconnected::kZero)[0], {1, 0, 0});
  expect_error([&] { ops::cumprod(make({}, {1})); }, Code::kInvalidArgument, {"cumprod", "rank >= 1"});
  expect_error(
      [&] {
        ops::cumprod(make_bool({2}, {1, 0}));
      },
      Code::kInvalidArgument, {"cumprod: argument 'x' is bool"});
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Rows are independent, so one thread and several give the same bits.
TEST(ReduceExtra, SameBitsAtAnyThreadCount) {
  using testing::random_tensor;
  Tensor x = random_tensor({400, 300}, 31, -20, 20), z = random_tensor({400, 300}, 32, 0, 1);
  std::vector<int32_t> lv(400);
  for (size_t i = 0; i < lv.size(); ++i) lv[i] = int32_t(i % 300);
  Tensor labels = testing::make_typed<int32_t>({400}, lv);
  auto run = [&] {
    return std::vector<Tensor>{ops::sparse_softmax_cross_entropy_with_logits(labels, x),
                               ops::softmax_cross_entropy_with_logits(z, x),
                               ops::sigmoid_cross_entropy_with_logits(z, x),
                               ops::cumsum(x, 0),
                               ops::cumprod(z, 1),
                               ops::top_k(x, 7).values,
                               ops::reduce_prod(z, {1}),
                               ops::argmin(x, 0),
                               ops::floormod(x, z)};
  };
  const int saved = num_threads();
  set_num_threads(1);
  std::vector<Tensor> one = run();
  set_num_threads(std::max(2, saved));
  std::vector<Tensor> many = run();
  set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i].byte_size(), many[i].byte_size());
    EXPECT_EQ(std::memcmp(one[i].raw_data(), many[i].raw_data(), one[i].byte_size()), 0) << "result " << i;
  }
}

}  // namespace
}  // namespace kiln
