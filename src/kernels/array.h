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

// Embedding lookup over params viewed as [outer, n, inner]: out[o, m, :] = params[o, indices[m], :].
// Indices must already be validated to lie in [0, n).
template <typename Index>
void gather(const void *params, int64_t outer, int64_t n, int64_t inner, const Index *indices, int64_t m,
            void *out, size_t elem_size);

// The reverse of gather for float32: out (viewed as [outer, n, inner]) = 0, then
// out[o, indices[j], :] += updates[o, j, :]. Indices must lie in [0, n).
template <typename Index>
void scatter_add(const float *updates, int64_t outer, int64_t n, int64_t inner, const Index *indices,
                 int64_t m, float *out);

// out[i, :] = off, with out[i, indices[i]] = on when 0 <= indices[i] < depth.
template <typename Index>
void one_hot(const Index *indices, int64_t count, int64_t depth, float on, float off, float *out);

// Index of the first value outside [0, n), or -1 when all are inside.
template <typename Index>
int64_t find_out_of_range(const Index *indices, int64_t count, int64_t n);

}  // namespace kiln::kernels
