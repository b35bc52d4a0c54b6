// A team for parallel work of a few microseconds (a batch-1 Dense layer over weights the cores'
// caches hold): helper threads that spin between jobs instead of OpenMP's fork and join, which
// costs about 3 us a region and 1.3 us a barrier on a 2-core VM (a 535k-float W7 read takes
// about 9 us on two cores).
//
// run(parts, fn) calls fn(0) .. fn(parts - 1), each once, and returns when all have returned.
// Part 0 runs on the calling thread; part i > 0 is offered to helper i - 1, which always takes the
// same part, so the data a part reads stays in that helper's core's cache from call to call. A
// part no helper has taken by the time the caller finished its own runs on the caller: a helper
// that is descheduled, asleep or not yet started never makes the caller wait. The caller waits
// only for parts a helper is running. So the result never depends on which thread ran a part.
//
// Helpers start on first use (at most kMaxHelpers), spin for about kSpinMicros after their last
// job, then sleep until the next. One job runs at a time: a caller that finds the team busy (a
// concurrent run from another thread) runs all its parts itself. A child process after fork() starts
// its own helpers. fn (and run_job's invoke, run_copied's callable) must not throw and must not
// call run(), run_job() or run_copied() (the inner call would run serially).
//
// A hand-off between the cores of a VM costs about 300 ns a cache line that one core wrote and
// the other then reads (a round trip measured 550-650 ns on the 2-core Zen 5 VM). So run_copied
// copies a small job into the team's own cache lines, which a helper starts fetching as soon as it
// sees the job, instead of a helper following pointers into the caller's stack one miss after
// another (W7's batch-1 float32 MLP, two split layers: see kernels/gemv.cc).
#pragma once

#include <cstddef>
#include <functional>
#include <type_traits>

namespace kiln::kernels::spin_team {

constexpr int kMaxHelpers = 7;
constexpr int kSpinMicros = 50;
// The most bytes of a job run_copied copies.
constexpr size_t kJobBytes = 256;

// fn(0) .. fn(parts - 1); parts >= 1 (beyond kMaxHelpers + 1 the rest run on the caller).
// Returns how many of the parts helpers ran (0: the caller ran them all).
int run(int parts, const std::function<void(int)> &fn);

// invoke(job, i) for i in 0 .. parts - 1: helpers call it on a copy of the `bytes` bytes at job
// (bytes <= kJobBytes) kept in the team's cache lines, the caller on job itself.
using Invoke = void (*)(const void *job, int part);
int run_job(int parts, Invoke invoke, const void *job, size_t bytes);

// The same as run(parts, f) for a callable small and plain enough to be copied byte by byte (a
// lambda capturing values and pointers): helpers run a copy of f.
template <class F>
int run_copied(int parts, const F &f) {
  static_assert(std::is_trivially_copyable_v<F> && sizeof(F) <= kJobBytes && alignof(F) <= 64,
                "run_copied takes a small trivially copyable callable");
  return run_job(
      parts, [](const void *job, int part) { (*static_cast<const F *>(job))(part); }, &f, sizeof(F));
}

// The most helpers a run starts: one fewer than the processors this process may run on (its
// affinity mask), at most kMaxHelpers; 0 on one processor (every part then runs on the caller).
int max_helpers();
// Tests: the number of helper threads started in this process (a child after fork counts its own).
int helpers_started();
// Tests: how many parts helpers have run since the process started.
long parts_run_by_helpers();

}  // namespace kiln::kernels::spin_team
