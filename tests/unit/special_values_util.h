// Helpers for the special-value suites: ulp distances against float64 references, the
// sizes on both sides of every threshold, and running code at a given thread count.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "core/threads.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "test_util.h"

namespace kiln::testing {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Sizes on both sides of the elementwise / softmax / reduce threshold (32768) and the norm
// threshold (16384), none a multiple of any vector width, so tails are exercised too.
inline std::vector<int64_t> sizes_across_thresholds() {
  return {7, 31, kernels::kNormLoopMaxElements - 3, kernels::kNormLoopMaxElements + 5,
          kernels::kElementwiseLargeThreshold - 1, kernels::kElementwiseLargeThreshold + 5, 40003};
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Same value: bit for bit, or both NaN (a NaN's payload is not part of the contract).
inline bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b); }

// Floats as a monotonic integer line (-0 and +0 both 0), for ulp distances.
inline int64_t ordered(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i >= 0 ? int64_t{i} : -(int64_t{i} & 0x7fffffff);
}

// Distance in float ulps between got and the float64 reference rounded to float; 0 when both
// are NaN or the same infinity; "infinite" when only one is NaN or infinite. Zeros must
// also agree in sign when the reference is a zero.
inline int64_t ulp_error(float got, double want) {
  const float w = static_cast<float>(want);
  if (std::isnan(w) || std::isnan(got)) return std::isnan(w) && std::isnan(got) ? 0 : INT64_MAX;
  if (std::isinf(w) || std::isinf(got)) return w == got ? 0 : INT64_MAX;
  if (w == 0.0f && got == 0.0f) return std::signbit(w) == std::signbit(got) ? 0 : INT64_MAX;
  const int64_t d = ordered(got) - ordered(w);
  return d < 0 ? -d : d;
}

// A result in the denormal range has fewer significant bits than its ulp suggests: an op
// whose intermediate is denormal (sigmoid(-100) inside swish) loses relative accuracy there.
// Such results are held to kDenormalUlps steps of 2^-149 (a flush to zero is ~10^4 steps).
constexpr int64_t kDenormalUlps = 64;
inline int64_t ulp_bound(double want, int64_t ulps) {
  return std::fabs(want) < static_cast<double>(std::numeric_limits<float>::min()) ? std::max(ulps, kDenormalUlps)
                                                                                   : ulps;
}

// Runs f with kiln's thread count set to n, then restores it.
inline void with_threads(int n, const std::function<void()> &f) {
  const int saved = num_threads();
  set_num_threads(n);
  f();
  set_num_threads(saved);
}

// values tiled to n elements: element i is v[i % v.size()], so each value lands on many
// different lane positions and in the tail.
inline Tensor tiled(const std::vector<float> &v, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = v[static_cast<size_t>(i) % v.size()];
  return make({n}, out);
}

// Special and ordinary float32 inputs: NaN, +-inf, +-0, denormals, the largest values, the
// exp overflow edge (+-88, +-89), gelu's tail (-4 ... -10), and a dense grid.
inline std::vector<float> special_inputs() {
  std::vector<float> v = {kNaN,     -kNaN,    kInf,     -kInf,  0.0f,    -0.0f,   1e-45f,  -1e-45f, 1e-40f,
                          -1e-40f,  1.17549435e-38f, 3e38f, -3e38f,  3.4028235e38f, -3.4028235e38f,
                          88.0f,    -88.0f,   89.0f,    -89.0f, 88.72f,  -87.33f, -103.0f, 1.0f,    -1.0f,
                          0.5f,     -0.5f,    2.0f,     -20.0f, 20.0f,   -4.0f,   -5.0f,   -6.0f,   -10.0f,
                          -15.0f,   1e-20f,   -1e-20f,  1e-7f,  -1e-7f,  2.5f,    -2.5f,   3.5f,    0.49999997f,
                          1e10f,    -1e10f,   6.0f,     7.0f,   100.0f,  -100.0f, 1e-3f,   -1e-3f};
  for (int i = -300; i <= 300; i += 7) v.push_back(static_cast<float>(i) / 13.0f);
  return v;
}

}  // namespace kiln::testing
