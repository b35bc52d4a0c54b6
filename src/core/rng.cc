#include "core/rng.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace kiln {

namespace {
std::atomic<uint64_t> g_seed{0};
std::atomic<uint64_t> g_op_counter{0};
// Calls made so far per op seed, under the current global seed (set_global_seed clears it).
std::mutex g_calls_mu;
std::unordered_map<int64_t, uint64_t> &calls_per_op_seed() {
  static auto *m = new std::unordered_map<int64_t, uint64_t>();  // never destroyed: used at exit
  return *m;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

void set_global_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_calls_mu);
  g_seed.store(seed);
  g_op_counter.store(0);
  calls_per_op_seed().clear();
}

uint64_t global_seed() { return g_seed.load(); }

uint64_t resolve_op_seed(int64_t op_seed) {
  if (op_seed < 0) return (uint64_t{1} << 63) | g_op_counter.fetch_add(1);
  uint64_t call;
  {
    std::lock_guard<std::mutex> lock(g_calls_mu);
    call = calls_per_op_seed()[op_seed]++;
  }
  // The first call keeps the op seed itself as its stream; later ones hash (op seed, call). The top
  // bit stays clear, so no seeded stream is one of the unseeded sequence's.
  if (call == 0) return static_cast<uint64_t>(op_seed);
  return splitmix64(static_cast<uint64_t>(op_seed) ^ splitmix64(call)) & ~(uint64_t{1} << 63);
}

}  // namespace kiln
