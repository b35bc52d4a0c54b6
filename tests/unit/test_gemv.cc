// The gemv kernel for products of a few rows (kernels/gemv.h), its memo of packed weights, and
// the Dense forward pass that uses them (ops::dense, with and without bfloat16 inference weights).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "autodiff/tape.h"
#include "autodiff/variable.h"
#include "core/storage.h"
#include "core/threads.h"
#include "kernels/gemv.h"
#include "kernels/simd.h"
#include "ops/dense_options.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using autodiff::Variable;
using kernels::GemvActivation;
using kernels::GemvWeights;
using kernels::PackedWeights;
using testing::random_tensor;
using testing::values;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using testing::same_bits;

std::vector<float> uniform(size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  return values<float>(random_tensor(Shape{static_cast<int64_t>(n)}, seed, lo, hi));
}

// w with each value rounded to bfloat16 (nearest even): what packed bfloat16 weights hold.
std::vector<float> bf16_rounded(const std::vector<float> &w) {
  std::vector<float> rounded(w.size());
  for (size_t i = 0; i < w.size(); ++i) rounded[i] = static_cast<float>(bfloat16(w[i]));
  return rounded;
}

// The documented result: fmas in k order from +0, + bias, relu as the relu kernel.
std::vector<float> reference(int64_t m, const std::vector<float> &x, const std::vector<float> &w, int64_t k,
                             int64_t n, const float *bias, bool relu) {
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s = std::fma(x[r * k + p], w[p * n + j], s);
      if (bias) s = s + bias[j];
      if (relu && s < 0.0f) s = 0.0f;
      y[r * n + j] = s;
    }
  return y;
}

struct Case {
  int64_t k, n;
};

// Odd sizes on both sides of the panel width and of the parallel threshold.
const std::vector<Case> kCases = {{1, 1}, {3, 5}, {17, 64}, {100, 130}, {256, 10}, {784, 512}, {300, 257}};

std::vector<float> run_gemv(int64_t m, const std::vector<float> &x, const std::vector<float> &w, int64_t k,
                            int64_t n, const float *bias, GemvActivation act,
                            const PackedWeights *packed = nullptr) {
  std::vector<float> y(static_cast<size_t>(m * n), 123.0f);
  if (packed)
    kernels::gemv(m, x.data(), *packed, bias, act, y.data());
  else
    kernels::gemv(m, x.data(), w.data(), k, n, bias, act, y.data());
  return y;
}

TEST(Gemv, EqualsTheFmaReferenceAndADoubleSumWithinRounding) {
  unsigned seed = 1;
  for (const Case &c : kCases)
    for (int64_t m = 1; m <= kernels::kGemvMaxRows; ++m) {
      SCOPED_TRACE(::testing::Message() << "m " << m << " k " << c.k << " n " << c.n);
      const auto x = uniform(static_cast<size_t>(m * c.k), seed++),
                 w = uniform(static_cast<size_t>(c.k * c.n), seed++);
      const auto b = uniform(static_cast<size_t>(c.n), seed++);
      for (bool relu : {false, true}) {
        const auto want = reference(m, x, w, c.k, c.n, b.data(), relu);
        const GemvActivation act = relu ? GemvActivation::kRelu : GemvActivation::kNone;
        EXPECT_TRUE(same_bits(run_gemv(m, x, w, c.k, c.n, b.data(), act), want));
        const auto packed = PackedWeights::pack(w.data(), c.k, c.n, GemvWeights::kFloat32);
        EXPECT_TRUE(same_bits(run_gemv(m, x, w, c.k, c.n, b.data(), act, packed.get()), want));
      }
      // Against a double sum: within fp32's rounding bound k * eps * sum |x w|.
      const auto y = run_gemv(m, x, w, c.k, c.n, nullptr, GemvActivation::kNone);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < c.n; ++j) {
          double s = 0.0, mag = 0.0;
          for (int64_t p = 0; p < c.k; ++p) {
            s += static_cast<double>(x[r * c.k + p]) * w[p * c.n + j];
            mag += std::fabs(static_cast<double>(x[r * c.k + p]) * w[p * c.n + j]);
          }
          EXPECT_NEAR(y[r * c.n + j], s, static_cast<double>(c.k) * 6e-8 * mag + 1e-30);
        }
    }
}

TEST(Gemv, SameBitsAtEveryThreadCountAndRowCount) {
  const int64_t k = 784, n = 512;
  const int64_t m = kernels::kGemvMaxRows;
  const auto x = uniform(m * k, 7), w = uniform(k * n, 8), b = uniform(n, 9);
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kFloat32);
  std::vector<float> want;
  for (int threads : {1, 2, 3}) {
    set_num_threads_for_this_thread(threads);
    const auto ym = run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get());
    if (want.empty()) want = ym;
    EXPECT_TRUE(same_bits(ym, want)) << threads << " threads";
    EXPECT_TRUE(same_bits(run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu), want)) << threads;
    // Each row alone gives that row's bits.
    for (int64_t r = 0; r < m; ++r) {
      const std::vector<float> xr(x.begin() + r * k, x.begin() + (r + 1) * k);
      const auto yr = run_gemv(1, xr, w, k, n, b.data(), GemvActivation::kRelu, packed.get());
      EXPECT_TRUE(same_bits(yr, std::vector<float>(want.begin() + r * n, want.begin() + (r + 1) * n))) << r;
    }
  }
  set_num_threads_for_this_thread(0);
}

// A packed product large enough to split times both ways in rounds and then keeps the faster
// (PackedWeights::SplitTuning): every call along the way, through the first round's choice and
// into the next round, has the bits of the single-threaded call, in every format.
TEST(Gemv, PackedProductsChooseWhetherToSplitAndKeepTheirBits) {
  const int64_t k = 256, n = 256;  // 4 panels, kGemvMinSplitWork multiply-adds at one row
  ASSERT_GE(k * n, kernels::kGemvMinSplitWork);
  const auto x = uniform(k, 31), w = uniform(k * n, 32), b = uniform(n, 33);
  for (GemvWeights format : {GemvWeights::kFloat32, GemvWeights::kBFloat16, GemvWeights::kInt8}) {
    SCOPED_TRACE(static_cast<int>(format));
    const auto packed = PackedWeights::pack(w.data(), k, n, format);
    set_num_threads_for_this_thread(1);
    const auto want = run_gemv(1, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get());
    set_num_threads_for_this_thread(2);
    EXPECT_EQ(packed->split_tuning(1).choice.load(), -1);
    // Past the warm-up calls and the first round's trials, and (float32) into the second round.
    const int calls = format == GemvWeights::kFloat32 ? 8400 : 400;
    int wrong = 0;
    for (int c = 0; c < calls; ++c)
      wrong += !same_bits(run_gemv(1, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get()), want);
    EXPECT_EQ(wrong, 0) << "of " << calls << " calls";
    const int choice = packed->split_tuning(1).choice.load();
    EXPECT_TRUE(choice == 0 || choice == 1) << choice;
    EXPECT_EQ(packed->split_tuning(1).calls.load(), calls);
    // Other row counts tune on their own; a product below kGemvMinSplitWork never counts a call.
    EXPECT_EQ(packed->split_tuning(2).calls.load(), 0);
    const auto small = PackedWeights::pack(w.data(), k, 128, format);
    run_gemv(1, x, w, k, 128, b.data(), GemvActivation::kRelu, small.get());
    EXPECT_EQ(small->split_tuning(1).calls.load(), 0);
  }
  set_num_threads_for_this_thread(0);
}

// Packed float32 and bfloat16 calls sweep each thread's panels first to last, then last to first
// on the next call (PackedWeights::sweep_backward): both directions, at panel counts whose shares
// end in a narrower group or a last panel partly padding, on 1 to 3 threads and at every row
// count, give the documented bits.
TEST(Gemv, PackedCallsSweepBothWaysWithTheSameBits) {
  const int64_t k = 300;
  unsigned seed = 40;
  // Drops leave the last panel 64, 61, 40, 24, 17, 14 and 1 live columns: each width of LiveBlock.
  for (int64_t panels : {1, 2, 3, 5, 7, 11})
    for (int64_t drop : {0, 3, 24, 40, 47, 50, 63}) {
      const int64_t n = panels * kernels::kGemvPanel - drop;
      const auto w = uniform(static_cast<size_t>(k * n), seed++), b = uniform(static_cast<size_t>(n), seed++);
      const std::vector<float> rounded = bf16_rounded(w);
      for (GemvWeights format : {GemvWeights::kFloat32, GemvWeights::kBFloat16}) {
        const auto packed = PackedWeights::pack(w.data(), k, n, format);
        const std::vector<float> &wv = format == GemvWeights::kFloat32 ? w : rounded;
        for (int64_t m : {int64_t{1}, int64_t{2}, int64_t{3}, kernels::kGemvMaxRows}) {
          const auto x = uniform(static_cast<size_t>(m * k), seed++);
          const auto want = reference(m, x, wv, k, n, b.data(), true);
          for (int threads : {1, 2, 3}) {
            set_num_threads_for_this_thread(threads);
            for (int call = 0; call < 4; ++call)  // both directions, twice
              EXPECT_TRUE(
                  same_bits(run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get()), want))
                  << panels << " panels less " << drop << ", format " << static_cast<int>(format) << ", m "
                  << m << ", " << threads << " threads, call " << call;
          }
        }
        // The direction alternates from call to call.
        const bool first = packed->sweep_backward();
        EXPECT_NE(packed->sweep_backward(), first);
        EXPECT_EQ(packed->sweep_backward(), first);
      }
    }
  set_num_threads_for_this_thread(0);
}

// x with about half its values zero (+0 and -0) in every row, a NaN kept among the others.
std::vector<float> half_zeros(int64_t m, int64_t k, unsigned seed) {
  auto x = uniform(static_cast<size_t>(m * k), seed);
  const auto pick = uniform(static_cast<size_t>(k), seed + 1);
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t r = 0; r < m; ++r)
      // Rows of k zero in every row; in the others, some rows zero (that k is still summed).
      if (pick[kk] < 0.0f || (r % 2 == 1 && pick[kk] > 0.6f)) x[r * k + kk] = kk % 3 == 0 ? -0.0f : 0.0f;
  return x;
}

// Packed finite weights leave out the rows where x is zero in every row; every result is still the
// plain sum's. Columns built so that leaving rows out would flip the sign of a zero sum if sums
// started from -0 (products -0 where x is not zero, +0 where it is) show the +0 of the whole sum,
// with and without ReLU.
TEST(Gemv, RowsWhereXIsZeroGiveThePlainSumsBits) {
  unsigned seed = 70;
  for (int64_t k : {int64_t{5}, int64_t{300}, int64_t{784}, int64_t{4100}}) {  // 4100: beyond the row list
    const int64_t n = 140;
    for (int64_t m : {int64_t{1}, int64_t{2}, int64_t{3}, kernels::kGemvMaxRows}) {
      SCOPED_TRACE(::testing::Message() << "k " << k << ", m " << m);
      auto x = half_zeros(m, k, seed++);
      if (k > 20 && m > 1) x[(m - 1) * k + 7] = kNaN;  // the last row all NaN; row 0 checked below
      auto w = uniform(static_cast<size_t>(k * n), seed++);
      const auto b = uniform(static_cast<size_t>(n), seed++);
      for (int64_t kk = 0; kk < k; ++kk) {
        bool zero = true;
        for (int64_t r = 0; r < m; ++r) zero = zero && x[r * k + kk] == 0.0f;
        w[kk * n + 3] = zero ? 1.0f : -0.0f;  // column 3: the plain sum +0 (x >= 0 there), without them -0
      }
      for (int64_t r = 0; r < m; ++r)
        for (int64_t kk = 0; kk < k; ++kk)
          if (x[r * k + kk] != 0.0f && !std::isnan(x[r * k + kk])) x[r * k + kk] = std::fabs(x[r * k + kk]);
      const std::vector<float> rounded = bf16_rounded(w);
      for (GemvWeights format : {GemvWeights::kFloat32, GemvWeights::kBFloat16}) {
        const auto packed = PackedWeights::pack(w.data(), k, n, format);
        EXPECT_TRUE(packed->finite());
        const std::vector<float> &wv = format == GemvWeights::kFloat32 ? w : rounded;
        for (int threads : {1, 2}) {
          set_num_threads_for_this_thread(threads);
          for (int call = 0; call < 2; ++call) {
            // ReLU with and without a bias, and no activation (no bias: column 3's zero shows).
            for (int variant = 0; variant < 3; ++variant) {
              const bool relu = variant < 2;
              const float *bias = variant == 0 ? b.data() : nullptr;
              const auto act = relu ? GemvActivation::kRelu : GemvActivation::kNone;
              const auto want = reference(m, x, wv, k, n, bias, relu);
              const auto y = run_gemv(m, x, w, k, n, bias, act, packed.get());
              EXPECT_TRUE(same_bits(y, want))
                  << "format " << static_cast<int>(format) << ", variant " << variant;
              if (bias) continue;
              EXPECT_EQ(y[3], 0.0f);
              EXPECT_FALSE(std::signbit(y[3])) << "variant " << variant;
            }
          }
        }
      }
    }
  }
  set_num_threads_for_this_thread(0);
}

// The rows left out are not read: packed weights poisoned with NaN after packing, in the rows
// where x is zero, leave the result as it was when at least an eighth of x is zero, and turn it
// to NaN when fewer are (every row is then summed), with ReLU or none.
TEST(Gemv, RowsWhereXIsZeroAreNotRead) {
  const int64_t k = 256, n = 100;
  const auto w = uniform(static_cast<size_t>(k * n), 90), b = uniform(static_cast<size_t>(n), 91);
  for (GemvWeights format : {GemvWeights::kFloat32, GemvWeights::kBFloat16}) {
    for (int64_t zeros : {k / 2, k / 8, k / 8 - 1}) {
      SCOPED_TRACE(::testing::Message() << "format " << static_cast<int>(format) << ", zeros " << zeros);
      auto x = uniform(static_cast<size_t>(k), 92, 0.5f, 1.0f);
      for (int64_t i = 0; i < zeros; ++i) x[static_cast<size_t>(i * 7 % k)] = 0.0f;
      const auto packed = PackedWeights::pack(w.data(), k, n, format);
      const auto clean = run_gemv(1, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get());
      // Poison every panel's rows where x is zero (the panels are [k][kGemvPanel]).
      const int64_t panels = (n + kernels::kGemvPanel - 1) / kernels::kGemvPanel;
      for (int64_t q = 0; q < panels; ++q)
        for (int64_t kk = 0; kk < k; ++kk) {
          if (x[static_cast<size_t>(kk)] != 0.0f) continue;
          const int64_t at = (q * k + kk) * kernels::kGemvPanel;
          for (int64_t c = 0; c < kernels::kGemvPanel; ++c) {
            if (format == GemvWeights::kFloat32)
              const_cast<float *>(static_cast<const float *>(packed->data()))[at + c] = kNaN;
            else
              const_cast<uint16_t *>(static_cast<const uint16_t *>(packed->data()))[at + c] = 0x7FC0;
          }
        }
      for (int threads : {1, 2}) {
        set_num_threads_for_this_thread(threads);
        const auto y = run_gemv(1, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get());
        if (zeros * 8 >= k) {
          EXPECT_TRUE(same_bits(y, clean)) << threads << " threads";
        } else {
          for (float v : y) EXPECT_TRUE(std::isnan(v)) << threads << " threads";
        }
        // Without an activation too: a zero adds nothing to a sum from +0.
        const auto linear = run_gemv(1, x, w, k, n, b.data(), GemvActivation::kNone, packed.get());
        for (float v : linear) EXPECT_EQ(std::isnan(v), zeros * 8 < k) << threads << " threads";
      }
    }
  }
  set_num_threads_for_this_thread(0);
}

// Every compiled SIMD target (the AVX2 and SSE fallbacks included) lists the same rows and gives
// the same bits: x half zeros (so the row list is used), a NaN kept, k not a whole number of
// vectors (the list's scalar tail).
TEST(Gemv, RowsWhereXIsZeroGiveTheSameBitsOnEveryTarget) {
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  ASSERT_FALSE(targets.empty());
  const int64_t k = 301, n = 130;
  const auto w = uniform(static_cast<size_t>(k * n), 81), b = uniform(static_cast<size_t>(n), 82);
  const std::vector<float> rounded = bf16_rounded(w);
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kFloat32);
  const auto packed_bf16 = PackedWeights::pack(w.data(), k, n, GemvWeights::kBFloat16);
  for (int64_t m : {int64_t{1}, int64_t{3}})
    for (int64_t nan_at : {int64_t{5}, k - 2}) {  // a NaN in the last row: in a vector, in the tail
      auto x = half_zeros(m, k, 80);
      for (int64_t r = 0; r < m; ++r) x[static_cast<size_t>(r * k + nan_at)] = 0.0f;  // a row of zeros
      x[static_cast<size_t>((m - 1) * k + nan_at)] = kNaN;                            // but for the NaN
      const auto want = reference(m, x, w, k, n, b.data(), true);
      const auto want_bf16 = reference(m, x, rounded, k, n, b.data(), true);
      for (int64_t target : targets) {
        kernels::simd::force_target(target);
        SCOPED_TRACE(::testing::Message()
                     << kernels::simd::target_name(target) << ", m " << m << ", NaN at " << nan_at);
        for (int threads : {1, 2}) {
          set_num_threads_for_this_thread(threads);
          EXPECT_TRUE(
              same_bits(run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get()), want));
          EXPECT_TRUE(same_bits(run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed_bf16.get()),
                                want_bf16));
        }
      }
      kernels::simd::force_target(0);
    }
  set_num_threads_for_this_thread(0);
}

// Weights that are not finite (or a bfloat16 rounding that overflows to inf) are never left out:
// a zero x times inf is NaN in the plain sum.
TEST(Gemv, NonFiniteWeightsAreSummedWhereXIsZero) {
  const int64_t k = 64, n = 70;
  std::vector<float> x(k, 1.0f), w(k * n, 0.25f);
  for (int64_t kk = 0; kk < k; kk += 2) x[kk] = 0.0f;
  w[4 * n + 5] = kInf;                               // x[4] = 0: column 5 NaN
  w[6 * n + 9] = std::numeric_limits<float>::max();  // finite, but inf in bfloat16: column 9 NaN there
  const auto want = reference(1, x, w, k, n, nullptr, true);
  EXPECT_TRUE(std::isnan(want[5]));
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kFloat32);
  EXPECT_FALSE(packed->finite());
  EXPECT_TRUE(same_bits(run_gemv(1, x, w, k, n, nullptr, GemvActivation::kRelu, packed.get()), want));
  w[4 * n + 5] = 0.25f;
  const std::vector<float> rounded = bf16_rounded(w);
  const auto packed_bf16 = PackedWeights::pack(w.data(), k, n, GemvWeights::kBFloat16);
  EXPECT_FALSE(packed_bf16->finite());
  EXPECT_TRUE(PackedWeights::pack(w.data(), k, n, GemvWeights::kFloat32)->finite());
  const auto y = run_gemv(1, x, w, k, n, nullptr, GemvActivation::kRelu, packed_bf16.get());
  EXPECT_TRUE(same_bits(y, reference(1, x, rounded, k, n, nullptr, true)));
  EXPECT_TRUE(std::isnan(y[9]));
}

TEST(Gemv, NanInfAndSignedZeroPropagateAsAPlainSum) {
  const int64_t k = 70, n = 70;
  std::vector<float> x(2 * k, 1.0f), w(k * n, 0.5f);
  x[3] = kNaN;          // row 0: every column NaN
  w[5 * n + 2] = kInf;  // column 2: +inf in row 1 (x = 1)
  w[6 * n + 4] = kInf;  // column 4: inf - inf = NaN
  w[7 * n + 4] = -kInf;
  for (int64_t p = 0; p < k; ++p) w[p * n + 9] = -0.0f;  // column 9: products +1 * -0 = -0: sum +0
  const auto y = run_gemv(2, x, w, k, n, nullptr, GemvActivation::kNone);
  for (int64_t j = 0; j < n; ++j) EXPECT_TRUE(std::isnan(y[j])) << j;
  EXPECT_EQ(y[n + 2], kInf);
  EXPECT_TRUE(std::isnan(y[n + 4]));
  // A sum starts from +0, as oneDNN's and TF's matmuls do: -0 products sum to +0.
  EXPECT_EQ(y[n + 9], 0.0f);
  EXPECT_FALSE(std::signbit(y[n + 9]));
  EXPECT_TRUE(same_bits(y, reference(2, x, w, k, n, nullptr, false)));
  // relu: NaN stays NaN; -inf becomes +0.
  const auto y0 = run_gemv(2, x, w, k, n, nullptr, GemvActivation::kRelu);
  EXPECT_TRUE(same_bits(y0, reference(2, x, w, k, n, nullptr, true)));
  EXPECT_TRUE(std::isnan(y0[0]));
  EXPECT_FALSE(std::signbit(y0[n + 9]));
  const std::vector<float> bias(n, -kInf);
  const auto yr = run_gemv(2, x, w, k, n, bias.data(), GemvActivation::kRelu);
  EXPECT_TRUE(same_bits(yr, reference(2, x, w, k, n, bias.data(), true)));
  EXPECT_TRUE(std::isnan(yr[0]));
  EXPECT_EQ(yr[n + 9], 0.0f);
  EXPECT_FALSE(std::signbit(yr[n + 9]));
  // The same through the packed weights.
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kFloat32);
  EXPECT_TRUE(same_bits(run_gemv(2, x, w, k, n, nullptr, GemvActivation::kNone, packed.get()), y));
}

TEST(Gemv, EveryCompiledTargetGivesTheSameBits) {
  const int64_t m = 3, k = 300;
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  ASSERT_FALSE(targets.empty());
  // Last panels of 1, 9, 40 and 56 live columns, whatever the target's vector width.
  for (int64_t n : {257, 201, 232, 248}) {
    SCOPED_TRACE(n);
    const auto x = uniform(m * k, 11), w = uniform(k * n, 12), b = uniform(n, 13);
    const auto want = reference(m, x, w, k, n, b.data(), true);
    const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kFloat32);
    const auto packed_bf16 = PackedWeights::pack(w.data(), k, n, GemvWeights::kBFloat16);
    const auto want_bf16 = run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed_bf16.get());
    for (int64_t target : targets) {
      kernels::simd::force_target(target);
      SCOPED_TRACE(kernels::simd::target_name(target));
      for (int64_t rows = 1; rows <= m; ++rows) {
        const std::vector<float> xr(x.begin(), x.begin() + rows * k);
        const std::vector<float> wr(want.begin(), want.begin() + rows * n);
        EXPECT_TRUE(same_bits(run_gemv(rows, xr, w, k, n, b.data(), GemvActivation::kRelu), wr)) << rows;
        EXPECT_TRUE(
            same_bits(run_gemv(rows, xr, w, k, n, b.data(), GemvActivation::kRelu, packed.get()), wr));
      }
      EXPECT_TRUE(
          same_bits(run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed_bf16.get()), want_bf16));
    }
    kernels::simd::force_target(0);
  }
}

TEST(Gemv, Bfloat16WeightsAreTheFloat32ProductOfTheRoundedWeights) {
  const int64_t m = 2, k = 784, n = 130;
  const auto x = uniform(m * k, 21, 0.0f, 1.0f), w = uniform(k * n, 22, 0.0f, 1.0f);
  const std::vector<float> rounded = bf16_rounded(w);
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kBFloat16);
  EXPECT_EQ(packed->bytes(), 3 * k * kernels::kGemvPanel * 2);
  const auto y = run_gemv(m, x, w, k, n, nullptr, GemvActivation::kNone, packed.get());
  EXPECT_TRUE(same_bits(y, reference(m, x, rounded, k, n, nullptr, false)));
  // Positive terms: within bfloat16's rounding (2^-9 relative) of the float32 product.
  const auto y32 = run_gemv(m, x, w, k, n, nullptr, GemvActivation::kNone);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], y32[i], std::ldexp(y32[i], -8)) << i;
}

// ---- int8 weights ----

// The documented int8 result, computed independently: columns quantized in double, the row by
// a float32 multiply rounded to nearest even, exact integer runs of kGemvInt8ChunkK converted and
// added in order, * s_j * t, + bias, relu. Rows with NaN or inf: float32 fmas against the
// dequantized weights.
std::vector<float> int8_reference(int64_t m, const std::vector<float> &x, const std::vector<float> &w,
                                  int64_t k, int64_t n, const float *bias, bool relu) {
  std::vector<int> wq(static_cast<size_t>(k * n));
  std::vector<float> s(static_cast<size_t>(n), 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    float a = 0.0f;
    for (int64_t p = 0; p < k; ++p) a = std::max(a, std::fabs(w[p * n + j]));
    if (a > 0.0f) s[j] = static_cast<float>(static_cast<double>(a) / 127.0);
    for (int64_t p = 0; p < k; ++p)
      wq[p * n + j] = a > 0.0f ? static_cast<int>(std::nearbyint(static_cast<double>(w[p * n + j]) * 127.0 /
                                                                 static_cast<double>(a)))
                               : 0;
  }
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r) {
    const float *xr = x.data() + r * k;
    bool finite = true;
    float a = 0.0f;
    for (int64_t p = 0; p < k; ++p) {
      finite = finite && std::isfinite(xr[p]);
      a = std::max(a, std::fabs(xr[p]));
    }
    std::vector<int> xq(static_cast<size_t>(k), 0);
    const float t = a > 0.0f && finite ? static_cast<float>(static_cast<double>(a) / 32767.0) : 0.0f;
    if (a > 0.0f && finite) {
      const double inv = 32767.0 / static_cast<double>(a);
      for (int64_t p = 0; p < k; ++p)
        xq[p] = inv <= std::numeric_limits<float>::max()
                    ? static_cast<int>(std::nearbyint(xr[p] * static_cast<float>(inv)))
                    : static_cast<int>(std::nearbyint(static_cast<double>(xr[p]) * inv));
    }
    for (int64_t j = 0; j < n; ++j) {
      float z;
      if (finite) {
        z = 0.0f;
        for (int64_t c = 0; c < k; c += kernels::kGemvInt8ChunkK) {
          int64_t run = 0;
          for (int64_t p = c; p < std::min(k, c + kernels::kGemvInt8ChunkK); ++p)
            run += int64_t{xq[p]} * wq[p * n + j];
          EXPECT_LT(std::llabs(run), int64_t{1} << 31);
          z = z + static_cast<float>(run);
        }
        z = z * s[j] * t;
      } else {
        z = 0.0f;
        for (int64_t p = 0; p < k; ++p) z = std::fma(xr[p], static_cast<float>(wq[p * n + j]) * s[j], z);
      }
      if (bias) z = z + bias[j];
      if (relu && z < 0.0f) z = 0.0f;
      y[r * n + j] = z;
    }
  }
  return y;
}

TEST(GemvInt8, EqualsItsDefinitionAndTheFloat32ProductWithinTheQuantizationBound) {
  // Odd K, K across the int32 run length (512, 1300), columns past a panel.
  for (const Case c :
       {Case{1, 1}, Case{3, 5}, Case{17, 64}, Case{300, 257}, Case{784, 512}, Case{1300, 70}}) {
    const int64_t m = 3, k = c.k, n = c.n;
    SCOPED_TRACE(::testing::Message() << k << " x " << n);
    const auto x = uniform(m * k, 41, -2.0f, 3.0f), w = uniform(k * n, 42, -0.3f, 0.2f), b = uniform(n, 43);
    const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kInt8);
    ASSERT_EQ(packed->format(), GemvWeights::kInt8);
    const int64_t panels = (n + kernels::kGemvPanel - 1) / kernels::kGemvPanel;
    const int64_t runs = (k + kernels::kGemvInt8ChunkK - 1) / kernels::kGemvInt8ChunkK;
    EXPECT_EQ(packed->bytes(), (panels * ((k + 3) / 4) * kernels::kGemvPanel * 4 + 63) / 64 * 64 +
                                   (1 + runs) * panels * kernels::kGemvPanel * 4);
    for (const GemvActivation act : {GemvActivation::kNone, GemvActivation::kRelu}) {
      const bool relu = act == GemvActivation::kRelu;
      const auto y = run_gemv(m, x, w, k, n, b.data(), act, packed.get());
      EXPECT_TRUE(same_bits(y, int8_reference(m, x, w, k, n, b.data(), relu)));
      if (relu) continue;
      // Within sum_k (|x| s_j + t |w|) / 2 (+ float32 rounding) of the exact product.
      for (int64_t r = 0; r < m; ++r) {
        double t = 0.0;
        for (int64_t p = 0; p < k; ++p) t = std::max(t, std::fabs(double{x[r * k + p]}) / 32767.0);
        for (int64_t j = 0; j < n; ++j) {
          double exact = b[j], s = 0.0, bound = 0.0, mag = 0.0;
          for (int64_t p = 0; p < k; ++p) s = std::max(s, std::fabs(double{w[p * n + j]}) / 127.0);
          for (int64_t p = 0; p < k; ++p) {
            const double xv = x[r * k + p], wv = w[p * n + j];
            exact += xv * wv;
            bound += (std::fabs(xv) * s + t * std::fabs(wv) + s * t / 2) / 2;
            mag += std::fabs(xv * wv);
          }
          EXPECT_NEAR(y[r * n + j], exact, bound + 1e-5 * (mag + std::fabs(b[j]))) << r << ", " << j;
        }
      }
    }
  }
}

TEST(GemvInt8, SameBitsAtEveryThreadCountRowCountAndTarget) {
  const int64_t m = kernels::kGemvMaxRows, k = 1031, n = 1100;  // above the parallel threshold
  const auto x = uniform(m * k, 51), w = uniform(k * n, 52), b = uniform(n, 53);
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kInt8);
  const auto want = int8_reference(m, x, w, k, n, b.data(), true);
  for (int threads : {1, 2, 3}) {
    set_num_threads_for_this_thread(threads);
    EXPECT_TRUE(same_bits(run_gemv(m, x, w, k, n, b.data(), GemvActivation::kRelu, packed.get()), want))
        << threads << " threads";
  }
  set_num_threads_for_this_thread(0);
  // A row's result depends on that row alone, on every compiled instruction set, with and
  // without VNNI (where the CPU has it).
  for (const bool vnni : {true, false}) {
    kernels::set_gemv_int8_vnni(vnni);
    for (int64_t target : kernels::simd::available_targets()) {
      kernels::simd::force_target(target);
      SCOPED_TRACE(::testing::Message() << kernels::simd::target_name(target) << (vnni ? "" : ", no VNNI"));
      for (int64_t rows = 1; rows <= m; ++rows) {
        const std::vector<float> xr(x.begin() + (m - rows) * k, x.end());
        const std::vector<float> wr(want.begin() + (m - rows) * n, want.end());
        EXPECT_TRUE(same_bits(run_gemv(rows, xr, w, k, n, b.data(), GemvActivation::kRelu, packed.get()), wr))
            << rows;
      }
    }
  }
  kernels::set_gemv_int8_vnni(true);
  kernels::simd::force_target(0);
}

TEST(GemvInt8, SpecialValues) {
  const int64_t k = 70, n = 70;
  std::vector<float> x(5 * k, 0.5f), w = uniform(k * n, 61);
  x[3] = kNaN;                                              // row 0: NaN everywhere
  x[k + 4] = kInf;                                          // row 1: inf against the quantized weights
  std::fill(x.begin() + 2 * k, x.begin() + 3 * k, 0.0f);    // row 2: zero: the bias
  std::fill(x.begin() + 3 * k, x.begin() + 4 * k, 1e-40f);  // row 3: denormal (scale inverse past float)
  for (int64_t p = 0; p < k; ++p) x[4 * k + p] = p % 2 ? -3e38f : 3e38f;  // row 4: near float's limit
  for (int64_t p = 0; p < k; ++p) w[p * n + 7] = 0.0f;                    // a zero column
  const auto b = uniform(n, 62);
  const auto packed = PackedWeights::pack(w.data(), k, n, GemvWeights::kInt8);
  const auto y = run_gemv(5, x, w, k, n, b.data(), GemvActivation::kNone, packed.get());
  EXPECT_TRUE(same_bits(y, int8_reference(5, x, w, k, n, b.data(), false)));
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_TRUE(std::isnan(y[j])) << j;
    EXPECT_FALSE(std::isfinite(y[n + j])) << j;  // inf, or NaN where a weight quantized to 0
    EXPECT_EQ(y[2 * n + j], b[j]) << j;
    EXPECT_NEAR(y[3 * n + j], b[j], 1e-6) << j;
  }
  // A kernel holding NaN or inf is packed in float32: the plain product's bits.
  w[9 * n + 3] = kInf;
  const auto as_float = PackedWeights::pack(w.data(), k, n, GemvWeights::kInt8);
  EXPECT_EQ(as_float->format(), GemvWeights::kFloat32);
  EXPECT_TRUE(same_bits(run_gemv(2, x, w, k, n, nullptr, GemvActivation::kNone, as_float.get()),
                        reference(2, x, w, k, n, nullptr, false)));
}

// ---- the memo, through ops::dense ----

TEST(GemvMemo, PacksOnceAndRepacksAfterAnAssign) {
  kernels::packed_weight_clear();
  const Tensor x = random_tensor(Shape{1, 300}, 31), b = random_tensor(Shape{200}, 32);
  Variable kernel("kernel", random_tensor(Shape{300, 200}, 33), true);
  const uint64_t id = kernel.peek().storage()->id();
  auto dense = [&] { return ops::dense(x, kernel.peek(), b, ops::DenseActivation::kRelu); };
  auto composed = [&] { return ops::relu(ops::bias_add(ops::matmul(x, kernel.peek()), b)); };
  const Tensor y0 = dense();
  EXPECT_TRUE(same_bits(y0, composed()));
  kernels::PackedWeightStats s = kernels::packed_weight_stats();
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.entries, 1);
  EXPECT_GE(s.bytes, 300 * 200 * 4);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(dense(), y0));
  EXPECT_EQ(kernels::packed_weight_stats().hits, 3);
  kernel.assign_add(random_tensor(Shape{300, 200}, 34));  // in place: same storage, new version
  ASSERT_EQ(kernel.peek().storage()->id(), id);
  const Tensor y1 = dense();
  EXPECT_FALSE(same_bits(y1, y0));
  EXPECT_TRUE(same_bits(y1, composed()));
  s = kernels::packed_weight_stats();
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.entries, 1);  // the stale packing was replaced
}

TEST(GemvMemo, EntriesGoWithTheirStorage) {
  kernels::packed_weight_clear();
  const Tensor x = random_tensor(Shape{2, 64}, 41);
  {
    const Tensor w = random_tensor(Shape{64, 100}, 42);
    (void)ops::dense(x, w, Tensor());
    ops::DenseOptions bf16;
    bf16.inference_weights = GemvWeights::kBFloat16;
    (void)ops::dense(x, w, Tensor(), ops::DenseActivation::kLinear, 0.0f, bf16);
    EXPECT_EQ(kernels::packed_weight_stats().entries, 2);
  }
  EXPECT_EQ(kernels::packed_weight_stats().entries, 0);
  EXPECT_EQ(kernels::packed_weight_stats().bytes, 0);
}

TEST(GemvMemo, AdoptedWeightsAreNotCached) {
  kernels::packed_weight_clear();
  const Tensor x = random_tensor(Shape{1, 50}, 51), w = random_tensor(Shape{50, 70}, 52);
  std::vector<float> user(static_cast<size_t>(w.num_elements()));
  std::memcpy(user.data(), w.raw_data(), w.byte_size());
  const Tensor adopted = Tensor::from_storage(DType::kFloat32, w.shape(),
                                              Storage::adopt(user.data(), w.byte_size(), nullptr, nullptr));
  ops::DenseOptions bf16;
  bf16.inference_weights = GemvWeights::kBFloat16;
  EXPECT_TRUE(same_bits(ops::dense(x, adopted, Tensor()), ops::matmul(x, w)));
  // bfloat16 is not taken for an adopted buffer either: the float32 product runs.
  EXPECT_TRUE(same_bits(ops::dense(x, adopted, Tensor(), ops::DenseActivation::kLinear, 0.0f, bf16),
                        ops::matmul(x, w)));
  for (float &u : user) u *= 2;  // the owner writes behind kiln's back: read again
  EXPECT_TRUE(
      same_bits(ops::dense(x, adopted, Tensor()), ops::matmul(x, ops::mul(w, ops::fill(Shape{}, 2)))));
  EXPECT_EQ(kernels::packed_weight_stats().entries, 0);
  EXPECT_EQ(kernels::packed_weight_stats().misses, 0);
}

TEST(GemvMemo, DenseHasTheBitsOfTheCompositionOnBothSidesOfTheRowThreshold) {
  const int64_t k = 200, n = 90;
  Variable kernel("kernel", random_tensor(Shape{k, n}, 61), true);
  const Tensor b = random_tensor(Shape{n}, 62);
  for (int64_t m : {int64_t{1}, int64_t{3}, kernels::kGemvMaxRows, kernels::kGemvMaxRows + 1, int64_t{9}}) {
    SCOPED_TRACE(m);
    const Tensor x = random_tensor(Shape{m, k}, 63);
    const Tensor want = ops::relu(ops::bias_add(ops::matmul(x, kernel.peek()), b));
    EXPECT_TRUE(same_bits(ops::dense(x, kernel.peek(), b, ops::DenseActivation::kRelu), want));
    const Tensor gelu_want = ops::gelu(ops::bias_add(ops::matmul(x, kernel.peek()), b), false);
    EXPECT_TRUE(same_bits(ops::dense(x, kernel.peek(), b, ops::DenseActivation::kGelu), gelu_want));
    // Recorded by a tape (the kernel read in place): the same bits.
    autodiff::Tape tape(false, false);
    tape.watch(x);
    EXPECT_TRUE(same_bits(ops::dense(x, kernel.peek(), b, ops::DenseActivation::kRelu), want));
    // Against a double-accumulated reference (both paths, including oneDNN's above the threshold).
    const std::vector<float> xv = values<float>(x), wv = values<float>(kernel.peek()), bv = values<float>(b);
    const std::vector<float> y = values<float>(want);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double s = bv[j], mag = std::fabs(bv[j]);
        for (int64_t p = 0; p < k; ++p) {
          s += static_cast<double>(xv[r * k + p]) * wv[p * n + j];
          mag += std::fabs(static_cast<double>(xv[r * k + p]) * wv[p * n + j]);
        }
        EXPECT_NEAR(y[r * n + j], std::max(s, 0.0), static_cast<double>(k) * 6e-8 * mag);
      }
  }
}

TEST(GemvMemo, Bfloat16OnlyWhenAskedAndOnlyForFewRowsWithoutATape) {
  const int64_t k = 300, n = 100;
  Variable kernel("kernel", random_tensor(Shape{k, n}, 71), true);
  ops::DenseOptions bf16;
  bf16.inference_weights = GemvWeights::kBFloat16;
  const Tensor x1 = random_tensor(Shape{1, k}, 72),
               x9 = random_tensor(Shape{kernels::kGemvMaxRows + 1, k}, 73);
  const Tensor y32 = ops::dense(x1, kernel.peek(), Tensor());
  const Tensor y16 = ops::dense(x1, kernel.peek(), Tensor(), ops::DenseActivation::kLinear, 0.0f, bf16);
  EXPECT_FALSE(same_bits(y16, y32));
  const std::vector<float> a = values<float>(y16), c = values<float>(y32);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], 0.05) << i;  // |x|, |w| <= 1, k = 300
  // More rows than the gemv kernel takes: the float32 product.
  EXPECT_TRUE(same_bits(ops::dense(x9, kernel.peek(), Tensor(), ops::DenseActivation::kLinear, 0.0f, bf16),
                        ops::dense(x9, kernel.peek(), Tensor())));
  // Under a tape recording the call: the float32 product.
  autodiff::Tape tape(false, false);
  tape.watch(x1);
  EXPECT_TRUE(
      same_bits(ops::dense(x1, kernel.peek(), Tensor(), ops::DenseActivation::kLinear, 0.0f, bf16), y32));
}

TEST(GemvMemo, Int8OnlyWhenAskedAndOnlyForFewRowsWithoutATape) {
  const int64_t k = 300, n = 100;
  Variable kernel("kernel", random_tensor(Shape{k, n}, 74), true);
  const Tensor bias = random_tensor(Shape{n}, 75);
  ops::DenseOptions int8;
  int8.inference_weights = GemvWeights::kInt8;
  const Tensor x3 = random_tensor(Shape{3, k}, 76),
               x9 = random_tensor(Shape{kernels::kGemvMaxRows + 1, k}, 77);
  const Tensor y = ops::dense(x3, kernel.peek(), bias, ops::DenseActivation::kRelu, 0.0f, int8);
  const std::vector<float> xv = values<float>(x3), kv = values<float>(kernel.peek()),
                           bv = values<float>(bias);
  EXPECT_TRUE(same_bits(values<float>(y), int8_reference(3, xv, kv, k, n, bv.data(), true)));
  // Packed once: a second call hits the memo; an assign repacks.
  const auto before = kernels::packed_weight_stats();
  EXPECT_TRUE(same_bits(ops::dense(x3, kernel.peek(), bias, ops::DenseActivation::kRelu, 0.0f, int8), y));
  EXPECT_EQ(kernels::packed_weight_stats().hits, before.hits + 1);
  // More rows than the gemv kernel takes, or a tape recording the call: the float32 product.
  EXPECT_TRUE(same_bits(ops::dense(x9, kernel.peek(), bias, ops::DenseActivation::kRelu, 0.0f, int8),
                        ops::dense(x9, kernel.peek(), bias, ops::DenseActivation::kRelu)));
  autodiff::Tape tape(false, false);
  tape.watch(x3);
  EXPECT_TRUE(same_bits(ops::dense(x3, kernel.peek(), bias, ops::DenseActivation::kRelu, 0.0f, int8),
                        ops::dense(x3, kernel.peek(), bias, ops::DenseActivation::kRelu)));
}

TEST(GemvMemo, ThreadsSharingAKernelGetTheSameBits) {
  kernels::packed_weight_clear();
  const Tensor x = random_tensor(Shape{1, 784}, 81), b = random_tensor(Shape{512}, 82);
  Variable kernel("kernel", random_tensor(Shape{784, 512}, 83), true);
  const Tensor want = ops::dense(x, kernel.peek(), b, ops::DenseActivation::kRelu);
  kernels::packed_weight_clear();
  testing::expect_same_bits_from_threads(
      [&] { return ops::dense(x, kernel.peek(), b, ops::DenseActivation::kRelu); }, want);
  EXPECT_EQ(kernels::packed_weight_stats().entries, 1);
}

TEST(StorageReleaseHooks, SeveralHooksAllRun) {
  static std::vector<uint64_t> *seen_a = new std::vector<uint64_t>(), *seen_b = new std::vector<uint64_t>();
  struct Hooks {
    static void a(uint64_t id) noexcept { seen_a->push_back(id); }
    static void b(uint64_t id) noexcept { seen_b->push_back(id); }
  };
  add_storage_release_hook(&Hooks::a);
  add_storage_release_hook(&Hooks::b);
  add_storage_release_hook(&Hooks::a);  // again: once
  uint64_t id = 0;
  {
    std::shared_ptr<Storage> s = Storage::allocate(64);
    id = s->id();
    s->mark_derived_cached();
  }
  remove_storage_release_hook(&Hooks::a);
  remove_storage_release_hook(&Hooks::b);
  ASSERT_EQ(seen_a->size(), 1u);
  ASSERT_EQ(seen_b->size(), 1u);
  EXPECT_EQ((*seen_a)[0], id);
  EXPECT_EQ((*seen_b)[0], id);
}

}  // namespace
}  // namespace kiln
