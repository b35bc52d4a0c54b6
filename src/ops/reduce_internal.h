// Shared by the reduction, scan, softmax and normalisation ops.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "ops/ops.h"

namespace kiln::ops::internal {

// A shape seen as [outer, n, inner] around one axis (the view the axis kernels take).
struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};

inline AxisView axis_view(const Shape &s, int axis) {
  AxisView v;
  for (int i = 0; i < s.rank(); ++i) {
    if (i < axis) v.outer *= s[i];
    if (i > axis) v.inner *= s[i];
  }
  v.n = s[axis];
  return v;
}

// argmax / argmin: validation, output shape and the kernel call they share (int64 indices of
// the first extreme along axis).
using ArgKernel = void (*)(DType, const void *, int64_t, int64_t, int64_t, int64_t *);
Tensor arg_reduce(const char *op, const Tensor &x, int64_t axis, ArgKernel kernel);

// The dtypes whose gradient rules these ops record: float32 and float64 (bfloat16 results are
// rounded float32 ones; their gradients go through float32 where an op records them).
inline bool has_float_gradient(const Tensor &t) {
  return t.dtype() == DType::kFloat32 || t.dtype() == DType::kFloat64;
}

// t in dtype through the (differentiable) cast op; t itself when it has that dtype.
inline Tensor as_dtype(const Tensor &t, DType dtype) { return t.dtype() == dtype ? t : cast(t, dtype); }

// The dtype gradient rules compute in: float32 for bfloat16 (as the forward kernels), else t's own.
inline DType gradient_dtype(const Tensor &t) {
  return t.dtype() == DType::kBFloat16 ? DType::kFloat32 : t.dtype();
}

}  // namespace kiln::ops::internal
