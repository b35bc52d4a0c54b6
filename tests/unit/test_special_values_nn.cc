// Binary ops, softmax / log_softmax, reductions, the norms and integer creation /
// division with special values, on both sides of every size threshold and with 1 and 2
// threads, against float64 references.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/norm.h"
#include "kernels/simd.h"
#include "ops/ops.h"
#include "special_values_util.h"

namespace kiln {
namespace {

using namespace testing;

// ---- binary ops ----

struct BinaryCase {
  const char *name;
  std::function<Tensor(const Tensor &, const Tensor &)> op;
  std::function<double(double, double)> ref;
};

double nan_max(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::fmax(a, b); }
double nan_min(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::fmin(a, b); }

// All IEEE operations, correctly rounded: the result is exactly the float64 result rounded.
std::vector<BinaryCase> binary_cases() {
  return {{"add", ops::add, [](double a, double b) { return a + b; }},
          {"sub", ops::sub, [](double a, double b) { return a - b; }},
          {"mul", ops::mul, [](double a, double b) { return a * b; }},
          {"div", ops::div, [](double a, double b) { return a / b; }},
          {"maximum", ops::maximum, nan_max},
          {"minimum", ops::minimum, nan_min}};
}

// Every pair of a few special values, tiled to n; the other operand either full size or a
// broadcast scalar on either side.
TEST(SpecialValuesBinary, MatchFloat64AtEverySizeBothOrdersAndBroadcasts) {
  const std::vector<float> sv = {kNaN,    kInf,  -kInf,  0.0f, -0.0f, 1e-40f,
                                 -1e-45f, 3e38f, -3e38f, 1.0f, -2.5f, 88.0f};
  std::vector<float> as, bs;
  for (float a : sv)
    for (float b : sv) as.push_back(a), bs.push_back(b);
  for (const BinaryCase &c : binary_cases())
    for (int t : {1, 2})
      with_threads(t, [&] {
        for (int64_t n : sizes_across_thresholds()) {
          const Tensor a = tiled(as, n), b = tiled(bs, n);
          const std::vector<float> y = values(c.op(a, b));
          for (int64_t i = 0; i < n; ++i) {
            const size_t k = static_cast<size_t>(i) % as.size();
            ASSERT_EQ(ulp_error(y[static_cast<size_t>(i)], c.ref(as[k], bs[k])), 0)
                << c.name << "(" << as[k] << ", " << bs[k] << ") at " << i << " of " << n << ", " << t
                << " threads";
          }
          // A scalar NaN on either side, and a scalar 1 against NaNs.
          for (float s : {kNaN, 1.0f}) {
            const Tensor sc = Tensor::scalar(s);
            const std::vector<float> l = values(c.op(sc, a)), r = values(c.op(a, sc));
            for (int64_t i = 0; i < n; ++i) {
              const float v = as[static_cast<size_t>(i) % as.size()];
              ASSERT_EQ(ulp_error(l[static_cast<size_t>(i)], c.ref(s, v)), 0)
                  << c.name << "(" << s << ", " << v << ") n=" << n;
              ASSERT_EQ(ulp_error(r[static_cast<size_t>(i)], c.ref(v, s)), 0)
                  << c.name << "(" << v << ", " << s << ") n=" << n;
            }
          }
        }
      });
}

TEST(SpecialValuesBinary, MaximumAndMinimumPropagateNaNFromEitherSide) {
  for (int64_t n : {int64_t{7}, int64_t{40003}}) {
    const Tensor nan = tiled({kNaN}, n), one = tiled({1.0f}, n);
    for (auto op : {ops::maximum, ops::minimum}) {
      EXPECT_TRUE(std::isnan(values(op(nan, one))[0])) << n;
      EXPECT_TRUE(std::isnan(values(op(one, nan))[static_cast<size_t>(n - 1)])) << n;
    }
  }
}

// ---- integer division ----

TEST(SpecialValuesInteger, DivisionByZeroIsAnErrorNamingTheOp) {
  for (int64_t n : {int64_t{7}, int64_t{40003}}) {
    std::vector<int32_t> a(static_cast<size_t>(n), 5), b(static_cast<size_t>(n), 2);
    b[static_cast<size_t>(n - 1)] = 0;
    expect_error([&] { ops::div(make_typed<int32_t>({n}, a), make_typed<int32_t>({n}, b)); },
                 Code::kInvalidArgument, {"div", "division by zero"});
    std::vector<int64_t> a64(a.begin(), a.end()), b64(b.begin(), b.end());
    expect_error([&] { ops::div(make_typed<int64_t>({n}, a64), make_typed<int64_t>({n}, b64)); },
                 Code::kInvalidArgument, {"div", "int64"});
    b[static_cast<size_t>(n - 1)] = -2;
    EXPECT_EQ(values<int32_t>(ops::div(make_typed<int32_t>({n}, a), make_typed<int32_t>({n}, b)))[0], 2);
  }
  expect_error(
      [] {
        ops::div(make_typed<int32_t>({2}, {1, 2}), make_typed<int32_t>({}, {0}));
      },
      Code::kInvalidArgument, {"div"});
}

TEST(SpecialValuesInteger, Int64FillAndRangeAreExact) {
  const int64_t big = int64_t{1} << 60;
  EXPECT_EQ(values<int64_t>(ops::fill_int64({1}, big + 1, DType::kInt64)), std::vector<int64_t>{big + 1});
  EXPECT_EQ(values<int64_t>(ops::range_int64(big, big + 3, 1, DType::kInt64)),
            (std::vector<int64_t>{big, big + 1, big + 2}));
  EXPECT_EQ(values<int64_t>(ops::range_int64(big + 2, big - 1, -1, DType::kInt64)),
            (std::vector<int64_t>{big + 2, big + 1, big}));
  const int64_t mn = std::numeric_limits<int64_t>::min(), mx = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(values<int64_t>(ops::range_int64(mn, mx, mx, DType::kInt64)),
            (std::vector<int64_t>{mn, -1, mx - 1}));
  // Exact through the double entry point too, where the double holds the integer exactly.
  EXPECT_EQ(values<int64_t>(ops::range(9007199254740990.0, 9007199254740994.0, 2.0, DType::kInt64)),
            (std::vector<int64_t>{9007199254740990, 9007199254740992}));
  EXPECT_EQ(values<int64_t>(ops::fill({2}, 9007199254740992.0, DType::kInt64))[1], int64_t{9007199254740992});
  EXPECT_EQ(values<int32_t>(ops::fill({1}, -2.75, DType::kInt32))[0], -2);  // truncates like a C cast
}

TEST(SpecialValuesInteger, UnrepresentableFillAndRangeAreInvalidArgument) {
  expect_error([] { ops::fill({1}, std::nan(""), DType::kInt32); }, Code::kInvalidArgument,
               {"fill", "nan", "int32"});
  expect_error([] { ops::fill({1}, 1e20, DType::kInt64); }, Code::kInvalidArgument, {"fill", "int64"});
  expect_error([] { ops::fill({1}, 3e9, DType::kInt32); }, Code::kInvalidArgument, {"fill", "int32"});
  expect_error([] { ops::fill({1}, 256.0, DType::kUInt8); }, Code::kInvalidArgument, {"fill", "uint8"});
  expect_error([] { ops::fill({1}, -INFINITY, DType::kInt64); }, Code::kInvalidArgument, {"fill"});
  expect_error([] { ops::fill_int64({1}, int64_t{1} << 40, DType::kInt32); }, Code::kInvalidArgument,
               {"int32"});
  expect_error([] { ops::range(0.0, std::nan(""), 1.0, DType::kInt64); }, Code::kInvalidArgument,
               {"range", "finite"});
  expect_error([] { ops::range(0.0, INFINITY, 1.0, DType::kFloat32); }, Code::kInvalidArgument,
               {"range", "finite"});
  expect_error([] { ops::range(0.0, 1e30, 1e-30, DType::kFloat32); }, Code::kInvalidArgument,
               {"range", "inf elements, more than kiln's limit", "counted in float32"});
  expect_error([] { ops::range(0.0, 1e30, 1e-30, DType::kFloat64); }, Code::kInvalidArgument,
               {"range", "1e+60 elements, more than kiln's limit", "counted in float64"});
  expect_error([] { ops::range(0.5, 5e9, 1e9, DType::kInt32); }, Code::kInvalidArgument, {"range", "int32"});
  expect_error([] { ops::range_int64(0, int64_t{1} << 40, int64_t{1} << 38, DType::kInt32); },
               Code::kInvalidArgument, {"range", "int32"});
}

// ---- softmax / log_softmax ----

// float64 softmax (or log_softmax) of one row.
std::vector<double> softmax_ref(const std::vector<float> &row, bool log) {
  double m = -INFINITY;
  bool nan = false;
  for (float v : row) nan |= std::isnan(v), m = std::fmax(m, v);
  double s = 0;
  for (float v : row) s += std::exp(v - m);
  std::vector<double> out;
  for (float v : row) out.push_back(nan ? NAN : log ? (v - m) - std::log(s) : std::exp(v - m) / s);
  return out;
}

// rows of n values: the first few rows special, then confident and ordinary logits.
std::vector<std::vector<float>> softmax_rows(int64_t n) {
  std::vector<std::vector<float>> rows = {{1.0f, kNaN, 2.0f},   {kInf, 1.0f, 0.0f},    {-kInf, 1.0f, 0.0f},
                                          {20.0f, 0.0f, -5.0f}, {88.0f, -88.0f, 0.0f}, {1e-40f, -0.0f, 0.0f}};
  for (auto &r : rows) r.resize(static_cast<size_t>(n), -3.0f);
  for (int k = 0; k < 6; ++k) {
    std::vector<float> r(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j)
      r[static_cast<size_t>(j)] = static_cast<float>(((j * 37 + k * 11) % 29) - 14) * 0.9f;
    r[static_cast<size_t>(k) % r.size()] = 25.0f + static_cast<float>(k);  // a confident top class
    rows.push_back(r);
  }
  return rows;
}

TEST(SpecialValuesSoftmax, RowsMatchFloat64AndKeepTheirBitsAtEverySize) {
  for (bool log : {false, true})
    for (int64_t n : {int64_t{3}, int64_t{10}, int64_t{37}}) {
      const auto rows = softmax_rows(n);
      const int64_t r0 = static_cast<int64_t>(rows.size());
      std::vector<float> flat;
      for (const auto &r : rows) flat.insert(flat.end(), r.begin(), r.end());
      auto run = [&](int64_t nrows) {
        const Tensor x = ops::reshape(tiled(flat, nrows * n), {nrows, n});
        return values(log ? ops::log_softmax(x) : ops::softmax(x));
      };
      const std::vector<float> base = run(r0);
      for (int64_t r = 0; r < r0; ++r) {
        const std::vector<double> want = softmax_ref(rows[static_cast<size_t>(r)], log);
        for (int64_t j = 0; j < n; ++j) {
          const float got = base[static_cast<size_t>(r * n + j)];
          const double w = want[static_cast<size_t>(j)];
          // softmax: a few ulps; log_softmax: absolute 1e-7 near 0 (the confident top class), else a few
          // ulps.
          if (std::isnan(w) || std::isinf(w))
            EXPECT_EQ(ulp_error(got, w), 0) << (log ? "log_" : "") << "softmax row " << r << " col " << j;
          else
            EXPECT_NEAR(got, w,
                        log ? std::max(1e-7, 4e-7 * std::fabs(w)) : std::max(1e-12, 8e-7 * std::fabs(w)))
                << (log ? "log_" : "") << "softmax row " << r << " col " << j << " n=" << n;
        }
      }
      // Above the threshold and with 2 threads each row gives the same bits.
      const int64_t big_rows = (kernels::kSoftmaxLoopThreshold / n / r0 + 1) * r0;
      for (int t : {1, 2})
        with_threads(t, [&] {
          const std::vector<float> big = run(big_rows);
          for (size_t i = 0; i < big.size(); ++i)
            ASSERT_TRUE(same(big[i], base[i % base.size()]))
                << "n=" << n << " at " << i << ", " << t << " threads";
        });
    }
}

TEST(SpecialValuesSoftmax, ARowWithNaNIsNaNAlongEitherAxis) {
  for (int64_t rows : {int64_t{1}, int64_t{12000}}) {
    const Tensor x = ops::reshape(tiled({1.0f, kNaN, 2.0f}, rows * 3), {rows, 3});
    for (bool log : {false, true}) {
      const std::vector<float> y = values(log ? ops::log_softmax(x) : ops::softmax(x));
      for (size_t j = 0; j < 3; ++j) EXPECT_TRUE(std::isnan(y[y.size() - 3 + j])) << rows << " " << j;
      const std::vector<float> yt =
          values(log ? ops::log_softmax(ops::transpose(x), 0) : ops::softmax(ops::transpose(x), 0));
      EXPECT_TRUE(std::isnan(yt[0]) && std::isnan(yt[static_cast<size_t>(2 * rows)])) << rows;
    }
  }
}

// ---- reductions ----

TEST(SpecialValuesReduce, MaxAndMinPropagateNaNWherevertItSits) {
  for (int t : {1, 2})
    with_threads(t, [&] {
      for (int64_t n : sizes_across_thresholds())
        for (int64_t pos : {int64_t{0}, n / 2, n - 1}) {
          std::vector<float> v(static_cast<size_t>(n), 1.0f);
          v[static_cast<size_t>(pos)] = kNaN;
          const Tensor x = make({n}, v);
          EXPECT_TRUE(std::isnan(values(ops::max(x))[0])) << n << " " << pos;
          EXPECT_TRUE(std::isnan(values(ops::min(x))[0])) << n << " " << pos;
          // Along axis 0 of [n / 2, 2]: only the column holding the NaN.
          const int64_t even = n - n % 2;
          if (pos >= even) continue;
          const Tensor m =
              ops::reshape(make({even}, std::vector<float>(v.begin(), v.begin() + even)), {even / 2, 2});
          for (auto op : {ops::max, ops::min}) {
            const std::vector<float> cm = values(op(m, {0}, false));
            EXPECT_TRUE(std::isnan(cm[static_cast<size_t>(pos % 2)])) << n << " " << pos;
            EXPECT_EQ(cm[static_cast<size_t>(1 - pos % 2)], 1.0f) << n << " " << pos;
          }
        }
    });
  EXPECT_TRUE(std::isnan(values(ops::max(make({3}, {1.0f, kNaN, 3.0f})))[0]));
  EXPECT_EQ(values(ops::max(make({3}, {1.0f, -kInf, 3.0f})))[0], 3.0f);
  EXPECT_EQ(values(ops::min(make({2}, {kInf, -kInf})))[0], -kInf);
}

TEST(SpecialValuesReduce, LargeSumsDoNotDependOnTheThreadCount) {
  const Tensor x = random_tensor({100003}, 7u, -1.0f, 1.0f);
  const Tensor m = random_tensor({3001, 37}, 8u);
  std::vector<float> s1, s2, c1, c2;
  with_threads(1, [&] { s1 = values(ops::sum(x)), c1 = values(ops::sum(m, {0})); });
  with_threads(2, [&] { s2 = values(ops::sum(x)), c2 = values(ops::sum(m, {0})); });
  EXPECT_EQ(bits(s1[0]), bits(s2[0]));
  for (size_t i = 0; i < c1.size(); ++i) EXPECT_EQ(bits(c1[i]), bits(c2[i])) << i;
}

// A large [rows, cols] reduced over its rows splits its columns among the threads, keeping the
// fixed order of the general path: 16 parts of rows (fewer when there are fewer rows), each summed
// in row order from the identity, the parts combined in order. Every column gives those bits,
// with NaN, inf and -0 in the data, at 1 and 2 threads, for sum, max and min.
TEST(SpecialValuesReduce, ColumnSumsKeepTheFixedPartOrder) {
  for (const auto &[rows, cols] : {std::pair<int64_t, int64_t>{16, 2048}, {300, 130}, {3001, 200}}) {
    std::vector<float> v = values(random_tensor({rows, cols}, 21u, -100.0f, 100.0f));
    v[static_cast<size_t>(5 * cols + 1)] = kNaN;
    v[static_cast<size_t>(7 * cols + 2)] = kInf;
    v[static_cast<size_t>(9 * cols + 3)] = -0.0f;
    v[static_cast<size_t>(3)] = -kInf;
    const Tensor x = make({rows, cols}, v);
    const int64_t parts = std::min<int64_t>(16, rows);
    for (int kind = 0; kind < 3; ++kind) {
      auto combine = [kind](float a, float b) {
        if (kind == 0) return a + b;
        if (kind == 1) return (b > a || b != b) ? b : a;
        return (b < a || b != b) ? b : a;
      };
      const float identity = kind == 0 ? 0.0f : kind == 1 ? -kInf : kInf;
      std::vector<float> want(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c) {
        float acc = identity;
        for (int64_t p = 0; p < parts; ++p) {
          float part = identity;
          for (int64_t r = rows * p / parts; r < rows * (p + 1) / parts; ++r)
            part = combine(part, v[static_cast<size_t>(r * cols + c)]);
          acc = p == 0 ? part : combine(acc, part);
        }
        want[static_cast<size_t>(c)] = acc;
      }
      for (int t : {1, 2})
        with_threads(t, [&] {
          const Tensor got = kind == 0 ? ops::sum(x, {0}) : kind == 1 ? ops::max(x, {0}) : ops::min(x, {0});
          const std::vector<float> gv = values(got);
          for (int64_t c = 0; c < cols; ++c)
            ASSERT_TRUE(same(gv[static_cast<size_t>(c)], want[static_cast<size_t>(c)]))
                << "kind " << kind << ", " << rows << "x" << cols << ", column " << c << ", " << t
                << " threads";
        });
    }
  }
}

// ---- norms ----

TEST(SpecialValuesNorm, LayerNormRowsKeepTheirBitsAcrossTheThreshold) {
  const int64_t cols = 129;
  std::vector<float> rows = values(random_tensor({4, cols}, 9u, -2.0f, 3.0f));
  rows[static_cast<size_t>(cols + 5)] = kNaN;      // row 1: NaN
  rows[static_cast<size_t>(2 * cols + 7)] = kInf;  // row 2: inf
  rows[static_cast<size_t>(3 * cols + 1)] = 1e-40f;
  const Tensor gamma = random_tensor({cols}, 10u), beta = random_tensor({cols}, 11u);
  auto run = [&](int64_t nrows) {
    return values(ops::layer_norm(ops::reshape(tiled(rows, nrows * cols), {nrows, cols}), gamma, beta));
  };
  const std::vector<float> base = run(4);
  for (int64_t j = 0; j < cols; ++j) {
    EXPECT_TRUE(std::isnan(base[static_cast<size_t>(cols + j)])) << j;
    EXPECT_TRUE(std::isnan(base[static_cast<size_t>(2 * cols + j)])) << j;  // (inf - inf) in the centring
    EXPECT_TRUE(std::isfinite(base[static_cast<size_t>(j)]) &&
                std::isfinite(base[static_cast<size_t>(3 * cols + j)]));
  }
  for (int t : {1, 2})
    with_threads(t, [&] {
      for (int64_t nrows : {int64_t{127}, int64_t{200}, int64_t{301}}) {  // 16383, 25800, 38829 elements
        const std::vector<float> big = run(nrows);
        for (size_t i = 0; i < big.size(); ++i)
          ASSERT_TRUE(same(big[i], base[i % base.size()]))
              << nrows << " rows, at " << i << ", " << t << " threads";
      }
    });
}

// The float32 layer-norm rows run in Highway vectors (kernels/norm_simd.h) with the scalar loops'
// roundings and summation order, so every instruction set gives the same bits as the one-lane
// SCALAR target: forward (y, mean, variance) and backward (dx, dgamma, dbeta), for row lengths
// around the vector widths, a row count that leaves partial groups and blocks, and special values.
TEST(SpecialValuesNorm, LayerNormGivesTheSameBitsUnderEveryInstructionSet) {
  const int64_t rows = 70;
  for (const int64_t cols : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{17}, int64_t{129}}) {
    std::vector<float> x = values(random_tensor({rows, cols}, 31u, -3.0f, 3.0f));
    std::vector<float> dy = values(random_tensor({rows, cols}, 32u));
    x[static_cast<size_t>(2 * cols)] = kNaN;
    x[static_cast<size_t>(5 * cols + cols / 2)] = kInf;
    x[static_cast<size_t>(7 * cols)] = 1e-40f;
    x[static_cast<size_t>(9 * cols)] = 3e38f;
    dy[static_cast<size_t>(11 * cols)] = -0.0f;
    dy[static_cast<size_t>(13 * cols)] = kNaN;
    const std::vector<float> gamma = values(random_tensor({cols}, 33u)),
                             beta = values(random_tensor({cols}, 34u));
    std::vector<std::vector<float>> first;
    for (int64_t target : kernels::simd::available_targets()) {
      kernels::simd::force_target(target);
      std::vector<float> y(x.size()), mean(rows), var(rows), dx(x.size()), dgamma(cols), dbeta(cols);
      kernels::layer_norm_forward<float>(rows, cols, 1e-3f, x.data(), gamma.data(), beta.data(), y.data(),
                                         mean.data(), var.data());
      kernels::layer_norm_backward<float>(rows, cols, 1e-3f, x.data(), gamma.data(), mean.data(), var.data(),
                                          dy.data(), dx.data(), dgamma.data(), dbeta.data());
      const std::vector<std::vector<float>> got = {y, mean, var, dx, dgamma, dbeta};
      if (first.empty()) first = got;
      for (size_t k = 0; k < got.size(); ++k)
        for (size_t i = 0; i < got[k].size(); ++i)
          ASSERT_TRUE(same(got[k][i], first[k][i]))
              << kernels::simd::target_name(target) << ": output " << k << " at " << i << ", cols " << cols;
    }
    kernels::simd::force_target(0);
  }
}

TEST(SpecialValuesNorm, NormsAboveTheThresholdMatchFloat64AndThreadCounts) {
  const int64_t rows = 301, cols = 129;  // 38829 elements
  const Tensor x = random_tensor({rows, cols}, 12u, -2.0f, 3.0f);
  const Tensor gamma = random_tensor({cols}, 13u), beta = random_tensor({cols}, 14u);
  const Tensor var = random_tensor({cols}, 15u, 0.5f, 1.5f), mean = random_tensor({cols}, 16u);
  std::vector<float> ln1, ln2, bn1, bn2;
  with_threads(1, [&] {
    ln1 = values(ops::layer_norm(x, gamma, beta));
    bn1 = values(ops::batch_norm(x, gamma, beta, mean, var, true).y);
  });
  with_threads(2, [&] {
    ln2 = values(ops::layer_norm(x, gamma, beta));
    bn2 = values(ops::batch_norm(x, gamma, beta, mean, var, true).y);
  });
  const std::vector<float> xv = values(x), g = values(gamma), b = values(beta);
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, sq = 0;
    for (int64_t j = 0; j < cols; ++j) mu += xv[static_cast<size_t>(r * cols + j)];
    mu /= cols;
    for (int64_t j = 0; j < cols; ++j) sq += std::pow(xv[static_cast<size_t>(r * cols + j)] - mu, 2);
    const double rstd = 1.0 / std::sqrt(sq / cols + 1e-3);
    for (int64_t j = 0; j < cols; ++j) {
      const size_t i = static_cast<size_t>(r * cols + j);
      const double want = (xv[i] - mu) * rstd * g[static_cast<size_t>(j)] + b[static_cast<size_t>(j)];
      ASSERT_NEAR(ln1[i], want, 2e-6 * (1 + std::fabs(want))) << r << " " << j;
    }
  }
  for (size_t i = 0; i < ln1.size(); ++i) ASSERT_EQ(bits(ln1[i]), bits(ln2[i])) << i;
  for (size_t i = 0; i < bn1.size(); ++i) ASSERT_EQ(bits(bn1[i]), bits(bn2[i])) << i;
}

TEST(SpecialValuesNorm, BatchNormNaNStaysInItsChannelAtEverySize) {
  const int64_t cols = 5;
  for (int64_t rows : {int64_t{3}, int64_t{4001}}) {  // 15 and 20005 elements
    std::vector<float> v = values(random_tensor({rows, cols}, 17u));
    v[2] = kNaN;  // channel 2
    const Tensor x = make({rows, cols}, v), c = random_tensor({cols}, 18u, 0.5f, 1.5f);
    const std::vector<float> y = values(ops::batch_norm(x, c, c, c, c, true).y);
    for (int64_t j = 0; j < cols; ++j)
      EXPECT_EQ(std::isnan(y[static_cast<size_t>(cols + j)]), j == 2) << rows << " " << j;
  }
}

}  // namespace
}  // namespace kiln
