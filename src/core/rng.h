// Counter-based random numbers (Philox4x32-10): a (seed, op seed) pair names a
// stream, an element index is the counter, so results never depend on threads.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace kiln {

// Sets the global seed and restarts the per-op seed sequence (like tf.random.set_seed).
void set_global_seed(uint64_t seed);
uint64_t global_seed();
// The Philox stream of one random op call, as TF2 picks it. Without an op seed (op_seed < 0): the
// next value of the global sequence. With one: a stream per (global seed, op seed, call number),
// the call number counting calls with that op seed since the last set_global_seed, so successive
// calls differ (TF2's `tf.random.uniform([2], seed=7)` twice) and a run repeats exactly. Thread-safe;
// calls racing on one op seed get distinct call numbers in an unspecified order.
uint64_t resolve_op_seed(int64_t op_seed);

// Everything resolve_op_seed's next results depend on (the counterpart of TF's
// tf.random.Generator state), so a checkpoint can carry it and a run resumed in a fresh process
// draws exactly what the uninterrupted run drew.
struct GlobalRngState {
  uint64_t seed = 0;
  uint64_t next_unseeded = 0;  // draws of the global sequence (resolve_op_seed(-1)) made so far
  // (op seed >= 0, calls made with it), ascending op seed; op seeds never used are left out.
  std::vector<std::pair<int64_t, uint64_t>> op_seed_calls;
};
// A snapshot taken under the lock resolve_op_seed takes, so it is consistent even while other
// threads draw.
GlobalRngState global_rng_state();
// Replaces the whole state at once (under the same lock). InvalidArgument, changing nothing, for
// a negative or repeated op seed.
void set_global_rng_state(const GlobalRngState &state);
// The checks set_global_rng_state makes (InvalidArgument for a negative or repeated op seed),
// without setting anything.
void check_global_rng_state(const GlobalRngState &state);

// Philox4x32-10. Uniform draws use all four words of a block: element i of a uniform fill or of a
// dropout mask is word i % 4 of block i / 4 (as TensorFlow's Philox ops do), so one block serves
// four elements. A normal draw takes one block per element (Box-Muller over its first two words):
// its cost is the log and cos, not the block. Element i's value depends only on (key, stream, i),
// never on how a fill is split among threads or vectors; kernels/random_simd.cc computes the same
// words 8 or 16 blocks at a time and is tested bit for bit against block().
class Philox {
 public:
  Philox(uint64_t seed, uint64_t op_seed)
      : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}, stream_(op_seed) {}
  // Four 32-bit random words for block number `counter` (inline: random fills call it per element).
  std::array<uint32_t, 4> block(uint64_t counter) const {
    std::array<uint32_t, 4> c = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                                 static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)};
    uint32_t k0 = key_[0], k1 = key_[1];
    for (int r = 0; r < kRounds; ++r) {
      uint64_t p0 = uint64_t{kMul0} * c[0];
      uint64_t p1 = uint64_t{kMul1} * c[2];
      c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<uint32_t>(p0)};
      k0 += kBump0;
      k1 += kBump1;
    }
    return c;
  }
  // Uniform float in [0, 1) for element i: word i % 4 of block i / 4.
  float uniform(uint64_t i) const { return unit(block(i >> 2)[i & 3]); }
  // Standard normal for element i (Box-Muller over the first two words of block i).
  float normal(uint64_t i) const {
    auto b = block(i);
    float u1 = (static_cast<float>(b[0] >> 8) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853071795864f * unit(b[1]));
  }
  // Uniform float in [0, 1) at draw `round` of element i, for rejection sampling: round 0 is
  // uniform(i); round r > 0 takes word i % 4 of block i / 4 + r * 2^48, clear of every first draw
  // (fills stay below 2^50 elements) and of every other (element, round).
  float uniform_at(uint64_t i, uint64_t round) const { return unit(block((i >> 2) + (round << 48))[i & 3]); }

  // A 32-bit word as a float in [0, 1): its top 24 bits times 2^-24, exact.
  static float unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

  uint32_t key_word(int w) const { return key_[static_cast<size_t>(w & 1)]; }
  uint64_t stream() const { return stream_; }

  // The algorithm's constants, shared with the vector code.
  static constexpr int kRounds = 10;
  static constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  static constexpr uint32_t kBump0 = 0x9E3779B9u, kBump1 = 0xBB67AE85u;

 private:
  std::array<uint32_t, 2> key_;
  uint64_t stream_;
};

}  // namespace kiln
