#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threads.h"
#include "kernels/simd.h"

namespace kiln::kernels {

namespace {

// One row of n contiguous values. exp runs kiln's vector loop (kernels/simd.h), so a row
// gives the same bits whatever the tensor's size and the thread count.
void softmax_row(const float *x, float *y, int64_t n, bool log) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  // A NaN anywhere makes s NaN, hence the whole row NaN, as in TF.
  const float s = simd::exp_shifted_sum_f32(x, m, y, n);
  if (log) {
    // (x - m) - log(s), not x - (m + log(s)): the latter rounds log(s) to the
    // float step at m and loses it entirely for large logits.
    const float log_s = std::log(s);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - log_s;
  } else {
    const float inv = 1.0f / s;
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

// Rows are independent: above the threshold they are split among OpenMP threads, and each
// row runs the same code as below it (oneDNN's softmax, used here before, loses NaN and
// about 3.6e-6 of log_softmax accuracy).
void softmax_rows(const float *x, float *y, int64_t rows, int64_t n, bool log) {
  const bool parallel = rows > 1 && rows * n >= kSoftmaxLoopThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n, log);
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
  // The same vector exp as the rows path, so both axes' answers agree.
  for (int64_t k = 0; k < n; ++k) {
    float *yk = y + k * inner;
    for (int64_t j = 0; j < cols; ++j) yk[j] = x[k * inner + j] - m[j];
    simd::unary_f32(UnaryOp::kExp, yk, yk, cols, 0.0f, 0.0f);
    for (int64_t j = 0; j < cols; ++j) s[j] += yk[j];
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

}  // namespace

void softmax(const Tensor &x, int axis, bool log, const Tensor &out) {
  const Shape &s = x.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[i];
  for (int i = axis + 1; i < s.rank(); ++i) inner *= s[i];
  const int64_t n = s[axis];
  if (x.num_elements() == 0) return;
  if (inner > 1) return softmax_strided(x.data<float>(), out.mutable_data<float>(), outer, n, inner, log);
  softmax_rows(x.data<float>(), out.mutable_data<float>(), outer, n, log);
}

}  // namespace kiln::kernels
