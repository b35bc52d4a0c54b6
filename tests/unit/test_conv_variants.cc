// conv2d_transpose, depthwise_conv2d and conv1d against reference loops written from TF's
// definitions (odd sizes, strides, dilations, SAME and VALID), their finite-difference gradients
// (second order through the backward ops included), and errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conv_test_util.h"
#include "core/error.h"
#include "ops/conv_internal.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::Padding;
using testing::ConvShape;
using testing::expect_error;
using testing::expect_near;
using testing::inner_gradient;
using testing::random_tensor;
using testing::values;
using testing::window_axis;
using testing::WindowAxis;
using Ints = std::vector<int64_t>;
using Fn = std::function<Tensor(const std::vector<Tensor> &)>;
constexpr Padding kValid = Padding::kValid, kSame = Padding::kSame;
constexpr Code kBad = Code::kInvalidArgument;

// y[n, i, j, c * M + m] = sum_ab x[n, i*sh - pt + a*dh, j*sw - pl + b*dw, c] * f[a, b, c, m]
std::vector<float> ref_depthwise(const Tensor &x, const Tensor &f, Ints s, Ints d, Padding p) {
  const Shape &xs = x.shape(), &fs = f.shape();
  const WindowAxis ah = window_axis(xs[1], fs[0], s[0], d[0], p),
                   aw = window_axis(xs[2], fs[1], s[1], d[1], p);
  const int64_t C = xs[3], M = fs[3];
  const std::vector<float> xv = values(x), fv = values(f);
  std::vector<float> y;
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t i = 0; i < ah.out; ++i)
      for (int64_t j = 0; j < aw.out; ++j)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t m = 0; m < M; ++m) {
            double acc = 0;
            for (int64_t a = 0; a < fs[0]; ++a)
              for (int64_t b = 0; b < fs[1]; ++b) {
                const int64_t h = i * s[0] - ah.before + a * d[0], w = j * s[1] - aw.before + b * d[1];
                if (h < 0 || h >= xs[1] || w < 0 || w >= xs[2]) continue;
                acc += double(xv[size_t(((n * xs[1] + h) * xs[2] + w) * C + c)]) *
                       fv[size_t(((a * fs[1] + b) * C + c) * M + m)];
              }
            y.push_back(float(acc));
          }
  return y;
}

// The adjoint of conv2d(out of output_shape, f): every input cell scatters into the output cells
// its forward window read. f is [KH, KW, O, C].
std::vector<float> ref_transpose(const Tensor &x, const Tensor &f, const Shape &out, Ints s, Ints d,
                                 Padding p) {
  const Shape &xs = x.shape(), &fs = f.shape();
  const WindowAxis ah = window_axis(out[1], fs[0], s[0], d[0], p),
                   aw = window_axis(out[2], fs[1], s[1], d[1], p);
  const std::vector<float> xv = values(x), fv = values(f);
  std::vector<double> y(size_t(out.num_elements()), 0.0);
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t i = 0; i < xs[1]; ++i)
      for (int64_t j = 0; j < xs[2]; ++j)
        for (int64_t a = 0; a < fs[0]; ++a)
          for (int64_t b = 0; b < fs[1]; ++b) {
            const int64_t h = i * s[0] - ah.before + a * d[0], w = j * s[1] - aw.before + b * d[1];
            if (h < 0 || h >= out[1] || w < 0 || w >= out[2]) continue;
            for (int64_t o = 0; o < fs[2]; ++o)
              for (int64_t c = 0; c < fs[3]; ++c)
                y[size_t(((n * out[1] + h) * out[2] + w) * out[3] + o)] +=
                    double(xv[size_t(((n * xs[1] + i) * xs[2] + j) * xs[3] + c)]) *
                    fv[size_t(((a * fs[1] + b) * fs[2] + o) * fs[3] + c)];
          }
  return std::vector<float>(y.begin(), y.end());
}

TEST(DepthwiseConv2d, MatchesTheReference) {
  const std::vector<ConvShape> cases = {
      {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, kValid},
      {{2, 5, 6, 3}, {3, 3, 3, 1}, {1, 1}, {1, 1}, kSame},
      {{2, 7, 5, 4}, {3, 2, 4, 2}, {2, 1}, {1, 1}, kSame},
      {{1, 9, 8, 3}, {2, 3, 3, 3}, {2, 2}, {2, 1}, kValid},
      {{1, 6, 7, 2}, {3, 3, 2, 2}, {1, 2}, {2, 2}, kSame},
      {{3, 16, 16, 8}, {3, 3, 8, 1}, {1, 1}, {1, 1}, kSame},
  };
  unsigned seed = 1;
  for (const ConvShape &c : cases) {
    const Tensor x = random_tensor(c.x, seed++), f = random_tensor(c.f, seed++);
    const Tensor y = ops::depthwise_conv2d(x, f, c.s, c.d, c.p);
    const WindowAxis ah = window_axis(c.x[1], c.f[0], c.s[0], c.d[0], c.p),
                     aw = window_axis(c.x[2], c.f[1], c.s[1], c.d[1], c.p);
    ASSERT_EQ(y.shape(), (Shape{c.x[0], ah.out, aw.out, c.f[2] * c.f[3]})) << c.x.to_string();
    expect_near(y, ref_depthwise(x, f, c.s, c.d, c.p), 1e-5f, c.x.to_string() + " " + c.f.to_string());
  }
}

struct TransposeCase {
  Shape x, f, out;
  Ints s, d;
  Padding p;
};

TEST(Conv2dTranspose, MatchesTheAdjointReference) {
  const std::vector<TransposeCase> cases = {
      {{1, 3, 3, 2}, {2, 2, 3, 2}, {1, 6, 6, 3}, {2, 2}, {1, 1}, kSame},
      {{2, 3, 4, 2}, {3, 3, 1, 2}, {2, 5, 7, 1}, {2, 2}, {1, 1}, kSame},  // odd output: SAME's extra cell
      {{1, 4, 3, 3}, {3, 2, 2, 3}, {1, 6, 4, 2}, {1, 1}, {1, 1}, kValid},
      {{1, 2, 3, 1}, {2, 2, 2, 1}, {1, 5, 7, 2}, {2, 2}, {1, 1}, kValid},
      {{1, 4, 4, 2}, {3, 3, 2, 2}, {1, 8, 8, 2}, {1, 1}, {2, 2}, kValid},
  };
  unsigned seed = 20;
  for (const TransposeCase &c : cases) {
    const Tensor x = random_tensor(c.x, seed++), f = random_tensor(c.f, seed++);
    const Tensor y = ops::conv2d_transpose(x, f, c.out.to_vector(), c.s, c.d, c.p);
    ASSERT_EQ(y.shape(), c.out);
    expect_near(y, ref_transpose(x, f, c.out, c.s, c.d, c.p), 1e-5f,
                c.x.to_string() + " -> " + c.out.to_string());
  }
}

TEST(Conv1d, IsConv2dOverOneRow) {
  const Tensor x = random_tensor({2, 9, 3}, 30), f = random_tensor({3, 3, 4}, 31);
  for (Padding p : {kValid, kSame})
    for (int64_t s : {1, 2})
      for (int64_t d : {1, 2}) {
        const Tensor y = ops::conv1d(x, f, s, d, p);
        const Tensor want =
            ops::conv2d(ops::reshape(x, {2, 1, 9, 3}), ops::reshape(f, {1, 3, 3, 4}), {1, s}, {1, d}, p);
        ASSERT_EQ(y.shape(), (Shape{2, want.shape()[2], 4}));
        expect_near(y, values(want), 0);
      }
  const Tensor one =
      ops::conv1d(testing::make({1, 4, 1}, {1, 2, 3, 4}), testing::make({2, 1, 1}, {1, -1}), 1, 1, kValid);
  expect_near(one, {-1, -1, -1}, 0);
}

TEST(ConvVariantGradients, TableAgainstCentralDifferences) {
  auto dw = [](Ints s, Ints d, Padding p) -> Fn {
    return [=](const std::vector<Tensor> &in) { return ops::depthwise_conv2d(in[0], in[1], s, d, p); };
  };
  auto tr = [](Ints out, Ints s, Ints d, Padding p) -> Fn {
    return [=](const std::vector<Tensor> &in) { return ops::conv2d_transpose(in[0], in[1], out, s, d, p); };
  };
  auto c1 = [](int64_t s, int64_t d, Padding p) -> Fn {
    return [=](const std::vector<Tensor> &in) { return ops::conv1d(in[0], in[1], s, d, p); };
  };
  const std::vector<testing::ShapeGradCase> cases = {
      {"depthwise SAME", {{2, 4, 5, 3}, {3, 3, 3, 1}}, dw({1, 1}, {1, 1}, kSame)},
      {"depthwise VALID multiplier 2 stride 2", {{1, 5, 6, 2}, {2, 3, 2, 2}}, dw({2, 2}, {1, 1}, kValid)},
      {"depthwise SAME dilation 2 stride 2x1", {{1, 6, 5, 2}, {2, 2, 2, 2}}, dw({2, 1}, {2, 2}, kSame)},
      {"depthwise_backprop_input second order",
       {{1, 4, 4, 2}, {2, 2, 2, 2}},
       inner_gradient(dw({2, 2}, {1, 1}, kSame), 0)},
      {"depthwise_backprop_filter second order",
       {{1, 4, 5, 2}, {3, 2, 2, 1}},
       inner_gradient(dw({1, 2}, {1, 1}, kValid), 1)},
      {"conv2d_transpose SAME stride 2",
       {{1, 3, 2, 2}, {3, 3, 3, 2}},
       tr({1, 5, 4, 3}, {2, 2}, {1, 1}, kSame)},
      {"conv2d_transpose VALID stride 2",
       {{2, 2, 3, 1}, {2, 3, 2, 1}},
       tr({2, 4, 7, 2}, {2, 2}, {1, 1}, kValid)},
      {"conv2d_transpose VALID dilation 2",
       {{1, 3, 3, 2}, {2, 2, 1, 2}},
       tr({1, 5, 5, 1}, {1, 1}, {2, 2}, kValid)},
      {"conv2d_transpose second order",
       {{1, 2, 2, 2}, {2, 2, 2, 2}},
       inner_gradient(tr({1, 4, 4, 2}, {2, 2}, {1, 1}, kSame), 1)},
      {"conv1d VALID", {{2, 7, 3}, {3, 3, 2}}, c1(1, 1, kValid)},
      {"conv1d SAME stride 2 dilation 2", {{1, 9, 2}, {2, 2, 3}}, c1(2, 2, kSame)},
  };
  testing::check_gradient_table(cases, 50u);
}

TEST(ConvVariants, Errors) {
  const Tensor x = random_tensor({1, 4, 4, 2}, 1), f = random_tensor({2, 2, 2, 3}, 2);
  expect_error(
      [&] {
        ops::depthwise_conv2d(x, random_tensor({2, 2, 3, 1}, 3), {1, 1}, {1, 1}, kValid);
      },
      kBad, {"depthwise_conv2d", "is for 3 channels", "[1, 4, 4, 2]", "expected filter dim 2 == x dim 3"});
  expect_error(
      [&] {
        ops::depthwise_conv2d(x, f, {0, 1}, {1, 1}, kValid);
      },
      kBad, {"depthwise_conv2d", "strides is [0, 1]"});
  expect_error(
      [&] {
        ops::depthwise_conv2d(random_tensor({4, 4, 2}, 4), f, {1, 1}, {1, 1}, kValid);
      },
      kBad, {"depthwise_conv2d", "[4, 4, 2]", "expected rank 4"});
  expect_error(
      [&] {
        ops::depthwise_conv2d(x, random_tensor({5, 1, 2, 1}, 5), {1, 1}, {1, 1}, kValid);
      },
      kBad, {"depthwise_conv2d", "gives an empty"});
  // f as a transpose filter [KH, KW, O=2, C=3] needs x with 3 channels.
  expect_error(
      [&] {
        ops::conv2d_transpose(x, f, {1, 8, 8, 2}, {2, 2}, {1, 1}, kSame);
      },
      kBad, {"conv2d_transpose", "takes 3 input channels", "has 2"});
  const Tensor x3 = random_tensor({1, 4, 4, 3}, 6);
  expect_error(
      [&] {
        ops::conv2d_transpose(x3, f, {1, 9, 9, 2}, {1, 1}, {1, 1}, kSame);
      },
      kBad, {"conv2d_transpose", "[1, 9, 9, 2]", "convolves to 9x9, not x's 4x4"});
  expect_error(
      [&] {
        ops::conv2d_transpose(x3, f, {1, 8, 8, 5}, {2, 2}, {1, 1}, kSame);
      },
      kBad, {"conv2d_transpose", "expected batch 1 and 2 channels"});
  expect_error(
      [&] {
        ops::conv2d_transpose(x3, f, {1, 8, 8}, {2, 2}, {1, 1}, kSame);
      },
      kBad, {"conv2d_transpose", "expected 4 values"});
  expect_error([&] { ops::conv1d(x, f, 1, 1, kValid); }, kBad, {"conv1d", "[1, 4, 4, 2]", "expected rank 3"});
  expect_error(
      [&] {
        ops::conv1d(random_tensor({1, 4, 2}, 7), random_tensor({2, 3, 1}, 8), 1, 1, kValid);
      },
      kBad, {"conv1d", "takes 3 input channels"});
  expect_error(
      [&] {
        ops::conv1d(random_tensor({1, 4, 2}, 7), random_tensor({2, 2, 1}, 8), 0, 1, kValid);
      },
      kBad, {"conv1d", "stride 0"});
}

}  // namespace
}  // namespace kiln
