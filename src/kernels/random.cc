#include "kernels/random.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "core/threads.h"
#include "kernels/random_simd.h"

namespace kiln::kernels {

namespace {

// Runs f(i) for i in [0, n), on all threads when n is large.
template <typename F>
void for_each_index(int64_t n, F &&f) {
  if (n < kParallelRandomElements || num_threads() == 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  apply_num_threads();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Runs f(begin, end) over [0, n) in chunks, on all threads when n is large. Chunks start at
// multiples of 4096 elements, so each (a whole number of Philox blocks) runs in full vectors; the
// values do not depend on the split anyway.
template <typename F>
void for_each_range(int64_t n, F &&f) {
  constexpr int64_t kChunk = 4096;
  if (n < kParallelRandomElements || num_threads() == 1) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
  apply_num_threads();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(n, (c + 1) * kChunk));
}

template <typename F>
void fill_by_index(float *out, int64_t n, F &&f) {
  for_each_index(n, [&](int64_t i) { out[i] = f(i); });
}

// A redraw of element i uses counter i + round * 2^48, clear of every first draw.
constexpr int kShift = 48;
constexpr int kMaxRounds = 1000;

}  // namespace

void random_uniform(const Philox &gen, float minval, float maxval, float *out, int64_t n) {
  const float range = maxval - minval;
  for_each_range(n, [&](int64_t b, int64_t e) { random_simd::uniform_f32(gen, minval, range, out, b, e); });
}

namespace {
// f(i, words) for element i of [0, n), kPer elements a block: block b is drawn once and serves
// elements kPer b .. kPer b + kPer - 1 (words the whole block). Each element's value still
// depends only on the generator and i.
template <int64_t kPer, typename F>
void by_block(const Philox &gen, int64_t n, F &&f) {
  for_each_index((n + kPer - 1) / kPer, [&](int64_t b) {
    const std::array<uint32_t, 4> words = gen.block(static_cast<uint64_t>(b));
    for (int64_t s = 0; s < kPer && b * kPer + s < n; ++s) f(b * kPer + s, words, s);
  });
}

// Element i's 64 random bits in by_block<2>: words 2 s and 2 s + 1 of its block.
uint64_t bits64(const std::array<uint32_t, 4> &words, int64_t s) {
  return uint64_t{words[static_cast<size_t>(2 * s)]} << 32 | words[static_cast<size_t>(2 * s + 1)];
}
}  // namespace

void random_uniform_bf16(const Philox &gen, float minval, float maxval, bfloat16 *out, int64_t n) {
  const float range = maxval - minval;
  by_block<4>(gen, n, [&](int64_t i, const std::array<uint32_t, 4> &w, int64_t s) {
    out[i] =
        bfloat16(minval + range * (static_cast<float>(w[static_cast<size_t>(s)] >> 24) * (1.0f / 256.0f)));
  });
}

void random_uniform_f64(const Philox &gen, double minval, double maxval, double *out, int64_t n) {
  const double range = maxval - minval;
  by_block<2>(gen, n, [&](int64_t i, const std::array<uint32_t, 4> &w, int64_t s) {
    out[i] = minval + range * (static_cast<double>(bits64(w, s) >> 11) * 0x1p-53);
  });
}

void random_uniform_i32(const Philox &gen, int32_t lo, uint32_t range, int32_t *out, int64_t n) {
  by_block<4>(gen, n, [&](int64_t i, const std::array<uint32_t, 4> &w, int64_t s) {
    out[i] = static_cast<int32_t>(static_cast<uint32_t>(lo) + w[static_cast<size_t>(s)] % range);
  });
}

void random_uniform_i64(const Philox &gen, int64_t lo, uint64_t range, int64_t *out, int64_t n) {
  by_block<2>(gen, n, [&](int64_t i, const std::array<uint32_t, 4> &w, int64_t s) {
    out[i] = static_cast<int64_t>(static_cast<uint64_t>(lo) + bits64(w, s) % range);
  });
}

void random_normal(const Philox &gen, float mean, float stddev, float *out, int64_t n) {
  fill_by_index(out, n, [&](int64_t i) { return mean + stddev * gen.normal(static_cast<uint64_t>(i)); });
}

void truncated_normal(const Philox &gen, float mean, float stddev, float *out, int64_t n) {
  fill_by_index(out, n, [&](int64_t i) {
    float z = 0.0f;
    // Each draw lands outside [-2, 2] with probability 0.046, so kMaxRounds is never reached in practice.
    for (uint64_t round = 0; round < kMaxRounds; ++round) {
      float c = gen.normal(static_cast<uint64_t>(i) + (round << kShift));
      if (std::fabs(c) <= 2.0f) {
        z = c;
        break;
      }
    }
    return mean + stddev * z;
  });
}

void dropout(const Philox &gen, float rate, float scale, const float *x, float *out, float *mask, int64_t n) {
  if (!out && !mask) return;
  for_each_range(
      n, [&](int64_t b, int64_t e) { random_simd::dropout_f32(gen, rate, scale, x, out, mask, b, e); });
}

}  // namespace kiln::kernels
