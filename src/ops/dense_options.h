// ops::dense with options: the inference-only opt-ins of a Dense layer's forward pass.
#pragma once

#include "ops/ops.h"

namespace kiln::ops {

struct DenseOptions {
  // A float32 call that no tape records, with at most kernels::kGemvMaxRows rows (batch 1 to 8),
  // reads the kernel rounded to bfloat16 (packed once per kernel value and memoised; x, the sums,
  // the bias and y stay float32): about twice as fast where the weights' bandwidth bounds the
  // call, results within about 2^-9 relative of the float32 ones. Other calls ignore it. The
  // SavedModel load option "inference_weights": "bfloat16" sets it on every Dense layer.
  bool bf16_inference_weights = false;
};

// ops::dense (ops.h) with options.
Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias, DenseActivation activation,
             float alpha, const DenseOptions &options);

}  // namespace kiln::ops
