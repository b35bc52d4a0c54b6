#include "summary/image_encode.h"

#include <algorithm>
#include <type_traits>

#include "core/error.h"
#include "io/png.h"

namespace kiln::summary {
namespace {

// tf.image.convert_image_dtype(x, tf.uint8, saturate=True) for one float element: multiply by
// 255.5 in x's type, then saturate_cast: maximum(., 0) and minimum(., 255), which propagate NaN,
// and a truncating cast, which turns NaN into 0 on x86-64 (checked first here: casting NaN is
// undefined in C++).
inline uint8_t saturate_to_u8(float s) {
  if (!(s > 0.0f)) return 0;  // <= 0 and NaN
  if (s >= 255.0f) return 255;
  return static_cast<uint8_t>(s);
}
inline uint8_t saturate_to_u8(double s) {
  if (!(s > 0.0)) return 0;
  if (s >= 255.0) return 255;
  return static_cast<uint8_t>(s);
}

template <typename T>
uint8_t to_u8(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return saturate_to_u8(x * 255.5f);
  } else if constexpr (std::is_same_v<T, double>) {
    return saturate_to_u8(x * 255.5);
  } else {
    // The scale 255.5 as a bfloat16 is 256 (255.5 lies halfway between 255 and 256, and ties go
    // to the even 256); TensorFlow's bfloat16 multiply rounds float(x) * 256 back to bfloat16,
    // which changes nothing: a power-of-two scale is exact (or overflows to inf either way).
    static_assert(std::is_same_v<T, bfloat16>);
    return saturate_to_u8(static_cast<float>(bfloat16(static_cast<float>(x) * 256.0f)));
  }
}

}  // namespace

std::vector<std::string> image_strings(const Tensor &data, int64_t max_outputs) {
  require_defined(data, "summary.image", "data");
  const DType dtype = data.dtype();
  const bool supported = dtype == DType::kUInt8 || dtype == DType::kFloat32 || dtype == DType::kFloat64 ||
                         dtype == DType::kBFloat16;
  if (data.rank() != 4 || !supported)
    fail(Code::kInvalidArgument, "summary.image: data is ", data.description(),
         "; expected a rank-4 [k, height, width, channels] tensor of uint8, or of float32, float64 or "
         "bfloat16 in [0, 1]");
  const Shape &shape = data.shape();
  const int64_t k = shape[0], height = shape[1], width = shape[2], channels = shape[3];
  if (channels < 1 || channels > 4)
    fail(Code::kInvalidArgument, "summary.image: data is ", data.description(), " with ", channels,
         " channels; expected 1 (grayscale), 2 (grayscale+alpha), 3 (RGB) or 4 (RGBA)");
  if (max_outputs < 0)
    fail(Code::kInvalidArgument, "summary.image: max_outputs is ", max_outputs, "; expected >= 0");
  const int64_t n = std::min(k, max_outputs);
  if (n > 0 && (height == 0 || width == 0))
    fail(Code::kInvalidArgument, "summary.image: data is ", data.description(), ", images of height ", height,
         " and width ", width, "; expected both >= 1 (a PNG cannot be empty)");

  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(2 + n));
  out.push_back(std::to_string(width));
  out.push_back(std::to_string(height));
  if (n == 0) return out;
  // The shape's element count fits (Shape checks it), so the per-image count does too.
  const int64_t per_image = height * width * channels;
  if (dtype == DType::kUInt8) {
    const uint8_t *pixels = data.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      out.push_back(io::png::encode(pixels + i * per_image, height, width, static_cast<int>(channels)));
    return out;
  }
  std::vector<uint8_t> converted(static_cast<size_t>(per_image));
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, bfloat16>) {
      const T *src = data.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        const T *image = src + i * per_image;
        for (int64_t j = 0; j < per_image; ++j) converted[static_cast<size_t>(j)] = to_u8(image[j]);
        out.push_back(io::png::encode(converted.data(), height, width, static_cast<int>(channels)));
      }
    }
  });
  return out;
}

}  // namespace kiln::summary
