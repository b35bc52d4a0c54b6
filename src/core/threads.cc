#include "core/threads.h"

#include <omp.h>

#include <atomic>

#include "core/error.h"

namespace kiln {

namespace {
std::atomic<int> g_threads{0};  // 0: not set yet, use OpenMP's default
thread_local int t_applied = 0;
}  // namespace

int max_num_threads() {
  // Oversubscribing more than 4x only slows kernels down, and libgomp aborts the whole
  // process when it cannot create the threads asked for (1 << 30 of them, say).
  const int procs = omp_get_num_procs();
  return procs > 16 ? 4 * procs : 64;
}

void set_num_threads(int n) {
  if (n < 1) fail(Code::kInvalidArgument, "set_num_threads: got ", n, "; expected a count >= 1");
  const int limit = max_num_threads();
  if (n > limit)
    fail(Code::kInvalidArgument, "set_num_threads: got ", n, "; expected at most ", limit,
         " (the larger of 64 and 4 x the ", omp_get_num_procs(), " processors available)");
  g_threads.store(n);
}

int num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

void apply_num_threads() {
  int n = g_threads.load();
  if (n > 0 && n != t_applied) {
    omp_set_num_threads(n);  // OpenMP's count is per calling thread
    t_applied = n;
  }
}

}  // namespace kiln
