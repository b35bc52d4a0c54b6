// Indexing kernels: batched gather and its scatter-add, nd-index flattening, mask positions,
// one-hot and padding. They move bytes (one kernel serves every dtype) except the float32
// accumulations. Callers validate every argument (indices in range) first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::kernels {

// params viewed as [batch, outer, n, inner], indices as [batch, m]:
// out[b, o, j, :] = params[b, o, indices[b, j], :].
template <typename Index>
void gather(const void *params, int64_t batch, int64_t outer, int64_t n, int64_t inner, const Index *indices,
            int64_t m, void *out, size_t elem_size);

// The reverse of gather: out (viewed as [batch, outer, n, inner]) = 0, then
// out[b, o, indices[b, j], :] += updates[b, o, j, :]; repeated indices accumulate (in index order).
// T: float, double, int32_t or int64_t (integers wrap around on overflow).
template <typename T, typename Index>
void scatter_add(const T *updates, int64_t batch, int64_t outer, int64_t n, int64_t inner,
                 const Index *indices, int64_t m, T *out);

// indices viewed as [count, k] index the leading k of `dims`: out[i] = row-major offset of
// indices[i, :] in dims[0..k). Returns the position (i * k + j) of the first index outside
// [0, dims[j]) and leaves out partly written then; -1 when all are inside.
template <typename Index>
int64_t nd_offsets(const Index *indices, int64_t count, int k, const int64_t *dims, int64_t *out);

// Positions of the non-zero bytes of mask[0..n) written to out (room for n); returns their count.
int64_t true_positions(const uint8_t *mask, int64_t n, int64_t *out);

// out viewed as [outer, depth, inner], indices as [outer, inner]: out[o, d, i] = on when
// indices[o, i] == d, else off (indices outside [0, depth) give a row of off). on and off point
// to one element of elem_size bytes.
template <typename Index>
void one_hot(const Index *indices, int64_t outer, int64_t inner, int64_t depth, const void *on,
             const void *off, size_t elem_size, void *out);

// Padding as a gather: along every axis a, output position i reads source position maps[a][i]
// (-1: the constant). maps[a] has out_dims[a] entries; src has src_dims.
void pad(const void *src, const std::vector<int64_t> &src_dims, const std::vector<std::vector<int64_t>> &maps,
         const void *constant, size_t elem_size, void *out);
// The adjoint of pad on float32 or float64 (T): dx (src_dims) = 0, then dx[maps(i)] += dy[i] for every
// output position i that reads the source.
template <typename T>
void pad_backward(const T *dy, const std::vector<int64_t> &src_dims, const std::vector<std::vector<int64_t>> &maps,
                  T *dx);

}  // namespace kiln::kernels
