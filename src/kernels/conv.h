// 2-D convolution over channels-last data (NHWC input, TF's HWIO filter) on oneDNN, except the
// one-input-channel convolutions kernels/conv_direct.h takes (forward and filter gradient).
#pragma once

#include <cstdint>
#include <functional>

namespace kiln {
class Storage;
}

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
  // Convolutions only: channel groups. 1: the filter is TF's HWIO [KH, KW, C, O]; c (depthwise): the
  // filter is TF's depthwise [KH, KW, C, O / C], output channel c * (O / C) + m.
  int64_t groups = 1;
};

// Who a filter buffer is: its storage's id and version (core/storage.h). The kernels keep the
// filter reordered to oneDNN's blocked layout per (id, version, layout), so a filter read again
// unchanged (inference, evaluation, forward then input gradient of a frozen layer) is not
// reordered again. id 0: unknown (an adopted buffer, a temporary), never cached.
struct FilterSource {
  uint64_t storage_id = 0;
  uint64_t version = 0;
};
// The source for a filter tensor's storage (0 for adopted buffers); marks the storage so that its
// cached copies are dropped when it dies.
FilterSource filter_source(Storage &storage);

// Cached reordered filters: lookups served, reorders made into the cache, entries and bytes held.
struct FilterCacheStats {
  int64_t hits = 0, misses = 0, entries = 0, bytes = 0;
};
FilterCacheStats filter_cache_stats();
void filter_cache_clear();

// Appends every field of g to a primitive-cache key.
void append_key(PrimitiveKey &key, const Window2d &g);

// y [N, OH, OW, O] = conv(x [N, H, W, C], filter [KH, KW, C, O]) (for g.groups == c: the
// depthwise filter [KH, KW, C, O / C]).
void conv2d_forward(const Window2d &g, const float *x, const float *filter, const FilterSource &filter_source,
                    float *y);
// dx [N, H, W, C] from dy [N, OH, OW, O] and the filter.
void conv2d_backward_data(const Window2d &g, const float *dy, const float *filter,
                          const FilterSource &filter_source, float *dx);
// dfilter [KH, KW, C, O] from x and dy.
void conv2d_backward_filter(const Window2d &g, const float *x, const float *dy, float *dfilter);
// The same bits with dy made piece by piece: write_dy(first, count, out) writes images [first,
// first + count) of dy [N, OH, OW, O] to out. Each piece of the computation has its images
// written just before it runs, on its thread, into a buffer of that thread's, so that dy is never
// whole in memory and is read back from the caches. write_dy runs inside a parallel region: it
// must not throw or allocate.
using DyWriter = std::function<void(int64_t first, int64_t count, float *out)>;
void conv2d_backward_filter(const Window2d &g, const float *x, const DyWriter &write_dy, float *dfilter);

}  // namespace kiln::kernels
