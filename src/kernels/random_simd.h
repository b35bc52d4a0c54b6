// Philox-based fills in Highway vectors (8 blocks per AVX2 vector, 16 per AVX-512 one), chosen
// at run time like kernels/simd.h. Every value is bit-identical to the scalar Philox of
// core/rng.h, so results depend neither on the instruction set nor on how a fill is split: each
// function fills the elements [begin, end) of an array whose element 0 is element 0 of the draw.
// Single-threaded, allocation-free and noexcept: callers may run them inside an OpenMP region.
#pragma once

#include <cstdint>

#include "core/rng.h"

namespace kiln::kernels::random_simd {

// words[4 * j + w] = word w of gen.block(first_block + j), for j < blocks.
void philox_words(const Philox &gen, uint64_t first_block, int64_t blocks, uint32_t *words);

// out[i] = minval + range * gen.uniform(i).
void uniform_f32(const Philox &gen, float minval, float range, float *out, int64_t begin, int64_t end);

// keep_i = gen.uniform(i) >= rate; out[i] = keep_i ? x[i] * scale : 0 when out is not null (x is
// read only then); mask[i] = keep_i ? scale : 0 when mask is not null.
void dropout_f32(const Philox &gen, float rate, float scale, const float *x, float *out, float *mask,
                 int64_t begin, int64_t end);

}  // namespace kiln::kernels::random_simd
