// io/png: round trips of every channel count and odd sizes, decoding of PNGs written by another
// encoder (Pillow: palette, tRNS, 16-bit, 1-bit; an Adam7-interlaced one), and corrupt,
// truncated or invalid input, which must be an error and never a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "io/png.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;

std::vector<uint8_t> random_pixels(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t &b : v) b = static_cast<uint8_t>(gen() & 0xff);
  return v;
}

std::string bytes(const char *data, size_t n) { return std::string(data, n); }

// Written by Pillow 9.4 (and, for the interlaced one, a few lines of Python building the Adam7
// passes by hand); Pillow decodes each to the pixels the tests expect.
// 3x2 palette image at 2 bits per index: palette (10,20,30) (200,100,0) (0,255,0) (1,2,3),
// indices 0 1 2 / 3 2 1.
const char kPalette2[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x02\x03"
    "\x00\x00\x00\xe0\x1a\x8e\x89\x00\x00\x00\x0c\x50\x4c\x54\x45\x0a\x14\x1e\xc8\x64\x00\x00\xff\x00\x01\x02"
    "\x03\xcf\xb1\x48\x77\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\x90\x60\x78\x02\x00\x01\x30\x00\xfd\x56"
    "\xcd\x1c\x73\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";
// The same with a tRNS chunk giving the four entries alpha 255, 128, 0, 255.
const char kPaletteTrns[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x02\x03"
    "\x00\x00\x00\xe0\x1a\x8e\x89\x00\x00\x00\x0c\x50\x4c\x54\x45\x0a\x14\x1e\xc8\x64\x00\x00\xff\x00\x01\x02"
    "\x03\xcf\xb1\x48\x77\x00\x00\x00\x04\x74\x52\x4e\x53\xff\x80\x00\xff\xa1\xa1\x94\x66\x00\x00\x00\x0c\x49"
    "\x44\x41\x54\x78\x9c\x63\x90\x60\x78\x02\x00\x01\x30\x00\xfd\x56\xcd\x1c\x73\x00\x00\x00\x00\x49\x45\x4e"
    "\x44\xae\x42\x60\x82";
// 2x2 16-bit gray: 0, 65535 / 32896, 1000.
const char kGray16[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x10\x00"
    "\x00\x00\x00\x07\x4d\x8e\xbb\x00\x00\x00\x12\x49\x44\x41\x54\x78\x9c\x63\x60\x60\xf8\xff\x9f\xa1\xa1\x81"
    "\xf9\x05\x00\x11\x6b\x03\xea\x85\x7e\x05\x28\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";
// 9x2 1-bit gray.
const char kGray1[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x09\x00\x00\x00\x02\x01\x00"
    "\x00\x00\x00\xa2\x2d\xcb\x7e\x00\x00\x00\x0e\x49\x44\x41\x54\x78\x9c\x63\x8c\xd0\x60\xea\x60\x00\x00\x03"
    "\x7a\x01\x0c\x3b\x54\xc9\x87\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";
// 5x4 RGB, Adam7-interlaced; pixel i is (13 i, 29 i, 53 i) mod 256.
const char kInterlacedRgb[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x05\x00\x00\x00\x04\x08\x02"
    "\x00\x00\x01\xbe\x56\x52\x81\x00\x00\x00\x4d\x49\x44\x41\x54\x78\x9c\x63\x60\x00\x02\x93\x92\x2b\x0c\x52"
    "\x56\x59\x0c\x4d\x4a\x42\x73\x62\x6a\xb6\x4d\x7b\xc6\xc0\x2b\x6b\xaa\x1e\x3e\x9f\xa1\xdf\xde\x7d\x65\xe5"
    "\x46\x06\xc7\x89\x9c\x7e\xeb\xec\xa2\x4f\x17\x67\xbc\x58\x51\xca\x7a\x97\xe1\xf0\x66\xe9\x0b\x17\x02\xee"
    "\xbe\x6d\x7d\xc5\xb5\xeb\xbb\xfa\x7b\x00\xf2\x7a\x1b\x83\xd2\x00\x91\xac\x00\x00\x00\x00\x49\x45\x4e\x44"
    "\xae\x42\x60\x82";

#define PNG_BYTES(a) bytes(a, sizeof(a) - 1)

TEST(Png, RoundTripsEveryChannelCountAndOddSizes) {
  const int64_t sizes[][2] = {{1, 1}, {3, 7}, {7, 3}, {1, 33}, {784, 512}};
  unsigned seed = 1;
  for (int channels = 1; channels <= 4; ++channels) {
    for (const auto &hw : sizes) {
      const int64_t h = hw[0], w = hw[1];
      const std::string what = std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(channels);
      const auto pixels = random_pixels(static_cast<size_t>(h * w * channels), seed++);
      const std::string png = io::png::encode(pixels.data(), h, w, channels);
      ASSERT_GE(png.size(), 8u) << what;
      EXPECT_EQ(png.compare(0, 8, "\x89PNG\r\n\x1a\n", 8), 0) << what;
      // IHDR: width first, then height, bit depth 8, the color type for the channel count.
      const auto be32 = [&](size_t at) {
        return (static_cast<uint32_t>(static_cast<uint8_t>(png[at])) << 24) |
               (static_cast<uint32_t>(static_cast<uint8_t>(png[at + 1])) << 16) |
               (static_cast<uint32_t>(static_cast<uint8_t>(png[at + 2])) << 8) |
               static_cast<uint8_t>(png[at + 3]);
      };
      EXPECT_EQ(png.compare(12, 4, "IHDR"), 0) << what;
      EXPECT_EQ(be32(16), static_cast<uint32_t>(w)) << what;
      EXPECT_EQ(be32(20), static_cast<uint32_t>(h)) << what;
      EXPECT_EQ(static_cast<uint8_t>(png[24]), 8) << what;
      const int color_types[] = {0, 4, 2, 6};
      EXPECT_EQ(static_cast<uint8_t>(png[25]), color_types[channels - 1]) << what;
      EXPECT_EQ(static_cast<uint8_t>(png[28]), 0) << what << " (not interlaced)";

      const io::png::Image image = io::png::decode(png);
      EXPECT_EQ(image.height, h) << what;
      EXPECT_EQ(image.width, w) << what;
      EXPECT_EQ(image.channels, channels) << what;
      EXPECT_TRUE(image.pixels == pixels) << what;
    }
  }
}

TEST(Png, ConstantImagesCompress) {
  const std::vector<uint8_t> zeros(512 * 512 * 3, 0);
  const std::string png = io::png::encode(zeros.data(), 512, 512, 3);
  EXPECT_LT(png.size(), 4096u);
  EXPECT_TRUE(io::png::decode(png).pixels == zeros);
}

TEST(Png, DecodesPaletteImagesToRgb) {
  const io::png::Image image = io::png::decode(PNG_BYTES(kPalette2));
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 2);
  ASSERT_EQ(image.channels, 3);
  const std::vector<uint8_t> want = {10, 20, 30, 200, 100, 0, 0, 255, 0, 1, 2, 3, 0, 255, 0, 200, 100, 0};
  EXPECT_TRUE(image.pixels == want);
}

TEST(Png, DecodesPaletteTransparencyToRgba) {
  const io::png::Image image = io::png::decode(PNG_BYTES(kPaletteTrns));
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 2);
  ASSERT_EQ(image.channels, 4);
  const std::vector<uint8_t> want = {10, 20, 30, 255, 200, 100, 0, 128, 0,   255, 0, 0,
                                     1,  2,  3,  255, 0,   255, 0, 0,   200, 100, 0, 128};
  EXPECT_TRUE(image.pixels == want);
}

TEST(Png, ScalesSixteenBitSamplesToEight) {
  const io::png::Image image = io::png::decode(PNG_BYTES(kGray16));
  EXPECT_EQ(image.width, 2);
  EXPECT_EQ(image.height, 2);
  ASSERT_EQ(image.channels, 1);
  // round(v / 257): 0, 65535, 32896, 1000 -> 0, 255, 128, 4.
  const std::vector<uint8_t> want = {0, 255, 128, 4};
  EXPECT_TRUE(image.pixels == want);
}

TEST(Png, ExpandsOneBitGray) {
  const io::png::Image image = io::png::decode(PNG_BYTES(kGray1));
  EXPECT_EQ(image.width, 9);
  EXPECT_EQ(image.height, 2);
  ASSERT_EQ(image.channels, 1);
  const std::vector<uint8_t> want = {0,   255, 0,   255, 255, 0, 0, 0, 255,  //
                                     255, 255, 255, 0,   0,   0, 0, 0, 255};
  EXPECT_TRUE(image.pixels == want);
}

TEST(Png, DeinterlacesAdam7) {
  const io::png::Image image = io::png::decode(PNG_BYTES(kInterlacedRgb));
  EXPECT_EQ(image.width, 5);
  EXPECT_EQ(image.height, 4);
  ASSERT_EQ(image.channels, 3);
  std::vector<uint8_t> want;
  for (int i = 0; i < 20; ++i) {
    want.push_back(static_cast<uint8_t>(13 * i));
    want.push_back(static_cast<uint8_t>(29 * i));
    want.push_back(static_cast<uint8_t>(53 * i));
  }
  EXPECT_TRUE(image.pixels == want);
  // Truncated interlaced data is an error too.
  const std::string png = PNG_BYTES(kInterlacedRgb);
  for (size_t n = 0; n < png.size(); ++n)
    expect_error([&] { io::png::decode(png.substr(0, n)); }, Code::kDataLoss, {"png: "});
}

TEST(Png, EveryTruncationIsDataLoss) {
  const auto pixels = random_pixels(3 * 7 * 3, 7);
  const std::string png = io::png::encode(pixels.data(), 3, 7, 3);
  for (size_t n = 0; n < png.size(); ++n)
    expect_error([&] { io::png::decode(png.substr(0, n)); }, Code::kDataLoss, {"png: "});
}

TEST(Png, CorruptBytesAreDataLossNeverACrash) {
  const auto pixels = random_pixels(5 * 6 * 4, 11);
  const std::string png = io::png::encode(pixels.data(), 5, 6, 4);
  // Every chunk of our PNGs is critical and CRC-checked, so every flipped byte must be caught:
  // in the signature, a length, a type, the data or a CRC.
  for (size_t i = 0; i < png.size(); ++i) {
    for (const uint8_t flip : {0x01, 0x80, 0xff}) {
      std::string bad = png;
      bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ flip);
      SCOPED_TRACE("byte " + std::to_string(i) + " ^ " + std::to_string(flip));
      expect_error([&] { io::png::decode(bad); }, Code::kDataLoss, {"png: "});
    }
  }
}

TEST(Png, RejectsNonPngData) {
  expect_error([] { io::png::decode(""); }, Code::kDataLoss, {"png: not a PNG", "expected"});
  expect_error([] { io::png::decode("hello, world"); }, Code::kDataLoss, {"png: not a PNG"});
  expect_error([] { io::png::decode(std::string("\x89PNG\r\n\x1a\n", 8)); }, Code::kDataLoss,
               {"png: corrupt or truncated"});
  // A valid signature followed by garbage.
  expect_error([] { io::png::decode(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(64, 'x')); },
               Code::kDataLoss, {"png: corrupt or truncated"});
}

// PNG's CRC-32 (not CRC-32C) of s[from, end).
uint32_t png_crc(const std::string &s, size_t from) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = from; i < s.size(); ++i) {
    crc ^= static_cast<uint8_t>(s[i]);
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xffffffffu;
}

void append_be32(std::string &s, uint32_t v) {
  for (int b = 0; b < 4; ++b) s += static_cast<char>((v >> (24 - 8 * b)) & 0xff);
}

void append_chunk(std::string &png, const char *type, const std::string &data) {
  append_be32(png, static_cast<uint32_t>(data.size()));
  const size_t from = png.size();
  png += type;
  png += data;
  append_be32(png, png_crc(png, from));
}

// A well-formed PNG for width x height at the given depth and color type whose image data is
// only the start of a zlib stream (its 2-byte header): the rows are missing.
std::string header_only_png(uint32_t width, uint32_t height, uint8_t depth, uint8_t color_type,
                            bool interlaced = false) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  append_be32(ihdr, width);
  append_be32(ihdr, height);
  ihdr += static_cast<char>(depth);
  ihdr += static_cast<char>(color_type);
  ihdr += std::string(2, '\0');  // compression and filter method 0
  ihdr += static_cast<char>(interlaced ? 1 : 0);
  append_chunk(png, "IHDR", ihdr);
  append_chunk(png, "IDAT", std::string("\x78\x9c", 2));
  append_chunk(png, "IEND", "");
  return png;
}

TEST(Png, HeadersClaimingHugeImagesFailWithoutAllocatingThem) {
  // The helper's IHDR is what the encoder writes; without the rows it is DataLoss.
  const std::string small = header_only_png(1, 1, 8, 0);
  EXPECT_EQ(small.substr(0, 33), io::png::encode(std::vector<uint8_t>{0}.data(), 1, 1, 1).substr(0, 33));
  expect_error([&] { io::png::decode(small); }, Code::kDataLoss, {"png: corrupt or truncated"});
  // Beyond the decoder's 10^6 a side: refused before libpng allocates a row.
  expect_error([] { io::png::decode(header_only_png(0x7fffffff, 0x7fffffff, 8, 6)); },
               Code::kResourceExhausted,
               {"png: a 2147483647x2147483647 image", "at most 1000000 pixels a side"});
  expect_error([] { io::png::decode(header_only_png(1000001, 1, 8, 0)); }, Code::kResourceExhausted,
               {"1000001x1"});
  // At the limit: libpng allocates one row, then the missing data is DataLoss.
  expect_error([] { io::png::decode(header_only_png(1000000, 1000000, 16, 6)); }, Code::kDataLoss,
               {"png: corrupt or truncated"});
  // Interlaced (the last IHDR byte): 1000000 x 1000000 x 4 bytes is beyond the 1 GiB allowed.
  expect_error([] { io::png::decode(header_only_png(1000000, 1000000, 8, 6, true)); },
               Code::kResourceExhausted,
               {"png: an interlaced 1000000x1000000x4 image", "at most 1073741824 bytes"});
  // A bad header CRC is corruption.
  std::string bad_crc = header_only_png(3, 3, 8, 2);
  bad_crc[30] = static_cast<char>(bad_crc[30] ^ 1);
  expect_error([&] { io::png::decode(bad_crc); }, Code::kDataLoss, {"png: corrupt or truncated", "CRC"});
}

TEST(Png, EncodeRejectsBadArguments) {
  const std::vector<uint8_t> pixels(64, 0);
  for (const int channels : {0, 5, -1})
    expect_error([&] { io::png::encode(pixels.data(), 2, 2, channels); }, Code::kInvalidArgument,
                 {"png: ", std::to_string(channels) + " channels", "expected 1 (gray)"});
  expect_error([&] { io::png::encode(pixels.data(), 0, 2, 1); }, Code::kInvalidArgument,
               {"png: an image of height 0 and width 2", "expected both in [1, 2147483647]"});
  expect_error([&] { io::png::encode(pixels.data(), 2, 0, 1); }, Code::kInvalidArgument, {"width 0"});
  expect_error([&] { io::png::encode(pixels.data(), -1, 2, 1); }, Code::kInvalidArgument, {"height -1"});
  expect_error([&] { io::png::encode(pixels.data(), int64_t{1} << 31, 1, 1); }, Code::kInvalidArgument,
               {"height 2147483648"});
  expect_error([&] { io::png::encode(pixels.data(), 1, int64_t{1} << 40, 1); }, Code::kInvalidArgument,
               {"width 1099511627776"});
  expect_error([&] { io::png::encode(nullptr, 2, 2, 1); }, Code::kInvalidArgument, {"png: pixels is NULL"});
}

TEST(Png, EncodesRowsWiderThanLibpngsDefaultLimit) {
  // libpng refuses more than 10^6 pixels a side unless told otherwise; PNG allows 2^31 - 1. The
  // decoder keeps the 10^6 limit (a header alone must not cost gigabytes).
  const std::vector<uint8_t> row(1000001, 7);
  const std::string png = io::png::encode(row.data(), 1, 1000001, 1);
  expect_error([&] { io::png::decode(png); }, Code::kResourceExhausted,
               {"1000001x1", "1000000 pixels a side"});
  const io::png::Image image = io::png::decode(io::png::encode(row.data(), 1, 1000000, 1));
  EXPECT_EQ(image.width, 1000000);
  EXPECT_TRUE(image.pixels == std::vector<uint8_t>(1000000, 7));
}

}  // namespace
}  // namespace kiln
