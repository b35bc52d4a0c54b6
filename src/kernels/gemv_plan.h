// One gemv call as the per-target loops of gemv.cc see it (internal to gemv.cc).
#pragma once

#include <cstdint>

namespace kiln::kernels {

struct GemvPlan {
  int64_t m = 0, k = 0, n = 0;
  int64_t panels = 0;        // ceil(n / kGemvPanel)
  const float *x = nullptr;  // [m, k]
  // Panel q's row kk starts at w + q * panel_stride + kk * row_stride (elements of float, or of
  // uint16_t bfloat16 bits when bf16).
  const void *w = nullptr;
  int64_t panel_stride = 0, row_stride = 0;
  // When not null: the last panel, [k][kGemvPanel] padded (a W read in place whose n is not a
  // whole number of panels).
  const void *tail = nullptr;
  bool bf16 = false;
  const float *bias = nullptr;  // [n] or null
  bool relu = false;
  float *y = nullptr;  // [m, n]
};

}  // namespace kiln::kernels
