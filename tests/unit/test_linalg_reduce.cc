// LINALG family: reductions, argmax, softmax/log_softmax and sum_to_shape against
// double-precision reference loops, at sizes on both sides of the loop/parallel/oneDNN thresholds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "autodiff/tape.h"
#include "kernels/engine.h"
#include "kernels/simd.h"
#include "linalg_test_util.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace linalg_test;  // NOLINT: the family's reference helpers and test_util's make/values

// ---- reductions ----

enum class Kind { kSum, kMean, kMax, kMin };

// Reference: every input element combined into its keepdims output slot, in double.
std::vector<double> ref_reduce(Kind kind, const Tensor &x, std::vector<int64_t> axes) {
  const Shape &s = x.shape();
  std::vector<bool> red(size_t(s.rank()), axes.empty());
  for (int64_t a : axes) red[size_t(a < 0 ? a + s.rank() : a)] = true;
  Shape keep;
  for (int d = 0; d < s.rank(); ++d) keep.push_back(red[size_t(d)] ? 1 : s[d]);
  const double init = kind == Kind::kMax ? -INFINITY : kind == Kind::kMin ? INFINITY : 0.0;
  std::vector<double> out(size_t(keep.num_elements()), init);
  std::vector<int64_t> count(out.size(), 0);
  const auto xv = values(x.dtype() == DType::kFloat32 ? x : ops::cast(x, DType::kFloat32));
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    int64_t o = 0, rest = i, scale = 1;  // keepdims offset of element i
    for (int d = s.rank() - 1; d >= 0; --d) {
      o += (keep[d] == 1 ? 0 : rest % s[d]) * scale;
      scale *= keep[d];
      rest /= s[d];
    }
    const double v = xv[size_t(i)];
    double &r = out[size_t(o)];
    r = kind == Kind::kMax ? std::max(r, v) : kind == Kind::kMin ? std::min(r, v) : r + v;
    ++count[size_t(o)];
  }
  if (kind == Kind::kMean)
    for (size_t o = 0; o < out.size(); ++o) out[o] /= double(count[o]);
  return out;
}

Tensor run_reduce(Kind kind, const Tensor &x, const std::vector<int64_t> &axes, bool keepdims) {
  switch (kind) {
    case Kind::kSum:
      return ops::sum(x, axes, keepdims);
    case Kind::kMean:
      return ops::mean(x, axes, keepdims);
    case Kind::kMax:
      return ops::max(x, axes, keepdims);
    case Kind::kMin:
      return ops::min(x, axes, keepdims);
  }
  return Tensor();
}

Shape expected_reduce_shape(const Shape &s, std::vector<int64_t> axes, bool keepdims) {
  Shape out;
  for (int d = 0; d < s.rank(); ++d) {
    bool r = axes.empty();
    for (int64_t a : axes) r = r || a == d || a + s.rank() == d;
    if (!r)
      out.push_back(s[d]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

struct ReduceCase {
  Shape shape;
  std::vector<int64_t> axes;
};

const std::vector<ReduceCase> kReduceCases = {
    {{7}, {}},
    {{3, 5}, {0}},
    {{3, 5}, {1}},
    {{3, 5}, {-1}},
    {{2, 3, 4}, {0, 2}},
    {{2, 3, 4}, {1}},
    {{2, 1, 4}, {1}},
    {{2, 3, 4}, {-3, -2}},
    {{4, 1, 3, 5}, {1, 2}},
    {{3, 5}, {}},
    {{}, {}},
    {{2, 3, 1, 5, 2}, {0, 2, 4}},
    // Above kReduceLoopThreshold: the oneDNN path.
    {{64, 40, 17}, {1}},
    {{64, 40, 17}, {0, 2}},
    {{300, 257}, {-1}},
    {{300, 257}, {}},
    {{5, 130, 61}, {0}},
};

TEST(LinalgReduce, MatchesReference) {
  unsigned seed = 10;
  for (Kind kind : {Kind::kSum, Kind::kMean, Kind::kMax, Kind::kMin})
    for (const ReduceCase &c : kReduceCases)
      for (bool keepdims : {false, true}) {
        Tensor x = random_tensor(c.shape, seed++, -2.0f, 3.0f);
        Tensor got = run_reduce(kind, x, c.axes, keepdims);
        std::string what = "kind " + std::to_string(int(kind)) + " of " + x.description() + " axes " +
                           std::to_string(c.axes.size()) + " keepdims " + std::to_string(keepdims);
        ASSERT_EQ(got.shape(), expected_reduce_shape(c.shape, c.axes, keepdims)) << what;
        auto want = ref_reduce(kind, x, c.axes);
        ASSERT_EQ(size_t(got.num_elements()), want.size()) << what;
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(got.item_as_double(int64_t(i)), want[i], 2e-5 * (std::fabs(want[i]) + 10))
              << what << " " << i;
      }
}

TEST(LinalgReduce, IntegerAndBFloat16) {
  Tensor i32 = testing::make_typed<int32_t>({2, 3}, {1, -2, 3, 4, 5, -6});
  EXPECT_EQ(values<int32_t>(ops::sum(i32, {1})), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(values<int32_t>(ops::max(i32, {0})), (std::vector<int32_t>{4, 5, 3}));
  Tensor i64 = testing::make_typed<int64_t>({2, 3}, {1, -2, 3, 4, 5, -6});
  EXPECT_EQ(values<int64_t>(ops::min(i64)), (std::vector<int64_t>{-6}));
  EXPECT_EQ(ops::sum(i64).dtype(), DType::kInt64);
  for (Shape s : {Shape{3, 50}, Shape{256, 200}}) {  // loop and oneDNN paths
    Tensor x = random_tensor(s, 7, 0.0f, 1.0f), xb = to_bf16(x);
    Tensor got = ops::sum(xb, {1});
    ASSERT_EQ(got.dtype(), DType::kBFloat16);
    auto want = ref_reduce(Kind::kSum, ops::cast(xb, DType::kFloat32), {1});
    for (size_t k = 0; k < want.size(); ++k)
      EXPECT_NEAR(got.item_as_double(int64_t(k)), want[k], want[k] / 128);
    Tensor mx = ops::max(xb, {0});
    auto want_mx = ref_reduce(Kind::kMax, ops::cast(xb, DType::kFloat32), {0});
    for (size_t k = 0; k < want_mx.size(); ++k) EXPECT_EQ(mx.item_as_double(int64_t(k)), want_mx[k]);
  }
}

// The mean is the sum divided by the count, as TF divides (not times 1/count, an ulp off for about
// a quarter of counts), on every path (the loop, the parallel loop, the column blocks) and dtype;
// so a constant row's mean is the constant and its variance 0. The gradient divides as well.
TEST(LinalgReduce, MeanDividesTheSumByTheCount) {
  for (Shape s : {Shape{7}, Shape{3, 7}, Shape{7, 300}, Shape{1001, 3}, Shape{49, 1000}})
    for (int axis = 0; axis < s.rank(); ++axis) {
      Tensor x = random_tensor(s, 3 + unsigned(axis), -2.0f, 3.0f);
      const double count = double(s[axis]);
      Tensor sum32 = ops::sum(x, {axis}), mean32 = ops::mean(x, {axis});
      Tensor x64 = ops::cast(x, DType::kFloat64);
      Tensor sum64 = ops::sum(x64, {axis}), mean64 = ops::mean(x64, {axis});
      for (int64_t i = 0; i < mean32.num_elements(); ++i) {
        ASSERT_EQ(values(mean32)[size_t(i)], values(sum32)[size_t(i)] / float(count))
            << s.to_string() << " " << i;
        ASSERT_EQ(values<double>(mean64)[size_t(i)], values<double>(sum64)[size_t(i)] / count)
            << s.to_string();
      }
    }
  // Constants whose sums are exact in float32 (the mean of seven 0.1f is not 0.1f in TF either).
  for (float c : {3.0f, 1e6f, -7.5f, 0.375f})
    for (int64_t n : {3, 7, 11, 13, 1000}) {
      Tensor x = ops::fill(Shape{n}, c, DType::kFloat32);
      EXPECT_EQ(ops::mean(x).item_as_double(0), double(c)) << c << " x " << n;
      EXPECT_EQ(ops::mean(ops::cast(x, DType::kFloat64)).item_as_double(0), double(c)) << c << " x " << n;
      ops::MomentsResult m = ops::moments(x, {0});
      EXPECT_EQ(m.mean.item_as_double(0), double(c)) << c << " x " << n;
      EXPECT_EQ(m.variance.item_as_double(0), 0.0) << c << " x " << n;
    }
  Tensor x = random_tensor({4, 7}, 5);
  Tensor w = random_tensor({4}, 6, -3.0f, 3.0f);
  autodiff::Tape tape(false, true);
  tape.watch(x);
  Tensor y = ops::sum(ops::mul(ops::mean(x, {1}), w));
  tape.stop_recording();
  Tensor g = tape.gradient(y, {x}, autodiff::Unconnected::kNone)[0];
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 7; ++j)
      ASSERT_EQ(values(g)[size_t(i * 7 + j)], values(w)[size_t(i)] / 7.0f) << i << ", " << j;
}

// Long float32 rows add in a tree of blocks (as TF's Eigen and NumPy do): the error of a sum of
// a million 0.1s stays near float32's precision instead of growing with the length.
TEST(LinalgReduce, LongFloatRowsKeepPrecision) {
  for (int64_t n : {int64_t{1} << 20, int64_t{3000001}}) {
    const double want = double(0.1f) * double(n);
    Tensor x = ops::fill(Shape{3, n}, 0.1, DType::kFloat32);
    Tensor rows = ops::sum(x, {1});
    for (int64_t r = 0; r < 3; ++r) EXPECT_NEAR(values(rows)[size_t(r)] / want, 1.0, 1e-5) << n;
    EXPECT_NEAR(ops::sum(ops::reshape(x, {3 * n})).item_as_double(0) / (3 * want), 1.0, 1e-5) << n;
    EXPECT_NEAR(ops::mean(x).item_as_double(0) / double(0.1f), 1.0, 1e-5) << n;
  }
}

// Sums along a long leading or middle axis add their rows in a tree of 1024-row blocks too, on every
// path (one pass, parts over the rows, parts over column blocks): the relative error stays near
// float32's precision (adding 65536 0.1s in sequence is 6e-4 off).
TEST(LinalgReduce, LongFloatColumnsKeepPrecision) {
  const double tenth = double(0.1f);
  const auto expect_all = [](const Tensor &t, double want, const std::string &where) {
    for (float v : values(t)) EXPECT_NEAR(v / want, 1.0, 1e-5) << where;
  };
  for (const Shape &shape : {Shape{3000, 2}, Shape{(int64_t{1} << 20) + 3, 2}, Shape{40000, 130}}) {
    const Tensor x = ops::fill(shape, 0.1, DType::kFloat32);
    expect_all(ops::sum(x, {0}), tenth * double(shape[0]), "sum " + shape.to_string());
    expect_all(ops::mean(x, {0}), tenth, "mean " + shape.to_string());
  }
  const Tensor middle = ops::fill(Shape{2, 1 << 20, 3}, 0.1, DType::kFloat32);
  expect_all(ops::sum(middle, {1}), tenth * double(1 << 20), "middle axis");
  expect_all(ops::sum(middle, {0, 1}), tenth * double(2 << 20), "two axes");
  // Integer sums and max stay exact in any order.
  const Tensor ints = ops::fill(Shape{5000, 3}, 7, DType::kInt32);
  EXPECT_EQ(values<int32_t>(ops::sum(ints, {0})), std::vector<int32_t>(3, 35000));
  Tensor r = random_tensor({5000, 3}, 11);  // values in [-1, 1)
  r.mutable_data<float>()[4321 * 3 + 1] = 5.0f;
  EXPECT_EQ(values(ops::max(r, {0}))[1], 5.0f);
}

TEST(LinalgReduce, EmptyInputs) {
  Tensor x = Tensor::empty(DType::kFloat32, {0, 3});
  Tensor s = ops::sum(x, {0});
  EXPECT_EQ(s.shape(), Shape({3}));
  testing::expect_near(s, {0, 0, 0});
  EXPECT_TRUE(std::isnan(ops::mean(x, {0}).item_as_double(1)));
  EXPECT_EQ(ops::sum(x, {1}).shape(), Shape({0}));
  EXPECT_EQ(ops::max(x, {1}).shape(), Shape({0}));
  // Like TF: the identity of the reduction.
  EXPECT_EQ(values(ops::max(x, {0})), std::vector<float>(3, -std::numeric_limits<float>::infinity()));
  EXPECT_EQ(values(ops::min(x)), std::vector<float>(1, std::numeric_limits<float>::infinity()));
  EXPECT_EQ(values<int32_t>(ops::max(Tensor::empty(DType::kInt32, {0}))),
            std::vector<int32_t>(1, std::numeric_limits<int32_t>::lowest()));
}

TEST(LinalgReduce, Errors) {
  using testing::expect_error;
  const Code inv = Code::kInvalidArgument;
  Tensor x = random_tensor({2, 3}, 1);
  expect_error([&] { ops::sum(x, {1, -1}); }, inv, {"sum", "float32[2, 3]", "more than once", "[1, -1]"});
  expect_error([&] { ops::mean(x, {2}); }, inv, {"mean", "axis 2", "rank 2"});
  expect_error([&] { ops::max(x, {-3}); }, inv, {"max", "axis -3"});
  expect_error([&] { ops::min(x, {0, 0}); }, inv, {"min", "more than once"});
  expect_error([&] { ops::sum(testing::make_bool({2}, {1, 0})); }, inv, {"sum", "bool[2]"});
  expect_error([&] { ops::mean(testing::make_bool({2}, {1, 0})); }, inv, {"mean", "bool[2]", "float32"});
  expect_error([&] { ops::sum(Tensor()); }, inv, {"sum"});
}

// ---- argmax ----

TEST(LinalgArgmax, MatchesReferenceAndTies) {
  Tensor t = make({2, 4}, {1, 5, 5, 2, 7, 7, 7, 0});
  EXPECT_EQ(values<int64_t>(ops::argmax(t, 1)), (std::vector<int64_t>{1, 0}));  // first of ties
  EXPECT_EQ(values<int64_t>(ops::argmax(t, 0)), (std::vector<int64_t>{1, 1, 1, 0}));
  for (Shape s : {Shape{3, 5, 7}, Shape{40, 33, 29}})
    for (int axis : {0, 1, -1}) {
      Tensor x = random_tensor(s, unsigned(axis + 5));
      Tensor got = ops::argmax(x, axis);
      ASSERT_EQ(got.dtype(), DType::kInt64);
      const int a = axis < 0 ? axis + 3 : axis;
      auto xv = values(x);
      int64_t stride = 1;
      for (int d = a + 1; d < 3; ++d) stride *= s[d];
      for (int64_t o = 0; o < got.num_elements(); ++o) {
        const int64_t base = (o / stride) * stride * s[a] + o % stride;
        int64_t best = 0;
        for (int64_t k = 1; k < s[a]; ++k)
          if (xv[size_t(base + k * stride)] > xv[size_t(base + best * stride)]) best = k;
        ASSERT_EQ(got.data<int64_t>()[o], best) << s.to_string() << " axis " << axis << " at " << o;
      }
    }
  Tensor i = testing::make_typed<int32_t>({3}, {4, 9, 2});
  EXPECT_EQ(values<int64_t>(ops::argmax(i)), (std::vector<int64_t>{1}));
}

// TF's kernel (Eigen's reducer from (0, lowest), strictly greater replaces) never picks a NaN,
// wherever it is; argmin likewise from (0, highest). Both inner == 1 and inner > 1 paths, and a
// size above the parallel threshold.
TEST(LinalgArgmax, NanIsNeverChosen) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(values<int64_t>(ops::argmax(make({3}, {nan, 1, 2}))), (std::vector<int64_t>{2}));
  EXPECT_EQ(values<int64_t>(ops::argmax(make({3}, {1, nan, 2}))), (std::vector<int64_t>{2}));
  EXPECT_EQ(values<int64_t>(ops::argmin(make({3}, {nan, 1, 2}), 0)), (std::vector<int64_t>{1}));
  EXPECT_EQ(values<int64_t>(ops::argmax(make({2}, {nan, nan}))), (std::vector<int64_t>{0}));
  EXPECT_EQ(values<int64_t>(ops::argmax(make({3}, {-inf, -inf, -inf}))), (std::vector<int64_t>{0}));
  EXPECT_EQ(values<int64_t>(ops::argmin(make({2}, {inf, inf}), 0)), (std::vector<int64_t>{0}));
  Tensor m = make({3, 3}, {nan, 1, 2, 0, nan, 2, 5, 1, nan});
  EXPECT_EQ(values<int64_t>(ops::argmax(m, 0)), (std::vector<int64_t>{2, 0, 0}));
  EXPECT_EQ(values<int64_t>(ops::argmax(m, 1)), (std::vector<int64_t>{2, 2, 0}));
  EXPECT_EQ(values<int64_t>(ops::argmin(m, 0)), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(values<int64_t>(ops::argmin(m, 1)), (std::vector<int64_t>{1, 0, 1}));
  std::vector<float> big(300 * 200, 1.0f);
  for (size_t r = 0; r < 300; ++r) big[r * 200] = nan, big[r * 200 + 1 + r % 199] = r % 2 ? 3.0f : -3.0f;
  const std::vector<int64_t> mx = values<int64_t>(ops::argmax(make({300, 200}, big), 1));
  const std::vector<int64_t> mn = values<int64_t>(ops::argmin(make({300, 200}, big), 1));
  for (size_t r = 0; r < 300; ++r) {
    const int64_t special = int64_t(1 + r % 199), first_one = special == 1 ? 2 : 1;
    ASSERT_EQ(mx[r], r % 2 ? special : first_one) << r;
    ASSERT_EQ(mn[r], r % 2 ? first_one : special) << r;
  }
}

TEST(LinalgArgmax, Errors) {
  using testing::expect_error;
  const Code inv = Code::kInvalidArgument;
  expect_error([&] { ops::argmax(random_tensor({2, 3}, 1), 2); }, inv, {"argmax", "axis 2"});
  expect_error([&] { ops::argmax(Tensor::scalar(1.0f)); }, inv, {"argmax", "float32[]", "rank >= 1"});
  expect_error(
      [&] {
        ops::argmax(Tensor::empty(DType::kFloat32, {2, 0}), 1);
      },
      inv, {"argmax", "float32[2, 0]"});
  expect_error([&] { ops::argmax(testing::make_bool({2}, {1, 0})); }, inv, {"argmax", "bool[2]"});
}

// ---- softmax ----

std::vector<double> ref_softmax(const Tensor &x, int axis, bool log) {
  const Shape &s = x.shape();
  int64_t inner = 1;
  for (int d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const int64_t n = s[axis];
  std::vector<double> out(size_t(x.num_elements()));
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const int64_t base = (i / (inner * n)) * inner * n + i % inner;
    double m = -INFINITY, sum = 0;
    for (int64_t k = 0; k < n; ++k) m = std::max(m, x.item_as_double(base + k * inner));
    for (int64_t k = 0; k < n; ++k) sum += std::exp(x.item_as_double(base + k * inner) - m);
    const double v = x.item_as_double(i) - m;
    out[size_t(i)] = log ? v - std::log(sum) : std::exp(v) / sum;
  }
  return out;
}

TEST(LinalgSoftmax, MatchesReference) {
  struct Case {
    Shape shape;
    int axis;
  };
  const std::vector<Case> cases = {{{7}, 0},       {{3, 5}, -1},     {{3, 5}, 0},       {{2, 3, 4}, 1},
                                   {{4, 1, 6}, 1}, {{200, 300}, -1}, {{40, 30, 50}, 1}, {{70, 600}, 0}};
  for (bool log : {false, true})
    for (const Case &c : cases) {
      Tensor x = random_tensor(c.shape, 3, -5.0f, 5.0f);
      Tensor got = log ? ops::log_softmax(x, c.axis) : ops::softmax(x, c.axis);
      const int axis = c.axis < 0 ? c.axis + c.shape.rank() : c.axis;
      auto want = ref_softmax(x, axis, log);
      ASSERT_EQ(got.shape(), c.shape);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got.item_as_double(int64_t(i)), want[i], 1e-5 * (1 + std::fabs(want[i])))
            << (log ? "log_softmax " : "softmax ") << c.shape.to_string() << " axis " << c.axis << " at "
            << i;
    }
}

// Along a strided axis the result has the bits of the same values laid out as rows (the sums in
// the row path's lane order), on every compiled instruction set, with special values too, and
// across the threading threshold.
TEST(LinalgSoftmax, StridedAxisHasTheBitsOfTheRowPath) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t target : kernels::simd::available_targets()) {
    kernels::simd::force_target(target);
    SCOPED_TRACE(kernels::simd::target_name(target));
    for (const Shape &shape :
         {Shape{1, 3}, Shape{5, 3}, Shape{17, 70}, Shape{100, 9}, Shape{3, 3000}, Shape{40, 3000}})
      for (bool log : {false, true}) {
        Tensor x = random_tensor(shape, 11, -30.0f, 30.0f);
        float *v = x.mutable_data<float>();
        if (shape[0] > 4) {  // a column with -inf, one with a NaN, one with +-0 maxima, one all -inf
          v[1 * shape[1] + 0] = -inf;
          v[2 * shape[1] + 1 % shape[1]] = nan;
          for (int64_t k = 0; k < shape[0]; ++k) v[k * shape[1] + 2 % shape[1]] = k % 2 ? -0.0f : 0.0f;
          if (shape[1] > 3)
            for (int64_t k = 0; k < shape[0]; ++k) v[k * shape[1] + 3] = -inf;
        }
        const Tensor strided = log ? ops::log_softmax(x, 0) : ops::softmax(x, 0);
        const Tensor xt = ops::transpose(x, {1, 0});
        const Tensor rows = ops::transpose(log ? ops::log_softmax(xt, -1) : ops::softmax(xt, -1), {1, 0});
        const std::vector<float> a = values(strided), b = values(rows);
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
            << (log ? "log_softmax " : "softmax ") << shape.to_string();
      }
  }
  kernels::simd::force_target(0);
}

TEST(LinalgSoftmax, StableForLargeLogits) {
  for (Shape s : {Shape{1, 3}, Shape{20000, 3}}) {  // loop and oneDNN paths
    std::vector<float> v;
    for (int64_t i = 0; i < s[0]; ++i) v.insert(v.end(), {1000.0f, 0.0f, -1000.0f});
    Tensor x = make(s, v);
    Tensor p = ops::softmax(x), lp = ops::log_softmax(x);
    EXPECT_NEAR(p.item_as_double(0), 1.0, 1e-6);
    EXPECT_EQ(p.item_as_double(2), 0.0);
    EXPECT_NEAR(lp.item_as_double(1), -1000.0, 1e-3);
    EXPECT_NEAR(lp.item_as_double(2), -2000.0, 1e-2);
    EXPECT_TRUE(std::isfinite(lp.item_as_double(s.num_elements() - 1)));
  }
}

TEST(LinalgSoftmax, PrimitiveCacheSteadyState) {
  SingleThreaded one_thread;
  Tensor big = random_tensor({128, 300}, 1);  // above the loop threshold: oneDNN
  ops::softmax(big);
  ops::log_softmax(big);
  const int64_t misses = kernels::primitive_cache_stats().misses;
  for (int i = 0; i < 1000; ++i) {
    ops::softmax(big);
    ops::log_softmax(big, -1);
  }
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses);
}

TEST(LinalgSoftmax, Errors) {
  using testing::expect_error;
  const Code inv = Code::kInvalidArgument;
  expect_error([&] { ops::softmax(random_tensor({2, 3}, 1), 2); }, inv, {"softmax", "axis 2"});
  expect_error([&] { ops::log_softmax(Tensor::scalar(1.0f)); }, inv, {"log_softmax", "float32[]"});
  expect_error(
      [&] {
        ops::softmax(testing::make_typed<int32_t>({2}, {1, 2}));
      },
      inv, {"softmax", "int32[2]"});
  expect_error(
      [&] {
        ops::log_softmax(testing::make_typed<int64_t>({2}, {1, 2}));
      },
      inv, {"log_softmax", "int64[2]"});
}

// ---- sum_to_shape ----

TEST(LinalgSumToShape, MatchesReference) {
  struct Case {
    Shape from, to;
  };
  const std::vector<Case> cases = {{{2, 3}, {2, 3}},   {{2, 3}, {3}},          {{2, 3}, {1, 3}},
                                   {{2, 3}, {2, 1}},   {{2, 3}, {}},           {{4, 2, 3}, {2, 1}},
                                   {{4, 2, 3}, {1}},   {{5, 1, 3}, {1, 1, 3}}, {{64, 40, 17}, {40, 1}},
                                   {{300, 200}, {200}}};
  for (const Case &c : cases) {
    Tensor g = random_tensor(c.from, 4);
    Tensor got = ops::sum_to_shape(g, c.to);
    ASSERT_EQ(got.shape(), c.to) << c.from.to_string();
    std::vector<double> want(size_t(c.to.num_elements()), 0.0);
    for (int64_t i = 0; i < g.num_elements(); ++i)
      want[size_t(broadcast_offset(unravel(i, c.from), c.to))] += g.item_as_double(i);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got.item_as_double(int64_t(i)), want[i], 1e-4 * (1 + std::fabs(want[i])))
          << c.from.to_string() << " -> " << c.to.to_string();
  }
}

TEST(LinalgSumToShape, Errors) {
  using testing::expect_error;
  const Code inv = Code::kInvalidArgument;
  Tensor g = random_tensor({2, 3}, 1);
  expect_error([&] { ops::sum_to_shape(g, {4}); }, inv, {"sum_to_shape", "float32[2, 3]", "[4]"});
  expect_error([&] { ops::sum_to_shape(g, {1, 2, 3}); }, inv, {"sum_to_shape", "[1, 2, 3]"});
  expect_error([&] { ops::sum_to_shape(g, {2, 2}); }, inv, {"sum_to_shape", "[2, 2]", "broadcasts"});
  expect_error([&] { ops::sum_to_shape(testing::make_bool({1}, {1}), {}); }, inv,
               {"sum_to_shape", "bool[1]"});
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// log_softmax must not round log(sum) to the float step of a large logit.
TEST(LinalgSoftmax, LogSoftmaxKeepsPrecisionForLargeLogits) {
  for (int64_t axis : {1, 0}) {
    Tensor x = axis == 1 ? testing::make({1, 3}, {1e6f, 1e6f, 0.0f}) : testing::make({3, 1}, {1e6f, 1e6f, 0.0f});
    std::vector<float> y = testing::values(ops::log_softmax(x, axis));
    EXPECT_NEAR(y[0], -0.6931472f, 1e-6f) << "axis " << axis;
    EXPECT_NEAR(y[1], -0.6931472f, 1e-6f) << "axis " << axis;
  }
}

}  // namespace
}  // namespace kiln
