// Thread count for kernels. No hidden pool: kernels run on OpenMP with the count set here.
#pragma once

namespace kiln {

// n >= 1; throws InvalidArgument otherwise.
void set_num_threads(int n);
int num_threads();
// Called by kernels before a parallel region: applies the current count to the calling thread.
void apply_num_threads();

}  // namespace kiln
