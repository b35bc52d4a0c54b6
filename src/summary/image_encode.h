// The tensor tf.summary.image writes (TensorBoard 2.13 plugins/image/summary_v2.py): the width
// and height as ASCII decimal strings, then one PNG per image (FORMATS.md §1.5).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::summary {

// [width, height, png_1, ..., png_n] for data [k, h, w, c] (c = 1 gray, 2 gray+alpha, 3 RGB,
// 4 RGBA) and n = min(k, max_outputs); width comes FIRST. uint8 pixels are used as they are.
// float32, float64 and bfloat16 pixels are converted as tf.image.convert_image_dtype(x, tf.uint8,
// saturate=True) does: x * 255.5 in x's own type (255.5 rounds to 256 in bfloat16), clamped to
// [0, 255], then truncated toward zero; NaN gives 0, as TensorFlow's cast does on x86-64.
// max_outputs may be 0 (TensorBoard asserts only that it is non-negative): then, as for k = 0,
// the result is [width, height]. Errors (InvalidArgument, naming "summary.image"): an undefined
// tensor, a rank other than 4, another dtype, c outside 1..4, max_outputs < 0, or images to
// encode with a height or width of 0 (PNG cannot hold them).
std::vector<std::string> image_strings(const Tensor &data, int64_t max_outputs);

}  // namespace kiln::summary
