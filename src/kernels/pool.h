// 2-D max and average pooling over channels-last (NHWC) data on oneDNN.
#pragma once

#include <cstdint>
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

// Whether g (a max pooling's geometry) is one the fused passes below take: valid, strides equal
// to its window of at most 256 cells, the windows inside the input.
bool max_pool_tiles(const Window2d &g);

// A Conv2D's bias and ReLU and the max pooling after it in one pass (kernels/pool_simd.cc), for
// a valid pooling whose strides equal its window of at most 256 cells (g: the pooling's geometry).
// p [N, OH, OW, C] gets the pooling of relu(z + bias) (bias [C] or null) with the bits of
// bias_unary_inplace(kRelu) then pool2d_forward(kMax): each window starts at the lowest float and
// takes a value only when greater, so a NaN never wins and the first of equal maxima does. arg
// (null: not needed) [N, OH, OW, C] gets each winner's ky * kw + kx.
void bias_relu_max_pool2d(const Window2d &g, const float *z, const float *bias, float *p, uint8_t *arg);
// One pooled row of it on the calling thread: z holds the row's kh input rows (pitch w * c
// floats), p and arg (or null) the row's ow * c outputs. No allocation, no throw.
void bias_relu_max_pool_row(const float *z, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t ow,
                            const float *bias, float *p, uint8_t *arg) noexcept;
// The routing by those args and its adjoint: dz [N, H, W, C] = dp at each window's arg and zero
// elsewhere (rows and columns past the last window included); dp = dz at each window's arg.
void max_pool2d_route(const Window2d &g, const uint8_t *arg, const float *dp, float *dz);
// Images [first, first + count) of that routing into dz [count, H, W, C], on the calling thread
// (for conv2d_backward_filter's DyWriter: no allocation, no throw; g as max_pool2d_route takes it).
void max_pool2d_route_images(const Window2d &g, const uint8_t *arg, const float *dp, int64_t first,
                             int64_t count, float *dz) noexcept;
void max_pool2d_pick(const Window2d &g, const uint8_t *arg, const float *dz, float *dp);

}  // namespace kiln::kernels
