#include "kernels/random.h"

#include <cmath>

#include "core/threads.h"

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
  fill_by_index(out, n, [&](int64_t i) { return minval + range * gen.uniform(static_cast<uint64_t>(i)); });
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
  for_each_index(n, [&](int64_t i) {
    const bool keep = gen.uniform(static_cast<uint64_t>(i)) >= rate;
    out[i] = keep ? x[i] * scale : 0.0f;
    if (mask) mask[i] = keep ? scale : 0.0f;
  });
}

}  // namespace kiln::kernels
