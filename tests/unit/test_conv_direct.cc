// The direct one-input-channel convolution (kernels/conv_direct.h), through ops::conv2d and the
// filter gradient: against float64 loops at every blocking edge (lane tails, short rows, taps
// known at compile time or not, pieces of the batch), the same bits at every thread count and on
// every compiled instruction set with FMA, TF's special values, and the cases it leaves to oneDNN.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "conv_test_util.h"
#include "core/threads.h"
#include "fused_test_util.h"
#include "kernels/conv_direct.h"
#include "kernels/simd.h"
#include "ops/conv_internal.h"
#include "ops/nn_internal.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::Padding;
using testing::ConvShape;
using testing::make;
using testing::random_tensor;
using testing::same_bits;
using testing::with_threads;

// VALID, strides and dilations 1 unless a case says otherwise.
ConvShape valid(const Shape &x, const Shape &f) { return {x, f, {1, 1}, {1, 1}, Padding::kValid}; }

std::string describe(const ConvShape &c) { return "x " + c.x.to_string() + " filter " + c.f.to_string(); }

Tensor forward(const ConvShape &c, const Tensor &x, const Tensor &f) {
  return ops::conv2d(x, f, c.s, c.d, c.p);
}
Tensor filter_grad(const ConvShape &c, const Tensor &x, const Tensor &dy) {
  return ops::internal::conv2d_backprop_filter(x, c.f, dy, c.s, c.d, c.p);
}

// y and dfilter in float64, from TF's definitions (every case here is VALID with strides 1).
struct Reference {
  std::vector<double> y, dfilter;
};
Reference reference(const ConvShape &c, const Tensor &x, const Tensor &f, const Tensor &dy) {
  const int64_t n = c.x[0], h = c.x[1], w = c.x[2], kh = c.f[0], kw = c.f[1], o = c.f[3];
  const int64_t oh = h - kh + 1, ow = w - kw + 1;
  const float *px = x.data<float>(), *pf = f.data<float>(), *pg = dy.data<float>();
  Reference r;
  r.y.assign(static_cast<size_t>(n * oh * ow * o), 0.0);
  r.dfilter.assign(static_cast<size_t>(kh * kw * o), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx)
            for (int64_t oc = 0; oc < o; ++oc) {
              const double xv = px[(b * h + oy + ky) * w + ox + kx];
              const int64_t yi = ((b * oh + oy) * ow + ox) * o + oc, fi = (ky * kw + kx) * o + oc;
              r.y[static_cast<size_t>(yi)] += xv * pf[fi];
              r.dfilter[static_cast<size_t>(fi)] += xv * pg[yi];
            }
  return r;
}

void expect_near(const Tensor &got, const std::vector<double> &want, double tol, const std::string &what) {
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size())) << what;
  const float *g = got.data<float>();
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(g[i] - want[i]) <= tol * (1.0 + std::fabs(want[i]))) && bad++ < 5)
      ADD_FAILURE() << what << " [" << i << "]: " << g[i] << " vs " << want[i];
}

// Cases the direct kernels take, cutting their blocks at every edge: output channels in whole
// vectors, pairs of vectors and lane tails (1, 5, 8, 16, 19, 32, 33, 64); rows of 1-3 columns
// (one pixel at a time), 4-7 (two overlapping blocks of four), 8 and more (blocks of eight, the
// last overlapping); 3x3 and 1x9 (nine taps unrolled) and other tap counts up to 7x7; batches
// cut into several pieces of the filter gradient (a piece's dy about 256 KiB).
std::vector<ConvShape> direct_cases() {
  return {
      valid({1, 1, 1, 1}, {1, 1, 1, 1}),     valid({2, 5, 5, 1}, {3, 3, 1, 5}),
      valid({3, 9, 12, 1}, {3, 3, 1, 19}),   valid({2, 6, 5, 1}, {2, 3, 1, 33}),
      valid({1, 12, 14, 1}, {7, 7, 1, 5}),   valid({5, 10, 16, 1}, {1, 9, 1, 16}),
      valid({2, 9, 13, 1}, {3, 3, 1, 32}),   valid({2, 28, 28, 1}, {5, 5, 1, 8}),
      valid({40, 12, 12, 1}, {3, 3, 1, 64}), valid({3, 8, 30, 1}, {2, 2, 1, 1}),
  };
}

TEST(DirectConv, TakesOneChannelValidUnitStrideConvolutions) {
  for (const ConvShape &c : direct_cases()) {
    kernels::Window2d g = ops::internal::window2d("conv2d", c.x, c.f[0], c.f[1], c.f[3], c.s, c.d, c.p);
    EXPECT_TRUE(kernels::direct_conv_applies(g)) << describe(c);
  }
  // Left to oneDNN: more than one input channel, strides, dilations, padding, more than 64 taps.
  for (const ConvShape &c : std::vector<ConvShape>{
           valid({2, 8, 8, 2}, {3, 3, 2, 4}),
           {{2, 9, 9, 1}, {3, 3, 1, 4}, {2, 2}, {1, 1}, Padding::kValid},
           {{2, 9, 9, 1}, {3, 3, 1, 4}, {1, 1}, {2, 2}, Padding::kValid},
           {{2, 9, 9, 1}, {3, 3, 1, 4}, {1, 1}, {1, 1}, Padding::kSame},
           valid({1, 12, 12, 1}, {9, 9, 1, 3}),
       }) {
    kernels::Window2d g = ops::internal::window2d("conv2d", c.x, c.f[0], c.f[1], c.f[3], c.s, c.d, c.p);
    EXPECT_FALSE(kernels::direct_conv_applies(g)) << describe(c);
  }
}

// The fused conv + pool computes a pooled row's convolution rows on the stack when they fit 16 kB
// (W5's 2 x 26 x 32 floats do); wider rows go through the batch slices (test_conv_pool_fused.cc
// checks both against the two ops).
TEST(DirectConv, FusesThePoolingWhenARowFitsTheStackBuffer) {
  const auto fuses = [](const Shape &x, const Shape &f) {
    const kernels::Window2d g =
        ops::internal::window2d("conv2d", x, f[0], f[1], f[3], {1, 1}, {1, 1}, Padding::kValid);
    const kernels::Window2d pool = ops::internal::window2d("max_pool2d", ops::internal::output_shape(g), 2, 2,
                                                           f[3], {2, 2}, {1, 1}, Padding::kValid);
    return kernels::direct_conv_fuses_pool(g, pool);
  };
  EXPECT_TRUE(fuses({128, 28, 28, 1}, {3, 3, 1, 32}));
  EXPECT_FALSE(fuses({1, 6, 70, 1}, {3, 3, 1, 32}));
}

TEST(DirectConv, MatchesFloat64Loops) {
  unsigned seed = 100;
  for (const ConvShape &c : direct_cases()) {
    SCOPED_TRACE(describe(c));
    const Tensor x = random_tensor(c.x, seed++), f = random_tensor(c.f, seed++);
    const Tensor y = forward(c, x, f);
    const Tensor dy = random_tensor(y.shape(), seed++);
    const Reference want = reference(c, x, f, dy);
    expect_near(y, want.y, 1e-5, "y");
    expect_near(filter_grad(c, x, dy), want.dfilter, 1e-4, "dfilter");
  }
}

// The forward pass, its input and filter gradients (through a tape) at 1 to 4 threads.
TEST(DirectConv, SameBitsAtEveryThreadCount) {
  unsigned seed = 200;
  for (const ConvShape &c : direct_cases()) {
    SCOPED_TRACE(describe(c));
    const Tensor x = random_tensor(c.x, seed++), f = random_tensor(c.f, seed++);
    const auto run = [&] {
      return testing::conv_grads(
          [&](const Tensor &a, const Tensor &b, const Tensor &) { return forward(c, a, b); },
          testing::ConvOperands{x, f, Tensor()});
    };
    const Tensor y = with_threads(1, [&] { return forward(c, x, f); });
    const std::vector<Tensor> grads = with_threads(1, run);
    for (int threads : {2, 3, 4}) {
      EXPECT_TRUE(same_bits(with_threads(threads, [&] { return forward(c, x, f); }), y)) << threads;
      const std::vector<Tensor> got = with_threads(threads, run);
      ASSERT_EQ(got.size(), grads.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same_bits(got[i], grads[i])) << threads << " threads, d" << i;
    }
  }
}

// TF's float arithmetic, no flushing: each sum starts at +0 (so products of -0 sum to +0), a NaN
// or an inf times 0 makes NaN, infs stay, denormal products are kept.
TEST(DirectConv, SpecialValuesAsTensorFlow) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float tiny = std::numeric_limits<float>::denorm_min() * 3;
  const ConvShape c = valid({1, 2, 3, 1}, {2, 2, 1, 3});  // two outputs (columns), three channels
  // Filter [2, 2, 1, 3]: channel 0 all -0, channel 1 all 1, channel 2 (1, 0, 0, 0).
  const Tensor f = make(c.f, {-0.0f, 1, 1, -0.0f, 1, 0, -0.0f, 1, 0, -0.0f, 1, 0});
  // Column 0 of the output reads x columns 0-1, column 1 reads columns 1-2.
  const Tensor x = make(c.x, {tiny, 2, inf, 0.5f, 0.25f, nan});
  const Tensor y = forward(c, x, f);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 3}));
  const float *p = y.data<float>();
  // Channel 0: output 0 sums tiny*-0, 2*-0, 0.5*-0, 0.25*-0 from +0: +0. Output 1 reads inf: NaN.
  EXPECT_EQ(p[0], 0.0f);
  EXPECT_FALSE(std::signbit(p[0]));
  EXPECT_TRUE(std::isnan(p[3]));
  // Channel 1: output 0 = tiny + 2 + 0.5 + 0.25, output 1 = 2 + inf + 0.25 + NaN.
  EXPECT_EQ(p[1], (tiny + 2.0f) + 0.5f + 0.25f);
  EXPECT_TRUE(std::isnan(p[4]));
  // Channel 2: output 0 = tiny exactly (a denormal, not flushed); output 1 = 2 + inf * 0 + ...:
  // NaN (a zero weight does not hide an inf, as in TF).
  EXPECT_EQ(p[2], tiny);
  EXPECT_TRUE(std::isnan(p[5]));
  // The filter gradient from dy = 1 where x is finite: +inf * 1 stays inf, NaN * 1 stays NaN.
  const ConvShape row = valid({1, 1, 4, 1}, {1, 1, 1, 2});
  const Tensor xr = make(row.x, {tiny, inf, -0.0f, 1}), dyr = make({1, 1, 4, 2}, {1, 0, 1, 0, 1, 0, 1, 0});
  const Tensor dfr = filter_grad(row, xr, dyr);
  EXPECT_EQ(dfr.data<float>()[0], inf);
  EXPECT_TRUE(std::isnan(dfr.data<float>()[1]));  // inf * 0
}

// Equal to rounding: NaN where want is NaN, the same infinity, else within tol * (1 + |want|).
::testing::AssertionResult close_values(const Tensor &got, const Tensor &want, float tol) {
  if (got.shape() != want.shape()) return ::testing::AssertionFailure() << "shapes differ";
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const float g = got.data<float>()[i], w = want.data<float>()[i];
    const bool ok = std::isnan(w)   ? std::isnan(g)
                    : std::isinf(w) ? g == w
                                    : std::fabs(g - w) <= tol * (1 + std::fabs(w));
    if (!ok) return ::testing::AssertionFailure() << "element " << i << ": " << g << " vs " << w;
  }
  return ::testing::AssertionSuccess();
}

// Every compiled instruction set with FMA gives one set of bits (each output and each filter
// gradient entry is one lane's chain of FMAs, whatever the vector width); those without FMA (a
// multiply and an add) stay within rounding of them.
TEST(DirectConv, EveryCompiledTargetAgrees) {
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  ASSERT_FALSE(targets.empty());
  unsigned seed = 300;
  for (const ConvShape &c : {direct_cases()[2], direct_cases()[4], direct_cases()[6], direct_cases()[8]}) {
    const Tensor x = random_tensor(c.x, seed++), f = random_tensor(c.f, seed++);
    const Tensor y = forward(c, x, f);
    const Tensor dy = random_tensor(y.shape(), seed++);
    const Tensor df = filter_grad(c, x, dy);
    const Tensor xs = testing::salted(c.x, seed++);
    const Tensor ys = forward(c, xs, f), dfs = filter_grad(c, xs, dy);
    for (int64_t target : targets) {
      kernels::simd::force_target(target);
      const std::string name = kernels::simd::target_name(target);
      SCOPED_TRACE(name + " " + describe(c));
      const Tensor yt = forward(c, x, f), dft = filter_grad(c, x, dy);
      if (name.rfind("AVX", 0) == 0) {
        EXPECT_TRUE(testing::same_values(yt, y));
        EXPECT_TRUE(testing::same_values(dft, df));
        EXPECT_TRUE(testing::same_values(forward(c, xs, f), ys));  // NaN, infs, zeros, denormals
        EXPECT_TRUE(testing::same_values(filter_grad(c, xs, dy), dfs));
      } else {
        EXPECT_TRUE(close_values(yt, y, 1e-5f));
        EXPECT_TRUE(close_values(dft, df, 1e-4f));
      }
    }
    kernels::simd::force_target(0);
  }
}

}  // namespace
}  // namespace kiln
