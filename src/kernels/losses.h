// Fused cross-entropy kernels: each row's loss from its logits in one pass, shifted by the
// row maximum so that no exp overflows, and with log1p of the non-maximal terms so that a
// confident row keeps its tiny loss instead of rounding it to 0.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

// Rows at or above this many logits in total run on OpenMP threads.
constexpr int64_t kLossParallelThreshold = 32768;

// Every kernel here takes float32 or float64 (`dtype`) logits, float labels and outputs of that
// dtype; sums run in double.

// logits [rows, classes]; labels (label_dtype int32/int64) [rows], validated to lie in
// [0, classes); loss [rows] = logsumexp(logits[r]) - logits[r, labels[r]].
void sparse_softmax_xent(DType dtype, const void *logits, DType label_dtype, const void *labels, int64_t rows,
                         int64_t classes, void *loss);

// logits, labels [rows, classes]; loss [rows] = sum_j labels[r, j] * (logsumexp(logits[r]) -
// logits[r, j]), with terms whose label is 0 counting 0 (so a -inf logit with label 0 gives no NaN).
void softmax_xent(DType dtype, const void *logits, const void *labels, int64_t rows, int64_t classes,
                  void *loss);

// The gradients w.r.t. logits for the loss gradient g [rows] into dlogits [rows, classes]:
// g * (softmax - one_hot(labels)) and g * (softmax * sum(labels) - labels). The label's own term
// is -(sum of the other exps) / sum, so a confident row keeps its tiny gradient.
void sparse_softmax_xent_grad(DType dtype, const void *logits, DType label_dtype, const void *labels,
                              const void *g, int64_t rows, int64_t classes, void *dlogits);
void softmax_xent_grad(DType dtype, const void *logits, const void *labels, const void *g, int64_t rows,
                       int64_t classes, void *dlogits);

// Elementwise over n logits and labels: max(x, 0) - x * z + log1p(exp(-|x|)).
void sigmoid_xent(DType dtype, const void *logits, const void *labels, int64_t n, void *loss);

}  // namespace kiln::kernels
