#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "kernels/engine.h"

namespace kiln::kernels {

namespace {

using dims_t = dnnl::memory::dims;

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

Tensor to_f32(const Tensor &t) {
  Tensor f = Tensor::empty(DType::kFloat32, t.shape());
  const bfloat16 *src = t.data<bfloat16>();
  float *dst = f.mutable_data<float>();
  for (int64_t i = 0, n = t.num_elements(); i < n; ++i) dst[i] = static_cast<float>(src[i]);
  return f;
}

// Runs the native bfloat16 primitive; false (and remembered) when oneDNN has none.
bool run_native_bf16(const Problem &p, bool ta, bool tb, const Tensor &a, const Tensor &b,
                     const Tensor &out) {
  if (g_bf16_state.load() == 2) return false;
  try {
    run(p, ta, tb, DType::kBFloat16, a.raw_data(), b.raw_data(), out.raw_mutable_data());
  } catch (const Error &e) {
    if (e.code() != Code::kUnimplemented) throw;
    g_bf16_state.store(2);
    return false;
  }
  g_bf16_state.store(1);
  return true;
}

}  // namespace

void matmul(const Tensor &a, const Tensor &b, bool transpose_a, bool transpose_b, const Tensor &out) {
  if (out.num_elements() == 0) return;
  const int64_t k = transpose_a ? a.shape()[a.rank() - 2] : a.shape()[a.rank() - 1];
  if (k == 0) {
    std::memset(out.raw_mutable_data(), 0, out.byte_size());
    return;
  }
  const Problem p = fold(a.shape(), b.shape(), transpose_a, out.shape());
  if (a.dtype() != DType::kBFloat16)
    return run(p, transpose_a, transpose_b, a.dtype(), a.raw_data(), b.raw_data(), out.raw_mutable_data());
  if (!g_bf16_force_fallback.load() && run_native_bf16(p, transpose_a, transpose_b, a, b, out)) return;
  Tensor a32 = to_f32(a), b32 = to_f32(b);
  Tensor out32 = Tensor::empty(DType::kFloat32, out.shape());
  run(p, transpose_a, transpose_b, DType::kFloat32, a32.raw_data(), b32.raw_data(), out32.raw_mutable_data());
  const float *src = out32.data<float>();
  bfloat16 *dst = out.mutable_data<bfloat16>();
  for (int64_t i = 0, n = out.num_elements(); i < n; ++i) dst[i] = bfloat16(src[i]);
}

bool matmul_bf16_native() {
  if (g_bf16_state.load() == 0) {
    Tensor x = Tensor::empty(DType::kBFloat16, Shape{2, 2});
    std::memset(x.raw_mutable_data(), 0, x.byte_size());
    Tensor y = Tensor::empty(DType::kBFloat16, Shape{2, 2});
    const Problem p{Shape{2, 2}, Shape{2, 2}, Shape{2, 2}, 2};
    run_native_bf16(p, false, false, x, x, y);
  }
  return g_bf16_state.load() == 1;
}

void set_matmul_bf16_force_fallback(bool force) { g_bf16_force_fallback.store(force); }

}  // namespace kiln::kernels
