// cast between all seven dtypes, bfloat16 rounding, out-of-range float -> integer, and cast's gradient.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"  // test_util.h uses kiln::Error without including it
#include "kernels/elementwise.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::make;
using testing::values;

const DType kAll[] = {DType::kFloat32, DType::kBFloat16, DType::kInt32,
                      DType::kInt64,   DType::kUInt8,    DType::kBool,    DType::kFloat64};

// Round to 8 significant bits, ties to even: bfloat16's precision, computed in double
// without bit tricks so that it is independent of the implementation.
double ref_bf16(double v) {
  if (v == 0 || !std::isfinite(v)) return v;
  int e;
  const double m = std::frexp(v, &e);  // v = m 2^e, 0.5 <= |m| < 1
  return std::ldexp(std::nearbyint(m * 256.0), e - 8);
}

// The value a source value of dtype `from` must become in dtype `to`.
double ref_cast(double v, DType from, DType to) {
  switch (to) {
    case DType::kBool:
      return v != 0 ? 1 : 0;
    case DType::kFloat32:
      return static_cast<float>(v);
    case DType::kBFloat16:
      return ref_bf16(v);
    case DType::kFloat64:
      return v;
    default:
      break;
  }
  const double t = std::trunc(v);
  (void)from;  // every source value here is within int32, so floating sources wrap as integers do
  if (to == DType::kUInt8) return static_cast<double>(((static_cast<int64_t>(t) % 256) + 256) % 256);
  return t;
}

Tensor source(DType dtype) {
  std::vector<float> v;
  switch (dtype) {
    case DType::kFloat32:
    case DType::kBFloat16:
    case DType::kFloat64:
      v = {0, 1, -2, 3.5f, 100, -7.25f, 0.5f, 255, 70000, -0.75f};
      break;
    case DType::kInt32:
    case DType::kInt64:
      v = {0, 1, -2, 3, 100, -7, 255, 70000, 256, -300};
      break;
    case DType::kUInt8:
      v = {0, 1, 2, 3, 100, 7, 255, 200, 128, 9};
      break;
    case DType::kBool:
      v = {0, 1, 1, 0, 1, 0, 0, 1, 1, 1};
      break;
  }
  if (dtype == DType::kBFloat16) {  // build from bits so that the source does not depend on cast
    std::vector<uint16_t> bits;
    for (float f : v) bits.push_back(bfloat16(f).bits);
    return Tensor::from_data(dtype, {10}, bits.data(), bits.size() * 2);
  }
  if (dtype == DType::kFloat32) return make({10}, v);
  if (dtype == DType::kFloat64) return testing::make_typed<double>({10}, std::vector<double>(v.begin(), v.end()));
  std::vector<int64_t> i64(v.begin(), v.end());
  Tensor t = testing::make_typed<int64_t>({10}, i64);
  if (dtype == DType::kInt64) return t;
  Tensor out = Tensor::empty(dtype, {10});
  for (int k = 0; k < 10; ++k) {
    if (dtype == DType::kInt32)
      out.mutable_data<int32_t>()[k] = static_cast<int32_t>(i64[static_cast<size_t>(k)]);
    if (dtype == DType::kUInt8 || dtype == DType::kBool)
      out.mutable_data<uint8_t>()[k] = static_cast<uint8_t>(i64[static_cast<size_t>(k)]);
  }
  return out;
}

TEST(ElementwiseCast, AllPairsMatchReference) {
  for (DType from : kAll)
    for (DType to : kAll) {
      const Tensor x = source(from);
      const Tensor y = ops::cast(x, to);
      ASSERT_EQ(y.dtype(), to);
      ASSERT_EQ(y.shape(), x.shape());
      for (int64_t i = 0; i < x.num_elements(); ++i)
        EXPECT_EQ(y.item_as_double(i), ref_cast(x.item_as_double(i), from, to))
            << dtype_name(from) << " -> " << dtype_name(to) << " element " << i;
    }
}

// TensorFlow's cast on x86-64 (Eigen's conversion is cvttss2si; NumPy and PyTorch agree): NaN, the
// infinities and values past the target's range give INT32_MIN / INT64_MIN, and uint8 is the low
// byte of the int32 result (-1 gives 255, 300 gives 44, NaN gives 0).
TEST(ElementwiseCast, FloatToIntegerGivesX86sIndefiniteValueAndUint8Wraps) {
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = make({11}, {1e10f, -1e10f, NAN, inf, -inf, 2147483648.0f, -2.5f, -1.0f, 300.0f,
                               2147483520.0f, -2147483648.0f});
  const int32_t mn = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(values<int32_t>(ops::cast(x, DType::kInt32)),
            (std::vector<int32_t>{mn, mn, mn, mn, mn, mn, -2, -1, 300, 2147483520, mn}));
  EXPECT_EQ(values<uint8_t>(ops::cast(x, DType::kUInt8)),
            (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 254, 255, 44, 128, 0}));
  const int64_t mn64 = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(values<int64_t>(ops::cast(x, DType::kInt64)),
            (std::vector<int64_t>{10000000000LL, -10000000000LL, mn64, mn64, mn64, 2147483648LL, -2, -1, 300,
                                  2147483520LL, -2147483648LL}));
  EXPECT_EQ(values<int64_t>(ops::cast(make({2}, {9.3e18f, -9.3e18f}), DType::kInt64)),
            (std::vector<int64_t>{mn64, mn64}));
  EXPECT_EQ(values<int64_t>(ops::cast(make({1}, {-0x1p63f}), DType::kInt64)), (std::vector<int64_t>{mn64}));
  EXPECT_EQ(values<uint8_t>(ops::cast(x, DType::kBool)), (std::vector<uint8_t>(11, 1)));
  // bfloat16 converts through its float value.
  EXPECT_EQ(values<int32_t>(ops::cast(ops::cast(x, DType::kBFloat16), DType::kInt32))[2], mn);
  EXPECT_EQ(values<uint8_t>(ops::cast(ops::cast(x, DType::kBFloat16), DType::kUInt8))[7], 255);
}

TEST(ElementwiseCast, Float64KeepsItsPrecision) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> v = {0.1 + 1e-12, 1e300, -1e300, NAN, inf, 9007199254740993.0, -0.0, 4e-320};
  const Tensor x = testing::make_typed<double>({8}, v);
  EXPECT_EQ(values<double>(ops::cast(ops::cast(x, DType::kFloat64), DType::kFloat64))[0], v[0]);
  const std::vector<float> f = values<float>(ops::cast(x, DType::kFloat32));
  EXPECT_EQ(f[0], static_cast<float>(v[0]));
  EXPECT_EQ(f[1], std::numeric_limits<float>::infinity());  // overflow rounds to inf, as IEEE
  EXPECT_TRUE(std::isnan(f[3]));
  EXPECT_TRUE(std::signbit(f[6]));
  const std::vector<int64_t> i = values<int64_t>(ops::cast(x, DType::kInt64));
  EXPECT_EQ(i[1], std::numeric_limits<int64_t>::min());  // past the range, as x86's cvttsd2si
  EXPECT_EQ(i[2], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(i[3], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(values<int32_t>(ops::cast(x, DType::kInt32))[6], 0);  // -0 truncates to 0
  EXPECT_EQ(i[5], 9007199254740992LL);  // the double nearest 2^53 + 1, exactly
  // int64 -> float64 is exact up to 2^53 and float64 -> float32 -> float64 loses the low bits.
  const Tensor big = testing::make_typed<int64_t>({1}, {(int64_t{1} << 53) - 1});
  EXPECT_EQ(values<double>(ops::cast(big, DType::kFloat64))[0], 9007199254740991.0);
  EXPECT_NE(values<double>(ops::cast(ops::cast(x, DType::kFloat32), DType::kFloat64))[0], v[0]);
}

uint16_t bf16_bits(const Tensor &t, int64_t i) { return t.data<uint16_t>()[i]; }

TEST(ElementwiseCast, BFloat16RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -7);                                // bfloat16 spacing in [1, 2)
  const std::vector<float> x = {1.0f + ulp / 2,                          // tie, 1 is even: down
                                1.0f + 3 * ulp / 2,                      // tie, 1 + 2ulp is even: up
                                1.0f + ulp / 2 + std::ldexp(1.0f, -20),  // above the tie: up
                                1.0f + ulp / 2 - std::ldexp(1.0f, -20),  // below the tie: down
                                -(1.0f + 3 * ulp / 2),
                                3.0e38f,
                                1e-40f /* subnormal */};
  const Tensor y = ops::cast(make({7}, x), DType::kBFloat16);
  const std::vector<double> want = {1.0,
                                    1.0 + 2 * ulp,
                                    1.0 + ulp,
                                    1.0,
                                    -(1.0 + 2 * ulp),
                                    ref_bf16(3.0e38),
                                    std::ldexp(1.0, -133)};  // 1e-40 is 1.09 units of bfloat16's 2^-133
  for (int64_t i = 0; i < 7; ++i)
    EXPECT_EQ(y.item_as_double(i), want[static_cast<size_t>(i)]) << "element " << i;
  EXPECT_TRUE(
      std::isinf(ops::cast(make({1}, {3.4e38f}), DType::kBFloat16).item_as_double(0)));  // rounds past max
  EXPECT_TRUE(std::isnan(ops::cast(make({1}, {NAN}), DType::kBFloat16).item_as_double(0)));

  // Random float32 values on both kernel paths.
  for (int64_t n : {int64_t{999}, kernels::kElementwiseLargeThreshold + 3}) {
    const Tensor r = ops::mul(testing::random_tensor({n}, 7u, -1.0f, 1.0f), Tensor::scalar(1000.0f));
    const Tensor rb = ops::cast(r, DType::kBFloat16);
    const std::vector<float> rv = values(r);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(rb.item_as_double(i), ref_bf16(rv[static_cast<size_t>(i)])) << i;
  }
}

TEST(ElementwiseCast, BFloat16RoundTripIsExactForEveryRepresentableValue) {
  std::vector<uint16_t> bits;
  for (uint32_t b = 0; b < 65536; ++b)
    if ((b & 0x7f80u) != 0x7f80u || (b & 0x7fu) == 0) bits.push_back(static_cast<uint16_t>(b));  // no NaNs
  const Tensor x =
      Tensor::from_data(DType::kBFloat16, {static_cast<int64_t>(bits.size())}, bits.data(), bits.size() * 2);
  const Tensor f = ops::cast(x, DType::kFloat32);
  const Tensor back = ops::cast(f, DType::kBFloat16);
  for (size_t i = 0; i < bits.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, f.data<float>() + i, 4);
    ASSERT_EQ(u, static_cast<uint32_t>(bits[i]) << 16) << "bits " << bits[i];
    ASSERT_EQ(bf16_bits(back, static_cast<int64_t>(i)), bits[i]);
  }
}

TEST(ElementwiseCast, SameDtypeIsIdentity) {
  const Tensor x = make({2}, {1, 2});
  EXPECT_EQ(ops::cast(x, DType::kFloat32).id(), x.id());
}

TEST(ElementwiseCast, GradientCastsBackBetweenFloatTypesOnly) {
  const Tensor x = make({3}, {1.0f, -2.5f, 0.1f});
  const Tensor w = make({3}, {0.3f, 1.0f + std::ldexp(1.0f, -10), -2.0f});
  autodiff::Tape tape(true, false);
  tape.watch(x);
  const Tensor y = ops::cast(ops::cast(x, DType::kBFloat16), DType::kFloat32);
  const Tensor g = tape.gradient(y, {x}, autodiff::Unconnected::kNone, w)[0];
  ASSERT_TRUE(g.defined());
  ASSERT_EQ(g.dtype(), DType::kFloat32);
  // The gradient went through bfloat16 on its way back, so w arrives rounded.
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(g.item_as_double(i), ref_bf16(w.data<float>()[i]));
  const Tensor xi = ops::cast(x, DType::kInt32);
  const Tensor gi = tape.gradient(ops::cast(xi, DType::kFloat32), {x}, autodiff::Unconnected::kNone, w)[0];
  EXPECT_FALSE(gi.defined());  // integers carry no gradient
}

TEST(ElementwiseCast, Errors) {
  testing::expect_error(
      [] {
        ops::cast(make({2}, {1, 2}), static_cast<DType>(42));
      },
      Code::kInvalidArgument, {"cast", "42", "float32[2]"});
  testing::expect_error([] { ops::cast(Tensor(), DType::kInt32); }, Code::kInvalidArgument,
                        {"cast", "undefined"});
}

}  // namespace
}  // namespace kiln
