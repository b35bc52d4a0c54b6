// Hand loops over the maximum of each max-pooling window, for max_pool2d's higher-order
// gradients (oneDNN's backward reads a workspace only its own forward pass can write).
#pragma once

#include "kernels/conv.h"

namespace kiln::kernels {

// The argmax of a window is its first maximum in row-major window order, a NaN counting as the
// largest value; padded cells take no part. Both loops use the same rule, so they are adjoint.

// dx [N, H, W, C] = 0, then dy [N, OH, OW, C] added at each window's argmax of x.
void max_pool2d_route(const Window2d &g, const float *x, const float *dy, float *dx);
// out [N, OH, OW, C] = ddx [N, H, W, C] at each window's argmax of x.
void max_pool2d_pick(const Window2d &g, const float *x, const float *ddx, float *out);

}  // namespace kiln::kernels
