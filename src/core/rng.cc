#include "core/rng.h"

#include <atomic>
#include <cmath>

namespace kiln {

namespace {
std::atomic<uint64_t> g_seed{0};
std::atomic<uint64_t> g_op_counter{0};

inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

inline float to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
}  // namespace

void set_global_seed(uint64_t seed) {
  g_seed.store(seed);
  g_op_counter.store(0);
}

uint64_t global_seed() { return g_seed.load(); }

uint64_t resolve_op_seed(int64_t op_seed) {
  if (op_seed >= 0) return static_cast<uint64_t>(op_seed);
  return (uint64_t{1} << 63) | g_op_counter.fetch_add(1);
}

std::array<uint32_t, 4> Philox::block(uint64_t counter) const {
  std::array<uint32_t, 4> c = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                               static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)};
  uint32_t k0 = key_[0], k1 = key_[1];
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c[0], &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c[2], &hi1);
    c = {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

float Philox::uniform(uint64_t i) const { return to_unit(block(i)[0]); }

float Philox::uniform_at(uint64_t i, uint64_t round) const {
  return to_unit(block(i + (round << 48))[round & 3]);
}

float Philox::normal(uint64_t i) const {
  auto b = block(i);
  float u1 = (static_cast<float>(b[0] >> 8) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
  float u2 = to_unit(b[1]);
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853071795864f * u2);
}

}  // namespace kiln
