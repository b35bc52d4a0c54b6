// Indexing ops: gather (axis, batch_dims) and its gradient scatter_add, one_hot.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/count.h"
#include "kernels/array.h"
#include "kernels/dispatch.h"
#include "kernels/index.h"
#include "ops/array_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

int64_t product(const Shape &s, int begin, int end) {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= s[i];
  return n;
}

// Calls f(const Index *) with indices' data typed as int32_t or int64_t.
template <typename F>
void with_indices(const Tensor &indices, F &&f) {
  if (indices.dtype() == DType::kInt32)
    f(indices.data<int32_t>());
  else
    f(indices.data<int64_t>());
}

// gather's geometry: params as [batch, outer, n, inner], indices as [batch, m].
struct GatherPlan {
  int axis = 0, batch_dims = 0;
  Shape gathered;  // params_shape[:axis] + indices.shape[batch_dims:] + params_shape[axis+1:]
  int64_t batch = 1, outer = 1, n = 1, inner = 1, m = 1;
};

// The checks gather and scatter_add share: indices dtype and range, axis, batch dims, result rank.
GatherPlan plan_gather(const char *op, const Shape &params, const Tensor &indices, int64_t axis,
                       int64_t batch_dims) {
  require_dtype(indices, op, "indices", {DType::kInt32, DType::kInt64});
  const Shape &is = indices.shape();
  if (params.rank() == 0)
    fail(Code::kInvalidArgument, op, ": params shape ", params.to_string(),
         " is a scalar; expected rank >= 1");
  GatherPlan p;
  const int64_t b = batch_dims < 0 ? batch_dims + is.rank() : batch_dims;
  if (b < 0 || b > is.rank() || b >= params.rank())
    fail(Code::kInvalidArgument, op, ": batch_dims ", batch_dims, " with indices ", indices.description(),
         " and params ", params.to_string(), "; expected batch_dims in [-", is.rank(), ", ",
         std::min(is.rank(), params.rank() - 1), "]");
  p.batch_dims = static_cast<int>(b);
  p.axis = normalize_axis(axis, params.rank(), op);
  if (p.axis < p.batch_dims)
    fail(Code::kInvalidArgument, op, ": axis ", axis, " is before batch_dims ", batch_dims,
         "; expected axis >= batch_dims");
  for (int i = 0; i < p.batch_dims; ++i)
    if (params[i] != is[i])
      fail(Code::kInvalidArgument, op, ": params ", params.to_string(), " and indices ",
           indices.description(), " differ in batch dim ", i, "; expected the first ", p.batch_dims,
           " dims to be equal");
  std::vector<int64_t> out;
  for (int i = 0; i < p.axis; ++i) out.push_back(params[i]);
  for (int i = p.batch_dims; i < is.rank(); ++i) out.push_back(is[i]);
  for (int i = p.axis + 1; i < params.rank(); ++i) out.push_back(params[i]);
  p.gathered = internal::checked_shape(op, out, "the result");
  p.batch = product(params, 0, p.batch_dims);
  p.outer = product(params, p.batch_dims, p.axis);
  p.n = params[p.axis];
  p.inner = product(params, p.axis + 1, params.rank());
  p.m = product(is, p.batch_dims, is.rank());
  with_indices(indices, [&](auto *idx) {
    const int64_t bad = kernels::find_out_of_range(idx, indices.num_elements(), p.n);
    if (bad >= 0)
      fail(Code::kInvalidArgument, op, ": indices[", bad, "] = ", static_cast<int64_t>(idx[bad]),
           " is out of range for axis ", p.axis, " of params ", params.to_string(),
           "; expected an index in [0, ", p.n, ")");
  });
  return p;
}

}  // namespace

Shape internal::checked_shape(const char *op, const std::vector<int64_t> &dims, const char *what) {
  if (dims.size() > static_cast<size_t>(Shape::kMaxRank))
    fail(Code::kInvalidArgument, op, ": ", what, " would have rank ", dims.size(), " (dims ",
         dims_string(dims), "); kiln supports rank <= ", Shape::kMaxRank);
  for (int64_t d : dims)
    if (d < 0)
      fail(Code::kInvalidArgument, op, ": ", what, " has dims ", dims_string(dims), "; expected dims >= 0");
  if (nonzero_dims_product(dims.data(), dims.size()) < 0)
    fail(Code::kInvalidArgument, op, ": ", what, " of dims ", dims_string(dims), " has more than kiln's limit of ",
         kMaxElements, " (2^62) elements");
  return Shape(dims, op);
}

void internal::scalar_bytes(const char *op, const char *arg, double value, DType dtype, void *out) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T v{};
    if constexpr (std::is_same_v<T, bool>) {
      v = value != 0;
    } else if constexpr (std::is_integral_v<T>) {
      // max + 1 is a power of two, exact as a double (max itself may round up to it).
      const double lo = static_cast<double>(std::numeric_limits<T>::min());
      const double hi = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
      const bool in_range = value >= lo && value < hi;
      if (!std::isfinite(value) || !in_range)
        fail(Code::kInvalidArgument, op, ": ", arg, " ", value, " does not fit in ", dtype_name(dtype));
      v = static_cast<T>(value);
    } else {
      v = T(static_cast<float>(value));
      // A finite value that becomes inf (1e300 as float32) does not fit; inf and NaN stay as given.
      if (std::isfinite(value) && !std::isfinite(static_cast<double>(static_cast<float>(v))))
        fail(Code::kInvalidArgument, op, ": ", arg, " ", value, " does not fit in ", dtype_name(dtype),
             " (it would become inf)");
    }
    std::memcpy(out, &v, sizeof(T));
  });
}

Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis, int64_t batch_dims) {
  require_defined(params, "gather", "params");
  const GatherPlan p = plan_gather("gather", params.shape(), indices, axis, batch_dims);
  Tensor out = Tensor::empty(params.dtype(), p.gathered);
  with_indices(indices, [&](auto *idx) {
    kernels::gather(params.raw_data(), p.batch, p.outer, p.n, p.inner, idx, p.m, out.raw_mutable_data(),
                    dtype_size(params.dtype()));
  });
  if (should_record({&params})) {
    const Shape ps = params.shape();
    const int a = p.axis, b = p.batch_dims;
    record("gather", {params, indices}, {out}, [indices, ps, a, b](const Grads &g) {
      return Grads{internal::scatter_add(g[0], indices, ps, a, b), Tensor()};
    });
  }
  return out;
}

Tensor internal::scatter_add(const Tensor &updates, const Tensor &indices, const Shape &params_shape,
                             int64_t axis, int64_t batch_dims) {
  require_dtype(updates, "scatter_add", "updates", kArithmetic);
  if (updates.dtype() == DType::kBFloat16)  // summed in float32, rounded once
    return cast(internal::scatter_add(cast(updates, DType::kFloat32), indices, params_shape, axis, batch_dims),
                DType::kBFloat16);
  const GatherPlan p = plan_gather("scatter_add", params_shape, indices, axis, batch_dims);
  if (updates.shape() != p.gathered)
    fail(Code::kInvalidArgument, "scatter_add: argument 'updates' is ", updates.description(),
         " for indices ", indices.description(), " into ", params_shape.to_string(), "; expected shape ",
         p.gathered.to_string());
  Tensor out = Tensor::empty(updates.dtype(), params_shape);
  with_indices(indices, [&](auto *idx) {
    kernels::dispatch_among<float, double, int32_t, int64_t>(updates.dtype(), "scatter_add", [&](auto t) {
      using T = decltype(t);
      kernels::scatter_add(updates.data<T>(), p.batch, p.outer, p.n, p.inner, idx, p.m,
                           out.mutable_data<T>());
    });
  });
  if (is_floating(updates.dtype()) && should_record({&updates})) {
    const int a = p.axis, b = p.batch_dims;
    record("scatter_add", {updates, indices}, {out}, [indices, a, b](const Grads &g) {
      return Grads{gather(g[0], indices, a, b), Tensor()};
    });
  }
  return out;
}

Tensor one_hot(const Tensor &indices, int64_t depth, double on_value, double off_value, int64_t axis,
               DType dtype) {
  const char *op = "one_hot";
  require_dtype(indices, op, "indices", {DType::kInt32, DType::kInt64});
  if (depth < 0)
    fail(Code::kInvalidArgument, op, ": depth is ", depth, " for indices ", indices.description(),
         "; expected depth >= 0");
  const int rank = indices.rank();
  if (axis < -1 || axis > rank)
    fail(Code::kInvalidArgument, op, ": axis ", axis, " for indices ", indices.description(),
         "; expected -1 or 0 to ", rank);
  const int a = axis == -1 ? rank : static_cast<int>(axis);
  std::vector<int64_t> dims = indices.shape().to_vector();
  dims.insert(dims.begin() + a, depth);
  if (dims.size() <= static_cast<size_t>(Shape::kMaxRank) && nonzero_dims_product(dims.data(), dims.size()) < 0)
    fail(Code::kInvalidArgument, op, ": depth ", depth, " for indices ", indices.description(),
         " gives a result of shape ", list_string(dims), ", more than kiln's limit of ", kMaxElements,
         " (2^62) elements");
  const Shape out_shape = internal::checked_shape(op, dims, "the result");
  alignas(8) unsigned char on[8], off[8];
  internal::scalar_bytes(op, "on_value", on_value, dtype, on);
  internal::scalar_bytes(op, "off_value", off_value, dtype, off);
  Tensor out = Tensor::empty(dtype, out_shape);
  const int64_t outer = product(indices.shape(), 0, a), inner = product(indices.shape(), a, rank);
  with_indices(indices, [&](auto *idx) {
    kernels::one_hot(idx, outer, inner, depth, on, off, dtype_size(dtype), out.raw_mutable_data());
  });
  return out;
}

}  // namespace kiln::ops
