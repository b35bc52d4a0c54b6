// floordiv / floormod against Python's // and % (floor toward -inf, remainder with the divisor's
// sign), integer edge cases, division by zero, broadcasting, the parallel path and gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace testing;  // NOLINT

int64_t py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

TEST(FloorDiv, IntegersFollowPython) {
  std::vector<int32_t> a, b;
  for (int32_t x = -7; x <= 7; ++x)
    for (int32_t y : {-3, -2, -1, 1, 2, 3, 5}) a.push_back(x), b.push_back(y);
  const int64_t n = int64_t(a.size());
  std::vector<int32_t> q =
      values<int32_t>(ops::floordiv(make_typed<int32_t>({n}, a), make_typed<int32_t>({n}, b)));
  std::vector<int32_t> r =
      values<int32_t>(ops::floormod(make_typed<int32_t>({n}, a), make_typed<int32_t>({n}, b)));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(q[i], py_floordiv(a[i], b[i])) << a[i] << " // " << b[i];
    EXPECT_EQ(r[i], a[i] - py_floordiv(a[i], b[i]) * b[i]) << a[i] << " % " << b[i];
  }
  // The minimum divided by -1 wraps (no undefined overflow); its remainder is 0.
  const int64_t lo = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(
      values<int64_t>(ops::floordiv(make_typed<int64_t>({2}, {lo, 7}), make_typed<int64_t>({2}, {-1, -2}))),
      (std::vector<int64_t>{lo, -4}));
  EXPECT_EQ(
      values<int64_t>(ops::floormod(make_typed<int64_t>({2}, {lo, 7}), make_typed<int64_t>({2}, {-1, -2}))),
      (std::vector<int64_t>{0, -1}));
}

TEST(FloorDiv, FloatsAndBroadcasting) {
  Tensor a = make({2, 3}, {7.5f, -7.5f, 0.0f, 1.0f, -1.0f, 5.25f});
  Tensor b = make({3}, {2.0f, 2.0f, -3.0f});
  expect_near(ops::floordiv(a, b), {3, -4, -0.0f, 0, -1, -2});
  expect_near(ops::floormod(a, b), {1.5f, 0.5f, 0, 1, 1, -0.75f});
  Tensor inf = ops::floordiv(make({1}, {1.0f}), make({1}, {0.0f}));
  EXPECT_TRUE(std::isinf(inf.data<float>()[0]));  // float division by zero is IEEE, as TF
  // Above the parallel threshold: same answers as the reference.
  Tensor big = random_tensor({300, 200}, 5, -50, 50);
  Tensor q = ops::floormod(big, make({}, {3.0f}));
  std::vector<float> bv = values(big);
  for (size_t i = 0; i < bv.size(); i += 101) {
    float want = std::fmod(bv[i], 3.0f);
    if (want < 0) want += 3.0f;
    ASSERT_NEAR(q.data<float>()[i], want, 1e-5) << bv[i];
  }
}

TEST(FloorDiv, Errors) {
  Tensor i = make_typed<int32_t>({3}, {1, 2, 3});
  expect_error(
      [&] {
        ops::floordiv(i, make_typed<int32_t>({3}, {1, 0, 1}));
      },
      Code::kInvalidArgument, {"floordiv: integer division by zero"});
  expect_error([&] { ops::floormod(i, make_typed<int32_t>({}, {0})); }, Code::kInvalidArgument,
               {"floormod: integer division by zero"});
  expect_error(
      [&] {
        ops::floordiv(i, make({3}, {1, 2, 3}));
      },
      Code::kInvalidArgument, {"floordiv: operands have different dtypes"});
  expect_error(
      [&] {
        ops::floormod(make({2}, {1, 2}), make({3}, {1, 2, 3}));
      },
      Code::kInvalidArgument, {"floormod"});
  expect_error([&] { ops::floordiv(make_bool({1}, {1}), make_bool({1}, {1})); }, Code::kInvalidArgument,
               {"floordiv: argument 'a' is bool"});
}

TEST(FloorDiv, FloormodGradient) {
  // Away from the jumps of floor(a / b), so central differences see the smooth part.
  Tensor a = make({4}, {0.3f, -0.7f, 2.2f, -2.6f});
  Tensor b = make({4}, {0.9f, 0.8f, -1.3f, 1.1f});
  check_gradients("floormod", [](const std::vector<Tensor> &v) { return ops::floormod(v[0], v[1]); }, {a, b});
  Tensor bs = make({}, {0.9f});
  check_gradients("floormod broadcast",
                  [](const std::vector<Tensor> &v) { return ops::floormod(v[0], v[1]); }, {a, bs});
}

}  // namespace
}  // namespace kiln
