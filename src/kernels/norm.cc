// Layer and batch normalisation as kiln's own loops at every size (float32 layer-norm rows in
// Highway vectors, kernels/norm_simd.h, with the same bits as the scalar loops here). oneDNN's primitives,
// used above kNormLoopMaxElements before, computed differently from the loops below it;
// now a row or channel gives the same bits whatever the tensor's size and the thread count
// (rows are split among threads; sums across rows use a fixed blocking).
#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/threads.h"
#include "kernels/norm_simd.h"

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

template <typename T>
T inverse(int64_t n) {
  return n > 0 ? T(1) / static_cast<T>(n) : T(0);
}

// sum of f(j) for j < n in a fixed order (eight running lanes), independent of the data's
// address: a compiler-vectorised reduction might peel for alignment and change the order.
template <typename T, typename F>
inline T lane_sum(int64_t n, F f) {
  constexpr int kLanes = 8;
  T lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += f(j + l);
  for (int l = 0; j < n; ++j, ++l) lane[l] += f(j);
  T s = T(0);
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  return s;
}

template <typename T>
void ln_forward_row(int64_t cols, T inv_cols, T epsilon, const T *xr, const T *gamma, const T *beta, T *yr,
                    T *mean, T *variance) {
  const T mu = lane_sum<T>(cols, [xr](int64_t j) { return xr[j]; }) * inv_cols;
  const T var = lane_sum<T>(cols, [xr, mu](int64_t j) { return (xr[j] - mu) * (xr[j] - mu); }) * inv_cols;
  const T rstd = T(1) / std::sqrt(var + epsilon);
  for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - mu) * rstd * gamma[j] + beta[j];
  if (mean) *mean = mu;
  if (variance) *variance = var;
}

// dx for rows [r0, r1) and their dgamma / dbeta contributions summed into pg / pb.
template <typename T>
void ln_backward_block(int64_t r0, int64_t r1, int64_t cols, T epsilon, const T *x, const T *gamma,
                       const T *mean, const T *variance, const T *dy, T *dx, T *pg, T *pb) {
  const T inv_cols = inverse<T>(cols);
  for (int64_t j = 0; j < cols; ++j) pg[j] = pb[j] = T(0);
  for (int64_t r = r0; r < r1; ++r) {
    const T *xr = x + r * cols;
    const T *dyr = dy + r * cols;
    T *dxr = dx + r * cols;
    const T mu = mean[r];
    const T rstd = T(1) / std::sqrt(variance[r] + epsilon);
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
    const T sum_g = lane_sum<T>(cols, [&](int64_t j) { return dyr[j] * gamma[j]; });
    const T sum_gx = lane_sum<T>(cols, [&](int64_t j) { return dyr[j] * gamma[j] * ((xr[j] - mu) * rstd); });
    for (int64_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mu) * rstd;
      pg[j] += dyr[j] * xhat;
      pb[j] += dyr[j];
    }
    const T mean_g = sum_g * inv_cols, mean_gx = sum_gx * inv_cols;
    for (int64_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mu) * rstd;
      dxr[j] = rstd * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
    }
  }
}

// Per-channel sums of dy and dy * xhat, row after row (one order at every size).
template <typename T>
void bn_channel_sums(int64_t rows, int64_t channels, const T *x, const T *mean, const T *rstd, const T *dy,
                     T *sum_dy, T *sum_dy_xhat) {
  for (int64_t c = 0; c < channels; ++c) sum_dy[c] = sum_dy_xhat[c] = T(0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const T d = dy[r * channels + c];
      sum_dy[c] += d;
      sum_dy_xhat[c] += d * (x[r * channels + c] - mean[c]) * rstd[c];
    }
}

}  // namespace

template <typename T>
void layer_norm_forward(int64_t rows, int64_t cols, T epsilon, const T *x, const T *gamma, const T *beta,
                        T *y, T *mean, T *variance) {
  const T inv_cols = inverse<T>(cols);
  const bool parallel = parallel_for(rows, cols);
  if constexpr (std::is_same_v<T, float>) {
    // Blocks of rows, so that the vector loops interleave several rows' sums.
    constexpr int64_t kBlock = 16;
    const int64_t blocks = (rows + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r = b * kBlock;
      norm_simd::ln_forward_rows_f32(std::min(kBlock, rows - r), cols, inv_cols, epsilon, x + r * cols, gamma,
                                     beta, y + r * cols, mean ? mean + r : nullptr,
                                     variance ? variance + r : nullptr);
    }
  } else {
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      ln_forward_row(cols, inv_cols, epsilon, x + r * cols, gamma, beta, y + r * cols,
                     mean ? mean + r : nullptr, variance ? variance + r : nullptr);
  }
}

template <typename T>
void layer_norm_backward(int64_t rows, int64_t cols, T epsilon, const T *x, const T *gamma, const T *mean,
                         const T *variance, const T *dy, T *dx, T *dgamma, T *dbeta) {
  const int64_t blocks = std::max<int64_t>(1, (rows + kRowBlock - 1) / kRowBlock);
  // Block 0 sums straight into dgamma / dbeta; the others into scratch, added in block order.
  std::vector<T> partial(static_cast<size_t>(2 * (blocks - 1) * cols));
  const bool parallel = parallel_for(rows, cols);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    T *pg = b == 0 ? dgamma : partial.data() + 2 * (b - 1) * cols;
    T *pb = b == 0 ? dbeta : pg + cols;
    const int64_t r0 = b * kRowBlock, r1 = std::min(rows, (b + 1) * kRowBlock);
    if constexpr (std::is_same_v<T, float>)
      norm_simd::ln_backward_block_f32(r0, r1, cols, epsilon, x, gamma, mean, variance, dy, dx, pg, pb);
    else
      ln_backward_block(r0, r1, cols, epsilon, x, gamma, mean, variance, dy, dx, pg, pb);
  }
  for (int64_t b = 1; b < blocks; ++b) {
    const T *pg = partial.data() + 2 * (b - 1) * cols, *pb = pg + cols;
    for (int64_t j = 0; j < cols; ++j) dgamma[j] += pg[j], dbeta[j] += pb[j];
  }
}

template <typename T>
void batch_norm_forward_training(int64_t rows, int64_t channels, T epsilon, const T *x, const T *gamma,
                                 const T *beta, T *y, T *mean, T *variance) {
  const T inv_rows = inverse<T>(rows);
  for (int64_t c = 0; c < channels; ++c) mean[c] = variance[c] = T(0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) mean[c] += x[r * channels + c];
  for (int64_t c = 0; c < channels; ++c) mean[c] *= inv_rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const T d = x[r * channels + c] - mean[c];
      variance[c] += d * d;
    }
  for (int64_t c = 0; c < channels; ++c) variance[c] *= inv_rows;
  batch_norm_forward_inference(rows, channels, epsilon, x, gamma, beta, mean, variance, y);
}

template <typename T>
void batch_norm_forward_inference(int64_t rows, int64_t channels, T epsilon, const T *x, const T *gamma,
                                  const T *beta, const T *mean, const T *variance, T *y) {
  std::vector<T> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    scale[c] = gamma[c] / std::sqrt(variance[c] + epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  const T *sc = scale.data(), *sh = shift.data();
  const bool parallel = parallel_for(rows, channels);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) y[r * channels + c] = x[r * channels + c] * sc[c] + sh[c];
}

template <typename T>
void batch_norm_backward(int64_t rows, int64_t channels, T epsilon, bool training, const T *x, const T *gamma,
                         const T *mean, const T *variance, const T *dy, T *dx, T *dgamma, T *dbeta) {
  std::vector<T> rstd_v(static_cast<size_t>(channels));
  T *rstd = rstd_v.data();
  for (int64_t c = 0; c < channels; ++c) rstd[c] = T(1) / std::sqrt(variance[c] + epsilon);
  bn_channel_sums(rows, channels, x, mean, rstd, dy, dbeta, dgamma);
  const T inv_rows = inverse<T>(rows);
  const bool parallel = parallel_for(rows, channels);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t i = r * channels + c;
      T g = dy[i];
      if (training) {
        const T xhat = (x[i] - mean[c]) * rstd[c];
        g -= (dbeta[c] + xhat * dgamma[c]) * inv_rows;
      }
      dx[i] = g * gamma[c] * rstd[c];
    }
}

#define KILN_NORM_INSTANTIATE(T)                                                                            \
  template void layer_norm_forward(int64_t, int64_t, T, const T *, const T *, const T *, T *, T *, T *);    \
  template void layer_norm_backward(int64_t, int64_t, T, const T *, const T *, const T *, const T *,        \
                                    const T *, T *, T *, T *);                                              \
  template void batch_norm_forward_training(int64_t, int64_t, T, const T *, const T *, const T *, T *, T *, \
                                            T *);                                                           \
  template void batch_norm_forward_inference(int64_t, int64_t, T, const T *, const T *, const T *,          \
                                             const T *, const T *, T *);                                    \
  template void batch_norm_backward(int64_t, int64_t, T, bool, const T *, const T *, const T *, const T *,  \
                                    const T *, T *, T *, T *);
KILN_NORM_INSTANTIATE(float)
KILN_NORM_INSTANTIATE(double)
#undef KILN_NORM_INSTANTIATE

}  // namespace kiln::kernels
