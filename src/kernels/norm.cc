// Layer and batch normalisation as kiln's own loops at every size. oneDNN's primitives,
// used above kNormLoopMaxElements before, computed differently from the loops below it;
// now a row or channel gives the same bits whatever the tensor's size and the thread count
// (rows are split among threads; sums across rows use a fixed blocking).
#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threads.h"

namespace kiln::kernels {

namespace {

// Rows per block when dgamma/dbeta are summed across rows: a fixed number, so that the
// summation order never depends on the thread count.
constexpr int64_t kRowBlock = 64;

bool parallel_for(int64_t rows, int64_t cols) {
  const bool parallel = rows > 1 && rows * cols > kNormLoopMaxElements;
  if (parallel) apply_num_threads();
  return parallel;
}

float inverse(int64_t n) { return n > 0 ? 1.0f / static_cast<float>(n) : 0.0f; }

// sum of f(j) for j < n in a fixed order (eight running lanes), independent of the data's
// address: a compiler-vectorised reduction might peel for alignment and change the order.
template <typename F>
inline float lane_sum(int64_t n, F f) {
  constexpr int kLanes = 8;
  float lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += f(j + l);
  for (int l = 0; j < n; ++j, ++l) lane[l] += f(j);
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  return s;
}

void ln_forward_row(int64_t cols, float inv_cols, float epsilon, const float *xr, const float *gamma,
                    const float *beta, float *yr, float *mean, float *variance) {
  const float mu = lane_sum(cols, [xr](int64_t j) { return xr[j]; }) * inv_cols;
  const float var = lane_sum(cols, [xr, mu](int64_t j) { return (xr[j] - mu) * (xr[j] - mu); }) * inv_cols;
  const float rstd = 1.0f / std::sqrt(var + epsilon);
  for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mu) * rstd * gamma[j] + beta[j];
  if (mean) *mean = mu;
  if (variance) *variance = var;
}

// dx for rows [r0, r1) and their dgamma / dbeta contributions summed into pg / pb.
void ln_backward_block(int64_t r0, int64_t r1, int64_t cols, float epsilon, const float *x, const float *gamma,
                       const float *mean, const float *variance, const float *dy, float *dx, float *pg,
                       float *pb) {
  const float inv_cols = inverse(cols);
  for (int64_t j = 0; j < cols; ++j) pg[j] = pb[j] = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const float *xr = x + r * cols;
    const float *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    const float mu = mean[r];
    const float rstd = 1.0f / std::sqrt(variance[r] + epsilon);
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
    const float sum_g = lane_sum(cols, [&](int64_t j) { return dyr[j] * gamma[j]; });
    const float sum_gx = lane_sum(cols, [&](int64_t j) { return dyr[j] * gamma[j] * ((xr[j] - mu) * rstd); });
    for (int64_t j = 0; j < cols; ++j) {
      const float xhat = (xr[j] - mu) * rstd;
      pg[j] += dyr[j] * xhat;
      pb[j] += dyr[j];
    }
    const float mean_g = sum_g * inv_cols, mean_gx = sum_gx * inv_cols;
    for (int64_t j = 0; j < cols; ++j) {
      const float xhat = (xr[j] - mu) * rstd;
      dxr[j] = rstd * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
    }
  }
}

// Per-channel sums of dy and dy * xhat, row after row (one order at every size).
void bn_channel_sums(int64_t rows, int64_t channels, const float *x, const float *mean, const float *rstd,
                     const float *dy, float *sum_dy, float *sum_dy_xhat) {
  for (int64_t c = 0; c < channels; ++c) sum_dy[c] = sum_dy_xhat[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const float d = dy[r * channels + c];
      sum_dy[c] += d;
      sum_dy_xhat[c] += d * (x[r * channels + c] - mean[c]) * rstd[c];
    }
}

}  // namespace

void layer_norm_forward(int64_t rows, int64_t cols, float epsilon, const float *x, const float *gamma,
                        const float *beta, float *y, float *mean, float *variance) {
  const float inv_cols = inverse(cols);
  const bool parallel = parallel_for(rows, cols);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    ln_forward_row(cols, inv_cols, epsilon, x + r * cols, gamma, beta, y + r * cols, mean ? mean + r : nullptr,
                   variance ? variance + r : nullptr);
}

void layer_norm_backward(int64_t rows, int64_t cols, float epsilon, const float *x, const float *gamma,
                         const float *mean, const float *variance, const float *dy, float *dx, float *dgamma,
                         float *dbeta) {
  const int64_t blocks = std::max<int64_t>(1, (rows + kRowBlock - 1) / kRowBlock);
  // Block 0 sums straight into dgamma / dbeta; the others into scratch, added in block order.
  std::vector<float> partial(static_cast<size_t>(2 * (blocks - 1) * cols));
  const bool parallel = parallel_for(rows, cols);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    float *pg = b == 0 ? dgamma : partial.data() + 2 * (b - 1) * cols;
    float *pb = b == 0 ? dbeta : pg + cols;
    ln_backward_block(b * kRowBlock, std::min(rows, (b + 1) * kRowBlock), cols, epsilon, x, gamma, mean, variance,
                      dy, dx, pg, pb);
  }
  for (int64_t b = 1; b < blocks; ++b) {
    const float *pg = partial.data() + 2 * (b - 1) * cols, *pb = pg + cols;
    for (int64_t j = 0; j < cols; ++j) dgamma[j] += pg[j], dbeta[j] += pb[j];
  }
}

void batch_norm_forward_training(int64_t rows, int64_t channels, float epsilon, const float *x,
                                 const float *gamma, const float *beta, float *y, float *mean,
                                 float *variance) {
  const float inv_rows = inverse(rows);
  for (int64_t c = 0; c < channels; ++c) mean[c] = variance[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) mean[c] += x[r * channels + c];
  for (int64_t c = 0; c < channels; ++c) mean[c] *= inv_rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const float d = x[r * channels + c] - mean[c];
      variance[c] += d * d;
    }
  for (int64_t c = 0; c < channels; ++c) variance[c] *= inv_rows;
  batch_norm_forward_inference(rows, channels, epsilon, x, gamma, beta, mean, variance, y);
}

void batch_norm_forward_inference(int64_t rows, int64_t channels, float epsilon, const float *x,
                                  const float *gamma, const float *beta, const float *mean,
                                  const float *variance, float *y) {
  std::vector<float> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    scale[c] = gamma[c] / std::sqrt(variance[c] + epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  const float *sc = scale.data(), *sh = shift.data();
  const bool parallel = parallel_for(rows, channels);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) y[r * channels + c] = x[r * channels + c] * sc[c] + sh[c];
}

void batch_norm_backward(int64_t rows, int64_t channels, float epsilon, bool training, const float *x,
                         const float *gamma, const float *mean, const float *variance, const float *dy,
                         float *dx, float *dgamma, float *dbeta) {
  std::vector<float> rstd_v(static_cast<size_t>(channels));
  float *rstd = rstd_v.data();
  for (int64_t c = 0; c < channels; ++c) rstd[c] = 1.0f / std::sqrt(variance[c] + epsilon);
  bn_channel_sums(rows, channels, x, mean, rstd, dy, dbeta, dgamma);
  const float inv_rows = inverse(rows);
  const bool parallel = parallel_for(rows, channels);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t i = r * channels + c;
      float g = dy[i];
      if (training) {
        const float xhat = (x[i] - mean[c]) * rstd[c];
        g -= (dbeta[c] + xhat * dgamma[c]) * inv_rows;
      }
      dx[i] = g * gamma[c] * rstd[c];
    }
}

}  // namespace kiln::kernels
