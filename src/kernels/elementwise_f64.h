// float64 unary kernels: plain loops over glibc's double libm (about 1 ulp), the same
// formulas and special-value rules as the float32 vector kernels in kernels/simd.h.
// Single-threaded and allocation-free, so they may run inside an OpenMP region; each
// element is computed on its own, so a value gives the same bits at any n.
#pragma once

#include <cstdint>

#include "kernels/elementwise.h"

namespace kiln::kernels::f64 {

// y[i] = op(x[i]) for i < n (every floating UnaryOp); alpha/beta as in kernels::unary.
void unary(UnaryOp op, const double *x, double *y, int64_t n, double alpha, double beta);

// dx[i] = dy[i] * op'(x[i]) for op in {kRelu (alpha: negative slope), kGeluErf, kGeluTanh}.
void unary_backward(UnaryOp op, const double *x, const double *dy, double *dx, int64_t n, double alpha);

}  // namespace kiln::kernels::f64
