// kiln's own float32 elementwise loops: Highway for the vectors and the runtime choice
// of instruction set, SLEEF for the transcendental functions (1-ulp `_u10` variants; the
// exact gelu's erfc is kiln's own, in float64). These replace oneDNN's eltwise primitives,
// whose approximations lose NaN, denormals and about 100x precision above kiln's size
// thresholds.
//
// Every function here is single-threaded and allocates nothing, so it may run inside an
// OpenMP region. A value gives the same bits wherever it sits in the array and whatever n
// is: a partial last vector is copied into a padded buffer and goes through the same
// vector code, never a different scalar formula.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/elementwise.h"

namespace kiln::kernels::simd {

// True when unary_f32 implements op (every float32 UnaryOp except kLogicalNot).
bool has_unary_f32(UnaryOp op);

// y[i] = op(x[i]) for i < n; x == y is allowed. alpha/beta as in kernels::unary.
void unary_f32(UnaryOp op, const float *x, float *y, int64_t n, float alpha, float beta);

// dx[i] = dy[i] * op'(x[i]) for op in {kRelu (alpha: negative slope), kGeluErf, kGeluTanh}.
void unary_backward_f32(UnaryOp op, const float *x, const float *dy, float *dx, int64_t n, float alpha);

// unary_f32(kGeluErf) that also writes erfc[i] = erfc(-x[i] / sqrt 2), the factor the backward
// would otherwise evaluate again; y and erfc get the bits unary_f32 and its backward use.
void gelu_erf_saving_erfc_f32(const float *x, float *y, float *erfc, int64_t n);
// unary_backward_f32(kGeluErf) from that erfc: the same bits, without the erfc evaluation.
void gelu_erf_backward_from_erfc_f32(const float *x, const float *erfc, const float *dy, float *dx,
                                     int64_t n);

// y[i] = exp(x[i] - shift), the softmax inner loop; returns the sum of the y[i] (summed
// in a fixed lane order, so also independent of where the row sits).
float exp_shifted_sum_f32(const float *x, float shift, float *y, int64_t n);

// The largest of x[0..n) (n > 0). A NaN may or may not be seen: callers whose result a NaN
// decides anyway (softmax) use it.
float max_f32(const float *x, int64_t n);
// The sum of x[0..n), in the same fixed lane order as exp_shifted_sum_f32.
float sum_f32(const float *x, int64_t n);
// That order: element i is added into lane i % lanes_f32() (in index order, from +0), then the
// lanes are added in order from +0. lanes_f32() is the dispatched instruction set's float32 lane
// count (at most 64).
int64_t lanes_f32();
// y[i] += bias[(c + i) % channels] for i < n: a bias over channels-last rows, y[0] at channel c.
void add_bias_f32(float *y, int64_t n, const float *bias, int64_t channels, int64_t c);
// y[i] = x[i] * scale; x == y is allowed.
void scale_f32(const float *x, float scale, float *y, int64_t n);
// One row of softmax's gradient from its output y: dx = (dy - sum(dy * y)) * y, or for
// log_softmax (log: y is log_softmax's output) dx = dy - exp(y) * sum(dy). The sums run in the
// fixed lane order of sum_f32.
void softmax_grad_row_f32(bool log, const float *y, const float *dy, float *dx, int64_t n);

// ---- for tests: run the code of each compiled instruction set on this machine ----

// The Highway targets compiled into kiln that this CPU can run, best first.
std::vector<int64_t> available_targets();
std::string target_name(int64_t target);
// Makes dispatch use `target` only (one of available_targets()); 0 restores the default.
// Not thread-safe: call while no kernel runs.
void force_target(int64_t target);

}  // namespace kiln::kernels::simd
