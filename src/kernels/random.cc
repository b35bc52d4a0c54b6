#include "kernels/random.h"

#include <algorithm>
#include <cmath>

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
