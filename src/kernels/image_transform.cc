#include "kernels/image_transform.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/threads.h"

namespace kiln::kernels {

namespace {

// A coordinate outside [0, len - 1] mapped back by the fill mode, in float as TF's MapCoordinate (which
// follows scipy.ndimage), then clamped into the image (a rounded 3.5 of 4 pixels must not read 4).
float map_coordinate(float v, int64_t len, FillMode mode) {
  const float last = static_cast<float>(len - 1);
  switch (mode) {
    case FillMode::kConstant:
      return v;
    case FillMode::kNearest:
      break;
    case FillMode::kReflect:  // [abcd] read as [dcba|abcd|dcba]
      if (len <= 1) {
        v = 0;
      } else if (v < 0) {
        const int64_t twice = 2 * len;
        if (v < static_cast<float>(twice))
          v = static_cast<float>(twice * static_cast<int64_t>(-v / twice)) + v;
        v = v < static_cast<float>(-len) ? v + static_cast<float>(twice) : -v - 1;
      } else if (v > last) {
        const int64_t twice = 2 * len;
        v -= static_cast<float>(twice * static_cast<int64_t>(v / twice));
        if (v >= static_cast<float>(len)) v = static_cast<float>(twice) - v - 1;
      }
      break;
    case FillMode::kWrap:  // [abcd] read as [abcd|abcd|abcd]
      if (len <= 1) {
        v = 0;
      } else if (v < 0) {
        v += static_cast<float>(len * (static_cast<int64_t>(-v / static_cast<float>(len - 1)) + 1));
      } else if (v > last) {
        v -= static_cast<float>(len * static_cast<int64_t>(v / static_cast<float>(len - 1)));
      }
      break;
  }
  return std::clamp(v, 0.0f, last);
}

template <typename T>
void transform_typed(const T *in, int64_t n, int64_t h, int64_t w, int64_t c, const float *transforms,
                     int64_t transform_rows, bool bilinear, FillMode mode, T fill, T *out) {
  const int64_t rows = n * h;
  const bool parallel = rows > 1 && rows * w * c >= 16384;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / h, y = r % h;
    const float *t = transforms + (transform_rows == 1 ? 0 : 8 * b);
    const T *image = in + b * h * w * c;
    // The pixel at (row, col), or fill outside the image.
    const auto read = [&](int64_t row, int64_t col, int64_t ch) -> T {
      return row >= 0 && row < h && col >= 0 && col < w ? image[(row * w + col) * c + ch] : fill;
    };
    for (int64_t x = 0; x < w; ++x) {
      T *px = out + ((b * h + y) * w + x) * c;
      const float fx = static_cast<float>(x), fy = static_cast<float>(y);
      const float k = t[6] * fx + t[7] * fy + 1.0f;
      if (k == 0) {
        std::fill(px, px + c, fill);
        continue;
      }
      const float sx = map_coordinate((t[0] * fx + t[1] * fy + t[2]) / k, w, mode);
      const float sy = map_coordinate((t[3] * fx + t[4] * fy + t[5]) / k, h, mode);
      // Far outside (constant mode) or NaN: no neighbour is in the image (and none fits an int64).
      if (!(std::abs(sx) < 1e9f && std::abs(sy) < 1e9f)) {
        std::fill(px, px + c, fill);
        continue;
      }
      if (!bilinear) {
        const auto row = static_cast<int64_t>(std::round(sy)), col = static_cast<int64_t>(std::round(sx));
        for (int64_t ch = 0; ch < c; ++ch) px[ch] = read(row, col, ch);
        continue;
      }
      const float y0 = std::floor(sy), x0 = std::floor(sx), y1 = y0 + 1, x1 = x0 + 1;
      const auto r0 = static_cast<int64_t>(y0), c0 = static_cast<int64_t>(x0);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float top = (x1 - sx) * static_cast<float>(read(r0, c0, ch)) +
                          (sx - x0) * static_cast<float>(read(r0, c0 + 1, ch));
        const float bottom = (x1 - sx) * static_cast<float>(read(r0 + 1, c0, ch)) +
                             (sx - x0) * static_cast<float>(read(r0 + 1, c0 + 1, ch));
        px[ch] = static_cast<T>((y1 - sy) * top + (sy - y0) * bottom);
      }
    }
  }
}

}  // namespace

void projective_transform(DType dtype, const void *images, int64_t n, int64_t h, int64_t w, int64_t c,
                          const float *transforms, int64_t transform_rows, bool bilinear, FillMode fill_mode,
                          double fill_value, void *out) {
  if (dtype == DType::kFloat32)
    transform_typed(static_cast<const float *>(images), n, h, w, c, transforms, transform_rows, bilinear,
                    fill_mode, static_cast<float>(fill_value), static_cast<float *>(out));
  else if (dtype == DType::kFloat64)
    transform_typed(static_cast<const double *>(images), n, h, w, c, transforms, transform_rows, bilinear,
                    fill_mode, fill_value, static_cast<double *>(out));
  else
    fail(Code::kInternal, "projective_transform: dtype ", dtype_name(dtype), " is not float32 or float64");
}

}  // namespace kiln::kernels
