// Internal ops of the array family: the gradient partners of slice and gather.
// Each has a gradient rule (the partner op), so nested tapes work through them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::ops::internal {

// Zeros of `shape` with x written at offset `begin` (the gradient of slice).
// Any dtype; x must fit inside shape at begin.
Tensor pad_zeros(const Tensor &x, const std::vector<int64_t> &begin, const Shape &shape);

// Zeros of `params_shape`, then for every position j of indices:
// out[..., indices[j], ...] += updates[..., j, ...] along `axis` (the gradient of
// gather, like unsorted_segment_sum; repeated indices accumulate, integers wrapping around).
// updates is float32, bfloat16, float64, int32 or int64 (recorded for the floating ones), with
// shape params_shape[:axis] + indices.shape[batch_dims:] + params_shape[axis+1:]; indices
// int32/int64, their first batch_dims dims those of params_shape (as gather's).
Tensor scatter_add(const Tensor &updates, const Tensor &indices, const Shape &params_shape, int64_t axis,
                   int64_t batch_dims = 0);

// `dims` as a Shape after checking its rank and that its element count fits in int64;
// errors name op and say what the dims were for (`what`).
Shape checked_shape(const char *op, const std::vector<int64_t> &dims, const char *what);

// value as one element of dtype, written to out (8 bytes of room). Integer and bool dtypes
// need a finite value in the dtype's range, floating ones a value that does not round to inf
// unless it is inf or NaN already (InvalidArgument naming op and arg otherwise).
void scalar_bytes(const char *op, const char *arg, double value, DType dtype, void *out);

// "[2, -1, 3]": for messages about dims that may not form a valid Shape.
inline std::string dims_string(const std::vector<int64_t> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace kiln::ops::internal
