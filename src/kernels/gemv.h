// Products of a few rows by a weight matrix, y = act(x · W + bias) for x [m, K] with m <=
// kGemvMaxRows: kiln's own loops (Highway, the instruction set chosen at run time), for the
// latency of inference at batch 1. oneDNN's GEMM is bound there by rereading W from memory on
// every call; here W may be packed once (memoised by its storage's id and version) into panels of
// columns that each thread of the team (kernels/spin_team.h) always computes, so a thread's panels
// stay in its core's L2 cache from call to call.
//
// The result is a function of the values alone: every output element is the sum of its K
// products, accumulated with fused multiply-adds in k order from +0 (as oneDNN's and TF's
// matmuls start, so a sum of -0 products is +0 at every size), then + bias[j], then the
// activation. Neither the
// thread count, the number of rows, the packing nor the instruction set changes a bit (targets
// without a native FMA compute each lane's fma exactly, as std::fma). NaN and inf propagate as
// in that plain sum.
//
// With packed finite weights, the rows of W where x is zero in every row may be left out (a ReLU
// layer's output is often half zeros): each of their products is then a zero, and adding a zero
// to a sum that starts from +0 changes no bit (a nonzero sum stays, a zero sum stays +0). So the
// bits are still those of the whole sum.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace kiln {
class Storage;
}

namespace kiln::kernels {

// At most this many rows of x go through the gemv kernel: measured on a Zen 5 core for a
// [m, 784] x [784, 512] Dense, one thread, it takes 24-36 us at 5 to 8 rows where oneDNN 2.6 takes
// 65-88 us, and 19 us at 4 rows.
constexpr int64_t kGemvMaxRows = 8;
// Columns per panel of packed weights (a multiple of every target's vector length).
constexpr int64_t kGemvPanel = 64;
// Packed products below this many multiply-adds (rows x K x padded columns) never split: a
// microsecond or two of work, too little to time reliably against a hand-off between cores.
constexpr int64_t kGemvMinSplitWork = int64_t{1} << 16;

enum class GemvWeights {
  kFloat32,
  kBFloat16,  // W rounded to bfloat16 (nearest even) once when packed; x and the sums stay float32
  // Dynamic-range int8 (TFLite's "hybrid" quantization): each column j of W is stored as
  // round(W[k][j] / s_j) in [-127, 127], s_j = max_k |W[k][j]| / 127, once when packed; each
  // call quantizes each row r of x to round(x[r][k] / t_r) in [-32767, 32767], t_r = max_k
  // |x[r][k]| / 32767 (round to nearest even, in float32). The integer products are summed exactly
  // in int32 over runs of kGemvInt8ChunkK values of k, each run's sum converted to float32 and
  // added in k order; then y = sum * s_j * t_r + bias[j], then the activation. A result is a
  // function of its row and W alone (not of the other rows, the thread count or the instruction
  // set); its error is within sum_k (|x_k| s_j + t_r |W[k][j]|) / 2 plus float32 rounding. A row
  // holding NaN or inf is computed in float32 against the dequantized W (q * s_j), so that they
  // propagate; a W holding NaN or inf is packed in float32 instead (format() says which).
  kInt8,
};

// int8 weights: values of k whose integer products one int32 sum takes (|sum| <= 512 * 32767 *
// 127 < 2^31).
constexpr int64_t kGemvInt8ChunkK = 512;

// The activation the kernel applies itself; others run after it as their own kernel.
enum class GemvActivation { kNone, kRelu };

// W [K, N] in panels of kGemvPanel columns: panel p holds columns [p * kGemvPanel, ...) as
// [K][kGemvPanel], row-major, the last panel padded with zero columns (bfloat16 rows with their
// columns interleaved in pairs 16 apart, so that a vector load widens with no shuffle; int8 rows in
// quads, [ceil(K / 4)][kGemvPanel][4], rows 4q .. 4q + 3 of a column adjacent, followed by the
// column scales, float32 [panels * kGemvPanel], and each column's sums over runs of
// kGemvInt8ChunkK rows, int32 [runs][panels * kGemvPanel]). Immutable.
class PackedWeights {
 public:
  // Packs row-major float32 w [k, n] (k, n > 0); bfloat16 rounds each weight to nearest even,
  // int8 quantizes each column (GemvWeights::kInt8; float32 when w holds NaN or inf).
  static std::shared_ptr<const PackedWeights> pack(const float *w, int64_t k, int64_t n, GemvWeights format);
  ~PackedWeights();
  PackedWeights(const PackedWeights &) = delete;
  PackedWeights &operator=(const PackedWeights &) = delete;

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  GemvWeights format() const { return format_; }
  int64_t bytes() const { return bytes_; }
  const void *data() const { return data_; }
  // Whether every packed weight is finite (bfloat16: after rounding, which may overflow to inf).
  bool finite() const { return finite_; }
  // int8: s_j of column j (GemvWeights::kInt8), zero past n; null otherwise.
  const float *column_scales() const { return scales_; }
  // int8: the quantized weights of each column summed over each run of kGemvInt8ChunkK rows,
  // [runs][panels * kGemvPanel]; null otherwise.
  const int32_t *column_sums() const { return sums_; }

  // Whether a product of these weights with m rows splits its panels among the threads: timed
  // both ways in rounds (gemv.cc's run_packed), each round keeping the faster. Either way gives
  // the same bits; only the speed differs, and which is faster depends on the CPU (its caches,
  // its vector units, what a hand-off between cores costs).
  struct SplitTuning {
    std::atomic<int64_t> calls{0};
    std::atomic<int> timed[2] = {0, 0};                        // this round's timed calls: unsplit, split
    std::atomic<int64_t> best_ns[2] = {INT64_MAX, INT64_MAX};  // the fastest of each
    std::atomic<int> choice{-1};  // -1 until the first round has chosen; then 0 or 1
  };
  // 1 <= m <= kGemvMaxRows.
  SplitTuning &split_tuning(int64_t m) const { return tuning_[m - 1]; }

  // Whether this call sweeps each thread's panels last to first: float32 and bfloat16 calls
  // alternate. A thread's share of a weight a little larger than its core's L2 cache (W7's
  // float32 MLP: 1.1 MB a core against 1 MB) read in the same order every call misses on every
  // line, each evicted just before its next use; read back and forth, only the part that does not
  // fit misses (W7's float32 batch 1 on the Zen 5 VM: 15.9 -> 15.2 us median, six alternating
  // A/B pairs). Each output is the same sum of its K products in k order either way.
  bool sweep_backward() const { return (sweeps_.fetch_add(1, std::memory_order_relaxed) & 1) != 0; }

 private:
  PackedWeights() = default;
  int64_t k_ = 0, n_ = 0, bytes_ = 0;
  GemvWeights format_ = GemvWeights::kFloat32;
  bool finite_ = false;
  void *data_ = nullptr;
  const float *scales_ = nullptr;  // inside data_
  const int32_t *sums_ = nullptr;  // inside data_
  mutable SplitTuning tuning_[kGemvMaxRows];
  mutable std::atomic<uint64_t> sweeps_{0};
};

// y [m, n] = act(x [m, k] · w + bias), w row-major float32 [k, n] read in place. 1 <= m <=
// kGemvMaxRows, k > 0, n > 0; bias [n] or null. When the product is large enough (gemv.cc's
// kGemvParallelWork multiply-adds or kGemvParallelBytes of weights) its panels split among
// num_threads() threads: the calling thread and kernels/spin_team.h's helpers, each always the same
// whole panels; else it runs on the calling thread.
void gemv(int64_t m, const float *x, const float *w, int64_t k, int64_t n, const float *bias,
          GemvActivation act, float *y);
// The same with packed weights (w.k() and w.n() give k and n). A product of at least
// kGemvMinSplitWork multiply-adds over two or more panels splits or not as its calls measured
// faster (PackedWeights::SplitTuning); a smaller one runs on the calling thread.
void gemv(int64_t m, const float *x, const PackedWeights &w, const float *bias, GemvActivation act, float *y);

// The memo of packed weights: w (float32 [k, n], inside storage) packed in `format`, packed on a
// miss and kept until the storage's version changes (an assign), the storage dies, or the memo
// evicts it (least recently used beyond 256 entries or 256 MiB). Null for an unversioned
// (adopted) storage, whose owner may change the values behind kiln's back. Thread-safe.
std::shared_ptr<const PackedWeights> packed_weights(Storage &storage, const float *w, int64_t k, int64_t n,
                                                    GemvWeights format);

struct PackedWeightStats {
  int64_t hits = 0, misses = 0;  // lookups since the process started (or the last clear)
  int64_t entries = 0, bytes = 0;
};
PackedWeightStats packed_weight_stats();
// Drops every entry and zeroes the counts (tests).
void packed_weight_clear();

// Tests: false makes int8 weights take the madd path even where the CPU has AVX-512 VNNI (the
// same bits either way). Not thread-safe with concurrent gemv calls.
void set_gemv_int8_vnni(bool enabled);

}  // namespace kiln::kernels
