#include "core/rng.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "core/error.h"

namespace kiln {

namespace {
// Every change of the three parts of the state happens under g_calls_mu, so global_rng_state()
// sees them together; g_seed stays atomic because hot paths read it without the lock.
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
  uint64_t call;
  {
    std::lock_guard<std::mutex> lock(g_calls_mu);
    if (op_seed < 0) return (uint64_t{1} << 63) | g_op_counter.fetch_add(1);
    call = calls_per_op_seed()[op_seed]++;
  }
  // The first call keeps the op seed itself as its stream; later ones hash (op seed, call). The top
  // bit stays clear, so no seeded stream is one of the unseeded sequence's.
  if (call == 0) return static_cast<uint64_t>(op_seed);
  return splitmix64(static_cast<uint64_t>(op_seed) ^ splitmix64(call)) & ~(uint64_t{1} << 63);
}

GlobalRngState global_rng_state() {
  GlobalRngState s;
  std::lock_guard<std::mutex> lock(g_calls_mu);
  s.seed = g_seed.load();
  s.next_unseeded = g_op_counter.load();
  const auto &calls = calls_per_op_seed();
  s.op_seed_calls.assign(calls.begin(), calls.end());
  std::sort(s.op_seed_calls.begin(), s.op_seed_calls.end());
  return s;
}

namespace {

std::unordered_map<int64_t, uint64_t> checked_calls(const GlobalRngState &state) {
  std::unordered_map<int64_t, uint64_t> calls;
  calls.reserve(state.op_seed_calls.size());
  for (const auto &c : state.op_seed_calls) {
    if (c.first < 0)
      fail(Code::kInvalidArgument, "set_global_rng_state: op seed ", c.first,
           " has a call count; expected op seeds >= 0 (unseeded draws are counted by next_unseeded)");
    if (!calls.emplace(c.first, c.second).second)
      fail(Code::kInvalidArgument, "set_global_rng_state: op seed ", c.first,
           " is listed twice; expected one call count per op seed");
  }
  return calls;
}

}  // namespace

void check_global_rng_state(const GlobalRngState &state) { checked_calls(state); }

void set_global_rng_state(const GlobalRngState &state) {
  std::unordered_map<int64_t, uint64_t> calls = checked_calls(state);
  std::lock_guard<std::mutex> lock(g_calls_mu);
  g_seed.store(state.seed);
  g_op_counter.store(state.next_unseeded);
  calls_per_op_seed().swap(calls);
}

}  // namespace kiln
