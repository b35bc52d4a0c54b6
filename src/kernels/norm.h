// Layer and batch normalisation over channels-last data, seen as a [rows, channels] matrix.
// kiln's own loops at every size; larger inputs split rows among OpenMP threads.
#pragma once

#include <cstdint>

namespace kiln::kernels {

// Inputs with at most this many elements run on one thread (threads cost more than they save there).
constexpr int64_t kNormLoopMaxElements = 16384;

// Each row of x [rows, cols]: y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, with gamma and
// beta [cols]. The row statistics [rows] (biased variance) are written when mean and variance are
// not null.
void layer_norm_forward(int64_t rows, int64_t cols, float epsilon, const float *x, const float *gamma,
                        const float *beta, float *y, float *mean, float *variance);
// dx [rows, cols], dgamma and dbeta [cols] from dy and the statistics of the forward pass.
void layer_norm_backward(int64_t rows, int64_t cols, float epsilon, const float *x, const float *gamma,
                         const float *mean, const float *variance, const float *dy, float *dx, float *dgamma,
                         float *dbeta);

// Each column (channel) of x [rows, channels] (rows > 0): computes the batch mean and biased variance
// [channels] into mean and variance, and y with them.
void batch_norm_forward_training(int64_t rows, int64_t channels, float epsilon, const float *x,
                                 const float *gamma, const float *beta, float *y, float *mean,
                                 float *variance);
// Each column of x with the given statistics.
void batch_norm_forward_inference(int64_t rows, int64_t channels, float epsilon, const float *x,
                                  const float *gamma, const float *beta, const float *mean,
                                  const float *variance, float *y);
// dx, dgamma, dbeta. training: the statistics were the batch's own, so dx flows through them;
// otherwise they were constants.
void batch_norm_backward(int64_t rows, int64_t channels, float epsilon, bool training, const float *x,
                         const float *gamma, const float *mean, const float *variance, const float *dy,
                         float *dx, float *dgamma, float *dbeta);

}  // namespace kiln::kernels
