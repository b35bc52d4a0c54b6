// CRC-32C with two implementations: the SSE4.2 crc32 instruction (compiled for that target in
// this one function only, so the library still runs on CPUs without it) and a portable
// slicing-by-8 table walk. extend() picks one the first time it runs.
#include "io/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define KILN_CRC32C_X86 1
#endif

namespace kiln::io::crc32c {

namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC contribution of byte
// b followed by k zero bytes, which lets the loop fold 8 input bytes per step.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][b] = c;
    }
    for (size_t k = 1; k < 8; ++k) {
      for (size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
    }
  }
};
constexpr Tables kTables;

inline uint32_t load_le32(const uint8_t *p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

#ifdef KILN_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const uint8_t *p, size_t n) {
  uint32_t state = ~crc;
  // Byte steps up to an 8-byte boundary keep the 8-byte loads aligned.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    state = _mm_crc32_u8(state, *p++);
    --n;
  }
#if defined(__x86_64__)
  uint64_t wide = state;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    wide = _mm_crc32_u64(wide, v);
    p += 8;
    n -= 8;
  }
  state = static_cast<uint32_t>(wide);
#endif
  while (n >= 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    state = _mm_crc32_u32(state, v);
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    state = _mm_crc32_u8(state, *p++);
    --n;
  }
  return ~state;
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const void *, size_t);

ExtendFn choose() {
  return internal::hardware_available() ? &internal::extend_hardware : &internal::extend_portable;
}

}  // namespace

namespace internal {

uint32_t extend_portable(uint32_t crc, const void *data, size_t n) {
  const auto &t = kTables.t;
  const uint8_t *p = static_cast<const uint8_t *>(data);
  uint32_t state = ~crc;
  while (n >= 8) {
    const uint32_t lo = load_le32(p) ^ state;
    const uint32_t hi = load_le32(p + 4);
    state = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^
            t[3][hi & 0xffu] ^ t[2][(hi >> 8) & 0xffu] ^ t[1][(hi >> 16) & 0xffu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    state = (state >> 8) ^ t[0][(state ^ *p++) & 0xffu];
    --n;
  }
  return ~state;
}

bool hardware_available() {
#ifdef KILN_CRC32C_X86
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
#else
  return false;
#endif
}

uint32_t extend_hardware(uint32_t crc, const void *data, size_t n) {
#ifdef KILN_CRC32C_X86
  return extend_sse42(crc, static_cast<const uint8_t *>(data), n);
#else
  return extend_portable(crc, data, n);
#endif
}

}  // namespace internal

uint32_t extend(uint32_t crc, const void *data, size_t n) {
  static const ExtendFn fn = choose();
  return fn(crc, data, n);
}

}  // namespace kiln::io::crc32c
