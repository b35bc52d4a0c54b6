// Thread count for kernels. No hidden pool: kernels run on OpenMP with the count set here.
#pragma once

namespace kiln {

// The largest count set_num_threads accepts: max(64, 4 x the processors OpenMP sees).
int max_num_threads();
// The global count: 1 <= n <= max_num_threads(); throws InvalidArgument otherwise.
void set_num_threads(int n);
// The count kernels called from this thread use: its override if set, else the global count, else
// OpenMP's default; 1 on the thread that forked, in a forked child (libgomp's threads are gone).
int num_threads();
// Overrides the count for kernels called from the calling thread only (n >= 1), e.g. so that
// pipeline worker threads run at 1 thread beside a training thread using all cores (OpenMP
// teams are per calling thread, so several threads at the full count oversubscribe the
// cores). 1 <= n <= max_num_threads(), or n = 0 to remove the override; throws InvalidArgument
// otherwise and changes nothing.
void set_num_threads_for_this_thread(int n);
// The calling thread's override; 0 when it has none.
int num_threads_for_this_thread();
// Called by kernels before a parallel region: applies num_threads() to the calling thread.
void apply_num_threads();

}  // namespace kiln
