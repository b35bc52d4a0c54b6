// Fused cross-entropy kernels: each row's loss from its logits in one pass, shifted by the
// row maximum so that no exp overflows, and with log1p of the non-maximal terms so that a
// confident row keeps its tiny loss instead of rounding it to 0.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kiln::kernels {

// Rows at or above this many logits in total run on OpenMP threads.
constexpr int64_t kLossParallelThreshold = 32768;

// logits float32 [rows, classes]; labels int32/int64 [rows], validated to lie in [0, classes);
// loss float32 [rows] = logsumexp(logits[r]) - logits[r, labels[r]].
void sparse_softmax_xent(const Tensor &logits, const Tensor &labels, const Tensor &loss);

// logits, labels float32 [rows, classes]; loss float32 [rows] = sum_j labels[r, j] *
// (logsumexp(logits[r]) - logits[r, j]), with terms whose label is 0 counting 0 (so a -inf
// logit with label 0 gives no NaN).
void softmax_xent(const Tensor &logits, const Tensor &labels, const Tensor &loss);

// The gradients w.r.t. logits for the loss gradient g (float32 [rows]) into dlogits [rows,
// classes]: g * (softmax - one_hot(labels)) and g * (softmax * sum(labels) - labels). The label's
// own term is -(sum of the other exps) / sum, so a confident row keeps its tiny gradient.
void sparse_softmax_xent_grad(const Tensor &logits, const Tensor &labels, const Tensor &g,
                              const Tensor &dlogits);
void softmax_xent_grad(const Tensor &logits, const Tensor &labels, const Tensor &g, const Tensor &dlogits);

// Elementwise over same-shaped float32 tensors: max(x, 0) - x * z + log1p(exp(-|x|)).
void sigmoid_xent(const Tensor &logits, const Tensor &labels, const Tensor &loss);

}  // namespace kiln::kernels
