// 2-D max and average pooling over channels-last (NHWC) data on oneDNN.
#pragma once

#include <memory>

#include "core/storage.h"
#include "kernels/conv.h"

namespace kiln::kernels {

// kAvg excludes padded cells from each average (TF's SAME semantics).
enum class PoolKind { kMax, kAvg };

// y [N, OH, OW, C] from x [N, H, W, C] (g.o == g.c, dilations 1). For max pooling with
// keep_workspace, runs the training variant and returns the workspace pool2d_backward needs;
// otherwise returns null.
std::shared_ptr<Storage> pool2d_forward(PoolKind kind, const Window2d &g, const float *x, float *y,
                                        bool keep_workspace);
// dx [N, H, W, C] from dy [N, OH, OW, C]; max pooling needs the forward pass's workspace.
void pool2d_backward(PoolKind kind, const Window2d &g, const float *dy, const Storage *workspace, float *dx);

}  // namespace kiln::kernels
