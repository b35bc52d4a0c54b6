// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TensorFlow's
// checkpoints, LevelDB tables and TFRecord files, and the "masked" form those formats store
// (FORMATS.md §1.1): a CRC stored next to the data it covers is rotated and offset so that
// the CRC of a buffer holding its own CRC is not trivially related to it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::io::crc32c {

// The CRC of the bytes already covered by `crc` followed by data[0, n): extend(0, d, n) is the
// CRC of d, and extend(extend(0, a, n), b, m) the CRC of a then b. Uses the SSE4.2 crc32
// instruction when the CPU has it (chosen at run time), a table otherwise; both agree exactly.
uint32_t extend(uint32_t crc, const void *data, size_t n);
inline uint32_t value(const void *data, size_t n) { return extend(0, data, n); }

constexpr uint32_t kMaskDelta = 0xa282ead8u;
// Rotate right by 15 bits, then add kMaskDelta (TensorFlow's and LevelDB's mask).
inline uint32_t mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// The two implementations behind extend(), so tests can check each on any machine.
namespace internal {
uint32_t extend_portable(uint32_t crc, const void *data, size_t n);
// True when this CPU has SSE4.2; extend_hardware may only be called then.
bool hardware_available();
uint32_t extend_hardware(uint32_t crc, const void *data, size_t n);
}  // namespace internal

}  // namespace kiln::io::crc32c
