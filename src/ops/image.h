// tf.image.resize without antialiasing: bilinear and nearest-neighbour resizing of [N, H, W, C] or
// [H, W, C] images with TF2's half-pixel centres, composed from gather and elementwise ops (so the
// gradient is theirs).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "kernels/image_transform.h"
#include "ops/ops.h"

namespace kiln::ops {

enum class ResizeMethod { kBilinear = 0, kNearest = 1 };

// images resized to height x width (both >= 1; the input's height and width must be >= 1 too).
// Bilinear: each output cell at ((o + 0.5) * in / out - 0.5) along each axis, interpolated along the
// width first, then the height, as TF's kernel (a + (b - a) * t in float32). float32 and float64 keep
// their dtype, bfloat16 computes in float32 and rounds once, integers give float32 (as TF).
// Nearest: the cell at floor((o + 0.5) * in / out), in the input's dtype (any but bool).
Tensor resize(const Tensor &images, int64_t height, int64_t width, ResizeMethod method);

// TF's ImageProjectiveTransformV3 (keras.ops.image.affine_transform): images [N, H, W, C] or [H, W, C]
// (float32, float64; bfloat16 computes in float32 and rounds once; integers compute in float32 and
// truncate back, as TF's kernel), each output pixel (x, y) read at
// ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, from transforms [N, 8] or
// [1, 8] (every image) or [8], in float32. A point outside the image is mapped back by fill_mode
// (reflect, wrap, nearest) or reads fill_value (constant); interpolation kBilinear or kNearest. The
// output is a constant to tapes (the augmentation layers transform their inputs, not weights).
using FillMode = kernels::FillMode;
Tensor projective_transform(const Tensor &images, const Tensor &transforms, ResizeMethod interpolation,
                            FillMode fill_mode, double fill_value);

// Keras's compute_homography_matrix for one image: the transform (a0, a1, a2, b0, b1, b2, c0, c1) of
// projective_transform that reads each of the four end points (x, y pairs) from its start point, solved
// in float64 with partial pivoting and rounded to float32; nullopt when the points give a singular system
// (three of them on a line, or two the same).
std::optional<std::array<float, 8>> homography(const std::array<float, 8> &start,
                                               const std::array<float, 8> &end);

// keras.ops.image.perspective_transform: images [N, H, W, C] or [H, W, C] (as projective_transform)
// resampled through the homographies taking each image's start_points to its end_points, points
// [N, 4, 2] or [4, 2] (every image) as (x, y), floats read in float32 as Keras; the fill is constant.
// Fails when the points of an image are not finite or give no transform (a zero pivot; a system singular
// only up to rounding gives a meaningless transform, as TF's solve does).
Tensor perspective_transform(const Tensor &images, const Tensor &start_points, const Tensor &end_points,
                             ResizeMethod interpolation, double fill_value);

// tf.image.rgb_to_hsv: the last axis (r, g, b) of floating images (any rank >= 1) becomes (h, s, v) by
// TF's RGBToHSV kernel's formulas: v = max, s = (v - min) / v (0 where v is not > 0), h in [0, 1) from the
// channel holding the max (0 where max - min is 0 or below the smallest normal number). Composed from
// elementwise ops, so the gradient is theirs (the unselected branches divide by 1, not 0, so no NaN leaks
// into it).
Tensor rgb_to_hsv(const Tensor &images);
// tf.image.hsv_to_rgb: (h, s, v) to (r, g, b) = ((1 - s) + s * d) * v, d per channel a clipped ramp of
// h * 6, as TF's HSVToRGB kernel.
Tensor hsv_to_rgb(const Tensor &images);
// tf.image.rgb_to_grayscale of floating images: 0.2989 r + 0.5870 g + 0.1140 b (summed in that order)
// over the last axis, kept as an axis of 1.
Tensor rgb_to_grayscale(const Tensor &images);

}  // namespace kiln::ops
