#include "core/threads.h"

#include <omp.h>

#include <atomic>

#include "core/error.h"

namespace kiln {

namespace {
std::atomic<int> g_threads{0};  // 0: not set yet, use OpenMP's default
thread_local int t_applied = 0;
}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail(Code::kInvalidArgument, "set_num_threads: got ", n, "; expected a count >= 1");
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
