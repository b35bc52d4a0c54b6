// Random fills on the counter-based Philox generator: element i's value depends only on the
// generator and i (uniform draws: word i % 4 of block i / 4; normal draws: block i), so a result
// never depends on the thread count. Uniform fills and dropout run in Highway vectors
// (kernels/random_simd.h), bit-identical to Philox::uniform.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/rng.h"

namespace kiln::kernels {

// Element count below which the fills stay on the calling thread.
constexpr int64_t kParallelRandomElements = 32768;

// out[i] = minval + (maxval - minval) * u_i, u_i uniform in [0, 1).
void random_uniform(const Philox &gen, float minval, float maxval, float *out, int64_t n);
// The other dtypes of tf.random.uniform (ops::random_uniform_float / _int). bfloat16 and int32
// take word i % 4 of block i / 4 as float32 does: bfloat16 its top 8 bits as u (exact in
// bfloat16), rounding minval + range * u from float32; int32 lo + (word mod range). float64 and
// int64 take 64 bits, words 2 (i % 2) and 2 (i % 2) + 1 of block i / 2: float64 its top 53 bits as
// u; int64 lo + (bits mod range). range > 0 for the integers (the difference of the bounds).
void random_uniform_bf16(const Philox &gen, float minval, float maxval, bfloat16 *out, int64_t n);
void random_uniform_f64(const Philox &gen, double minval, double maxval, double *out, int64_t n);
void random_uniform_i32(const Philox &gen, int32_t lo, uint32_t range, int32_t *out, int64_t n);
void random_uniform_i64(const Philox &gen, int64_t lo, uint64_t range, int64_t *out, int64_t n);
// out[i] = mean + stddev * z_i, z_i standard normal.
void random_normal(const Philox &gen, float mean, float stddev, float *out, int64_t n);
// Like random_normal, with every z_i beyond 2 (in absolute value) drawn again.
void truncated_normal(const Philox &gen, float mean, float stddev, float *out, int64_t n);
// Element i is kept when u_i >= rate (u_i = gen.uniform(i)): when out is not null,
// out[i] = kept ? x[i] * scale : 0 (x is read only then); when mask is not null,
// mask[i] = kept ? scale : 0.
void dropout(const Philox &gen, float rate, float scale, const float *x, float *out, float *mask, int64_t n);

}  // namespace kiln::kernels
