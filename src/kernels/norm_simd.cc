// LayerNormalization rows in Highway vectors; see kernels/norm_simd.h. Highway's foreach_target
// re-includes this file per instruction set. Compiled with -ffp-contract=off (src/CMakeLists.txt).
#include "kernels/norm_simd.h"

#include <cmath>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/norm_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::norm_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
// At most 8 lanes: the running lanes of the row sums.
using D8 = hn::CappedTag<float, 8>;
using V8 = hn::Vec<D8>;

// Room for the widest vector of any target.
constexpr size_t kPad = 64;

// The sums over j < n of R rows' terms, each as norm.cc's lane_sum: eight running lanes over the
// whole octets (one, two or eight vectors of D8, by the target's width), the tail added to lanes
// 0.. in order, the lanes summed in order. The R rows' chains of dependent adds interleave (one row's
// chain alone leaves the adder waiting). f(d8, r, j) gives row r's terms j .. j + Lanes(d8) - 1;
// tail(d8, r, j, rest) the same from zero-padded copies (masked here, so padding never enters).
template <int R, class F, class Tail>
HWY_INLINE void LaneSums(int64_t n, const F &f, const Tail &tail, float *sums) {
  const D8 d8;
  const size_t n8 = hn::Lanes(d8), parts = 8 / n8;
  V8 acc[R][8];
  for (int r = 0; r < R; ++r)
    for (size_t k = 0; k < parts; ++k) acc[r][k] = hn::Zero(d8);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (size_t k = 0; k < parts; ++k)
      for (int r = 0; r < R; ++r) acc[r][k] = hn::Add(acc[r][k], f(d8, r, j + static_cast<int64_t>(k * n8)));
  for (size_t k = 0; k < parts && j < n; ++k, j += static_cast<int64_t>(n8)) {
    const size_t rest = static_cast<size_t>(n - j) < n8 ? static_cast<size_t>(n - j) : n8;
    for (int r = 0; r < R; ++r)
      acc[r][k] = hn::Add(acc[r][k], hn::IfThenElseZero(hn::FirstN(d8, rest), tail(d8, r, j, rest)));
  }
  HWY_ALIGN float lanes[kPad];
  for (int r = 0; r < R; ++r) {
    for (size_t k = 0; k < parts; ++k) hn::Store(acc[r][k], d8, lanes + k * n8);
    float s = 0.0f;
    for (int l = 0; l < 8; ++l) s += lanes[l];
    sums[r] = s;
  }
}

// Up to `rest` floats of p from j into a zero-padded aligned buffer.
HWY_INLINE void Pad(float *buf, const float *p, int64_t j, size_t rest) {
  std::memset(buf, 0, kPad * sizeof(float));
  std::memcpy(buf, p + j, rest * sizeof(float));
}

// Rows r < R of x (rows of `cols` apart).
template <int R>
HWY_INLINE void LnForwardRows(int64_t cols, float inv_cols, float epsilon, const float *x, const float *gamma,
                              const float *beta, float *y, float *mean, float *variance) {
  HWY_ALIGN float bx[kPad], bg[kPad], bb[kPad];
  float mu[R], var[R];
  LaneSums<R>(
      cols, [x, cols](D8 d, int r, int64_t j) HWY_ATTR { return hn::LoadU(d, x + r * cols + j); },
      [&](D8 d, int r, int64_t j, size_t rest) HWY_ATTR {
        Pad(bx, x + r * cols, j, rest);
        return hn::Load(d, bx);
      },
      mu);
  V8 mu8[R];
  for (int r = 0; r < R; ++r) {
    mu[r] *= inv_cols;
    mu8[r] = hn::Set(D8(), mu[r]);
  }
  auto centred_sq = [&mu8](int r, V8 v) HWY_ATTR {
    const V8 c = hn::Sub(v, mu8[r]);
    return hn::Mul(c, c);
  };
  LaneSums<R>(
      cols, [&](D8 d, int r, int64_t j) HWY_ATTR { return centred_sq(r, hn::LoadU(d, x + r * cols + j)); },
      [&](D8 d, int r, int64_t j, size_t rest) HWY_ATTR {
        Pad(bx, x + r * cols, j, rest);
        return centred_sq(r, hn::Load(d, bx));
      },
      var);
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int row = 0; row < R; ++row) {
    var[row] *= inv_cols;
    const float rstd = 1.0f / std::sqrt(var[row] + epsilon);
    const float *xr = x + row * cols;
    float *yr = y + row * cols;
    const VF m = hn::Set(d, mu[row]), r = hn::Set(d, rstd);
    auto y_of = [m, r](VF xv, VF g, VF b)
                    HWY_ATTR { return hn::Add(hn::Mul(hn::Mul(hn::Sub(xv, m), r), g), b); };
    int64_t j = 0;
    for (; j + N <= cols; j += N)
      hn::StoreU(y_of(hn::LoadU(d, xr + j), hn::LoadU(d, gamma + j), hn::LoadU(d, beta + j)), d, yr + j);
    if (j < cols) {
      const auto rest = static_cast<size_t>(cols - j);
      Pad(bx, xr, j, rest);
      Pad(bg, gamma, j, rest);
      Pad(bb, beta, j, rest);
      hn::Store(y_of(hn::Load(d, bx), hn::Load(d, bg), hn::Load(d, bb)), d, bx);
      std::memcpy(yr + j, bx, rest * sizeof(float));
    }
    if (mean) mean[row] = mu[row];
    if (variance) variance[row] = var[row];
  }
}

void LnForwardRowsF32(int64_t rows, int64_t cols, float inv_cols, float epsilon, const float *x,
                      const float *gamma, const float *beta, float *y, float *mean, float *variance) {
  constexpr int kGroup = 4;
  int64_t r = 0;
  for (; r + kGroup <= rows; r += kGroup)
    LnForwardRows<kGroup>(cols, inv_cols, epsilon, x + r * cols, gamma, beta, y + r * cols,
                          mean ? mean + r : nullptr, variance ? variance + r : nullptr);
  for (; r < rows; ++r)
    LnForwardRows<1>(cols, inv_cols, epsilon, x + r * cols, gamma, beta, y + r * cols,
                     mean ? mean + r : nullptr, variance ? variance + r : nullptr);
}

void LnBackwardBlockF32(int64_t r0, int64_t r1, int64_t cols, float epsilon, const float *x,
                        const float *gamma, const float *mean, const float *variance, const float *dy,
                        float *dx, float *pg, float *pb) {
  const float inv_cols = cols > 0 ? 1.0f / static_cast<float>(cols) : 0.0f;
  std::memset(pg, 0, static_cast<size_t>(cols) * sizeof(float));
  std::memset(pb, 0, static_cast<size_t>(cols) * sizeof(float));
  HWY_ALIGN float bx[kPad], bd[kPad], bg[kPad], bpg[kPad], bpb[kPad];
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t row = r0; row < r1; ++row) {
    const float *xr = x + row * cols, *dyr = dy + row * cols;
    float *dxr = dx + row * cols;
    const float mu = mean[row];
    const float rstd = 1.0f / std::sqrt(variance[row] + epsilon);
    const V8 mu8 = hn::Set(D8(), mu), r8 = hn::Set(D8(), rstd);
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
    // Term r of the two sums: g (r = 0) or g * xhat (r = 1), g = dy * gamma.
    auto term = [mu8, r8](int which, V8 xv, V8 dv, V8 gv) HWY_ATTR {
      const V8 g = hn::Mul(dv, gv);
      return which == 0 ? g : hn::Mul(g, hn::Mul(hn::Sub(xv, mu8), r8));
    };
    float sums[2];
    LaneSums<2>(
        cols,
        [&](D8 e, int which, int64_t j) HWY_ATTR {
          return term(which, hn::LoadU(e, xr + j), hn::LoadU(e, dyr + j), hn::LoadU(e, gamma + j));
        },
        [&](D8 e, int which, int64_t j, size_t rest) HWY_ATTR {
          Pad(bx, xr, j, rest);
          Pad(bd, dyr, j, rest);
          Pad(bg, gamma, j, rest);
          return term(which, hn::Load(e, bx), hn::Load(e, bd), hn::Load(e, bg));
        },
        sums);
    const float sum_g = sums[0], sum_gx = sums[1];
    const VF m = hn::Set(d, mu), r = hn::Set(d, rstd);
    const VF mean_g = hn::Set(d, sum_g * inv_cols), mean_gx = hn::Set(d, sum_gx * inv_cols);
    // One pass: the dgamma / dbeta terms and dx.
    auto step = [&](VF xv, VF dv, VF gv, VF &pgv, VF &pbv) HWY_ATTR {
      const VF xhat = hn::Mul(hn::Sub(xv, m), r);
      pgv = hn::Add(pgv, hn::Mul(dv, xhat));
      pbv = hn::Add(pbv, dv);
      return hn::Mul(r, hn::Sub(hn::Sub(hn::Mul(dv, gv), mean_g), hn::Mul(xhat, mean_gx)));
    };
    int64_t j = 0;
    for (; j + N <= cols; j += N) {
      VF pgv = hn::LoadU(d, pg + j), pbv = hn::LoadU(d, pb + j);
      hn::StoreU(step(hn::LoadU(d, xr + j), hn::LoadU(d, dyr + j), hn::LoadU(d, gamma + j), pgv, pbv), d,
                 dxr + j);
      hn::StoreU(pgv, d, pg + j);
      hn::StoreU(pbv, d, pb + j);
    }
    if (j < cols) {
      const auto rest = static_cast<size_t>(cols - j);
      Pad(bx, xr, j, rest);
      Pad(bd, dyr, j, rest);
      Pad(bg, gamma, j, rest);
      Pad(bpg, pg, j, rest);
      Pad(bpb, pb, j, rest);
      VF pgv = hn::Load(d, bpg), pbv = hn::Load(d, bpb);
      hn::Store(step(hn::Load(d, bx), hn::Load(d, bd), hn::Load(d, bg), pgv, pbv), d, bx);
      hn::Store(pgv, d, bpg);
      hn::Store(pbv, d, bpb);
      std::memcpy(dxr + j, bx, rest * sizeof(float));
      std::memcpy(pg + j, bpg, rest * sizeof(float));
      std::memcpy(pb + j, bpb, rest * sizeof(float));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::norm_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::kernels::norm_simd {

HWY_EXPORT(LnForwardRowsF32);
HWY_EXPORT(LnBackwardBlockF32);

void ln_forward_rows_f32(int64_t rows, int64_t cols, float inv_cols, float epsilon, const float *x,
                         const float *gamma, const float *beta, float *y, float *mean, float *variance) {
  HWY_DYNAMIC_DISPATCH(LnForwardRowsF32)(rows, cols, inv_cols, epsilon, x, gamma, beta, y, mean, variance);
}

void ln_backward_block_f32(int64_t r0, int64_t r1, int64_t cols, float epsilon, const float *x,
                           const float *gamma, const float *mean, const float *variance, const float *dy,
                           float *dx, float *pg, float *pb) {
  HWY_DYNAMIC_DISPATCH(LnBackwardBlockF32)(r0, r1, cols, epsilon, x, gamma, mean, variance, dy, dx, pg, pb);
}

}  // namespace kiln::kernels::norm_simd
#endif  // HWY_ONCE
