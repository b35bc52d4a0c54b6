// Byte-level helpers of the pipeline: slicing rows out of tensors and stacking rows into
// batches. The pipeline copies bytes itself rather than calling ops, so nothing it does is
// recorded on a GradientTape and no oneDNN work runs on pipeline threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"

namespace kiln::data {

// Row i of t (a copy of t[i], shape t.shape[1:]).
Tensor slice_row(const Tensor &t, int64_t i);
// The rows stacked into one tensor [rows.size(), ...]; every row needs the same dtype and shape
// (errors name op and component).
Tensor stack_rows(const std::vector<Tensor> &rows, const char *op, size_t component);
// As stack_rows, each row padded to `shape` (>= every row's shape, dim by dim) with `pad` (a
// scalar of the rows' dtype, or undefined for zeros).
Tensor stack_padded(const std::vector<Tensor> &rows, const std::vector<int64_t> &shape, const Tensor &pad,
                    const char *op, size_t component);
// "float32[2, 3]": a component's description in error messages.
std::string describe(const Tensor &t);
// Throws InvalidArgument naming op unless every component is a defined tensor.
void require_components(const Element &e, const char *op);

}  // namespace kiln::data
