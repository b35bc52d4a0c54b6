// Elementwise ops against reference loops written here: binary with broadcasting,
// comparisons, logical ops, unary activations, where, clip, and the kernel paths on
// both sides of the oneDNN size threshold.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"  // test_util.h uses kiln::Error without including it
#include "core/threads.h"
#include "kernels/elementwise.h"
#include "kernels/engine.h"
#include "kernels/simd.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::make;
using testing::make_typed;
using testing::random_tensor;
using testing::values;

constexpr int64_t kLarge = kernels::kElementwiseLargeThreshold;

// Element offset into a tensor of shape `in` for output element i of shape `out` (NumPy rules).
int64_t broadcast_offset(const Shape &out, const Shape &in, int64_t i) {
  int64_t off = 0, stride = 1;
  for (int d = out.rank() - 1, k = in.rank() - 1; d >= 0; --d, --k) {
    const int64_t idx = i % out[d];
    i /= out[d];
    if (k < 0) continue;
    if (in[k] != 1) off += idx * stride;
    stride *= in[k];
  }
  return off;
}

Shape broadcast(const Shape &a, const Shape &b) {
  const int rank = std::max(a.rank(), b.rank());
  Shape s;
  for (int i = 0; i < rank; ++i) {
    const int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    s.push_back(da == 1 ? db : da);
  }
  return s;
}

std::vector<double> as_doubles(const Tensor &t) {
  std::vector<double> v(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.item_as_double(static_cast<int64_t>(i));
  return v;
}

// Small integers of `dtype` (so that comparisons find ties), deterministic per seed.
Tensor discrete(DType dtype, const Shape &shape, unsigned seed) {
  std::mt19937 gen(seed);
  const int lo = dtype == DType::kBool ? 0 : (dtype == DType::kUInt8 ? 0 : -3);
  const int hi = dtype == DType::kBool ? 1 : 3;
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (double &x : v) x = dist(gen);
  return ops::cast(make(shape, std::vector<float>(v.begin(), v.end())), dtype);
}

struct ShapePair {
  Shape a, b;
};

// Odd sizes, every broadcasting form, and sizes above the threshold on each kernel path
// (oneDNN with src1 broadcast, swapped operands, and the parallel loop for two-sided broadcast).
const std::vector<ShapePair> &shape_pairs() {
  static const std::vector<ShapePair> pairs = {
      {{7}, {7}},
      {{3, 5}, {3, 5}},
      {{3, 1}, {1, 5}},
      {{2, 3, 4}, {4}},
      {{}, {3, 5}},
      {{3, 5}, {}},
      {{}, {}},
      {{2, 1, 4}, {3, 1}},
      {{5, 7, 1, 9}, {7, 3, 1}},
      {{1}, {1}},
      {{kLarge + 3}, {kLarge + 3}},
      {{201, 301}, {301}},
      {{301}, {201, 301}},
      {{201, 1}, {1, 301}},
      {{201, 301}, {}},
      {{3, 0}, {1}},
  };
  return pairs;
}

struct BinaryCase {
  const char *name;
  std::function<Tensor(const Tensor &, const Tensor &)> op;
  std::function<double(double, double)> ref;
  float b_lo, b_hi;  // b's range (kept away from 0 where the op needs it)
};

TEST(ElementwiseBinary, Float32MatchesReferenceLoops) {
  const std::vector<BinaryCase> cases = {
      {"add", ops::add, [](double a, double b) { return a + b; }, -1.0f, 1.0f},
      {"sub", ops::sub, [](double a, double b) { return a - b; }, -1.0f, 1.0f},
      {"mul", ops::mul, [](double a, double b) { return a * b; }, -1.0f, 1.0f},
      {"div", ops::div, [](double a, double b) { return a / b; }, 0.5f, 2.0f},
      {"maximum", ops::maximum, [](double a, double b) { return std::max(a, b); }, -1.0f, 1.0f},
      {"minimum", ops::minimum, [](double a, double b) { return std::min(a, b); }, -1.0f, 1.0f},
      {"pow", ops::pow, [](double a, double b) { return std::pow(a, b); }, -2.0f, 2.0f},  // a made > 0
  };
  for (const BinaryCase &c : cases) {
    for (const ShapePair &p : shape_pairs()) {
      Tensor a = random_tensor(p.a, 1u, -1.0f, 1.0f);
      if (std::string(c.name) == "pow") a = ops::add(ops::abs(a), Tensor::scalar(0.5f));
      const Tensor b = random_tensor(p.b, 2u, c.b_lo, c.b_hi);
      const Tensor out = c.op(a, b);
      const Shape os = broadcast(p.a, p.b);
      const std::string what = std::string(c.name) + " " + p.a.to_string() + " x " + p.b.to_string();
      ASSERT_EQ(out.shape(), os) << what;
      ASSERT_EQ(out.dtype(), DType::kFloat32) << what;
      std::vector<float> want(static_cast<size_t>(os.num_elements()));
      const float *pa = a.data<float>(), *pb = b.data<float>();
      for (int64_t i = 0; i < os.num_elements(); ++i) {
        const double av = pa[broadcast_offset(os, p.a, i)];
        const double bv = pb[broadcast_offset(os, p.b, i)];
        want[static_cast<size_t>(i)] = static_cast<float>(c.ref(av, bv));
      }
      testing::expect_near(out, want, 2e-6f, what);
    }
  }
}

// b with each 0 replaced by 1.
Tensor nonzero(const Tensor &b) {
  const Tensor zero = ops::cast(Tensor::scalar(0.0f), b.dtype()),
               one = ops::cast(Tensor::scalar(1.0f), b.dtype());
  return ops::where(ops::equal(b, zero), ops::broadcast_to(one, b.shape()), b);
}

template <typename T>
void check_integer_binary() {
  using U = std::make_unsigned_t<T>;
  struct Case {
    const char *name;
    std::function<Tensor(const Tensor &, const Tensor &)> op;
    std::function<T(T, T)> ref;
  };
  const std::vector<Case> cases = {
      {"add", ops::add, [](T a, T b) { return static_cast<T>(static_cast<U>(a) + static_cast<U>(b)); }},
      {"sub", ops::sub, [](T a, T b) { return static_cast<T>(static_cast<U>(a) - static_cast<U>(b)); }},
      {"mul", ops::mul, [](T a, T b) { return static_cast<T>(static_cast<U>(a) * static_cast<U>(b)); }},
      // A zero divisor is an error (ElementwiseBinary.IntegerDivisionByZeroIsAnError), so div
      // sees b with its zeros replaced by 1.
      {"div", [](const Tensor &a, const Tensor &b) { return ops::div(a, nonzero(b)); },
       [](T a, T b) { return static_cast<T>(a / (b == 0 ? T(1) : b)); }},
      {"maximum", ops::maximum, [](T a, T b) { return std::max(a, b); }},
      {"minimum", ops::minimum, [](T a, T b) { return std::min(a, b); }},
  };
  const DType dtype = dtype_of<T>::value;
  for (const Case &c : cases) {
    for (const ShapePair &p : shape_pairs()) {
      const Tensor a = ops::cast(random_tensor(p.a, 3u, -100.0f, 100.0f), dtype);
      const Tensor b = ops::cast(random_tensor(p.b, 4u, -5.0f, 5.0f), dtype);  // includes zeros
      const Tensor out = c.op(a, b);
      const Shape os = broadcast(p.a, p.b);
      ASSERT_EQ(out.shape(), os);
      ASSERT_EQ(out.dtype(), dtype);
      const T *pa = a.data<T>(), *pb = b.data<T>(), *po = out.data<T>();
      for (int64_t i = 0; i < os.num_elements(); ++i)
        ASSERT_EQ(po[i], c.ref(pa[broadcast_offset(os, p.a, i)], pb[broadcast_offset(os, p.b, i)]))
            << c.name << " " << dtype_name(dtype) << " " << p.a.to_string() << " x " << p.b.to_string()
            << " at " << i;
    }
  }
}

TEST(ElementwiseBinary, Int32MatchesReferenceLoops) { check_integer_binary<int32_t>(); }
TEST(ElementwiseBinary, Int64MatchesReferenceLoops) { check_integer_binary<int64_t>(); }

TEST(ElementwiseBinary, IntegerEdgeCasesAreDefined) {
  const int32_t mn = std::numeric_limits<int32_t>::min(), mx = std::numeric_limits<int32_t>::max();
  const Tensor a = make_typed<int32_t>({5}, {7, -7, mn, mx, 0});
  const Tensor b = make_typed<int32_t>({5}, {3, 2, -1, 1, 5});
  EXPECT_EQ(values<int32_t>(ops::div(a, b)), (std::vector<int32_t>{2, -3, mn, mx, 0}));   // truncates; wraps
  EXPECT_EQ(values<int32_t>(ops::add(a, b)), (std::vector<int32_t>{10, -5, mx, mn, 5}));  // wraps
  EXPECT_EQ(values<int32_t>(ops::neg(make_typed<int32_t>({2}, {mn, 5}))), (std::vector<int32_t>{mn, -5}));
  const Tensor big = make_typed<int64_t>({1}, {std::numeric_limits<int64_t>::min()});
  EXPECT_EQ(values<int64_t>(ops::div(big, make_typed<int64_t>({1}, {-1})))[0],
            std::numeric_limits<int64_t>::min());
}

TEST(ElementwiseBinary, FloatDivisionAndNaNFollowIEEE) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> q = values(ops::div(make({3}, {1, -1, 0}), make({3}, {0, 0, 0})));
  EXPECT_EQ(q[0], inf);
  EXPECT_EQ(q[1], -inf);
  EXPECT_TRUE(std::isnan(q[2]));
  EXPECT_TRUE(std::isnan(values(ops::maximum(make({1}, {nan}), make({1}, {1})))[0]));
  EXPECT_TRUE(std::isnan(values(ops::minimum(make({1}, {1}), make({1}, {nan})))[0]));
}

TEST(ElementwiseCompare, AllDtypesMatchReferenceLoops) {
  struct Case {
    const char *name;
    std::function<Tensor(const Tensor &, const Tensor &)> op;
    std::function<bool(double, double)> ref;
  };
  const std::vector<Case> cases = {
      {"equal", ops::equal, [](double a, double b) { return a == b; }},
      {"not_equal", ops::not_equal, [](double a, double b) { return a != b; }},
      {"greater", ops::greater, [](double a, double b) { return a > b; }},
      {"greater_equal", ops::greater_equal, [](double a, double b) { return a >= b; }},
      {"less", ops::less, [](double a, double b) { return a < b; }},
      {"less_equal", ops::less_equal, [](double a, double b) { return a <= b; }},
  };
  const std::vector<ShapePair> pairs = {{{7}, {7}},   {{3, 1}, {1, 5}},    {{2, 3, 4}, {4}},
                                        {{}, {3, 5}}, {{201, 301}, {301}}, {{201, 1}, {1, 301}}};
  for (DType dtype : {DType::kFloat32, DType::kInt32, DType::kInt64, DType::kUInt8, DType::kBool})
    for (const Case &c : cases)
      for (const ShapePair &p : pairs) {
        const Tensor a = discrete(dtype, p.a, 5u), b = discrete(dtype, p.b, 6u);
        const Tensor out = c.op(a, b);
        const Shape os = broadcast(p.a, p.b);
        ASSERT_EQ(out.dtype(), DType::kBool);
        ASSERT_EQ(out.shape(), os);
        const std::vector<double> va = as_doubles(a), vb = as_doubles(b);
        const uint8_t *po = out.data<uint8_t>();
        for (int64_t i = 0; i < os.num_elements(); ++i)
          ASSERT_EQ(po[i] != 0, c.ref(va[static_cast<size_t>(broadcast_offset(os, p.a, i))],
                                      vb[static_cast<size_t>(broadcast_offset(os, p.b, i))]))
              << c.name << " " << dtype_name(dtype) << " " << p.a.to_string() << " x " << p.b.to_string();
      }
}

TEST(ElementwiseLogical, MatchesTruthTablesWithBroadcasting) {
  const Tensor a = testing::make_bool({4, 1}, {0, 0, 1, 1});
  const Tensor b = testing::make_bool({2}, {0, 1});
  EXPECT_EQ(values<uint8_t>(ops::logical_and(a, b)), (std::vector<uint8_t>{0, 0, 0, 0, 0, 1, 0, 1}));
  EXPECT_EQ(values<uint8_t>(ops::logical_or(a, b)), (std::vector<uint8_t>{0, 1, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(values<uint8_t>(ops::logical_xor(a, b)), (std::vector<uint8_t>{0, 1, 0, 1, 1, 0, 1, 0}));
  EXPECT_EQ(values<uint8_t>(ops::logical_not(b)), (std::vector<uint8_t>{1, 0}));
  const Tensor big = discrete(DType::kBool, {kLarge + 5}, 9u);
  const std::vector<uint8_t> vb = values<uint8_t>(big), nb = values<uint8_t>(ops::logical_not(big));
  const std::vector<uint8_t> xb = values<uint8_t>(ops::logical_xor(big, testing::make_bool({}, {1})));
  for (size_t i = 0; i < vb.size(); ++i) {
    ASSERT_EQ(nb[i], vb[i] ? 0 : 1);
    ASSERT_EQ(xb[i], nb[i]);
  }
}

struct UnaryCase {
  const char *name;
  std::function<Tensor(const Tensor &)> op;
  std::function<double(double)> ref;
  float lo, hi;
};

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  const double k = std::sqrt(2.0 / M_PI);
  return {
      {"neg", ops::neg, [](double x) { return -x; }, -5, 5},
      {"abs", ops::abs, [](double x) { return std::fabs(x); }, -5, 5},
      {"exp", ops::exp, [](double x) { return std::exp(x); }, -5, 5},
      {"log", ops::log, [](double x) { return std::log(x); }, 0.01f, 10},
      {"sqrt", ops::sqrt, [](double x) { return std::sqrt(x); }, 0, 10},
      {"rsqrt", ops::rsqrt, [](double x) { return 1 / std::sqrt(x); }, 0.01f, 10},
      {"square", ops::square, [](double x) { return x * x; }, -5, 5},
      {"tanh", ops::tanh, [](double x) { return std::tanh(x); }, -5, 5},
      {"sigmoid", ops::sigmoid, sigmoid_ref, -10, 10},
      {"relu", ops::relu, [](double x) { return x > 0 ? x : 0; }, -5, 5},
      {"leaky_relu", [](const Tensor &x) { return ops::leaky_relu(x, 0.2f); },
       [](double x) { return x > 0 ? x : 0.2 * x; }, -5, 5},
      {"gelu_erf", [](const Tensor &x) { return ops::gelu(x, false); },
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -5, 5},
      {"gelu_tanh", [](const Tensor &x) { return ops::gelu(x, true); },
       [k](double x) { return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x))); }, -5, 5},
      {"softplus", ops::softplus, [](double x) { return std::log1p(std::exp(x)); }, -10, 10},
      {"elu", [](const Tensor &x) { return ops::elu(x, 0.7f); },
       [](double x) { return x > 0 ? x : 0.7 * std::expm1(x); }, -5, 5},
      {"swish", ops::swish, [](double x) { return x * sigmoid_ref(x); }, -8, 8},
      {"clip_by_value", [](const Tensor &x) { return ops::clip_by_value(x, -0.5f, 0.75f); },
       [](double x) { return std::min(std::max(x, -0.5), 0.75); }, -2, 2},
  };
}

TEST(ElementwiseUnary, Float32MatchesReferenceBelowAndAboveThreshold) {
  for (const UnaryCase &c : unary_cases())
    for (const Shape &s : {Shape{7}, Shape{3, 5}, Shape{}, Shape{kLarge + 1}, Shape{0, 4}}) {
      const Tensor x = random_tensor(s, 11u, c.lo, c.hi);
      const Tensor y = c.op(x);
      ASSERT_EQ(y.shape(), s) << c.name;
      std::vector<float> want;
      for (float v : values(x)) want.push_back(static_cast<float>(c.ref(v)));
      testing::expect_near(y, want, 1e-5f, std::string(c.name) + " " + s.to_string());
    }
}

TEST(ElementwiseUnary, ExtremeInputsStayFinite) {
  for (int64_t n : {int64_t{4}, kLarge + 4}) {  // both kernel paths
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::vector<float>{-100, -30, 30, 100}[i % 4];
    const Tensor x = make({n}, v);
    const std::vector<float> sp = values(ops::softplus(x)), sg = values(ops::sigmoid(x));
    const std::vector<float> sw = values(ops::swish(x)), ge = values(ops::gelu(x, false));
    for (size_t i = 0; i < v.size(); ++i) {
      const float want_sp = v[i] > 0 ? v[i] : 0.0f, want_sg = v[i] > 0 ? 1.0f : 0.0f;
      ASSERT_NEAR(sp[i], want_sp, 1e-5f) << "softplus(" << v[i] << ") n=" << n;
      ASSERT_NEAR(sg[i], want_sg, 1e-6f) << "sigmoid(" << v[i] << ") n=" << n;
      ASSERT_NEAR(sw[i], v[i] * want_sg, 1e-5f) << "swish(" << v[i] << ") n=" << n;
      ASSERT_NEAR(ge[i], v[i] * want_sg, 1e-5f) << "gelu(" << v[i] << ") n=" << n;
    }
  }
  EXPECT_TRUE(std::isnan(values(ops::clip_by_value(make({1}, {NAN}), 0, 1))[0]));
}

// Below the smallest normal, log1p(x) rounds to x (SLEEF's log1pf alone gave +0 for +-2^-149),
// so softplus's far negative tail, log1p(exp(x)), is exp(x) there: every target, every size.
TEST(ElementwiseUnary, Log1pOfSubnormalsIsX) {
  const std::vector<float> tiny = {1e-45f, -1e-45f, 3e-45f, 1e-40f, -1e-40f, 1.1754942e-38f, 0.0f, -0.0f};
  for (int64_t target : kernels::simd::available_targets()) {
    kernels::simd::force_target(target);
    SCOPED_TRACE(kernels::simd::target_name(target));
    for (int64_t n : {int64_t{1}, int64_t{37}, kLarge + 4}) {
      std::vector<float> v(static_cast<size_t>(n)), far(static_cast<size_t>(n));
      for (size_t i = 0; i < v.size(); ++i) {
        v[i] = tiny[i % tiny.size()];
        far[i] = -103.0f + static_cast<float>(i % 7);
      }
      const std::vector<float> got = values(ops::log1p(make({n}, v)));
      ASSERT_EQ(std::memcmp(got.data(), v.data(), v.size() * sizeof(float)), 0) << "n=" << n;
      const std::vector<float> sp = values(ops::softplus(make({n}, far))),
                               ex = values(ops::exp(make({n}, far)));
      for (size_t i = 0; i < v.size(); ++i) {
        ASSERT_GT(sp[i], 0.0f) << "softplus(" << far[i] << ") n=" << n;
        ASSERT_EQ(sp[i], ex[i]) << "softplus(" << far[i] << ") n=" << n;
      }
    }
  }
  kernels::simd::force_target(0);
}

TEST(ElementwiseUnary, IntegerNegAbsSquare) {
  for (DType dtype : {DType::kInt32, DType::kInt64}) {
    const Tensor x = ops::cast(make({5}, {-3, 0, 2, -7, 9}), dtype);
    EXPECT_EQ(as_doubles(ops::neg(x)), (std::vector<double>{3, 0, -2, 7, -9}));
    EXPECT_EQ(as_doubles(ops::abs(x)), (std::vector<double>{3, 0, 2, 7, 9}));
    EXPECT_EQ(as_doubles(ops::square(x)), (std::vector<double>{9, 0, 4, 49, 81}));
    EXPECT_EQ(ops::neg(x).dtype(), dtype);
  }
}

TEST(ElementwiseWhere, BroadcastsThreeWaysForEveryElementSize) {
  struct Case {
    Shape c, x, y;
  };
  const std::vector<Case> cases = {
      {{7}, {7}, {7}},   {{3, 1}, {1, 5}, {}},          {{4}, {2, 3, 4}, {3, 1}},
      {{}, {3, 5}, {5}}, {{201, 1}, {201, 301}, {301}}, {{kLarge + 1}, {kLarge + 1}, {1}}};
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kInt64, DType::kUInt8, DType::kBool})
    for (const Case &c : cases) {
      const Tensor cond = discrete(DType::kBool, c.c, 21u);
      const Tensor x = discrete(dtype, c.x, 22u), y = discrete(dtype, c.y, 23u);
      const Tensor out = ops::where(cond, x, y);
      const Shape os = broadcast(c.c, broadcast(c.x, c.y));
      ASSERT_EQ(out.shape(), os);
      ASSERT_EQ(out.dtype(), dtype);
      const std::vector<double> vc = as_doubles(cond), vx = as_doubles(x), vy = as_doubles(y);
      for (int64_t i = 0; i < os.num_elements(); ++i) {
        const bool pick = vc[static_cast<size_t>(broadcast_offset(os, c.c, i))] != 0;
        const double want = pick ? vx[static_cast<size_t>(broadcast_offset(os, c.x, i))]
                                 : vy[static_cast<size_t>(broadcast_offset(os, c.y, i))];
        ASSERT_EQ(out.item_as_double(i), want) << dtype_name(dtype) << " " << os.to_string() << " at " << i;
      }
    }
}

// ---- the oneDNN paths: primitives are created once, and small work never touches them ----

TEST(ElementwisePrimitiveCache, SteadyLoopCreatesNoPrimitives) {
  // One thread: the point is the cache, and spinning OpenMP teams on a loaded machine are slow.
  const int threads = num_threads();
  set_num_threads(1);
  const Tensor a = random_tensor({129, 256}, 31u), b = random_tensor({256}, 32u);  // just above the threshold
  const Tensor g = random_tensor({129, 256}, 33u);
  auto step = [&] {
    Tensor y = ops::add(a, b);
    y = ops::mul(y, a);
    y = ops::sub(b, y);  // not commutative and a broadcast first operand: no primitive
    y = ops::gelu(y, false);
    y = ops::relu(y);
    y = ops::exp(ops::neg(ops::abs(y)));
    y = ops::clip_by_value(y, 0.1f, 0.9f);
    autodiff::Tape tape(false, false);
    tape.watch(y);
    Tensor z = ops::gelu(ops::leaky_relu(y, 0.1f), true);
    return tape.gradient(z, {y}, autodiff::Unconnected::kNone, g)[0];
  };
  step();
  const int64_t misses = kernels::primitive_cache_stats().misses;
  const int64_t hits = kernels::primitive_cache_stats().hits;
  for (int i = 0; i < 1000; ++i) step();
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses);
  // mul of two full-size operands above the threshold uses oneDNN (a broadcast add runs the
  // loops, and so do the unary ops and their gradients at every size).
  EXPECT_GE(kernels::primitive_cache_stats().hits, hits + 1000);
  set_num_threads(threads);
}

TEST(ElementwisePrimitiveCache, SmallWorkUsesNoPrimitive) {
  const Tensor a = random_tensor({1}, 41u), b = random_tensor({1}, 42u);
  const Tensor m = random_tensor({3, 5}, 43u), v = random_tensor({5}, 44u);
  const auto before = kernels::primitive_cache_stats();
  for (int i = 0; i < 100; ++i) {
    ops::add(a, b);
    ops::mul(m, v);
    ops::div(v, m);
    ops::gelu(m, false);
    ops::tanh(m);
    ops::where(ops::greater(m, v), m, v);
  }
  const auto after = kernels::primitive_cache_stats();
  EXPECT_EQ(after.hits, before.hits);
  EXPECT_EQ(after.misses, before.misses);
}

}  // namespace
}  // namespace kiln
