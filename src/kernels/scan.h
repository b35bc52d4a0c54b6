// Hand-written loops for ops oneDNN has no primitive for: argmin, product / any / all rows,
// cumulative sums and products, and top-k. Tensors are viewed as [outer, n, inner] around one axis (or as
// rows of n); callers validate shapes and dtypes and preallocate outputs.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

// Work (elements read) at or above which these loops run on OpenMP threads.
constexpr int64_t kScanParallelThreshold = 32768;

// out (int64 [outer, inner]) = index of the first minimum along the middle axis of
// x viewed as [outer, n, inner], n >= 1. x: float32, bfloat16, float64, int32 or int64.
void argmin(DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner, int64_t *out);

enum class RowReduce { kProd, kAny, kAll };

// out[r] = the product (float32, float64, int32, int64; integers wrap) or logical any/all (bool)
// of the n contiguous values of row r of x viewed as [rows, n]. Empty rows give 1, false and true.
void reduce_rows(RowReduce kind, DType dtype, const void *x, int64_t rows, int64_t n, void *out);

// out = the cumulative sum of x (float32, float64, int32, int64) along the middle axis of
// [outer, n, inner]. exclusive: each sum leaves out its own element; reverse: sums run from the end.
void cumsum(bool exclusive, bool reverse, DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner,
            void *out);

// As cumsum, the cumulative product (empty products are 1; integers wrap).
void cumprod(bool exclusive, bool reverse, DType dtype, const void *x, int64_t outer, int64_t n,
             int64_t inner, void *out);

// For each row of x (float32, float64, int32, int64) viewed as [rows, n]: the k largest values
// in descending order into values [rows, k] (x's dtype) and their indices into indices (int32
// [rows, k]). Ties go to the lower index, as TF; NaN counts as larger than every number.
void top_k(DType dtype, const void *x, int64_t rows, int64_t n, int64_t k, void *values, int32_t *indices);

}  // namespace kiln::kernels
