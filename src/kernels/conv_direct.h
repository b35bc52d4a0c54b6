// A direct convolution of one input channel (the first Conv2D over grey images: MNIST,
// Fashion-MNIST), in Highway vectors over the output channels chosen at run time
// (kernels/conv_direct_simd.cc). oneDNN's kernels block over input channels and spend most of
// their time on layout work when there is one; here each output is nine-or-so FMAs from a
// broadcast input value and a filter vector. kernels/conv.cc takes these for every convolution
// they apply to, so that all of kiln's paths (the plain op, the fused conv + pool, the gradients)
// agree bit for bit.
#pragma once

#include <cstdint>

#include "kernels/conv.h"

namespace kiln::kernels {

// At most this many filter taps (kh * kw) for the direct kernels.
constexpr int64_t kMaxDirectTaps = 64;

// Whether the direct kernels take g: one input channel, groups 1, strides and dilations 1, no
// padding, at most kMaxDirectTaps taps, something to compute.
bool direct_conv_applies(const Window2d &g);

// y [N, OH, OW, O] = conv(x [N, H, W, 1], filter [KH, KW, 1, O]) for g that direct_conv_applies
// to: y[n, oy, ox, o] = sum over taps (ky, kx) in row-major order of x[n, oy + ky, ox + kx] *
// filter[ky, kx, 0, o], accumulated from +0 with one FMA a tap (a multiply and an add where the
// instruction set has no FMA): the same bits at every thread count. Rows split over the threads.
void direct_conv_forward(const Window2d &g, const float *x, const float *filter, float *y);

// Whether direct_conv_bias_relu_max_pool takes (g, pool): direct_conv_applies(g), and a pooled
// row's convolution rows fit the kernel's stack buffer.
bool direct_conv_fuses_pool(const Window2d &g, const Window2d &pool);
// bias_relu_max_pool2d(pool, direct_conv_forward(g, x, filter), bias, p, arg) with those bits,
// each pooled row's convolution rows computed into a buffer on the stack instead of a whole
// convolution output.
void direct_conv_bias_relu_max_pool(const Window2d &g, const Window2d &pool, const float *x,
                                    const float *filter, const float *bias, float *p, uint8_t *arg);

// dfilter [KH, KW, 1, O] = sum over images, output rows, output columns (in that order) of
// x[n, oy + ky, ox + kx] * dy[n, oy, ox, o], each sum from +0 with one FMA a term, on the calling
// thread (written, not accumulated). No allocation, no throw.
void direct_conv_filter_grad(const Window2d &g, const float *x, const float *dy, float *dfilter) noexcept;

}  // namespace kiln::kernels
