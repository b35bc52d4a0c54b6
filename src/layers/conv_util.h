// What the convolution layers (conv_layers.cc) and the convolutional recurrent layers
// (conv_lstm_layers.cc) share: Keras's window arguments, read and checked with errors naming the
// layer, and the float32 computation of the window ops.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "layers/layer.h"
#include "ops/ops.h"

namespace kiln::layers {

// A required tuple of n ints >= 1 (kernel_size).
std::vector<int64_t> required_tuple(ConfigReader &r, const char *key, size_t n);
// Keras's standardize_padding: lower-cased "valid" or "same" ("causal" too when causal_ok).
std::string read_padding(ConfigReader &r, bool causal_ok);
inline ops::Padding to_padding(const std::string &p) {
  return p == "same" ? ops::Padding::kSame : ops::Padding::kValid;
}
// data_format: kiln computes channels last; Keras's None means the same (UNIMPLEMENTED for channels_first).
void read_data_format(ConfigReader &r);
// The dilated window (k - 1) * dilation + 1 of every axis must fit in int64 (INVALID_ARGUMENT naming owner).
void check_window_span(const std::string &owner, const std::vector<int64_t> &kernel_size,
                       const std::vector<int64_t> &dilation);
// Keras refuses strides > 1 together with dilation_rate > 1 (Conv, ConvTranspose, ConvLSTM).
void check_strides_or_dilation(const std::string &owner, const std::vector<int64_t> &strides,
                               const std::vector<int64_t> &dilation);

// The window ops compute in float32 only; bfloat16 layers (and mixed_bfloat16 calls) run them on
// float32 copies of their bf16 values and round the result once (f32_compute, bf16_result), which is
// what a bf16 primitive accumulating in float32 gives. Other dtypes are UNIMPLEMENTED.
void require_float32_layer(const Layer &l);
inline Tensor f32_compute(const Tensor &t) {
  return t.dtype() == DType::kBFloat16 ? ops::cast(t, DType::kFloat32) : t;
}
inline Tensor bf16_result(const Tensor &y, DType input_dtype) {
  return input_dtype == DType::kBFloat16 ? ops::cast(y, DType::kBFloat16) : y;
}

// compute_output_shape may be asked about shapes the layer was not built from: rank spatial + 2.
void check_rank(const Layer &l, const PartialShape &s, size_t spatial);
// Keras's conv_output_length along one axis (unknown stays unknown); INVALID_ARGUMENT naming the
// layer when a VALID window does not fit.
int64_t window_output_length(const Layer &l, const PartialShape &s, int64_t in, int64_t k, int64_t stride,
                             int64_t dilation, const std::string &padding);
// The convolution of rank 1, 2 or 3 (tf.nn.convolution): x [N, spatial..., C], filter
// [k..., C, O] -> [N, out spatial..., O].
Tensor convolution(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
                   const std::vector<int64_t> &dilation, ops::Padding padding);

}  // namespace kiln::layers
