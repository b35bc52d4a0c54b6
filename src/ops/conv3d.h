// The 3-D window ops (tf.nn.conv3d, conv3d_transpose, max_pool3d, avg_pool3d) over [N, D, H, W, C],
// channels last, float32, with TF's VALID/SAME arithmetic on every axis. Each is composed from the
// 2-D op over H and W and differentiable ops along D (gather, scatter_nd, maximum), so each has the
// gradients of those ops: no kernel of its own.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/ops.h"

namespace kiln::ops {

// tf.nn.conv3d: x [N, D, H, W, C], filter [KD, KH, KW, C, O] -> [N, OD, OH, OW, O]. strides and
// dilations: 3 positive values (depth, height, width).
Tensor conv3d(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
              const std::vector<int64_t> &dilations, Padding padding);
// tf.nn.conv3d_transpose: x [N, D, H, W, C], filter [KD, KH, KW, O, C], output_shape [N, OD, OH, OW, O]
// such that conv3d of output_shape with filter, strides, dilations and padding gives x's shape.
Tensor conv3d_transpose(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &output_shape,
                        const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                        Padding padding);
// tf.nn.max_pool3d / avg_pool3d over [N, D, H, W, C]; ksize and strides: 3 positive values. Padded
// cells take no part (avg divides by the window's cells inside the input). max's gradient goes to
// the first maximum of each window in (depth, height, width) order, as TF's.
Tensor max_pool3d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding);
Tensor avg_pool3d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding);

}  // namespace kiln::ops
