// Thread count for kernels. No hidden pool: kernels run on OpenMP with the count set here.
#pragma once

namespace kiln {

// The largest count set_num_threads accepts: max(64, 4 x the processors OpenMP sees).
int max_num_threads();
// 1 <= n <= max_num_threads(); throws InvalidArgument otherwise.
void set_num_threads(int n);
int num_threads();
// Called by kernels before a parallel region: applies the current count to the calling thread.
void apply_num_threads();

}  // namespace kiln
