// ops::conv2d_bias_act with max_pool (a Conv2D with relu and the MaxPooling2D after it as one op)
// against the two ops it replaces, conv2d_bias_act then max_pool2d: the forward bits at every
// geometry, thread count and special value; the input and filter gradients bit for bit and the
// bias gradient (summed over the pooled cells instead of all of them) to rounding; nested tapes;
// the compositions it falls back to; and a Sequential running the pair fused.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "core/rng.h"
#include "core/threads.h"
#include "fused_test_util.h"
#include "kernels/engine.h"
#include "kernels/simd.h"
#include "layers/layer.h"
#include "layers/sequential.h"
#include "ops/ops.h"
#include "special_values_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::Padding;
using testing::A;
using testing::random_tensor;
using testing::salted;
using testing::same_values;
using testing::with_threads;

// x [N, H, W, C], filter [KH, KW, C, O], conv strides and padding, the pool size.
struct Geo {
  Shape x, f;
  std::vector<int64_t> s;
  Padding p;
  std::vector<int64_t> pool;
};

const std::vector<Geo> &geometries() {
  static const std::vector<Geo> g = {
      // W5's two pairs at batch 30 / 8: 26x26 -> 13x13 (in batch slices of 12, 12 and 6: a slice's
      // convolution output is at most 1 MiB), and 11x11 -> 5x5 (the last row and column in no window).
      {Shape{30, 28, 28, 1}, Shape{3, 3, 1, 32}, {1, 1}, Padding::kValid, {2, 2}},
      {Shape{8, 13, 13, 32}, Shape{3, 3, 32, 64}, {1, 1}, Padding::kValid, {2, 2}},
      // Channels that are no whole vector (a lane tail), non-square windows, SAME convolutions.
      {Shape{2, 9, 10, 3}, Shape{3, 3, 3, 5}, {1, 1}, Padding::kSame, {3, 2}},
      {Shape{3, 8, 8, 2}, Shape{2, 2, 2, 19}, {2, 1}, Padding::kValid, {1, 3}},
      {Shape{1, 6, 6, 4}, Shape{1, 1, 4, 1}, {1, 1}, Padding::kValid, {2, 2}},
      // One input channel (the direct kernels, kernels/conv_direct.h): lane tails, short rows, a
      // last row and column in no window, 3x2 windows.
      {Shape{3, 11, 9, 1}, Shape{3, 3, 1, 19}, {1, 1}, Padding::kValid, {2, 2}},
      {Shape{2, 7, 20, 1}, Shape{2, 2, 1, 5}, {1, 1}, Padding::kValid, {3, 2}},
      // Rows too wide for the direct kernel's stack buffer: the batch slices, direct conv then pool.
      {Shape{1, 6, 70, 1}, Shape{3, 3, 1, 32}, {1, 1}, Padding::kValid, {2, 2}},
  };
  return g;
}

using Operands = testing::ConvOperands;

Operands operands(const Geo &geo, unsigned seed) {
  return {random_tensor(geo.x, seed, -2.0f, 2.0f), random_tensor(geo.f, seed + 1, -0.5f, 0.5f),
          random_tensor(Shape{geo.f[3]}, seed + 2, -1.0f, 1.0f)};
}

// The two ops for geo: conv2d_bias_act, then max_pool2d.
testing::ConvFn unfused(const Geo &geo, A act = A::kRelu) {
  return [geo, act](const Tensor &x, const Tensor &f, const Tensor &b) {
    return ops::max_pool2d(ops::conv2d_bias_act(x, f, b, geo.s, {1, 1}, geo.p, act), geo.pool, geo.pool,
                           Padding::kValid);
  };
}

// The fused op for geo: conv2d_bias_act with the pool size.
testing::ConvFn fused(const Geo &geo, A act = A::kRelu) {
  return [geo, act](const Tensor &x, const Tensor &f, const Tensor &b) {
    return ops::conv2d_bias_act(x, f, b, geo.s, {1, 1}, geo.p, act, 0.0f, geo.pool);
  };
}

// The bias gradient sums the same terms in another order: equal to a few ulps of the terms' sum.
::testing::AssertionResult close_sums(const Tensor &got, const Tensor &want, const Tensor &terms_scale) {
  if (got.shape() != want.shape()) return ::testing::AssertionFailure() << "shapes differ";
  const float scale = std::max(1.0f, terms_scale.data<float>()[0]);
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const float g = got.data<float>()[i], w = want.data<float>()[i];
    if (std::isnan(g) != std::isnan(w) || (!std::isnan(g) && std::fabs(g - w) > 1e-5f * scale))
      return ::testing::AssertionFailure() << "element " << i << ": " << g << " vs " << w;
  }
  return ::testing::AssertionSuccess();
}

void expect_same_gradients(const std::vector<Tensor> &got, const std::vector<Tensor> &want,
                           const std::string &where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  EXPECT_TRUE(same_values(got[0], want[0])) << where << " dx";
  EXPECT_TRUE(same_values(got[1], want[1])) << where << " dfilter";
  if (got.size() > 2) {
    const Tensor scale = ops::sum(ops::abs(want[0]), {}, false);  // any magnitude of the terms
    EXPECT_TRUE(close_sums(got[2], want[2], ops::add(scale, ops::max(ops::abs(want[2]), {}, false))))
        << where << " dbias";
  }
}

TEST(ConvPoolFused, ForwardBitwiseAndGradientsMatchTheTwoOps) {
  unsigned seed = 1;
  for (const Geo &geo : geometries()) {
    const Operands o = operands(geo, seed);
    seed += 3;
    for (bool with_bias : {true, false})
      for (int threads : {1, 2}) {
        const Operands oo{o.x, o.f, with_bias ? o.b : Tensor()};
        const std::string where = "x " + geo.x.to_string() + " filter " + geo.f.to_string() + " pool " +
                                  std::to_string(geo.pool[0]) + "x" + std::to_string(geo.pool[1]) + " bias " +
                                  std::to_string(with_bias) + " threads " + std::to_string(threads);
        const testing::ConvFn u = unfused(geo), z = fused(geo);
        EXPECT_TRUE(same_values(with_threads(threads, [&] { return z(oo.x, oo.f, oo.b); }),
                                with_threads(threads, [&] { return u(oo.x, oo.f, oo.b); })))
            << where;
        expect_same_gradients(with_threads(threads, [&] { return testing::conv_grads(z, oo); }),
                              with_threads(threads, [&] { return testing::conv_grads(u, oo); }), where);
      }
  }
}

// The input not watched (a network's first layer): the routing writes the filter gradient's
// batch pieces one by one into per-thread buffers (ops/nn.cc's routed_filter_grad) with the bits
// of the routing then the filter gradient, on 1 to 3 threads, at batches of 1 (pieces of rows:
// the gradient made whole first), 7, 30 (8 pieces, the last shorter) and 128 (W5's).
TEST(ConvPoolFused, FilterGradientAloneMatchesTheTwoOps) {
  std::vector<Geo> geos = geometries();
  geos.push_back({Shape{128, 28, 28, 1}, Shape{3, 3, 1, 32}, {1, 1}, Padding::kValid, {2, 2}});
  geos.push_back({Shape{7, 12, 12, 3}, Shape{3, 3, 3, 8}, {1, 1}, Padding::kSame, {2, 2}});
  unsigned seed = 90;
  for (const Geo &geo : geos) {
    const Operands o = operands(geo, seed);
    seed += 3;
    const testing::ConvFn u = unfused(geo), z = fused(geo);
    for (bool with_bias : {true, false})
      for (int threads : {1, 2, 3}) {
        const Operands oo{o.x, o.f, with_bias ? o.b : Tensor()};
        const std::vector<Tensor> want = with_threads(threads,
                                                      [&] { return testing::conv_grads(u, oo, false); }),
                                  got = with_threads(threads,
                                                     [&] { return testing::conv_grads(z, oo, false); });
        ASSERT_EQ(got.size(), want.size());
        const std::string where = "x " + geo.x.to_string() + " bias " + std::to_string(with_bias) +
                                  " threads " + std::to_string(threads);
        EXPECT_TRUE(same_values(got[0], want[0])) << where << " dfilter";
        if (!with_bias) continue;
        const Tensor scale =
            ops::add(ops::sum(ops::abs(want[0]), {}, false), ops::max(ops::abs(want[1]), {}, false));
        EXPECT_TRUE(close_sums(got[1], want[1], scale)) << where << " dbias";
      }
  }
}

// NaN, +-inf, -0 and denormals in the input and the bias: NaN never wins a window, equal maxima
// route to the first, a window of NaNs routes nothing.
TEST(ConvPoolFused, SpecialValuesMatchTheTwoOps) {
  for (const Geo &geo : {Geo{Shape{2, 8, 8, 3}, Shape{3, 3, 3, 20}, {1, 1}, Padding::kSame, {2, 2}},
                         Geo{Shape{2, 7, 7, 3}, Shape{1, 1, 3, 16}, {1, 1}, Padding::kValid, {3, 3}}}) {
    const Operands o{salted(geo.x, 3u), random_tensor(geo.f, 4u), salted(Shape{geo.f[3]}, 6u)};
    const testing::ConvFn u = unfused(geo), z = fused(geo);
    EXPECT_TRUE(same_values(z(o.x, o.f, o.b), u(o.x, o.f, o.b))) << geo.x.to_string();
    const std::vector<Tensor> want = testing::conv_grads(u, o), got = testing::conv_grads(z, o);
    EXPECT_TRUE(same_values(got[0], want[0])) << geo.x.to_string();
    EXPECT_TRUE(same_values(got[1], want[1])) << geo.x.to_string();
    EXPECT_TRUE(same_values(testing::conv_grads(z, o, false)[0], testing::conv_grads(u, o, false)[0]))
        << geo.x.to_string() << " dfilter alone";
  }
  // A 1x1 filter of ones over single-channel 2x2 windows (and, transposed, their mirror images):
  // a window of NaNs only, NaN beside numbers, exact ties, a window of -0, 0 and negatives (all 0
  // after relu), infinities and a denormal.
  const float nan = std::nanf(""), inf = INFINITY;
  const Tensor x = testing::make(Shape{1, 4, 6, 1}, {nan,   nan,  1.0f, 1.0f, -0.0f,  -2.0f,  //
                                                     nan,   nan,  nan,  2.0f, 0.0f,   -1.0f,  //
                                                     -0.0f, 0.0f, inf,  nan,  1e-40f, nan,    //
                                                     3.0f,  3.0f, 1.0f, -inf, -inf,   0.0f});
  const Geo geo{Shape{1, 4, 6, 1}, Shape{1, 1, 1, 1}, {1, 1}, Padding::kValid, {2, 2}};
  const Tensor f = testing::make(Shape{1, 1, 1, 1}, {1.0f});
  const Operands o{ops::transpose(x, {0, 2, 1, 3}), f, testing::make(Shape{1}, {0.0f})};
  for (const Tensor &xx : {x, o.x}) {
    const Operands oo{xx, o.f, o.b};
    const testing::ConvFn u = unfused(geo), z = fused(geo);
    EXPECT_TRUE(same_values(z(oo.x, oo.f, oo.b), u(oo.x, oo.f, oo.b)));
    const std::vector<Tensor> want = testing::conv_grads(u, oo), got = testing::conv_grads(z, oo);
    EXPECT_TRUE(same_values(got[0], want[0]));
    EXPECT_TRUE(same_values(got[1], want[1]));
    EXPECT_TRUE(same_values(testing::conv_grads(z, oo, false)[0], testing::conv_grads(u, oo, false)[0]));
  }
}

// The pooling pass and the routing run in Highway vectors chosen at run time: every compiled
// instruction set this CPU runs (down to the scalar fallback) gives the same output and gradients,
// lane tails and special values included.
TEST(ConvPoolFused, EveryCompiledTargetGivesTheSameBits) {
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  ASSERT_FALSE(targets.empty());
  for (const Geo &geo : {geometries()[2], geometries()[3]}) {
    const Operands o{salted(geo.x, 13u), random_tensor(geo.f, 14u), salted(Shape{geo.f[3]}, 15u)};
    const testing::ConvFn z = fused(geo);
    const Tensor want = z(o.x, o.f, o.b);
    const std::vector<Tensor> want_grads = testing::conv_grads(z, o);
    for (int64_t target : targets) {
      kernels::simd::force_target(target);
      SCOPED_TRACE(kernels::simd::target_name(target));
      EXPECT_TRUE(same_values(z(o.x, o.f, o.b), want)) << geo.x.to_string();
      const std::vector<Tensor> got = testing::conv_grads(z, o);
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same_values(got[i], want_grads[i])) << geo.x.to_string() << " d" << i;
      EXPECT_TRUE(same_values(testing::conv_grads(z, o, false)[0], want_grads[1])) << geo.x.to_string();
    }
    kernels::simd::force_target(0);
  }
}

// Second order: the outer tape differentiates the inner gradient (the routing's adjoint is
// recorded), to rounding of the bias sums.
TEST(ConvPoolFused, NestedTapesMatchTheTwoOps) {
  const Geo geo{Shape{2, 6, 6, 2}, Shape{3, 3, 2, 3}, {1, 1}, Padding::kSame, {2, 2}};
  const Operands o = operands(geo, 60u);
  for (size_t wrt : {0u, 1u, 2u}) {
    const testing::ConvFn u = unfused(geo), z = fused(geo);
    const std::vector<Tensor> want = testing::conv_second_order(u, o, wrt),
                              got = testing::conv_second_order(z, o, wrt);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const Tensor scale = ops::add(ops::sum(ops::abs(want[i]), {}, false), testing::make(Shape{}, {1.0f}));
      EXPECT_TRUE(close_sums(got[i], want[i], scale)) << "wrt " << wrt << " d" << i;
    }
  }
}

// What does not fuse runs as the two ops: another activation, a pooling that does not tile its
// input (a single window narrower than the stride TF's arithmetic leaves), an empty batch.
TEST(ConvPoolFused, OtherCasesAreTheTwoOpsBitwise) {
  const Geo tanh_geo = geometries()[2];
  const Geo narrow{Shape{2, 4, 4, 3}, Shape{3, 3, 3, 4}, {1, 1}, Padding::kValid, {2, 2}};  // 2x2 -> 1x1
  const Geo empty{Shape{0, 6, 6, 3}, Shape{3, 3, 3, 4}, {1, 1}, Padding::kValid, {2, 2}};
  for (const auto &[geo, act] : std::vector<std::pair<Geo, A>>{
           {tanh_geo, A::kTanh}, {narrow, A::kRelu}, {empty, A::kRelu}, {narrow, A::kLinear}}) {
    const Operands o = operands(geo, 21u);
    const testing::ConvFn u = unfused(geo, act), z = fused(geo, act);
    EXPECT_TRUE(same_values(z(o.x, o.f, o.b), u(o.x, o.f, o.b))) << geo.x.to_string();
    const std::vector<Tensor> want = testing::conv_grads(u, o), got = testing::conv_grads(z, o);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_values(got[i], want[i])) << geo.x.to_string();
  }
}

TEST(ConvPoolFused, BadPoolSizesAreInvalidArgument) {
  const Geo &geo = geometries()[0];
  const Operands o = operands(geo, 90u);
  testing::expect_error(
      [&] {
        ops::conv2d_bias_act(o.x, o.f, o.b, geo.s, {1, 1}, geo.p, A::kRelu, 0.0f, {2, 0});
      },
      Code::kInvalidArgument, {"conv2d", "ksize", "[2, 0]"});
  testing::expect_error(
      [&] {
        ops::conv2d_bias_act(o.x, o.f, o.b, geo.s, {1, 1}, geo.p, A::kRelu, 0.0f, {27, 2});
      },
      Code::kInvalidArgument, {"conv2d", "27x2", "empty"});
}

// A Sequential runs Conv2D(relu) + MaxPooling2D as the fused op: the same output as calling the
// layers one by one, the same kernel gradients, the bias gradients to rounding, and one oneDNN
// primitive lookup fewer per pair (no pooling primitive).
TEST(ConvPoolFused, SequentialFusesConvAndPooling) {
  set_global_seed(5);
  auto seq = std::dynamic_pointer_cast<layers::Sequential>(layers::create_layer("Sequential", Config()));
  ASSERT_TRUE(seq);
  seq->add(layers::create_layer("Conv2D",
                                Config::from_json(R"({"filters": 8, "kernel_size": 3, "activation": "relu",
                                      "bias_initializer": "random_normal"})")));
  seq->add(layers::create_layer("MaxPooling2D", Config::from_json("{}")));
  seq->add(layers::create_layer("Conv2D", Config::from_json(R"({"filters": 4, "kernel_size": 2,
                                                                  "activation": "relu"})")));
  seq->add(layers::create_layer("MaxPooling2D", Config::from_json(R"({"pool_size": [2, 2], "strides": 1})")));
  seq->add(layers::create_layer("Flatten", Config::from_json("{}")));
  const Tensor x = random_tensor(Shape{3, 12, 12, 2}, 8u);
  (*seq)(x);  // builds
  auto one_by_one = [&](const Tensor &in) {
    Tensor y = in;
    for (const layers::LayerPtr &l : seq->layers()) y = (*l)(y);
    return y;
  };
  auto lookups = [](const std::function<Tensor()> &f) {
    const kernels::PrimitiveCacheStats a = kernels::primitive_cache_stats();
    f();
    const kernels::PrimitiveCacheStats b = kernels::primitive_cache_stats();
    return (b.hits + b.misses) - (a.hits + a.misses);
  };
  EXPECT_TRUE(same_values((*seq)(x), one_by_one(x)));
  // The first pair fuses; the second pools with stride 1 (overlapping windows) and does not.
  EXPECT_EQ(lookups([&] { return (*seq)(x); }) + 1, lookups([&] { return one_by_one(x); }));
  auto weight_grads = [&](const std::function<Tensor(const Tensor &)> &f) {
    autodiff::Tape tape(false, true);
    const Tensor y = f(x);
    tape.stop_recording();
    autodiff::GradientSources sources;
    for (const layers::VariablePtr &v : seq->trainable_variables()) sources.push_back(*v);
    return tape.gradient(y, sources, autodiff::Unconnected::kZero, random_tensor(y.shape(), 9u));
  };
  const std::vector<Tensor> got = weight_grads([&](const Tensor &in) { return (*seq)(in); });
  const std::vector<Tensor> want = weight_grads(one_by_one);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_TRUE(same_values(got[0], want[0]));  // first kernel
  const Tensor scale = ops::sum(ops::abs(want[0]), {}, false);
  EXPECT_TRUE(close_sums(got[1], want[1], scale));  // first bias
  EXPECT_TRUE(same_values(got[2], want[2]));
  EXPECT_TRUE(same_values(got[3], want[3]));
}

}  // namespace
}  // namespace kiln
