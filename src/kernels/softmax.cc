#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threads.h"
#include "kernels/engine.h"

namespace kiln::kernels {

namespace {

// Rows of n contiguous values (inner == 1).
void softmax_rows(const float *x, float *y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    float m = xr[0];
    for (int64_t i = 1; i < n; ++i) m = xr[i] > m ? xr[i] : m;
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      yr[i] = std::exp(xr[i] - m);
      s += yr[i];
    }
    if (log) {
      // (x - m) - log(s), not x - (m + log(s)): the latter rounds log(s) to the
      // float step at m and loses it entirely for large logits.
      const float log_s = std::log(s);
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) - log_s;
    } else {
      const float inv = 1.0f / s;
      for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
    }
  }
}

// [outer, n, inner] with inner > 1: the axis is strided, so each task takes a block of
// up to kCols columns of one outer index and walks it row by row, keeping running
// maxima and sums per column (contiguous reads, no heap scratch).
constexpr int64_t kCols = 64;

void softmax_columns(const float *x, float *y, int64_t n, int64_t inner, int64_t cols, bool log) {
  float m[kCols], s[kCols];
  for (int64_t j = 0; j < cols; ++j) m[j] = x[j], s[j] = 0.0f;
  for (int64_t k = 1; k < n; ++k)
    for (int64_t j = 0; j < cols; ++j) m[j] = x[k * inner + j] > m[j] ? x[k * inner + j] : m[j];
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < cols; ++j) {
      y[k * inner + j] = std::exp(x[k * inner + j] - m[j]);
      s[j] += y[k * inner + j];
    }
  // s becomes log(s) (log: y = (x - m) - log(s), as in softmax_rows) or the scale 1/s.
  for (int64_t j = 0; j < cols; ++j) s[j] = log ? std::log(s[j]) : 1.0f / s[j];
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < cols; ++j)
      y[k * inner + j] = log ? (x[k * inner + j] - m[j]) - s[j] : y[k * inner + j] * s[j];
}

// oneDNN 2.6's softmax along a strided axis is a reference implementation (500 ms for
// axis 0 of [2048, 2048] here, single-threaded), so strided softmax always runs this loop,
// split among OpenMP threads when large.
void softmax_strided(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, bool log) {
  const int64_t blocks = (inner + kCols - 1) / kCols, tasks = outer * blocks;
  const bool parallel = tasks > 1 && outer * n * inner >= kSoftmaxLoopThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / blocks, j0 = (t % blocks) * kCols;
    const int64_t off = o * n * inner + j0;
    softmax_columns(x + off, y + off, n, inner, std::min(kCols, inner - j0), log);
  }
}

void softmax_onednn(const Tensor &x, int64_t outer, int64_t n, bool log, const Tensor &out) {
  PrimitiveKey key(log ? PrimitiveKind::kLogSoftmax : PrimitiveKind::kSoftmax);
  key.add(outer).add(n);
  run_cached(key,
             [&] {
               dnnl::memory::desc md = plain_desc(Shape{outer, n}, DType::kFloat32);
               const auto prop = dnnl::prop_kind::forward_inference;
               if (log)
                 return dnnl::primitive(dnnl::logsoftmax_forward(dnnl::logsoftmax_forward::primitive_desc(
                     {prop, md, 1}, user_scratchpad_attr(), engine())));
               return dnnl::primitive(dnnl::softmax_forward(
                   dnnl::softmax_forward::primitive_desc({prop, md, 1}, user_scratchpad_attr(), engine())));
             },
             {{DNNL_ARG_SRC, x.raw_data()}, {DNNL_ARG_DST, out.raw_mutable_data()}});
}

}  // namespace

void softmax(const Tensor &x, int axis, bool log, const Tensor &out) {
  const Shape &s = x.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[i];
  for (int i = axis + 1; i < s.rank(); ++i) inner *= s[i];
  const int64_t n = s[axis];
  if (x.num_elements() == 0) return;
  if (inner > 1) return softmax_strided(x.data<float>(), out.mutable_data<float>(), outer, n, inner, log);
  if (x.num_elements() >= kSoftmaxLoopThreshold) return softmax_onednn(x, outer, n, log, out);
  softmax_rows(x.data<float>(), out.mutable_data<float>(), outer, n, log);
}

}  // namespace kiln::kernels
