// ops::dense (matmul + bias + activation in one matmul primitive, the activation in place) against
// the composition it replaces, matmul -> bias_add -> activation op: the same bits forward and
// backward at every shape, activation, thread count and special value; bfloat16 as bf16 of the
// float32 result; float64 through the composed ops with a finite-difference check.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/threads.h"
#include "fused_test_util.h"
#include "layers/activations.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "special_values_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::A;
using testing::Act;
using testing::activate;
using testing::make;
using testing::random_tensor;
using testing::same_values;
using testing::with_threads;

const std::vector<Act> &all_activations() {
  static const std::vector<Act> acts = {
      {"linear", A::kLinear, 0.0f},     {"relu", A::kRelu, 0.0f},
      {"relu6", A::kRelu6, 0.0f},       {"leaky_relu", A::kLeakyRelu, 0.2f},
      {"sigmoid", A::kSigmoid, 0.0f},   {"tanh", A::kTanh, 0.0f},
      {"gelu", A::kGelu, 0.0f},         {"gelu_tanh", A::kGeluTanh, 0.0f},
      {"elu", A::kElu, 1.0f},           {"selu", A::kSelu, 0.0f},
      {"softplus", A::kSoftplus, 0.0f}, {"swish", A::kSwish, 0.0f},
      {"exp", A::kExp, 0.0f},
  };
  return acts;
}

// What Dense did before ops::dense: three ops.
Tensor unfused(const Tensor &x, const Tensor &w, const Tensor &b, const Act &a) {
  Tensor z = ops::matmul(x, w);
  if (b.defined()) z = x.dtype() == DType::kFloat32 ? ops::bias_add(z, b) : ops::add(z, b);
  return activate(z, a);
}

Tensor fused(const Tensor &x, const Tensor &w, const Tensor &b, const Act &a) {
  return ops::dense(x, w, b, a.act, a.alpha);
}

// [batch, in] x [in, units] shapes: tiny, odd, both sides of the elementwise threshold, threaded
// whole products (one with a long K the GEMM blocks), and tall-K products that run in pieces
// (K split, rows and K split).
struct Geo {
  std::vector<int64_t> x;
  int64_t units;
  bool heavy = false;  // forward and thread-count checks only (seconds in the other suites)
};

const std::vector<Geo> &geometries() {
  static const std::vector<Geo> g = {
      {{1, 1}, 1},        {{3, 5}, 7},       {{1, 256}, 256},   {{17, 33}, 65},
      {{64, 256}, 256},   {{256, 256}, 256}, {{512, 256}, 300}, {{64, 2048}, 32},
      {{256, 1024}, 128}, {{4, 50, 96}, 33}, {{2, 3, 700}, 1},  {{1100, 1024}, 300, true},
      {{5, 0}, 3},        {{0, 4}, 3},
  };
  return g;
}

TEST(DenseFused, ForwardMatchesUnfusedBitwise) {
  unsigned seed = 1;
  for (const Geo &geo : geometries()) {
    const Shape xs(geo.x);
    const Tensor x = random_tensor(xs, seed++, -2.0f, 2.0f);
    const Tensor w = random_tensor(Shape{geo.x.back(), geo.units}, seed++, -0.5f, 0.5f);
    const Tensor b = random_tensor(Shape{geo.units}, seed++);
    for (const Act &a : all_activations())
      for (bool with_bias : {true, false})
        for (int threads : {1, 2}) {
          const Tensor bias = with_bias ? b : Tensor();
          const Tensor want = with_threads(threads, [&] { return unfused(x, w, bias, a); });
          const Tensor got = with_threads(threads, [&] { return fused(x, w, bias, a); });
          EXPECT_TRUE(same_values(got, want)) << a.name << " x " << xs.to_string() << " units " << geo.units
                                              << " bias " << with_bias << " threads " << threads;
        }
  }
}

TEST(DenseFused, ThreadCountDoesNotChangeBits) {
  unsigned seed = 50;
  for (const Geo &geo : geometries()) {
    const Tensor x = random_tensor(Shape(geo.x), seed++);
    const Tensor w = random_tensor(Shape{geo.x.back(), geo.units}, seed++);
    const Tensor b = random_tensor(Shape{geo.units}, seed++);
    const Act relu{"relu", A::kRelu, 0.0f};
    const Tensor one = with_threads(1, [&] { return fused(x, w, b, relu); });
    for (int threads : {2, 3, 4})
      EXPECT_TRUE(same_values(with_threads(threads, [&] { return fused(x, w, b, relu); }), one))
          << Shape(geo.x).to_string() << " at " << threads << " threads";
  }
}

// x and w salted with NaN, +-inf, +-0 and denormals.
Tensor salted(const Shape &s, unsigned seed) {
  const float denorm = std::numeric_limits<float>::denorm_min();
  const float specials[] = {testing::kNaN, testing::kInf, -testing::kInf, 0.0f,    -0.0f,
                            denorm,        -denorm,       1e-39f,         -3e-39f, 3e38f};
  Tensor t = random_tensor(s, seed);
  std::vector<float> v = testing::values(t);
  for (size_t i = seed % 7; i < v.size(); i += 13)
    v[i] = specials[(i / 13) % (sizeof specials / sizeof(float))];
  return make(s, v);
}

TEST(DenseFused, SpecialValuesMatchUnfused) {
  for (const Geo &geo : geometries()) {
    if (geo.heavy) continue;
    const Tensor x = salted(Shape(geo.x), 7u);
    const Tensor w = salted(Shape{geo.x.back(), geo.units}, 8u);
    // A second weight matrix with few specials, so that most outputs stay finite.
    const Tensor w_clean = random_tensor(Shape{geo.x.back(), geo.units}, 9u);
    std::vector<float> bv = testing::values(random_tensor(Shape{geo.units}, 10u));
    bv[0] = -0.0f;
    if (bv.size() > 1) bv[1] = testing::kNaN;
    const Tensor b = make(Shape{geo.units}, bv);
    for (const Act &a : all_activations())
      for (const Tensor &ww : {w, w_clean})
        for (int threads : {1, 2}) {
          const Tensor want = with_threads(threads, [&] { return unfused(x, ww, b, a); });
          const Tensor got = with_threads(threads, [&] { return fused(x, ww, b, a); });
          EXPECT_TRUE(same_values(got, want))
              << a.name << " x " << Shape(geo.x).to_string() << " threads " << threads;
        }
  }
  // -0 results: x . w = -0 exactly (products of -0 and +0) meeting a -0 bias, and no bias.
  const Tensor xz = make(Shape{2, 2}, {-0.0f, -0.0f, 0.0f, -0.0f});
  const Tensor wz = make(Shape{2, 2}, {0.0f, -0.0f, 1.0f, -1.0f});
  const Tensor bz = make(Shape{2}, {-0.0f, 0.0f});
  for (const Act &a : all_activations()) {
    EXPECT_TRUE(same_values(fused(xz, wz, bz, a), unfused(xz, wz, bz, a))) << a.name;
    EXPECT_TRUE(same_values(fused(xz, wz, Tensor(), a), unfused(xz, wz, Tensor(), a))) << a.name;
  }
}

TEST(DenseFused, BFloat16IsBf16OfTheFloat32Result) {
  unsigned seed = 200;
  for (const Geo &geo : geometries()) {
    if (geo.heavy) continue;
    const Tensor x = ops::cast(random_tensor(Shape(geo.x), seed++), DType::kBFloat16);
    const Tensor w = ops::cast(random_tensor(Shape{geo.x.back(), geo.units}, seed++), DType::kBFloat16);
    const Tensor b = ops::cast(random_tensor(Shape{geo.units}, seed++), DType::kBFloat16);
    auto f32 = [](const Tensor &t) { return ops::cast(t, DType::kFloat32); };
    for (const Act &a : all_activations()) {
      const Tensor want = ops::cast(unfused(f32(x), f32(w), f32(b), a), DType::kBFloat16);
      EXPECT_TRUE(same_values(fused(x, w, b, a), want)) << a.name << " " << Shape(geo.x).to_string();
    }
  }
}

TEST(DenseFused, Float64ComposesTheOps) {
  const Tensor x = ops::cast(random_tensor(Shape{3, 4, 5}, 300u), DType::kFloat64);
  const Tensor w = ops::cast(random_tensor(Shape{5, 6}, 301u), DType::kFloat64);
  const Tensor b = ops::cast(random_tensor(Shape{6}, 302u), DType::kFloat64);
  for (const Act &a : all_activations())
    EXPECT_TRUE(same_values(fused(x, w, b, a), unfused(x, w, b, a))) << a.name;
}

// The gradients of sum(y * r) (r fixed random) with respect to x, w and b.
std::vector<Tensor> grads(const std::function<Tensor(const Tensor &, const Tensor &, const Tensor &)> &f,
                          const Tensor &x, const Tensor &w, const Tensor &b) {
  autodiff::Tape tape(false, false);
  tape.watch(x);
  tape.watch(w);
  if (b.defined()) tape.watch(b);
  Tensor y = f(x, w, b);
  tape.stop_recording();
  std::vector<Tensor> sources{x, w};
  if (b.defined()) sources.push_back(b);
  const Tensor r = ops::cast(random_tensor(y.shape(), 77u), y.dtype());
  return tape.gradient(y, sources, autodiff::Unconnected::kZero, r);
}

TEST(DenseFused, GradientsMatchUnfusedBitwise) {
  unsigned seed = 400;
  for (const Geo &geo : geometries()) {
    if (geo.heavy || Shape(geo.x).num_elements() == 0) continue;
    const Tensor x = random_tensor(Shape(geo.x), seed++, -2.0f, 2.0f);
    const Tensor w = random_tensor(Shape{geo.x.back(), geo.units}, seed++, -0.5f, 0.5f);
    const Tensor b = random_tensor(Shape{geo.units}, seed++);
    for (const Act &a : all_activations())
      for (bool with_bias : {true, false}) {
        const Tensor bias = with_bias ? b : Tensor();
        auto fu = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return unfused(p, q, s, a); };
        auto fz = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return fused(p, q, s, a); };
        const std::vector<Tensor> want = grads(fu, x, w, bias), got = grads(fz, x, w, bias);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i)
          EXPECT_TRUE(same_values(got[i], want[i]))
              << a.name << " gradient " << i << " x " << Shape(geo.x).to_string() << " bias " << with_bias;
      }
  }
}

// The exact gelu's rule reads the erfc its forward saved; at 1 and 2 threads its gradients keep
// the composition's bits (the other activations' rules are unchanged by the thread count).
TEST(DenseFused, GeluGradientsMatchUnfusedAtEveryThreadCount) {
  unsigned seed = 450;
  const Act gelu{"gelu", A::kGelu, 0.0f};
  auto fu = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return unfused(p, q, s, gelu); };
  auto fz = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return fused(p, q, s, gelu); };
  for (const Geo &geo : geometries()) {
    if (geo.heavy || Shape(geo.x).num_elements() == 0) continue;
    const Tensor x = random_tensor(Shape(geo.x), seed++, -6.0f, 6.0f);
    const Tensor w = random_tensor(Shape{geo.x.back(), geo.units}, seed++, -0.5f, 0.5f);
    const Tensor b = random_tensor(Shape{geo.units}, seed++);
    for (int threads : {1, 2}) {
      set_num_threads_for_this_thread(threads);
      const std::vector<Tensor> want = grads(fu, x, w, b), got = grads(fz, x, w, b);
      set_num_threads_for_this_thread(0);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same_values(got[i], want[i]))
            << "gradient " << i << " x " << Shape(geo.x).to_string() << " threads " << threads;
    }
  }
}

// Only what some tape watches gets a gradient, as TF's skip_input_indices: an unwatched batch x
// (a model's input) gets none, even when asked for, and the watched kernel and bias get the same
// bits as when x is watched too. Likewise matmul for each of its operands.
TEST(DenseFused, UnwatchedInputsGetNoGradient) {
  const Tensor x = random_tensor(Shape{8, 5}, 420u), w = random_tensor(Shape{5, 3}, 421u),
               b = random_tensor(Shape{3}, 422u);
  for (const Act &a : all_activations()) {
    autodiff::Tape tape(false, false);
    tape.watch(w);
    tape.watch(b);
    Tensor y = fused(x, w, b, a);
    tape.stop_recording();
    const Tensor r = random_tensor(y.shape(), 77u);
    const std::vector<Tensor> got = tape.gradient(y, {x, w, b}, autodiff::Unconnected::kNone, r);
    auto fz = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return fused(p, q, s, a); };
    const std::vector<Tensor> all = grads(fz, x, w, b);
    EXPECT_FALSE(got[0].defined()) << a.name;
    EXPECT_TRUE(same_values(got[1], all[1])) << a.name;
    EXPECT_TRUE(same_values(got[2], all[2])) << a.name;
  }
  for (int watched : {0, 1}) {
    const Tensor p = random_tensor(Shape{4, 6}, 423u), q = random_tensor(Shape{6, 2}, 424u);
    autodiff::Tape tape(false, false);
    tape.watch(watched == 0 ? p : q);
    Tensor y = ops::matmul(p, q);
    tape.stop_recording();
    const std::vector<Tensor> got = tape.gradient(y, {p, q}, autodiff::Unconnected::kNone);
    const Tensor ones = ops::ones_like(y);
    const Tensor want = watched == 0 ? ops::matmul(ones, q, false, true) : ops::matmul(p, ones, true, false);
    EXPECT_TRUE(same_values(got[static_cast<size_t>(watched)], want)) << "matmul operand " << watched;
    EXPECT_FALSE(got[static_cast<size_t>(1 - watched)].defined()) << "matmul operand " << 1 - watched;
  }
}

TEST(DenseFused, GradientsOfSpecialValuesMatchUnfused) {
  const Tensor x = salted(Shape{9, 31}, 11u);
  const Tensor w = random_tensor(Shape{31, 17}, 12u);
  const Tensor b = random_tensor(Shape{17}, 13u);
  for (const Act &a : all_activations()) {
    auto fu = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return unfused(p, q, s, a); };
    auto fz = [&](const Tensor &p, const Tensor &q, const Tensor &s) { return fused(p, q, s, a); };
    const std::vector<Tensor> want = grads(fu, x, w, b), got = grads(fz, x, w, b);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_values(got[i], want[i])) << a.name << " " << i;
  }
}

TEST(DenseFused, BFloat16GradientsFlow) {
  const Tensor x = ops::cast(random_tensor(Shape{4, 8}, 500u), DType::kBFloat16);
  const Tensor w = ops::cast(random_tensor(Shape{8, 3}, 501u), DType::kBFloat16);
  const Tensor b = ops::cast(random_tensor(Shape{3}, 502u), DType::kBFloat16);
  const Act gelu{"gelu", A::kGelu, 0.0f};
  const std::vector<Tensor> g =
      grads([&](const Tensor &p, const Tensor &q, const Tensor &s) { return fused(p, q, s, gelu); }, x, w, b);
  ASSERT_EQ(g.size(), 3u);
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(g[i].dtype(), DType::kBFloat16);
    EXPECT_EQ(g[i].shape(), (std::vector<Tensor>{x, w, b})[i].shape());
  }
}

TEST(DenseFused, FiniteDifferenceFloat32) {
  for (const Act &a : all_activations()) {
    testing::check_gradients(std::string("dense ") + a.name,
                             [&](const std::vector<Tensor> &in) { return fused(in[0], in[1], in[2], a); },
                             {random_tensor(Shape{2, 3, 4}, 600u), random_tensor(Shape{4, 5}, 601u),
                              random_tensor(Shape{5}, 602u)});
  }
}

TEST(DenseFused, FiniteDifferenceFloat64) {
  const Tensor x = ops::cast(random_tensor(Shape{3, 4}, 700u), DType::kFloat64);
  const Tensor w = ops::cast(random_tensor(Shape{4, 2}, 701u), DType::kFloat64);
  const Tensor b = ops::cast(random_tensor(Shape{2}, 702u), DType::kFloat64);
  for (const Act &a : all_activations()) {
    auto objective = [&](const Tensor &p, const Tensor &q, const Tensor &s) {
      const Tensor y = fused(p, q, s, a);
      return ops::sum(ops::mul(y, ops::cast(random_tensor(y.shape(), 77u), DType::kFloat64)))
          .data<double>()[0];
    };
    const std::vector<Tensor> g =
        grads([&](const Tensor &p, const Tensor &q, const Tensor &s) { return fused(p, q, s, a); }, x, w, b);
    const Tensor in[3] = {x, w, b};
    for (size_t k = 0; k < 3; ++k) {
      const std::vector<double> base = testing::values<double>(in[k]);
      for (size_t i = 0; i < base.size(); ++i) {
        Tensor args[3] = {x, w, b};
        std::vector<double> v = base;
        const double eps = 1e-6;
        v[i] = base[i] + eps;
        args[k] = testing::make_typed<double>(in[k].shape(), v);
        const double up = objective(args[0], args[1], args[2]);
        v[i] = base[i] - eps;
        args[k] = testing::make_typed<double>(in[k].shape(), v);
        const double down = objective(args[0], args[1], args[2]);
        EXPECT_NEAR(g[k].data<double>()[i], (up - down) / (2 * eps), 1e-7)
            << a.name << " input " << k << " " << i;
      }
    }
  }
}

// Second order: the outer tape differentiates the inner tape's gradient, which is itself ops.
TEST(DenseFused, NestedTapesMatchUnfused) {
  const Tensor x = random_tensor(Shape{2, 3, 4}, 800u);
  const Tensor w = random_tensor(Shape{4, 5}, 801u);
  const Tensor b = random_tensor(Shape{5}, 802u);
  for (const Act &a : all_activations()) {
    for (size_t wrt : {0u, 1u}) {
      auto second = [&](bool use_fused) {
        auto f = [&](const std::vector<Tensor> &in) {
          return use_fused ? fused(in[0], in[1], in[2], a) : unfused(in[0], in[1], in[2], a);
        };
        autodiff::Tape outer(false, false);
        for (const Tensor &t : {x, w, b}) outer.watch(t);
        const Tensor g = testing::inner_gradient(f, wrt)({x, w, b});
        outer.stop_recording();
        return outer.gradient(g, {x, w, b}, autodiff::Unconnected::kZero, random_tensor(g.shape(), 5u));
      };
      const std::vector<Tensor> want = second(false), got = second(true);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].defined(), want[i].defined()) << a.name;
        if (!got[i].defined()) continue;
        const std::vector<float> gv = testing::values(got[i]), wv = testing::values(want[i]);
        for (size_t j = 0; j < gv.size(); ++j)
          EXPECT_NEAR(gv[j], wv[j], 1e-5f * (1.0f + std::fabs(wv[j])))
              << a.name << " d/d" << i << " of the gradient wrt " << wrt << " element " << j;
      }
    }
  }
}

TEST(DenseFused, BadInputsAreInvalidArgument) {
  const Tensor x = random_tensor(Shape{2, 3}, 1u), w = random_tensor(Shape{3, 4}, 2u);
  const Tensor b = random_tensor(Shape{4}, 3u);
  testing::expect_error(
      [&] {
        ops::dense(x, random_tensor(Shape{5, 4}, 4u), b);
      },
      Code::kInvalidArgument, {"dense", "[2, 3]", "[5, 4]"});
  testing::expect_error([&] { ops::dense(random_tensor(Shape{3}, 4u), w, b); }, Code::kInvalidArgument,
                        {"dense", "rank >= 2"});
  testing::expect_error(
      [&] {
        ops::dense(x, random_tensor(Shape{3, 4, 1}, 4u), b);
      },
      Code::kInvalidArgument, {"dense", "kernel"});
  testing::expect_error([&] { ops::dense(x, w, random_tensor(Shape{5}, 4u)); }, Code::kInvalidArgument,
                        {"dense", "bias", "[4]"});
  testing::expect_error(
      [&] { ops::dense(ops::cast(x, DType::kInt32), ops::cast(w, DType::kInt32), Tensor()); },
      Code::kInvalidArgument, {"dense", "int32"});
  testing::expect_error([&] { ops::dense(x, ops::cast(w, DType::kFloat64), b); }, Code::kInvalidArgument,
                        {"dense", "kernel", "float64"});
  testing::expect_error([&] { ops::dense(x, w, ops::cast(b, DType::kBFloat16)); }, Code::kInvalidArgument,
                        {"dense", "bias"});
  testing::expect_error([&] { ops::dense(x, w, b, A::kLeakyRelu, std::nanf("")); }, Code::kInvalidArgument,
                        {"dense", "alpha"});
  testing::expect_error([&] { ops::dense(x, w, b, static_cast<A>(99)); }, Code::kInvalidArgument,
                        {"dense", "activation"});
}

// The Dense layer through ops::dense gives, for every activation name it accepts, the output and
// weight gradients of the matmul -> bias_add -> activation it ran before.
TEST(DenseFused, DenseLayerMatchesTheThreeOps) {
  const Tensor x = random_tensor(Shape{3, 7, 5}, 900u, -2.0f, 2.0f);
  for (const std::string &name : layers::activation_names())
    for (bool use_bias : {true, false}) {
      Config c;
      c.set("units", int64_t{6}).set("activation", name).set("use_bias", use_bias);
      c.set("bias_initializer", "ones");  // a non-zero bias
      layers::LayerPtr d = layers::create_layer("Dense", c);
      autodiff::Tape tape(false, true);
      const Tensor y = (*d)(x);
      tape.stop_recording();
      const std::vector<layers::VariablePtr> vars = d->trainable_variables();
      ASSERT_EQ(vars.size(), use_bias ? 2u : 1u);
      const Tensor r = random_tensor(y.shape(), 3u);
      std::vector<Tensor> got = tape.gradient(y, {*vars[0]}, autodiff::Unconnected::kZero, r);

      autodiff::Tape ref_tape(false, false);
      const Tensor kernel = vars[0]->value();
      ref_tape.watch(kernel);
      Tensor z = ops::matmul(x, kernel);
      if (use_bias) z = ops::bias_add(z, vars[1]->value());
      const Tensor want = layers::get_activation(name)(z);
      ref_tape.stop_recording();
      EXPECT_TRUE(same_values(y, want)) << name << " bias " << use_bias;
      const std::vector<Tensor> want_g = ref_tape.gradient(want, {kernel}, autodiff::Unconnected::kZero, r);
      EXPECT_TRUE(same_values(got[0], want_g[0])) << name << " kernel gradient, bias " << use_bias;
    }
}

}  // namespace
}  // namespace kiln
