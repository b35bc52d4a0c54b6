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

// Max pooling's routing by argmax in plain loops, for its higher-order gradients. Each
// window of x [N, H, W, C] routes through its first maximum (row-major within the window;
// padding never wins). gather: dst [N, OH, OW, C] takes src [N, H, W, C] at each window's
// maximum. scatter: dx [N, H, W, C] (zeroed here) sums dy [N, OH, OW, C] into them. Each is
// the other's adjoint.
void max_pool2d_gather(const Window2d &g, const float *x, const float *src, float *dst);
void max_pool2d_scatter(const Window2d &g, const float *x, const float *dy, float *dx);

}  // namespace kiln::kernels
