// The gemv kernel (kernels/gemv.h): the per-target loops, compiled once per instruction set
// (Highway's foreach_target re-includes this file per target) and chosen at run time; then, once,
// the packing, the threading and the memo of packed weights.
#include "kernels/gemv.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/gemv_plan.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/simd_relu-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::gemv_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using simd_relu::HWY_NAMESPACE::ReluZero;

constexpr size_t kLanes = hn::MaxLanes(DF());
constexpr size_t kPanelVectors = static_cast<size_t>(kGemvPanel) / kLanes;
// Accumulators a block keeps in registers: AVX-512 has 32 vector registers, the others 16
// (leaving room for the broadcast x values and the loaded weights).
constexpr size_t kAccumulators = kLanes >= 16 ? 16 : 8;

constexpr size_t PowerOfTwoAtMost(size_t v) {
  size_t p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}

// acc + a * b rounded once. Targets without a native FMA compute it lane by lane with std::fma,
// so that every target gives the same bits.
HWY_INLINE VF Fma(DF d, VF a, VF b, VF acc) {
#if HWY_NATIVE_FMA
  (void)d;
  return hn::MulAdd(a, b, acc);
#else
  HWY_ALIGN float la[kLanes], lb[kLanes], lc[kLanes];
  hn::Store(a, d, la);
  hn::Store(b, d, lb);
  hn::Store(acc, d, lc);
  for (size_t i = 0; i < kLanes; ++i) lc[i] = std::fma(la[i], lb[i], lc[i]);
  return hn::Load(d, lc);
#endif
}

// The column (within its panel) of a panel row's float vector v. float32: v * kLanes. bfloat16
// rows are stored interleaved (see PackedWeights::pack): in each group of 32 columns, 32-bit word
// i holds column i in its low half and column 16 + i in its high half, so that one load of
// kLanes words gives two vectors of float32 with a shift and a mask, no shuffle: vector 2q the
// low halves, 2q + 1 the high halves of words [q * kLanes, (q + 1) * kLanes).
template <class WT>
constexpr size_t VectorColumn(size_t v) {
  if constexpr (std::is_same_v<WT, float>) {
    return v * kLanes;
  } else {
    const size_t word = v / 2 * kLanes;
    return 32 * (word / 16) + 16 * (v % 2) + word % 16;
  }
}
static_assert(kLanes <= 16, "the bfloat16 interleave pairs columns 16 apart");

// Accumulates x_r * (row's vectors [0, VB)) into acc[r][first ...] for M rows.
template <int M, size_t VB, size_t W>
HWY_INLINE void RowFma(DF d, const float *row, const VF *xb, VF (&acc)[M][W], size_t first) {
  for (size_t v = 0; v < VB; ++v) {
    const VF w = hn::LoadU(d, row + v * kLanes);
    for (int r = 0; r < M; ++r) acc[r][first + v] = Fma(d, xb[r], w, acc[r][first + v]);
  }
}
template <int M, size_t VB, size_t W>
HWY_INLINE void RowFma(DF d, const uint16_t *row, const VF *xb, VF (&acc)[M][W], size_t first) {
  const hn::RebindToUnsigned<DF> du;
  const auto high = hn::Set(du, 0xFFFF0000u);
  const auto *words = reinterpret_cast<const uint32_t *>(row);  // little-endian: column pairs per word
  for (size_t q = 0; q < VB / 2; ++q) {
    const auto raw = hn::LoadU(du, words + q * kLanes);
    const VF lo = hn::BitCast(d, hn::ShiftLeft<16>(raw)), hi = hn::BitCast(d, hn::And(raw, high));
    for (int r = 0; r < M; ++r) {
      acc[r][first + 2 * q] = Fma(d, xb[r], lo, acc[r][first + 2 * q]);
      acc[r][first + 2 * q + 1] = Fma(d, xb[r], hi, acc[r][first + 2 * q + 1]);
    }
  }
}

// z + bias, then the activation: the bits of binary add and of relu's kernel (simd_unary.cc:
// +0 where z < 0, else z, so NaN and -0 pass).
HWY_INLINE float FinishScalar(float z, const float *bias, bool relu) {
  if (bias) z = z + *bias;
  if (relu && z < 0.0f) z = 0.0f;
  return z;
}

// Row r's columns [col, col + kLanes) of y (those below n; col < n): z + bias, the activation.
HWY_INLINE void StoreFinished(const GemvPlan &p, int r, int64_t col, VF z) {
  const DF d;
  const int64_t valid = p.n - col;
  float *out = p.y + r * p.n + col;
  if (valid >= static_cast<int64_t>(kLanes)) {
    if (p.bias) z = hn::Add(z, hn::LoadU(d, p.bias + col));
    if (p.relu) z = ReluZero(d, z);
    hn::StoreU(z, d, out);
  } else {
    HWY_ALIGN float lanes[kLanes];
    hn::Store(z, d, lanes);
    for (int64_t i = 0; i < valid; ++i)
      out[i] = FinishScalar(lanes[i], p.bias ? p.bias + col + i : nullptr, p.relu);
  }
}

// The values of k a product sums over: all of [0, K) (index null), or only those listed, in
// increasing order (LiveRows: the rest have x zero in every row, and their products cannot change
// a bit of the result; GemvPlan::skip_zero_rows).
struct Rows {
  const int32_t *index = nullptr;
  int64_t count = 0;
};

// Row kk of the weights of G panels (starting at base[g], stride[g] apart) times x's row values:
// accumulated into acc for M rows.
template <int M, size_t G, size_t VB, class WT>
HWY_INLINE void AccumulateRow(DF d, const GemvPlan &p, const WT *const (&base)[G], const int64_t (&stride)[G],
                              int64_t kk, VF (&acc)[M][G * VB]) {
  VF xb[M];
  for (int r = 0; r < M; ++r) xb[r] = hn::Set(d, p.x[r * p.k + kk]);
  for (size_t g = 0; g < G; ++g) RowFma<M, VB>(d, base[g] + kk * stride[g], xb, acc, g * VB);
}

// Float vectors [v0, v0 + VB) of the rows of G consecutive panels starting at `panel`, for M
// rows: the sums over the rows of K in registers, then bias and activation into y.
template <int M, size_t G, size_t VB, class WT>
HWY_INLINE void Block(const GemvPlan &p, const Rows &rows, int64_t panel, size_t v0) {
  const DF d;
  const WT *base[G] = {};
  int64_t stride[G] = {};
  for (size_t g = 0; g < G; ++g) {
    const int64_t q = panel + static_cast<int64_t>(g);
    const WT *w = static_cast<const WT *>(p.w);
    if (p.tail && q == p.panels - 1) {
      base[g] = static_cast<const WT *>(p.tail);
      stride[g] = kGemvPanel;
    } else {
      base[g] = w + q * p.panel_stride;
      stride[g] = p.row_stride;
    }
    base[g] += v0 * kLanes;
  }
  VF acc[M][G * VB];
  for (int r = 0; r < M; ++r)
    for (size_t i = 0; i < G * VB; ++i) acc[r][i] = hn::Zero(d);
  if (rows.index) {
    for (int64_t i = 0; i < rows.count; ++i)
      AccumulateRow<M, G, VB, WT>(d, p, base, stride, rows.index[i], acc);
  } else {
    for (int64_t kk = 0; kk < p.k; ++kk) AccumulateRow<M, G, VB, WT>(d, p, base, stride, kk, acc);
  }
  for (size_t g = 0; g < G; ++g) {
    const int64_t col0 = (panel + static_cast<int64_t>(g)) * kGemvPanel;
    for (size_t v = 0; v < VB; ++v) {
      const int64_t col = col0 + static_cast<int64_t>(VectorColumn<WT>(v0 + v));
      if (col >= p.n) continue;
      for (int r = 0; r < M; ++r) StoreFinished(p, r, col, acc[r][g * VB + v]);
    }
  }
}

// Vectors [v0, v0 + VB) of panel q alone, leaving out trailing vectors whose columns all lie at
// or beyond n (the padding of the last panel: W7's 10-column layer reads a quarter of its panel).
// Each column's sum is the same chain of FMAs either way.
template <int M, size_t VB, class WT>
HWY_INLINE void LiveBlock(const GemvPlan &p, const Rows &rows, int64_t q, size_t v0) {
  const int64_t col0 = q * kGemvPanel;
  if (col0 + static_cast<int64_t>(VectorColumn<WT>(v0)) >= p.n) return;
  constexpr size_t kLeast = std::is_same_v<WT, float> ? 1 : 2;  // bfloat16 vectors come in pairs
  if constexpr (VB > kLeast) {
    if (col0 + static_cast<int64_t>(VectorColumn<WT>(v0 + VB / 2)) >= p.n)
      return LiveBlock<M, VB / 2, WT>(p, rows, q, v0);
  }
  Block<M, 1, VB, WT>(p, rows, q, v0);
}

// Panels [p0, p1) in groups of GS panels, first to last or, when backward, last to first; each
// group in column blocks of VB vectors. A last group narrower than GS, and the plan's last panel
// when n leaves it partly padding, go a panel at a time (LiveBlock).
template <int M, size_t GS, size_t VB, class WT>
void Sweep(const GemvPlan &p, const Rows &rows, int64_t p0, int64_t p1, bool backward) {
  constexpr auto kGroup = static_cast<int64_t>(GS);
  const bool partial = p1 == p.panels && p.n < p1 * kGemvPanel;
  const int64_t whole = partial ? p1 - 1 : p1;  // panels [p0, whole) have no padding
  const auto partial_panel = [&] {
    for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) LiveBlock<M, VB, WT>(p, rows, p1 - 1, v0);
  };
  if (partial && backward) partial_panel();
  const int64_t groups = whole > p0 ? (whole - p0 + kGroup - 1) / kGroup : 0;
  for (int64_t i = 0; i < groups; ++i) {
    const int64_t q = p0 + (backward ? groups - 1 - i : i) * kGroup;
    if (q + kGroup <= whole) {
      for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) Block<M, GS, VB, WT>(p, rows, q, v0);
      continue;
    }
    for (int64_t r = q; r < whole; ++r)
      for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) Block<M, 1, VB, WT>(p, rows, r, v0);
  }
  if (partial && !backward) partial_panel();
}

// Products over at most this many values of k may leave out the rows of W whose x is zero (the
// list of the others lives on the stack: 16 kB).
constexpr int64_t kMaxSkipRows = 4096;

// The values of k where some row of x is not zero (NaN included), when the plan allows leaving
// the others out and at least an eighth of them are zero (fewer save too little to pay for the
// indirection); else all of k. live holds kMaxSkipRows + kLanes values.
template <int M>
Rows LiveRows(const GemvPlan &p, int32_t *live) {
  const int64_t k = p.k;
  if (!p.skip_zero_rows || k > kMaxSkipRows) return {};
  const DF d;
  const hn::RebindToSigned<DF> di;
  const auto lanes = static_cast<int64_t>(kLanes);
  auto index = hn::Iota(di, 0);
  const auto step = hn::Set(di, static_cast<int32_t>(kLanes));
  int64_t count = 0, kk = 0;
  for (; kk + lanes <= k; kk += lanes) {
    // Not(Eq), not Ne: Highway's Ne is false for a NaN, which must be kept.
    auto zero = hn::Eq(hn::LoadU(d, p.x + kk), hn::Zero(d));
    for (int r = 1; r < M; ++r) zero = hn::And(zero, hn::Eq(hn::LoadU(d, p.x + r * k + kk), hn::Zero(d)));
    count +=
        static_cast<int64_t>(hn::CompressStore(index, hn::RebindMask(di, hn::Not(zero)), di, live + count));
    index = hn::Add(index, step);
  }
  for (; kk < k; ++kk) {
    bool nonzero = false;
    for (int r = 0; r < M; ++r) nonzero = nonzero || !(p.x[r * k + kk] == 0.0f);
    live[count] = static_cast<int32_t>(kk);
    count += nonzero ? 1 : 0;
  }
  if ((k - count) * 8 < k) return {};
  return {live, count};
}

// Panels [p0, p1) for M rows: G panels at a time, each in column blocks of VB vectors, so that
// M * G * VB accumulators fill the register budget. Packed float32 and bfloat16 weights
// (p.alternate) go in groups half as wide, in the direction of p.backward
// (PackedWeights::sweep_backward).
template <int M, class WT>
void Panels(const GemvPlan &p, int64_t p0, int64_t p1) {
  constexpr size_t kBudget = kAccumulators / M > 0 ? kAccumulators / M : 1;
  // bfloat16 loads give vectors in pairs: at least 2.
  constexpr size_t kFit = PowerOfTwoAtMost(kBudget < kPanelVectors ? kBudget : kPanelVectors);
  constexpr size_t VB = std::is_same_v<WT, float> || kFit >= 2 ? kFit : 2;
  constexpr size_t G = VB == kPanelVectors && kBudget / kPanelVectors > 1 ? kBudget / kPanelVectors : 1;
  // Each thread of a split lists the rows itself: a scan of x it reads anyway costs less than
  // fetching another core's list across the hand-off.
  int32_t live[kMaxSkipRows + kLanes];
  const Rows rows = LiveRows<M>(p, live);
  if (p.alternate) return Sweep<M, (G > 1 ? G / 2 : 1), VB, WT>(p, rows, p0, p1, p.backward);
  Sweep<M, G, VB, WT>(p, rows, p0, p1, false);
}

static_assert(kGemvMaxRows <= 8, "WithRows has cases for 1 to 8 rows");

// f(std::integral_constant<int, m>{}): the row count as a compile-time constant, 1 <= m <= 8.
template <class F>
void WithRows(int m, const F &f) {
  switch (m) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 7:
      return f(std::integral_constant<int, 7>{});
    default:
      return f(std::integral_constant<int, 8>{});
  }
}

template <class WT>
void PanelsOf(const GemvPlan &p, int64_t p0, int64_t p1) {
  WithRows(static_cast<int>(p.m), [&](auto rows) { Panels<decltype(rows)::value, WT>(p, p0, p1); });
}

// ---- int8 weights (GemvWeights::kInt8) ----
//
// W in quads: panel row q holds rows 4q .. 4q + 3 of each column, 4 bytes per column. A run of
// kGemvInt8ChunkK values of k is summed exactly in int32; the run's sum is converted to float32
// and added to the column's float sum in order, so every instruction set gives the same bits.

constexpr int64_t kQuadsPerRun = kGemvInt8ChunkK / 4;

// The epilogue of a float vector of sums (columns [col, col + kLanes) of row r): * column scale *
// row scale, + bias, the activation, into y.
HWY_INLINE void Int8Finish(const GemvPlan &p, int r, int64_t col, VF sum) {
  if (col >= p.n) return;
  const DF d;
  StoreFinished(p, r, col,
                hn::Mul(hn::Mul(sum, hn::LoadU(d, p.column_scale + col)), hn::Set(d, p.row_scale[r])));
}

#if HWY_TARGET == HWY_SCALAR
// One lane: the same exact runs as the vector targets, column by column.
void Int8PanelsOf(const GemvPlan &p, int64_t p0, int64_t p1) {
  const int64_t quads = (p.k + 3) / 4;
  const auto *w = static_cast<const int8_t *>(p.w);
  for (int64_t r = 0; r < p.m; ++r)
    for (int64_t j = p0 * kGemvPanel; j < std::min(p.n, p1 * kGemvPanel); ++j) {
      const int8_t *col = w + j / kGemvPanel * p.panel_stride + 4 * (j % kGemvPanel);
      const int16_t *x = p.xq + r * 4 * quads;
      float sum = 0.0f;
      for (int64_t c0 = 0; c0 < quads; c0 += kQuadsPerRun) {
        int32_t run = 0;
        for (int64_t q = c0; q < std::min(quads, c0 + kQuadsPerRun); ++q)
          for (int64_t i = 0; i < 4; ++i) run += int32_t{col[q * p.row_stride + i]} * x[4 * q + i];
        sum = sum + static_cast<float>(run);
      }
      Int8Finish(p, static_cast<int>(r), j, hn::Set(DF(), sum));
    }
}
#else

using DI32 = hn::Rebind<int32_t, DF>;
using DI16 = hn::Repartition<int16_t, DI32>;
using DI64 = hn::Repartition<int64_t, DI32>;
using DI8 = hn::Rebind<int8_t, DI16>;
using VI32 = hn::Vec<DI32>;

// Float vectors [v0, v0 + VB) of panel `panel` for M rows. Each half of a vector's columns is
// widened to int16 and multiplied in pairs (madd) with the row's quad of x, giving per column two
// partial sums in adjacent lanes; they are added at the end of each run.
template <int M, size_t VB>
HWY_INLINE void Int8Block(const GemvPlan &p, int64_t panel, size_t v0) {
  const DF d;
  const DI32 d32;
  const DI16 d16;
  const DI64 d64;
  const DI8 d8;
  const int64_t quads = (p.k + 3) / 4;
  const int8_t *base = static_cast<const int8_t *>(p.w) + panel * p.panel_stride + v0 * kLanes * 4;
  VF sum[M][VB];
  for (int r = 0; r < M; ++r)
    for (size_t v = 0; v < VB; ++v) sum[r][v] = hn::Zero(d);
  for (int64_t c0 = 0; c0 < quads; c0 += kQuadsPerRun) {
    const int64_t c1 = std::min(quads, c0 + kQuadsPerRun);
    VI32 lo[M][VB], hi[M][VB], lo1[M][VB], hi1[M][VB];  // *1: where a target splits product pairs
    for (int r = 0; r < M; ++r)
      for (size_t v = 0; v < VB; ++v) lo[r][v] = hi[r][v] = lo1[r][v] = hi1[r][v] = hn::Zero(d32);
    for (int64_t q = c0; q < c1; ++q) {
      hn::Vec<DI16> xb[M];
      for (int r = 0; r < M; ++r) {
        int64_t quad;
        std::memcpy(&quad, p.xq + r * 4 * quads + 4 * q, sizeof(quad));
        xb[r] = hn::BitCast(d16, hn::Set(d64, quad));
      }
      const int8_t *row = base + q * p.row_stride;
      for (size_t v = 0; v < VB; ++v) {
        const auto wl = hn::PromoteTo(d16, hn::LoadU(d8, row + v * kLanes * 4));
        const auto wh = hn::PromoteTo(d16, hn::LoadU(d8, row + v * kLanes * 4 + kLanes * 2));
        for (int r = 0; r < M; ++r) {
          lo[r][v] = hn::ReorderWidenMulAccumulate(d32, wl, xb[r], lo[r][v], lo1[r][v]);
          hi[r][v] = hn::ReorderWidenMulAccumulate(d32, wh, xb[r], hi[r][v], hi1[r][v]);
        }
      }
    }
    for (int r = 0; r < M; ++r)
      for (size_t v = 0; v < VB; ++v) {
        const VI32 a = hn::RearrangeToOddPlusEven(lo[r][v], lo1[r][v]);
        const VI32 b = hn::RearrangeToOddPlusEven(hi[r][v], hi1[r][v]);
        const VI32 run = hn::Add(hn::ConcatEven(d32, b, a), hn::ConcatOdd(d32, b, a));
        sum[r][v] = hn::Add(sum[r][v], hn::ConvertTo(d, run));
      }
  }
  for (size_t v = 0; v < VB; ++v)
    for (int r = 0; r < M; ++r)
      Int8Finish(p, r, panel * kGemvPanel + static_cast<int64_t>((v0 + v) * kLanes), sum[r][v]);
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// AVX-512 VNNI (vpdpbusd: u8 x s8, four products per int32 lane): x = 256 xh + xl with xl =
// the low byte (unsigned) and xh the high byte (signed, stored + 128 as unsigned); per run,
// sum = 256 (B - 128 colsum) + A with A = sum xl w, B = sum (xh + 128) w: the same exact int32
// run sums as the madd path (wrapping arithmetic; the true sum fits).
template <int M, size_t VB>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void VnniBlock(const GemvPlan &p, int64_t panel,
                                                                      size_t v0) {
  const DF d;
  const int64_t quads = (p.k + 3) / 4;
  const int8_t *base = static_cast<const int8_t *>(p.w) + panel * p.panel_stride + v0 * 64;
  const int32_t *colsum = p.column_sums + panel * kGemvPanel + static_cast<int64_t>(v0) * 16;
  const int64_t runs_stride = p.panels * kGemvPanel;
  VF sum[M][VB];
  for (int r = 0; r < M; ++r)
    for (size_t v = 0; v < VB; ++v) sum[r][v] = hn::Zero(d);
  for (int64_t c0 = 0, run_index = 0; c0 < quads; c0 += kQuadsPerRun, ++run_index) {
    const int64_t c1 = std::min(quads, c0 + kQuadsPerRun);
    __m512i a[M][VB], b[M][VB];
    for (int r = 0; r < M; ++r)
      for (size_t v = 0; v < VB; ++v) a[r][v] = b[r][v] = _mm512_setzero_si512();
    for (int64_t q = c0; q < c1; ++q) {
      __m512i xl[M], xh[M];
      for (int r = 0; r < M; ++r) {
        int32_t l, h;
        std::memcpy(&l, p.x_low + r * 4 * quads + 4 * q, sizeof(l));
        std::memcpy(&h, p.x_high + r * 4 * quads + 4 * q, sizeof(h));
        xl[r] = _mm512_set1_epi32(l);
        xh[r] = _mm512_set1_epi32(h);
      }
      const int8_t *row = base + q * p.row_stride;
      for (size_t v = 0; v < VB; ++v) {
        const __m512i w = _mm512_loadu_si512(row + v * 64);
        for (int r = 0; r < M; ++r) {
          a[r][v] = _mm512_dpbusd_epi32(a[r][v], xl[r], w);
          b[r][v] = _mm512_dpbusd_epi32(b[r][v], xh[r], w);
        }
      }
    }
    for (size_t v = 0; v < VB; ++v) {
      const __m512i cs = _mm512_slli_epi32(_mm512_loadu_si512(colsum + run_index * runs_stride + v * 16), 7);
      for (int r = 0; r < M; ++r) {
        const __m512i run = _mm512_add_epi32(_mm512_slli_epi32(_mm512_sub_epi32(b[r][v], cs), 8), a[r][v]);
        sum[r][v] = hn::Add(sum[r][v], VF{_mm512_cvtepi32_ps(run)});
      }
    }
  }
  for (size_t v = 0; v < VB; ++v)
    for (int r = 0; r < M; ++r)
      Int8Finish(p, r, panel * kGemvPanel + static_cast<int64_t>((v0 + v) * 16), sum[r][v]);
}
#endif

template <int M>
void Int8Panels(const GemvPlan &p, int64_t p0, int64_t p1) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if (p.x_low) {
    // Two int32 accumulators and a float sum per vector.
    constexpr size_t kBudget = 24 / (3 * M) > 0 ? 24 / (3 * M) : 1;
    constexpr size_t VB = PowerOfTwoAtMost(kBudget < kPanelVectors ? kBudget : kPanelVectors);
    for (int64_t q = p0; q < p1; ++q)
      for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) VnniBlock<M, VB>(p, q, v0);
    return;
  }
#endif
  // Two int32 accumulators and a float sum per vector.
  constexpr size_t kBudget = kAccumulators / (3 * M) > 0 ? kAccumulators / (3 * M) : 1;
  constexpr size_t VB = PowerOfTwoAtMost(kBudget < kPanelVectors ? kBudget : kPanelVectors);
  for (int64_t q = p0; q < p1; ++q)
    for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) Int8Block<M, VB>(p, q, v0);
}

void Int8PanelsOf(const GemvPlan &p, int64_t p0, int64_t p1) {
  WithRows(static_cast<int>(p.m), [&](auto rows) { Int8Panels<decltype(rows)::value>(p, p0, p1); });
}
#endif  // HWY_TARGET == HWY_SCALAR

// Whether this target's int8 kernel takes the VNNI form (needs x_low / x_high).
bool Int8UsesVnni() {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni;
#else
  return false;
#endif
}

// x[i] * inv rounded to nearest even, as int16 (|x[i] * inv| <= 32767.5 by the caller's scale).
void QuantizeRow(const float *x, int64_t n, float inv, int16_t *q) {
  const DF d;
  const hn::Rebind<int32_t, DF> d32;
  const hn::Rebind<int16_t, DF> d16h;
  const VF vinv = hn::Set(d, inv), lim = hn::Set(d, 32767.0f);
  int64_t i = 0;
  for (; i + static_cast<int64_t>(kLanes) <= n; i += static_cast<int64_t>(kLanes)) {
    const VF v = hn::Min(hn::Max(hn::Round(hn::Mul(hn::LoadU(d, x + i), vinv)), hn::Neg(lim)), lim);
    hn::StoreU(hn::DemoteTo(d16h, hn::ConvertTo(d32, v)), d16h, q + i);
  }
  for (; i < n; ++i) q[i] = static_cast<int16_t>(std::clamp(std::nearbyint(x[i] * inv), -32767.0f, 32767.0f));
}

// max |x[i]| over i < n, or -1 when x holds NaN or inf.
float RowAbsMax(const float *x, int64_t n) {
  const DF d;
  VF top = hn::Zero(d), bad = hn::Zero(d);
  const VF one = hn::Set(d, 1.0f);
  int64_t i = 0;
  for (; i + static_cast<int64_t>(kLanes) <= n; i += static_cast<int64_t>(kLanes)) {
    const VF v = hn::LoadU(d, x + i);
    bad = hn::Or(bad, hn::IfThenZeroElse(hn::IsFinite(v), one));
    top = hn::Max(top, hn::Abs(v));
  }
  float a = hn::GetLane(hn::MaxOfLanes(d, top));
  bool finite = hn::GetLane(hn::MaxOfLanes(d, bad)) == 0.0f;
  for (; i < n; ++i) {
    finite = finite && std::isfinite(x[i]);
    a = std::max(a, std::fabs(x[i]));
  }
  return finite ? a : -1.0f;
}

void GemvPanels(const GemvPlan &p, int64_t p0, int64_t p1) {
  switch (p.format) {
    case GemvWeights::kBFloat16:
      return PanelsOf<uint16_t>(p, p0, p1);
    case GemvWeights::kInt8:
      return Int8PanelsOf(p, p0, p1);
    default:
      return PanelsOf<float>(p, p0, p1);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::gemv_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/threads.h"
#include "kernels/spin_team.h"

namespace kiln::kernels {

namespace gemv_simd {
HWY_EXPORT(GemvPanels);
HWY_EXPORT(QuantizeRow);
HWY_EXPORT(Int8UsesVnni);
HWY_EXPORT(RowAbsMax);
}  // namespace gemv_simd

namespace {

// When a product of weights read in place splits its panels among the threads
// (kernels/spin_team.h): from this many multiply-adds (rows x K x padded columns), or from this
// many bytes of weights. A split costs about 2 us on the 2-core Zen 5 VM this was measured on (the
// input and the output cross between the cores), and halves the weights each core rereads.
// Packed weights time both ways instead (run_packed), since which is faster depends on the CPU:
// W7's batch-1 MLP (784x512, 512x256 and 256x10 Dense) took on the Zen 5 VM 26-27 us in float32
// on one thread and 16-18 us with its first two layers split (1.6 MB and 512 kB), and in int8
// (400 kB and 128 kB) 6 us on one thread and 10.6 us split; on the Zen 4 VM, half the vector
// width, the int8 kernels of the first layer took 4.8 us on one thread and 3.2 us split.
constexpr int64_t kGemvParallelWork = int64_t{1} << 20;
constexpr int64_t kGemvParallelBytes = int64_t{512} << 10;

// Bytes of one packed weight in format (PackedWeights::pack, and the split rule of run_plan).
int64_t bytes_per_weight(GemvWeights format) {
  switch (format) {
    case GemvWeights::kBFloat16:
      return 2;
    case GemvWeights::kInt8:
      return 1;
    case GemvWeights::kFloat32:
      break;
  }
  return 4;
}

// The plan's panels on `threads` threads (1: the calling thread alone); returns how many parts
// helper threads ran.
int run_panels(const GemvPlan &plan, int threads) {
  if (threads <= 1) {
    HWY_DYNAMIC_DISPATCH(gemv_simd::GemvPanels)(plan, 0, plan.panels);
    return 0;
  }
  // Part t always takes the same panels (for one thread count) and runs on the same helper, so
  // its share of a packed W stays in that core's cache from one call to the next. The plan goes
  // by value: a helper reads it from the team's lines, not from this thread's stack.
  return spin_team::run_copied(threads, [plan, threads](int t) {
    const int64_t p0 = plan.panels * t / threads, p1 = plan.panels * (t + 1) / threads;
    if (p0 < p1) HWY_DYNAMIC_DISPATCH(gemv_simd::GemvPanels)(plan, p0, p1);
  });
}

int split_threads(const GemvPlan &plan) {
  return static_cast<int>(std::min<int64_t>(num_threads(), plan.panels));
}

// Weights read in place: split by the fixed rule above.
void run_plan(const GemvPlan &plan) {
  const int64_t weights = plan.k * plan.panels * kGemvPanel, work = plan.m * weights;
  const bool split =
      work >= kGemvParallelWork || weights * bytes_per_weight(plan.format) >= kGemvParallelBytes;
  run_panels(plan, split ? split_threads(plan) : 1);
}

// Packed weights time both ways in rounds (PackedWeights::SplitTuning). A round's first calls
// alternate between one thread and a split, each timed, until each way has kGemvSplitTrials
// timings (a split whose helpers took no part, not started yet or not yet on another processor,
// does not count; after kGemvSplitTrialCalls calls, what was timed decides). Then every call takes
// the way whose fastest call was faster, until the next round kGemvSplitRound calls later: a choice
// a busy moment spoilt does not last. The first round starts after kGemvSplitWarmCalls calls split
// by run_plan's fixed rule (the caches warm, the helpers started and placed by the scheduler).
// Callers racing through a round only blur its timings: either way gives the same bits.
constexpr int kGemvSplitTrials = 16;
constexpr int64_t kGemvSplitTrialCalls = 8 * kGemvSplitTrials;
constexpr int64_t kGemvSplitRound = int64_t{1} << 13;
constexpr int64_t kGemvSplitWarmCalls = 32;

int faster_way(const PackedWeights::SplitTuning &t) {
  return t.best_ns[1].load(std::memory_order_relaxed) < t.best_ns[0].load(std::memory_order_relaxed) ? 1 : 0;
}

// Whether this round has kGemvSplitTrials timings of each way.
bool trials_done(const PackedWeights::SplitTuning &t) {
  return t.timed[0].load(std::memory_order_relaxed) >= kGemvSplitTrials &&
         t.timed[1].load(std::memory_order_relaxed) >= kGemvSplitTrials;
}

void run_packed(const GemvPlan &plan, const PackedWeights &w) {
  const int threads = split_threads(plan);
  if (threads <= 1 || plan.m * plan.k * plan.panels * kGemvPanel < kGemvMinSplitWork) {
    run_panels(plan, 1);
    return;
  }
  PackedWeights::SplitTuning &t = w.split_tuning(plan.m);
  const int64_t call = t.calls.fetch_add(1, std::memory_order_relaxed) - kGemvSplitWarmCalls;
  if (call < 0) return run_plan(plan);
  const int64_t trial = call % kGemvSplitRound;
  if (trial == 0) {  // a new round
    for (int way = 0; way < 2; ++way) {
      t.timed[way].store(0, std::memory_order_relaxed);
      t.best_ns[way].store(INT64_MAX, std::memory_order_relaxed);
    }
  }
  const bool done = trials_done(t);
  if (trial >= kGemvSplitTrialCalls || done) {
    if (trial == kGemvSplitTrialCalls && !done) t.choice.store(faster_way(t), std::memory_order_relaxed);
    const int choice = t.choice.load(std::memory_order_relaxed);
    if (choice < 0) return run_plan(plan);
    run_panels(plan, choice ? threads : 1);
    return;
  }
  const int way = static_cast<int>(trial % 2);
  const auto start = std::chrono::steady_clock::now();
  const int by_helpers = run_panels(plan, way ? threads : 1);
  const int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  if (way == 1 && by_helpers == 0) return;
  int64_t best = t.best_ns[way].load(std::memory_order_relaxed);
  while (ns < best && !t.best_ns[way].compare_exchange_weak(best, ns, std::memory_order_relaxed)) {
  }
  t.timed[way].fetch_add(1, std::memory_order_relaxed);
  if (trials_done(t)) t.choice.store(faster_way(t), std::memory_order_relaxed);
}

int64_t panels_of(int64_t n) { return (n + kGemvPanel - 1) / kGemvPanel; }

void check_rows(int64_t m, int64_t k, int64_t n) {
  if (m < 1 || m > kGemvMaxRows || k < 1 || n < 1)
    fail(Code::kInternal, "gemv kernel: [", m, ", ", k, "] x [", k, ", ", n, "]; expected 1 to ",
         kGemvMaxRows, " rows and K, N > 0");
}

}  // namespace

PackedWeights::~PackedWeights() { std::free(data_); }

namespace {

bool all_finite(const float *w, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(w[i])) return false;
  return true;
}

}  // namespace

std::shared_ptr<const PackedWeights> PackedWeights::pack(const float *w, int64_t k, int64_t n,
                                                         GemvWeights format) {
  check_rows(1, k, n);
  const bool finite = all_finite(w, k * n);
  if (format == GemvWeights::kInt8 && !finite) format = GemvWeights::kFloat32;
  const int64_t panels = panels_of(n), columns = panels * kGemvPanel;
  const int64_t quads = (k + 3) / 4, runs = (k + kGemvInt8ChunkK - 1) / kGemvInt8ChunkK;
  // k, n came from a tensor: no overflow
  const int64_t rows = format == GemvWeights::kInt8 ? 4 * quads : k;  // int8: rows in quads, zero-padded
  const int64_t weight_bytes = panels * kGemvPanel * rows * bytes_per_weight(format);
  const int64_t scale_offset = (weight_bytes + 63) / 64 * 64;
  const int64_t sums_offset = scale_offset + columns * static_cast<int64_t>(sizeof(float));
  const int64_t bytes = format == GemvWeights::kInt8
                            ? sums_offset + runs * columns * static_cast<int64_t>(sizeof(int32_t))
                            : weight_bytes;
  std::shared_ptr<PackedWeights> out(new PackedWeights());
  out->data_ = std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64));
  if (!out->data_)
    fail(Code::kResourceExhausted, "gemv: out of memory packing a [", k, ", ", n, "] weight (", bytes,
         " bytes)");
  out->k_ = k;
  out->n_ = n;
  out->bytes_ = bytes;
  out->format_ = format;
  out->finite_ = finite;
  if (format == GemvWeights::kInt8) {
    // Column j: s_j = max |w[., j]| / 127 and q = round(w / s_j) (nearest even; 0 for a zero column).
    char *raw = static_cast<char *>(out->data_);
    float *scales = reinterpret_cast<float *>(raw + scale_offset);
    int32_t *sums = reinterpret_cast<int32_t *>(raw + sums_offset);
    out->scales_ = scales;
    out->sums_ = sums;
    std::fill(scales, scales + columns, 0.0f);
    std::fill(sums, sums + runs * columns, 0);
    std::vector<double> inverse(static_cast<size_t>(n), 0.0);
    for (int64_t j = 0; j < n; ++j) {
      float a = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) a = std::max(a, std::fabs(w[kk * n + j]));
      if (a > 0.0f) {
        scales[j] = static_cast<float>(static_cast<double>(a) / 127.0);
        inverse[j] = 127.0 / static_cast<double>(a);
      }
    }
    auto *d = reinterpret_cast<int8_t *>(raw);
    std::fill(d, d + weight_bytes, int8_t{0});
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < n; ++j) {
        const auto v = static_cast<int8_t>(
            std::clamp(std::nearbyint(static_cast<double>(w[kk * n + j]) * inverse[j]), -127.0, 127.0));
        d[((j / kGemvPanel) * quads + kk / 4) * kGemvPanel * 4 + 4 * (j % kGemvPanel) + kk % 4] = v;
        sums[kk / kGemvInt8ChunkK * columns + j] += v;
      }
    return out;
  }
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t c0 = q * kGemvPanel, cols = std::min(kGemvPanel, n - c0);
    for (int64_t kk = 0; kk < k; ++kk) {
      const float *src = w + kk * n + c0;
      const int64_t dst = (q * k + kk) * kGemvPanel;
      if (format == GemvWeights::kFloat32) {
        float *d = static_cast<float *>(out->data_) + dst;
        std::memcpy(d, src, static_cast<size_t>(cols) * sizeof(float));
        std::fill(d + cols, d + kGemvPanel, 0.0f);
      } else {
        // Interleaved (gemv.cc's VectorColumn): column j of a group of 32 goes to the low half
        // of 32-bit word j (j < 16) or the high half of word j - 16.
        uint16_t *d = static_cast<uint16_t *>(out->data_) + dst;
        std::fill(d, d + kGemvPanel, uint16_t{0});
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t group = j / 32, c = j % 32;
          const bfloat16 v(src[j]);
          out->finite_ = out->finite_ && std::isfinite(static_cast<float>(v));  // may round to inf
          d[2 * (16 * group + c % 16) + c / 16] = v.bits;
        }
      }
    }
  }
  return out;
}

void gemv(int64_t m, const float *x, const float *w, int64_t k, int64_t n, const float *bias,
          GemvActivation act, float *y) {
  check_rows(m, k, n);
  GemvPlan plan;
  plan.m = m;
  plan.k = k;
  plan.n = n;
  plan.panels = panels_of(n);
  plan.x = x;
  plan.w = w;
  plan.panel_stride = kGemvPanel;
  plan.row_stride = n;
  plan.bias = bias;
  plan.relu = act == GemvActivation::kRelu;
  plan.y = y;
  // A partial last panel is copied, padded, so that no vector load reads past W's last row.
  std::vector<float> tail;
  const int64_t tail_cols = n % kGemvPanel;
  if (tail_cols != 0) {
    tail.assign(static_cast<size_t>(k * kGemvPanel), 0.0f);
    const int64_t c0 = n - tail_cols;
    for (int64_t kk = 0; kk < k; ++kk)
      std::memcpy(tail.data() + kk * kGemvPanel, w + kk * n + c0,
                  static_cast<size_t>(tail_cols) * sizeof(float));
    plan.tail = tail.data();
  }
  run_plan(plan);
}

namespace {

std::atomic<bool> g_int8_vnni{true};

// A row holding NaN or inf against int8 weights: float32 fmas in k order against the
// dequantized weights (q * s_j), + bias, the activation, so that NaN and inf propagate.
void int8_row_in_float(const GemvPlan &p, int64_t r, const float *scales) {
  const auto *w = static_cast<const int8_t *>(p.w);
  const int64_t quads = (p.k + 3) / 4;
  for (int64_t j = 0; j < p.n; ++j) {
    const int64_t q = j / kGemvPanel, c = j % kGemvPanel;
    float z = 0.0f;
    for (int64_t kk = 0; kk < p.k; ++kk) {
      const int8_t v = w[(q * quads + kk / 4) * kGemvPanel * 4 + 4 * c + kk % 4];
      z = std::fma(p.x[r * p.k + kk], static_cast<float>(v) * scales[j], z);
    }
    if (p.bias) z = z + p.bias[j];
    if (p.relu && z < 0.0f) z = 0.0f;
    p.y[r * p.n + j] = z;
  }
}

// gemv_int8's buffers: x quantized and, for the VNNI kernel, its bytes. A thread keeps them from
// call to call (three heap buffers a call were 3 % of W7's int8 batch-1 time) unless they would
// be large; gemv_int8 calls nothing that calls it again on the same thread.
struct Int8Buffers {
  std::vector<int16_t> xq;
  std::vector<uint8_t> low, high;
};
constexpr size_t kInt8KeptBufferValues = size_t{1} << 16;

// y for int8 weights (GemvWeights::kInt8): each row quantized (x * 32767 / max |x|, nearest
// even), the integer kernel on the finite rows, the float32 path on the others.
void gemv_int8(GemvPlan plan, const PackedWeights &w) {
  const int64_t m = plan.m, k = plan.k, quads = (k + 3) / 4, width = 4 * quads;
  const size_t values = static_cast<size_t>(m * width);
  thread_local Int8Buffers kept;
  Int8Buffers own;
  Int8Buffers &buffers = values <= kInt8KeptBufferValues ? kept : own;
  std::vector<int16_t> &xq = buffers.xq;
  xq.resize(values);
  float row_scale[kGemvMaxRows];
  bool finite[kGemvMaxRows];
  for (int64_t r = 0; r < m; ++r) {
    const float *x = plan.x + r * k;
    int16_t *q = xq.data() + r * width;
    const float a = HWY_DYNAMIC_DISPATCH(gemv_simd::RowAbsMax)(x, k);
    finite[r] = a >= 0.0f;
    row_scale[r] = 0.0f;
    std::fill(q + (finite[r] && a != 0.0f ? k : 0), q + width, int16_t{0});  // the padding, or all
    if (!finite[r] || a == 0.0f) continue;
    row_scale[r] = static_cast<float>(static_cast<double>(a) / 32767.0);
    const double inverse = 32767.0 / static_cast<double>(a);
    if (inverse <= std::numeric_limits<float>::max()) {
      HWY_DYNAMIC_DISPATCH(gemv_simd::QuantizeRow)(x, k, static_cast<float>(inverse), q);
    } else {  // a below about 1e-34: the scale's reciprocal overflows float32
      for (int64_t kk = 0; kk < k; ++kk)
        q[kk] = static_cast<int16_t>(
            std::clamp(std::nearbyint(static_cast<double>(x[kk]) * inverse), -32767.0, 32767.0));
    }
  }
  if (g_int8_vnni.load(std::memory_order_relaxed) && HWY_DYNAMIC_DISPATCH(gemv_simd::Int8UsesVnni)()) {
    buffers.low.resize(values);
    buffers.high.resize(values);
    // Plain pointers: a byte store may alias a vector's own pointers, which would keep the loop
    // from vectorizing.
    const int16_t *q = xq.data();
    uint8_t *low = buffers.low.data(), *high = buffers.high.data();
    for (size_t i = 0; i < values; ++i) {
      low[i] = static_cast<uint8_t>(q[i] & 0xFF);
      high[i] = static_cast<uint8_t>((q[i] >> 8) + 128);
    }
    plan.x_low = low;
    plan.x_high = high;
  }
  plan.xq = xq.data();
  plan.row_scale = row_scale;
  plan.column_scale = w.column_scales();
  plan.column_sums = w.column_sums();
  plan.panel_stride = quads * kGemvPanel * 4;
  plan.row_stride = kGemvPanel * 4;
  run_packed(plan, w);
  for (int64_t r = 0; r < m; ++r)
    if (!finite[r]) int8_row_in_float(plan, r, w.column_scales());
}

}  // namespace

void gemv(int64_t m, const float *x, const PackedWeights &w, const float *bias, GemvActivation act,
          float *y) {
  check_rows(m, w.k(), w.n());
  GemvPlan plan;
  plan.m = m;
  plan.k = w.k();
  plan.n = w.n();
  plan.panels = panels_of(w.n());
  plan.x = x;
  plan.w = w.data();
  plan.format = w.format();
  plan.panel_stride = w.k() * kGemvPanel;
  plan.row_stride = kGemvPanel;
  plan.bias = bias;
  plan.relu = act == GemvActivation::kRelu;
  plan.y = y;
  if (w.format() == GemvWeights::kInt8) return gemv_int8(plan, w);
  plan.skip_zero_rows = w.finite();
  plan.alternate = true;
  plan.backward = w.sweep_backward();
  run_packed(plan, w);
}

// ---- the memo ----

namespace {

constexpr size_t kMemoMaxEntries = 256;
constexpr int64_t kMemoMaxBytes = int64_t{256} << 20;

// Which weight: its storage, where in it, its shape and the packed format (the version is the
// entry's, checked on lookup).
struct MemoKey {
  uint64_t storage_id;
  int64_t offset, k, n;
  int format;
  bool operator<(const MemoKey &o) const {
    return std::tie(storage_id, offset, k, n, format) < std::tie(o.storage_id, o.offset, o.k, o.n, o.format);
  }
};

struct MemoEntry {
  uint64_t version = 0;
  uint64_t last_use = 0;
  std::shared_ptr<const PackedWeights> packed;
};

struct Memo {
  std::mutex mu;
  std::map<MemoKey, MemoEntry> entries;
  int64_t bytes = 0, hits = 0, misses = 0;
  uint64_t clock = 0;
};

Memo &memo() {
  static Memo *m = new Memo();  // never destroyed: storages may die during static destruction
  return *m;
}

// The storage release hook: drops what was packed from a dying storage. The packed buffers do
// not come from Storage, so freeing them here cannot re-enter a storage's destructor.
void drop_storage(uint64_t id) noexcept {
  Memo &m = memo();
  try {
    std::lock_guard<std::mutex> lock(m.mu);
    for (auto it = m.entries.lower_bound(MemoKey{id, INT64_MIN, 0, 0, 0});
         it != m.entries.end() && it->first.storage_id == id;) {
      m.bytes -= it->second.packed->bytes();
      it = m.entries.erase(it);
    }
  } catch (...) {  // std::system_error from the lock: the entry stays until evicted (never hit again)
  }
}

// Evicts least recently used entries until one more of `incoming` bytes fits. Under m.mu.
void make_room(Memo &m, int64_t incoming) {
  while (!m.entries.empty() &&
         (m.entries.size() + 1 > kMemoMaxEntries || m.bytes + incoming > kMemoMaxBytes)) {
    auto oldest = m.entries.begin();
    for (auto it = m.entries.begin(); it != m.entries.end(); ++it)
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    m.bytes -= oldest->second.packed->bytes();
    m.entries.erase(oldest);
  }
}

}  // namespace

std::shared_ptr<const PackedWeights> packed_weights(Storage &storage, const float *w, int64_t k, int64_t n,
                                                    GemvWeights format) {
  if (!storage.versioned()) return nullptr;
  static const bool installed = (add_storage_release_hook(&drop_storage), true);
  (void)installed;
  storage.mark_derived_cached();
  // The version before the values are read: a write racing the packing bumps it, so a stale
  // packing is never found under the new version.
  const uint64_t version = storage.version();
  const MemoKey key{
      storage.id(),
      static_cast<const char *>(static_cast<const void *>(w)) - static_cast<const char *>(storage.data()), k,
      n, static_cast<int>(format)};
  Memo &m = memo();
  {
    std::lock_guard<std::mutex> lock(m.mu);
    auto it = m.entries.find(key);
    if (it != m.entries.end() && it->second.version == version) {
      ++m.hits;
      it->second.last_use = ++m.clock;
      return it->second.packed;
    }
    ++m.misses;
  }
  std::shared_ptr<const PackedWeights> packed = PackedWeights::pack(w, k, n, format);  // outside the lock
  if (packed->bytes() > kMemoMaxBytes) return packed;  // used once, never kept
  std::lock_guard<std::mutex> lock(m.mu);
  auto it = m.entries.find(key);
  if (it != m.entries.end()) {
    if (it->second.version > version) return packed;  // a newer packing got there first
    m.bytes -= it->second.packed->bytes();
    m.entries.erase(it);
  }
  make_room(m, packed->bytes());
  m.entries[key] = MemoEntry{version, ++m.clock, packed};
  m.bytes += packed->bytes();
  return packed;
}

PackedWeightStats packed_weight_stats() {
  Memo &m = memo();
  std::lock_guard<std::mutex> lock(m.mu);
  PackedWeightStats s;
  s.hits = m.hits;
  s.misses = m.misses;
  s.entries = static_cast<int64_t>(m.entries.size());
  s.bytes = m.bytes;
  return s;
}

void set_gemv_int8_vnni(bool enabled) { g_int8_vnni.store(enabled, std::memory_order_relaxed); }

void packed_weight_clear() {
  Memo &m = memo();
  std::map<MemoKey, MemoEntry> taken;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    taken.swap(m.entries);
    m.bytes = m.hits = m.misses = 0;
  }
}

}  // namespace kiln::kernels
#endif  // HWY_ONCE
