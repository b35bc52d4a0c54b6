#include "core/threads.h"

#include <omp.h>

#include <atomic>

#include "core/error.h"

namespace kiln {

namespace {
std::atomic<int> g_threads{0};  // 0: not set yet, use OpenMP's default
thread_local int t_override = 0;
thread_local int t_applied = 0;  // the count this thread last gave OpenMP; 0: never changed
thread_local int t_default = 0;  // OpenMP's count for this thread before kiln first changed it
}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail(Code::kInvalidArgument, "set_num_threads: got ", n, "; expected a count >= 1");
  g_threads.store(n);
}

void set_num_threads_for_this_thread(int n) {
  if (n < 0)
    fail(Code::kInvalidArgument, "set_num_threads_for_this_thread: got ", n,
         "; expected a count >= 1, or 0 to remove the override");
  t_override = n;
}

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
