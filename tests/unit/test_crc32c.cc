// CRC-32C: the check value, the hardware and table paths against each other (every length up
// to 300 at every alignment), extend() over split buffers, and the mask TF and LevelDB store.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/crc32c.h"

namespace kiln::io {
namespace {

namespace cc = crc32c;

TEST(Crc32cTest, CheckValue) {
  const char *s = "123456789";
  EXPECT_EQ(cc::value(s, 9), 0xE3069283u);
  EXPECT_EQ(cc::internal::extend_portable(0, s, 9), 0xE3069283u);
  if (cc::internal::hardware_available()) {
    EXPECT_EQ(cc::internal::extend_hardware(0, s, 9), 0xE3069283u);
  }
  EXPECT_EQ(cc::value(s, 0), 0u);
}

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) B.4 test patterns.
  std::vector<unsigned char> buf(32, 0);
  EXPECT_EQ(cc::value(buf.data(), buf.size()), 0x8A9136AAu);
  std::fill(buf.begin(), buf.end(), 0xff);
  EXPECT_EQ(cc::value(buf.data(), buf.size()), 0x62A8AB43u);
  for (size_t i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(cc::value(buf.data(), buf.size()), 0x46DD794Eu);
  for (size_t i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(cc::value(buf.data(), buf.size()), 0x113FDB5Cu);
  // TensorBoard's table[1] (FORMATS.md §1.1): the CRC state after the byte 0x01.
  const unsigned char one = 1;
  EXPECT_EQ(~cc::internal::extend_portable(~0u, &one, 1), 0xF26B8303u);
}

// Both implementations give the same result for every length 0..300 at 8 start offsets, and
// extend() over any split equals the CRC of the whole.
TEST(Crc32cTest, HardwareAndPortableAgree) {
  std::mt19937 gen(7);
  std::vector<unsigned char> buf(320);
  for (auto &b : buf) b = static_cast<unsigned char>(gen());
  const bool hw = cc::internal::hardware_available();
  if (!hw) std::printf("[ note ] no SSE4.2 here: only the portable CRC32C path is tested\n");
  for (size_t start = 0; start < 8; ++start) {
    for (size_t n = 0; n <= 300; ++n) {
      const unsigned char *p = buf.data() + start;
      const uint32_t want = cc::internal::extend_portable(0, p, n);
      if (hw) {
        ASSERT_EQ(cc::internal::extend_hardware(0, p, n), want) << "start " << start << " n " << n;
      }
      ASSERT_EQ(cc::value(p, n), want) << "start " << start << " n " << n;
      const size_t cut = n / 3;
      ASSERT_EQ(cc::internal::extend_portable(cc::internal::extend_portable(0, p, cut), p + cut, n - cut),
                want);
      if (hw) {
        ASSERT_EQ(cc::internal::extend_hardware(cc::internal::extend_hardware(0, p, cut), p + cut, n - cut),
                  want);
      }
    }
  }
}

// A large buffer goes through the 8-byte loops of both paths many times.
TEST(Crc32cTest, LargeBufferAgrees) {
  std::vector<unsigned char> buf(1 << 20);
  std::mt19937 gen(11);
  for (auto &b : buf) b = static_cast<unsigned char>(gen());
  const uint32_t want = cc::internal::extend_portable(0, buf.data(), buf.size());
  if (cc::internal::hardware_available()) {
    EXPECT_EQ(cc::internal::extend_hardware(0, buf.data(), buf.size()), want);
  }
  EXPECT_EQ(cc::value(buf.data(), buf.size()), want);
}

TEST(Crc32cTest, MaskRoundTrip) {
  const uint32_t crc = cc::value("foo", 3);
  EXPECT_NE(cc::mask(crc), crc);
  EXPECT_NE(cc::mask(cc::mask(crc)), crc);
  EXPECT_EQ(cc::unmask(cc::mask(crc)), crc);
  EXPECT_EQ(cc::unmask(cc::unmask(cc::mask(cc::mask(crc)))), crc);
  std::mt19937 gen(3);
  for (int i = 0; i < 1000; ++i) {
    const uint32_t v = static_cast<uint32_t>(gen());
    ASSERT_EQ(cc::unmask(cc::mask(v)), v);
  }
  // mask(c) = rotr(c, 15) + 0xa282ead8, as TensorFlow's and LevelDB's.
  EXPECT_EQ(cc::mask(0), 0xa282ead8u);
  EXPECT_EQ(cc::mask(1u << 15), 1u + 0xa282ead8u);
}

// The masked CRC of a real TFRecord's 8 length bytes (FORMATS.md §1.3: length 0x3e, crc d9d240e7).
TEST(Crc32cTest, RealTfRecordLengthCrc) {
  const unsigned char len[8] = {0x3e, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(cc::mask(cc::value(len, 8)), 0xe740d2d9u);
}

}  // namespace
}  // namespace kiln::io
