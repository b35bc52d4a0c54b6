// 2-D convolution over channels-last data (NHWC input, TF's HWIO filter) on oneDNN.
#pragma once

#include <cstdint>

namespace kiln::kernels {

struct PrimitiveKey;  // kernels/engine.h; ops include this header, which keeps dnnl.hpp out of them

// Geometry of a 2-D window op (convolution or pooling) over NHWC data. The ops fill it in
// from TF's VALID/SAME arithmetic; the kernels take it as given.
struct Window2d {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input [N, H, W, C]
  int64_t kh = 0, kw = 0;              // window (filter) size
  int64_t o = 0;                       // convolution output channels; pooling: c
  int64_t sh = 1, sw = 1;              // strides
  int64_t dh = 1, dw = 1;              // dilations, TF's convention: 1 = none
  int64_t oh = 0, ow = 0;              // output spatial size
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// Appends every field of g to a primitive-cache key.
void append_key(PrimitiveKey &key, const Window2d &g);

// y [N, OH, OW, O] = conv(x [N, H, W, C], filter [KH, KW, C, O]).
void conv2d_forward(const Window2d &g, const float *x, const float *filter, float *y);
// dx [N, H, W, C] from dy [N, OH, OW, O] and the filter.
void conv2d_backward_data(const Window2d &g, const float *dy, const float *filter, float *dx);
// dfilter [KH, KW, C, O] from x and dy.
void conv2d_backward_filter(const Window2d &g, const float *x, const float *dy, float *dfilter);

}  // namespace kiln::kernels
