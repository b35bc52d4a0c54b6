// Philox4x32-10 in Highway vectors: lane j of a vector runs block first + j, so one AVX-512
// vector gives 16 blocks (64 uniform words) per 10 rounds. Highway's foreach_target re-includes
// this file per instruction set; see kernels/random_simd.h.
#include "kernels/random_simd.h"

#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/random_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::random_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// Room for the widest vector of any target (a 2048-bit SVE vector is 64 words).
constexpr size_t kMaxLanes = 64;

// The round keys and the stream words, the same for every lane.
struct Keys {
  uint32_t k0[Philox::kRounds], k1[Philox::kRounds];
  uint32_t s0, s1;
};

Keys keys_of(const Philox &gen) {
  Keys k;
  uint32_t k0 = gen.key_word(0), k1 = gen.key_word(1);
  for (int r = 0; r < Philox::kRounds; ++r) {
    k.k0[r] = k0;
    k.k1[r] = k1;
    k0 += Philox::kBump0;
    k1 += Philox::kBump1;
  }
  k.s0 = static_cast<uint32_t>(gen.stream());
  k.s1 = static_cast<uint32_t>(gen.stream() >> 32);
  return k;
}

#if HWY_TARGET == HWY_SCALAR
// One lane: the scalar block itself.
template <class DU>
HWY_INLINE void Blocks(DU /*du*/, const Philox &gen, const Keys & /*k*/, uint64_t first, uint32_t *words) {
  const std::array<uint32_t, 4> b = gen.block(first);
  std::memcpy(words, b.data(), sizeof(b));
}
#else
// The high and low 32 bits of a * m per lane (m the same in every lane): 32x32->64 products of
// the even lanes, then of the odd lanes shifted down, and the halves put back in place.
template <class DU, class V>
HWY_INLINE V MulHiLo(DU du, V a, V m, V &lo) {
  const hn::Repartition<uint64_t, DU> d64;
  const auto even = hn::MulEven(a, m);
  const auto odd = hn::MulEven(hn::BitCast(du, hn::ShiftRight<32>(hn::BitCast(d64, a))), m);
  lo = hn::OddEven(hn::BitCast(du, hn::ShiftLeft<32>(odd)), hn::BitCast(du, even));
  return hn::OddEven(hn::BitCast(du, odd), hn::BitCast(du, hn::ShiftRight<32>(even)));
}

// Blocks first .. first + Lanes(du) - 1 into words, in element order (block j's four words at
// 4 j .. 4 j + 3), as Philox::block computes them.
template <class DU>
HWY_INLINE void Blocks(DU du, const Philox & /*gen*/, const Keys &k, uint64_t first, uint32_t *words) {
  const size_t n = hn::Lanes(du);
  using V = hn::Vec<DU>;
  V c0, c1;
  const uint32_t first_lo = static_cast<uint32_t>(first);
  if (first_lo <= UINT32_MAX - static_cast<uint32_t>(n - 1)) {
    c0 = hn::Add(hn::Set(du, first_lo), hn::Iota(du, 0));
    c1 = hn::Set(du, static_cast<uint32_t>(first >> 32));
  } else {  // the low word wraps inside this vector: the carry lane by lane
    HWY_ALIGN uint32_t lo[kMaxLanes], hi[kMaxLanes];
    for (size_t j = 0; j < n; ++j) {
      lo[j] = static_cast<uint32_t>(first + j);
      hi[j] = static_cast<uint32_t>((first + j) >> 32);
    }
    c0 = hn::Load(du, lo);
    c1 = hn::Load(du, hi);
  }
  V c2 = hn::Set(du, k.s0), c3 = hn::Set(du, k.s1);
  const V m0 = hn::Set(du, Philox::kMul0), m1 = hn::Set(du, Philox::kMul1);
  for (int r = 0; r < Philox::kRounds; ++r) {
    V lo0, lo1;
    const V hi0 = MulHiLo(du, c0, m0, lo0);
    const V hi1 = MulHiLo(du, c2, m1, lo1);
    c0 = hn::Xor(hn::Xor(hi1, c1), hn::Set(du, k.k0[r]));
    c2 = hn::Xor(hn::Xor(hi0, c3), hn::Set(du, k.k1[r]));
    c1 = lo1;
    c3 = lo0;
  }
  hn::StoreInterleaved4(c0, c1, c2, c3, du, words);
}
#endif

void PhiloxWords(const Philox &gen, uint64_t first_block, int64_t blocks, uint32_t *words) {
  const hn::ScalableTag<uint32_t> du;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(du));
  const Keys k = keys_of(gen);
  int64_t j = 0;
  for (; j + lanes <= blocks; j += lanes)
    Blocks(du, gen, k, first_block + static_cast<uint64_t>(j), words + 4 * j);
  if (j < blocks) {
    HWY_ALIGN uint32_t buf[4 * kMaxLanes];
    Blocks(du, gen, k, first_block + static_cast<uint64_t>(j), buf);
    std::memcpy(words + 4 * j, buf, static_cast<size_t>(blocks - j) * 4 * sizeof(uint32_t));
  }
}

// Runs apply(words, g, lo, hi) over groups of 4 * Lanes elements starting at block boundaries:
// words holds the uniform words of elements g .. g + 4 * Lanes - 1, of which [lo, hi) are wanted.
template <class Apply>
HWY_INLINE void ForGroups(const Philox &gen, int64_t begin, int64_t end, const Apply &apply) {
  const hn::ScalableTag<uint32_t> du;
  const int64_t group = 4 * static_cast<int64_t>(hn::Lanes(du));
  const Keys k = keys_of(gen);
  HWY_ALIGN uint32_t words[4 * kMaxLanes];
  for (int64_t i = begin; i < end;) {
    const int64_t g = i & ~int64_t{3};
    Blocks(du, gen, k, static_cast<uint64_t>(g >> 2), words);
    const int64_t hi = std::min(end, g + group);
    apply(words, g, i, hi);
    i = hi;
  }
}

// u = top 24 bits * 2^-24, exactly Philox::unit.
template <class DF, class DU>
HWY_INLINE hn::Vec<DF> Unit(DF df, DU du, const uint32_t *words) {
  const hn::RebindToSigned<DF> di;
  const auto w = hn::ShiftRight<8>(hn::Load(du, words));
  return hn::Mul(hn::ConvertTo(df, hn::BitCast(di, w)), hn::Set(df, 1.0f / 16777216.0f));
}

void UniformF32(const Philox &gen, float minval, float range, float *out, int64_t begin, int64_t end) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  // Separate multiply and add (no FMA), as the scalar minval + range * u rounds.
  const auto lo = hn::Set(df, minval), r = hn::Set(df, range);
  ForGroups(gen, begin, end, [&](const uint32_t *words, int64_t g, int64_t b, int64_t e) {
    if (b == g && e == g + 4 * n) {
      for (int64_t v = 0; v < 4; ++v)
        hn::StoreU(hn::Add(lo, hn::Mul(r, Unit(df, du, words + v * n))), df, out + g + v * n);
      return;
    }
    HWY_ALIGN float buf[4 * kMaxLanes];
    for (int64_t v = 0; v < 4; ++v)
      hn::Store(hn::Add(lo, hn::Mul(r, Unit(df, du, words + v * n))), df, buf + v * n);
    std::memcpy(out + b, buf + (b - g), static_cast<size_t>(e - b) * sizeof(float));
  });
}

template <class DF>
HWY_INLINE void DropoutVector(DF df, hn::Vec<DF> u, hn::Vec<DF> rate, hn::Vec<DF> scale, const float *x,
                              float *out, float *mask) {
  // u >= rate, written as !(u < rate): neither is NaN.
  const auto drop = hn::Lt(u, rate);
  if (out) hn::StoreU(hn::IfThenZeroElse(drop, hn::Mul(hn::LoadU(df, x), scale)), df, out);
  if (mask) hn::StoreU(hn::IfThenZeroElse(drop, scale), df, mask);
}

void DropoutF32(const Philox &gen, float rate, float scale, const float *x, float *out, float *mask,
                int64_t begin, int64_t end) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const auto vrate = hn::Set(df, rate), vscale = hn::Set(df, scale);
  ForGroups(gen, begin, end, [&](const uint32_t *words, int64_t g, int64_t b, int64_t e) {
    if (b == g && e == g + 4 * n) {
      for (int64_t v = 0; v < 4; ++v) {
        const int64_t at = g + v * n;
        DropoutVector(df, Unit(df, du, words + v * n), vrate, vscale, out ? x + at : nullptr,
                      out ? out + at : nullptr, mask ? mask + at : nullptr);
      }
      return;
    }
    // A partial group goes through the same vector code on padded copies.
    HWY_ALIGN float xb[4 * kMaxLanes] = {}, ob[4 * kMaxLanes], mb[4 * kMaxLanes];
    const size_t bytes = static_cast<size_t>(e - b) * sizeof(float);
    if (out) std::memcpy(xb + (b - g), x + b, bytes);
    for (int64_t v = 0; v < 4; ++v)
      DropoutVector(df, Unit(df, du, words + v * n), vrate, vscale, xb + v * n, out ? ob + v * n : nullptr,
                    mask ? mb + v * n : nullptr);
    if (out) std::memcpy(out + b, ob + (b - g), bytes);
    if (mask) std::memcpy(mask + b, mb + (b - g), bytes);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::random_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::kernels::random_simd {

HWY_EXPORT(PhiloxWords);
HWY_EXPORT(UniformF32);
HWY_EXPORT(DropoutF32);

void philox_words(const Philox &gen, uint64_t first_block, int64_t blocks, uint32_t *words) {
  HWY_DYNAMIC_DISPATCH(PhiloxWords)(gen, first_block, blocks, words);
}

void uniform_f32(const Philox &gen, float minval, float range, float *out, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(UniformF32)(gen, minval, range, out, begin, end);
}

void dropout_f32(const Philox &gen, float rate, float scale, const float *x, float *out, float *mask,
                 int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(DropoutF32)(gen, rate, scale, x, out, mask, begin, end);
}

}  // namespace kiln::kernels::random_simd
#endif
