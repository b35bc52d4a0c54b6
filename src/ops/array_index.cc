// Indexing ops: gather (embedding lookup), its gradient scatter_add, one_hot.
#include "core/count.h"
#include "kernels/array.h"
#include "ops/array_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

// params viewed as [outer, n, inner] around `axis`.
struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};

AxisView view_around(const Shape &s, int axis) {
  AxisView v;
  for (int i = 0; i < axis; ++i) v.outer *= s[i];
  v.n = s[axis];
  for (int i = axis + 1; i < s.rank(); ++i) v.inner *= s[i];
  return v;
}

// params_shape[:axis] + indices_shape + params_shape[axis+1:], checked against kMaxRank.
Shape gathered_shape(const char *op, const Shape &params, const Shape &indices, int axis) {
  size_t rank = static_cast<size_t>(params.rank() - 1 + indices.rank());
  if (rank > static_cast<size_t>(Shape::kMaxRank))
    fail(Code::kInvalidArgument, op, ": params ", params.to_string(), " with indices ", indices.to_string(),
         " would give a result of rank ", rank, "; kiln supports rank <= ", Shape::kMaxRank);
  std::vector<int64_t> out;
  for (int i = 0; i < axis; ++i) out.push_back(params[i]);
  for (int i = 0; i < indices.rank(); ++i) out.push_back(indices[i]);
  for (int i = axis + 1; i < params.rank(); ++i) out.push_back(params[i]);
  return Shape(out, op);
}

// Calls f(const Index *) with indices' data typed as int32_t or int64_t.
template <typename F>
void with_indices(const Tensor &indices, F &&f) {
  if (indices.dtype() == DType::kInt32)
    f(indices.data<int32_t>());
  else
    f(indices.data<int64_t>());
}

void check_indices_in_range(const char *op, const Tensor &indices, int64_t n, int axis, const Shape &params) {
  with_indices(indices, [&](auto *idx) {
    int64_t bad = kernels::find_out_of_range(idx, indices.num_elements(), n);
    if (bad >= 0)
      fail(Code::kInvalidArgument, op, ": indices[", bad, "] = ", static_cast<int64_t>(idx[bad]),
           " is out of range for axis ", axis, " of params ", params.to_string(),
           "; expected an index in [0, ", n, ")");
  });
}

// The checks gather and scatter_add share: indices dtype and range, axis, result rank.
struct GatherPlan {
  int axis;
  Shape gathered;  // params_shape[:axis] + indices.shape + params_shape[axis+1:]
  AxisView view;
};

GatherPlan plan_gather(const char *op, const Shape &params_shape, const Tensor &indices, int64_t axis) {
  require_dtype(indices, op, "indices", {DType::kInt32, DType::kInt64});
  if (params_shape.rank() == 0)
    fail(Code::kInvalidArgument, op, ": params shape ", params_shape.to_string(),
         " is a scalar; expected rank >= 1");
  GatherPlan plan;
  plan.axis = normalize_axis(axis, params_shape.rank(), op);
  plan.gathered = gathered_shape(op, params_shape, indices.shape(), plan.axis);
  plan.view = view_around(params_shape, plan.axis);
  check_indices_in_range(op, indices, plan.view.n, plan.axis, params_shape);
  return plan;
}

}  // namespace

Tensor gather(const Tensor &params, const Tensor &indices, int64_t axis) {
  require_defined(params, "gather", "params");
  const GatherPlan plan = plan_gather("gather", params.shape(), indices, axis);
  const AxisView &v = plan.view;
  const int a = plan.axis;
  Tensor out = Tensor::empty(params.dtype(), plan.gathered);
  with_indices(indices, [&](auto *idx) {
    kernels::gather(params.raw_data(), v.outer, v.n, v.inner, idx, indices.num_elements(),
                    out.raw_mutable_data(), dtype_size(params.dtype()));
  });
  if (should_record({&params})) {
    Shape ps = params.shape();
    record("gather", {params, indices}, {out}, [indices, ps, a](const Grads &g) {
      return Grads{internal::scatter_add(g[0], indices, ps, a), Tensor()};
    });
  }
  return out;
}

Tensor internal::scatter_add(const Tensor &updates, const Tensor &indices, const Shape &params_shape,
                             int64_t axis) {
  require_float32(updates, "scatter_add", "updates");
  const GatherPlan plan = plan_gather("scatter_add", params_shape, indices, axis);
  const AxisView &v = plan.view;
  const int a = plan.axis;
  if (updates.shape() != plan.gathered)
    fail(Code::kInvalidArgument, "scatter_add: argument 'updates' is ", updates.description(),
         " for indices ", indices.description(), " into ", params_shape.to_string(), "; expected shape ",
         plan.gathered.to_string());
  Tensor out = Tensor::empty(DType::kFloat32, params_shape);
  with_indices(indices, [&](auto *idx) {
    kernels::scatter_add(updates.data<float>(), v.outer, v.n, v.inner, idx, indices.num_elements(),
                         out.mutable_data<float>());
  });
  if (should_record({&updates}))
    record("scatter_add", {updates, indices}, {out}, [indices, a](const Grads &g) {
      return Grads{gather(g[0], indices, a), Tensor()};
    });
  return out;
}

Tensor one_hot(const Tensor &indices, int64_t depth, float on_value, float off_value) {
  require_dtype(indices, "one_hot", "indices", {DType::kInt32, DType::kInt64});
  if (depth < 0)
    fail(Code::kInvalidArgument, "one_hot: depth is ", depth, " for indices ", indices.description(),
         "; expected depth >= 0");
  if (indices.rank() + 1 > Shape::kMaxRank)
    fail(Code::kInvalidArgument, "one_hot: indices ", indices.description(), " would give a result of rank ",
         indices.rank() + 1, "; kiln supports rank <= ", Shape::kMaxRank);
  std::vector<int64_t> dims = indices.shape().to_vector();
  dims.push_back(depth);
  if (nonzero_dims_product(dims.data(), dims.size()) < 0)
    fail(Code::kInvalidArgument, "one_hot: depth ", depth, " for indices ", indices.description(),
         " gives a result of shape ", list_string(dims), ", more than kiln's limit of ", kMaxElements,
         " (2^62) elements");
  const Shape out_shape(dims, "one_hot");
  Tensor out = Tensor::empty(DType::kFloat32, out_shape);
  with_indices(indices, [&](auto *idx) {
    kernels::one_hot(idx, indices.num_elements(), depth, on_value, off_value, out.mutable_data<float>());
  });
  return out;
}

}  // namespace kiln::ops
