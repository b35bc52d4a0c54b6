// Float32 unary kernels compiled once per instruction set (Highway's foreach_target
// re-includes this file per target) and chosen at run time. See kernels/simd.h.
#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/simd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_unary.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/simd_relu-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using simd_relu::HWY_NAMESPACE::ReluZero;

// Room for the widest vector of any target (a 2048-bit SVE vector is 64 floats).
constexpr size_t kPad = 64;

// ---- SLEEF: the variant built for the same instruction set as this target ----
// The prototypes are written here, not taken from sleef.h, because sleef.h declares the
// AVX2/AVX-512 variants only when the whole file is compiled for them, and Highway enables
// each instruction set per function instead.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define KILN_SLEEF(fn, u) Sleef_##fn##f16_##u##avx512f
#define KILN_SLEEF_VECTOR 1
#elif HWY_TARGET == HWY_AVX2
#define KILN_SLEEF(fn, u) Sleef_##fn##f8_##u##avx2
#define KILN_SLEEF_VECTOR 1
#elif HWY_TARGET == HWY_SSE4
#define KILN_SLEEF(fn, u) Sleef_##fn##f4_##u##sse4
#define KILN_SLEEF_VECTOR 1
#elif HWY_TARGET == HWY_SSSE3
#define KILN_SLEEF(fn, u) Sleef_##fn##f4_##u##sse2
#define KILN_SLEEF_VECTOR 1
#else
// Emulated / scalar targets: SLEEF's portable C build, lane by lane (no FMA needed).
#define KILN_SLEEF(fn, u) Sleef_##fn##f1_##u##purec
#define KILN_SLEEF_VECTOR 0
#endif

#if KILN_SLEEF_VECTOR
using RawF = decltype(hn::Zero(DF()).raw);
#define KILN_MATH(Name, fn, u)             \
  extern "C" RawF KILN_SLEEF(fn, u)(RawF); \
  HWY_INLINE VF Name(VF v) { return VF{KILN_SLEEF(fn, u)(v.raw)}; }
#else
#define KILN_MATH(Name, fn, u)                                                        \
  extern "C" float KILN_SLEEF(fn, u)(float);                                          \
  HWY_INLINE VF Name(VF v) {                                                          \
    const DF d;                                                                       \
    HWY_ALIGN float lanes[kPad];                                                      \
    hn::Store(v, d, lanes);                                                           \
    for (size_t i = 0; i < hn::Lanes(d); ++i) lanes[i] = KILN_SLEEF(fn, u)(lanes[i]); \
    return hn::Load(d, lanes);                                                        \
  }
#endif

KILN_MATH(Exp, exp, u10)
KILN_MATH(Log, log, u10)
KILN_MATH(Log1pSleef, log1p, u10)
KILN_MATH(Expm1, expm1, u10)
KILN_MATH(Tanh, tanh, u10)
KILN_MATH(SinVector, sin, u10)
KILN_MATH(CosVector, cos, u10)

#undef KILN_MATH

// SLEEF 3.5's log1pf gives +0 for +-2^-149; below the smallest normal, log1p(x) rounds to x
// (which keeps -0's sign too).
HWY_INLINE VF Log1p(VF v) {
  const DF d;
  return hn::IfThenElse(hn::Lt(hn::Abs(v), hn::Set(d, 1.17549435e-38f)), v, Log1pSleef(v));
}
#undef KILN_SLEEF
#undef KILN_SLEEF_VECTOR

// SLEEF's u10 sin and cos reduce the argument of a whole vector the slow way (Payne-Hanek) as soon
// as one lane reaches 125 in magnitude or is inf or NaN, which moves the other lanes' results by
// an ulp. Each lane takes the path of its own magnitude here, so a value's result does not depend
// on its neighbours (the tensor's size, offset and thread count).
template <class F>
HWY_INLINE VF PerLaneTrig(DF d, VF v, F f) {
  const auto fast = hn::Lt(hn::Abs(v), hn::Set(d, 125.0f));  // false for NaN
  if (hn::AllTrue(d, fast)) return f(v);
  return hn::IfThenElse(fast, f(hn::IfThenElseZero(fast, v)), f(v));
}
HWY_INLINE VF Sin(VF v) {
  return PerLaneTrig(DF(), v, [](VF u) HWY_ATTR { return SinVector(u); });
}
HWY_INLINE VF Cos(VF v) {
  return PerLaneTrig(DF(), v, [](VF u) HWY_ATTR { return CosVector(u); });
}

// ---- loops ----

// f over whole vectors, then the tail through the same f via a zero-padded buffer.
template <class F>
HWY_INLINE void Map1(const float *x, float *y, int64_t n, const F &f) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  if (i == n) return;
  const size_t rest = static_cast<size_t>(n - i);
  HWY_ALIGN float buf[kPad] = {};
  std::memcpy(buf, x + i, rest * sizeof(float));
  hn::Store(f(d, hn::Load(d, buf)), d, buf);
  std::memcpy(y + i, buf, rest * sizeof(float));
}

template <class F>
HWY_INLINE void Map2(const float *x, const float *z, float *y, int64_t n, const F &f) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i), hn::LoadU(d, z + i)), d, y + i);
  if (i == n) return;
  const size_t rest = static_cast<size_t>(n - i);
  HWY_ALIGN float bx[kPad] = {};
  HWY_ALIGN float bz[kPad] = {};
  std::memcpy(bx, x + i, rest * sizeof(float));
  std::memcpy(bz, z + i, rest * sizeof(float));
  hn::Store(f(d, hn::Load(d, bx), hn::Load(d, bz)), d, bx);
  std::memcpy(y + i, bx, rest * sizeof(float));
}

// ---- formulas ----

using DD = hn::ScalableTag<double>;
using VD = hn::Vec<DD>;

constexpr float kInvSqrt2Pi = static_cast<float>(activation::kInvSqrt2Pi);
constexpr float kSqrt2OverPi = static_cast<float>(activation::kSqrt2OverPi);
constexpr float kGeluCubic = static_cast<float>(activation::kGeluCubic);
constexpr float kSeluAlpha = static_cast<float>(activation::kSeluAlpha);
constexpr float kSeluScale = static_cast<float>(activation::kSeluScale);

// The logistic function with its parts: e = exp(-|z|), r = 1 / (1 + e). sigmoid(z) is r
// for z >= 0 and e * r below (no cancellation on either side), and
// sigmoid(z) * (1 - sigmoid(z)) = e * r * r for both signs.
struct Logistic {
  VF e, r, s;
};
HWY_INLINE Logistic LogisticParts(DF d, VF z) {
  const VF one = hn::Set(d, 1.0f);
  const VF e = Exp(hn::Neg(hn::Abs(z)));
  const VF r = hn::Div(one, hn::Add(one, e));
  return {e, r, hn::IfThenElse(hn::Ge(z, hn::Zero(d)), r, hn::Mul(e, r))};
}

// 2u for the tanh form of gelu: 0.5 * (1 + tanh(u)) = sigmoid(2u), which keeps the
// negative tail accurate where 1 + tanh(u) would cancel.
HWY_INLINE VF GeluTanhArg(DF d, VF x) {
  const VF x3 = hn::Mul(hn::Mul(x, x), x);
  return hn::Mul(hn::Set(d, 2.0f * kSqrt2OverPi), hn::MulAdd(hn::Set(d, kGeluCubic), x3, x));
}

// The exact gelu, 0.5 x erfc(-x / sqrt 2) as TF computes it (erfc keeps the negative tail
// that 1 + erf(x / sqrt 2) cancels away), evaluated in float64 and rounded to float once, so
// both gelu and the erfc the backward reads are within half an ulp (plus ~1e-10 relative).
// t = -x / sqrt 2 in float64 carries x's 24 bits with no rounding worth counting, and with
// a = |t|: erfc(a) = exp(-a^2) P(q) / (1 + 2a), q = (a - 2) / (a + 2) in [-1, 0.67] for a in
// [0, 10.25], P a degree-13 weighted least-squares fit (made for kiln against mpmath) of
// (1 + 2a) exp(a^2) erfc(a), a smooth function of q within 1 to 1.28 (relative error 6.4e-11);
// erfc(-a) = 2 - erfc(a). Above a = 10.25 even gelu's 0.5 x erfc(a) rounds to float 0. One
// division gives both quotients: w = 1 / ((a + 2)(1 + 2a)).
constexpr double kErfcP[] = {1.27697838162645572e+00,  -9.27638259796779996e-02, -1.66030408406527968e-01,
                             1.64051248177451009e-01,  -5.42197512099428583e-02, -8.03348148527768292e-03,
                             8.72058529104459933e-03,  1.26722672132463000e-03,  -1.44943976262416722e-03,
                             -4.38254866059624958e-04, 1.96329059888158963e-04,  1.19601697510815161e-04,
                             -3.51238613943705147e-06, -1.03301174714711536e-05};
constexpr double kErfcLimit = 10.25;
constexpr double kMinusSqrtHalf = -0.70710678118654752440;

// exp(u) for u in [-kErfcLimit^2, 0] (about [-105.1, 0]), the one exp the erfc above needs, to
// ~1e-13 relative (SLEEF's float64 exp took half of the exact gelu's time and carries full float64
// precision, which a result rounded to float does not need): u = n ln 2 + r with |r| <= ln2 / 2,
// exp(r) by its Taylor series to r^10 (remainder under 2.2e-13), times 2^n built in the exponent
// bits (n >= -152 keeps 2^n normal). n comes from the 1.5 * 2^52 shifter's low bits.
HWY_INLINE VD ExpNonPositiveF64(DD d, VD u) {
  const hn::RebindToSigned<DD> di;
  const VD shifter = hn::Set(d, 6755399441055744.0);  // 1.5 * 2^52
  const VD kd = hn::MulAdd(u, hn::Set(d, 1.4426950408889634074), shifter);
  const VD n = hn::Sub(kd, shifter);
  const VD r = hn::MulAdd(n, hn::Set(d, -0.69314718055994530942), u);
  VD p = hn::Set(d, 1.0 / 3628800.0);
  for (double f : {1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                   1.0 / 6.0, 0.5, 1.0, 1.0})
    p = hn::MulAdd(p, r, hn::Set(d, f));
  const auto bits = hn::Sub(hn::BitCast(di, kd), hn::BitCast(di, shifter));
  return hn::Mul(p, hn::BitCast(d, hn::ShiftLeft<52>(hn::Add(bits, hn::Set(di, int64_t{1023})))));
}

HWY_INLINE VD ErfcF64(DD d, VD t) {
  const VD one = hn::Set(d, 1.0), two = hn::Set(d, 2.0), limit = hn::Set(d, kErfcLimit);
  const VD a = hn::Min(hn::Abs(t), limit);  // NaN lanes are put back at the end
  const VD den = hn::MulAdd(two, a, one), ap2 = hn::Add(a, two);
  const VD w = hn::Div(one, hn::Mul(ap2, den));
  const VD q = hn::Mul(hn::Mul(hn::Sub(a, two), den), w);
  VD p = hn::Set(d, kErfcP[13]);
  for (int i = 12; i >= 0; --i) p = hn::MulAdd(p, q, hn::Set(d, kErfcP[i]));
  VD e = hn::Mul(hn::Mul(ExpNonPositiveF64(d, hn::Neg(hn::Mul(a, a))), p), hn::Mul(ap2, w));
  e = hn::IfThenElseZero(hn::Lt(hn::Abs(t), limit), e);
  e = hn::IfThenElse(hn::Lt(t, hn::Zero(d)), hn::Sub(two, e), e);
  return hn::IfThenElse(hn::IsNaN(t), t, e);
}

// erfc(-x / sqrt 2) of float lanes, rounded to float.
template <class DH>
HWY_INLINE hn::Vec<DH> GeluErfcOf(DH dh, hn::Vec<DH> x, VD *erfc64 = nullptr) {
  const DD dd;
  const VD e = ErfcF64(dd, hn::Mul(hn::PromoteTo(dd, x), hn::Set(dd, kMinusSqrtHalf)));
  if (erfc64) *erfc64 = e;
  return hn::DemoteTo(dh, e);
}

// gelu(x) of float lanes and their erfc (GeluErfcOf), rounded to float from float64. Two kinds
// of lane take TF's float formula 0.5 x erfc instead: x = +-inf, the only infinite gelu (inf,
// or NaN = -inf * 0), which the emulated targets' demotion would clamp to the largest float;
// and |x| < 2^-25, where erfc rounds to 1 and gelu(x) = x / 2 + x^2 / sqrt(2 pi) is x / 2 to
// well under half an ulp, except that the exact ties of a denormal x / 2 round to even as in
// TF, not up as the x^2 term would tip them.
template <class DH>
HWY_INLINE hn::Vec<DH> GeluErfOf(DH dh, hn::Vec<DH> x, hn::Vec<DH> *erfc) {
  const DD dd;
  VD e64;
  *erfc = GeluErfcOf(dh, x, &e64);
  const hn::Vec<DH> y = hn::DemoteTo(dh, hn::Mul(hn::Mul(hn::Set(dd, 0.5), hn::PromoteTo(dd, x)), e64));
  const auto float_form = hn::Or(hn::IsInf(x), hn::Lt(hn::Abs(x), hn::Set(dh, 2.98023224e-08f)));
  return hn::IfThenElse(float_form, hn::Mul(hn::Mul(hn::Set(dh, 0.5f), x), *erfc), y);
}

// gelu over n floats, and (if e) the erfc, in float64 lanes straight from memory; the tail
// through the same code on a zero-padded copy.
HWY_INLINE void GeluErfLoop(const float *x, float *y, float *e, int64_t n) {
  const hn::Rebind<float, DD> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(dh));
  hn::Vec<decltype(dh)> erfc;
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(GeluErfOf(dh, hn::LoadU(dh, x + i), &erfc), dh, y + i);
    if (e) hn::StoreU(erfc, dh, e + i);
  }
  if (i == n) return;
  const size_t rest = static_cast<size_t>(n - i);
  HWY_ALIGN float bx[kPad] = {}, by[kPad], be[kPad];
  std::memcpy(bx, x + i, rest * sizeof(float));
  hn::Store(GeluErfOf(dh, hn::Load(dh, bx), &erfc), dh, by);
  hn::Store(erfc, dh, be);
  std::memcpy(y + i, by, rest * sizeof(float));
  if (e) std::memcpy(e + i, be, rest * sizeof(float));
}

// The erfc of a whole float vector (the backward's), half a float64 vector at a time.
HWY_INLINE VF GeluErfcVector(DF d, VF x) {
  const hn::Rebind<float, DD> dh;
  HWY_ALIGN float xs[kPad], es[kPad];
  hn::Store(x, d, xs);
  for (size_t j = 0; j < hn::Lanes(d); j += hn::Lanes(dh))
    hn::Store(GeluErfcOf(dh, hn::Load(dh, xs + j)), dh, es + j);
  return hn::Load(d, es);
}

// g gelu'(x), from erfc(-x/sqrt2): d/dx 0.5 x erfc(-x/sqrt2) = 0.5 erfc(-x/sqrt2) + x exp(-x^2/2) / sqrt(2
// pi).
HWY_INLINE VF GeluErfGrad(DF d, VF x, VF erfc, VF g) {
  const VF cdf = hn::Mul(hn::Set(d, 0.5f), erfc);
  const VF pdf = Exp(hn::Mul(hn::Set(d, -0.5f), hn::Mul(x, x)));
  return hn::Mul(g, hn::MulAdd(hn::Mul(x, hn::Set(d, kInvSqrt2Pi)), pdf, cdf));
}

void UnaryF32(UnaryOp op, const float *x, float *y, int64_t n, float alpha, float beta) {
  switch (op) {
    case UnaryOp::kNeg:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return hn::Neg(v); });
    case UnaryOp::kAbs:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return hn::Abs(v); });
    case UnaryOp::kSquare:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return hn::Mul(v, v); });
    case UnaryOp::kExp:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return Exp(v); });
    case UnaryOp::kLog:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return Log(v); });
    case UnaryOp::kLog1p:
      // SLEEF 3.5's log1pf overflows to inf above ~1e38; from 2^60 on, 1 + x rounds to x and
      // log1p(x) = log(x) to far below an ulp.
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR {
        return hn::IfThenElse(hn::Gt(v, hn::Set(d, 1.15292150e18f)), Log(v), Log1p(v));
      });
    case UnaryOp::kExpm1:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return Expm1(v); });
    case UnaryOp::kSin:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return Sin(v); });
    case UnaryOp::kCos:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return Cos(v); });
    case UnaryOp::kSqrt:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return hn::Sqrt(v); });
    case UnaryOp::kRsqrt:
      // A true division (not the approximate rsqrt instruction): -0 -> -inf, -inf -> NaN.
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR { return hn::Div(hn::Set(d, 1.0f), hn::Sqrt(v)); });
    case UnaryOp::kTanh:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return Tanh(v); });
    case UnaryOp::kSigmoid:
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR { return LogisticParts(d, v).s; });
    case UnaryOp::kRelu:
      // alpha == 0 selects 0 rather than computing 0 * x, so that relu(-inf) is 0.
      if (alpha == 0.0f) return Map1(x, y, n, [](DF d, VF v) HWY_ATTR { return ReluZero(d, v); });
      return Map1(x, y, n, [alpha](DF d, VF v) HWY_ATTR {
        return hn::IfThenElse(hn::Gt(v, hn::Zero(d)), v, hn::Mul(hn::Set(d, alpha), v));
      });
    case UnaryOp::kRelu6:
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR {
        const VF six = hn::Set(d, 6.0f);
        return hn::IfThenElse(hn::Gt(v, six), six, ReluZero(d, v));
      });
    case UnaryOp::kGeluErf:
      return GeluErfLoop(x, y, nullptr, n);
    case UnaryOp::kGeluTanh:
      return Map1(x, y, n,
                  [](DF d, VF v) HWY_ATTR { return hn::Mul(v, LogisticParts(d, GeluTanhArg(d, v)).s); });
    case UnaryOp::kSoftplus:
      // max(x, 0) + log1p(exp(-|x|)): no overflow, and exact in the negative tail.
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR {
        return hn::Add(hn::Max(v, hn::Zero(d)), Log1p(Exp(hn::Neg(hn::Abs(v)))));
      });
    case UnaryOp::kElu:
      return Map1(x, y, n, [alpha](DF d, VF v) HWY_ATTR {
        return hn::IfThenElse(hn::Gt(v, hn::Zero(d)), v, hn::Mul(hn::Set(d, alpha), Expm1(v)));
      });
    case UnaryOp::kSelu:
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR {
        const VF neg = hn::Mul(hn::Set(d, kSeluScale * kSeluAlpha), Expm1(v));
        return hn::IfThenElse(hn::Gt(v, hn::Zero(d)), hn::Mul(hn::Set(d, kSeluScale), v), neg);
      });
    case UnaryOp::kSwish:
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR { return hn::Mul(v, LogisticParts(d, v).s); });
    case UnaryOp::kClip:
      // As tf.clip_by_value, maximum(minimum(x, hi), lo) with TF's (Eigen's) NaN-propagating
      // minimum and maximum: a NaN passes through, lo wins when lo > hi, and on equal values
      // (-0 against +0) the bound is taken, so clip(-0, 0, 6) is +0.
      return Map1(x, y, n, [alpha, beta](DF d, VF v) HWY_ATTR {
        const VF lo = hn::Set(d, alpha), hi = hn::Set(d, beta);
        const VF t = hn::IfThenElse(hn::Lt(v, hi), v, hn::IfThenElse(hn::IsNaN(v), v, hi));
        return hn::IfThenElse(hn::Gt(t, lo), t, hn::IfThenElse(hn::IsNaN(t), t, lo));
      });
    // Floor and Round give a result of x's sign; CopySign restores the sign of a zero result,
    // which Highway's emulation on targets without SSE4.1's roundps drops (round(-0.3) = -0).
    case UnaryOp::kFloor:
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return hn::CopySign(hn::Floor(v), v); });
    case UnaryOp::kRound:
      // Round is to nearest, ties to even, as tf.round.
      return Map1(x, y, n, [](DF, VF v) HWY_ATTR { return hn::CopySign(hn::Round(v), v); });
    case UnaryOp::kSign:
      // As TF (Eigen's psign): +-0 give +0, NaN gives NaN.
      return Map1(x, y, n, [](DF d, VF v) HWY_ATTR {
        const VF z = hn::Zero(d);
        return hn::IfThenElse(hn::Gt(v, z), hn::Set(d, 1.0f),
                              hn::IfThenElse(hn::Lt(v, z), hn::Set(d, -1.0f), hn::Abs(v)));
      });
    case UnaryOp::kLogicalNot:
      break;
  }
}

// gelu (erf form) and the erfc(-x/sqrt2) it multiplies, both written: the backward then reads
// the erfc instead of evaluating it again (the costliest part of either pass).
void GeluErfSavingErfcF32(const float *x, float *y, float *e, int64_t n) { GeluErfLoop(x, y, e, n); }

// gelu's (erf form) backward from the erfc that GeluErfSavingErfcF32 wrote.
void GeluErfBackwardFromErfcF32(const float *x, const float *e, const float *dy, float *dx, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(GeluErfGrad(d, hn::LoadU(d, x + i), hn::LoadU(d, e + i), hn::LoadU(d, dy + i)), d, dx + i);
  if (i == n) return;
  const size_t rest = static_cast<size_t>(n - i);
  HWY_ALIGN float bx[kPad] = {};
  HWY_ALIGN float be[kPad] = {};
  HWY_ALIGN float bg[kPad] = {};
  std::memcpy(bx, x + i, rest * sizeof(float));
  std::memcpy(be, e + i, rest * sizeof(float));
  std::memcpy(bg, dy + i, rest * sizeof(float));
  hn::Store(GeluErfGrad(d, hn::Load(d, bx), hn::Load(d, be), hn::Load(d, bg)), d, bx);
  std::memcpy(dx + i, bx, rest * sizeof(float));
}

void UnaryBackwardF32(UnaryOp op, const float *x, const float *dy, float *dx, int64_t n, float alpha) {
  switch (op) {
    case UnaryOp::kRelu:
      // A select, as TF's ReluGrad: dy where x > 0, else alpha * dy (0, even for dy = inf).
      if (alpha == 0.0f)
        return Map2(x, dy, dx, n,
                    [](DF d, VF v, VF g) HWY_ATTR { return hn::IfThenElseZero(hn::Gt(v, hn::Zero(d)), g); });
      return Map2(x, dy, dx, n, [alpha](DF d, VF v, VF g) HWY_ATTR {
        return hn::IfThenElse(hn::Gt(v, hn::Zero(d)), g, hn::Mul(hn::Set(d, alpha), g));
      });
    case UnaryOp::kGeluErf:
      return Map2(x, dy, dx, n,
                  [](DF d, VF v, VF g) HWY_ATTR { return GeluErfGrad(d, v, GeluErfcVector(d, v), g); });
    case UnaryOp::kGeluTanh:
      // y = x s(z), z = 2u: y' = s + x s (1 - s) z'. Where s (1 - s) is exactly 0 the
      // second term is 0 (z' overflows to inf for |x| > ~1e19 and would make 0 * inf).
      return Map2(x, dy, dx, n, [](DF d, VF v, VF g) HWY_ATTR {
        const Logistic p = LogisticParts(d, GeluTanhArg(d, v));
        const VF ds = hn::Mul(hn::Mul(p.e, p.r), p.r);
        const VF dz = hn::Mul(hn::Set(d, 2.0f * kSqrt2OverPi),
                              hn::MulAdd(hn::Set(d, 3.0f * kGeluCubic), hn::Mul(v, v), hn::Set(d, 1.0f)));
        const VF tail = hn::IfThenZeroElse(hn::Eq(ds, hn::Zero(d)), hn::Mul(hn::Mul(v, ds), dz));
        return hn::Mul(g, hn::Add(p.s, tail));
      });
    default:
      break;
  }
}

float MaxF32(const float *x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF acc = hn::Set(d, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + N <= n; i += N) acc = hn::Max(acc, hn::LoadU(d, x + i));
  HWY_ALIGN float buf[kPad];
  if (i < n) {
    for (int64_t l = 0; l < N; ++l) buf[l] = -std::numeric_limits<float>::infinity();
    std::memcpy(buf, x + i, static_cast<size_t>(n - i) * sizeof(float));
    acc = hn::Max(acc, hn::Load(d, buf));
  }
  hn::Store(acc, d, buf);
  float m = buf[0];
  for (int64_t l = 1; l < N; ++l) m = buf[l] > m ? buf[l] : m;
  return m;
}

int64_t LanesF32() { return static_cast<int64_t>(hn::Lanes(DF())); }

float SumF32(const float *x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) acc = hn::Add(acc, hn::LoadU(d, x + i));
  HWY_ALIGN float buf[kPad] = {};
  if (i < n) {
    std::memcpy(buf, x + i, static_cast<size_t>(n - i) * sizeof(float));
    acc = hn::Add(acc, hn::Load(d, buf));
  }
  hn::Store(acc, d, buf);
  float s = 0.0f;
  for (int64_t l = 0; l < N; ++l) s += buf[l];
  return s;
}

float ExpShiftedSumF32(const float *x, float shift, float *y, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF m = hn::Set(d, shift);
  VF acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF e = Exp(hn::Sub(hn::LoadU(d, x + i), m));
    hn::StoreU(e, d, y + i);
    acc = hn::Add(acc, e);
  }
  HWY_ALIGN float buf[kPad] = {};
  if (i < n) {
    const size_t rest = static_cast<size_t>(n - i);
    std::memcpy(buf, x + i, rest * sizeof(float));
    const VF e = Exp(hn::Sub(hn::Load(d, buf), m));
    hn::Store(e, d, buf);
    std::memcpy(y + i, buf, rest * sizeof(float));
    acc = hn::Add(acc, hn::IfThenElseZero(hn::FirstN(d, rest), e));
  }
  hn::Store(acc, d, buf);
  float s = 0.0f;
  for (int64_t l = 0; l < N; ++l) s += buf[l];
  return s;
}

// y = x * scale (the softmax's last pass).
void ScaleF32(const float *x, float scale, float *y, int64_t n) {
  const VF f = hn::Set(DF(), scale);
  Map1(x, y, n, [f](DF, VF v) HWY_ATTR { return hn::Mul(v, f); });
}

// The sum of a[i] * b[i], lanes then lanes in order (as SumF32), the products rounded first.
HWY_INLINE float DotF32(const float *a, const float *b, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) acc = hn::Add(acc, hn::Mul(hn::LoadU(d, a + i), hn::LoadU(d, b + i)));
  HWY_ALIGN float ba[kPad] = {};
  HWY_ALIGN float bb[kPad] = {};
  if (i < n) {
    std::memcpy(ba, a + i, static_cast<size_t>(n - i) * sizeof(float));
    std::memcpy(bb, b + i, static_cast<size_t>(n - i) * sizeof(float));
    acc = hn::Add(acc, hn::Mul(hn::Load(d, ba), hn::Load(d, bb)));
  }
  hn::Store(acc, d, ba);
  float s = 0.0f;
  for (int64_t l = 0; l < N; ++l) s += ba[l];
  return s;
}

// y[i] += bias[(c + i) % channels] for i < n (channels-last rows; c: the channel of y[0]).
void AddBiasF32(float *y, int64_t n, const float *bias, int64_t channels, int64_t c) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t i = 0; i < n; c = 0) {
    const int64_t m = std::min(n - i, channels - c);
    float *row = y + i;
    const float *b = bias + c;
    int64_t k = 0;
    for (; k + N <= m; k += N) hn::StoreU(hn::Add(hn::LoadU(d, row + k), hn::LoadU(d, b + k)), d, row + k);
    for (; k < m; ++k) row[k] += b[k];  // one IEEE add, as in the vector lanes
    i += m;
  }
}

// One row of softmax's gradient: dx = (dy - sum(dy * y)) * y.
void SoftmaxGradRowF32(const float *y, const float *dy, float *dx, int64_t n) {
  const VF s = hn::Set(DF(), DotF32(dy, y, n));
  Map2(dy, y, dx, n, [s](DF, VF g, VF v) HWY_ATTR { return hn::Mul(hn::Sub(g, s), v); });
}

// One row of log_softmax's gradient: dx = dy - exp(y) * sum(dy).
void LogSoftmaxGradRowF32(const float *y, const float *dy, float *dx, int64_t n) {
  const VF s = hn::Set(DF(), SumF32(dy, n));
  Map2(dy, y, dx, n, [s](DF, VF g, VF v) HWY_ATTR { return hn::Sub(g, hn::Mul(Exp(v), s)); });
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::kernels::simd {

HWY_EXPORT(UnaryF32);
HWY_EXPORT(UnaryBackwardF32);
HWY_EXPORT(GeluErfSavingErfcF32);
HWY_EXPORT(GeluErfBackwardFromErfcF32);
HWY_EXPORT(ExpShiftedSumF32);
HWY_EXPORT(SumF32);
HWY_EXPORT(ScaleF32);
HWY_EXPORT(AddBiasF32);
HWY_EXPORT(SoftmaxGradRowF32);
HWY_EXPORT(LogSoftmaxGradRowF32);
HWY_EXPORT(MaxF32);
HWY_EXPORT(LanesF32);

bool has_unary_f32(UnaryOp op) { return op != UnaryOp::kLogicalNot; }

void unary_f32(UnaryOp op, const float *x, float *y, int64_t n, float alpha, float beta) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(UnaryF32)(op, x, y, n, alpha, beta);
}

void unary_backward_f32(UnaryOp op, const float *x, const float *dy, float *dx, int64_t n, float alpha) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(UnaryBackwardF32)(op, x, dy, dx, n, alpha);
}

void gelu_erf_saving_erfc_f32(const float *x, float *y, float *erfc, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(GeluErfSavingErfcF32)(x, y, erfc, n);
}

void gelu_erf_backward_from_erfc_f32(const float *x, const float *erfc, const float *dy, float *dx,
                                     int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(GeluErfBackwardFromErfcF32)(x, erfc, dy, dx, n);
}

float exp_shifted_sum_f32(const float *x, float shift, float *y, int64_t n) {
  return n > 0 ? HWY_DYNAMIC_DISPATCH(ExpShiftedSumF32)(x, shift, y, n) : 0.0f;
}

float max_f32(const float *x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MaxF32)(x, n); }

float sum_f32(const float *x, int64_t n) { return n > 0 ? HWY_DYNAMIC_DISPATCH(SumF32)(x, n) : 0.0f; }

int64_t lanes_f32() { return HWY_DYNAMIC_DISPATCH(LanesF32)(); }

void add_bias_f32(float *y, int64_t n, const float *bias, int64_t channels, int64_t c) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(AddBiasF32)(y, n, bias, channels, c);
}

void scale_f32(const float *x, float scale, float *y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(ScaleF32)(x, scale, y, n);
}

void softmax_grad_row_f32(bool log, const float *y, const float *dy, float *dx, int64_t n) {
  if (n <= 0) return;
  if (log)
    HWY_DYNAMIC_DISPATCH(LogSoftmaxGradRowF32)(y, dy, dx, n);
  else
    HWY_DYNAMIC_DISPATCH(SoftmaxGradRowF32)(y, dy, dx, n);
}

std::vector<int64_t> available_targets() {
  std::vector<int64_t> out;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) out.push_back(t);
  return out;
}

std::string target_name(int64_t target) { return hwy::TargetName(target); }

void force_target(int64_t target) { hwy::SetSupportedTargetsForTest(target); }

}  // namespace kiln::kernels::simd
#endif
