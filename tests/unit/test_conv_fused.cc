// ops::conv2d_bias_act (the bias in the convolution primitive, the activation in place on its
// output) against the composition it replaces in the Conv2D layer, conv2d -> bias_add ->
// activation op: the same bits forward and backward at every geometry, fusable activation, thread
// count and special value; nested tapes; empty operands; bad inputs.
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "core/threads.h"
#include "fused_test_util.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "layers/layer.h"
#include "ops/elementwise_internal.h"
#include "ops/fused_activation.h"
#include "ops/ops.h"
#include "special_values_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::Padding;
using testing::A;
using testing::Act;
using testing::activate;
using testing::random_tensor;
using testing::salted;
using testing::same_values;
using testing::with_threads;

// The activations whose gradient reads the output: the ones the convolution takes.
const std::vector<Act> &fusable() {
  static const std::vector<Act> acts = {
      {"linear", A::kLinear, 0.0f},   {"relu", A::kRelu, 0.0f},
      {"relu6", A::kRelu6, 0.0f},     {"leaky_relu", A::kLeakyRelu, 0.2f},
      {"sigmoid", A::kSigmoid, 0.0f}, {"tanh", A::kTanh, 0.0f},
      {"elu", A::kElu, 1.0f},         {"selu", A::kSelu, 0.0f},
      {"exp", A::kExp, 0.0f},
  };
  return acts;
}

// A geometry: x [N, H, W, C], filter [KH, KW, C, O], strides, dilations, padding.
struct Geo {
  Shape x, f;
  std::vector<int64_t> s, d;
  Padding p;
};

const std::vector<Geo> &geometries() {
  static const std::vector<Geo> g = {
      {Shape{1, 5, 5, 1}, Shape{3, 3, 1, 2}, {1, 1}, {1, 1}, Padding::kValid},
      {Shape{2, 7, 6, 3}, Shape{2, 3, 3, 5}, {2, 1}, {1, 1}, Padding::kSame},
      {Shape{3, 9, 9, 4}, Shape{3, 3, 4, 8}, {1, 1}, {2, 2}, Padding::kSame},
      // W5's layers, batch 8 (both sides of the elementwise threshold, filter gradients in pieces).
      {Shape{8, 28, 28, 1}, Shape{3, 3, 1, 32}, {1, 1}, {1, 1}, Padding::kValid},
      {Shape{8, 13, 13, 32}, Shape{3, 3, 32, 64}, {1, 1}, {1, 1}, Padding::kValid},
      {Shape{1, 12, 12, 16}, Shape{1, 1, 16, 16}, {1, 1}, {1, 1}, Padding::kValid},
  };
  return g;
}

using Operands = testing::ConvOperands;

Operands operands(const Geo &geo, unsigned seed) {
  return {random_tensor(geo.x, seed, -2.0f, 2.0f), random_tensor(geo.f, seed + 1, -0.5f, 0.5f),
          random_tensor(Shape{geo.f[3]}, seed + 2, -1.0f, 1.0f)};
}

// The three ops for geo and a: conv2d, bias_add (when there is a bias), the activation.
testing::ConvFn unfused(const Geo &geo, const Act &a) {
  return [geo, a](const Tensor &x, const Tensor &f, const Tensor &b) {
    Tensor y = ops::conv2d(x, f, geo.s, geo.d, geo.p);
    if (b.defined()) y = ops::bias_add(y, b);
    return activate(y, a);
  };
}

// The fused op for geo and a.
testing::ConvFn fused(const Geo &geo, const Act &a) {
  return [geo, a](const Tensor &x, const Tensor &f, const Tensor &b) {
    return ops::conv2d_bias_act(x, f, b, geo.s, geo.d, geo.p, a.act, a.alpha);
  };
}

TEST(ConvFused, ForwardAndGradientsMatchTheThreeOpsBitwise) {
  unsigned seed = 1;
  for (const Geo &geo : geometries()) {
    const Operands o = operands(geo, seed);
    seed += 3;
    for (const Act &a : fusable())
      for (bool with_bias : {true, false})
        for (int threads : {1, 2}) {
          const Operands oo{o.x, o.f, with_bias ? o.b : Tensor()};
          const std::string where = std::string(a.name) + " x " + geo.x.to_string() + " filter " +
                                    geo.f.to_string() + " bias " + std::to_string(with_bias) + " threads " +
                                    std::to_string(threads);
          const testing::ConvFn u = unfused(geo, a), z = fused(geo, a);
          EXPECT_TRUE(same_values(with_threads(threads, [&] { return z(oo.x, oo.f, oo.b); }),
                                  with_threads(threads, [&] { return u(oo.x, oo.f, oo.b); })))
              << where;
          const std::vector<Tensor> want = with_threads(threads, [&] { return testing::conv_grads(u, oo); });
          const std::vector<Tensor> got = with_threads(threads, [&] { return testing::conv_grads(z, oo); });
          ASSERT_EQ(got.size(), want.size()) << where;
          for (size_t i = 0; i < got.size(); ++i)
            EXPECT_TRUE(same_values(got[i], want[i])) << where << " d" << i;
        }
  }
}

// The epilogue's kernel alone: odd channel counts whose rows straddle its blocks and the threads'
// chunks give the bits of bias_add then the activation, at 1 to 3 threads.
TEST(ConvFused, BiasActivationPassMatchesTheTwoOpsAtEverySplit) {
  for (int64_t channels : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{4097}}) {
    const int64_t rows = (kernels::kElementwiseLargeThreshold * 3) / channels + 5;
    const Tensor z = random_tensor(Shape{rows, channels}, 11u, -3.0f, 3.0f);
    const Tensor b = random_tensor(Shape{channels}, 12u, -1.0f, 1.0f);
    for (const Act &a : fusable())
      for (int threads : {1, 2, 3}) {
        Tensor got = ops::add(z, ops::zeros_like(z));  // a private copy to work on in place
        const std::optional<kernels::UnaryOp> op = ops::internal::activation_kernel(a.act, "test").op;
        with_threads(threads, [&] {
          kernels::bias_unary_inplace(got.mutable_data<float>(), got.num_elements(), b.data<float>(),
                                      channels, op ? &*op : nullptr,
                                      ops::internal::activation_kernel_alpha(a.act, a.alpha));
          return 0;
        });
        EXPECT_TRUE(same_values(got, activate(ops::bias_add(z, b), a)))
            << a.name << " channels " << channels << " threads " << threads;
      }
  }
}

// The backward's relu-gradient-and-bias-sum pass alone: the bits of relu_grad then sum_to_shape
// below and above the reduction's threshold, with fewer rows than its parts, with 128 and more columns
// (where the sum splits by columns), at 1 to 3 threads, with NaN, infinities, -0 and denormals in y
// and dy.
TEST(ConvFused, ReluGradientAndBiasSumMatchTheTwoOps) {
  const int64_t shapes[][2] = {{2, 2},     {3, 5},     {7, 33},    {5, 4100},   {1023, 32},
                               {1024, 32}, {1025, 32}, {9, 5000},  {333, 129},  {2000, 64},
                               {17, 2049}, {3000, 4},  {40000, 3}, {20000, 130}};
  unsigned seed = 90;
  for (const auto &rc : shapes) {
    const Shape shape{rc[0], rc[1]};
    const Tensor y = salted(shape, seed++), dy = salted(shape, seed++);
    for (float alpha : {0.0f, 0.2f})
      for (int threads : {1, 2, 3}) {
        const std::string where =
            shape.to_string() + " alpha " + std::to_string(alpha) + " threads " + std::to_string(threads);
        Tensor dx = Tensor::empty(DType::kFloat32, shape), db = Tensor::empty(DType::kFloat32, Shape{rc[1]});
        with_threads(threads, [&] {
          kernels::relu_grad_column_sum(y.data<float>(), dy.data<float>(), dx.mutable_data<float>(),
                                        db.mutable_data<float>(), rc[0], rc[1], alpha);
          return 0;
        });
        const Tensor want_dx = with_threads(threads, [&] { return ops::internal::relu_grad(y, dy, alpha); });
        const Tensor want_db =
            with_threads(threads, [&] { return ops::sum_to_shape(want_dx, Shape{rc[1]}); });
        EXPECT_TRUE(same_values(dx, want_dx)) << where;
        EXPECT_TRUE(same_values(db, want_db)) << where;
      }
  }
  float v[4] = {};
  EXPECT_THROW(kernels::relu_grad_column_sum(v, v, v, v, 1, 4, 0.0f), Error);
  EXPECT_THROW(kernels::relu_grad_column_sum(v, v, v, v, 4, 1, 0.0f), Error);
}

// pre_activation_grads writes gz over g only when g is the one handle on a buffer kiln owns, and
// gives the same bits either way (in place at every element, special values included).
TEST(ConvFused, ReluGradientOverwritesOnlyAnUnsharedGradient) {
  const Shape shape{2000, 64};  // above the reduction's threshold: the parts run on threads
  const Tensor y = salted(shape, 7), dy = salted(shape, 8);
  const auto fresh = [&] { return Tensor::from_data(DType::kFloat32, shape, dy.raw_data(), dy.byte_size()); };
  const Tensor want_gz = ops::internal::relu_grad(y, dy, 0.0f);
  const Tensor want_db = ops::sum_to_shape(want_gz, Shape{64});
  const auto grads = [&](const Tensor &g) {
    return ops::internal::pre_activation_grads(ops::DenseActivation::kRelu, 0.0f, g, y, Tensor(), Tensor(),
                                               true, 64);
  };
  {
    Tensor g = fresh();
    const void *buffer = g.raw_data();
    const auto out = grads(std::move(g));  // the only handle: the rule may write over it
    EXPECT_EQ(out.gz.raw_data(), buffer);
    EXPECT_TRUE(same_values(out.gz, want_gz));
    EXPECT_TRUE(same_values(out.dbias, want_db));
  }
  {
    const Tensor g = fresh(), held = g;  // another handle sees g: it must not change
    const auto out = grads(g);
    EXPECT_NE(out.gz.raw_data(), g.raw_data());
    EXPECT_TRUE(same_values(g, dy));
    EXPECT_TRUE(same_values(out.gz, want_gz));
    EXPECT_TRUE(same_values(out.dbias, want_db));
  }
  {
    std::vector<float> caller(dy.data<float>(), dy.data<float>() + dy.num_elements());
    Tensor g =
        Tensor::from_storage(DType::kFloat32, shape,
                             Storage::adopt(caller.data(), caller.size() * sizeof(float), nullptr, nullptr));
    const auto out = grads(std::move(g));  // the caller's buffer: never written
    EXPECT_NE(out.gz.raw_data(), static_cast<const void *>(caller.data()));
    EXPECT_EQ(std::memcmp(caller.data(), dy.raw_data(), dy.byte_size()), 0);
    EXPECT_TRUE(same_values(out.gz, want_gz));
  }
  {
    // A variable's read as the only handle: the buffer is the variable's, never written.
    autodiff::Variable v("v", dy, true);
    Tensor g = v.peek();
    const void *buffer = g.raw_data();
    const auto out = grads(std::move(g));
    EXPECT_NE(out.gz.raw_data(), buffer);
    EXPECT_TRUE(same_values(v.peek(), dy));
    EXPECT_TRUE(same_values(out.gz, want_gz));
  }
}

TEST(ConvFused, SpecialValuesMatchTheThreeOps) {
  const Geo geo{Shape{2, 8, 8, 3}, Shape{3, 3, 3, 4}, {1, 1}, {1, 1}, Padding::kSame};
  const Operands o{salted(geo.x, 3u), random_tensor(geo.f, 4u), salted(Shape{4}, 6u)};
  for (const Act &a : fusable()) {
    const testing::ConvFn u = unfused(geo, a), z = fused(geo, a);
    EXPECT_TRUE(same_values(z(o.x, o.f, o.b), u(o.x, o.f, o.b))) << a.name;
    const std::vector<Tensor> want = testing::conv_grads(u, o), got = testing::conv_grads(z, o);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_values(got[i], want[i])) << a.name << " d" << i;
  }
}

// Only what a tape watches gets a gradient (the first layer's input gradient is skipped).
TEST(ConvFused, UnwatchedInputsGetNoGradient) {
  const Geo &geo = geometries()[1];
  const Operands o = operands(geo, 40u);
  const Act relu{"relu", A::kRelu, 0.0f};
  autodiff::Tape tape(false, false);
  tape.watch(o.f);
  tape.watch(o.b);
  const Tensor y = fused(geo, relu)(o.x, o.f, o.b);
  tape.stop_recording();
  const std::vector<Tensor> got =
      tape.gradient(y, {o.x, o.f, o.b}, autodiff::Unconnected::kNone, random_tensor(y.shape(), 77u));
  const std::vector<Tensor> all = testing::conv_grads(fused(geo, relu), o);
  EXPECT_FALSE(got[0].defined());
  EXPECT_TRUE(same_values(got[1], all[1]));
  EXPECT_TRUE(same_values(got[2], all[2]));
}

// Second order: the outer tape differentiates the inner gradient, which is itself ops.
TEST(ConvFused, NestedTapesMatchTheThreeOps) {
  const Geo geo{Shape{2, 5, 5, 2}, Shape{3, 3, 2, 3}, {1, 1}, {1, 1}, Padding::kSame};
  const Operands o = operands(geo, 60u);
  for (const Act &a : fusable()) {
    for (size_t wrt : {0u, 1u}) {
      const testing::ConvFn u = unfused(geo, a), z = fused(geo, a);
      const std::vector<Tensor> want = testing::conv_second_order(u, o, wrt),
                                got = testing::conv_second_order(z, o, wrt);
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same_values(got[i], want[i])) << a.name << " d" << i;
    }
  }
}

// An empty batch gives an empty output; no input channels give the bias through the activation.
TEST(ConvFused, EmptyOperandsGiveTheThreeOpsResult) {
  const Act relu{"relu", A::kRelu, 0.0f};
  for (const Geo &geo : {Geo{Shape{0, 5, 5, 2}, Shape{3, 3, 2, 3}, {1, 1}, {1, 1}, Padding::kSame},
                         Geo{Shape{2, 5, 5, 0}, Shape{3, 3, 0, 3}, {1, 1}, {1, 1}, Padding::kSame}}) {
    const Operands o{random_tensor(geo.x, 1u), random_tensor(geo.f, 2u),
                     random_tensor(Shape{3}, 3u, -1.0f, 1.0f)};
    const testing::ConvFn z = fused(geo, relu), u = unfused(geo, relu);
    EXPECT_TRUE(same_values(z(o.x, o.f, o.b), u(o.x, o.f, o.b))) << geo.x.to_string();
    const std::vector<Tensor> want = testing::conv_grads(u, o), got = testing::conv_grads(z, o);
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(same_values(got[i], want[i])) << geo.x.to_string() << " d" << i;
  }
}

TEST(ConvFused, BadInputsAreInvalidArgument) {
  const Geo &geo = geometries()[0];
  const Operands o = operands(geo, 90u);
  testing::expect_error(
      [&] { ops::conv2d_bias_act(o.x, o.f, random_tensor(Shape{3}, 1u), geo.s, geo.d, geo.p, A::kRelu); },
      Code::kInvalidArgument, {"conv2d", "bias", "[3]", "[2]"});
  testing::expect_error([&] { ops::conv2d_bias_act(o.x, o.f, o.b, geo.s, geo.d, geo.p, A::kGelu); },
                        Code::kInvalidArgument, {"conv2d", "activation", "reads its input"});
  testing::expect_error(
      [&] { ops::conv2d_bias_act(o.x, o.f, ops::cast(o.b, DType::kFloat64), geo.s, geo.d, geo.p, A::kRelu); },
      Code::kInvalidArgument, {"conv2d", "bias", "float64"});
}

// The Conv2D layer runs the fused op: its output equals the three ops on its own weights, for a
// fusable activation and for one (gelu) that runs apart.
TEST(ConvFused, Conv2DLayerMatchesTheThreeOps) {
  for (const std::string activation : {"relu", "gelu", "linear"}) {
    layers::LayerPtr layer = layers::create_layer(
        "Conv2D",
        Config::from_json(
            R"({"filters": 4, "kernel_size": 3, "bias_initializer": "random_normal", "activation": ")" +
            activation + "\"}"));
    const Tensor x = random_tensor(Shape{2, 6, 6, 3}, 7u);
    const Tensor y = (*layer)(x);
    ASSERT_EQ(layer->variables().size(), 2u);
    const Tensor w = layer->variables()[0]->peek(), b = layer->variables()[1]->peek();
    Tensor want = ops::bias_add(ops::conv2d(x, w, {1, 1}, {1, 1}, Padding::kValid), b);
    if (activation == "relu") want = ops::relu(want);
    if (activation == "gelu") want = ops::gelu(want, false);
    EXPECT_TRUE(same_values(y, want)) << activation;
  }
}

}  // namespace
}  // namespace kiln
