// Shared by the convolution and pooling tests: one case type and TF's window arithmetic, as the
// reference loops use it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/ops.h"

namespace kiln::testing {

// A 2-D window case: input and filter shapes, strides, dilations, padding.
struct ConvShape {
  Shape x, f;
  std::vector<int64_t> s, d;
  ops::Padding p;
};

// One spatial axis of a window op: its output size and the padding before the first cell.
struct WindowAxis {
  int64_t out, before;
};

// TF: VALID fits whole windows; SAME gives ceil(in / s) outputs, the odd padding cell after.
inline WindowAxis window_axis(int64_t in, int64_t k, int64_t s, int64_t d, ops::Padding p) {
  const int64_t span = (k - 1) * d + 1;
  if (p == ops::Padding::kValid) return {in >= span ? (in - span) / s + 1 : 0, 0};
  const int64_t out = (in + s - 1) / s;
  return {out, std::max<int64_t>(0, (out - 1) * s + span - in) / 2};
}

}  // namespace kiln::testing
