#include "core/rng.h"

#include <atomic>

namespace kiln {

namespace {
std::atomic<uint64_t> g_seed{0};
std::atomic<uint64_t> g_op_counter{0};
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

}  // namespace kiln
