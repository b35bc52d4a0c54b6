// LayerNormalization's float32 rows in Highway vectors, chosen at run time like kernels/simd.h.
// Bit-identical to the scalar loops of kernels/norm.cc on every instruction set: the row sums keep
// eight running lanes (element j of each whole octet into lane j mod 8, the tail into lanes 0..,
// the lanes added in order), and this file is compiled without FMA contraction, so each element
// sees the same roundings as the scalar expressions. Single-threaded and allocation-free: callers
// run them inside OpenMP regions.
#pragma once

#include <cstdint>

namespace kiln::kernels::norm_simd {

// Each of `rows` rows of x [rows, cols]: y = (x - mean) * rstd * gamma + beta with
// rstd = 1 / sqrt(variance + epsilon); the rows' means and biased variances [rows] are written where
// not null.
void ln_forward_rows_f32(int64_t rows, int64_t cols, float inv_cols, float epsilon, const float *x,
                         const float *gamma, const float *beta, float *y, float *mean, float *variance);

// Rows [r0, r1): dx, and the rows' dgamma / dbeta contributions summed (in row order) into pg / pb,
// which this sets to zero first.
void ln_backward_block_f32(int64_t r0, int64_t r1, int64_t cols, float epsilon, const float *x,
                           const float *gamma, const float *mean, const float *variance, const float *dy,
                           float *dx, float *pg, float *pb);

}  // namespace kiln::kernels::norm_simd
