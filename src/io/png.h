// PNG encoding and decoding through Debian's libpng, for TensorBoard image summaries
// (tf.summary.image stores each image as a PNG, FORMATS.md §1.5) and for reading them back.
// libpng reports errors by longjmp; every libpng call here runs in a small function that holds no
// C++ object across its setjmp, and callbacks never let an exception cross libpng's C frames, so
// neither a libpng error nor a C++ exception skips a destructor.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::io::png {

// One 8-bit image, row-major [height, width, channels]: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
struct Image {
  int64_t width = 0, height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// The PNG (8 bits per sample, not interlaced, zlib's default compression, as tf.image.encode_png
// writes) of pixels[height * width * channels], row-major HWC. channels 1, 2, 3 or 4; height and
// width in [1, 2^31 - 1] (PNG's limit; decode() reads back up to 10^6); other values are
// InvalidArgument. Thread-safe.
std::string encode(const uint8_t *pixels, int64_t height, int64_t width, int channels);

// Decodes any valid PNG to 8 bits per sample: palette images become RGB (RGBA when they carry
// transparency), gray below 8 bits is scaled up, 16-bit samples are scaled down; a tRNS chunk
// adds an alpha channel. Interlaced images are de-interlaced. Corrupt or truncated data is
// DataLoss (never a crash). An image wider or taller than 10^6 pixels (libpng's default limit),
// or an interlaced one above 1 GiB decoded, is ResourceExhausted: its header alone would make
// libpng allocate that much. Other images take memory as their rows are decoded, so truncated
// data claiming a large image fails early. Thread-safe.
Image decode(std::string_view png);

}  // namespace kiln::io::png
