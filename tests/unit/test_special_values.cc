// Float32 unary ops and their fused backward kernels with NaN, +-inf, +-0, denormals and
// large magnitudes: checked element by element against float64 references (ulp bound per
// op below), bit-identical at every size on both sides of the thresholds and with 1 and 2
// threads, and under every instruction set kiln was compiled for that this machine runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/simd.h"
#include "ops/elementwise_internal.h"
#include "ops/ops.h"
#include "special_values_util.h"

namespace kiln {
namespace {

using namespace testing;

constexpr double kSqrt2OverPi = 0.79788456080286536;

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }
// The tanh form as kiln and TF define it (float32 constants), evaluated in double.
double gelu_tanh_ref(double x) {
  const double z = 2.0 * static_cast<double>(static_cast<float>(kSqrt2OverPi)) *
                   (x + static_cast<double>(0.044715f) * x * x * x);
  return x * sigmoid_ref(z);
}

struct UnaryCase {
  const char *name;
  std::function<Tensor(const Tensor &)> op;
  std::function<double(double)> ref;
  int64_t ulps;  // the bound, in float32 ulps of the float64 reference
};

// The bounds: exact ops 0; SLEEF's u10 functions are within 1 ulp; the composed formulas add a
// rounding or two per step; the exact gelu is evaluated in float64 and rounded once. gelu's tanh form
// amplifies the rounding of its argument z by |z| (up to ~40 over the inputs here), hence its wider bound.
std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", ops::neg, [](double x) { return -x; }, 0},
      {"abs", ops::abs, [](double x) { return std::fabs(x); }, 0},
      {"square", ops::square, [](double x) { return x * x; }, 0},
      {"exp", ops::exp, [](double x) { return std::exp(x); }, 1},
      {"log", ops::log, [](double x) { return std::log(x); }, 1},
      {"sqrt", ops::sqrt, [](double x) { return std::sqrt(x); }, 0},
      {"rsqrt", ops::rsqrt, [](double x) { return 1.0 / std::sqrt(x); }, 1},
      {"tanh", ops::tanh, [](double x) { return std::tanh(x); }, 1},
      {"sigmoid", ops::sigmoid, sigmoid_ref, 3},
      {"relu", ops::relu, [](double x) { return x < 0 ? 0.0 : x; }, 0},  // -0 and NaN pass, as TF
      {"leaky_relu", [](const Tensor &x) { return ops::leaky_relu(x, 0.25f); },
       [](double x) { return x > 0 ? x : 0.25 * x; }, 0},
      {"gelu", [](const Tensor &x) { return ops::gelu(x, false); },
       [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }, 1},
      {"gelu_tanh", [](const Tensor &x) { return ops::gelu(x, true); }, gelu_tanh_ref, 48},
      {"softplus", ops::softplus,
       [](double x) { return std::fmax(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }, 3},
      {"elu", [](const Tensor &x) { return ops::elu(x, 1.0f); },
       [](double x) { return x > 0 ? x : std::expm1(x); }, 2},
      {"swish", ops::swish, [](double x) { return x * sigmoid_ref(x); }, 4},
      {"clip_by_value", [](const Tensor &x) { return ops::clip_by_value(x, -0.5f, 1.25f); },
       [](double x) { return x < -0.5 ? -0.5 : (x > 1.25 ? 1.25 : x); }, 0},
      {"log1p", ops::log1p, [](double x) { return std::log1p(x); }, 1},
      {"expm1", ops::expm1, [](double x) { return std::expm1(x); }, 1},
      {"floor", ops::floor, [](double x) { return std::floor(x); }, 0},
      {"round", ops::round, [](double x) { return std::nearbyint(x); }, 0},  // ties to even
      {"sign", ops::sign, [](double x) { return x > 0   ? 1.0
                                                : x < 0 ? -1.0
                                                        : std::fabs(x); },
       0},  // +-0 -> +0, as TF
      {"sin", ops::sin, [](double x) { return std::sin(x); }, 1},
      {"cos", ops::cos, [](double x) { return std::cos(x); }, 1},
      {"relu6", ops::relu6, [](double x) { return x > 6 ? 6.0 : (x < 0 ? 0.0 : x); }, 0},
      {"selu", ops::selu,
       [](double x) {
         const double scale = static_cast<float>(1.05070098735548049),
                      sa = static_cast<float>(1.05070098735548049 * 1.67326324235437728);
         return x > 0 ? scale * x : sa * std::expm1(x);
       },
       2},
  };
}

// gelu's and swish's x * 0 at x = +-inf is NaN in TF (0.5 * x * erfc(...) = -inf * 0); the
// float64 reference gets the same NaN, so these need no exception.

void check_against_reference(const UnaryCase &c, const std::string &where) {
  const std::vector<float> in = special_inputs();
  const Tensor y = c.op(make({static_cast<int64_t>(in.size())}, in));
  const float *p = y.data<float>();
  for (size_t i = 0; i < in.size(); ++i) {
    const double want = c.ref(static_cast<double>(in[i]));
    EXPECT_LE(ulp_error(p[i], want), ulp_bound(want, c.ulps))
        << c.name << "(" << in[i] << ") = " << p[i] << ", float64 says " << want << " [" << where << "]";
  }
}

// y at every size and thread count equals, bit for bit, y of the short input.
void check_same_bits_everywhere(const UnaryCase &c, const std::vector<int64_t> &sizes,
                                const std::vector<int> &threads) {
  const std::vector<float> in = special_inputs();
  const std::vector<float> base = values(c.op(make({static_cast<int64_t>(in.size())}, in)));
  for (int t : threads)
    with_threads(t, [&] {
      for (int64_t n : sizes) {
        const Tensor y = c.op(tiled(in, n));
        const float *p = y.data<float>();
        for (int64_t i = 0; i < n; ++i) {
          const float want = base[static_cast<size_t>(i) % in.size()];
          ASSERT_TRUE(same(p[i], want))
              << c.name << "(" << in[static_cast<size_t>(i) % in.size()] << ") at " << i << " of " << n
              << ", " << t << " threads: " << p[i] << " vs " << want;
        }
      }
    });
}

TEST(SpecialValues, UnaryOpsMatchFloat64References) {
  for (const UnaryCase &c : unary_cases()) check_against_reference(c, "default target");
}

TEST(SpecialValues, UnaryOpsGiveTheSameBitsAtEverySizeAndThreadCount) {
  for (const UnaryCase &c : unary_cases()) check_same_bits_everywhere(c, sizes_across_thresholds(), {1, 2});
}

// Every compiled instruction set this CPU supports (e.g. AVX-512, AVX2, SSE4, SSSE3 and the
// emulated 128-bit target here) meets the same bounds and gives size-independent bits.
TEST(SpecialValues, EveryInstructionSetMeetsTheBounds) {
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    kernels::simd::force_target(target);
    const std::string name = kernels::simd::target_name(target);
    for (const UnaryCase &c : unary_cases()) {
      check_against_reference(c, name);
      check_same_bits_everywhere(c, {7, kernels::kElementwiseLargeThreshold + 5}, {2});
    }
  }
  kernels::simd::force_target(0);
}

// SLEEF's vector sin and cos reduce every lane the slow way once one lane reaches 125 or is inf
// or NaN, which moved the small lanes' results by an ulp: kiln takes each lane's path from its own
// magnitude, so a value gives the same bits whatever its neighbours, on every instruction set.
TEST(SpecialValues, SinAndCosDoNotDependOnTheNeighbours) {
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  std::vector<float> small(4099), mixed;
  for (size_t i = 0; i < small.size(); ++i)
    small[i] = -124.0f + 248.0f * float((i * 2654435761u) % 10007) / 10007;
  const std::vector<float> odd = {1e30f, INFINITY, -INFINITY, NAN, 125.0f, -200.0f, 3e4f, -1e6f};
  mixed = small;
  for (size_t i = 0; i < mixed.size(); i += 5) mixed[i] = odd[(i / 5) % odd.size()];
  for (int64_t target : targets) {
    kernels::simd::force_target(target);
    const std::string name = kernels::simd::target_name(target);
    for (auto op : {ops::sin, ops::cos}) {
      const std::vector<float> a = values(op(make({int64_t(small.size())}, small)));
      const std::vector<float> b = values(op(make({int64_t(mixed.size())}, mixed)));
      for (size_t i = 0; i < mixed.size(); ++i) {
        const float want = i % 5 ? a[i] : values(op(make({16}, std::vector<float>(16, mixed[i]))))[0];
        ASSERT_TRUE(same(b[i], want))
            << name << ": " << mixed[i] << " at " << i << " gave " << b[i] << ", alone " << want;
      }
    }
  }
  kernels::simd::force_target(0);
}

// The exact gelu and the erfc(-x / sqrt 2) its backward reads, over ~530k floats spread evenly
// over the bit patterns of [-16, 16] (from denormals to the underflowing tail), under every
// instruction set: within an ulp of the float64 reference everywhere, and rounded to nearest
// but for a handful (the fit's 6.4e-11 relative error can tip a value lying that close to a
// rounding boundary), the same bits on every target.
TEST(SpecialValues, ExactGeluIsRoundedToNearestUnderEveryInstructionSet) {
  std::vector<float> in;
  const uint32_t top = 0x41800000u;  // 16.0f
  for (uint32_t b = 0; b <= top; b += 4099)
    for (uint32_t sign : {0u, 0x80000000u}) {
      const uint32_t v = b | sign;
      float f;
      std::memcpy(&f, &v, sizeof f);
      in.push_back(f);
    }
  const int64_t n = static_cast<int64_t>(in.size());
  std::vector<float> first_y;
  for (int64_t target : kernels::simd::available_targets()) {
    kernels::simd::force_target(target);
    const std::string name = kernels::simd::target_name(target);
    std::vector<float> y(in.size()), e(in.size());
    kernels::gelu_erf_saving_erfc(in.data(), y.data(), e.data(), n);
    int64_t off_nearest = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const double x = in[i], erfc = std::erfc(-x / std::sqrt(2.0)), gelu = 0.5 * x * erfc;
      ASSERT_LE(ulp_error(y[i], gelu), 1) << "gelu(" << in[i] << ") = " << y[i] << " [" << name << "]";
      ASSERT_LE(ulp_error(e[i], erfc), 1) << "erfc(" << -x / std::sqrt(2.0) << ") [" << name << "]";
      off_nearest += (y[i] != static_cast<float>(gelu)) + (e[i] != static_cast<float>(erfc));
    }
    EXPECT_LT(off_nearest, n / 2000) << name;
    if (first_y.empty()) first_y = y;
    for (size_t i = 0; i < in.size(); ++i)
      ASSERT_TRUE(same(y[i], first_y[i])) << in[i] << " [" << name << "]";
  }
  kernels::simd::force_target(0);
}

TEST(SpecialValues, TheIssuesExamplesAtEverySize) {
  for (int64_t n : sizes_across_thresholds()) {
    SCOPED_TRACE(n);
    auto at = [n](const std::function<Tensor(const Tensor &)> &f, float v) {
      return values(f(tiled({v}, n)))[static_cast<size_t>(n - 1)];
    };
    EXPECT_TRUE(std::isnan(at(ops::exp, kNaN)));
    EXPECT_TRUE(std::isnan(at(ops::relu, kNaN)));
    EXPECT_TRUE(std::isnan(at([](const Tensor &x) { return ops::clip_by_value(x, -0.5f, 1.25f); }, kNaN)));
    // TF's maximum(minimum(x, hi), lo) takes the bound on equal values: clip(-0, 0, 6) is +0 and
    // clip(+0, -0, 6) is -0.
    EXPECT_FALSE(std::signbit(at([](const Tensor &x) { return ops::clip_by_value(x, 0.0f, 6.0f); }, -0.0f)));
    EXPECT_TRUE(std::signbit(at([](const Tensor &x) { return ops::clip_by_value(x, -0.0f, 6.0f); }, 0.0f)));
    EXPECT_TRUE(std::signbit(at([](const Tensor &x) { return ops::clip_by_value(x, -1.0f, -0.0f); }, 0.0f)));
    EXPECT_EQ(bits(at(ops::log, 1.0f)), bits(0.0f));
    EXPECT_NEAR(at(ops::log, 1e-45f), -103.27893f, 1e-4f);
    const float sp = at(ops::softplus, -20.0f);
    EXPECT_GT(sp, 0.0f);
    EXPECT_NEAR(sp, 2.0611537e-9f, 1e-15f);
    EXPECT_EQ(at(ops::relu, -kInf), 0.0f);
    EXPECT_TRUE(std::signbit(at(ops::relu, -0.0f)));  // TF's relu is max(x, 0), which keeps -0
    EXPECT_TRUE(std::signbit(at(ops::relu6, -0.0f)));
    EXPECT_FALSE(std::signbit(at(ops::relu, -1e-45f)));
    EXPECT_TRUE(std::isnan(at(ops::rsqrt, -kInf)));
    EXPECT_EQ(at(ops::rsqrt, -0.0f), -kInf);
    EXPECT_EQ(at(ops::rsqrt, 0.0f), kInf);
  }
}

TEST(SpecialValues, ExactGeluKeepsItsTail) {
  for (float x : {-4.0f, -5.0f, -6.0f, -10.0f}) {
    const double want = 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    for (int64_t n : {int64_t{7}, kernels::kElementwiseLargeThreshold + 5}) {
      const float got = values(ops::gelu(tiled({x}, n), false))[0];
      EXPECT_NEAR(got, want, 1e-6 * std::fabs(want)) << "gelu(" << x << ") at size " << n;
      EXPECT_LT(got, 0.0f);
    }
  }
}

// ---- backward kernels: dy * f'(x) ----

struct BackwardCase {
  const char *name;
  std::function<Tensor(const Tensor &, const Tensor &)> op;
  std::function<double(double)> deriv;
  int64_t ulps;
};

double gelu_tanh_deriv(double x) {
  const double k = 2.0 * static_cast<double>(static_cast<float>(kSqrt2OverPi));
  const double c = static_cast<double>(0.044715f);
  const double z = k * (x + c * x * x * x);
  if (std::fabs(z) > 700 || std::isinf(x)) return x > 0 ? 1.0 : 0.0;
  const double s = sigmoid_ref(z);
  return s + x * s * (1 - s) * k * (1 + 3 * c * x * x);
}

std::vector<BackwardCase> backward_cases() {
  return {
      {"relu_grad", [](const Tensor &x, const Tensor &dy) { return ops::internal::relu_grad(x, dy, 0.0f); },
       [](double x) { return x > 0 ? 1.0 : 0.0; }, 0},
      {"leaky_relu_grad",
       [](const Tensor &x, const Tensor &dy) { return ops::internal::relu_grad(x, dy, 0.25f); },
       [](double x) { return x > 0 ? 1.0 : 0.25; }, 0},
      {"gelu_grad", [](const Tensor &x, const Tensor &dy) { return ops::internal::gelu_grad(x, dy, false); },
       [](double x) {
         if (std::isinf(x)) return x > 0 ? 1.0 : 0.0;
         return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
       },
       8},
      {"gelu_tanh_grad",
       [](const Tensor &x, const Tensor &dy) { return ops::internal::gelu_grad(x, dy, true); },
       gelu_tanh_deriv, 96},
  };
}

TEST(SpecialValues, BackwardKernelsMatchFloat64ReferencesAtEverySize) {
  std::vector<float> in;
  for (float v : special_inputs())
    if (!std::isnan(v) && !std::isinf(v)) in.push_back(v);  // f'(+-inf) is 0 * inf in TF's formulas
  const Tensor dy = tiled({1.0f}, static_cast<int64_t>(in.size()));
  for (const BackwardCase &c : backward_cases()) {
    const std::vector<float> base = values(c.op(make({static_cast<int64_t>(in.size())}, in), dy));
    for (size_t i = 0; i < in.size(); ++i) {
      const double want = c.deriv(in[i]);
      // The derivative's cancellation near its zeros makes ulps meaningless there.
      const bool tiny = std::fabs(want) < 1e-3;
      if (tiny)
        EXPECT_NEAR(base[i], want, 1e-6) << c.name << "(" << in[i] << ")";
      else
        EXPECT_LE(ulp_error(base[i], want), ulp_bound(want, c.ulps))
            << c.name << "(" << in[i] << ") = " << base[i] << " vs " << want;
    }
    for (int t : {1, 2})
      with_threads(t, [&] {
        for (int64_t n : sizes_across_thresholds()) {
          const std::vector<float> got = values(c.op(tiled(in, n), tiled({1.0f}, n)));
          for (int64_t i = 0; i < n; ++i)
            ASSERT_TRUE(same(got[static_cast<size_t>(i)], base[static_cast<size_t>(i) % in.size()]))
                << c.name << " at " << i << " of " << n << ", " << t << " threads";
        }
      });
  }
}

// The saved-erfc pair (a recorded float32 Dense with the exact gelu) gives the bits of gelu and
// gelu_grad: special values (NaN and +-inf included, dy with them too), every size around the
// vector and threading thresholds, 1 and 2 threads.
TEST(SpecialValues, GeluWithSavedErfcHasTheBitsOfGeluAndItsGradient) {
  const std::vector<float> in = special_inputs();
  std::vector<float> dys = in;
  std::reverse(dys.begin(), dys.end());
  for (int t : {1, 2})
    with_threads(t, [&] {
      for (int64_t n : sizes_across_thresholds()) {
        const Tensor x = tiled(in, n), dy = tiled(dys, n);
        Tensor y = Tensor::empty(DType::kFloat32, x.shape()), e = Tensor::empty(DType::kFloat32, x.shape());
        kernels::gelu_erf_saving_erfc(x.data<float>(), y.mutable_data<float>(), e.mutable_data<float>(), n);
        Tensor dx = Tensor::empty(DType::kFloat32, x.shape());
        kernels::gelu_erf_backward_from_erfc(x.data<float>(), e.data<float>(), dy.data<float>(),
                                             dx.mutable_data<float>(), n);
        const std::vector<float> want_y = values(ops::gelu(x, false)),
                                 want_dx = values(ops::internal::gelu_grad(x, dy, false)), got_y = values(y),
                                 got_dx = values(dx);
        for (int64_t i = 0; i < n; ++i) {
          const size_t k = static_cast<size_t>(i);
          ASSERT_TRUE(same(got_y[k], want_y[k]))
              << "gelu(" << in[k % in.size()] << ") at " << i << " of " << n;
          ASSERT_TRUE(same(got_dx[k], want_dx[k])) << "gelu_grad(" << in[k % in.size()] << ", "
                                                   << dys[k % dys.size()] << ") at " << i << " of " << n;
        }
        EXPECT_TRUE(same(values(ops::internal::gelu_grad_from_erfc(x, e, dy))[0], want_dx[0]));
      }
    });
}

// gelu_grad_from_erfc writes over dy only when dy is the one handle on a buffer kiln owns, with the
// bits of a new buffer either way.
TEST(SpecialValues, GeluGradientFromErfcOverwritesOnlyAnUnsharedGradient) {
  const int64_t n = kernels::kElementwiseLargeThreshold + 5;
  const Tensor x = tiled({-3.0f, -0.5f, 0.0f, -0.0f, 1e-40f, 0.7f, 5.0f, NAN, INFINITY}, n);
  const Tensor dys = tiled({1.0f, -2.0f, 0.25f, 3e38f, -0.0f}, n);
  Tensor y = Tensor::empty(DType::kFloat32, x.shape()), e = Tensor::empty(DType::kFloat32, x.shape());
  kernels::gelu_erf_saving_erfc(x.data<float>(), y.mutable_data<float>(), e.mutable_data<float>(), n);
  const std::vector<float> want = values(ops::internal::gelu_grad(x, dys, false));
  const auto copy = [&] {
    return Tensor::from_data(DType::kFloat32, dys.shape(), dys.raw_data(), dys.byte_size());
  };
  const auto same_all = [&](const std::vector<float> &got) {
    for (size_t i = 0; i < got.size(); ++i)
      if (!same(got[i], want[i])) return false;
    return got.size() == want.size();
  };
  {
    Tensor dy = copy();
    const void *buffer = dy.raw_data();
    const Tensor dx = ops::internal::gelu_grad_from_erfc(x, e, dy);
    EXPECT_EQ(dx.raw_data(), buffer);
    EXPECT_TRUE(same_all(values(dx)));
  }
  {
    const Tensor dy = copy(), held = dy;
    const Tensor dx = ops::internal::gelu_grad_from_erfc(x, e, dy);
    EXPECT_NE(dx.raw_data(), dy.raw_data());
    EXPECT_EQ(std::memcmp(dy.raw_data(), dys.raw_data(), dys.byte_size()), 0);
    EXPECT_TRUE(same_all(values(dx)));
  }
}

TEST(SpecialValues, GeluTanhGradientIsFiniteAtTheLargestFloats) {
  for (int64_t n : {int64_t{7}, kernels::kElementwiseLargeThreshold + 5}) {
    const Tensor x = tiled({3e38f, -3e38f}, n);
    autodiff::Tape tape(false, false);
    tape.watch(x);
    const Tensor y = ops::gelu(x, true);
    const std::vector<float> g =
        values(tape.gradient(y, {x}, autodiff::Unconnected::kZero, tiled({1.0f}, n))[0]);
    EXPECT_EQ(g[0], 1.0f) << n;
    EXPECT_EQ(g[1], 0.0f) << n;
  }
}

TEST(SpecialValues, ReluGradientSelectsRatherThanMultiplies) {
  // As TF's ReluGrad: where x <= 0 the gradient is 0 even when dy is inf or NaN.
  for (int64_t n : {int64_t{7}, kernels::kElementwiseLargeThreshold + 5}) {
    const std::vector<float> g =
        values(ops::internal::relu_grad(tiled({-1.0f, 2.0f}, n), tiled({kInf, kInf}, n), 0.0f));
    EXPECT_EQ(g[0], 0.0f) << n;
    EXPECT_EQ(g[1], kInf) << n;
  }
}

}  // namespace
}  // namespace kiln
