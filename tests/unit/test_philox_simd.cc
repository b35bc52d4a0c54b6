// The vector Philox (kernels/random_simd.cc) against the scalar one (core/rng.h), bit for bit, on
// every instruction set compiled in and supported here, at sizes around the vector and group
// widths, odd starting elements, counters whose low word wraps, and 1 and 2 threads.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "kernels/random.h"
#include "kernels/random_simd.h"
#include "kernels/simd.h"

namespace kiln {
namespace {

const std::vector<int64_t> kSizes = {0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// Runs check(target name) once per available target, then restores the default dispatch.
template <typename F>
void on_every_target(F &&check) {
  const std::vector<int64_t> targets = kernels::simd::available_targets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    kernels::simd::force_target(target);
    check(kernels::simd::target_name(target));
  }
  kernels::simd::force_target(0);
}

std::vector<Philox> generators() {
  return {Philox(0, 0), Philox(0x0123456789ABCDEFull, 42), Philox(7, (uint64_t{1} << 63) | 5),
          Philox(~uint64_t{0}, ~uint64_t{0})};
}

TEST(PhiloxSimd, WordsEqualScalarBlocks) {
  // Block numbers whose low word wraps inside a vector test the carry into the high word.
  const std::vector<uint64_t> firsts = {0, 5, (uint64_t{1} << 32) - 7, (uint64_t{1} << 48) + 3,
                                        ~uint64_t{0} - 20};
  on_every_target([&](const std::string &target) {
    for (const Philox &gen : generators())
      for (uint64_t first : firsts)
        for (int64_t blocks : kSizes) {
          std::vector<uint32_t> words(static_cast<size_t>(4 * blocks) + 1, 0xDEADBEEFu);
          kernels::random_simd::philox_words(gen, first, blocks, words.data());
          for (int64_t j = 0; j < blocks; ++j) {
            const std::array<uint32_t, 4> want = gen.block(first + static_cast<uint64_t>(j));
            for (int w = 0; w < 4; ++w)
              ASSERT_EQ(words[static_cast<size_t>(4 * j + w)], want[static_cast<size_t>(w)])
                  << target << " first block " << first << " block " << j << " word " << w;
          }
          EXPECT_EQ(words.back(), 0xDEADBEEFu) << target << ": wrote past the end, " << blocks << " blocks";
        }
  });
}

TEST(PhiloxSimd, UniformEqualsScalarForEveryRangeOfElements) {
  on_every_target([&](const std::string &target) {
    for (const Philox &gen : generators())
      for (int64_t begin : {0, 1, 3, 4, 6}) {
        for (int64_t n : kSizes) {
          const int64_t end = begin + n;
          std::vector<float> out(static_cast<size_t>(end) + 1, -7.0f);
          kernels::random_simd::uniform_f32(gen, -1.5f, 4.25f, out.data(), begin, end);
          for (int64_t i = 0; i < begin; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], -7.0f) << target;
          for (int64_t i = begin; i < end; ++i)
            ASSERT_EQ(bits(out[static_cast<size_t>(i)]),
                      bits(-1.5f + 4.25f * gen.uniform(static_cast<uint64_t>(i))))
                << target << " element " << i << " of [" << begin << ", " << end << ")";
          ASSERT_EQ(out.back(), -7.0f) << target << ": wrote past " << end;
        }
      }
  });
}

TEST(PhiloxSimd, DropoutEqualsScalarForEveryRangeOfElements) {
  const float kNan = std::nanf("");
  on_every_target([&](const std::string &target) {
    for (const Philox &gen : generators())
      for (float rate : {0.0f, 0.1f, 0.5f, 0.9f})
        for (int64_t begin : {0, 2, 5}) {
          for (int64_t n : kSizes) {
            const int64_t end = begin + n;
            const float scale = 1.0f / (1.0f - rate);
            std::vector<float> x(static_cast<size_t>(end));
            for (size_t i = 0; i < x.size(); ++i)
              x[i] = i % 7 == 3 ? kNan : i % 5 == 1 ? -0.0f : static_cast<float>(i) * 0.37f - 3.0f;
            std::vector<float> out(static_cast<size_t>(end) + 1, -7.0f), mask(out), mask_only(out);
            kernels::random_simd::dropout_f32(gen, rate, scale, x.data(), out.data(), mask.data(), begin,
                                              end);
            kernels::random_simd::dropout_f32(gen, rate, scale, nullptr, nullptr, mask_only.data(), begin,
                                              end);
            for (int64_t i = begin; i < end; ++i) {
              const size_t k = static_cast<size_t>(i);
              const bool keep = gen.uniform(static_cast<uint64_t>(i)) >= rate;
              ASSERT_EQ(bits(out[k]), bits(keep ? x[k] * scale : 0.0f))
                  << target << " rate " << rate << " element " << i << " of [" << begin << ", " << end << ")";
              ASSERT_EQ(bits(mask[k]), bits(keep ? scale : 0.0f)) << target << " element " << i;
              ASSERT_EQ(bits(mask_only[k]), bits(mask[k])) << target << " element " << i;
            }
            for (int64_t i = 0; i < begin; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], -7.0f) << target;
            ASSERT_EQ(out.back(), -7.0f) << target;
            ASSERT_EQ(mask.back(), -7.0f) << target;
            ASSERT_EQ(mask_only.back(), -7.0f) << target;
          }
        }
  });
}

// The kernels behind the ops, split among threads in chunks: the same bits as the scalar
// definition at every size (below and above kParallelRandomElements) and thread count.
TEST(PhiloxSimd, KernelsMatchScalarAtEveryThreadCount) {
  const int before = num_threads();
  std::vector<int64_t> sizes = kSizes;
  sizes.push_back(kernels::kParallelRandomElements - 1);
  sizes.push_back(kernels::kParallelRandomElements + 4097);
  const Philox gen(99, 3);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    on_every_target([&](const std::string &target) {
      for (int64_t n : sizes) {
        const size_t m = static_cast<size_t>(n);
        std::vector<float> u(m), x(m), out(m), mask(m);
        for (size_t i = 0; i < m; ++i) x[i] = static_cast<float>(i % 101) - 50.0f;
        kernels::random_uniform(gen, 2.0f, 5.0f, u.data(), n);
        kernels::dropout(gen, 0.3f, 1.0f / 0.7f, x.data(), out.data(), mask.data(), n);
        for (size_t i = 0; i < m; ++i) {
          const float ui = gen.uniform(i);
          ASSERT_EQ(bits(u[i]), bits(2.0f + 3.0f * ui))
              << target << " " << threads << " threads, n " << n << " at " << i;
          const bool keep = ui >= 0.3f;
          ASSERT_EQ(bits(out[i]), bits(keep ? x[i] * (1.0f / 0.7f) : 0.0f))
              << target << " n " << n << " at " << i;
          ASSERT_EQ(bits(mask[i]), bits(keep ? 1.0f / 0.7f : 0.0f)) << target << " n " << n << " at " << i;
        }
      }
    });
  }
  set_num_threads(before);
}

// Element i of a uniform draw is word i % 4 of block i / 4 (TF's layout); redraw rounds use
// blocks from 2^48 on, never a first draw's.
TEST(PhiloxSimd, UniformLayoutAndRedrawRounds) {
  const Philox gen(5, 6);
  for (uint64_t i = 0; i < 64; ++i) {
    ASSERT_EQ(bits(gen.uniform(i)), bits(Philox::unit(gen.block(i / 4)[i % 4]))) << i;
    ASSERT_EQ(bits(gen.uniform_at(i, 0)), bits(gen.uniform(i))) << i;
    ASSERT_EQ(bits(gen.uniform_at(i, 3)), bits(Philox::unit(gen.block(i / 4 + (uint64_t{3} << 48))[i % 4])))
        << i;
  }
}

}  // namespace
}  // namespace kiln
