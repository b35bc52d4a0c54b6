// NN family: conv2d, pooling, layer_norm, batch_norm. Gradients against central differences,
// kernels (both the loop and the oneDNN paths) against direct reference loops in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "conv_test_util.h"
#include "core/error.h"  // test_util.h uses Code/Error without including it
#include "kernels/conv.h"
#include "kernels/engine.h"
#include "kernels/norm.h"
#include "ops/nn_internal.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::Padding;
using testing::check_gradients;
using testing::ConvShape;
using testing::expect_error;
using testing::expect_near;
using testing::inner_gradient;
using testing::make;
using testing::random_tensor;
using testing::values;
using testing::window_axis;
using testing::WindowAxis;
using Fn = std::function<Tensor(const std::vector<Tensor> &)>;
using Ints = std::vector<int64_t>;

constexpr Padding kValid = Padding::kValid;
constexpr Padding kSame = Padding::kSame;

// Distinct values (a shuffled grid 0.05 apart), so that max pooling has no near-ties that central
// differences would straddle.
Tensor distinct_tensor(const Shape &shape, unsigned seed) {
  std::vector<float> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = -2.0f + 0.05f * static_cast<float>(i);
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return make(shape, v);
}

// Gradients of f's output for output gradient dy, through the tape.
std::vector<Tensor> tape_grads(const Fn &f, const std::vector<Tensor> &inputs, const Tensor &dy) {
  autodiff::Tape tape(false, false);
  for (const Tensor &x : inputs) tape.watch(x);
  Tensor y = f(inputs);
  return tape.gradient(y, inputs, autodiff::Unconnected::kZero, dy);
}

// ---------------------------------------------------------------------------------------------
// Reference loops (double), written from TF's definitions.

// Calls visit(x_index, filter_index, y_index) for every product conv2d sums.
void conv_taps(const Shape &xs, const Shape &fs, const Ints &s, const Ints &d, Padding p,
               const std::function<void(int64_t, int64_t, int64_t)> &visit, Shape *out_shape = nullptr) {
  WindowAxis ah = window_axis(xs[1], fs[0], s[0], d[0], p), aw = window_axis(xs[2], fs[1], s[1], d[1], p);
  int64_t C = xs[3], O = fs[3];
  if (out_shape) *out_shape = Shape{xs[0], ah.out, aw.out, O};
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t oy = 0; oy < ah.out; ++oy)
      for (int64_t ox = 0; ox < aw.out; ++ox)
        for (int64_t ky = 0; ky < fs[0]; ++ky)
          for (int64_t kx = 0; kx < fs[1]; ++kx) {
            int64_t iy = oy * s[0] - ah.before + ky * d[0], ix = ox * s[1] - aw.before + kx * d[1];
            if (iy < 0 || iy >= xs[1] || ix < 0 || ix >= xs[2]) continue;
            for (int64_t c = 0; c < C; ++c)
              for (int64_t o = 0; o < O; ++o)
                visit(((n * xs[1] + iy) * xs[2] + ix) * C + c, ((ky * fs[1] + kx) * C + c) * O + o,
                      ((n * ah.out + oy) * aw.out + ox) * O + o);
          }
}

struct ConvRef {
  Shape y_shape;
  std::vector<float> y, dx, dfilter;
};
ConvRef ref_conv(const Tensor &x, const Tensor &f, const Tensor *dy, const Ints &s, const Ints &d,
                 Padding p) {
  ConvRef r;
  std::vector<double> y, dx(x.num_elements()), df(f.num_elements());
  const float *px = x.data<float>(), *pf = f.data<float>();
  conv_taps(
      x.shape(), f.shape(), s, d, p, [](int64_t, int64_t, int64_t) {}, &r.y_shape);
  y.assign(r.y_shape.num_elements(), 0.0);
  conv_taps(x.shape(), f.shape(), s, d, p, [&](int64_t xi, int64_t fi, int64_t yi) {
    y[yi] += double(px[xi]) * pf[fi];
    if (!dy) return;
    dx[xi] += double(dy->data<float>()[yi]) * pf[fi];
    df[fi] += double(px[xi]) * dy->data<float>()[yi];
  });
  r.y.assign(y.begin(), y.end());
  r.dx.assign(dx.begin(), dx.end());
  r.dfilter.assign(df.begin(), df.end());
  return r;
}

struct PoolRef {
  std::vector<float> y, dx;
};
// Max or average (over the cells inside the input only) of each window; dx for dy when given.
PoolRef ref_pool(bool is_max, const Tensor &x, const Tensor *dy, const Ints &k, const Ints &s, Padding p) {
  const Shape &xs = x.shape();
  WindowAxis ah = window_axis(xs[1], k[0], s[0], 1, p), aw = window_axis(xs[2], k[1], s[1], 1, p);
  const int64_t C = xs[3];
  const float *px = x.data<float>();
  PoolRef r;
  std::vector<double> dx(x.num_elements(), 0.0);
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t oy = 0; oy < ah.out; ++oy)
      for (int64_t ox = 0; ox < aw.out; ++ox)
        for (int64_t c = 0; c < C; ++c) {
          std::vector<int64_t> cells;
          for (int64_t ky = 0; ky < k[0]; ++ky)
            for (int64_t kx = 0; kx < k[1]; ++kx) {
              int64_t iy = oy * s[0] - ah.before + ky, ix = ox * s[1] - aw.before + kx;
              if (iy >= 0 && iy < xs[1] && ix >= 0 && ix < xs[2])
                cells.push_back(((n * xs[1] + iy) * xs[2] + ix) * C + c);
            }
          int64_t best = cells[0];
          double total = 0;
          for (int64_t i : cells) {
            total += px[i];
            if (px[i] > px[best]) best = i;
          }
          r.y.push_back(is_max ? px[best] : static_cast<float>(total / double(cells.size())));
          if (!dy) continue;
          double g = dy->data<float>()[r.y.size() - 1];
          if (is_max)
            dx[best] += g;
          else
            for (int64_t i : cells) dx[i] += g / double(cells.size());
        }
  r.dx.assign(dx.begin(), dx.end());
  return r;
}

struct NormRef {
  std::vector<float> y, dx, dgamma, dbeta, mean, variance;
};
// Normalises x over groups of elements sharing a key: the row (layer norm) or the channel (batch
// norm); per-group statistics, per-channel gamma/beta. Backward for dy through the statistics
// when `through_stats`. Given statistics (inference) are used when non-null.
NormRef ref_norm(bool per_row, const Tensor &x, const Tensor &gamma, const Tensor &beta, const Tensor &dy,
                 float eps, bool through_stats, const Tensor *given_mean = nullptr,
                 const Tensor *given_var = nullptr) {
  const int64_t C = x.shape()[x.rank() - 1], R = x.num_elements() / C, groups = per_row ? R : C;
  auto group = [&](int64_t r, int64_t c) { return per_row ? r : c; };
  const float *px = x.data<float>(), *pg = gamma.data<float>(), *pb = beta.data<float>(),
              *pd = dy.data<float>();
  std::vector<double> mean(groups, 0), var(groups, 0), count(groups, 0), sdy(groups, 0), sdyx(groups, 0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) mean[group(r, c)] += px[r * C + c], count[group(r, c)] += 1;
  for (int64_t gi = 0; gi < groups; ++gi) mean[gi] /= count[gi];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) var[group(r, c)] += std::pow(px[r * C + c] - mean[group(r, c)], 2);
  for (int64_t gi = 0; gi < groups; ++gi) var[gi] /= count[gi];
  if (given_mean)
    for (int64_t gi = 0; gi < groups; ++gi)
      mean[gi] = given_mean->data<float>()[gi], var[gi] = given_var->data<float>()[gi];
  NormRef out;
  std::vector<double> dgamma(C, 0), dbeta(C, 0);
  auto xhat = [&](int64_t r, int64_t c) {
    int64_t gi = group(r, c);
    return (px[r * C + c] - mean[gi]) / std::sqrt(var[gi] + eps);
  };
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      double g = double(pd[r * C + c]) * pg[c];
      out.y.push_back(static_cast<float>(xhat(r, c) * pg[c] + pb[c]));
      dgamma[c] += pd[r * C + c] * xhat(r, c);
      dbeta[c] += pd[r * C + c];
      sdy[group(r, c)] += g;
      sdyx[group(r, c)] += g * xhat(r, c);
    }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      int64_t gi = group(r, c);
      double g = double(pd[r * C + c]) * pg[c];
      if (through_stats) g -= (sdy[gi] + xhat(r, c) * sdyx[gi]) / count[gi];
      out.dx.push_back(static_cast<float>(g / std::sqrt(var[gi] + eps)));
    }
  out.dgamma.assign(dgamma.begin(), dgamma.end());
  out.dbeta.assign(dbeta.begin(), dbeta.end());
  out.mean.assign(mean.begin(), mean.end());
  out.variance.assign(var.begin(), var.end());
  return out;
}

void expect_norm_grads(const std::vector<Tensor> &g, const NormRef &want) {
  expect_near(g[0], want.dx, 2e-4f, "dx");
  expect_near(g[1], want.dgamma, 2e-4f, "dgamma");
  expect_near(g[2], want.dbeta, 2e-4f, "dbeta");
}

// ---------------------------------------------------------------------------------------------
// One table: every differentiable op of the family (and the backward ops that are differentiable
// in turn), small odd shapes, strides, dilations, SAME and VALID.

struct GradCase {
  std::string name;
  std::vector<Tensor> inputs;
  Fn f;
  testing::GradCheckOptions opt{};
};

Fn conv_fn(Ints s, Ints d, Padding p) {
  return [=](const std::vector<Tensor> &in) { return ops::conv2d(in[0], in[1], s, d, p); };
}
Fn pool_fn(bool is_max, Ints k, Ints s, Padding p) {
  return [=](const std::vector<Tensor> &in) {
    return is_max ? ops::max_pool2d(in[0], k, s, p) : ops::avg_pool2d(in[0], k, s, p);
  };
}
Fn layer_norm_fn(float eps = 1e-3f) {
  return [=](const std::vector<Tensor> &in) { return ops::layer_norm(in[0], in[1], in[2], eps); };
}
Fn batch_norm_fn(bool training, Tensor mean = Tensor(), Tensor var = Tensor()) {
  return [=](const std::vector<Tensor> &in) {
    return ops::batch_norm(in[0], in[1], in[2], mean, var, training, 1e-3f).y;
  };
}

// max_pool2d(x) * sum(x * x): a function whose pooled part has an upstream gradient depending on x.
Fn max_pool_times_sum_of_squares(Ints ksize, Ints strides, Padding p) {
  return [=](const std::vector<Tensor> &in) {
    return ops::mul(ops::max_pool2d(in[0], ksize, strides, p), ops::sum(ops::mul(in[0], in[0])));
  };
}

std::vector<GradCase> grad_cases() {
  auto r = [](Shape s, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    return random_tensor(s, seed, lo, hi);
  };
  Tensor x = r({2, 5, 5, 3}, 1), f = r({3, 3, 3, 2}, 2);
  Tensor gamma3 = r({3}, 3, 0.5f, 1.5f), beta3 = r({3}, 4);
  Tensor mean3 = r({3}, 5), var3 = r({3}, 6, 0.5f, 2.0f);
  return {
      {"conv2d VALID", {x, f}, conv_fn({1, 1}, {1, 1}, kValid)},
      {"conv2d SAME", {x, f}, conv_fn({1, 1}, {1, 1}, kSame)},
      {"conv2d SAME stride 2 odd sizes",
       {r({1, 7, 6, 3}, 7), r({3, 2, 3, 2}, 8)},
       conv_fn({2, 2}, {1, 1}, kSame)},
      {"conv2d VALID stride 2x1", {x, f}, conv_fn({2, 1}, {1, 1}, kValid)},
      {"conv2d SAME dilation 2", {r({1, 6, 7, 2}, 9), r({2, 3, 2, 3}, 10)}, conv_fn({1, 1}, {2, 2}, kSame)},
      {"conv2d VALID dilation 2 stride 2",
       {r({1, 7, 7, 2}, 11), r({2, 2, 2, 3}, 12)},
       conv_fn({2, 2}, {2, 2}, kValid)},
      {"conv2d 1x1 filter", {x, r({1, 1, 3, 4}, 13)}, conv_fn({1, 1}, {1, 1}, kSame)},
      {"conv2d_backprop_input second order", {x, f}, inner_gradient(conv_fn({2, 2}, {1, 1}, kSame), 0)},
      {"conv2d_backprop_filter second order", {x, f}, inner_gradient(conv_fn({1, 2}, {1, 1}, kValid), 1)},
      {"max_pool2d VALID 2x2 stride 2",
       {distinct_tensor({2, 5, 5, 3}, 14)},
       pool_fn(true, {2, 2}, {2, 2}, kValid)},
      {"max_pool2d SAME 3x3 stride 2",
       {distinct_tensor({1, 5, 7, 2}, 15)},
       pool_fn(true, {3, 3}, {2, 2}, kSame)},
      {"max_pool2d SAME 2x3 stride 1",
       {distinct_tensor({1, 4, 5, 2}, 16)},
       pool_fn(true, {2, 3}, {1, 1}, kSame)},
      {"avg_pool2d VALID 3x3 stride 2", {x}, pool_fn(false, {3, 3}, {2, 2}, kValid)},
      {"avg_pool2d SAME 3x3 stride 2", {r({1, 5, 7, 2}, 17)}, pool_fn(false, {3, 3}, {2, 2}, kSame)},
      {"avg_pool2d SAME 2x2 stride 1", {x}, pool_fn(false, {2, 2}, {1, 1}, kSame)},
      {"avg_pool2d_grad second order", {x}, inner_gradient(pool_fn(false, {3, 2}, {2, 1}, kSame), 0)},
      // The pool's upstream gradient depends on x, so the outer tape differentiates the backward
      // pass in its dy: max_pool2d_grad's own gradient (and, for the check, the third order too).
      {"max_pool2d_grad second order VALID",
       {distinct_tensor({2, 4, 4, 2}, 30)},
       inner_gradient(max_pool_times_sum_of_squares({2, 2}, {2, 2}, kValid), 0)},
      {"max_pool2d_grad second order SAME overlapping",
       {distinct_tensor({1, 5, 6, 2}, 31)},
       inner_gradient(max_pool_times_sum_of_squares({3, 3}, {2, 1}, kSame), 0)},
      {"layer_norm rank 3", {r({2, 3, 5}, 18), r({5}, 19, 0.5f, 1.5f), r({5}, 20)}, layer_norm_fn()},
      {"layer_norm rank 1", {r({7}, 21), r({7}, 22, 0.5f, 1.5f), r({7}, 23)}, layer_norm_fn(1e-2f)},
      {"layer_norm rank 4", {x, gamma3, beta3}, layer_norm_fn()},
      {"layer_norm second order",
       {r({3, 4}, 24), r({4}, 25, 0.5f, 1.5f), r({4}, 26)},
       inner_gradient(layer_norm_fn(), 0)},
      {"batch_norm training [N, C]", {r({6, 3}, 27), gamma3, beta3}, batch_norm_fn(true)},
      {"batch_norm training [N, H, W, C]", {x, gamma3, beta3}, batch_norm_fn(true)},
      {"batch_norm inference", {x, gamma3, beta3}, batch_norm_fn(false, mean3, var3)},
      {"batch_norm training statistics outputs",
       {r({5, 3}, 28), gamma3, beta3},
       [](const std::vector<Tensor> &in) {
         ops::BatchNormResult b = ops::batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 1e-3f);
         return ops::add(b.y, ops::add(b.mean, ops::mul(b.variance, Tensor::scalar(3.0f))));
       }},
      {"batch_norm second order", {r({4, 3}, 29), gamma3, beta3}, inner_gradient(batch_norm_fn(true), 0)},
  };
}

TEST(NNGradients, TableAgainstCentralDifferences) {
  for (const GradCase &c : grad_cases()) {
    SCOPED_TRACE(c.name);
    try {
      check_gradients(c.name, c.f, c.inputs, c.opt);
    } catch (const Error &e) {
      ADD_FAILURE() << c.name << " threw: " << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels against the reference loops, forward and backward.

TEST(NNConv2d, ForwardAndBackwardMatchReferenceLoops) {
  const std::vector<ConvShape> shapes = {
      {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, kValid},
      {{2, 5, 5, 3}, {3, 3, 3, 2}, {1, 1}, {1, 1}, kSame},
      {{3, 9, 7, 5}, {3, 3, 5, 7}, {2, 2}, {1, 1}, kSame},
      {{2, 8, 8, 4}, {2, 2, 4, 6}, {2, 2}, {1, 1}, kSame},    // even input, even filter: no padding
      {{1, 10, 11, 3}, {4, 3, 3, 5}, {3, 2}, {1, 1}, kSame},  // pad 2 after, 1 before
      {{2, 11, 9, 6}, {3, 3, 6, 8}, {1, 1}, {2, 3}, kSame},
      {{2, 12, 13, 8}, {3, 5, 8, 16}, {2, 1}, {2, 1}, kValid},
      {{4, 16, 16, 16}, {3, 3, 16, 32}, {1, 1}, {1, 1}, kSame},
      {{2, 28, 28, 1}, {5, 5, 1, 8}, {1, 1}, {1, 1}, kValid},
  };
  for (const ConvShape &c : shapes) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.f.to_string());
    Tensor x = random_tensor(c.x, 31), f = random_tensor(c.f, 32);
    ConvRef shape_only = ref_conv(x, f, nullptr, c.s, c.d, c.p);
    Tensor dy = random_tensor(shape_only.y_shape, 33);
    ConvRef want = ref_conv(x, f, &dy, c.s, c.d, c.p);
    Fn fn = conv_fn(c.s, c.d, c.p);
    Tensor y = fn({x, f});
    ASSERT_EQ(y.shape(), want.y_shape);
    expect_near(y, want.y, 1e-4f, "y");
    std::vector<Tensor> g = tape_grads(fn, {x, f}, dy);
    expect_near(g[0], want.dx, 1e-4f, "dx");
    expect_near(g[1], want.dfilter, 1e-4f, "dfilter");
  }
}

TEST(NNConv2d, FilterGradientWithoutWatchingInput) {
  // A first layer: only the filter is followed, so conv2d skips the input gradient.
  Tensor x = random_tensor({2, 6, 5, 3}, 34), f = random_tensor({3, 3, 3, 4}, 35);
  Tensor dy = random_tensor({2, 3, 3, 4}, 36);
  ConvRef want = ref_conv(x, f, &dy, {2, 2}, {1, 1}, kSame);
  autodiff::Tape tape(false, false);
  tape.watch(f);
  Tensor y = ops::conv2d(x, f, {2, 2}, {1, 1}, kSame);
  std::vector<Tensor> g = tape.gradient(y, {f}, autodiff::Unconnected::kNone, dy);
  expect_near(g[0], want.dfilter, 1e-4f);
}

TEST(NNConv2d, EmptyBatchGivesEmptyOutputAndZeroFilterGradient) {
  Tensor x = Tensor::empty(DType::kFloat32, {0, 5, 5, 3}), f = random_tensor({3, 3, 3, 2}, 37);
  EXPECT_EQ(ops::conv2d(x, f, {1, 1}, {1, 1}, kSame).shape(), (Shape{0, 5, 5, 2}));
  Tensor df = ops::internal::conv2d_backprop_filter(
      x, f.shape(), Tensor::empty(DType::kFloat32, {0, 5, 5, 2}), {1, 1}, {1, 1}, kSame);
  expect_near(df, std::vector<float>(54, 0.0f));
}

struct PoolShape {
  Shape x;
  Ints k, s;
  Padding p;
};

TEST(NNPool, MaxAndAvgMatchReferenceLoops) {
  const std::vector<PoolShape> shapes = {
      {{1, 1, 1, 1}, {1, 1}, {1, 1}, kValid},   {{2, 5, 5, 3}, {2, 2}, {2, 2}, kValid},
      {{2, 5, 5, 3}, {2, 2}, {2, 2}, kSame},    {{1, 7, 6, 5}, {3, 3}, {2, 2}, kSame},
      {{3, 9, 11, 4}, {3, 2}, {1, 3}, kSame},   {{2, 10, 9, 7}, {4, 4}, {3, 3}, kValid},
      {{4, 28, 28, 16}, {3, 3}, {2, 2}, kSame},
  };
  for (const PoolShape &c : shapes)
    for (bool is_max : {true, false}) {
      SCOPED_TRACE(std::string(is_max ? "max " : "avg ") + c.x.to_string());
      Tensor x = distinct_tensor(c.x, 41);
      Fn fn = pool_fn(is_max, c.k, c.s, c.p);
      PoolRef shape_only = ref_pool(is_max, x, nullptr, c.k, c.s, c.p);
      Tensor y = fn({x});
      Tensor dy = random_tensor(y.shape(), 42);
      PoolRef want = ref_pool(is_max, x, &dy, c.k, c.s, c.p);
      expect_near(y, want.y, 1e-5f, "y");
      expect_near(tape_grads(fn, {x}, dy)[0], want.dx, 1e-5f, "dx");
    }
}

// Shapes below and above kernels::kNormLoopMaxElements, so both the one-thread and the threaded paths run.
const std::vector<Shape> kNormShapes = {{1, 1},       {7},        {3, 5},       {2, 3, 7},
                                        {2, 5, 5, 3}, {130, 129}, {4, 9, 9, 67}};

struct NormInputs {
  Tensor x, gamma, beta, dy;
};
NormInputs norm_inputs(const Shape &s, unsigned seed) {
  const int64_t C = s[s.rank() - 1];
  return {random_tensor(s, seed, -2.0f, 3.0f), random_tensor({C}, seed + 1), random_tensor({C}, seed + 2),
          random_tensor(s, seed + 3)};
}

TEST(NNLayerNorm, ForwardAndBackwardMatchReferenceLoops) {
  ASSERT_GT(Shape({130, 129}).num_elements(), kernels::kNormLoopMaxElements);
  for (const Shape &s : kNormShapes) {
    SCOPED_TRACE(s.to_string());
    auto [x, gamma, beta, dy] = norm_inputs(s, 51);
    NormRef want = ref_norm(true, x, gamma, beta, dy, 1e-3f, true);
    expect_near(ops::layer_norm(x, gamma, beta, 1e-3f), want.y, 1e-4f, "y");
    std::vector<Tensor> g = tape_grads(layer_norm_fn(), {x, gamma, beta}, dy);
    expect_norm_grads(g, want);
  }
}

TEST(NNBatchNorm, TrainingMatchesReferenceLoops) {
  for (const Shape &s : kNormShapes) {
    if (s.rank() < 2) continue;
    SCOPED_TRACE(s.to_string());
    auto [x, gamma, beta, dy] = norm_inputs(s, 61);
    NormRef want = ref_norm(false, x, gamma, beta, dy, 1e-3f, true);
    ops::BatchNormResult b = ops::batch_norm(x, gamma, beta, Tensor(), Tensor(), true, 1e-3f);
    expect_near(b.y, want.y, 1e-4f, "y");
    expect_near(b.mean, want.mean, 1e-5f, "mean");
    expect_near(b.variance, want.variance, 1e-4f, "variance");
    std::vector<Tensor> g = tape_grads(batch_norm_fn(true), {x, gamma, beta}, dy);
    expect_norm_grads(g, want);
  }
}

TEST(NNBatchNorm, InferenceUsesGivenStatistics) {
  for (const Shape &s : kNormShapes) {
    if (s.rank() < 2) continue;
    SCOPED_TRACE(s.to_string());
    const int64_t C = s[s.rank() - 1];
    Tensor x = random_tensor(s, 71), gamma = random_tensor({C}, 72), beta = random_tensor({C}, 73);
    Tensor mean = random_tensor({C}, 74), var = random_tensor({C}, 75, 0.2f, 2.0f), dy = random_tensor(s, 76);
    NormRef want = ref_norm(false, x, gamma, beta, dy, 1e-3f, false, &mean, &var);
    ops::BatchNormResult b = ops::batch_norm(x, gamma, beta, mean, var, false, 1e-3f);
    expect_near(b.y, want.y, 1e-4f, "y");
    EXPECT_EQ(b.mean.id(), mean.id());
    EXPECT_EQ(b.variance.id(), var.id());
    std::vector<Tensor> g = tape_grads(batch_norm_fn(false, mean, var), {x, gamma, beta}, dy);
    expect_norm_grads(g, want);
  }
}

// ---------------------------------------------------------------------------------------------
// Bad input: InvalidArgument naming the op and what it got.

TEST(NNErrors, Conv2d) {
  Tensor x = random_tensor({2, 5, 5, 3}, 1), f = random_tensor({3, 3, 3, 2}, 2);
  const Code bad = Code::kInvalidArgument;
  expect_error(
      [&] {
        ops::conv2d(random_tensor({2, 5, 5}, 1), f, {1, 1}, {1, 1}, kSame);
      },
      bad, {"conv2d", "[2, 5, 5]", "rank 4"});
  expect_error(
      [&] {
        ops::conv2d(x, random_tensor({3, 3, 4, 2}, 1), {1, 1}, {1, 1}, kSame);
      },
      bad, {"conv2d", "[3, 3, 4, 2]", "[2, 5, 5, 3]", "channels"});
  expect_error(
      [&] {
        ops::conv2d(x, random_tensor({3, 3, 3}, 1), {1, 1}, {1, 1}, kSame);
      },
      bad, {"conv2d", "filter", "[3, 3, 3]"});
  expect_error(
      [&] {
        ops::conv2d(x, f, {1}, {1, 1}, kSame);
      },
      bad, {"conv2d", "strides", "[1]", "2 positive"});
  expect_error([&] { ops::conv2d(x, f, {1, 1}, {0, 1}, kSame); }, bad, {"conv2d", "dilations", "[0, 1]"});
  expect_error(
      [&] {
        ops::conv2d(x, f, {1, 1}, {3, 1}, kValid);
      },
      bad, {"conv2d", "[2, 5, 5, 3]", "VALID", "empty"});
  expect_error(
      [&] {
        ops::conv2d(testing::make_typed<int32_t>({1, 1, 1, 1}, {1}), f, {1, 1}, {1, 1}, kSame);
      },
      bad, {"conv2d", "int32[1, 1, 1, 1]", "float32"});
  expect_error([&] { ops::conv2d(Tensor(), f, {1, 1}, {1, 1}, kSame); }, bad, {"conv2d"});
  expect_error(
      [&] {
        ops::internal::conv2d_backprop_input(x.shape(), f, random_tensor({2, 4, 4, 2}, 1), {1, 1}, {1, 1},
                                             kSame);
      },
      bad, {"conv2d_backprop_input", "float32[2, 4, 4, 2]", "[2, 5, 5, 2]"});
}

TEST(NNErrors, Pooling) {
  Tensor x = random_tensor({2, 5, 5, 3}, 1);
  const Code bad = Code::kInvalidArgument;
  for (bool is_max : {true, false}) {
    const std::string op = is_max ? "max_pool2d" : "avg_pool2d";
    auto pool = [&](const Tensor &t, Ints k, Ints s, Padding p) { return pool_fn(is_max, k, s, p)({t}); };
    expect_error(
        [&] {
          pool(random_tensor({5, 5, 3}, 1), {2, 2}, {1, 1}, kSame);
        },
        bad, {op, "[5, 5, 3]", "rank 4"});
    expect_error([&] { pool(x, {2, 2, 2}, {1, 1}, kSame); }, bad, {op, "ksize", "[2, 2, 2]"});
    expect_error([&] { pool(x, {2, 2}, {0, 1}, kSame); }, bad, {op, "strides", "[0, 1]"});
    expect_error([&] { pool(x, {6, 2}, {1, 1}, kValid); }, bad, {op, "[2, 5, 5, 3]", "6x2", "empty"});
    expect_error(
        [&] {
          pool(testing::make_typed<int64_t>({1, 1, 1, 1}, {1}), {1, 1}, {1, 1}, kSame);
        },
        bad, {op, "int64[1, 1, 1, 1]"});
  }
}

TEST(NNErrors, LayerNorm) {
  Tensor x = random_tensor({2, 3}, 1), g = random_tensor({3}, 2);
  const Code bad = Code::kInvalidArgument;
  expect_error([&] { ops::layer_norm(x, random_tensor({4}, 1), g); }, bad,
               {"layer_norm", "gamma", "float32[4]", "float32[3]", "[2, 3]"});
  expect_error(
      [&] {
        ops::layer_norm(x, g, random_tensor({1, 3}, 1));
      },
      bad, {"layer_norm", "beta", "[1, 3]"});
  expect_error([&] { ops::layer_norm(Tensor::scalar(1.0f), random_tensor({1}, 1), random_tensor({1}, 1)); },
               bad, {"layer_norm", "float32[]", "rank >= 1"});
  expect_error([&] { ops::layer_norm(x, g, g, -1.0f); }, bad, {"layer_norm", "epsilon", "-1"});
  expect_error([&] { ops::layer_norm(x, Tensor(), g); }, bad, {"layer_norm", "gamma"});
}

TEST(NNErrors, BatchNorm) {
  Tensor x = random_tensor({4, 3}, 1), c = random_tensor({3}, 2, 0.5f, 1.0f);
  const Code bad = Code::kInvalidArgument;
  expect_error([&] { ops::batch_norm(random_tensor({3}, 1), c, c, c, c, false); }, bad,
               {"batch_norm", "float32[3]", "rank >= 2"});
  expect_error([&] { ops::batch_norm(x, c, c, Tensor(), c, false); }, bad, {"batch_norm", "mean"});
  expect_error([&] { ops::batch_norm(x, c, c, c, random_tensor({4}, 1), false); }, bad,
               {"batch_norm", "variance", "float32[4]", "[4, 3]"});
  expect_error([&] { ops::batch_norm(x, random_tensor({2}, 1), c, c, c, true); }, bad,
               {"batch_norm", "gamma", "[2]"});
  expect_error(
      [&] {
        ops::batch_norm(Tensor::empty(DType::kFloat32, {0, 3}), c, c, c, c, true);
      },
      bad, {"batch_norm", "float32[0, 3]", "training"});
}

// The gradient of max_pool2d's backward pass with respect to its output gradient (linear, so
// central differences are exact up to rounding), and one order further, through nested tapes;
// overlapping SAME windows make the scatter add.
TEST(NNGradient, MaxPoolHasGradientsOfEveryOrder) {
  for (Padding padding : {kValid, kSame}) {
    const std::vector<int64_t> stride = padding == kValid ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{1, 1};
    const Tensor x = distinct_tensor({2, 4, 5, 3}, 3);
    const Shape y_shape = ops::max_pool2d(x, {2, 3}, stride, padding).shape();
    auto dx_of = [&](const Tensor &dy) {
      autodiff::Tape inner(false, false);
      inner.watch(x);
      const Tensor y = ops::max_pool2d(x, {2, 3}, stride, padding);
      return inner.gradient(y, {x}, autodiff::Unconnected::kZero, dy)[0];
    };
    check_gradients("max_pool2d second order", [&](const std::vector<Tensor> &in) { return dx_of(in[0]); },
                    {random_tensor(y_shape, 4)});
    // Third order: the gradient of (d dx / d dy)^T w with respect to w.
    const Tensor dy = random_tensor(y_shape, 5);
    check_gradients(
        "max_pool2d third order",
        [&](const std::vector<Tensor> &in) {
          autodiff::Tape mid(false, false);
          mid.watch(dy);
          const Tensor dx = dx_of(dy);
          return mid.gradient(dx, {dy}, autodiff::Unconnected::kZero, in[0])[0];
        },
        {random_tensor(x.shape(), 6)});
  }
}

TEST(NNGradients, MaxPoolGradientOfItsGradientPicksAtTheArgmax) {
  // d(dx)/d(dy) applied to ddx is ddx at each window's argmax of x (TF's MaxPoolGradGrad); it used
  // to be Unimplemented.
  Tensor x = make({1, 4, 4, 1}, {1, 9, 2, 3, 4, 5, 6, 7, 8, 0, 15, 11, 12, 13, 10, 14});
  Tensor dy = make({1, 2, 2, 1}, {1, 2, 3, 4});
  autodiff::Tape outer(false, false);
  outer.watch(dy);
  Tensor dx;
  {
    autodiff::Tape inner(false, false);
    inner.watch(x);
    Tensor y = ops::max_pool2d(x, {2, 2}, {2, 2}, kValid);
    dx = inner.gradient(y, {x}, autodiff::Unconnected::kZero, dy)[0];
  }
  expect_near(dx, {0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 4, 0, 0, 3, 0, 0});
  Tensor ddx = make({1, 4, 4, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  // Argmaxes at flat positions 1, 7, 13, 10.
  expect_near(outer.gradient(dx, {dy}, autodiff::Unconnected::kZero, ddx)[0], {2, 8, 14, 11});
}

// ---------------------------------------------------------------------------------------------
// A steady training loop creates no oneDNN primitive after its first step.

TEST(NNPrimitiveCache, SteadyLoopCreatesNoPrimitives) {
  // Norm shapes just above the threading threshold (the norms run kiln's own loops at every
  // size and create no primitive; conv and pool do).
  Tensor x = random_tensor({2, 7, 7, 8}, 81), f = random_tensor({3, 3, 8, 16}, 82);
  Tensor ln_x = random_tensor({128, 129}, 83), ln_c = random_tensor({129}, 84);
  Tensor bn_x = random_tensor({2, 8, 8, 129}, 85), bn_var = random_tensor({129}, 87, 0.5f, 1.5f);
  auto step = [&] {
    auto run = [](const Fn &fn, const std::vector<Tensor> &in) {
      autodiff::Tape tape(false, false);
      for (const Tensor &t : in) tape.watch(t);
      Tensor y = fn(in);
      tape.gradient(y, in, autodiff::Unconnected::kZero, y);
    };
    run(conv_fn({2, 2}, {1, 1}, kSame), {x, f});
    run(pool_fn(true, {3, 3}, {2, 2}, kSame), {x});
    run(pool_fn(false, {3, 3}, {2, 2}, kSame), {x});
    run(layer_norm_fn(), {ln_x, ln_c, ln_c});
    run(batch_norm_fn(true), {bn_x, ln_c, ln_c});
    run(batch_norm_fn(false, ln_c, bn_var), {bn_x, ln_c, ln_c});
    ops::layer_norm(ln_x, ln_c, ln_c);  // the inference-only primitive
  };
  // The filter, unchanged between steps, is reordered once: later steps take its forward and
  // input-gradient layouts from the conv filter cache instead of running the reorder primitive.
  auto hits_now = [] { return kernels::primitive_cache_stats().hits + kernels::filter_cache_stats().hits; };
  step();
  const int64_t misses = kernels::primitive_cache_stats().misses;
  const int64_t hits = hits_now();
  for (int i = 1; i < 1000; ++i) step();
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses);
  EXPECT_GE(hits_now(), hits + 999 * 10);  // conv 3, pools 2 x 2, ... per step
}

}  // namespace
}  // namespace kiln
