// zeros, ones, fill, zeros_like, ones_like, range.
#include <cmath>

#include "core/count.h"
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

namespace {
// range's element count, checked before any conversion: NaN or infinite bounds have no count
// (the cast to int64 would be undefined), and a huge count must fail before allocating.
int64_t range_count(double start, double limit, double delta) {
  if (!std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta))
    fail(Code::kInvalidArgument, "range: start ", start, ", limit ", limit, " and delta ", delta,
         " must be finite numbers");
  const double count = std::ceil((limit - start) / delta);
  if (!(count <= static_cast<double>(kMaxElements)))  // also catches NaN and inf from the division
    fail(Code::kInvalidArgument, "range: start ", start, ", limit ", limit, " and delta ", delta, " give ",
         count, " elements, more than kiln's limit of ", kMaxElements, " (2^62)");
  return count > 0 ? static_cast<int64_t>(count) : 0;
}
}  // namespace

Tensor fill(const Shape &shape, double value, DType dtype) {
  Tensor t = Tensor::empty(dtype, shape);
  int64_t n = t.num_elements();
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T v = static_cast<T>(static_cast<float>(value));
    if constexpr (std::is_integral_v<T>) v = static_cast<T>(value);
    T *p = t.mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  });
  return t;
}

Tensor zeros(const Shape &shape, DType dtype) { return fill(shape, 0.0, dtype); }
Tensor ones(const Shape &shape, DType dtype) { return fill(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor &x) {
  require_defined(x, "zeros_like", "x");
  return zeros(x.shape(), x.dtype());
}
Tensor ones_like(const Tensor &x) {
  require_defined(x, "ones_like", "x");
  return ones(x.shape(), x.dtype());
}

Tensor range(double start, double limit, double delta, DType dtype) {
  if (delta == 0) fail(Code::kInvalidArgument, "range: delta is 0; expected a non-zero step");
  if ((delta > 0 && start > limit) || (delta < 0 && start < limit))
    fail(Code::kInvalidArgument, "range: start ", start, " cannot reach limit ", limit, " with delta ", delta);
  if (dtype != DType::kFloat32 && dtype != DType::kInt32 && dtype != DType::kInt64)
    fail(Code::kInvalidArgument, "range: dtype ", dtype_name(dtype), " is not supported; expected float32, int32 or int64");
  int64_t n = range_count(start, limit, delta);
  Tensor t = Tensor::empty(dtype, Shape{n});
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>) {
      T *p = t.mutable_data<T>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * delta);
    }
  });
  return t;
}

}  // namespace kiln::ops
