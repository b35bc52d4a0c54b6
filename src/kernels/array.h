// Data-movement kernels for the shape and indexing ops. They move bytes, so one
// kernel serves every dtype; callers validate all arguments first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::kernels {

// Work (in bytes) below which the copy kernels stay on the calling thread.
constexpr size_t kParallelCopyBytes = size_t{128} << 10;
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
