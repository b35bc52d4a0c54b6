// TF's ImageProjectiveTransformV3: each output pixel (x, y) of an image read from the input at
// ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, after mapping coordinates
// outside the image by the fill mode; the layers' rotations, zooms and translations.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

enum class FillMode { kReflect = 0, kWrap = 1, kConstant = 2, kNearest = 3 };

// images [n, h, w, c] (float32 or float64) to out of the same shape; transforms [n or 1, 8] in float32
// (one row for every image when 1). Nearest interpolation reads the pixel at the rounded point,
// bilinear its 4 neighbours; a neighbour outside the image (possible with kConstant) and a point where
// k == 0 read fill_value. Pixels run on OpenMP threads, each computed alone: the result does not depend
// on the thread count.
void projective_transform(DType dtype, const void *images, int64_t n, int64_t h, int64_t w, int64_t c,
                          const float *transforms, int64_t transform_rows, bool bilinear, FillMode fill_mode,
                          double fill_value, void *out);

}  // namespace kiln::kernels
