// The integer forms of the ops TF registers for int32 and int64 beyond the arithmetic: sign,
// relu, relu6, round, clip_by_value, pow, mean and matmul, against reference loops written here,
// at the edges of each dtype (wrapping as TF's kernels wrap), on both sides of the threading
// thresholds and at 1 and 2 threads.
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "autodiff/tape.h"
#include "core/error.h"  // test_util.h uses kiln::Error without including it
#include "core/threads.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;
using testing::make_typed;
using testing::values;

template <typename T>
class IntegerOps : public ::testing::Test {};
using IntegerTypes = ::testing::Types<int32_t, int64_t>;
TYPED_TEST_SUITE(IntegerOps, IntegerTypes);

template <typename T>
constexpr T lo() {
  return std::numeric_limits<T>::min();
}
template <typename T>
constexpr T hi() {
  return std::numeric_limits<T>::max();
}

// Deterministic values spread over [-range, range].
template <typename T>
std::vector<T> spread(int64_t n, int64_t range, uint64_t seed) {
  std::vector<T> v(static_cast<size_t>(n));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto &x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<T>(static_cast<int64_t>((s >> 33) % static_cast<uint64_t>(2 * range + 1)) - range);
  }
  return v;
}

TYPED_TEST(IntegerOps, UnaryOpsFollowTF) {
  using T = TypeParam;
  const Tensor x = make_typed<T>({7}, {lo<T>(), -7, -1, 0, 1, 6, hi<T>()});
  EXPECT_EQ(values<T>(ops::sign(x)), (std::vector<T>{-1, -1, -1, 0, 1, 1, 1}));
  EXPECT_EQ(values<T>(ops::relu(x)), (std::vector<T>{0, 0, 0, 0, 1, 6, hi<T>()}));
  EXPECT_EQ(values<T>(ops::relu6(x)), (std::vector<T>{0, 0, 0, 0, 1, 6, 6}));
  EXPECT_EQ(values<T>(ops::round(x)), values<T>(x));
  EXPECT_EQ(values<T>(ops::clip_by_value(x, -2.0f, 3.0f)), (std::vector<T>{-2, -2, -1, 0, 1, 3, 3}));
  // maximum(minimum(x, hi), lo): lo everywhere when lo > hi, as TF.
  EXPECT_EQ(values<T>(ops::clip_by_value(x, 4.0f, -4.0f)), std::vector<T>(7, 4));
  for (const Tensor &y : {ops::sign(x), ops::relu(x), ops::relu6(x), ops::round(x)})
    EXPECT_EQ(y.dtype(), x.dtype());
  // Above the threading threshold every element is the same map.
  const std::vector<T> big = spread<T>(100003, 20, 1);
  const Tensor xb = make_typed<T>({100003}, big);
  const std::vector<T> s = values<T>(ops::sign(xb)), r = values<T>(ops::relu6(xb)),
                       c = values<T>(ops::clip_by_value(xb, -5.0f, 11.0f));
  for (size_t i = 0; i < big.size(); ++i) {
    ASSERT_EQ(s[i], (big[i] > 0) - (big[i] < 0)) << i;
    ASSERT_EQ(r[i], std::min<T>(std::max<T>(big[i], 0), 6)) << i;
    ASSERT_EQ(c[i], std::min<T>(std::max<T>(big[i], -5), 11)) << i;
  }
}

TYPED_TEST(IntegerOps, ClipBoundsMustBeWholeNumbersOfTheDtype) {
  using T = TypeParam;
  const Tensor x = make_typed<T>({2}, {1, 2});
  const Code inv = Code::kInvalidArgument;
  expect_error([&] { ops::clip_by_value(x, 0.5f, 3.0f); }, inv,
               {"clip_by_value", "clip_value_min", "0.5", "whole"});
  expect_error([&] { ops::clip_by_value(x, 0.0f, std::numeric_limits<float>::quiet_NaN()); }, inv,
               {"clip_by_value", "clip_value_max", "nan"});
  expect_error([&] { ops::clip_by_value(x, -std::numeric_limits<float>::infinity(), 1.0f); }, inv,
               {"clip_by_value", "clip_value_min", "inf"});
  const float too_big = std::is_same_v<T, int32_t> ? 4294967296.0f : 1.8446744e19f;
  expect_error([&] { ops::clip_by_value(x, 0.0f, too_big); }, inv, {"clip_by_value", "clip_value_max"});
  // The dtype's own extremes are fine.
  EXPECT_EQ(values<T>(ops::clip_by_value(x, static_cast<float>(lo<T>()), 1.0f)), (std::vector<T>{1, 1}));
  expect_error([&] { ops::clip_by_value(make_typed<uint8_t>({1}, {1}), 0.0f, 1.0f); }, inv,
               {"clip_by_value", "uint8"});
}

TYPED_TEST(IntegerOps, PowMultipliesAndWraps) {
  using T = TypeParam;
  using U = std::make_unsigned_t<T>;
  const Tensor a = make_typed<T>({6}, {0, 0, 3, -2, -2, 7});
  const Tensor b = make_typed<T>({6}, {0, 5, 4, 3, 4, 1});
  EXPECT_EQ(values<T>(ops::pow(a, b)), (std::vector<T>{1, 0, 81, -8, 16, 7}));
  // Broadcasting, and overflow wraps as repeated multiplication would.
  const Tensor base = make_typed<T>({3}, {3, -3, hi<T>()});
  const std::vector<T> got = values<T>(ops::pow(base, make_typed<T>({}, {45})));
  for (size_t i = 0; i < got.size(); ++i) {
    U want = 1;
    for (int e = 0; e < 45; ++e) want = static_cast<U>(want * static_cast<U>(values<T>(base)[i]));
    EXPECT_EQ(got[i], static_cast<T>(want)) << i;
  }
  expect_error(
      [&] {
        ops::pow(a, make_typed<T>({2}, {2, -1}));
      },
      Code::kInvalidArgument, {"pow", "negative integer powers"});
  expect_error([&] { ops::pow(make_typed<T>({1}, {1}), make_typed<T>({1}, {-1})); }, Code::kInvalidArgument,
               {"pow", "negative"});
  // An empty result runs no kernel, so nothing is refused (TF's BinaryOp returns first).
  EXPECT_EQ(ops::pow(Tensor::empty(dtype_of<T>::value, {0}), make_typed<T>({1}, {-1})).shape(), Shape({0}));
}

TYPED_TEST(IntegerOps, MeanTruncatesTheSumTowardZero) {
  using T = TypeParam;
  const Tensor x = make_typed<T>({2, 3}, {-3, 0, 5, 2, -7, 1});
  EXPECT_EQ(values<T>(ops::mean(x)), (std::vector<T>{0}));           // -2 / 6
  EXPECT_EQ(values<T>(ops::mean(x, {1})), (std::vector<T>{0, -1}));  // 2 / 3, -4 / 3
  EXPECT_EQ(values<T>(ops::mean(x, {0}, true)), (std::vector<T>{0, -3, 3}));
  EXPECT_EQ(ops::mean(x, {0}, true).shape(), Shape({1, 3}));
  EXPECT_EQ(ops::mean(x).dtype(), x.dtype());
  EXPECT_EQ(values<T>(ops::mean(make_typed<T>({2}, {hi<T>(), hi<T>()}))), (std::vector<T>{-1}));  // wraps
  // As TF: 0 where nothing is combined.
  EXPECT_EQ(values<T>(ops::mean(Tensor::empty(dtype_of<T>::value, {0, 2}), {0})), (std::vector<T>{0, 0}));
  const std::vector<T> v = spread<T>(3 * 40001, 1000, 2);
  const std::vector<T> m = values<T>(ops::mean(make_typed<T>({3, 40001}, v), {1}));
  for (int64_t r = 0; r < 3; ++r) {
    int64_t sum = 0;
    for (int64_t j = 0; j < 40001; ++j) sum += v[static_cast<size_t>(r * 40001 + j)];
    EXPECT_EQ(m[static_cast<size_t>(r)], static_cast<T>(sum / 40001)) << r;
  }
}

// The reference: op(a) · op(b) per batch, summed in the unsigned type (so overflow wraps).
template <typename T>
std::vector<T> ref_matmul(const std::vector<T> &a, const std::vector<T> &b, int64_t batch_a, int64_t batch_b,
                          int64_t m, int64_t k, int64_t n, bool ta, bool tb) {
  using U = std::make_unsigned_t<T>;
  const int64_t batches = std::max(batch_a, batch_b);
  std::vector<T> out(static_cast<size_t>(batches * m * n));
  for (int64_t q = 0; q < batches; ++q) {
    const T *am = a.data() + (batch_a == 1 ? 0 : q) * m * k;
    const T *bm = b.data() + (batch_b == 1 ? 0 : q) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        U acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc = static_cast<U>(acc + static_cast<U>(ta ? am[p * m + i] : am[i * k + p]) *
                                         static_cast<U>(tb ? bm[j * k + p] : bm[p * n + j]));
        out[static_cast<size_t>((q * m + i) * n + j)] = static_cast<T>(acc);
      }
  }
  return out;
}

TYPED_TEST(IntegerOps, MatmulMatchesReferenceLoops) {
  using T = TypeParam;
  struct Case {
    int64_t batch_a, batch_b, m, k, n;
  };
  // Small (one thread), batched with broadcasting, and above the threading threshold.
  for (const Case c : {Case{1, 1, 2, 3, 4}, Case{3, 1, 5, 7, 2}, Case{1, 4, 1, 9, 3}, Case{1, 1, 64, 48, 70}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::vector<T> a = spread<T>(c.batch_a * c.m * c.k, 50, 3),
                             b = spread<T>(c.batch_b * c.k * c.n, 50, 4);
        const Shape as = ta ? Shape{c.batch_a, c.k, c.m} : Shape{c.batch_a, c.m, c.k};
        const Shape bs = tb ? Shape{c.batch_b, c.n, c.k} : Shape{c.batch_b, c.k, c.n};
        const std::vector<T> want = ref_matmul(a, b, c.batch_a, c.batch_b, c.m, c.k, c.n, ta, tb);
        for (int threads : {1, 2}) {
          set_num_threads_for_this_thread(threads);
          const Tensor got = ops::matmul(make_typed<T>(as, a), make_typed<T>(bs, b), ta, tb);
          ASSERT_EQ(got.dtype(), dtype_of<T>::value);
          ASSERT_EQ(got.shape(), Shape({std::max(c.batch_a, c.batch_b), c.m, c.n}));
          ASSERT_EQ(values<T>(got), want)
              << c.m << "x" << c.k << "x" << c.n << " ta=" << ta << " tb=" << tb << " threads=" << threads;
        }
        set_num_threads_for_this_thread(0);
      }
  // Overflow wraps; K = 0 gives zeros.
  const Tensor big = make_typed<T>({1, 2}, {hi<T>(), hi<T>()}), two = make_typed<T>({2, 1}, {2, 3});
  EXPECT_EQ(values<T>(ops::matmul(big, two)),
            ref_matmul(values<T>(big), values<T>(two), 1, 1, 1, 2, 1, false, false));
  EXPECT_EQ(values<T>(ops::matmul(Tensor::empty(dtype_of<T>::value, {2, 0}),
                                  Tensor::empty(dtype_of<T>::value, {0, 3}))),
            std::vector<T>(6, 0));
  expect_error(
      [&] {
        ops::matmul(make_typed<T>({1, 1}, {1}), testing::make({1, 1}, {1.0f}));
      },
      Code::kInvalidArgument, {"matmul"});
}

// Under a recording tape (which cannot watch an integer tensor, as TF's records no integer
// gradient) the integer ops compose and leave the float gradients alone.
TEST(IntegerOpsTape, ComposeUnderARecordingTape) {
  const Tensor w = testing::make({2}, {0.5f, -1.5f});
  autodiff::Tape tape(false, true);
  tape.watch(w);
  const Tensor x = make_typed<int32_t>({2, 2}, {1, -2, 3, 4});
  // [[-5, -10], [15, 10]] + mean([[1, 1], [27, 256]], axis 0) = [[9, 118], [29, 138]].
  const Tensor r = ops::relu(x);
  const Tensor y = ops::add(ops::matmul(x, x), ops::mean(ops::pow(r, r), {0}, true));
  const Tensor loss = ops::sum(ops::mul(w, ops::cast(ops::sum(y, {0}), DType::kFloat32)));
  tape.stop_recording();
  EXPECT_EQ(values<int32_t>(y), (std::vector<int32_t>{9, 118, 29, 138}));
  const std::vector<Tensor> g = tape.gradient(loss, {w}, autodiff::Unconnected::kNone);
  EXPECT_EQ(values(g[0]), (std::vector<float>{38.0f, 256.0f}));
}

}  // namespace
}  // namespace kiln
