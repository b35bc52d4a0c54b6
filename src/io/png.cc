// libpng reports every error by calling an error function that must not return; ours records
// the message and longjmps back to the setjmp of the function that made the libpng call. C++
// allows that longjmp only when no object with a non-trivial destructor is live in the frames it
// skips, so each libpng call sits in a small function (run_encode, read_header, read_rows, ...)
// whose only state is a POD job struct reached through a pointer; the C++ callers hold the
// vectors and strings and turn a false return into a kiln::Error. The I/O callbacks, which run
// inside libpng's C frames, catch their own exceptions and report them through png_error.
#include "io/png.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>

#include "core/count.h"
#include "core/error.h"

namespace kiln::io::png {
namespace {

constexpr int64_t kMaxDim = PNG_UINT_31_MAX;  // PNG stores width and height as 31-bit numbers
// Decoding limits: libpng's default of 10^6 pixels a side (at most 8 MB a row), and 1 GiB for an
// interlaced image, whose buffer must exist before its rows are read.
constexpr png_uint_32 kMaxDecodeSide = 1000000;
constexpr int64_t kMaxInterlacedBytes = int64_t{1} << 30;

// What the error callback leaves behind; POD, so a longjmp over it skips nothing.
struct ErrorState {
  char message[256];
  bool out_of_memory;
};

void set_message(ErrorState *state, const char *message) {
  if (state == nullptr) return;
  std::strncpy(state->message, message != nullptr ? message : "unknown error", sizeof(state->message) - 1);
  state->message[sizeof(state->message) - 1] = '\0';
}

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  set_message(static_cast<ErrorState *>(png_get_error_ptr(png)), message);
  png_longjmp(png, 1);
}

// Warnings (an ancillary chunk with a bad CRC, an unknown sRGB profile, ...) leave the image
// usable; libpng would print them to stderr, which a library must not do.
void on_warning(png_structp, png_const_charp) {}

// ---- encoding ----

struct WriteJob {
  ErrorState err;
  png_structp png;
  png_infop info;
  const uint8_t *pixels;
  png_uint_32 width, height;
  int color_type;
  size_t row_bytes;
  std::string *out;
};

void write_bytes(png_structp png, png_bytep data, size_t n) {
  auto *job = static_cast<WriteJob *>(png_get_io_ptr(png));
  bool ok = true;
  try {
    job->out->append(reinterpret_cast<const char *>(data), n);
  } catch (...) {  // std::bad_alloc, or length_error on a string past max_size()
    ok = false;
  }
  if (!ok) {
    job->err.out_of_memory = true;
    png_error(png, "out of memory");
  }
}

void flush_nothing(png_structp) {}

// Encodes job->pixels into *job->out; false (with job->err set) when libpng fails.
bool run_encode(WriteJob *job) {
  job->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job->err, on_error, on_warning);
  if (job->png == nullptr) {
    set_message(&job->err, "cannot create a libpng write struct");
    return false;
  }
  job->info = png_create_info_struct(job->png);
  if (job->info == nullptr) {
    set_message(&job->err, "cannot create a libpng info struct");
    return false;
  }
  if (setjmp(png_jmpbuf(job->png))) return false;
  png_set_write_fn(job->png, job, write_bytes, flush_nothing);
  // libpng's default limit is 10^6 pixels a side; allow all that PNG can describe.
  png_set_user_limits(job->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_set_IHDR(job->png, job->info, job->width, job->height, 8, job->color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(job->png, job->info);
  for (png_uint_32 y = 0; y < job->height; ++y) png_write_row(job->png, job->pixels + y * job->row_bytes);
  png_write_end(job->png, job->info);
  return true;
}

// ---- decoding ----

struct ReadJob {
  ErrorState err;
  png_structp png;
  png_infop info;
  const uint8_t *data;
  size_t size, pos;
  png_uint_32 width, height;
  int channels, bit_depth, passes;
  size_t row_bytes;
};

void read_bytes(png_structp png, png_bytep out, size_t n) {
  auto *job = static_cast<ReadJob *>(png_get_io_ptr(png));
  if (n > job->size - job->pos) png_error(png, "the data ends early (truncated)");
  std::memcpy(out, job->data + job->pos, n);
  job->pos += n;
}

// Reads the chunks up to the image data (IHDR included, CRCs checked); allocates no rows.
bool read_header(ReadJob *job) {
  job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job->err, on_error, on_warning);
  if (job->png == nullptr) {
    set_message(&job->err, "cannot create a libpng read struct");
    return false;
  }
  job->info = png_create_info_struct(job->png);
  if (job->info == nullptr) {
    set_message(&job->err, "cannot create a libpng info struct");
    return false;
  }
  if (setjmp(png_jmpbuf(job->png))) return false;
  png_set_read_fn(job->png, job, read_bytes);
  // decode() applies its own, clearer size limit right after this.
  png_set_user_limits(job->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_read_info(job->png, job->info);
  job->width = png_get_image_width(job->png, job->info);
  job->height = png_get_image_height(job->png, job->info);
  return true;
}

// Sets the transforms to 8-bit gray / GA / RGB / RGBA (this allocates libpng's row buffers).
bool set_transforms(ReadJob *job) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  // Palette to RGB, gray below 8 bits to 8 bits, a tRNS chunk to an alpha channel.
  png_set_expand(job->png);
  if (png_get_bit_depth(job->png, job->info) == 16) png_set_scale_16(job->png);
  job->passes = png_set_interlace_handling(job->png);
  png_read_update_info(job->png, job->info);
  job->channels = png_get_channels(job->png, job->info);
  job->bit_depth = png_get_bit_depth(job->png, job->info);
  job->row_bytes = png_get_rowbytes(job->png, job->info);
  return true;
}

// Reads the next `count` rows of a non-interlaced image into dst.
bool read_rows(ReadJob *job, uint8_t *dst, png_uint_32 count) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  for (png_uint_32 i = 0; i < count; ++i) png_read_row(job->png, dst + i * job->row_bytes, nullptr);
  return true;
}

// Reads every pass of an interlaced image into dst (the whole image: each pass fills in rows
// that earlier passes began).
bool read_interlaced(ReadJob *job, uint8_t *dst) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  for (int pass = 0; pass < job->passes; ++pass)
    for (png_uint_32 y = 0; y < job->height; ++y) png_read_row(job->png, dst + y * job->row_bytes, nullptr);
  return true;
}

// Reads the chunks after the image data up to IEND, checking their CRCs.
bool read_end(ReadJob *job) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  png_read_end(job->png, nullptr);
  return true;
}

[[noreturn]] void fail_corrupt(const ReadJob &job) {
  fail(Code::kDataLoss, "png: corrupt or truncated data (libpng: ", job.err.message, ")");
}

}  // namespace

std::string encode(const uint8_t *pixels, int64_t height, int64_t width, int channels) {
  if (channels < 1 || channels > 4)
    fail(Code::kInvalidArgument, "png: ", channels,
         " channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)");
  if (height < 1 || width < 1 || height > kMaxDim || width > kMaxDim)
    fail(Code::kInvalidArgument, "png: an image of height ", height, " and width ", width,
         "; expected both in [1, ", kMaxDim, "]");
  if (pixels == nullptr)
    fail(Code::kInvalidArgument, "png: pixels is NULL; expected height*width*channels bytes");
  int64_t row_bytes = 0, total = 0;
  if (!checked_mul(width, channels, &row_bytes, kMaxBytes) ||
      !checked_mul(height, row_bytes, &total, kMaxBytes))
    fail(Code::kInvalidArgument, "png: an image of ", height, "x", width, "x", channels,
         " bytes is larger than any buffer; expected at most ", kMaxBytes, " bytes");

  std::string out;
  WriteJob job;
  std::memset(&job, 0, sizeof(job));
  job.pixels = pixels;
  job.width = static_cast<png_uint_32>(width);
  job.height = static_cast<png_uint_32>(height);
  static constexpr int kColorTypes[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                        PNG_COLOR_TYPE_RGB_ALPHA};
  job.color_type = kColorTypes[channels - 1];
  job.row_bytes = static_cast<size_t>(row_bytes);
  job.out = &out;
  const bool ok = run_encode(&job);
  if (job.png != nullptr) png_destroy_write_struct(&job.png, job.info != nullptr ? &job.info : nullptr);
  if (!ok) {
    if (job.err.out_of_memory)
      fail(Code::kResourceExhausted, "png: out of memory encoding a ", height, "x", width, "x", channels,
           " image");
    fail(Code::kInternal, "png: libpng failed to encode a ", height, "x", width, "x", channels,
         " image: ", job.err.message);
  }
  return out;
}

Image decode(std::string_view png) {
  static constexpr size_t kSignatureBytes = 8;
  if (png.size() < kSignatureBytes ||
      png_sig_cmp(reinterpret_cast<png_const_bytep>(png.data()), 0, kSignatureBytes) != 0)
    fail(Code::kDataLoss, "png: not a PNG (", png.size(),
         " bytes without the PNG signature); expected data starting with \\x89PNG\\r\\n\\x1a\\n");

  ReadJob job;
  std::memset(&job, 0, sizeof(job));
  job.data = reinterpret_cast<const uint8_t *>(png.data());
  job.size = png.size();
  // Destroys the libpng structs however this function is left (a kiln::Error or bad_alloc).
  struct Destroy {
    ReadJob *job;
    ~Destroy() {
      if (job->png != nullptr)
        png_destroy_read_struct(&job->png, job->info != nullptr ? &job->info : nullptr, nullptr);
    }
  } destroy{&job};

  if (!read_header(&job)) fail_corrupt(job);
  // libpng's own default limit, applied before it allocates a row: a few corrupt or hostile
  // header bytes must not make it allocate (and clear) gigabytes.
  if (job.width > kMaxDecodeSide || job.height > kMaxDecodeSide)
    fail(Code::kResourceExhausted, "png: a ", job.width, "x", job.height,
         " image (width x height) is too large to decode; expected at most ", kMaxDecodeSide,
         " pixels a side");
  if (!set_transforms(&job)) fail_corrupt(job);
  if (job.bit_depth != 8 || job.channels < 1 || job.channels > 4 ||
      job.row_bytes != static_cast<size_t>(job.width) * static_cast<size_t>(job.channels))
    fail(Code::kDataLoss, "png: unsupported layout after expansion (", job.channels, " channels of ",
         job.bit_depth, " bits); expected 1 to 4 channels of 8 bits");
  const auto row_bytes = static_cast<int64_t>(job.row_bytes);
  // Cannot overflow: height < 2^20 and row_bytes < 2^22.
  const int64_t total = static_cast<int64_t>(job.height) * row_bytes;
  if (job.passes > 1 && total > kMaxInterlacedBytes)
    fail(Code::kResourceExhausted, "png: an interlaced ", job.width, "x", job.height, "x", job.channels,
         " image is too large to decode; expected at most ", kMaxInterlacedBytes,
         " bytes (an interlaced image needs its whole buffer before its data arrives)");

  Image image;
  image.width = job.width;
  image.height = job.height;
  image.channels = job.channels;
  if (job.passes > 1) {
    image.pixels.resize(static_cast<size_t>(total));
    if (!read_interlaced(&job, image.pixels.data())) fail_corrupt(job);
  } else {
    // Grow the buffer as rows arrive (doubling), so truncated data claiming a huge image fails
    // before allocating it.
    const int64_t first_rows = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(row_bytes, 1));
    int64_t done = 0;
    while (done < job.height) {
      const int64_t rows = std::min<int64_t>(job.height - done, std::max(done, first_rows));
      image.pixels.resize(static_cast<size_t>((done + rows) * row_bytes));
      if (!read_rows(&job, image.pixels.data() + done * row_bytes, static_cast<png_uint_32>(rows)))
        fail_corrupt(job);
      done += rows;
    }
  }
  if (!read_end(&job)) fail_corrupt(job);
  return image;
}

}  // namespace kiln::io::png
