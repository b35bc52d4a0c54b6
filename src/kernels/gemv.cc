// The gemv kernel (kernels/gemv.h): the per-target loops, compiled once per instruction set
// (Highway's foreach_target re-includes this file per target) and chosen at run time; then, once,
// the packing, the threading and the memo of packed weights.
#include "kernels/gemv.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/gemv_plan.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::gemv_simd {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

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
// x where x > 0, NaN where NaN, else +0).
HWY_INLINE float FinishScalar(float z, const float *bias, bool relu) {
  if (bias) z = z + *bias;
  if (relu && !(z > 0.0f) && !std::isnan(z)) z = 0.0f;
  return z;
}

// Float vectors [v0, v0 + VB) of the rows of G consecutive panels starting at `panel`, for M
// rows: the sums over all of K in registers, then bias and activation into y.
template <int M, size_t G, size_t VB, class WT>
HWY_INLINE void Block(const GemvPlan &p, int64_t panel, size_t v0) {
  const DF d;
  const WT *base[G];
  int64_t stride[G];
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
    for (size_t i = 0; i < G * VB; ++i) acc[r][i] = hn::Set(d, -0.0f);
  const float *x = p.x;
  const int64_t k = p.k;
  for (int64_t kk = 0; kk < k; ++kk) {
    VF xb[M];
    for (int r = 0; r < M; ++r) xb[r] = hn::Set(d, x[r * k + kk]);
    for (size_t g = 0; g < G; ++g) RowFma<M, VB>(d, base[g] + kk * stride[g], xb, acc, g * VB);
  }
  const VF zero = hn::Zero(d);
  for (size_t g = 0; g < G; ++g) {
    const int64_t col0 = (panel + static_cast<int64_t>(g)) * kGemvPanel;
    for (size_t v = 0; v < VB; ++v) {
      const int64_t col = col0 + static_cast<int64_t>(VectorColumn<WT>(v0 + v));
      const int64_t valid = p.n - col;
      if (valid <= 0) continue;
      for (int r = 0; r < M; ++r) {
        VF z = acc[r][g * VB + v];
        float *out = p.y + r * p.n + col;
        if (valid >= static_cast<int64_t>(kLanes)) {
          if (p.bias) z = hn::Add(z, hn::LoadU(d, p.bias + col));
          if (p.relu) z = hn::IfThenElse(hn::Gt(z, zero), z, hn::IfThenElseZero(hn::IsNaN(z), z));
          hn::StoreU(z, d, out);
        } else {
          HWY_ALIGN float lanes[kLanes];
          hn::Store(z, d, lanes);
          for (int64_t i = 0; i < valid; ++i)
            out[i] = FinishScalar(lanes[i], p.bias ? p.bias + col + i : nullptr, p.relu);
        }
      }
    }
  }
}

// Panels [p0, p1) for M rows: G panels at a time while they last, each in column blocks of VB
// vectors, so that M * G * VB accumulators fill the register budget.
template <int M, class WT>
void Panels(const GemvPlan &p, int64_t p0, int64_t p1) {
  constexpr size_t kBudget = kAccumulators / M > 0 ? kAccumulators / M : 1;
  // bfloat16 loads give vectors in pairs: at least 2.
  constexpr size_t kFit = PowerOfTwoAtMost(kBudget < kPanelVectors ? kBudget : kPanelVectors);
  constexpr size_t VB = std::is_same_v<WT, float> || kFit >= 2 ? kFit : 2;
  constexpr size_t G = VB == kPanelVectors && kBudget / kPanelVectors > 1 ? kBudget / kPanelVectors : 1;
  int64_t q = p0;
  for (; q + static_cast<int64_t>(G) <= p1; q += static_cast<int64_t>(G))
    for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) Block<M, G, VB, WT>(p, q, v0);
  for (; q < p1; ++q)
    for (size_t v0 = 0; v0 < kPanelVectors; v0 += VB) Block<M, 1, VB, WT>(p, q, v0);
}

static_assert(kGemvMaxRows <= 8, "PanelsOf has cases for 1 to 8 rows");

template <class WT>
void PanelsOf(const GemvPlan &p, int64_t p0, int64_t p1) {
  switch (p.m) {
    case 1:
      return Panels<1, WT>(p, p0, p1);
    case 2:
      return Panels<2, WT>(p, p0, p1);
    case 3:
      return Panels<3, WT>(p, p0, p1);
    case 4:
      return Panels<4, WT>(p, p0, p1);
    case 5:
      return Panels<5, WT>(p, p0, p1);
    case 6:
      return Panels<6, WT>(p, p0, p1);
    case 7:
      return Panels<7, WT>(p, p0, p1);
    default:
      return Panels<8, WT>(p, p0, p1);
  }
}

void GemvPanels(const GemvPlan &p, int64_t p0, int64_t p1) {
  if (p.bf16)
    PanelsOf<uint16_t>(p, p0, p1);
  else
    PanelsOf<float>(p, p0, p1);
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::gemv_simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/threads.h"

namespace kiln::kernels {

namespace gemv_simd {
HWY_EXPORT(GemvPanels);
}  // namespace gemv_simd

namespace {

// Multiply-adds (rows x K x padded columns) from which a product splits its panels among the
// team. Below it the calling thread does it all: on the 2-core Zen 5 this was written on, W7's
// batch-1 MLP (layers of 401k and 131k multiply-adds) took 29 us (bfloat16 weights: 16 us) on one
// thread, the same or slower split over two (25 us / 18 us at the quietest moment), and about
// 800 us whenever another process kept the second core busy: each OpenMP region then waits out a
// time slice for its partner thread.
constexpr int64_t kGemvParallelWork = int64_t{1} << 20;

void run_plan(const GemvPlan &plan) {
  const int64_t work = plan.m * plan.k * plan.panels * kGemvPanel;
  const int threads =
      work >= kGemvParallelWork ? static_cast<int>(std::min<int64_t>(num_threads(), plan.panels)) : 1;
  if (threads <= 1) {
    HWY_DYNAMIC_DISPATCH(gemv_simd::GemvPanels)(plan, 0, plan.panels);
    return;
  }
  apply_num_threads();
  // Thread t always takes the same panels (for one thread count), so its share of a packed W
  // stays in its core's cache from one call to the next.
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), team = omp_get_num_threads();
    const int64_t p0 = plan.panels * t / team, p1 = plan.panels * (t + 1) / team;
    if (p0 < p1) HWY_DYNAMIC_DISPATCH(gemv_simd::GemvPanels)(plan, p0, p1);
  }
}

int64_t panels_of(int64_t n) { return (n + kGemvPanel - 1) / kGemvPanel; }

void check_rows(int64_t m, int64_t k, int64_t n) {
  if (m < 1 || m > kGemvMaxRows || k < 1 || n < 1)
    fail(Code::kInternal, "gemv kernel: [", m, ", ", k, "] x [", k, ", ", n, "]; expected 1 to ",
         kGemvMaxRows, " rows and K, N > 0");
}

}  // namespace

PackedWeights::~PackedWeights() { std::free(data_); }

std::shared_ptr<const PackedWeights> PackedWeights::pack(const float *w, int64_t k, int64_t n,
                                                         GemvWeights format) {
  check_rows(1, k, n);
  const int64_t panels = panels_of(n);
  const int64_t elem = format == GemvWeights::kBFloat16 ? 2 : 4;
  const int64_t bytes = panels * k * kGemvPanel * elem;  // k, n came from a tensor: no overflow
  std::shared_ptr<PackedWeights> out(new PackedWeights());
  out->data_ = std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64));
  if (!out->data_)
    fail(Code::kResourceExhausted, "gemv: out of memory packing a [", k, ", ", n, "] weight (", bytes,
         " bytes)");
  out->k_ = k;
  out->n_ = n;
  out->bytes_ = bytes;
  out->format_ = format;
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
          d[2 * (16 * group + c % 16) + c / 16] = bfloat16(src[j]).bits;
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
  plan.bf16 = w.format() == GemvWeights::kBFloat16;
  plan.panel_stride = w.k() * kGemvPanel;
  plan.row_stride = kGemvPanel;
  plan.bias = bias;
  plan.relu = act == GemvActivation::kRelu;
  plan.y = y;
  run_plan(plan);
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
