#include "core/threads.h"

#include <omp.h>

#include <atomic>

#include "core/error.h"
#include "openmp_env/openmp_env.h"

namespace kiln {

namespace {
// libgomp has read GOMP_SPINCOUNT by the time kiln's core starts: the variable
// libkiln_openmp_env.so set for it leaves the environment again (openmp_env/openmp_env.c).
[[maybe_unused]] const bool g_openmp_env_restored = kiln_openmp_env_restore() != 0;
std::atomic<int> g_threads{0};  // 0: not set yet, use OpenMP's default
thread_local int t_override = 0;
thread_local int t_applied = 0;  // the count this thread last gave OpenMP; 0: never changed
thread_local int t_default = 0;  // OpenMP's count for this thread before kiln first changed it
}  // namespace

int max_num_threads() {
  // Oversubscribing more than 4x only slows kernels down, and libgomp aborts the whole
  // process when it cannot create the threads asked for (1 << 30 of them, say).
  const int procs = omp_get_num_procs();
  return procs > 16 ? 4 * procs : 64;
}

namespace {
// Rejects a count outside 1..max_num_threads() (or 0 when `zero_removes`), naming `op` and the range.
void check_count(const char *op, int n, bool zero_removes) {
  const int limit = max_num_threads();
  if (n >= 1 && n <= limit) return;
  if (n == 0 && zero_removes) return;
  fail(Code::kInvalidArgument, op, ": got ", n, "; expected ", zero_removes ? "0 (remove the override) or " : "",
       "a count from 1 to ", limit, " (the larger of 64 and 4 x the ", omp_get_num_procs(),
       " processors available)");
}
}  // namespace

void set_num_threads(int n) {
  check_count("set_num_threads", n, false);
  g_threads.store(n);
}

void set_num_threads_for_this_thread(int n) {
  check_count("set_num_threads_for_this_thread", n, true);
  t_override = n;
}

int num_threads_for_this_thread() { return t_override; }

int num_threads() {
  if (t_override > 0) return t_override;
  int n = g_threads.load();
  if (n > 0) return n;
  return t_default > 0 ? t_default : omp_get_max_threads();
}

void apply_num_threads() {
  int n = t_override > 0 ? t_override : g_threads.load();
  if (n == 0) n = t_default;  // an override was removed and no global count is set
  if (n > 0 && n != t_applied) {
    if (t_applied == 0) t_default = omp_get_max_threads();
    omp_set_num_threads(n);  // OpenMP's count is per calling thread
    t_applied = n;
  }
}

}  // namespace kiln
