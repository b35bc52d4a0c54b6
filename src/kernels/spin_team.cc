#include "kernels/spin_team.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kiln::kernels::spin_team {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// A part's state for job s: s << 2 | one of these.
constexpr uint64_t kOpen = 0, kClaimed = 1, kDone = 2;

// Laid out by who writes what: the job's line, which helpers spin on; the job's bytes; each
// part's state on a line of its own (a helper claims its part without taking the others' lines).
struct Team {
  struct alignas(64) Slot {
    std::atomic<uint64_t> state{kDone};
  };
  // The current job: its number, its function and its part count (atomics: a late helper reads
  // them while the next job is being published, and then finds its part's state stale).
  alignas(64) std::atomic<uint64_t> seq{0};
  std::atomic<Invoke> invoke{nullptr};
  std::atomic<int> parts{0};
  std::atomic<int> sleepers{0};
  // The job's bytes: written before its number is published, read by a helper only after its
  // claim succeeds (the caller cannot have moved on to the next job then).
  alignas(64) unsigned char job[kJobBytes];
  Slot slot[kMaxHelpers];  // part i + 1's state, for helper i
  alignas(64) std::atomic<bool> busy{false};
  // Sleeping helpers wait here for the next job number.
  std::mutex mu;
  std::condition_variable cv;
  std::mutex start_mu;
  std::atomic<int> started{0};
  std::atomic<long> helper_parts{0};
  Team *parent = nullptr;  // in a forked child: the team it inherited (g_inherited when made)
};

// Starts fetching lines another core wrote: the job's bytes to read and the part's state to write
// (PREFETCHW; an older x86 that lacks it runs it as a no-op), while the claim waits on its line.
inline void fetch_job(const Team &t, const std::atomic<uint64_t> &state) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(state));
#endif
  for (size_t i = 0; i < kJobBytes; i += 64) __builtin_prefetch(t.job + i);
}

std::atomic<Team *> g_team{nullptr};
// The teams a forked child inherited, its parent's last (each points to the one before): never
// freed, since in the parent their helpers still use them, and kept reachable here for a leak
// checker in the child.
Team *g_inherited = nullptr;

// A forked child has none of its parent's helpers: the next team() makes it a team of its own.
// Nothing here allocates (only async-signal-safe work after a fork): another thread of the parent
// may have held the allocator's lock when it forked, and the child would then wait for it forever
// (seen under AddressSanitizer, whose child spun in its stack depot's lock).
void after_fork_in_child() {
  if (Team *t = g_team.load(std::memory_order_relaxed)) g_inherited = t;
  g_team.store(nullptr, std::memory_order_relaxed);
}

Team &team() {
  Team *t = g_team.load(std::memory_order_acquire);
  if (t) return *t;
  static std::once_flag registered;  // a forked child keeps the registration
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
  Team *fresh = new Team();  // never destroyed (helpers outlive main)
  fresh->parent = g_inherited;
  if (g_team.compare_exchange_strong(t, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
    return *fresh;
  delete fresh;  // another thread's came first, and no helper of this one started
  return *t;
}

// Helper h serves part h + 1 of every job after job `seen` (the last published before it started).
void helper_loop(Team *t, int h, uint64_t seen) {
  using clock = std::chrono::steady_clock;
  for (;;) {
    uint64_t s = t->seq.load(std::memory_order_acquire);
    if (s == seen) {
      const auto start = clock::now();
      for (int spins = 1; (s = t->seq.load(std::memory_order_acquire)) == seen; ++spins) {
        cpu_relax();
        if (spins % 256 == 0 && clock::now() - start > std::chrono::microseconds(kSpinMicros)) {
          std::unique_lock<std::mutex> lock(t->mu);
          t->sleepers.fetch_add(1);
          t->cv.wait(lock, [&] { return t->seq.load() != seen; });
          t->sleepers.fetch_sub(1);
        }
      }
    }
    seen = s;
    const int parts = t->parts.load(std::memory_order_acquire);
    const Invoke invoke = t->invoke.load(std::memory_order_acquire);
    if (h + 1 >= parts) continue;
    std::atomic<uint64_t> &state = t->slot[h].state;
    fetch_job(*t, state);
    // Claims the part only while job s is current: a claim that succeeds means the caller has not
    // finished job s, so invoke and the job's bytes (written before s was published) are job s's.
    uint64_t expect = s << 2 | kOpen;
    if (!state.compare_exchange_strong(expect, s << 2 | kClaimed, std::memory_order_acq_rel)) continue;
    invoke(t->job, h + 1);
    t->helper_parts.fetch_add(1, std::memory_order_relaxed);
    state.store(s << 2 | kDone, std::memory_order_release);
  }
}

// Starts helpers until `want` run (fewer if the system refuses threads); returns how many run.
int ensure_helpers(Team &t, int want) {
  int have = t.started.load(std::memory_order_acquire);
  if (have >= want) return have;
  std::lock_guard<std::mutex> lock(t.start_mu);
  have = t.started.load(std::memory_order_relaxed);
  for (; have < want; ++have) {
    try {
      // The caller publishes its job after this: the helper takes that one too.
      std::thread(helper_loop, &t, have, t.seq.load()).detach();
    } catch (...) {  // no more threads: the caller runs the remaining parts itself
      break;
    }
    t.started.store(have + 1, std::memory_order_release);
  }
  return have;
}

int run_serially(int from, int parts, Invoke invoke, const void *job) {
  for (int i = from; i < parts; ++i) invoke(job, i);
  return 0;
}

}  // namespace

int run(int parts, const std::function<void(int)> &fn) {
  const std::function<void(int)> *f = &fn;
  return run_job(
      parts,
      [](const void *job, int part) { (**static_cast<const std::function<void(int)> *const *>(job))(part); },
      &f, sizeof(f));
}

int run_job(int parts, Invoke invoke, const void *job, size_t bytes) {
  if (parts <= 1 || bytes > kJobBytes) return run_serially(0, parts, invoke, job);
  Team &t = team();
  const int helpers = ensure_helpers(t, std::min(parts - 1, max_helpers()));
  bool idle = false;
  if (helpers == 0 || !t.busy.compare_exchange_strong(idle, true, std::memory_order_acquire))
    return run_serially(0, parts, invoke, job);
  const int team_parts = helpers + 1 < parts ? helpers + 1 : parts;
  const uint64_t s = t.seq.load(std::memory_order_relaxed) + 1;
  std::memcpy(t.job, job, bytes);
  for (int i = 0; i + 1 < team_parts; ++i) t.slot[i].state.store(s << 2 | kOpen, std::memory_order_relaxed);
  t.invoke.store(invoke, std::memory_order_relaxed);
  t.parts.store(team_parts, std::memory_order_relaxed);
  t.seq.store(s);  // sequentially consistent: publishes the job, and orders the sleepers check below
  if (t.sleepers.load() > 0) {
    std::lock_guard<std::mutex> lock(t.mu);
    t.cv.notify_all();
  }
  invoke(job, 0);
  int by_helpers = 0;
  for (int i = 1; i < team_parts; ++i) {
    std::atomic<uint64_t> &state = t.slot[i - 1].state;
    // Read before claiming: a claim would take the line from a helper that still has to write it.
    uint64_t expect = s << 2 | kOpen;
    if (state.load(std::memory_order_relaxed) == expect &&
        state.compare_exchange_strong(expect, s << 2 | kClaimed, std::memory_order_acq_rel)) {
      invoke(job, i);  // its helper has not taken it: no waiting for a thread that may not be running
      state.store(s << 2 | kDone, std::memory_order_relaxed);
    } else {
      while (state.load(std::memory_order_acquire) != (s << 2 | kDone)) cpu_relax();
      ++by_helpers;
    }
  }
  run_serially(team_parts, parts, invoke, job);
  t.busy.store(false, std::memory_order_release);
  return by_helpers;
}

// One fewer than the processors this process may run on (its affinity mask, as taskset or a
// container's cpuset sets it, not the machine's count): a helper on a processor shared with its
// caller would only take turns with it.
int max_helpers() {
  static const int n = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                            : static_cast<int>(std::thread::hardware_concurrency());
    return std::clamp(cpus - 1, 0, kMaxHelpers);
  }();
  return n;
}

int helpers_started() { return team().started.load(std::memory_order_acquire); }

long parts_run_by_helpers() { return team().helper_parts.load(std::memory_order_relaxed); }

}  // namespace kiln::kernels::spin_team
