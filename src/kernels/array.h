// Data-movement kernels for the shape and indexing ops. They move bytes, so one
// kernel serves every dtype; callers validate all arguments first.
#pragma once

#include <omp.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/threads.h"

namespace kiln::kernels {

// Work (in bytes) below which the copy kernels stay on the calling thread.
constexpr size_t kParallelCopyBytes = size_t{128} << 10;

// Runs body(begin, end) over [0, n) work items: on this thread when the work (`bytes`) is
// small, otherwise in one contiguous range per OpenMP thread. body runs inside an OpenMP
// region: it must not allocate or throw (either terminates the process there); allocate
// before calling this.
template <typename F>
void parallel_ranges(int64_t n, size_t bytes, F &&body) {
  if (bytes < kParallelCopyBytes || num_threads() == 1 || n < 2) {
    body(int64_t{0}, n);
    return;
  }
  apply_num_threads();
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) body(b, e);
  }
}
// The most dims copy_strided takes: tile views each of up to 8 dims as two.
constexpr size_t kMaxCopyDims = 16;

// Copies the elements of an index space `dims` (row-major order) from src to
// dst, element (i0, i1, ...) reading src + sum(ik * src_strides[k]) and writing
// dst + sum(ik * dst_strides[k]); strides are in elements and may be 0 on the
// source side (broadcasting). Destinations must not overlap. At most kMaxCopyDims dims.
void copy_strided(void *dst, const std::vector<int64_t> &dst_strides, const void *src,
                  const std::vector<int64_t> &src_strides, const std::vector<int64_t> &dims,
                  size_t elem_size);

// Row-major strides (in elements) of dims.
std::vector<int64_t> contiguous_strides(const std::vector<int64_t> &dims);

// Index of the first value outside [0, n), or -1 when all are inside.
template <typename Index>
int64_t find_out_of_range(const Index *indices, int64_t count, int64_t n);

}  // namespace kiln::kernels
