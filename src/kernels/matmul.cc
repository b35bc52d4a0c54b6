#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/storage.h"
#include "core/threads.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/engine.h"
#include "kernels/gemv.h"
#include "kernels/split_run.h"

namespace kiln::kernels {

namespace {

using dims_t = dnnl::memory::dims;

// Products (m * n * k) of the plain loops at or above which output rows split among OpenMP threads.
constexpr int64_t kMatmulLoopsParallelWork = 32768;

// A [batch..., rows, cols] view of a row-major tensor, left-padded with 1s to rank r: dims and
// strides. A transpose swaps the last two dims and their strides, so oneDNN reads the transposed
// matrix in place; dims of 1 are how oneDNN broadcasts batches.
struct View {
  dims_t dims, strides;
};

View view(const Shape &s, int r, bool transpose) {
  View v{dims_t(static_cast<size_t>(r), 1), dims_t(static_cast<size_t>(r))};
  const int lead = r - s.rank();
  const auto st = s.strides();
  const int64_t total = s.num_elements();
  for (int i = 0; i < r; ++i) {
    auto k = static_cast<size_t>(i);
    if (i < lead) {
      v.strides[k] = total;
    } else {
      v.dims[k] = s[i - lead];
      v.strides[k] = st[static_cast<size_t>(i - lead)];
    }
  }
  if (transpose) {
    std::swap(v.dims[static_cast<size_t>(r - 1)], v.dims[static_cast<size_t>(r - 2)]);
    std::swap(v.strides[static_cast<size_t>(r - 1)], v.strides[static_cast<size_t>(r - 2)]);
  }
  return v;
}

// The primitive's operands: when b has no batch (all its batch dims are 1) and a is not
// transposed, a's batch folds into its rows so that one plain GEMM runs.
struct Problem {
  Shape a, b, out;
  int rank;
};

Problem fold(const Shape &a, const Shape &b, bool transpose_a, const Shape &out) {
  bool b_unbatched = true;
  for (int i = 0; i + 2 < b.rank(); ++i) b_unbatched = b_unbatched && b[i] == 1;
  if (!transpose_a && b_unbatched && a.rank() > 2) {
    const int64_t k = a[a.rank() - 1], rows = a.num_elements() / (k == 0 ? 1 : k);
    const int64_t n = out[out.rank() - 1];
    return {Shape{rows, k}, Shape{b[b.rank() - 2], b[b.rank() - 1]}, Shape{rows, n}, 2};
  }
  return {a, b, out, out.rank()};
}

// ---- pieces: results independent of the thread count ----
//
// oneDNN's GEMM splits its work by its thread count, and when the output is small beside K it
// splits K too, which changes the summation order (and the bits) with the thread count. So a
// matmul runs as pieces whose geometry is a function of the shapes alone (kernels/split_run.h):
// ranges of the outermost batch dim, of the output rows and of K; each piece runs a one-thread
// primitive; K pieces write separate partial outputs, added in K order.

// Below this many multiply-adds a matmul is one piece, run on the calling thread.
constexpr int64_t kMatmulOnePieceWork = int64_t{1} << 20;
constexpr int64_t kMatmulMaxPieces = 8;
constexpr int64_t kMatmulMinPieceRows = 128;
constexpr int64_t kMatmulMinPieceK = 512;
constexpr int64_t kMatmulMinPieceCols = 128;
constexpr int64_t kMatmulMaxPartialBytes = int64_t{64} << 20;

// A range split of a dim: `count` ranges of `size`, the last of `last`.
struct Split {
  int64_t count = 1, size = 0, last = 0;
  int64_t size_of(int64_t i) const { return i + 1 == count ? last : size; }
};

Split split(int64_t extent, int64_t pieces) {
  Split s;
  pieces = std::max<int64_t>(1, std::min(pieces, extent));
  s.size = (extent + pieces - 1) / pieces;
  s.count = (extent + s.size - 1) / s.size;
  s.last = extent - s.size * (s.count - 1);
  return s;
}

struct Geometry {
  Split batch, rows, k, cols;
  // One call of oneDNN's own threaded GEMM instead of pieces (see geometry()).
  bool threaded_whole = false;
  int64_t count() const { return batch.count * rows.count * k.count * cols.count; }
};

Geometry geometry(const Problem &p, bool ta, DType dtype) {
  const int r = p.rank;
  const int64_t m = p.out[r - 2];
  const int64_t k = ta ? p.a[p.a.rank() - 2] : p.a[p.a.rank() - 1];
  const int64_t batch0 = r > 2 ? p.out[0] : 1;
  const int64_t work = p.out.num_elements() * k;
  const int64_t n = p.out[r - 1];
  Geometry g{split(batch0, 1), split(m, 1), split(k, 1), split(n, 1)};
  if (work < kMatmulOnePieceWork) return g;
  g.batch = split(batch0, kMatmulMaxPieces);
  const int64_t left = kMatmulMaxPieces / g.batch.count;
  g.rows = split(m, std::min(left, m / kMatmulMinPieceRows));
  const int64_t k_pieces =
      std::min({left / g.rows.count, k / kMatmulMinPieceK,
                kMatmulMaxPartialBytes /
                    std::max<int64_t>(1, p.out.num_elements() * static_cast<int64_t>(dtype_size(dtype))),
                int64_t{4}});
  // Partial outputs are float32 only (other dtypes would round each partial).
  if (dtype == DType::kFloat32 && g.batch.count * g.rows.count < 4) g.k = split(k, k_pieces);
  // Few rows (a Dense layer's batch of 128 beside a 784x512 kernel): ranges of output columns,
  // each a whole sum over K, so the team is not left with one piece on one thread.
  g.cols = split(n, std::min(kMatmulMaxPieces / (g.batch.count * g.rows.count * g.k.count),
                             n / kMatmulMinPieceCols));
  // When K is no longer than the output's sides, oneDNN splits only output rows and columns
  // among its threads (each output element's sum runs on one thread, in one order), so its own
  // threaded GEMM gives the same bits at every thread count and runs at full speed (the pieces
  // cost 15-35 % on square products). Tall K, where oneDNN splits K too, goes through pieces.
  if (dtype != DType::kFloat64 && g.count() > 1 && g.k.count == 1 && k <= std::max(m, n)) {
    g.batch = split(batch0, 1);
    g.rows = split(m, 1);
    g.cols = split(n, 1);
    g.threaded_whole = true;
  }
  return g;
}

// The descriptor of one piece of an operand: v with the ranges' dims resized (dim -1: none; a batch
// dim of 1 broadcasts and stays 1); `offset` gets the element offset of the piece's start.
struct Range {
  int dim;
  int64_t start, size;
};

dnnl::memory::desc piece_md(View v, DType dtype, int row_dim, std::initializer_list<Range> ranges,
                            int64_t &offset) {
  offset = 0;
  for (const Range &rg : ranges) {
    if (rg.dim < 0) continue;  // no batch dim
    const auto d = static_cast<size_t>(rg.dim);
    if (rg.dim == 0 && row_dim > 0 && v.dims[d] == 1) continue;  // a broadcast batch
    v.dims[d] = rg.size;
    offset += rg.start * v.strides[d];
  }
  return dnnl::memory::desc(v.dims, to_dnnl(dtype), v.strides);
}

const void *advance(const void *p, int64_t elements, DType dtype) {
  return static_cast<const char *>(p) + elements * static_cast<int64_t>(dtype_size(dtype));
}

PrimitiveKey matmul_key(const Problem &p, bool ta, bool tb, DType dtype, int64_t batch, int64_t rows,
                        int64_t k) {
  PrimitiveKey key(PrimitiveKind::kMatmul);
  key.add(dtype)
      .add(static_cast<int64_t>(ta) * 2 + static_cast<int64_t>(tb))
      .add(static_cast<int64_t>(p.rank));
  key.add(p.a).add(p.b).add(batch).add(rows).add(k);
  return key;
}

dnnl::primitive make_matmul(const dnnl::memory::desc &a, const dnnl::memory::desc &b,
                            const dnnl::memory::desc &out, const dnnl::memory::desc *bias = nullptr) {
  const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(a, b, *bias, out) : dnnl::matmul::desc(a, b, out);
  return dnnl::matmul(dnnl::matmul::primitive_desc(d, user_scratchpad_attr(), engine()));
}

// out += bias over out's last dim, in place: the binary add kernel, so the bits of an add op.
void add_bias(DType dtype, const void *bias, void *out, const Shape &out_shape) {
  binary(BinaryOp::kAdd, dtype, out, out_shape, bias, Shape{out_shape[out_shape.rank() - 1]}, out, out_shape);
}

// out = op(a) · op(b) (+ bias [N] over the last dim, when not null).
void run(const Problem &p, bool ta, bool tb, DType dtype, const void *a, const void *b, void *out,
         const void *bias = nullptr) {
  const int r = p.rank;
  const Geometry g = geometry(p, ta, dtype);
  const int64_t count = g.count();
  if (count == 1) {  // no piece descriptors unless the primitive is new
    std::optional<SingleThreadScope> one;
    if (!g.threaded_whole) one.emplace();
    const int64_t batch = r > 2 ? p.out[0] : 1;
    PrimitiveKey key = matmul_key(p, ta, tb, dtype, batch, g.rows.size, g.k.size);
    if (bias) key.add(int64_t{1});  // a key one value longer: the primitive with a bias argument
    auto make = [&] {
      auto md = [&](const View &v) { return dnnl::memory::desc(v.dims, to_dnnl(dtype), v.strides); };
      // The bias as [1, ..., 1, N]: one value per output column, broadcast over the rest.
      dims_t bias_dims(static_cast<size_t>(r), 1), bias_strides(static_cast<size_t>(r), p.out[r - 1]);
      bias_dims.back() = p.out[r - 1];
      bias_strides.back() = 1;
      const dnnl::memory::desc bias_md(bias_dims, to_dnnl(dtype), bias_strides);
      return make_matmul(md(view(p.a, r, ta)), md(view(p.b, r, tb)), md(view(p.out, r, false)),
                         bias ? &bias_md : nullptr);
    };
    if (bias)
      run_cached(key, make,
                 {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, out}});
    else
      run_cached(key, make, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, out}});
    return;
  }
  const View va = view(p.a, r, ta), vb = view(p.b, r, tb), vo = view(p.out, r, false);
  const int row = r - 2;
  struct Piece {
    dnnl::primitive prim;
    const void *a, *b;
    void *out;
  };
  std::vector<Piece> pieces;
  pieces.reserve(static_cast<size_t>(count));
  // Partial outputs for K pieces after the first, laid out as out.
  const int64_t out_bytes = p.out.num_elements() * static_cast<int64_t>(dtype_size(dtype));
  std::vector<std::shared_ptr<Storage>> partials(static_cast<size_t>(g.k.count));
  for (int64_t kp = 1; kp < g.k.count; ++kp)
    partials[static_cast<size_t>(kp)] = Storage::allocate(static_cast<size_t>(out_bytes));
  {
    SingleThreadScope one;
    for (int64_t bi = 0; bi < g.batch.count; ++bi)
      for (int64_t ri = 0; ri < g.rows.count; ++ri)
        for (int64_t ci = 0; ci < g.cols.count; ++ci)
          for (int64_t ki = 0; ki < g.k.count; ++ki) {
            const Range batch{r > 2 ? 0 : -1, bi * g.batch.size, g.batch.size_of(bi)};
            const Range rows{row, ri * g.rows.size, g.rows.size_of(ri)};
            const Range cols{r - 1, ci * g.cols.size, g.cols.size_of(ci)};
            const Range ka{r - 1, ki * g.k.size, g.k.size_of(ki)}, kb{r - 2, ki * g.k.size, g.k.size_of(ki)};
            int64_t off_a = 0, off_b = 0, off_o = 0;
            const dnnl::memory::desc ma = piece_md(va, dtype, row, {batch, rows, ka}, off_a);
            const dnnl::memory::desc mb = piece_md(vb, dtype, row, {batch, kb, cols}, off_b);
            const dnnl::memory::desc mo = piece_md(vo, dtype, row, {batch, rows, cols}, off_o);
            PrimitiveKey key = matmul_key(p, ta, tb, dtype, batch.size, rows.size, ka.size);
            key.add(int64_t{2}).add(cols.size);  // longer than the whole product's keys
            dnnl::primitive prim = cached_primitive(key, [&] { return make_matmul(ma, mb, mo); });
            void *dst = ki == 0 ? out : partials[static_cast<size_t>(ki)]->data();
            pieces.push_back({std::move(prim), advance(a, off_a, dtype), advance(b, off_b, dtype),
                              const_cast<void *>(advance(dst, off_o, dtype))});
          }
  }
  std::vector<PreparedRun> runs;
  runs.reserve(pieces.size());
  for (const Piece &q : pieces)
    runs.emplace_back(q.prim, std::initializer_list<Arg>{
                                  {DNNL_ARG_SRC, q.a}, {DNNL_ARG_WEIGHTS, q.b}, {DNNL_ARG_DST, q.out}});
  run_all(runs, "matmul");
  if (g.k.count > 1) {
    std::vector<const float *> parts(static_cast<size_t>(g.k.count));
    parts[0] = static_cast<const float *>(out);
    for (size_t i = 1; i < parts.size(); ++i) parts[i] = static_cast<const float *>(partials[i]->data());
    sum_in_order(parts, p.out.num_elements(), static_cast<float *>(out));
  }
  // After the pieces are combined: the bias meets the finished sum, as in the whole product.
  if (bias) add_bias(dtype, bias, out, p.out);
}

// bfloat16 state: 0 not yet known, 1 native, 2 unimplemented (oneDNN 2.6 implements bf16
// matmul only on CPUs with AVX-512; on AVX2 machines such as the AMD EPYC this was
// written on, primitive creation fails with unimplemented and the f32 fallback runs).
std::atomic<int> g_bf16_state{0};
std::atomic<bool> g_bf16_force_fallback{false};

// Runs the native bfloat16 primitive; false (and remembered) when oneDNN has none.
bool run_native_bf16(const Problem &p, bool ta, bool tb, const void *a, const void *b, void *out) {
  if (g_bf16_state.load() == 2) return false;
  try {
    run(p, ta, tb, DType::kBFloat16, a, b, out);
  } catch (const Error &e) {
    if (e.code() != Code::kUnimplemented) throw;
    g_bf16_state.store(2);
    return false;
  }
  g_bf16_state.store(1);
  return true;
}

// ---- float64: kiln's loop ----

// Output columns per block: a block of the output row and of b's rows stays in L1/L2.
constexpr int64_t kColBlock = 256;

// The offset of every output batch's matrix in a (or b), by NumPy broadcasting of the batch dims.
std::vector<int64_t> batch_offsets(const Shape &s, const Shape &out, int64_t matrix) {
  const int r = out.rank(), lead = r - s.rank();
  const int64_t batches = out.num_elements() / (out[r - 2] * out[r - 1]);
  std::vector<int64_t> offsets(static_cast<size_t>(batches));
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t rest = bi, off = 0, stride = matrix;
    for (int i = r - 3; i >= 0; --i) {
      const int64_t idx = rest % out[i];
      rest /= out[i];
      const int si = i - lead;
      if (si >= 0) {
        if (s[si] != 1) off += idx * stride;
        stride *= s[si];
      }
    }
    offsets[static_cast<size_t>(bi)] = off;
  }
  return offsets;
}

// out = op(a) · op(b) by plain loops, for the dtypes oneDNN 2.6 has no CPU matmul for: double,
// and int32 / int64 (as TF's integer MatMul, wrapping on overflow: the products and sums run in
// the unsigned type of the same width). Each output element sums its K products in k order,
// one product at a time, whatever the blocking and the thread count; threads split output rows.
template <typename T>
void matmul_loops(bool ta, bool tb, const T *a, const Shape &as, const T *b, const Shape &bs, T *out,
                  const Shape &os) {
  using Acc = typename Wrapping<T>::type;
  const int r = os.rank();
  const int64_t m = os[r - 2], n = os[r - 1];
  const int64_t k = ta ? as[as.rank() - 2] : as[as.rank() - 1];
  const std::vector<int64_t> a_off = batch_offsets(as, os, m * k), b_off = batch_offsets(bs, os, k * n);
  const int64_t batches = static_cast<int64_t>(a_off.size());
  // A transposed b is copied to [K, N] first (before the parallel region), so rows stream.
  std::vector<T> bt;
  if (tb) {
    const int64_t bmats = bs.num_elements() / (k * n);
    bt.resize(static_cast<size_t>(bs.num_elements()));
    for (int64_t q = 0; q < bmats; ++q)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t p = 0; p < k; ++p)
          bt[static_cast<size_t>(q * k * n + p * n + j)] = b[q * k * n + j * k + p];
    b = bt.data();
  }
  const int64_t rows = batches * m;
  const bool parallel = rows > 1 && rows * n * k >= kMatmulLoopsParallelWork;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t bi = row / m, i = row % m;
    const T *am = a + a_off[static_cast<size_t>(bi)];
    const T *bm = b + b_off[static_cast<size_t>(bi)];
    Acc *o = reinterpret_cast<Acc *>(out + row * n);
    for (int64_t j0 = 0; j0 < n; j0 += kColBlock) {
      const int64_t j1 = std::min(n, j0 + kColBlock);
      for (int64_t j = j0; j < j1; ++j) o[j] = Acc(0);
      for (int64_t p = 0; p < k; ++p) {
        const Acc av = static_cast<Acc>(ta ? am[p * m + i] : am[i * k + p]);
        const T *brow = bm + p * n;
        for (int64_t j = j0; j < j1; ++j) o[j] += av * static_cast<Acc>(brow[j]);
      }
    }
  }
}

}  // namespace

void matmul(bool transpose_a, bool transpose_b, DType dtype, const void *a, const Shape &a_shape,
            const void *b, const Shape &b_shape, void *out, const Shape &out_shape) {
  const int64_t count = out_shape.num_elements();
  if (count == 0) return;
  const int64_t k = transpose_a ? a_shape[a_shape.rank() - 2] : a_shape[a_shape.rank() - 1];
  if (k == 0) {
    std::memset(out, 0, static_cast<size_t>(count) * dtype_size(dtype));
    return;
  }
  if (dtype == DType::kFloat64 || dtype == DType::kInt32 || dtype == DType::kInt64) {
    dispatch_among<double, int32_t, int64_t>(dtype, "matmul", [&](auto t) {
      using T = decltype(t);
      matmul_loops(transpose_a, transpose_b, static_cast<const T *>(a), a_shape, static_cast<const T *>(b),
                   b_shape, static_cast<T *>(out), out_shape);
    });
    return;
  }
  const Problem p = fold(a_shape, b_shape, transpose_a, out_shape);
  if (dtype == DType::kFloat32 && !transpose_a && !transpose_b && p.rank == 2 && p.out[0] <= kGemvMaxRows)
    return gemv(p.out[0], static_cast<const float *>(a), static_cast<const float *>(b), k, p.out[1], nullptr,
                GemvActivation::kNone, static_cast<float *>(out));
  if (dtype != DType::kBFloat16) return run(p, transpose_a, transpose_b, dtype, a, b, out);
  if (!g_bf16_force_fallback.load() && run_native_bf16(p, transpose_a, transpose_b, a, b, out)) return;
  const int64_t na = a_shape.num_elements(), nb = b_shape.num_elements();
  std::vector<float> buf(static_cast<size_t>(na + nb + count));
  float *a32 = buf.data(), *b32 = a32 + na, *out32 = b32 + nb;
  cast(DType::kBFloat16, a, DType::kFloat32, a32, na);
  cast(DType::kBFloat16, b, DType::kFloat32, b32, nb);
  run(p, transpose_a, transpose_b, DType::kFloat32, a32, b32, out32);
  cast(DType::kFloat32, out32, DType::kBFloat16, out, count);
}

void dense(std::optional<UnaryOp> act, float alpha, DType dtype, const void *x, const Shape &x_shape,
           const void *w, const Shape &w_shape, const void *bias, void *pre, void *y,
           const DenseWeightSource &source) {
  const int64_t k = x_shape[x_shape.rank() - 1], n = w_shape[1];
  int64_t rows = 1;  // x's leading dims (not elements / k: K may be 0)
  for (int i = 0; i + 1 < x_shape.rank(); ++i) rows *= x_shape[i];
  const int64_t count = rows * n;
  if (count == 0) return;
  if (pre == y) pre = nullptr;
  if (dtype == DType::kFloat32 && k > 0 && rows <= kGemvMaxRows) {
    // matmul's gemv (packed or in place: the same bits) with the bias and a plain relu fused.
    const GemvActivation fused =
        !pre && act == UnaryOp::kRelu && alpha == 0.0f ? GemvActivation::kRelu : GemvActivation::kNone;
    float *z = static_cast<float *>(pre ? pre : y);
    const auto *xf = static_cast<const float *>(x), *wf = static_cast<const float *>(w);
    std::shared_ptr<const PackedWeights> packed;
    // Packed float32 beat reading W in place (26-32 vs 33-49 us for W7's first layer, one thread).
    if (source.storage) packed = packed_weights(*source.storage, wf, k, n, source.weights);
    if (packed)
      gemv(rows, xf, *packed, static_cast<const float *>(bias), fused, z);
    else
      gemv(rows, xf, wf, k, n, static_cast<const float *>(bias), fused, z);
    if (act && fused == GemvActivation::kNone) unary(*act, DType::kFloat32, z, y, count, alpha);
    return;
  }
  const Problem p{Shape{rows, k}, Shape{k, n}, Shape{rows, n}, 2};
  // z = x · w + bias into the float32 buffer z (the activation then runs from z into y).
  auto product = [&](const void *xf, const void *wf, const void *bf, void *z) {
    if (k == 0) {
      std::memset(z, 0, static_cast<size_t>(count) * sizeof(float));
      if (bf) add_bias(DType::kFloat32, bf, z, p.out);
    } else {
      run(p, false, false, DType::kFloat32, xf, wf, z, bf);
    }
  };
  if (dtype == DType::kFloat32) {
    void *z = pre ? pre : y;
    product(x, w, bias, z);
    if (act) unary(*act, DType::kFloat32, z, y, count, alpha);
    return;
  }
  if (dtype != DType::kBFloat16)
    fail(Code::kInternal, "dense kernel: no ", dtype_name(dtype), " kernel (float32 or bfloat16)");
  // bfloat16: widen, run the float32 path, round once (after the activation).
  const int64_t nx = rows * k, nw = k * n, nb = bias ? n : 0;
  std::vector<float> buf(static_cast<size_t>(nx + nw + nb + count));
  float *x32 = buf.data(), *w32 = x32 + nx, *b32 = w32 + nw, *z32 = b32 + nb;
  cast(DType::kBFloat16, x, DType::kFloat32, x32, nx);
  cast(DType::kBFloat16, w, DType::kFloat32, w32, nw);
  if (bias) cast(DType::kBFloat16, bias, DType::kFloat32, b32, nb);
  product(x32, w32, bias ? b32 : nullptr, z32);
  if (pre) cast(DType::kFloat32, z32, DType::kBFloat16, pre, count);
  if (act) unary(*act, DType::kFloat32, z32, z32, count, alpha);
  cast(DType::kFloat32, z32, DType::kBFloat16, y, count);
}

bool matmul_bf16_native() {
  if (g_bf16_state.load() == 0) {
    const bfloat16 x[4] = {bfloat16(0.0f), bfloat16(0.0f), bfloat16(0.0f), bfloat16(0.0f)};
    bfloat16 y[4];
    const Problem p{Shape{2, 2}, Shape{2, 2}, Shape{2, 2}, 2};
    run_native_bf16(p, false, false, x, x, y);
  }
  return g_bf16_state.load() == 1;
}

void set_matmul_bf16_force_fallback(bool force) { g_bf16_force_fallback.store(force); }

}  // namespace kiln::kernels
