#include "kernels/pool_argmax.h"

#include <cmath>
#include <cstring>

namespace kiln::kernels {

namespace {

// Calls f(output index, input index of its window's argmax) for every output element that has
// at least one cell inside the input.
template <typename F>
void for_each_argmax(const Window2d &g, const float *x, F &&f) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oh = 0; oh < g.oh; ++oh)
      for (int64_t ow = 0; ow < g.ow; ++ow)
        for (int64_t c = 0; c < g.c; ++c) {
          int64_t best = -1;
          float best_v = 0.0f;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t h = oh * g.sh - g.pad_top + i * g.dh;
            if (h < 0 || h >= g.h) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t w = ow * g.sw - g.pad_left + j * g.dw;
              if (w < 0 || w >= g.w) continue;
              const int64_t at = ((n * g.h + h) * g.w + w) * g.c + c;
              const float v = x[at];
              if (best < 0 || v > best_v || (std::isnan(v) && !std::isnan(best_v))) {
                best = at;
                best_v = v;
              }
            }
          }
          if (best >= 0) f(((n * g.oh + oh) * g.ow + ow) * g.c + c, best);
        }
}

}  // namespace

void max_pool2d_route(const Window2d &g, const float *x, const float *dy, float *dx) {
  const int64_t n_in = g.n * g.h * g.w * g.c;
  if (n_in > 0) std::memset(dx, 0, static_cast<size_t>(n_in) * sizeof(float));
  for_each_argmax(g, x, [&](int64_t o, int64_t i) { dx[i] += dy[o]; });
}

void max_pool2d_pick(const Window2d &g, const float *x, const float *ddx, float *out) {
  const int64_t n_out = g.n * g.oh * g.ow * g.c;
  if (n_out > 0) std::memset(out, 0, static_cast<size_t>(n_out) * sizeof(float));
  for_each_argmax(g, x, [&](int64_t o, int64_t i) { out[o] = ddx[i]; });
}

}  // namespace kiln::kernels
