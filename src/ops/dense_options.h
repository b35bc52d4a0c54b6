// ops::dense with options: the inference-only opt-ins of a Dense layer's forward pass.
#pragma once

#include "kernels/gemv.h"
#include "ops/ops.h"

namespace kiln::ops {

struct DenseOptions {
  // A float32 call that no tape records, with at most kernels::kGemvMaxRows rows (batch 1 to 8),
  // reads the kernel packed in this format once per kernel value and memoised (x, the bias and y
  // stay float32; kernels/gemv.h defines the formats). bfloat16: about twice as fast where the
  // weights' bandwidth bounds the call, results within about 2^-9 relative of the float32 ones.
  // int8 (dynamic-range quantization): a quarter of the bytes, so W7's weights stay in one
  // core's L2 cache; the error of 8-bit weights and 16-bit inputs. Other calls ignore it. The
  // SavedModel load option "inference_weights" sets it on every Dense layer.
  kernels::GemvWeights inference_weights = kernels::GemvWeights::kFloat32;
};

// ops::dense (ops.h) with options.
Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias, DenseActivation activation,
             float alpha, const DenseOptions &options);

}  // namespace kiln::ops
