// float64 and bfloat16 through kiln.hpp: ops keep the dtype, operator/ is truediv (int32 /
// int32 is float64), a float beside a bfloat16 or float64 tensor takes its dtype, and
// gradients on a GradientTape come back in float64.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

using kiln::DType;
using kiln::Tensor;

Tensor f64(const std::vector<double> &v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

TEST(HppDTypes, Float64OpsComputeInDouble) {
  const Tensor a = f64({0.1, -2.0, 3.0}), b = f64({0.2, 0.5, 7.0});
  EXPECT_EQ((a + b).to_vector<double>()[0], 0.1 + 0.2);
  EXPECT_EQ((a / b).to_vector<double>()[2], 3.0 / 7.0);
  EXPECT_EQ(kiln::maximum(a, b).dtype(), DType::float64);
  EXPECT_EQ(kiln::sqrt(b).to_vector<double>()[0], std::sqrt(0.2));
  EXPECT_NEAR(kiln::sigmoid(a).to_vector<double>()[1], 1 / (1 + std::exp(2.0)), 1e-16);
  const double u = 0.79788456080286536 * (3.0 + 0.044715 * 27.0);
  EXPECT_NEAR(kiln::gelu(a, true).to_vector<double>()[2], 1.5 * (1 + std::tanh(u)), 1e-14);
  EXPECT_EQ(kiln::clip_by_value(a, -1.0f, 1.0f).to_vector<double>(), (std::vector<double>{0.1, -1.0, 1.0}));
  EXPECT_EQ(kiln::where(kiln::greater(a, b), a, b).to_vector<double>(), (std::vector<double>{0.2, 0.5, 7.0}));
}

TEST(HppDTypes, FloatScalarsTakeTheTensorsFloatingDtype) {
  const Tensor a = f64({1.0, 2.0});
  const Tensor y = a * 0.5f + 1.0f;
  EXPECT_EQ(y.dtype(), DType::float64);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1.5, 2.0}));
  EXPECT_EQ((2.0f / a).to_vector<double>(), (std::vector<double>{2.0, 1.0}));
  const Tensor h = kiln::cast(a, DType::bfloat16);
  EXPECT_EQ((h - 1.0f).dtype(), DType::bfloat16);
  EXPECT_EQ(kiln::cast(3.0f * h, DType::float32).to_vector<float>(), (std::vector<float>{3.0f, 6.0f}));
}

// Floating -> integer as TensorFlow on x86-64: NaN and out-of-range give INT32_MIN / INT64_MIN, and
// uint8 is the int32 result's low byte.
TEST(HppDTypes, FloatToIntegerAsTensorFlowOnX86) {
  const Tensor x = Tensor::from_vector<float>({-1.0f, 300.0f, std::nanf(""), -1e10f, 7.9f}, {5});
  EXPECT_EQ(kiln::cast(x, DType::int32).to_vector<int32_t>(),
            (std::vector<int32_t>{-1, 300, INT32_MIN, INT32_MIN, 7}));
  EXPECT_EQ(kiln::cast(x, DType::uint8).to_vector<uint8_t>(), (std::vector<uint8_t>{255, 44, 0, 0, 7}));
  EXPECT_EQ(kiln::cast(x, DType::int64).to_vector<int64_t>(),
            (std::vector<int64_t>{-1, 300, INT64_MIN, -10000000000LL, 7}));
}

TEST(HppDTypes, NumbersBesideTensorsAsPythonNumbersBesideTfTensors) {
  // a double beside a float64 tensor keeps every bit (it used to pass through float)
  const Tensor a = f64({1.0});
  EXPECT_EQ((a + 0.1).to_vector<double>()[0], 1.0 + 0.1);
  EXPECT_EQ((a * 0.1).to_vector<double>()[0], 0.1);
  EXPECT_EQ((a + 1e300).to_vector<double>()[0], 1e300);
  EXPECT_EQ((0.1 - a).to_vector<double>()[0], 0.1 - 1.0);
  // an integer beside an integer tensor takes its dtype
  const Tensor i = Tensor::from_vector<int32_t>({7, -7}, {2});
  EXPECT_EQ((i + 1).dtype(), DType::int32);
  EXPECT_EQ((i + 1).to_vector<int32_t>(), (std::vector<int32_t>{8, -6}));
  EXPECT_EQ((i * 2).to_vector<int32_t>(), (std::vector<int32_t>{14, -14}));
  EXPECT_EQ((10 - i).to_vector<int32_t>(), (std::vector<int32_t>{3, 17}));
  EXPECT_EQ((i / 2).to_vector<double>(), (std::vector<double>{3.5, -3.5}));  // truediv: float64
  const Tensor l = Tensor::from_vector<int64_t>({int64_t{1} << 40}, {1});
  EXPECT_EQ((l - int64_t{1}).to_vector<int64_t>()[0], (int64_t{1} << 40) - 1);
  EXPECT_EQ((l + 3u).dtype(), DType::int64);
  // errors, as TF's: a value int32 cannot hold, a fraction beside an integer tensor
  EXPECT_THROW(i + (int64_t{1} << 40), kiln::Error);
  EXPECT_THROW(i + 0.5, kiln::Error);
  EXPECT_THROW(l + ~uint64_t{0}, kiln::Error);
  // float32 tensors meet a float32 scalar; ints and doubles round once into it
  const Tensor f = Tensor::from_vector<float>({1.0f}, {1});
  EXPECT_EQ((f + 2).to_vector<float>()[0], 3.0f);
  EXPECT_EQ((f * 0.1).to_vector<float>()[0], 0.1f);
  EXPECT_EQ((f + 0.1).dtype(), DType::float32);
}

TEST(HppDTypes, DivisionOperatorIsTruediv) {
  const Tensor i = Tensor::from_vector<int32_t>({1, 7, -7}, {3}),
               j = Tensor::from_vector<int32_t>({2, 2, 2}, {3});
  const Tensor q = i / j;
  EXPECT_EQ(q.dtype(), DType::float64);
  EXPECT_EQ(q.to_vector<double>(), (std::vector<double>{0.5, 3.5, -3.5}));
  EXPECT_EQ(kiln::div(i, j).to_vector<int32_t>(), (std::vector<int32_t>{0, 3, -3}));  // div truncates
  const Tensor l = Tensor::from_vector<int64_t>({9}, {1});
  EXPECT_EQ(kiln::truediv(l, Tensor::from_vector<int64_t>({2}, {1})).to_vector<double>(),
            (std::vector<double>{4.5}));
  try {
    (void)(i / l);
    ADD_FAILURE() << "int32 / int64 must fail";
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("truediv: operands have different dtypes"), std::string::npos)
        << e.what();
  }
}

TEST(HppDTypes, GradientsInFloat64AndBFloat16) {
  const Tensor x = f64({0.5, -1.5});
  kiln::GradientTape tape;
  tape.watch(x);
  const Tensor y = kiln::exp(x) * x;  // d/dx = e^x (1 + x)
  tape.stop();
  const Tensor g = tape.gradient(y, {x})[0];
  ASSERT_EQ(g.dtype(), DType::float64);
  const std::vector<double> gv = g.to_vector<double>();
  EXPECT_NEAR(gv[0], std::exp(0.5) * 1.5, 1e-15);
  EXPECT_NEAR(gv[1], std::exp(-1.5) * -0.5, 1e-15);

  const Tensor h = kiln::cast(x, DType::bfloat16);
  kiln::GradientTape t2;
  t2.watch(h);
  const Tensor z = kiln::relu(h) * h;
  t2.stop();
  const Tensor gh = t2.gradient(z, {h})[0];
  ASSERT_EQ(gh.dtype(), DType::bfloat16);
  EXPECT_EQ(kiln::cast(gh, DType::float32).to_vector<float>(), (std::vector<float>{1.0f, 0.0f}));
}

TEST(HppDTypes, CreationInFloat64) {
  EXPECT_EQ(kiln::fill({2}, 0.1, DType::float64).to_vector<double>(), (std::vector<double>{0.1, 0.1}));
  EXPECT_EQ(kiln::range(0, 1, 0.5, DType::float64).to_vector<double>(), (std::vector<double>{0.0, 0.5}));
  EXPECT_EQ(kiln::zeros({1}, DType::float64).dtype(), DType::float64);
  // As TF: a float range is sized in its dtype, the limit excluded (float32: 6; float64: 7).
  EXPECT_EQ(kiln::range(1, 2.2, 0.2).num_elements(), 6);
  EXPECT_EQ(kiln::range(1, 2.2, 0.2, DType::float64).num_elements(), 7);
}

// The mean divides the sum by the count (seven 3s give 3), and sign(-0) is +0, as TF's.
TEST(HppDTypes, MeanDividesAndSignOfZeroIsPlusZero) {
  for (DType t : {DType::float32, DType::float64}) {
    EXPECT_EQ(kiln::cast(kiln::mean(kiln::fill({7}, 3.0, t)), DType::float64).to_vector<double>().at(0), 3.0);
    const Tensor s = kiln::cast(kiln::sign(kiln::fill({3}, -0.0, t)), DType::float64);
    for (double v : s.to_vector<double>()) EXPECT_FALSE(std::signbit(v));
  }
}

// The integer forms TF registers, through kiln.hpp: sign, relu, relu6, round, clip_by_value, pow
// (wrapping; a negative exponent throws), mean (truncated toward zero) and matmul.
TEST(HppDTypes, IntegerOpsFollowTF) {
  const Tensor x = Tensor::from_vector<int32_t>({-9, 0, 3, 8}, {4});
  EXPECT_EQ(kiln::sign(x).to_vector<int32_t>(), (std::vector<int32_t>{-1, 0, 1, 1}));
  EXPECT_EQ(kiln::relu(x).to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 3, 8}));
  EXPECT_EQ(kiln::relu6(x).to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 3, 6}));
  EXPECT_EQ(kiln::round(x).to_vector<int32_t>(), (std::vector<int32_t>{-9, 0, 3, 8}));
  EXPECT_EQ(kiln::clip_by_value(x, -1.0f, 4.0f).to_vector<int32_t>(), (std::vector<int32_t>{-1, 0, 3, 4}));
  EXPECT_THROW(kiln::clip_by_value(x, 0.25f, 4.0f), kiln::Error);
  // Integer bounds are exact in x's dtype (a float bound rounds past 2^24), up to its extremes.
  const Tensor big = Tensor::from_vector<int32_t>({20000000, 1}, {2});
  EXPECT_EQ(kiln::clip_by_value(big, 3, 16777217).to_vector<int32_t>(), (std::vector<int32_t>{16777217, 3}));
  EXPECT_EQ(kiln::clip_by_value(big, INT32_MIN, INT32_MAX).to_vector<int32_t>(),
            (std::vector<int32_t>{20000000, 1}));
  EXPECT_THROW(kiln::clip_by_value(big, int64_t{0}, int64_t{1} << 31), kiln::Error);
  const Tensor huge = Tensor::from_vector<int64_t>({int64_t{1} << 40}, {1});
  EXPECT_EQ(kiln::clip_by_value(huge, int64_t{0}, (int64_t{1} << 40) - 1).to_vector<int64_t>(),
            (std::vector<int64_t>{(int64_t{1} << 40) - 1}));
  EXPECT_EQ(kiln::clip_by_value(Tensor::from_vector<float>({2.5f}, {1}), 0, 2).to_vector<float>(),
            (std::vector<float>{2.0f}));  // a float x: the float form
  EXPECT_EQ(kiln::pow(x, Tensor::from_vector<int32_t>({2}, {1})).to_vector<int32_t>(),
            (std::vector<int32_t>{81, 0, 9, 64}));
  EXPECT_THROW(kiln::pow(x, Tensor::from_vector<int32_t>({-2}, {1})), kiln::Error);
  EXPECT_EQ(kiln::mean(x).to_vector<int32_t>(), (std::vector<int32_t>{0}));  // 2 / 4
  const Tensor l = Tensor::from_vector<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(kiln::mean(l, {1}).to_vector<int64_t>(), (std::vector<int64_t>{2, 5}));
  const Tensor p = kiln::matmul(l, l, false, true);
  EXPECT_EQ(p.dtype(), DType::int64);
  EXPECT_EQ(p.to_vector<int64_t>(), (std::vector<int64_t>{14, 32, 32, 77}));
}

}  // namespace
