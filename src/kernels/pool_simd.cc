// Max pooling over relu(z + bias) and its routing by argmax, in Highway vectors chosen at run time
// (see kernels/pool.h). Highway's foreach_target re-includes this file per instruction set.
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "kernels/array.h"
#include "kernels/pool.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/pool_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/simd_relu-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::pool_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using simd_relu::HWY_NAMESPACE::ReluZero;
using DI = hn::RebindToSigned<DF>;
using DU8 = hn::Rebind<uint8_t, DF>;

// relu of one value as the vector kernels compute it: +0 where x < 0, else x (NaN and -0 pass).
inline float relu_scalar(float x) { return x < 0.0f ? 0.0f : x; }

// One pooled row (n, oy): ow windows of kh x kw over the rows of z starting at `z` (row pitch
// w * c floats), strides equal to the window. Each window starts at the lowest float and takes a
// value only when it is greater (oneDNN's max pooling: a NaN never wins, the first of equal
// maxima does); arg gets the winner's ky * kw + kx.
void BiasReluMaxPoolRow(const float *z, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t ow,
                        const float *bias, float *p, uint8_t *arg) {
  const DF d;
  const DI di;
  const DU8 du8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float lowest = std::numeric_limits<float>::lowest();
  for (int64_t ox = 0; ox < ow; ++ox) {
    const float *win = z + ox * kw * c;
    float *po = p + ox * c;
    uint8_t *ao = arg ? arg + ox * c : nullptr;
    int64_t c0 = 0;
    for (; c0 + N <= c; c0 += N) {
      const VF b = bias ? hn::LoadU(d, bias + c0) : hn::Zero(d);
      VF best = hn::Set(d, lowest);
      auto idx = hn::Zero(di);
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          VF v = hn::LoadU(d, win + (ky * w + kx) * c + c0);
          if (bias) v = hn::Add(v, b);
          v = ReluZero(d, v);
          const auto m = hn::Lt(best, v);
          best = hn::IfThenElse(m, v, best);
          idx = hn::IfThenElse(hn::RebindMask(di, m), hn::Set(di, static_cast<int32_t>(ky * kw + kx)), idx);
        }
      hn::StoreU(best, d, po + c0);
      if (ao) hn::StoreU(hn::DemoteTo(du8, idx), du8, ao + c0);
    }
    for (; c0 < c; ++c0) {  // the same steps, one lane
      float best = lowest;
      int k = 0;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          float v = win[(ky * w + kx) * c + c0];
          if (bias) v += bias[c0];
          v = relu_scalar(v);
          if (best < v) {
            best = v;
            k = static_cast<int>(ky * kw + kx);
          }
        }
      po[c0] = best;
      if (ao) ao[c0] = static_cast<uint8_t>(k);
    }
  }
}

// One pooled row's routing: dz over the row's kh input rows gets dp at each window's arg, zero
// elsewhere in the windows.
void RouteRow(const uint8_t *arg, const float *dp, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t ow,
              float *dz) {
  const DF d;
  const DI di;
  const DU8 du8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t ox = 0; ox < ow; ++ox) {
    float *win = dz + ox * kw * c;
    const float *g = dp + ox * c;
    const uint8_t *a = arg + ox * c;
    int64_t c0 = 0;
    for (; c0 + N <= c; c0 += N) {
      const VF gv = hn::LoadU(d, g + c0);
      const auto idx = hn::PromoteTo(di, hn::LoadU(du8, a + c0));
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          const auto m = hn::RebindMask(d, hn::Eq(idx, hn::Set(di, static_cast<int32_t>(ky * kw + kx))));
          hn::StoreU(hn::IfThenElseZero(m, gv), d, win + (ky * w + kx) * c + c0);
        }
    }
    for (; c0 < c; ++c0)
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx)
          win[(ky * w + kx) * c + c0] = a[c0] == ky * kw + kx ? g[c0] : 0.0f;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::pool_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::kernels {

namespace pool_simd {
HWY_EXPORT(BiasReluMaxPoolRow);
HWY_EXPORT(RouteRow);
}  // namespace pool_simd

bool max_pool_tiles(const Window2d &g) {
  return g.sh == g.kh && g.sw == g.kw && !g.pad_top && !g.pad_left && !g.pad_bottom && !g.pad_right &&
         g.kh * g.kw <= 256 && g.oh * g.kh <= g.h && g.ow * g.kw <= g.w;
}

namespace {
void require_tiled(const Window2d &g, const char *what) {
  if (!max_pool_tiles(g))
    fail(Code::kInternal, what, ": expected a valid max pooling whose strides equal its ", g.kh, "x", g.kw,
         " window (at most 256 cells)");
}
}  // namespace

void bias_relu_max_pool2d(const Window2d &g, const float *z, const float *bias, float *p, uint8_t *arg) {
  require_tiled(g, "bias_relu_max_pool2d");
  const int64_t rows = g.n * g.oh, out_row = g.ow * g.c;  // pooled rows, each from kh input rows
  parallel_ranges(rows, sizeof(float) * static_cast<size_t>(g.n * g.h * g.w * g.c),
                  [&](int64_t lo, int64_t hi) {
                    for (int64_t r = lo; r < hi; ++r) {
                      const int64_t n = r / g.oh, oy = r % g.oh;
                      bias_relu_max_pool_row(z + ((n * g.h + oy * g.kh) * g.w) * g.c, g.w, g.c, g.kh, g.kw,
                                             g.ow, bias, p + r * out_row, arg ? arg + r * out_row : nullptr);
                    }
                  });
}

void bias_relu_max_pool_row(const float *z, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t ow,
                            const float *bias, float *p, uint8_t *arg) noexcept {
  HWY_DYNAMIC_DISPATCH(pool_simd::BiasReluMaxPoolRow)(z, w, c, kh, kw, ow, bias, p, arg);
}

namespace {
// Pooled rows [lo, hi) of max_pool2d_route: each writes its kh input rows; the last of an image
// also the rows below its windows.
void route_rows(const Window2d &g, const uint8_t *arg, const float *dp, float *dz, int64_t lo, int64_t hi) {
  const int64_t row = g.w * g.c, out_row = g.ow * g.c;  // floats in one input row, one pooled row
  const auto zero = [](float *at, int64_t count) {
    std::memset(at, 0, sizeof(float) * static_cast<size_t>(count));
  };
  for (int64_t r = lo; r < hi; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    float *out = dz + (n * g.h + oy * g.kh) * row;
    HWY_DYNAMIC_DISPATCH(pool_simd::RouteRow)
    (arg + r * out_row, dp + r * out_row, g.w, g.c, g.kh, g.kw, g.ow, out);
    for (int64_t ky = 0; ky < g.kh; ++ky)  // right of the last window
      zero(out + ky * row + g.ow * g.kw * g.c, (g.w - g.ow * g.kw) * g.c);
    if (oy == g.oh - 1) zero(out + g.kh * row, (g.h - g.oh * g.kh) * row);
  }
}
}  // namespace

void max_pool2d_route(const Window2d &g, const uint8_t *arg, const float *dp, float *dz) {
  require_tiled(g, "max_pool2d_route");
  parallel_ranges(g.n * g.oh, sizeof(float) * static_cast<size_t>(g.n * g.h * g.w * g.c),
                  [&](int64_t lo, int64_t hi) { route_rows(g, arg, dp, dz, lo, hi); });
}

void max_pool2d_route_images(const Window2d &g, const uint8_t *arg, const float *dp, int64_t first,
                             int64_t count, float *dz) noexcept {
  const int64_t p_image = g.oh * g.ow * g.c;
  Window2d piece = g;
  piece.n = count;
  route_rows(piece, arg + first * p_image, dp + first * p_image, dz, 0, count * g.oh);
}

void max_pool2d_pick(const Window2d &g, const uint8_t *arg, const float *dz, float *dp) {
  require_tiled(g, "max_pool2d_pick");
  const int64_t cells = g.n * g.oh * g.ow;
  for (int64_t cell = 0; cell < cells; ++cell) {
    const int64_t n = cell / (g.oh * g.ow), oy = cell / g.ow % g.oh, ox = cell % g.ow;
    for (int64_t c = 0; c < g.c; ++c) {
      const int64_t k = arg[cell * g.c + c], ky = k / g.kw, kx = k % g.kw;
      dp[cell * g.c + c] = dz[((n * g.h + oy * g.kh + ky) * g.w + ox * g.kw + kx) * g.c + c];
    }
  }
}

}  // namespace kiln::kernels
#endif  // HWY_ONCE
