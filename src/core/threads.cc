#include "core/threads.h"

#include <omp.h>
#include <pthread.h>

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

// libgomp's threads do not survive fork: in the child, the thread that forked still has its
// parent's team on record, and its next parallel region (of more than one thread) waits for those
// threads for ever. So that thread runs kernels on one thread in the child, whatever count is set;
// threads the child starts make teams of their own. (The handler only writes this thread's
// flags: the next apply_num_threads() gives OpenMP the count of 1.)
thread_local bool t_forked = false;
void after_fork_in_child() {
  t_forked = true;
  t_applied = 0;
}
[[maybe_unused]] const bool g_fork_handler_registered =
    pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0;
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
  if (t_forked) return 1;
  if (t_override > 0) return t_override;
  int n = g_threads.load();
  if (n > 0) return n;
  return t_default > 0 ? t_default : omp_get_max_threads();
}

void apply_num_threads() {
  int n = t_override > 0 ? t_override : g_threads.load();
  if (n == 0) n = t_default;  // an override was removed and no global count is set
  if (t_forked) n = 1;
  if (n > 0 && n != t_applied) {
    if (t_applied == 0) t_default = omp_get_max_threads();
    omp_set_num_threads(n);  // OpenMP's count is per calling thread
    t_applied = n;
  }
}

}  // namespace kiln
