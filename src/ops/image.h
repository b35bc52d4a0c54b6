// tf.image.resize without antialiasing: bilinear and nearest-neighbour resizing of [N, H, W, C] or
// [H, W, C] images with TF2's half-pixel centres, composed from gather and elementwise ops (so the
// gradient is theirs).
#pragma once

#include <cstdint>

#include "ops/ops.h"

namespace kiln::ops {

enum class ResizeMethod { kBilinear = 0, kNearest = 1 };

// images resized to height x width (both >= 1; the input's height and width must be >= 1 too).
// Bilinear: each output cell at ((o + 0.5) * in / out - 0.5) along each axis, interpolated along the
// width first, then the height, as TF's kernel (a + (b - a) * t in float32). float32 and float64 keep
// their dtype, bfloat16 computes in float32 and rounds once, integers give float32 (as TF).
// Nearest: the cell at floor((o + 0.5) * in / out), in the input's dtype (any but bool).
Tensor resize(const Tensor &images, int64_t height, int64_t width, ResizeMethod method);

}  // namespace kiln::ops
