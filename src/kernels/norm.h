// Layer and batch normalisation over channels-last data, seen as a [rows, channels] matrix.
// kiln's own loops at every size; larger inputs split rows among OpenMP threads. T is float or
// double (explicitly instantiated); bfloat16 inputs are converted to float32 by the op.
#pragma once

#include <cstdint>

namespace kiln::kernels {

// Inputs with at most this many elements run on one thread (threads cost more than they save there).
constexpr int64_t kNormLoopMaxElements = 16384;

// Each row of x [rows, cols]: y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, with gamma and
// beta [cols]. The row statistics [rows] (biased variance) are written when mean and variance are
// not null.
template <typename T>
void layer_norm_forward(int64_t rows, int64_t cols, T epsilon, const T *x, const T *gamma, const T *beta,
                        T *y, T *mean, T *variance);
// dx [rows, cols], dgamma and dbeta [cols] from dy and the statistics of the forward pass.
template <typename T>
void layer_norm_backward(int64_t rows, int64_t cols, T epsilon, const T *x, const T *gamma, const T *mean,
                         const T *variance, const T *dy, T *dx, T *dgamma, T *dbeta);

// Each column (channel) of x [rows, channels] (rows > 0): computes the batch mean and biased variance
// [channels] into mean and variance, and y with them.
template <typename T>
void batch_norm_forward_training(int64_t rows, int64_t channels, T epsilon, const T *x, const T *gamma,
                                 const T *beta, T *y, T *mean, T *variance);
// Each column of x with the given statistics.
template <typename T>
void batch_norm_forward_inference(int64_t rows, int64_t channels, T epsilon, const T *x, const T *gamma,
                                  const T *beta, const T *mean, const T *variance, T *y);
// dx, dgamma, dbeta. training: the statistics were the batch's own, so dx flows through them;
// otherwise they were constants.
template <typename T>
void batch_norm_backward(int64_t rows, int64_t channels, T epsilon, bool training, const T *x, const T *gamma,
                         const T *mean, const T *variance, const T *dy, T *dx, T *dgamma, T *dbeta);

}  // namespace kiln::kernels
