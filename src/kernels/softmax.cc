#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/elementwise.h"
#include "kernels/simd.h"

namespace kiln::kernels {

namespace {

// log_softmax needs log(s) for s = sum exp(x - m) = 1 + t, where t sums every term but the
// maximum's (which is exactly 1). log(s) of the rounded s errs by up to n/2 ulps of 1
// (3e-7 for 10 classes, the whole answer for a confident top class); log1p(t) keeps t's
// relative precision. The maximum's term enters t as y - 1 (0, or NaN if it was NaN).

// One row of n contiguous values. exp and the sums run kiln's vector loops
// (kernels/simd.h), so a row gives the same bits whatever the tensor's size and the
// thread count.
void softmax_row(const float *x, float *y, int64_t n, bool log) {
  // A NaN anywhere makes s NaN, hence the whole row NaN, as in TF, whether or not m saw it.
  const float m = simd::max_f32(x, n);
  const float s = simd::exp_shifted_sum_f32(x, m, y, n);
  if (log) {
    int64_t at = 0;  // the first maximum (0 when m is NaN)
    while (at < n && !(x[at] == m)) ++at;
    if (at < n) y[at] -= 1.0f;
    const float log_s = std::log1p(simd::sum_f32(y, n));
    // (x - m) - log(s), not x - (m + log(s)): the latter rounds log(s) to the
    // float step at m and loses it entirely for large logits.
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - log_s;
  } else {
    simd::scale_f32(y, 1.0f / s, y, n);
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
// maxima and sums per column (contiguous reads, no heap scratch). Each column gets the bits
// softmax_row gives the same values laid out as a row: the same vector exp, the sums in
// sum_f32's lane order (element k into lane k % lanes, then the lanes in order), and the same
// float32 finish.
constexpr int64_t kCols = 64;
constexpr int64_t kMaxLanes = 64;

void softmax_columns(const float *x, float *y, int64_t n, int64_t inner, int64_t cols, bool log) {
  const int64_t lanes = simd::lanes_f32();
  float m[kCols];
  int64_t at[kCols];
  float acc[kCols * kMaxLanes];
  for (int64_t j = 0; j < cols; ++j) m[j] = x[j], at[j] = 0;
  std::fill(acc, acc + cols * lanes, 0.0f);
  for (int64_t k = 1; k < n; ++k)
    for (int64_t j = 0; j < cols; ++j)
      if (x[k * inner + j] > m[j]) m[j] = x[k * inner + j], at[j] = k;
  // For log, the sum is t of softmax_row: the maximum's term enters as y - 1.
  for (int64_t k = 0; k < n; ++k) {
    float *yk = y + k * inner;
    for (int64_t j = 0; j < cols; ++j) yk[j] = x[k * inner + j] - m[j];
    simd::unary_f32(UnaryOp::kExp, yk, yk, cols, 0.0f, 0.0f);
    float *lane = acc + k % lanes;
    for (int64_t j = 0; j < cols; ++j) lane[j * lanes] += log && k == at[j] ? yk[j] - 1.0f : yk[j];
  }
  // f becomes log1p(t) (log: y = (x - m) - f, as in softmax_row) or the scale 1/s.
  float f[kCols];
  for (int64_t j = 0; j < cols; ++j) {
    float sum = 0.0f;
    for (int64_t l = 0; l < lanes; ++l) sum += acc[j * lanes + l];
    f[j] = log ? std::log1p(sum) : 1.0f / sum;
  }
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < cols; ++j)
      y[k * inner + j] = log ? (x[k * inner + j] - m[j]) - f[j] : y[k * inner + j] * f[j];
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

// float64: one strided line of n values (stride 1 for a row) per task, in double throughout;
// the sum of the non-maximal terms t as in softmax_row, in index order.
void softmax_line_f64(const double *x, double *y, int64_t n, int64_t stride, bool log) {
  double m = x[0];
  int64_t at = 0;
  bool nan = false;
  for (int64_t k = 0; k < n; ++k) {
    const double v = x[k * stride];
    nan = nan || std::isnan(v);
    if (v > m) m = v, at = k;
  }
  double t = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    y[k * stride] = std::exp(x[k * stride] - m);  // NaN for an infinite m: the row turns NaN, as TF
    if (k != at) t += y[k * stride];
  }
  if (nan || std::isnan(y[at * stride])) t = std::numeric_limits<double>::quiet_NaN();
  const double log_s = std::log1p(t), s = 1.0 + t;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = k * stride;
    y[i] = log ? (x[i] - m) - log_s : y[i] / s;
  }
}

void softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner, bool log) {
  const int64_t lines = outer * inner;
  const bool parallel = lines > 1 && lines * n >= kSoftmaxLoopThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t l = 0; l < lines; ++l) {
    const int64_t off = (l / inner) * n * inner + l % inner;
    softmax_line_f64(x + off, y + off, n, inner, log);
  }
}

void softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (inner > 1) return softmax_strided(x, y, outer, n, inner, log);
  softmax_rows(x, y, outer, n, log);
}

}  // namespace

void softmax_grad(bool log, const float *y, const float *dy, int64_t rows, int64_t n, float *dx) {
  const bool parallel = rows > 1 && rows * n >= kSoftmaxLoopThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) simd::softmax_grad_row_f32(log, y + r * n, dy + r * n, dx + r * n, n);
}

void softmax(bool log, DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner, void *out) {
  const int64_t count = outer * n * inner;
  if (count == 0) return;
  switch (dtype) {
    case DType::kFloat32:
      return softmax_f32(static_cast<const float *>(x), static_cast<float *>(out), outer, n, inner, log);
    case DType::kFloat64:
      return softmax_f64(static_cast<const double *>(x), static_cast<double *>(out), outer, n, inner, log);
    case DType::kBFloat16: {
      // float32 scratch for the whole input, made before any parallel region; one rounding at the end.
      std::vector<float> buf(2 * static_cast<size_t>(count));
      float *x32 = buf.data(), *y32 = x32 + count;
      cast(DType::kBFloat16, x, DType::kFloat32, x32, count);
      softmax_f32(x32, y32, outer, n, inner, log);
      cast(DType::kFloat32, y32, DType::kBFloat16, out, count);
      return;
    }
    default:
      break;
  }
  fail(Code::kInvalidArgument, log ? "log_softmax" : "softmax", ": unsupported dtype ", dtype_name(dtype));
}

}  // namespace kiln::kernels
