// Adam's float32 vectors, compiled once per instruction set (Highway's foreach_target re-includes
// this file per target) and chosen at run time. See kernels/optimizer_simd.h.
#include "kernels/optimizer_simd.h"

#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/optimizer_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::optimizer_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// Room for the widest vector of any target (a 2048-bit SVE vector is 64 floats).
constexpr size_t kPad = 64;

// One vector of Adam at x's element i.
template <bool Decay, bool Amsgrad, class D>
HWY_INLINE void AdamVector(D d, const AdamSpan &x, const AdamCoefficients &c, int64_t i) {
  auto g = hn::Mul(hn::LoadU(d, x.g + i), hn::Set(d, c.scale));
  const auto hi = hn::Set(d, c.hi), lo = hn::Set(d, -c.hi);
  g = hn::IfThenElse(hn::Lt(g, lo), lo, hn::IfThenElse(hn::Gt(g, hi), hi, g));
  auto w = hn::LoadU(d, x.w0 + i);
  if constexpr (Decay) w = hn::Sub(w, hn::Mul(hn::Mul(w, hn::Set(d, c.wd)), hn::Set(d, c.lr)));
  auto m = hn::LoadU(d, x.m0 + i), v = hn::LoadU(d, x.v0 + i);
  m = hn::Add(m, hn::Mul(hn::Sub(g, m), hn::Set(d, c.one_b1)));
  v = hn::Add(v, hn::Mul(hn::Sub(hn::Mul(g, g), v), hn::Set(d, c.one_b2)));
  hn::StoreU(m, d, x.m + i);
  hn::StoreU(v, d, x.v + i);
  if constexpr (Amsgrad) {
    const auto vh = hn::LoadU(d, x.vhat0 + i);
    v = hn::IfThenElse(hn::Or(hn::Lt(vh, v), hn::IsNaN(v)), v, vh);  // ops.maximum: NaN propagates
    hn::StoreU(v, d, x.vhat + i);
  }
  const auto step = hn::Div(hn::Mul(m, hn::Set(d, c.alpha)), hn::Add(hn::Sqrt(v), hn::Set(d, c.eps)));
  hn::StoreU(hn::Sub(w, step), d, x.w + i);
}

// Every element goes through the vector code (a partial last vector through padded copies), so
// its bits depend neither on where it sits nor on how the elements are split among threads.
template <bool Decay, bool Amsgrad>
int64_t AdamLoop(const AdamSpan &x, const AdamCoefficients &c, int64_t b, int64_t e) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = b;
  for (; i + lanes <= e; i += lanes) AdamVector<Decay, Amsgrad>(d, x, c, i);
  const int64_t rest = e - i;
  if (rest > 0) {
    HWY_ALIGN float buf[9][kPad] = {};
    const size_t bytes = static_cast<size_t>(rest) * sizeof(float);
    std::memcpy(buf[0], x.g + i, bytes);
    std::memcpy(buf[1], x.w0 + i, bytes);
    std::memcpy(buf[2], x.m0 + i, bytes);
    std::memcpy(buf[3], x.v0 + i, bytes);
    if (Amsgrad) std::memcpy(buf[4], x.vhat0 + i, bytes);
    const AdamSpan p{buf[5], buf[1], buf[6], buf[2], buf[7], buf[3], buf[8], buf[4], buf[0]};
    AdamVector<Decay, Amsgrad>(d, p, c, 0);
    std::memcpy(x.w + i, buf[5], bytes);
    std::memcpy(x.m + i, buf[6], bytes);
    std::memcpy(x.v + i, buf[7], bytes);
    if (Amsgrad) std::memcpy(x.vhat + i, buf[8], bytes);
  }
  return e;
}

int64_t AdamF32(const AdamSpan &x, const AdamCoefficients &c, int64_t b, int64_t e) {
  if (c.decay) return c.amsgrad ? AdamLoop<true, true>(x, c, b, e) : AdamLoop<true, false>(x, c, b, e);
  return c.amsgrad ? AdamLoop<false, true>(x, c, b, e) : AdamLoop<false, false>(x, c, b, e);
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::optimizer_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::kernels::optimizer_simd {

HWY_EXPORT(AdamF32);

int64_t adam_f32(const AdamSpan &x, const AdamCoefficients &c, int64_t b, int64_t e) {
  return HWY_DYNAMIC_DISPATCH(AdamF32)(x, c, b, e);
}

}  // namespace kiln::kernels::optimizer_simd
#endif
