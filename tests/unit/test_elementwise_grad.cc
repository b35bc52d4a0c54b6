// Elementwise gradients (one table, central differences through the real tape),
// second derivatives through nested tapes, and argument errors.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"  // test_util.h uses kiln::Error without including it
#include "kernels/elementwise.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::check_gradients;
using testing::expect_error;
using testing::make;
using testing::random_tensor;
using testing::values;

using Fn = std::function<Tensor(const std::vector<Tensor> &)>;

struct GradCase {
  std::string name;
  Fn f;
  std::vector<Tensor> inputs;
  testing::GradCheckOptions opt = {};
};

// Multiples of 0.1 plus offset: inputs a fixed distance from kinks (0 for relu and abs,
// ties for maximum, clip bounds) that central differences with eps 0.01 must not straddle.
Tensor grid(const Shape &shape, unsigned seed, float offset) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(-10, 10);
  std::vector<float> v(static_cast<size_t>(shape.num_elements()));
  for (float &x : v) x = static_cast<float>(dist(gen)) * 0.1f + offset;
  return make(shape, v);
}

Fn unary_fn(Tensor (*op)(const Tensor &)) {
  return [op](const std::vector<Tensor> &x) { return op(x[0]); };
}
Fn binary_fn(Tensor (*op)(const Tensor &, const Tensor &)) {
  return [op](const std::vector<Tensor> &x) { return op(x[0], x[1]); };
}

std::vector<GradCase> grad_cases() {
  std::vector<GradCase> cases;
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 5}, {3, 5}}, {{3, 1}, {1, 5}}, {{2, 3, 4}, {4}}, {{}, {3, 5}}, {{7}, {}}};
  unsigned seed = 100;
  for (const auto &[sa, sb] : pairs) {
    const std::string shapes = " " + sa.to_string() + " x " + sb.to_string();
    auto rnd = [&](const Shape &s, float lo, float hi) { return random_tensor(s, ++seed, lo, hi); };
    cases.push_back({"add" + shapes, binary_fn(ops::add), {rnd(sa, -1, 1), rnd(sb, -1, 1)}});
    cases.push_back({"sub" + shapes, binary_fn(ops::sub), {rnd(sa, -1, 1), rnd(sb, -1, 1)}});
    cases.push_back({"mul" + shapes, binary_fn(ops::mul), {rnd(sa, -1, 1), rnd(sb, -1, 1)}});
    cases.push_back({"div" + shapes, binary_fn(ops::div), {rnd(sa, -1, 1), rnd(sb, 0.5f, 2)}});
    cases.push_back({"pow" + shapes, binary_fn(ops::pow), {rnd(sa, 0.5f, 2), rnd(sb, -1.5f, 1.5f)}});
    cases.push_back(
        {"maximum" + shapes, binary_fn(ops::maximum), {grid(sa, ++seed, 0.03f), grid(sb, ++seed, 0)}});
    cases.push_back(
        {"minimum" + shapes, binary_fn(ops::minimum), {grid(sa, ++seed, 0.03f), grid(sb, ++seed, 0)}});
  }
  for (const Shape &s : {Shape{3, 5}, Shape{7}}) {
    const std::string sh = " " + s.to_string();
    auto rnd = [&](float lo, float hi) { return std::vector<Tensor>{random_tensor(s, ++seed, lo, hi)}; };
    auto kinked = [&](float offset) { return std::vector<Tensor>{grid(s, ++seed, offset)}; };
    cases.push_back({"neg" + sh, unary_fn(ops::neg), rnd(-2, 2)});
    cases.push_back({"abs" + sh, unary_fn(ops::abs), kinked(0.05f)});
    cases.push_back({"exp" + sh, unary_fn(ops::exp), rnd(-2, 2)});
    cases.push_back({"log" + sh, unary_fn(ops::log), rnd(0.5f, 2)});
    cases.push_back({"sqrt" + sh, unary_fn(ops::sqrt), rnd(0.5f, 2)});
    cases.push_back({"rsqrt" + sh, unary_fn(ops::rsqrt), rnd(0.5f, 2)});
    cases.push_back({"square" + sh, unary_fn(ops::square), rnd(-2, 2)});
    cases.push_back({"tanh" + sh, unary_fn(ops::tanh), rnd(-2, 2)});
    cases.push_back({"sigmoid" + sh, unary_fn(ops::sigmoid), rnd(-3, 3)});
    cases.push_back({"relu" + sh, unary_fn(ops::relu), kinked(0.05f)});
    cases.push_back({"leaky_relu" + sh,
                     [](const std::vector<Tensor> &x) { return ops::leaky_relu(x[0], 0.2f); },
                     kinked(0.05f)});
    cases.push_back(
        {"gelu_erf" + sh, [](const std::vector<Tensor> &x) { return ops::gelu(x[0], false); }, rnd(-3, 3)});
    cases.push_back(
        {"gelu_tanh" + sh, [](const std::vector<Tensor> &x) { return ops::gelu(x[0], true); }, rnd(-3, 3)});
    cases.push_back({"softplus" + sh, unary_fn(ops::softplus), rnd(-3, 3)});
    cases.push_back(
        {"elu" + sh, [](const std::vector<Tensor> &x) { return ops::elu(x[0], 0.7f); }, kinked(0.05f)});
    cases.push_back({"swish" + sh, unary_fn(ops::swish), rnd(-3, 3)});
    cases.push_back({"clip_by_value" + sh,
                     [](const std::vector<Tensor> &x) { return ops::clip_by_value(x[0], -0.5f, 0.5f); },
                     kinked(0.03f)});
    cases.push_back({"log1p" + sh, unary_fn(ops::log1p), rnd(-0.5f, 2)});
    cases.push_back({"expm1" + sh, unary_fn(ops::expm1), rnd(-2, 2)});
    cases.push_back({"floor" + sh, unary_fn(ops::floor), kinked(0.05f)});
    cases.push_back({"round" + sh, unary_fn(ops::round), kinked(0.03f)});  // 0.1 k + 0.03: never near x.5
    cases.push_back({"sign" + sh, unary_fn(ops::sign), kinked(0.05f)});
    cases.push_back({"sin" + sh, unary_fn(ops::sin), rnd(-4, 4)});
    cases.push_back({"cos" + sh, unary_fn(ops::cos), rnd(-4, 4)});
    cases.push_back(
        {"relu6" + sh,
         [](const std::vector<Tensor> &x) { return ops::relu6(ops::mul(x[0], Tensor::scalar(6.5f))); },
         kinked(0.05f)});  // 6.5 (0.1 k + 0.05) spans both kinks, >= 0.175 from each
    cases.push_back({"selu" + sh, unary_fn(ops::selu), kinked(0.05f)});
    cases.push_back({"cast f32->f32" + sh,
                     [](const std::vector<Tensor> &x) { return ops::cast(x[0], DType::kFloat32); },
                     rnd(-1, 1)});
  }
  const Tensor c31 = testing::make_bool({3, 1}, {1, 0, 1});
  const Tensor c35 = ops::greater(random_tensor({3, 5}, ++seed), Tensor::scalar(0.0f));
  auto where_with = [](const Tensor &cond) {
    return [cond](const std::vector<Tensor> &x) { return ops::where(cond, x[0], x[1]); };
  };
  cases.push_back(
      {"where [3,1] [1,5] []", where_with(c31), {random_tensor({1, 5}, ++seed), random_tensor({}, ++seed)}});
  cases.push_back({"where [3,5] [3,5] [5]",
                   where_with(c35),
                   {random_tensor({3, 5}, ++seed), random_tensor({5}, ++seed)}});
  // A composite: the rules must compose (shared inputs, several paths).
  cases.push_back({"composite",
                   [](const std::vector<Tensor> &x) {
                     return ops::div(ops::mul(x[0], ops::tanh(x[1])),
                                     ops::add(ops::square(x[0]), Tensor::scalar(1.0f)));
                   },
                   {random_tensor({3, 1}, ++seed), random_tensor({1, 5}, ++seed)}});
  return cases;
}

TEST(ElementwiseGradient, TableMatchesCentralDifferences) {
  for (const GradCase &c : grad_cases()) {
    SCOPED_TRACE(c.name);
    check_gradients(c.name, c.f, c.inputs, c.opt);
  }
}

// f'(x) as a function of x, computed with an inner tape; checking its gradient with the
// outer tape checks f''(x), i.e. that the gradient rules are themselves differentiable.
Fn first_derivative(std::function<Tensor(const Tensor &)> f, const Shape &shape) {
  const Tensor w = random_tensor(shape, 999u);
  return [f, w](const std::vector<Tensor> &x) {
    autodiff::Tape tape(false, false);
    tape.watch(x[0]);
    const Tensor y = f(x[0]);
    return tape.gradient(y, {x[0]}, autodiff::Unconnected::kNone, w)[0];
  };
}

TEST(ElementwiseGradient, SecondDerivativesThroughNestedTapes) {
  struct Case {
    const char *name;
    std::function<Tensor(const Tensor &)> f;
    float lo, hi;
  };
  const std::vector<Case> cases = {
      {"gelu_erf", [](const Tensor &x) { return ops::gelu(x, false); }, -3, 3},
      {"gelu_tanh", [](const Tensor &x) { return ops::gelu(x, true); }, -3, 3},
      {"tanh", ops::tanh, -2, 2},
      {"sigmoid", ops::sigmoid, -3, 3},
      {"softplus", ops::softplus, -3, 3},
      {"swish", ops::swish, -3, 3},
      {"exp", ops::exp, -2, 2},
      {"log", ops::log, 0.5f, 2},
      {"log1p", ops::log1p, -0.5f, 2},
      {"expm1", ops::expm1, -2, 2},
      {"sin", ops::sin, -3, 3},
      {"cos", ops::cos, -3, 3},
      {"selu (x < 0)", ops::selu, -3, -0.2f},
      {"sqrt", ops::sqrt, 0.5f, 2},
      {"rsqrt", ops::rsqrt, 0.5f, 2},
      {"x*x/(1+x)",
       [](const Tensor &x) { return ops::div(ops::mul(x, x), ops::add(x, Tensor::scalar(1.0f))); }, 0.5f, 2},
      {"pow(x, 2.5)", [](const Tensor &x) { return ops::pow(x, Tensor::scalar(2.5f)); }, 0.5f, 2},
      {"pow(2, x)", [](const Tensor &x) { return ops::pow(Tensor::scalar(2.0f), x); }, -1, 1},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    const Shape s{3, 5};
    check_gradients(std::string("d2 ") + c.name, first_derivative(c.f, s),
                    {random_tensor(s, 77u, c.lo, c.hi)});
  }
}

// relu and gelu backward run fused (a loop, or oneDNN eltwise backward above the threshold):
// both paths against the derivative written out here.
TEST(ElementwiseGradient, FusedBackwardMatchesReferenceOnBothPaths) {
  struct Case {
    const char *name;
    std::function<Tensor(const Tensor &)> f;
    std::function<double(double)> df;
  };
  const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
  const std::vector<Case> cases = {
      {"relu", ops::relu, [](double x) { return x > 0 ? 1.0 : 0.0; }},
      {"leaky_relu", [](const Tensor &x) { return ops::leaky_relu(x, 0.3f); },
       [](double x) { return x > 0 ? 1.0 : 0.3; }},
      {"gelu_erf", [](const Tensor &x) { return ops::gelu(x, false); },
       [](double x) {
         return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-x * x / 2) / std::sqrt(2 * M_PI);
       }},
      {"gelu_tanh", [](const Tensor &x) { return ops::gelu(x, true); },
       [k, c](double x) {
         const double t = std::tanh(k * (x + c * x * x * x));
         return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x);
       }},
  };
  for (const Case &cs : cases)
    for (int64_t n : {int64_t{7}, kernels::kElementwiseLargeThreshold + 1}) {
      const Tensor x = random_tensor({n}, 5u, -4, 4), w = random_tensor({n}, 6u);
      autodiff::Tape tape(false, false);
      tape.watch(x);
      const Tensor g = tape.gradient(cs.f(x), {x}, autodiff::Unconnected::kNone, w)[0];
      std::vector<float> want(static_cast<size_t>(n));
      for (size_t i = 0; i < want.size(); ++i)
        want[i] = static_cast<float>(w.data<float>()[i] * cs.df(x.data<float>()[i]));
      testing::expect_near(g, want, 1e-5f, std::string(cs.name) + " n=" + std::to_string(n));
    }
}

TEST(ElementwiseGradient, IntegerAndBoolResultsAreNotRecorded) {
  const Tensor x = make({3}, {1, 2, 3});
  autodiff::Tape tape(true, false);
  tape.watch(x);
  const Tensor y = ops::mul(x, ops::cast(ops::greater(x, Tensor::scalar(1.5f)), DType::kFloat32));
  const std::vector<Tensor> g = tape.gradient(y, {x}, autodiff::Unconnected::kNone, make({3}, {1, 1, 1}));
  EXPECT_EQ(testing::values(g[0]), (std::vector<float>{0, 1, 1}));  // the mask is a constant
}

// The gradient rules where TF's kernels give a particular value: SqrtGrad and RsqrtGrad are 0
// where the incoming gradient is 0; EluGrad and SeluGrad select on the output (so NaN takes the
// "else" side and selu's gradient at 0 is scale); abs's is dy * sign(x); floor and round have no
// gradient (None) while sign's is zeros.
TEST(ElementwiseGradient, TfKernelEdgeCases) {
  const float nan = NAN, inf = INFINITY;
  auto grad = [](const std::function<Tensor(const Tensor &)> &f, const Tensor &x, const Tensor &dy = Tensor(),
                 autodiff::Unconnected u = autodiff::Unconnected::kNone) {
    autodiff::Tape tape(false, false);
    tape.watch(x);
    const Tensor y = f(x);
    return tape.gradient(y, {x}, u, dy.defined() ? dy : ops::ones_like(y))[0];
  };
  const Tensor x = make({2}, {0, 4});
  auto masked = [](Tensor (*op)(const Tensor &)) {
    return [op](const Tensor &v) {
      return ops::where(ops::greater(v, Tensor::scalar(0.0f)), op(v), ops::zeros_like(v));
    };
  };
  EXPECT_EQ(values(grad(masked(ops::sqrt), x)), (std::vector<float>{0, 0.25f}));
  EXPECT_EQ(values(grad(masked(ops::rsqrt), x)), (std::vector<float>{0, -0.0625f}));
  EXPECT_EQ(values(grad(ops::sqrt, x, make({2}, {0, 1}))), (std::vector<float>{0, 0.25f}));
  EXPECT_EQ(values(grad(ops::rsqrt, make({2}, {-0.0f, 0.0f}))), (std::vector<float>{inf, -inf}));
  const Tensor special = make({4}, {nan, 0, -0.0f, -1});
  const std::vector<float> elu = values(grad([](const Tensor &v) { return ops::elu(v, 1.0f); }, special));
  EXPECT_EQ(elu[0], 1.0f);
  EXPECT_EQ(elu[1], 1.0f);
  EXPECT_FLOAT_EQ(elu[3], std::exp(-1.0f));
  const std::vector<float> elu2 = values(grad([](const Tensor &v) { return ops::elu(v, 0.5f); }, special));
  EXPECT_EQ(elu2[0], 0.5f);  // Keras's where(x > 0, elu(x), alpha elu(x))
  EXPECT_EQ(elu2[1], 0.5f);
  EXPECT_FLOAT_EQ(elu2[3], 0.5f * std::exp(-1.0f));
  const float scale = static_cast<float>(kernels::activation::kSeluScale);
  const std::vector<float> selu = values(grad(ops::selu, special));
  EXPECT_EQ(selu[0], scale);
  EXPECT_EQ(selu[1], scale);
  EXPECT_EQ(selu[2], scale);
  const std::vector<float> abs = values(grad(ops::abs, special));
  EXPECT_TRUE(std::isnan(abs[0]));
  EXPECT_EQ(abs[1], 0.0f);
  EXPECT_EQ(abs[2], 0.0f);
  EXPECT_EQ(abs[3], -1.0f);
  const Tensor f = make({2}, {1.5f, -2.5f});
  EXPECT_FALSE(grad(ops::floor, f).defined());
  EXPECT_FALSE(grad(ops::round, f).defined());
  EXPECT_EQ(values(grad(ops::floor, f, Tensor(), autodiff::Unconnected::kZero)), (std::vector<float>{0, 0}));
  EXPECT_EQ(values(grad(ops::sign, f)), (std::vector<float>{0, 0}));
  // clip_by_value is TF's maximum(minimum(x, max), min): min when min > max, NaN for a NaN bound.
  const Tensor c = make({3}, {0, 1.5f, 3});
  EXPECT_EQ(values(ops::clip_by_value(c, 2.0f, 1.0f)), (std::vector<float>{2, 2, 2}));
  EXPECT_EQ(values(grad([](const Tensor &v) { return ops::clip_by_value(v, 2.0f, 1.0f); }, c)),
            (std::vector<float>{0, 0, 0}));
  for (const std::pair<float, float> &b : {std::pair<float, float>{nan, 1}, {0, nan}})
    for (float v : values(ops::clip_by_value(c, b.first, b.second))) EXPECT_TRUE(std::isnan(v));
  const Tensor cd = ops::cast(c, DType::kFloat64);
  EXPECT_EQ(ops::clip_by_value(cd, 2.0f, 1.0f).data<double>()[1], 2.0);
}

// A binary op's rule computes only the gradients some tape can use (TF's skip_input_indices); a
// side watched by a second tape still gets its own, with broadcasting on either side.
TEST(ElementwiseGradient, EachTapeGetsTheSideItWatches) {
  const Tensor a = make({2, 3}, {1, 2, 3, 4, 5, 6}), b = make({3}, {0.5f, -2, 4});
  const Tensor dy = make({2, 3}, {1, -1, 2, 0.5f, 3, -2});
  struct Case {
    const char *name;
    Tensor (*f)(const Tensor &, const Tensor &);
    std::vector<float> da, db;
  };
  const std::vector<Case> cases = {
      {"add", ops::add, {1, -1, 2, 0.5f, 3, -2}, {1.5f, 2, 0}},
      {"sub", ops::sub, {1, -1, 2, 0.5f, 3, -2}, {-1.5f, -2, 0}},
      {"mul", ops::mul, {0.5f, 2, 8, 0.25f, -6, -8}, {3, 13, -6}},
      // d/db of a / b = -dy a / b^2.
      {"div", ops::div, {2, 0.5f, 0.5f, 1, -1.5f, -0.5f}, {-4 - 8, 0.5f - 3.75f, -6.0f / 16 + 12.0f / 16}},
  };
  for (const Case &c : cases) {
    for (int watched = 0; watched < 3; ++watched) {  // a only, b only, both (two tapes)
      autodiff::Tape ta(false, false), tb(false, false);
      if (watched != 1) ta.watch(a);
      if (watched != 0) tb.watch(b);
      const Tensor y = c.f(a, b);
      if (watched != 1)
        testing::expect_near(ta.gradient(y, {a}, autodiff::Unconnected::kZero, dy)[0], c.da, 1e-6f,
                             std::string(c.name) + " da, watched " + std::to_string(watched));
      if (watched != 0)
        testing::expect_near(tb.gradient(y, {b}, autodiff::Unconnected::kZero, dy)[0], c.db, 1e-5f,
                             std::string(c.name) + " db, watched " + std::to_string(watched));
    }
  }
}

// ---- argument errors: code, op name and the offending description ----

TEST(ElementwiseErrors, BinaryOps) {
  using Op = Tensor (*)(const Tensor &, const Tensor &);
  const std::vector<std::pair<const char *, Op>> ops_list = {
      {"add", ops::add},
      {"sub", ops::sub},
      {"mul", ops::mul},
      {"div", ops::div},
      {"maximum", ops::maximum},
      {"minimum", ops::minimum},
      {"pow", ops::pow},
      {"equal", ops::equal},
      {"not_equal", ops::not_equal},
      {"greater", ops::greater},
      {"greater_equal", ops::greater_equal},
      {"less", ops::less},
      {"less_equal", ops::less_equal},
  };
  const Tensor f23 = random_tensor({2, 3}, 1u), f4 = random_tensor({4}, 2u);
  const Tensor i23 = ops::cast(f23, DType::kInt32);
  const Tensor bf = ops::cast(f23, DType::kBFloat16);
  for (const auto &[name, op] : ops_list) {
    expect_error([&, op = op] { op(f23, i23); }, Code::kInvalidArgument,
                 {name, "float32[2, 3]", "int32[2, 3]"});
    expect_error([&, op = op] { op(f23, f4); }, Code::kInvalidArgument, {name, "[2, 3]", "[4]"});
    expect_error([&, op = op] { op(Tensor(), f4); }, Code::kInvalidArgument, {name, "undefined"});
    EXPECT_NO_THROW(op(bf, bf)) << name;  // bfloat16 computes in float32 (test_float_dtypes.cc)
  }
  const Tensor b = testing::make_bool({2}, {0, 1});
  for (const char *name : {"add", "sub", "mul", "div", "maximum", "minimum", "pow"}) {
    for (const auto &[n, op] : ops_list)
      if (std::string(n) == name)
        expect_error([&, op = op] { op(b, b); }, Code::kInvalidArgument, {name, "bool[2]"});
  }
  const Tensor u23 = ops::cast(f23, DType::kUInt8);
  expect_error([&] { ops::pow(u23, u23); }, Code::kInvalidArgument,
               {"pow", "uint8[2, 3]", "float64 or int32"});
  for (const auto &[name, op] : std::vector<std::pair<const char *, Op>>{{"logical_and", ops::logical_and},
                                                                         {"logical_or", ops::logical_or},
                                                                         {"logical_xor", ops::logical_xor}}) {
    expect_error([&, op = op] { op(f23, f23); }, Code::kInvalidArgument, {name, "float32[2, 3]", "bool"});
    expect_error(
        [&, op = op] {
          op(b, testing::make_bool({3}, {0, 1, 1}));
        },
        Code::kInvalidArgument, {name, "[2]", "[3]"});
  }
}

TEST(ElementwiseErrors, UnaryOps) {
  using Op = std::function<Tensor(const Tensor &)>;
  const std::vector<std::pair<const char *, Op>> float_only = {
      {"exp", ops::exp},
      {"log", ops::log},
      {"sqrt", ops::sqrt},
      {"rsqrt", ops::rsqrt},
      {"tanh", ops::tanh},
      {"sigmoid", ops::sigmoid},
      {"gelu", [](const Tensor &x) { return ops::gelu(x, true); }},
      {"softplus", ops::softplus},
      {"elu", [](const Tensor &x) { return ops::elu(x, 1.0f); }},
      {"leaky_relu", [](const Tensor &x) { return ops::leaky_relu(x, 0.1f); }},
      {"swish", ops::swish},
      {"log1p", ops::log1p},
      {"expm1", ops::expm1},
      {"floor", ops::floor},
      {"sin", ops::sin},
      {"cos", ops::cos},
      {"selu", ops::selu},
  };
  const Tensor i3 = testing::make_typed<int32_t>({3}, {1, 2, 3});
  const Tensor b3 = testing::make_bool({3}, {1, 0, 1});
  for (const auto &[name, op] : float_only) {
    expect_error([&, op = op] { op(i3); }, Code::kInvalidArgument, {name, "int32[3]", "float32"});
    expect_error([&, op = op] { op(Tensor()); }, Code::kInvalidArgument, {name, "undefined"});
  }
  // The ops TF defines for integers too.
  for (const auto &[name, op] : std::vector<std::pair<const char *, Op>>{
           {"neg", ops::neg},
           {"abs", ops::abs},
           {"square", ops::square},
           {"relu", ops::relu},
           {"relu6", ops::relu6},
           {"round", ops::round},
           {"sign", ops::sign},
           {"clip_by_value", [](const Tensor &x) { return ops::clip_by_value(x, 0, 1); }}}) {
    expect_error([&, op = op] { op(b3); }, Code::kInvalidArgument, {name, "bool[3]", "int32"});
    expect_error([&, op = op] { op(Tensor()); }, Code::kInvalidArgument, {name, "undefined"});
  }
  expect_error([&] { ops::logical_not(i3); }, Code::kInvalidArgument, {"logical_not", "int32[3]", "bool"});
  const Tensor f = make({2}, {1, 2});
  expect_error([&] { ops::leaky_relu(f, NAN); }, Code::kInvalidArgument, {"leaky_relu", "alpha", "finite"});
  expect_error([&] { ops::elu(f, INFINITY); }, Code::kInvalidArgument, {"elu", "alpha", "finite"});
}

TEST(ElementwiseErrors, Where) {
  const Tensor c = testing::make_bool({2}, {1, 0});
  const Tensor f2 = make({2}, {1, 2}), f3 = make({3}, {1, 2, 3});
  expect_error([&] { ops::where(f2, f2, f2); }, Code::kInvalidArgument,
               {"where", "cond", "float32[2]", "bool"});
  expect_error([&] { ops::where(c, f2, ops::cast(f2, DType::kInt64)); }, Code::kInvalidArgument,
               {"where", "float32[2]", "int64[2]"});
  expect_error([&] { ops::where(c, f3, f3); }, Code::kInvalidArgument, {"where", "[2]", "[3]"});
  expect_error([&] { ops::where(c, f2, Tensor()); }, Code::kInvalidArgument, {"where", "undefined"});
}

}  // namespace
}  // namespace kiln
