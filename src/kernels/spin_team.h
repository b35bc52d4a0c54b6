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
// its own helpers. fn must not throw and must not call run() (it would run serially).
#pragma once

#include <functional>

namespace kiln::kernels::spin_team {

constexpr int kMaxHelpers = 7;
constexpr int kSpinMicros = 50;

// fn(0) .. fn(parts - 1); parts >= 1 (beyond kMaxHelpers + 1 the rest run on the caller).
// Returns how many of the parts helpers ran (0: the caller ran them all).
int run(int parts, const std::function<void(int)> &fn);

// The most helpers a run starts: one fewer than the processors this process may run on (its
// affinity mask), at most kMaxHelpers; 0 on one processor (every part then runs on the caller).
int max_helpers();
// Tests: the number of helper threads started in this process (a child after fork counts its own).
int helpers_started();
// Tests: how many parts helpers have run since the process started.
long parts_run_by_helpers();

}  // namespace kiln::kernels::spin_team
