// Gradients of the elementwise ops in float64 (against central differences, to 1e-7) and
// bfloat16 (against the float32 gradient at the same values, within bf16 rounding); the
// tape with float64 and bfloat16 targets and sources; where and the creation ops.
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autodiff/tape.h"
#include "core/error.h"
#include "ops/elementwise_internal.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::make_typed;
using testing::values;

using Fn = std::function<Tensor(const std::vector<Tensor> &)>;

// Uniform values in [lo, hi) on a grid of step 1/64 shifted by 1/128, so that no value sits
// on a kink (0 for relu, ties for maximum, clip bounds) that eps-wide differences straddle.
Tensor grid64(const Shape &shape, unsigned seed, double lo, double hi) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, static_cast<int>((hi - lo) * 64) - 1);
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (double &x : v) x = lo + dist(gen) / 64.0 + 1.0 / 128.0;
  return make_typed<double>(shape, v);
}

std::vector<Tensor> tape_gradient(const Fn &f, const std::vector<Tensor> &inputs, const Tensor *w_out,
                                  Tensor *w) {
  autodiff::Tape tape(false, true);
  for (const Tensor &x : inputs) tape.watch(x);
  const Tensor y = f(inputs);
  if (!w_out) *w = ops::cast(grid64(y.shape(), 99u, -1, 1), y.dtype());
  tape.stop_recording();
  return tape.gradient(y, inputs, autodiff::Unconnected::kZero, w_out ? *w_out : *w);
}

// sum(f(xs) * w) in long double.
long double objective(const Fn &f, const std::vector<Tensor> &xs, const Tensor &w) {
  const Tensor y = f(xs);
  long double s = 0;
  for (int64_t i = 0; i < y.num_elements(); ++i)
    s += static_cast<long double>(y.data<double>()[i]) * w.data<double>()[i];
  return s;
}

// The tape's float64 gradient of sum(f * w) against central differences with eps 1e-6.
void check_f64(const std::string &name, const Fn &f, const std::vector<Tensor> &inputs) {
  Tensor w;
  const std::vector<Tensor> analytic = tape_gradient(f, inputs, nullptr, &w);
  const double eps = 1e-6;
  for (size_t k = 0; k < inputs.size(); ++k) {
    ASSERT_TRUE(analytic[k].defined()) << name << ": no gradient for input " << k;
    ASSERT_EQ(analytic[k].dtype(), DType::kFloat64) << name;
    ASSERT_EQ(analytic[k].shape(), inputs[k].shape()) << name;
    const std::vector<double> base = values<double>(inputs[k]);
    for (size_t i = 0; i < base.size(); ++i) {
      std::vector<Tensor> xs = inputs;
      std::vector<double> v = base;
      v[i] = base[i] + eps;
      xs[k] = make_typed<double>(inputs[k].shape(), v);
      const long double up = objective(f, xs, w);
      v[i] = base[i] - eps;
      xs[k] = make_typed<double>(inputs[k].shape(), v);
      const double numeric = static_cast<double>((up - objective(f, xs, w)) / (2 * eps));
      EXPECT_NEAR(analytic[k].data<double>()[i], numeric, 1e-7 * (1 + std::fabs(numeric)))
          << name << ": d/d input " << k << " element " << i;
    }
  }
}

struct Case {
  std::string name;
  Fn f;
  std::vector<std::pair<double, double>> ranges;  // one per input
};

Fn un(Tensor (*op)(const Tensor &)) {
  return [op](const std::vector<Tensor> &x) { return op(x[0]); };
}
Fn bin(Tensor (*op)(const Tensor &, const Tensor &)) {
  return [op](const std::vector<Tensor> &x) { return op(x[0], x[1]); };
}

std::vector<Case> unary_cases() {
  const std::pair<double, double> wide{-3, 3}, pos{0.25, 4};
  return {
      {"neg", un(ops::neg), {wide}},
      {"abs", un(ops::abs), {wide}},
      {"square", un(ops::square), {wide}},
      {"exp", un(ops::exp), {wide}},
      {"log", un(ops::log), {pos}},
      {"sqrt", un(ops::sqrt), {pos}},
      {"rsqrt", un(ops::rsqrt), {pos}},
      {"tanh", un(ops::tanh), {wide}},
      {"sigmoid", un(ops::sigmoid), {wide}},
      {"relu", un(ops::relu), {wide}},
      {"relu6", un(ops::relu6), {{-2, 8}}},
      {"leaky_relu", [](const std::vector<Tensor> &x) { return ops::leaky_relu(x[0], 0.25f); }, {wide}},
      {"elu", [](const std::vector<Tensor> &x) { return ops::elu(x[0], 1.5f); }, {wide}},
      {"selu", un(ops::selu), {wide}},
      {"gelu", [](const std::vector<Tensor> &x) { return ops::gelu(x[0], false); }, {wide}},
      {"gelu_tanh", [](const std::vector<Tensor> &x) { return ops::gelu(x[0], true); }, {wide}},
      {"softplus", un(ops::softplus), {wide}},
      {"swish", un(ops::swish), {wide}},
      {"log1p", un(ops::log1p), {{-0.5, 3}}},
      {"expm1", un(ops::expm1), {wide}},
      {"floor", un(ops::floor), {wide}},
      {"round", un(ops::round), {wide}},
      {"sign", un(ops::sign), {wide}},
      {"sin", un(ops::sin), {wide}},
      {"cos", un(ops::cos), {wide}},
      {"clip_by_value",
       [](const std::vector<Tensor> &x) { return ops::clip_by_value(x[0], -1.0f, 1.5f); },
       {wide}},
      {"relu_grad",
       [](const std::vector<Tensor> &x) { return ops::internal::relu_grad(x[0], x[1], 0.0f); },
       {wide, wide}},
      {"gelu_grad",
       [](const std::vector<Tensor> &x) { return ops::internal::gelu_grad(x[0], x[1], false); },
       {wide, wide}},
      {"gelu_grad_tanh",
       [](const std::vector<Tensor> &x) { return ops::internal::gelu_grad(x[0], x[1], true); },
       {wide, wide}},
  };
}

std::vector<Case> binary_cases() {
  const std::pair<double, double> wide{-2, 2}, pos{0.5, 2};
  return {
      {"add", bin(ops::add), {wide, wide}},
      {"sub", bin(ops::sub), {wide, wide}},
      {"mul", bin(ops::mul), {wide, wide}},
      {"div", bin(ops::div), {wide, pos}},
      {"truediv", bin(ops::truediv), {wide, pos}},
      {"pow", bin(ops::pow), {pos, wide}},
      {"maximum", bin(ops::maximum), {wide, wide}},
      {"minimum", bin(ops::minimum), {wide, wide}},
      {"where",
       [](const std::vector<Tensor> &x) { return ops::where(ops::greater(x[0], x[1]), x[0], x[1]); },
       {wide, wide}},
  };
}

std::vector<Tensor> inputs_for(const Case &c, const std::vector<Shape> &shapes, unsigned seed) {
  std::vector<Tensor> in;
  for (size_t k = 0; k < c.ranges.size(); ++k)
    in.push_back(grid64(shapes[k % shapes.size()], seed + static_cast<unsigned>(k), c.ranges[k].first,
                        c.ranges[k].second));
  return in;
}

TEST(FloatDTypesGrad, Float64UnaryMatchesCentralDifferences) {
  unsigned seed = 10;
  for (const Case &c : unary_cases()) check_f64(c.name, c.f, inputs_for(c, {Shape{4, 3}}, seed += 7));
}

// Same shapes only: a broadcast operand's gradient is summed back by sum_to_shape, which
// takes float64 with the reductions (branch fdtypes-nn); bfloat16 broadcasting is below.
TEST(FloatDTypesGrad, Float64BinaryMatchesCentralDifferences) {
  const std::vector<std::vector<Shape>> shapes = {{{3, 4}, {3, 4}}, {{7}, {7}}};
  unsigned seed = 500;
  for (const Case &c : binary_cases())
    for (const auto &s : shapes)
      check_f64(c.name + " " + s[0].to_string() + " x " + s[1].to_string(), c.f, inputs_for(c, s, seed += 7));
}

// The bfloat16 gradient at bf16 values is the float32 gradient at the same values, to within
// bf16 rounding of the rule's intermediate values.
TEST(FloatDTypesGrad, BFloat16GradientsAgreeWithFloat32) {
  std::vector<std::pair<Case, std::vector<Shape>>> cases;
  for (const Case &c : unary_cases()) cases.push_back({c, {{6, 5}}});
  for (const Case &c : binary_cases()) cases.push_back({c, {{6, 5}, {5}}});  // b broadcast over rows
  unsigned seed = 900;
  for (const auto &[c, shapes] : cases) {
    std::vector<Tensor> in32, in16;
    for (const Tensor &t : inputs_for(c, shapes, seed += 7)) {
      in16.push_back(ops::cast(t, DType::kBFloat16));
      in32.push_back(ops::cast(in16.back(), DType::kFloat32));
    }
    Tensor w16;
    const std::vector<Tensor> g16 = tape_gradient(c.f, in16, nullptr, &w16);
    const Tensor w32 = ops::cast(w16, DType::kFloat32);
    Tensor unused;
    const std::vector<Tensor> g32 = tape_gradient(c.f, in32, &w32, &unused);
    for (size_t k = 0; k < in16.size(); ++k) {
      ASSERT_EQ(g16[k].dtype(), DType::kBFloat16) << c.name;
      const Tensor got = ops::cast(g16[k], DType::kFloat32);
      for (int64_t i = 0; i < got.num_elements(); ++i) {
        const float want = g32[k].data<float>()[i];
        EXPECT_NEAR(got.data<float>()[i], want, 0.03f + 0.03f * std::fabs(want))
            << c.name << " input " << k << " element " << i;
      }
    }
  }
}

TEST(FloatDTypesGrad, TapeDefaultsAndZerosKeepTheDtype) {
  for (DType dt : {DType::kFloat64, DType::kBFloat16}) {
    const Tensor x = ops::cast(grid64({3}, 1u, -1, 1), dt), unused = ops::cast(grid64({2}, 2u, -1, 1), dt);
    autodiff::Tape tape(false, true);
    tape.watch(x);
    tape.watch(unused);
    const Tensor y = ops::mul(x, x);
    tape.stop_recording();
    const std::vector<Tensor> g = tape.gradient(y, {x, unused}, autodiff::Unconnected::kZero);
    ASSERT_EQ(g[0].dtype(), dt);  // the default output gradient is ones of y's dtype
    const Tensor two_x = ops::add(x, x);
    EXPECT_EQ(values<uint8_t>(ops::equal(g[0], two_x)), (std::vector<uint8_t>{1, 1, 1}));
    ASSERT_EQ(g[1].dtype(), dt);
    EXPECT_EQ(values<uint8_t>(ops::equal(g[1], ops::zeros({2}, dt))), (std::vector<uint8_t>{1, 1}));
  }
  // A float32 output gradient for a float64 target is refused, naming both.
  const Tensor x = grid64({2}, 3u, -1, 1);
  autodiff::Tape tape(false, true);
  tape.watch(x);
  const Tensor y = ops::exp(x);
  testing::expect_error([&] { tape.gradient(y, {x}, autodiff::Unconnected::kNone, ops::ones({2})); },
                        Code::kInvalidArgument, {"output gradient", "float32", "float64"});
}

TEST(FloatDTypesGrad, CreationOpsInFloat64) {
  const Tensor f = ops::fill({2}, 0.1, DType::kFloat64);
  EXPECT_EQ(values<double>(f), (std::vector<double>{0.1, 0.1}));  // not rounded through float32
  EXPECT_EQ(values<double>(ops::fill_int64({1}, (int64_t{1} << 53) + 3, DType::kFloat64))[0],
            9007199254740996.0);
  const Tensor r = ops::range(0.0, 0.35, 0.1, DType::kFloat64);
  ASSERT_EQ(r.dtype(), DType::kFloat64);
  EXPECT_EQ(values<double>(r), (std::vector<double>{0.0, 0.1, 0.2, 0.1 * 3}));
  EXPECT_EQ(values<double>(ops::range(1.0, 4.0, 1.0, DType::kFloat64)), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(values<double>(ops::range_int64(5, 2, -1, DType::kFloat64)), (std::vector<double>{5, 4, 3}));
  EXPECT_EQ(values<double>(ops::ones_like(f)), (std::vector<double>{1, 1}));
  EXPECT_EQ(values<double>(ops::zeros_like(f)), (std::vector<double>{0, 0}));
  EXPECT_EQ(ops::zeros_like(ops::cast(f, DType::kBFloat16)).dtype(), DType::kBFloat16);
  const Tensor w = ops::where(testing::make_bool({2}, {1, 0}), f, ops::zeros({2}, DType::kFloat64));
  EXPECT_EQ(values<double>(w), (std::vector<double>{0.1, 0.0}));
  testing::expect_error([] { ops::range(0, 3, 1, DType::kBFloat16); }, Code::kInvalidArgument,
                        {"range", "bfloat16", "float64"});
}

}  // namespace
}  // namespace kiln
