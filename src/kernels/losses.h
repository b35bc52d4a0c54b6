// Fused cross-entropy kernels: each row's loss from its logits in one pass, shifted by the
// row maximum so that no exp overflows, and with log1p of the non-maximal terms so that a
// confident row keeps its tiny loss instead of rounding it to 0. And the CTC loss.
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

// CTC (Graves et al. 2006), TF's tf.nn.ctc_loss: logits [batch, frames, classes]; labels
// (label_dtype int32/int64) [batch, max_label], of which sample b uses the first label_length[b];
// sample b uses the first logit_length[b] frames. The op validates lengths and labels (in
// [0, classes), never `blank`). loss [batch] = -log p(labels | logits), the sum over every
// alignment with the blank class `blank`, +inf where no alignment fits; grad [batch, frames,
// classes] = d loss / d logits: softmax minus the labels' occupancy on the used frames (NaN where
// the loss is infinite), 0 on the frames past them. Each sample runs serially, in double.
void ctc_loss(DType dtype, const void *logits, DType label_dtype, const void *labels,
              const int64_t *label_length, const int64_t *logit_length, int64_t batch, int64_t frames,
              int64_t classes, int64_t max_label, int64_t blank, void *loss, void *grad);

}  // namespace kiln::kernels
