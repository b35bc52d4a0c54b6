#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/elementwise.h"
#include "kernels/engine.h"

namespace kiln::kernels {

namespace {

using dims_t = dnnl::memory::dims;

// float64 products (m * n * k) at or above which output rows split among OpenMP threads.
constexpr int64_t kMatmulF64ParallelWork = 32768;

// A [batch..., rows, cols] view of a row-major tensor, left-padded with 1s to rank r.
// A transpose swaps the last two dims and their strides, so oneDNN reads the
// transposed matrix in place; dims of 1 are how oneDNN broadcasts batches.
dnnl::memory::desc view(const Shape &s, int r, bool transpose, DType dtype) {
  dims_t dims(static_cast<size_t>(r), 1), strides(static_cast<size_t>(r));
  const int lead = r - s.rank();
  const auto st = s.strides();
  const int64_t total = s.num_elements();
  for (int i = 0; i < r; ++i) {
    auto k = static_cast<size_t>(i);
    if (i < lead) {
      strides[k] = total;
    } else {
      dims[k] = s[i - lead];
      strides[k] = st[static_cast<size_t>(i - lead)];
    }
  }
  if (transpose) {
    std::swap(dims[static_cast<size_t>(r - 1)], dims[static_cast<size_t>(r - 2)]);
    std::swap(strides[static_cast<size_t>(r - 1)], strides[static_cast<size_t>(r - 2)]);
  }
  return dnnl::memory::desc(dims, to_dnnl(dtype), strides);
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

void run(const Problem &p, bool ta, bool tb, DType dtype, const void *a, const void *b, void *out) {
  PrimitiveKey key(PrimitiveKind::kMatmul);
  key.add(dtype)
      .add(static_cast<int64_t>(ta) * 2 + static_cast<int64_t>(tb))
      .add(static_cast<int64_t>(p.rank));
  key.add(p.a).add(p.b);
  run_cached(key,
             [&] {
               dnnl::matmul::desc d(view(p.a, p.rank, ta, dtype), view(p.b, p.rank, tb, dtype),
                                    view(p.out, p.rank, false, dtype));
               return dnnl::matmul(dnnl::matmul::primitive_desc(d, user_scratchpad_attr(), engine()));
             },
             {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, out}});
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

// out = op(a) · op(b) in double. Each output element sums its K products in k order, one
// product at a time, whatever the blocking and the thread count; threads split output rows.
void matmul_f64(bool ta, bool tb, const double *a, const Shape &as, const double *b, const Shape &bs,
                double *out, const Shape &os) {
  const int r = os.rank();
  const int64_t m = os[r - 2], n = os[r - 1];
  const int64_t k = ta ? as[as.rank() - 2] : as[as.rank() - 1];
  const std::vector<int64_t> a_off = batch_offsets(as, os, m * k), b_off = batch_offsets(bs, os, k * n);
  const int64_t batches = static_cast<int64_t>(a_off.size());
  // A transposed b is copied to [K, N] first (before the parallel region), so rows stream.
  std::vector<double> bt;
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
  const bool parallel = rows > 1 && rows * n * k >= kMatmulF64ParallelWork;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t bi = row / m, i = row % m;
    const double *am = a + a_off[static_cast<size_t>(bi)];
    const double *bm = b + b_off[static_cast<size_t>(bi)];
    double *o = out + row * n;
    for (int64_t j0 = 0; j0 < n; j0 += kColBlock) {
      const int64_t j1 = std::min(n, j0 + kColBlock);
      for (int64_t j = j0; j < j1; ++j) o[j] = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? am[p * m + i] : am[i * k + p];
        const double *brow = bm + p * n;
        for (int64_t j = j0; j < j1; ++j) o[j] += av * brow[j];
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
  if (dtype == DType::kFloat64)
    return matmul_f64(transpose_a, transpose_b, static_cast<const double *>(a), a_shape,
                      static_cast<const double *>(b), b_shape, static_cast<double *>(out), out_shape);
  const Problem p = fold(a_shape, b_shape, transpose_a, out_shape);
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
