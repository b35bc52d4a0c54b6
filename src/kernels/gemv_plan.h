// One gemv call as the per-target loops of gemv.cc see it (internal to gemv.cc).
#pragma once

#include <cstdint>

#include "kernels/gemv.h"

namespace kiln::kernels {

struct GemvPlan {
  int64_t m = 0, k = 0, n = 0;
  int64_t panels = 0;        // ceil(n / kGemvPanel)
  const float *x = nullptr;  // [m, k]
  // Panel q's row kk starts at w + q * panel_stride + kk * row_stride (elements of float, or of
  // uint16_t bfloat16 bits for kBFloat16); int8: quad-row kk / 4 (rows 4 (kk / 4) .. + 3, four
  // bytes per column) at w + q * panel_stride + kk / 4 * row_stride (bytes).
  const void *w = nullptr;
  int64_t panel_stride = 0, row_stride = 0;
  // When not null: the last panel, [k][kGemvPanel] padded (a W read in place whose n is not a
  // whole number of panels).
  const void *tail = nullptr;
  GemvWeights format = GemvWeights::kFloat32;
  // int8 (GemvWeights::kInt8): x quantized, [m][4 * ceil(k / 4)] (padded with zeros), whose row
  // r stands for x[r] / row_scale[r]; column_scale [panels * kGemvPanel]; column_sums int32
  // [runs of kGemvInt8ChunkK][panels * kGemvPanel], each column's quantized weights summed over
  // the run. For the VNNI kernel: each xq's low byte and high byte + 128, as xq [m][4 * quads].
  const int16_t *xq = nullptr;
  const float *row_scale = nullptr, *column_scale = nullptr;
  const int32_t *column_sums = nullptr;
  const uint8_t *x_low = nullptr, *x_high = nullptr;
  const float *bias = nullptr;  // [n] or null
  bool relu = false;
  float *y = nullptr;  // [m, n]
  // Packed float32 and bfloat16 weights: a thread's panels in groups half as wide as the register
  // budget allows, in reverse order when `backward` (gemv.cc's Panels; PackedWeights::sweep_backward).
  bool alternate = false, backward = false;
  // Whether the sums may leave out the rows of W where every row of x is zero (gemv.cc's
  // LiveRows): only with finite weights, where leaving them out changes no bit (gemv.h).
  bool skip_zero_rows = false;
};

}  // namespace kiln::kernels
