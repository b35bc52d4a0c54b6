// float64 and bfloat16 through the elementwise ops and activations: float64 against long
// double references (within a few ulp), bfloat16 bit-equal to bf16(float32 result), both at
// a small and a threaded size and at 1 and 2 threads; special values as float32; float64
// gradients against central differences; bfloat16 gradients against float32 ones; the
// tape, where, creation ops and truediv's promotion.
#include <cfenv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/elementwise.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;
using testing::make_typed;
using testing::values;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kBig = 70000;  // above the threading threshold

std::vector<double> uniform(int64_t n, unsigned seed, double lo, double hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double &x : v) x = dist(gen);
  return v;
}

Tensor f64(const std::vector<double> &v) {
  return make_typed<double>(Shape{static_cast<int64_t>(v.size())}, v);
}
Tensor bf16_of(const std::vector<double> &v) { return ops::cast(f64(v), DType::kBFloat16); }

uint16_t bits_of(bfloat16 b) { return b.bits; }

// How TF's special-value rules classify a result: NaN, +-inf, +-0, or a finite sign.
std::string klass(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "+inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0" : "+0";
  return v > 0 ? "+" : "-";
}

using UnaryFn = std::function<Tensor(const Tensor &)>;
using LongFn = std::function<long double(long double)>;

struct UnaryCase {
  std::string name;
  UnaryFn op;
  LongFn ref;
  double lo, hi;    // sampled domain
  double ulps = 4;  // tolerance against the long double reference
};

long double sigmoid_l(long double x) { return 1.0L / (1.0L + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  const long double kSqrtHalf = std::sqrt(0.5L);
  const long double kScale = 1.0507009873554804934193349852946L, kAlpha = 1.6732632423543772848170429916717L;
  const long double k = 0.79788456080286535587989211986876L;
  return {
      {"neg", ops::neg, [](long double x) { return -x; }, -10, 10},
      {"abs", ops::abs, [](long double x) { return std::fabs(x); }, -10, 10},
      {"square", ops::square, [](long double x) { return x * x; }, -10, 10},
      {"exp", ops::exp, [](long double x) { return std::exp(x); }, -20, 20},
      {"log", ops::log, [](long double x) { return std::log(x); }, 1e-3, 1e3},
      {"sqrt", ops::sqrt, [](long double x) { return std::sqrt(x); }, 0, 100},
      {"rsqrt", ops::rsqrt, [](long double x) { return 1.0L / std::sqrt(x); }, 1e-3, 100},
      {"tanh", ops::tanh, [](long double x) { return std::tanh(x); }, -5, 5},
      {"sigmoid", ops::sigmoid, sigmoid_l, -30, 30},
      {"relu", ops::relu, [](long double x) { return x > 0 ? x : 0.0L; }, -5, 5},
      {"relu6", ops::relu6, [](long double x) { return x > 6 ? 6.0L : (x > 0 ? x : 0.0L); }, -3, 9},
      {"leaky_relu", [](const Tensor &x) { return ops::leaky_relu(x, 0.25f); },
       [](long double x) { return x > 0 ? x : 0.25L * x; }, -5, 5},
      {"elu", [](const Tensor &x) { return ops::elu(x, 1.0f); },
       [](long double x) { return x > 0 ? x : std::expm1(x); }, -5, 5},
      {"selu", ops::selu, [=](long double x) { return x > 0 ? kScale * x : kScale * kAlpha * std::expm1(x); },
       -5, 5},
      {"gelu", [](const Tensor &x) { return ops::gelu(x, false); },
       [=](long double x) { return 0.5L * x * std::erfc(-x * kSqrtHalf); }, -12, 5, 8},
      {"gelu_tanh", [](const Tensor &x) { return ops::gelu(x, true); },
       // In the negative tail the rounding of the argument z (|z| up to ~45) alone costs |z| ulp.
       [=](long double x) { return x * sigmoid_l(2 * k * (x + 0.044715L * x * x * x)); }, -8, 5, 64},
      {"softplus", ops::softplus, [](long double x) { return std::log1p(std::exp(x)); }, -20, 20},
      {"swish", ops::swish, [](long double x) { return x * sigmoid_l(x); }, -10, 10},
      {"log1p", ops::log1p, [](long double x) { return std::log1p(x); }, -0.5, 10},
      {"expm1", ops::expm1, [](long double x) { return std::expm1(x); }, -2, 2},
      {"floor", ops::floor, [](long double x) { return std::floor(x); }, -10, 10},
      {"round", ops::round, [](long double x) { return std::nearbyint(x); }, -10, 10},
      {"sign", ops::sign, [](long double x) { return x > 0 ? 1.0L : (x < 0 ? -1.0L : std::fabs(x)); }, -2, 2},
      {"sin", ops::sin, [](long double x) { return std::sin(x); }, -10, 10},
      {"cos", ops::cos, [](long double x) { return std::cos(x); }, -10, 10},
      {"clip_by_value", [](const Tensor &x) { return ops::clip_by_value(x, -0.5f, 0.75f); },
       [](long double x) { return x < -0.5L ? -0.5L : (x > 0.75L ? 0.75L : x); }, -2, 2},
  };
}

const std::vector<double> &special_values() {
  static const std::vector<double> v = {kNaN, kInf,   -kInf,   0.0,   -0.0,  1.0,
                                        -1.0, 1e-310, -1e-310, 1e300, -1e300};
  return v;
}

// Runs f at 1 and at 2 threads and expects the same bits.
void expect_thread_independent(const std::string &what, const std::function<Tensor()> &f) {
  const int before = num_threads();
  set_num_threads(1);
  const Tensor one = f();
  set_num_threads(2);
  const Tensor two = f();
  set_num_threads(before);
  ASSERT_EQ(one.num_elements(), two.num_elements());
  const size_t bytes = static_cast<size_t>(one.num_elements()) * dtype_size(one.dtype());
  EXPECT_EQ(std::memcmp(one.raw_data(), two.raw_data(), bytes), 0) << what << ": 1 and 2 threads differ";
}

TEST(FloatDTypes, UnaryFloat64MatchesLongDoubleAtEverySize) {
  unsigned seed = 1;
  for (const UnaryCase &c : unary_cases()) {
    const std::vector<double> big = uniform(kBig, ++seed, c.lo, c.hi);
    const std::vector<double> small(big.begin(), big.begin() + 3);
    const Tensor yb = c.op(f64(big)), ys = c.op(f64(small));
    ASSERT_EQ(yb.dtype(), DType::kFloat64) << c.name;
    const double *pb = yb.data<double>(), *ps = ys.data<double>();
    for (size_t i = 0; i < big.size(); ++i) {
      const long double want = c.ref(static_cast<long double>(big[i]));
      const double tol =
          c.ulps * std::numeric_limits<double>::epsilon() * std::fabs(static_cast<double>(want)) + 1e-300;
      ASSERT_NEAR(pb[i], static_cast<double>(want), tol) << c.name << "(" << big[i] << ")";
      if (i < 3) {
        ASSERT_EQ(std::memcmp(&pb[i], &ps[i], sizeof(double)), 0) << c.name << ": size 3 vs " << kBig;
      }
    }
    expect_thread_independent(c.name, [&] { return c.op(f64(big)); });
  }
}

TEST(FloatDTypes, UnarySpecialValuesFloat64AsFloat32) {
  const std::vector<double> &sv = special_values();
  std::vector<float> svf(sv.begin(), sv.end());
  for (const UnaryCase &c : unary_cases()) {
    const Tensor y64 = c.op(f64(sv));
    const Tensor y32 = c.op(make_typed<float>(Shape{static_cast<int64_t>(svf.size())}, svf));
    for (size_t i = 0; i < sv.size(); ++i) {
      if (std::fabs(sv[i]) < 1e-300 && sv[i] != 0) continue;  // denormal in float64, 0 in float32
      if (std::fabs(sv[i]) > 1e38) continue;                  // finite in float64, inf in float32
      EXPECT_EQ(klass(y64.data<double>()[i]), klass(y32.data<float>()[i])) << c.name << "(" << sv[i] << ")";
    }
  }
  // Denormals stay denormals where the op passes them through.
  const Tensor tiny = f64({1e-310, -1e-310});
  EXPECT_EQ(values<double>(ops::relu(tiny)), (std::vector<double>{1e-310, 0.0}));
  EXPECT_EQ(values<double>(ops::neg(tiny)), (std::vector<double>{-1e-310, 1e-310}));
  EXPECT_EQ(values<double>(ops::floor(tiny)), (std::vector<double>{0.0, -1.0}));
  EXPECT_TRUE(std::signbit(values<double>(ops::round(f64({-0.3}))).at(0)));
  const std::vector<double> ties = {0.5, 1.5, 2.5, -2.5, -0.5, 4503599627370497.0, 0.49999999999999994};
  const std::vector<double> even = {0, 2, 2, -2, -0.0, 4503599627370497.0, 0};
  EXPECT_EQ(values<double>(ops::round(f64(ties))), even);
  // The thread's rounding mode does not change round (nor floor).
  std::fesetround(FE_UPWARD);
  const std::vector<double> up = values<double>(ops::round(f64(ties)));
  std::fesetround(FE_TONEAREST);
  EXPECT_EQ(up, even);
  EXPECT_TRUE(std::signbit(values<double>(ops::round(f64({-0.5}))).at(0)));
}

TEST(FloatDTypes, UnaryBFloat16IsRoundedFloat32AtEverySize) {
  unsigned seed = 50;
  for (const UnaryCase &c : unary_cases()) {
    std::vector<double> big = uniform(kBig, ++seed, c.lo, c.hi);
    for (size_t i = 0; i < special_values().size(); ++i) big[10 + i] = special_values()[i];
    const std::vector<double> small(big.begin(), big.begin() + 3);
    const Tensor xb = bf16_of(big);
    const Tensor yb = c.op(xb), ys = c.op(bf16_of(small));
    ASSERT_EQ(yb.dtype(), DType::kBFloat16) << c.name;
    const Tensor want = ops::cast(c.op(ops::cast(xb, DType::kFloat32)), DType::kBFloat16);
    const bfloat16 *pb = yb.data<bfloat16>(), *pw = want.data<bfloat16>(), *ps = ys.data<bfloat16>();
    for (int64_t i = 0; i < kBig; ++i) {
      ASSERT_EQ(bits_of(pb[i]), bits_of(pw[i]))
          << c.name << "(" << static_cast<float>(xb.data<bfloat16>()[i]) << ")";
      if (i < 3) {
        ASSERT_EQ(bits_of(pb[i]), bits_of(ps[i])) << c.name << ": size 3 vs " << kBig;
      }
    }
    expect_thread_independent(c.name, [&] { return c.op(xb); });
  }
}

// The same calls from several threads at once give the serial bits (the bf16 stack buffers
// and float64 loops share nothing).
TEST(FloatDTypes, ConcurrentCallsGiveTheSameBits) {
  const std::vector<double> v = uniform(kBig, 77u, -6, 6);
  const Tensor x64 = f64(v), x16 = bf16_of(v);
  const std::vector<std::function<Tensor()>> calls = {
      [&] { return ops::gelu(x16, false); },
      [&] { return ops::exp(x64); },
      [&] { return ops::sigmoid(x16); },
      [&] { return ops::mul(x64, ops::tanh(x64)); },
  };
  std::vector<Tensor> serial;
  for (const auto &c : calls) serial.push_back(c());
  std::vector<Tensor> got(calls.size() * 2);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] { got[t] = calls[t % calls.size()](); });
  for (std::thread &t : threads) t.join();
  for (size_t t = 0; t < got.size(); ++t) {
    const Tensor &want = serial[t % calls.size()];
    const size_t bytes = static_cast<size_t>(want.num_elements()) * dtype_size(want.dtype());
    EXPECT_EQ(std::memcmp(got[t].raw_data(), want.raw_data(), bytes), 0) << "call " << t % calls.size();
  }
}

using BinaryFn = Tensor (*)(const Tensor &, const Tensor &);
struct BinaryCase {
  std::string name;
  BinaryFn op;
  std::function<double(double, double)> ref;
  bool writes_bool = false;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", ops::add, [](double a, double b) { return a + b; }},
      {"sub", ops::sub, [](double a, double b) { return a - b; }},
      {"mul", ops::mul, [](double a, double b) { return a * b; }},
      {"div", ops::div, [](double a, double b) { return a / b; }},
      {"truediv", ops::truediv, [](double a, double b) { return a / b; }},
      {"pow", ops::pow, [](double a, double b) { return std::pow(a, b); }},
      {"maximum", ops::maximum,
       [](double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::fmax(a, b); }},
      {"minimum", ops::minimum,
       [](double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::fmin(a, b); }},
      {"equal", ops::equal, [](double a, double b) -> double { return a == b; }, true},
      {"not_equal", ops::not_equal, [](double a, double b) -> double { return a != b; }, true},
      {"greater", ops::greater, [](double a, double b) -> double { return a > b; }, true},
      {"greater_equal", ops::greater_equal, [](double a, double b) -> double { return a >= b; }, true},
      {"less", ops::less, [](double a, double b) -> double { return a < b; }, true},
      {"less_equal", ops::less_equal, [](double a, double b) -> double { return a <= b; }, true},
  };
}

// Element i of a's and b's broadcast to out_shape, for the shapes used below.
double at(const std::vector<double> &v, const Shape &s, const Shape &out, int64_t i) {
  int64_t off = 0, stride = 1;
  for (int d = out.rank() - 1; d >= 0; --d) {
    const int64_t idx = i % out[d];
    i /= out[d];
    const int sd = d - (out.rank() - s.rank());
    if (sd >= 0) {
      if (s[sd] != 1) off += idx * stride;
      stride *= s[sd];
    }
  }
  return v[static_cast<size_t>(off)];
}

TEST(FloatDTypes, BinaryFloat64AndBFloat16WithBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}}, {{3, 1}, {1, 5}}, {{}, {7}}, {{kBig}, {kBig}}, {{kBig / 10, 10}, {10}}, {{kBig}, {}}};
  unsigned seed = 200;
  for (const BinaryCase &c : binary_cases()) {
    for (const auto &[sa, sb] : shapes) {
      std::vector<double> va = uniform(sa.num_elements(), ++seed, 0.25, 4),
                          vb = uniform(sb.num_elements(), ++seed, -2, 2);
      // NaN, ties and signed zeros where there is room.
      if (va.size() >= 3 && vb.size() >= 3) {
        va[0] = kNaN, vb[1] = kNaN, vb[2] = va[2];
      }
      const Tensor a = make_typed<double>(sa, va), b = make_typed<double>(sb, vb);
      const Shape out_shape = broadcast_shapes(sa, sb, "test");
      const Tensor y = c.op(a, b);
      const std::string what = c.name + " " + sa.to_string() + " x " + sb.to_string();
      ASSERT_EQ(y.dtype(), c.writes_bool ? DType::kBool : DType::kFloat64) << what;
      for (int64_t i = 0; i < out_shape.num_elements(); ++i) {
        const double want = c.ref(at(va, sa, out_shape, i), at(vb, sb, out_shape, i));
        const double got = c.writes_bool ? y.data<uint8_t>()[i] : y.data<double>()[i];
        if (std::isnan(want)) {
          ASSERT_TRUE(std::isnan(got)) << what << " at " << i;
        } else {
          ASSERT_EQ(got, want) << what << " at " << i;  // one IEEE operation or libm pow: exact
        }
      }
      // bfloat16: each element computed in float32 and rounded once.
      const Tensor ab = ops::cast(a, DType::kBFloat16), bb = ops::cast(b, DType::kBFloat16);
      const Tensor yb = c.op(ab, bb);
      Tensor want = c.op(ops::cast(ab, DType::kFloat32), ops::cast(bb, DType::kFloat32));
      if (!c.writes_bool) {
        ASSERT_EQ(yb.dtype(), DType::kBFloat16) << what;
        want = ops::cast(want, DType::kBFloat16);
      }
      const size_t bytes = static_cast<size_t>(yb.num_elements()) * dtype_size(yb.dtype());
      ASSERT_EQ(std::memcmp(yb.raw_data(), want.raw_data(), bytes), 0) << what << " (bfloat16)";
      if (out_shape.num_elements() >= kBig) expect_thread_independent(what, [&] { return c.op(a, b); });
    }
  }
}

TEST(FloatDTypes, MaximumMinimumNaNAndZeroRulesAsFloat32) {
  const std::vector<double> a = {kNaN, 1.0, 0.0, -0.0, kInf}, b = {1.0, kNaN, -0.0, 0.0, kNaN};
  std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
  const Shape s{5};
  for (BinaryFn op : {ops::maximum, ops::minimum}) {
    const Tensor y64 = op(make_typed<double>(s, a), make_typed<double>(s, b));
    const Tensor y32 = op(make_typed<float>(s, af), make_typed<float>(s, bf));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(klass(y64.data<double>()[i]), klass(y32.data<float>()[i])) << i;
  }
}

TEST(FloatDTypes, TruedivPromotesIntegersAsTensorFlow) {
  const Tensor i32 = ops::truediv(make_typed<int32_t>({3}, {1, 7, -7}), make_typed<int32_t>({3}, {2, 2, 0}));
  ASSERT_EQ(i32.dtype(), DType::kFloat64);
  EXPECT_EQ(values<double>(i32)[0], 0.5);
  EXPECT_EQ(values<double>(i32)[1], 3.5);
  EXPECT_EQ(values<double>(i32)[2], -kInf);  // no integer division-by-zero error: a float division
  const Tensor i64 =
      ops::truediv(make_typed<int64_t>({1}, {(int64_t{1} << 53) + 1}), make_typed<int64_t>({1}, {1}));
  EXPECT_EQ(i64.dtype(), DType::kFloat64);
  const Tensor u8 = ops::truediv(make_typed<uint8_t>({1}, {3}), make_typed<uint8_t>({1}, {4}));
  EXPECT_EQ(u8.dtype(), DType::kFloat32);
  EXPECT_EQ(values<float>(u8)[0], 0.75f);
  EXPECT_EQ(ops::truediv(testing::make({1}, {1.0f}), testing::make({1}, {4.0f})).dtype(), DType::kFloat32);
  expect_error([] { ops::truediv(testing::make_bool({1}, {1}), testing::make_bool({1}, {1})); },
               Code::kInvalidArgument, {"truediv", "bool", "expected"});
  expect_error([] { ops::truediv(make_typed<int32_t>({1}, {1}), make_typed<int64_t>({1}, {1})); },
               Code::kInvalidArgument, {"truediv", "int32", "int64"});
}

// Integer truediv divides in place in the widened a when that has the output's shape; every
// form (a scalar, a full-size or a broadcasting divisor, a divisor wider than a, sizes on both
// sides of the oneDNN threshold) gives the bits of the widened division.
TEST(FloatDTypes, IntegerTruedivEqualsTheWidenedDivisionAtEverySize) {
  for (int64_t n : {int64_t{5}, kernels::kElementwiseLargeThreshold + 3}) {
    std::vector<uint8_t> a8(static_cast<size_t>(n)), b8(static_cast<size_t>(n));
    std::vector<int32_t> a32(static_cast<size_t>(n)), b32(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      a8[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 37) % 256);
      b8[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 11) % 256);  // 0 included: inf and NaN
      a32[static_cast<size_t>(i)] = static_cast<int32_t>(i * 7919 - 100000);
      b32[static_cast<size_t>(i)] = static_cast<int32_t>(i % 13 - 6);
    }
    const Tensor x8 = make_typed<uint8_t>({n}, a8), y8 = make_typed<uint8_t>({n}, b8);
    const Tensor x32 = make_typed<int32_t>({n}, a32), y32 = make_typed<int32_t>({n}, b32);
    const std::vector<std::pair<Tensor, Tensor>> cases = {
        {x8, make_typed<uint8_t>({}, {255})},
        {x8, y8},
        {ops::reshape(x8, {n, 1}), make_typed<uint8_t>({1, 3}, {1, 2, 3})},  // the output outgrows a
        {x32, make_typed<int32_t>({}, {-3})},
        {x32, y32},
    };
    for (const auto &[a, b] : cases) {
      const DType to = a.dtype() == DType::kUInt8 ? DType::kFloat32 : DType::kFloat64;
      const Tensor got = ops::truediv(a, b), want = ops::div(ops::cast(a, to), ops::cast(b, to));
      ASSERT_EQ(got.dtype(), to);
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(),
                            static_cast<size_t>(got.num_elements()) * dtype_size(to)),
                0)
          << dtype_name(a.dtype()) << " " << a.shape().to_string() << " / " << b.shape().to_string();
    }
  }
}

TEST(FloatDTypes, MixedDtypesAreErrorsNamingTheOp) {
  expect_error([] { ops::add(f64({1}), testing::make({1}, {1.0f})); }, Code::kInvalidArgument,
               {"add", "float64", "float32", "same dtype"});
  expect_error([] { ops::logical_not(f64({1})); }, Code::kInvalidArgument,
               {"logical_not", "float64", "bool"});
  expect_error([] { ops::pow(make_typed<int32_t>({1}, {2}), f64({2})); }, Code::kInvalidArgument,
               {"pow", "int32", "float64", "same dtype"});
}

}  // namespace
}  // namespace kiln
