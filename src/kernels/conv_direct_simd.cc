// The direct one-input-channel convolution of kernels/conv_direct.h in Highway vectors chosen at
// run time. Highway's foreach_target re-includes this file per instruction set.
#include "core/error.h"
#include "kernels/array.h"
#include "kernels/conv_direct.h"
#include "kernels/pool.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv_direct_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::conv_direct_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// One output pixel's sum: +0, then one MulAdd per tap in row-major order. Every kernel below
// computes exactly this per output (value, lane and order), whatever it blocks together.

// P adjacent output pixels of one row (x: the first one's top-left input, input row pitch w) for
// the channels of V vectors (filter: the tap-0 weights of the first, tap pitch o); out: the first
// pixel's outputs, pixel pitch o.
template <int P, int V, class D>
HWY_INLINE void Pixels(D d, const float *x, int64_t w, int64_t kh, int64_t kw, int64_t o, const float *filter,
                       float *out) {
  using Vec = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  Vec acc[P][V];
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) acc[p][v] = hn::Zero(d);
  for (int64_t ky = 0; ky < kh; ++ky)
    for (int64_t kx = 0; kx < kw; ++kx) {
      Vec wv[V];
      for (int v = 0; v < V; ++v) wv[v] = hn::LoadU(d, filter + (ky * kw + kx) * o + v * N);
      const float *xp = x + ky * w + kx;
      for (int p = 0; p < P; ++p) {
        const Vec xv = hn::Set(d, xp[p]);
        for (int v = 0; v < V; ++v) acc[p][v] = hn::MulAdd(xv, wv[v], acc[p][v]);
      }
    }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) hn::StoreU(acc[p][v], d, out + p * o + v * N);
}

// Output columns [0, cols) of one output row for the channels of V vectors from the filter's.
template <int V, class D>
HWY_INLINE void RowChannels(D d, const float *x, int64_t w, int64_t kh, int64_t kw, int64_t o,
                            const float *filter, int64_t cols, float *out) {
  // Eight independent sums hide the FMA's latency. The columns past the last whole block go as
  // one more block ending at the last column, which writes some columns again with the same
  // values: cheaper than pixels one at a time, each a chain of dependent FMAs.
  constexpr int kBlock = 8, kSmall = 4;
  if (cols >= kBlock) {
    int64_t j = 0;
    for (; j + kBlock <= cols; j += kBlock) Pixels<kBlock, V>(d, x + j, w, kh, kw, o, filter, out + j * o);
    if (j < cols) Pixels<kBlock, V>(d, x + cols - kBlock, w, kh, kw, o, filter, out + (cols - kBlock) * o);
    return;
  }
  if (cols >= kSmall) {
    Pixels<kSmall, V>(d, x, w, kh, kw, o, filter, out);
    Pixels<kSmall, V>(d, x + cols - kSmall, w, kh, kw, o, filter, out + (cols - kSmall) * o);
    return;
  }
  for (int64_t j = 0; j < cols; ++j) Pixels<1, V>(d, x + j, w, kh, kw, o, filter, out + j * o);
}

// Output row oy of one image (x: the image [h, w]) at columns [0, cols), into out (pixel pitch
// o): pairs of whole vectors of channels, then a whole vector, then the channels past the last
// whole vector one lane at a time, each through the same per-output steps.
void ConvRow(const float *x, int64_t w, int64_t kh, int64_t kw, int64_t o, const float *filter, int64_t oy,
             int64_t cols, float *out) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float *xr = x + oy * w;
  int64_t c0 = 0;
  for (; c0 + 2 * N <= o; c0 += 2 * N) RowChannels<2>(d, xr, w, kh, kw, o, filter + c0, cols, out + c0);
  for (; c0 + N <= o; c0 += N) RowChannels<1>(d, xr, w, kh, kw, o, filter + c0, cols, out + c0);
  for (; c0 < o; ++c0) RowChannels<1>(d1, xr, w, kh, kw, o, filter + c0, cols, out + c0);
}

// acc[t * G + v] += x[pixel's tap t] * dy[pixel's vector v] over every output pixel of count
// images in row-major order, for G vectors of channels starting at c0, then stored to dfilter.
// T > 0: T taps known at compile time; T == 0: `taps` at run time (at most kMaxDirectTaps).
template <int T, int G, class D>
HWY_INLINE void FilterGradVectors(D d, const Window2d &g, const float *x, const float *dy, int64_t c0,
                                  float *dfilter) {
  using V = hn::Vec<D>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t taps = T > 0 ? T : g.kh * g.kw;
  constexpr int64_t kSlots = (T > 0 ? T : kMaxDirectTaps) * G;
  V acc[kSlots];
  for (int64_t s = 0; s < taps * G; ++s) acc[s] = hn::Zero(d);
  int64_t offsets[T > 0 ? T : kMaxDirectTaps];  // each tap's input offset from the pixel's top-left
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) offsets[ky * g.kw + kx] = ky * g.w + kx;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const float *xr = x + (n * g.h + oy) * g.w;
      const float *gr = dy + ((n * g.oh + oy) * g.ow) * g.o + c0;
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        V gv[G];
        for (int v = 0; v < G; ++v) gv[v] = hn::LoadU(d, gr + ox * g.o + v * N);
        const float *xp = xr + ox;
        for (int64_t t = 0; t < taps; ++t) {
          const V xv = hn::Set(d, xp[offsets[t]]);
          for (int v = 0; v < G; ++v) acc[t * G + v] = hn::MulAdd(xv, gv[v], acc[t * G + v]);
        }
      }
    }
  for (int64_t t = 0; t < taps; ++t)
    for (int v = 0; v < G; ++v) hn::StoreU(acc[t * G + v], d, dfilter + t * g.o + c0 + v * N);
}

void FilterGrad(const Window2d &g, const float *x, const float *dy, float *dfilter) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const bool three = g.kh * g.kw == 9;  // 3x3 (and 1x9, 9x1): the taps unrolled, in registers
  int64_t c0 = 0;
  for (; c0 + 2 * N <= g.o; c0 += 2 * N) {
    if (three)
      FilterGradVectors<9, 2>(d, g, x, dy, c0, dfilter);
    else
      FilterGradVectors<0, 2>(d, g, x, dy, c0, dfilter);
  }
  for (; c0 + N <= g.o; c0 += N) {
    if (three)
      FilterGradVectors<9, 1>(d, g, x, dy, c0, dfilter);
    else
      FilterGradVectors<0, 1>(d, g, x, dy, c0, dfilter);
  }
  for (; c0 < g.o; ++c0) FilterGradVectors<0, 1>(d1, g, x, dy, c0, dfilter);
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::conv_direct_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::kernels {

namespace conv_direct_simd {
HWY_EXPORT(ConvRow);
HWY_EXPORT(FilterGrad);
}  // namespace conv_direct_simd

bool direct_conv_applies(const Window2d &g) {
  return g.c == 1 && g.groups == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.pad_top == 0 &&
         g.pad_left == 0 && g.pad_bottom == 0 && g.pad_right == 0 && g.kh >= 1 && g.kw >= 1 &&
         g.kh * g.kw <= kMaxDirectTaps && g.oh == g.h - g.kh + 1 && g.ow == g.w - g.kw + 1 && g.n > 0 &&
         g.oh > 0 && g.ow > 0 && g.o > 0;
}

void direct_conv_forward(const Window2d &g, const float *x, const float *filter, float *y) {
  const auto rows = [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float *image = x + r / g.oh * g.h * g.w;
      HWY_DYNAMIC_DISPATCH(conv_direct_simd::ConvRow)
      (image, g.w, g.kh, g.kw, g.o, filter, r % g.oh, g.ow, y + r * g.ow * g.o);
    }
  };
  parallel_ranges(g.n * g.oh, sizeof(float) * static_cast<size_t>(g.n * g.oh * g.ow * g.o), rows);
}

namespace {
// The stack buffer of direct_conv_bias_relu_max_pool: a pooled row's kh convolution rows, 16 kB
// (W5: 2 rows of 26 columns of 32 channels, 6.5 kB).
constexpr int64_t kPoolScratchFloats = 4096;
int64_t pool_scratch_floats(const Window2d &g, const Window2d &pool) {
  return pool.kh * pool.ow * pool.kw * g.o;
}
}  // namespace

bool direct_conv_fuses_pool(const Window2d &g, const Window2d &pool) {
  return direct_conv_applies(g) && pool.n == g.n && pool.h == g.oh && pool.w == g.ow && pool.c == g.o &&
         max_pool_tiles(pool) && pool_scratch_floats(g, pool) <= kPoolScratchFloats;
}

void direct_conv_bias_relu_max_pool(const Window2d &g, const Window2d &pool, const float *x,
                                    const float *filter, const float *bias, float *p, uint8_t *arg) {
  if (!direct_conv_fuses_pool(g, pool))
    fail(Code::kInternal, "direct_conv_bias_relu_max_pool: expected a one-channel valid convolution and a ",
         "tiled pooling of its output whose rows fit ", kPoolScratchFloats, " floats");
  const int64_t cols = pool.ow * pool.kw, out_row = pool.ow * pool.c;
  const auto rows = [&](int64_t lo, int64_t hi) {
    HWY_ALIGN float scratch[kPoolScratchFloats];
    for (int64_t r = lo; r < hi; ++r) {
      const float *image = x + r / pool.oh * g.h * g.w;
      const int64_t py = r % pool.oh;
      for (int64_t k = 0; k < pool.kh; ++k) {
        HWY_DYNAMIC_DISPATCH(conv_direct_simd::ConvRow)
        (image, g.w, g.kh, g.kw, g.o, filter, py * pool.kh + k, cols, scratch + k * cols * g.o);
      }
      bias_relu_max_pool_row(scratch, cols, g.o, pool.kh, pool.kw, pool.ow, bias, p + r * out_row,
                             arg ? arg + r * out_row : nullptr);
    }
  };
  parallel_ranges(g.n * pool.oh, sizeof(float) * static_cast<size_t>(g.n * g.oh * g.ow * g.o), rows);
}

void direct_conv_filter_grad(const Window2d &g, const float *x, const float *dy, float *dfilter) noexcept {
  HWY_DYNAMIC_DISPATCH(conv_direct_simd::FilterGrad)(g, x, dy, dfilter);
}

}  // namespace kiln::kernels
#endif  // HWY_ONCE
