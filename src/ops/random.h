// keras.random's draws beyond ops.h's uniform, normal, beta and permutation: Gamma values and the shuffle of
// a tensor's slices. Stateful, as ops.h's random ops (seed < 0: the next op seed of the global sequence).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kiln::ops {

// tf.random.gamma: float32 Gamma(alpha) values divided by the rate beta (alpha, beta > 0, finite), by
// Marsaglia and Tsang's method (boosted below 1) in float64. Not TF's stream of values.
Tensor random_gamma(const Shape &shape, double alpha, double beta = 1.0, int64_t seed = -1);
// keras.random.shuffle (tf.random.shuffle along axis 0): value's slices along axis in a random order.
Tensor random_shuffle(const Tensor &value, int64_t axis = 0, int64_t seed = -1);

}  // namespace kiln::ops
