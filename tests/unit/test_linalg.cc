// LINALG family: matmul (against a double-precision reference loop, incl. bfloat16 and
// batch broadcasting) and the gradient table over every differentiable op of the family.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/engine.h"
#include "kernels/matmul.h"
#include "linalg_test_util.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace linalg_test;  // NOLINT: the family's reference helpers and test_util's make/values

// ---- matmul ----

struct MatmulRef {
  Shape shape;
  std::vector<double> v;
};

MatmulRef ref_matmul(const Tensor &a, const Tensor &b, bool ta, bool tb) {
  auto av = values(a), bv = values(b);
  const Shape &sa = a.shape(), &sb = b.shape();
  const int ra = sa.rank(), rb = sb.rank();
  const int64_t m = ta ? sa[ra - 1] : sa[ra - 2], k = ta ? sa[ra - 2] : sa[ra - 1];
  const int64_t n = tb ? sb[rb - 2] : sb[rb - 1];
  Shape ba(sa.data(), ra - 2), bb(sb.data(), rb - 2);
  Shape batch = broadcast_shapes(ba, bb, "ref");
  MatmulRef out{batch, {}};
  out.shape.push_back(m);
  out.shape.push_back(n);
  for (int64_t bi = 0; bi < batch.num_elements(); ++bi) {
    auto idx = unravel(bi, batch);
    const int64_t oa = (ba.rank() ? broadcast_offset(idx, ba) : 0) * m * k;
    const int64_t ob = (bb.rank() ? broadcast_offset(idx, bb) : 0) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += double(av[size_t(oa + (ta ? p * m + i : i * k + p))]) *
               bv[size_t(ob + (tb ? j * k + p : p * n + j))];
        out.v.push_back(s);
      }
  }
  return out;
}

void expect_matches(const Tensor &got, const MatmulRef &want, double tol, const std::string &what) {
  ASSERT_EQ(got.shape(), want.shape) << what;
  for (int64_t i = 0; i < got.num_elements(); ++i)
    ASSERT_NEAR(got.item_as_double(i), want.v[size_t(i)], tol * (1 + std::fabs(want.v[size_t(i)])))
        << what << " element " << i;
}

struct MatmulCase {
  Shape a, b;
  bool ta, tb;
};

const std::vector<MatmulCase> kMatmulCases = {
    {{2, 3}, {3, 4}, false, false},
    {{3, 5}, {5, 7}, false, false},
    {{5, 3}, {5, 7}, true, false},
    {{3, 5}, {7, 5}, false, true},
    {{5, 3}, {7, 5}, true, true},
    {{2, 3, 4, 5}, {5, 6}, false, false},        // folded into one GEMM
    {{1, 3, 4, 5}, {2, 1, 5, 6}, false, false},  // both batches broadcast
    {{2, 1, 5, 4}, {3, 6, 5}, true, true},       // ranks differ, transposed
    {{4, 5}, {2, 3, 5, 6}, false, false},        // unbatched a, batched b
    {{3, 7, 5}, {1, 7, 2}, true, false},         // transposed a, size-1 batch b
    {{1, 1, 3, 4}, {4, 2}, false, false},
    {{2, 2, 2, 1, 3, 4}, {2, 1, 1, 4, 5}, false, false},                // rank 6
    {{2, 1, 2, 1, 2, 1, 3, 4}, {1, 2, 1, 2, 1, 2, 2, 4}, false, true},  // rank 8 (kMaxRank)
    {{67, 130}, {130, 45}, false, false},                               // larger, odd
    {{3, 40, 65}, {3, 33, 65}, false, true},
    {{0, 4}, {4, 3}, false, false},  // empty M
    {{3, 0}, {0, 2}, false, false},  // empty K: zeros
};

TEST(LinalgMatmul, MatchesReference) {
  unsigned seed = 1;
  for (const MatmulCase &c : kMatmulCases) {
    Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    std::string what = a.description() + (c.ta ? "^T x " : " x ") + b.description() + (c.tb ? "^T" : "");
    expect_matches(ops::matmul(a, b, c.ta, c.tb), ref_matmul(a, b, c.ta, c.tb), 1e-5, what);
  }
}

// A sum of -0 products is +0 whichever kernel runs it (kiln's gemv for a few rows, oneDNN for
// more, kiln's loops for float64), as TF's and NumPy's matmuls start their sums from +0; a
// nonzero product decides as usual.
TEST(LinalgMatmul, ZeroSumsArePositiveZeroAtEverySize) {
  for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{64}, int64_t{300}}) {
    SCOPED_TRACE(m);
    const int64_t k = 37, n = 19;
    std::vector<float> x(static_cast<size_t>(m * k), -0.0f), w(static_cast<size_t>(k * n), 1.0f);
    for (int64_t p = 0; p < k; ++p) w[static_cast<size_t>(p * n + 4)] = -2.0f;  // -0 * -2 = +0
    const Tensor y = ops::matmul(make(Shape{m, k}, x), make(Shape{k, n}, w));
    for (float v : values(y)) {
      EXPECT_EQ(v, 0.0f);
      EXPECT_FALSE(std::signbit(v));
    }
    const Tensor y64 = ops::matmul(ops::cast(make(Shape{m, k}, x), DType::kFloat64),
                                   ops::cast(make(Shape{k, n}, w), DType::kFloat64));
    for (int64_t i = 0; i < y64.num_elements(); ++i) EXPECT_FALSE(std::signbit(y64.data<double>()[i]));
  }
}

TEST(LinalgMatmul, KnownValues) {
  Tensor a = make({2, 2}, {1, 2, 3, 4}), b = make({2, 2}, {5, 6, 7, 8});
  testing::expect_near(ops::matmul(a, b), {19, 22, 43, 50});
  testing::expect_near(ops::matmul(a, b, true, false), {26, 30, 38, 44});
  testing::expect_near(ops::matmul(a, b, false, true), {17, 23, 39, 53});
  testing::expect_near(ops::matmul(a, b, true, true), {23, 31, 34, 46});
}

// exact: the fallback's result is the float32 product rounded, so it must match bit for bit;
// a native kernel may accumulate in another order, so it gets an ulp (2^-7 relative).
void check_bf16(const MatmulCase &c, unsigned seed, bool exact) {
  Tensor a = to_bf16(random_tensor(c.a, seed)), b = to_bf16(random_tensor(c.b, seed + 1));
  Tensor got = ops::matmul(a, b, c.ta, c.tb);
  ASSERT_EQ(got.dtype(), DType::kBFloat16);
  Tensor a32 = ops::cast(a, DType::kFloat32), b32 = ops::cast(b, DType::kFloat32);
  MatmulRef want = ref_matmul(a32, b32, c.ta, c.tb);
  ASSERT_EQ(got.shape(), want.shape);
  Tensor f32 = ops::matmul(a32, b32, c.ta, c.tb);
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const double w = want.v[size_t(i)];
    ASSERT_NEAR(got.item_as_double(i), w, std::fabs(w) * (1.0 / 256) + 1e-4) << got.description() << " " << i;
    const double r = static_cast<float>(bfloat16(f32.data<float>()[i]));
    ASSERT_NEAR(got.item_as_double(i), r, exact ? 0.0 : std::fabs(r) * (1.0 / 128) + 1e-6) << i;
  }
}

TEST(LinalgMatmul, BFloat16NativeOrFallback) {
  // oneDNN 2.6 implements bf16 matmul only with AVX-512; on AVX2 machines the fallback runs.
  const bool native = kernels::matmul_bf16_native();
  RecordProperty("bf16_native", native ? "yes" : "no");
  unsigned seed = 100;
  for (const MatmulCase &c : kMatmulCases) check_bf16(c, seed += 2, !native);
}

TEST(LinalgMatmul, BFloat16ForcedFallback) {
  struct Force {
    Force() { kernels::set_matmul_bf16_force_fallback(true); }
    ~Force() { kernels::set_matmul_bf16_force_fallback(false); }
  } force;
  unsigned seed = 200;
  for (const MatmulCase &c : kMatmulCases) check_bf16(c, seed += 2, true);
}

TEST(LinalgMatmul, Errors) {
  using testing::expect_error;
  const Code inv = Code::kInvalidArgument;
  Tensor a = random_tensor({2, 3}, 1), b = random_tensor({4, 5}, 2);
  expect_error([&] { ops::matmul(a, b); }, inv, {"matmul", "float32[2, 3]", "float32[4, 5]", "3 vs 4"});
  expect_error([&] { ops::matmul(a, a, false, false); }, inv, {"matmul", "float32[2, 3]", "3 vs 2"});
  expect_error([&] { ops::matmul(random_tensor({3}, 1), a); }, inv, {"matmul", "float32[3]", "rank >= 2"});
  expect_error(
      [&] {
        ops::matmul(random_tensor({2, 3, 4}, 1), random_tensor({3, 4, 5}, 2));
      },
      inv, {"matmul", "float32[2, 3, 4]", "float32[3, 4, 5]", "batch"});
  expect_error(
      [&] {
        ops::matmul(a, to_bf16(random_tensor({3, 2}, 1)));
      },
      inv, {"matmul", "float32[2, 3]", "bfloat16[3, 2]"});
  Tensor i = testing::make_typed<int32_t>({2, 2}, {1, 2, 3, 4});
  expect_error([&] { ops::matmul(i, ops::cast(i, DType::kFloat32)); }, inv,
               {"matmul", "int32[2, 2]", "different dtypes"});
  const Tensor u = ops::cast(i, DType::kUInt8);
  expect_error([&] { ops::matmul(u, u); }, inv, {"matmul", "uint8[2, 2]", "float32 or bfloat16"});
  expect_error([&] { ops::matmul(Tensor(), a); }, inv, {"matmul"});
}

TEST(LinalgMatmul, PrimitiveCacheSteadyState) {
  SingleThreaded one_thread;
  Tensor a = random_tensor({2, 8, 16}, 1), b = random_tensor({16, 8}, 2), c = random_tensor({2, 16, 8}, 3);
  ops::matmul(a, b);
  ops::matmul(a, c, false, false);
  ops::matmul(a, c, true, true);
  const int64_t misses = kernels::primitive_cache_stats().misses;
  for (int i = 0; i < 1000; ++i) {
    ops::matmul(a, b);
    ops::matmul(a, c, false, false);
    ops::matmul(a, c, true, true);
  }
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses);
}
// ---- gradients ----

using Fn = std::function<Tensor(const std::vector<Tensor> &)>;
using GradCase = testing::ShapeGradCase;

Fn mm(bool ta, bool tb) {
  return [ta, tb](const std::vector<Tensor> &x) { return ops::matmul(x[0], x[1], ta, tb); };
}

TEST(LinalgGradients, Table) {
  const std::vector<GradCase> cases = {
      {"matmul", {{3, 5}, {5, 7}}, mm(false, false)},
      {"matmul_ta", {{5, 3}, {5, 7}}, mm(true, false)},
      {"matmul_tb", {{3, 5}, {7, 5}}, mm(false, true)},
      {"matmul_ta_tb", {{5, 3}, {7, 5}}, mm(true, true)},
      {"matmul_batch_fold", {{2, 3, 4}, {4, 5}}, mm(false, false)},
      {"matmul_batch_bcast", {{1, 2, 3, 4}, {2, 1, 4, 3}}, mm(false, false)},
      {"matmul_batch_bcast_t", {{2, 4, 3}, {1, 3, 4}}, mm(true, true)},
      {"matmul_unbatched_a", {{3, 4}, {2, 4, 2}}, mm(false, false)},
      {"sum_all", {{3, 5}}, [](const auto &x) { return ops::sum(x[0]); }},
      {"sum_axis", {{2, 3, 4}}, [](const auto &x) { return ops::sum(x[0], {1}); }},
      {"sum_keepdims",
       {{2, 3, 4}},
       [](const auto &x) {
         return ops::sum(x[0], {0, -1}, true);
       }},
      {"mean_all", {{7}}, [](const auto &x) { return ops::mean(x[0]); }},
      {"mean_axis", {{3, 5}}, [](const auto &x) { return ops::mean(x[0], {0}); }},
      {"mean_keepdims", {{2, 3, 4}}, [](const auto &x) { return ops::mean(x[0], {2}, true); }},
      {"max_axis", {{3, 5}}, [](const auto &x) { return ops::max(x[0], {1}); }},
      {"max_all_keepdims", {{2, 3}}, [](const auto &x) { return ops::max(x[0], {}, true); }},
      {"min_axis",
       {{2, 3, 4}},
       [](const auto &x) {
         return ops::min(x[0], {0, 2});
       }},
      {"softmax_last", {{3, 5}}, [](const auto &x) { return ops::softmax(x[0]); }},
      {"softmax_middle", {{2, 3, 4}}, [](const auto &x) { return ops::softmax(x[0], 1); }},
      {"log_softmax_last", {{3, 5}}, [](const auto &x) { return ops::log_softmax(x[0]); }},
      {"log_softmax_first", {{4, 3}}, [](const auto &x) { return ops::log_softmax(x[0], 0); }},
      {"sum_to_shape",
       {{4, 2, 3}},
       [](const auto &x) {
         return ops::sum_to_shape(x[0], {2, 1});
       }},
      {"sum_to_shape_lead", {{3, 5}}, [](const auto &x) { return ops::sum_to_shape(x[0], {5}); }},
  };
  testing::check_gradient_table(cases, 50u);
}

TEST(LinalgGradients, MaxSplitsTiesEqually) {
  Tensor x = make({2, 3}, {1, 3, 3, 2, 2, 2});
  autodiff::Tape tape(false, false);
  tape.watch(x);
  Tensor y = ops::max(x, {1});
  auto g = tape.gradient(y, {x}, autodiff::Unconnected::kZero);
  testing::expect_near(g[0], {0, 0.5f, 0.5f, 1.0f / 3, 1.0f / 3, 1.0f / 3});
}

// Gradient rules are written in ops, so a tape around a gradient computation gives second
// derivatives: check d/dx (grad_x f(x) . v) against central differences of the first gradient.
TEST(LinalgGradients, SecondOrder) {
  Tensor w = random_tensor({2, 3}, 10), v = random_tensor({2, 3}, 11);
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor &)>>> cases = {
      {"softmax", [&](const Tensor &x) { return ops::softmax(x); }},
      {"softmax_axis0", [&](const Tensor &x) { return ops::softmax(x, 0); }},
      {"log_softmax", [&](const Tensor &x) { return ops::log_softmax(x); }},
      {"matmul", [&](const Tensor &x) { return ops::matmul(x, ops::matmul(x, x, true, false)); }},
      {"mean_sq", [&](const Tensor &x) { return ops::square(ops::mean(ops::mul(x, x), {1}, true)); }},
      {"sum_to_shape", [&](const Tensor &x) { return ops::mul(x, ops::sum_to_shape(ops::mul(x, x), {3})); }},
  };
  for (const auto &[name, f] : cases) {
    auto first = [&, f = f](const Tensor &x) {
      autodiff::Tape t(false, false);
      t.watch(x);
      Tensor y = f(x);
      return t.gradient(y, {x}, autodiff::Unconnected::kZero, y.shape() == w.shape() ? w : Tensor())[0];
    };
    auto h = [&](const Tensor &x) { return ops::sum(ops::mul(first(x), v)); };
    Tensor x = random_tensor({2, 3}, 9);
    autodiff::Tape outer(false, false);
    outer.watch(x);
    Tensor hv = outer.gradient(h(x), {x}, autodiff::Unconnected::kZero)[0];
    ASSERT_TRUE(hv.defined()) << name;
    const float eps = 1e-2f;
    for (int i = 0; i < 6; ++i) {
      auto xv = values(x);
      xv[size_t(i)] += eps;
      const double up = h(make({2, 3}, xv)).item_as_double();
      xv[size_t(i)] -= 2 * eps;
      const double down = h(make({2, 3}, xv)).item_as_double();
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(hv.item_as_double(i), numeric, 3e-3 + 2e-2 * std::fabs(numeric)) << name << " " << i;
    }
  }
}

// Without a tape watching the backward pass, float32 softmax and log_softmax along the last axis
// take their gradient in one fused pass per row: the same values as the rule in ops (the path a
// nested tape takes) up to the rows' summation order, NaN where it has NaN (a NaN or inf in a
// row's incoming gradient spreads over the row), and the same bits at 1 and 2 threads, below and
// above the threshold where rows split among threads, for a row length that is no multiple of
// the vector width.
TEST(LinalgGradients, FusedSoftmaxGradientMatchesTheRuleInOps) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const int64_t rows : {int64_t{5}, int64_t{1001}}) {
    const int64_t n = 37;
    Tensor x = random_tensor({rows, n}, 61, -4.0f, 4.0f);
    std::vector<float> dyv = values(random_tensor({rows, n}, 62));
    dyv[3] = nan;                    // row 0
    dyv[size_t(n + 5)] = inf;        // row 1
    dyv[size_t(2 * n + 7)] = -0.0f;  // row 2
    const Tensor dy = make({rows, n}, dyv);
    for (const bool log : {false, true}) {
      auto f = [log](const Tensor &t) { return log ? ops::log_softmax(t) : ops::softmax(t); };
      std::vector<float> by_threads[2];
      Tensor y;
      for (int t = 1; t <= 2; ++t) {
        const int saved = num_threads();
        set_num_threads(t);
        autodiff::Tape tape(false, false);
        tape.watch(x);
        y = f(x);
        by_threads[t - 1] = values(tape.gradient(y, {x}, autodiff::Unconnected::kZero, dy)[0]);
        set_num_threads(saved);
      }
      const Tensor want = log ? ops::sub(dy, ops::mul(ops::exp(y), ops::sum(dy, {1}, true)))
                              : ops::mul(ops::sub(dy, ops::sum(ops::mul(dy, y), {1}, true)), y);
      const std::vector<float> wv = values(want);
      for (size_t i = 0; i < wv.size(); ++i) {
        const float got = by_threads[1][i];
        EXPECT_EQ(std::memcmp(&got, &by_threads[0][i], sizeof(float)), 0) << log << " " << rows << " " << i;
        if (std::isnan(wv[i])) {
          EXPECT_TRUE(std::isnan(got)) << log << " " << rows << " " << i;
        } else if (std::isinf(wv[i])) {
          EXPECT_EQ(got, wv[i]) << log << " " << rows << " " << i;
        } else {
          EXPECT_NEAR(got, wv[i], 1e-6 + 1e-5 * std::fabs(wv[i])) << log << " " << rows << " " << i;
        }
      }
    }
  }
}

// An axis followed only by axes of size 1 is a contiguous row too: the fused gradient takes the
// axis's length, not the last dim's (1), as its row length. Checked against the rule in ops.
TEST(LinalgGradients, SoftmaxGradientAlongAnAxisFollowedBySizeOneAxes) {
  for (const auto &[dims, axis] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
           {{4, 1}, 0}, {{3, 5, 1, 1}, 1}, {{2, 3, 1}, -2}}) {
    const Tensor x = random_tensor(Shape(dims), 71, -3.0f, 3.0f);
    const Tensor dy = random_tensor(Shape(dims), 72);
    for (const bool log : {false, true}) {
      autodiff::Tape tape(false, false);
      tape.watch(x);
      const Tensor y = log ? ops::log_softmax(x, axis) : ops::softmax(x, axis);
      const Tensor got = tape.gradient(y, {x}, autodiff::Unconnected::kZero, dy)[0];
      const Tensor want = log ? ops::sub(dy, ops::mul(ops::exp(y), ops::sum(dy, {axis}, true)))
                              : ops::mul(ops::sub(dy, ops::sum(ops::mul(dy, y), {axis}, true)), y);
      const std::vector<float> gv = values(got), wv = values(want);
      for (size_t i = 0; i < wv.size(); ++i)
        EXPECT_NEAR(gv[i], wv[i], 1e-6 + 1e-5 * std::fabs(wv[i])) << log << " axis " << axis << " " << i;
    }
  }
}

TEST(LinalgGradients, BFloat16Matmul) {
  Tensor a = random_tensor({2, 3, 4}, 1), b = random_tensor({4, 5}, 2);
  Tensor ab = to_bf16(a), bb = to_bf16(b);
  autodiff::Tape tape(false, false);
  tape.watch(ab);
  tape.watch(bb);
  auto g = tape.gradient(ops::matmul(ab, bb), {ab, bb}, autodiff::Unconnected::kZero);
  ASSERT_EQ(g[0].dtype(), DType::kBFloat16);
  ASSERT_EQ(g[1].shape(), b.shape());
  // d sum(A·B)/dA = row sums of B broadcast; d/dB = column sums of A over the batch.
  auto bv = values(ops::cast(bb, DType::kFloat32)), av = values(ops::cast(ab, DType::kFloat32));
  for (int64_t i = 0; i < 24; ++i) {
    double want = 0;
    for (int j = 0; j < 5; ++j) want += bv[size_t((i % 4) * 5 + j)];
    EXPECT_NEAR(g[0].item_as_double(i), want, 1e-2 * (1 + std::fabs(want))) << i;
  }
  for (int64_t i = 0; i < 20; ++i) {
    double want = 0;
    for (int r = 0; r < 6; ++r) want += av[size_t(r * 4 + i / 5)];
    EXPECT_NEAR(g[1].item_as_double(i), want, 1e-2 * (1 + std::fabs(want))) << i;
  }
}

}  // namespace
}  // namespace kiln
