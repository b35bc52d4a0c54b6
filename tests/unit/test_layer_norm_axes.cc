// layer_norm over several trailing axes (Keras LayerNormalization(axis=[-2, -1])): a double
// reference, gradients of x, gamma and beta by central differences (second order too), errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;
using testing::random_tensor;
using testing::values;
using V = const std::vector<Tensor> &;

TEST(LayerNormAxes, MatchesADoubleReference) {
  const Tensor x = random_tensor({3, 4, 5}, 1, -2.0f, 3.0f), g = random_tensor({4, 5}, 2),
               b = random_tensor({4, 5}, 3);
  for (const std::vector<int64_t> &axes : {std::vector<int64_t>{-2, -1}, {2, 1}, {-1, 1}}) {
    const Tensor y = ops::layer_norm(x, g, b, 1e-3f, axes);
    const std::vector<float> xv = values(x), gv = values(g), bv = values(b);
    std::vector<float> want;
    for (size_t r = 0; r < 3; ++r) {
      double mean = 0, var = 0;
      for (size_t i = 0; i < 20; ++i) mean += xv[r * 20 + i] / 20.0;
      for (size_t i = 0; i < 20; ++i) var += (xv[r * 20 + i] - mean) * (xv[r * 20 + i] - mean) / 20.0;
      for (size_t i = 0; i < 20; ++i)
        want.push_back(static_cast<float>((xv[r * 20 + i] - mean) / std::sqrt(var + 1e-3) * gv[i] + bv[i]));
    }
    testing::expect_near(y, want, 1e-5f);
  }
  // All axes of x, and one axis (the old form).
  const Tensor all =
      ops::layer_norm(x, random_tensor({3, 4, 5}, 4), random_tensor({3, 4, 5}, 5), 1e-3f, {0, 1, 2});
  EXPECT_EQ(all.shape(), x.shape());
  testing::expect_near(ops::layer_norm(x, random_tensor({5}, 6), random_tensor({5}, 7), 1e-3f, {-1}),
                       values(ops::layer_norm(x, random_tensor({5}, 6), random_tensor({5}, 7))), 0);
}

TEST(LayerNormAxes, Gradients) {
  auto ln = [](std::vector<int64_t> axes) {
    return [axes](V in) { return ops::layer_norm(in[0], in[1], in[2], 1e-3f, axes); };
  };
  const std::vector<testing::ShapeGradCase> cases = {
      {"layer_norm axes [-2, -1]", {{2, 3, 4}, {3, 4}, {3, 4}}, ln({-2, -1})},
      {"layer_norm axes [1, 2, 3]", {{2, 2, 2, 3}, {2, 2, 3}, {2, 2, 3}}, ln({3, 1, 2})},
      {"layer_norm axes second order",
       {{2, 2, 3}, {2, 3}, {2, 3}},
       [](V in) {
         autodiff::Tape tape(false, false);
         tape.watch(in[0]);
         Tensor y = ops::square(ops::layer_norm(in[0], in[1], in[2], 1e-3f, {-2, -1}));
         return tape.gradient(y, {in[0]}, autodiff::Unconnected::kZero, random_tensor(y.shape(), 9u))[0];
       }},
  };
  testing::check_gradient_table(cases, 60u);
}

TEST(LayerNormAxes, Errors) {
  const Tensor x = random_tensor({2, 3, 4}, 1), g = random_tensor({3, 4}, 2);
  const Code bad = Code::kInvalidArgument;
  expect_error(
      [&] {
        ops::layer_norm(x, g, g, 1e-3f, {0, 2});
      },
      bad, {"layer_norm", "axes [0, 2]", "trailing"});
  expect_error(
      [&] {
        ops::layer_norm(x, g, g, 1e-3f, {-1, -1});
      },
      bad, {"layer_norm", "axes [-1, -1]", "distinct"});
  expect_error([&] { ops::layer_norm(x, g, g, 1e-3f, {3, 2}); }, bad, {"layer_norm", "axis 3"});
  expect_error(
      [&] {
        ops::layer_norm(x, random_tensor({12}, 3), g, 1e-3f, {-2, -1});
      },
      bad, {"layer_norm", "'gamma' is float32[12]", "expected float32[3, 4]"});
  expect_error(
      [&] {
        ops::layer_norm(x, g, random_tensor({4, 3}, 4), 1e-3f, {-2, -1});
      },
      bad, {"layer_norm", "'beta' is float32[4, 3]"});
}

}  // namespace
}  // namespace kiln
