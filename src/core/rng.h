// Counter-based random numbers (Philox4x32-10): a (seed, op seed) pair names a
// stream, an element index is the counter, so results never depend on threads.
#pragma once

#include <array>
#include <cstdint>

namespace kiln {

// Sets the global seed and restarts the per-op seed sequence (like tf.random.set_seed).
void set_global_seed(uint64_t seed);
uint64_t global_seed();
// The op seed to use: `op_seed` when >= 0, otherwise the next value of the
// global sequence, so repeated unseeded calls differ but a run repeats exactly.
uint64_t resolve_op_seed(int64_t op_seed);

class Philox {
 public:
  Philox(uint64_t seed, uint64_t op_seed) : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}, stream_(op_seed) {}
  // Four 32-bit random words for block number `counter`.
  std::array<uint32_t, 4> block(uint64_t counter) const;
  // Uniform float in [0, 1) for element i.
  float uniform(uint64_t i) const;
  // Standard normal for element i (Box-Muller over the element's block).
  float normal(uint64_t i) const;
  // Uniform float in [0, 1) at draw `k` (0..3) of element i: extra draws for rejection sampling.
  float uniform_at(uint64_t i, uint64_t round) const;

 private:
  std::array<uint32_t, 2> key_;
  uint64_t stream_;
};

}  // namespace kiln
