// gather_nd, scatter_nd, tensor_scatter_nd_add and boolean_mask: each flattens its nd indices (or
// mask) into row offsets and composes gather / scatter_add and reshape, whose gradient rules then
// give theirs (gather_nd's is scatter_nd's, and the other way round), nested tapes included.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/index.h"
#include "ops/array_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

namespace {

std::vector<int64_t> dims_of(const Shape &s, int begin, int end) {
  std::vector<int64_t> d;
  for (int i = begin; i < end; ++i) d.push_back(s[i]);
  return d;
}

std::vector<int64_t> join(std::vector<int64_t> a, const std::vector<int64_t> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

int64_t product(const std::vector<int64_t> &d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

// int64 row offsets [count] of indices [..., K] into `dims` (K of them), checked in range.
Tensor row_offsets(const char *op, const Tensor &indices, const std::vector<int64_t> &dims,
                   const char *target) {
  const int k = static_cast<int>(dims.size());
  const int64_t count = k == 0 ? 0 : indices.num_elements() / k;
  Tensor out = Tensor::empty(DType::kInt64, Shape{count});
  int64_t bad = -1;
  if (indices.dtype() == DType::kInt32)
    bad = kernels::nd_offsets(indices.data<int32_t>(), count, k, dims.data(), out.mutable_data<int64_t>());
  else
    bad = kernels::nd_offsets(indices.data<int64_t>(), count, k, dims.data(), out.mutable_data<int64_t>());
  if (bad >= 0) {
    const int64_t v =
        indices.dtype() == DType::kInt32 ? indices.data<int32_t>()[bad] : indices.data<int64_t>()[bad];
    fail(Code::kInvalidArgument, op, ": indices ", indices.description(), " hold ", v, " at flat position ",
         bad, ", out of range for dim ", bad % k, " of ", target, " ", internal::dims_string(dims),
         "; expected [0, ", dims[static_cast<size_t>(bad % k)], ")");
  }
  return out;
}

// Checks nd indices: int32/int64, rank >= 1, last dim K in [1, max_k].
int nd_depth(const char *op, const Tensor &indices, int max_k, const std::string &target) {
  require_dtype(indices, op, "indices", {DType::kInt32, DType::kInt64});
  if (indices.rank() < 1)
    fail(Code::kInvalidArgument, op, ": indices ", indices.description(),
         " is a scalar; expected rank >= 1 [..., K]");
  const int64_t k = indices.shape()[indices.rank() - 1];
  if (k < 1 || k > max_k)
    fail(Code::kInvalidArgument, op, ": indices ", indices.description(), " have K = ", k, " (last dim) for ",
         target, "; expected 1 <= K <= ", max_k);
  return static_cast<int>(k);
}

// scatter_nd into `shape`, errors naming op.
Tensor scatter_nd_into(const char *op, const Tensor &indices, const Tensor &updates, const Shape &shape) {
  require_dtype(updates, op, "updates", kArithmetic);
  const int k = nd_depth(op, indices, shape.rank(), "shape " + shape.to_string());
  const std::vector<int64_t> lead = dims_of(indices.shape(), 0, indices.rank() - 1);
  const std::vector<int64_t> rest = dims_of(shape, k, shape.rank());
  const std::vector<int64_t> want = join(lead, rest);
  if (updates.shape().to_vector() != want)
    fail(Code::kInvalidArgument, op, ": updates ", updates.description(), " for indices ",
         indices.description(), " into shape ", shape.to_string(), "; expected updates of shape ",
         internal::dims_string(want), " (indices.shape[:-1] + shape[K:])");
  const std::vector<int64_t> target = dims_of(shape, 0, k);
  const Tensor rows = row_offsets(op, indices, target, "shape");
  const Tensor flat_updates = reshape(updates, join({rows.num_elements()}, rest));
  const Tensor out = internal::scatter_add(flat_updates, rows, Shape(join({product(target)}, rest)), 0);
  return reshape(out, shape.to_vector());
}

}  // namespace

Tensor gather_nd(const Tensor &params, const Tensor &indices, int64_t batch_dims) {
  const char *op = "gather_nd";
  require_defined(params, op, "params");
  require_dtype(indices, op, "indices", {DType::kInt32, DType::kInt64});
  const Shape &ps = params.shape(), &is = indices.shape();
  if (batch_dims < 0 || batch_dims >= std::min(ps.rank(), is.rank()))
    fail(Code::kInvalidArgument, op, ": batch_dims ", batch_dims, " with params ", params.description(),
         " and indices ", indices.description(), "; expected 0 <= batch_dims < min(ranks)");
  const int b = static_cast<int>(batch_dims);
  for (int i = 0; i < b; ++i)
    if (ps[i] != is[i])
      fail(Code::kInvalidArgument, op, ": params ", params.description(), " and indices ",
           indices.description(), " differ in batch dim ", i, "; expected the first ", b,
           " dims to be equal");
  const int k = nd_depth(op, indices, ps.rank() - b, "params " + ps.to_string());
  const std::vector<int64_t> rest = dims_of(ps, b + k, ps.rank());
  const std::vector<int64_t> out_dims = join(dims_of(is, 0, is.rank() - 1), rest);
  internal::checked_shape(op, out_dims, "the result");
  const std::vector<int64_t> target = dims_of(ps, b, b + k);
  const Tensor rows = row_offsets(op, indices, target, "params dims");
  const int64_t cells = product(target);
  Tensor g;
  if (b == 0) {
    g = gather(reshape(params, join({cells}, rest)), rows, 0, 0);
  } else {
    const int64_t batch = product(dims_of(ps, 0, b));
    const int64_t per_batch = batch == 0 ? 0 : rows.num_elements() / batch;
    g = gather(reshape(params, join({batch, cells}, rest)), rows.reshaped(Shape{batch, per_batch}), 1, 1);
  }
  return reshape(g, out_dims);
}

Tensor scatter_nd(const Tensor &indices, const Tensor &updates, const Shape &shape) {
  return scatter_nd_into("scatter_nd", indices, updates, shape);
}

Tensor tensor_scatter_nd_add(const Tensor &tensor, const Tensor &indices, const Tensor &updates) {
  const char *op = "tensor_scatter_nd_add";
  require_dtype(tensor, op, "tensor", kArithmetic);
  require_same_dtype(tensor, updates, op);
  return add(tensor, scatter_nd_into(op, indices, updates, tensor.shape()));
}

Tensor boolean_mask(const Tensor &tensor, const Tensor &mask, int64_t axis) {
  const char *op = "boolean_mask";
  require_defined(tensor, op, "tensor");
  require_dtype(mask, op, "mask", {DType::kBool});
  const Shape &ts = tensor.shape(), &ms = mask.shape();
  const int k = ms.rank();
  if (k < 1)
    fail(Code::kInvalidArgument, op, ": mask ", mask.description(), " is a scalar; expected rank >= 1");
  const int64_t a = axis < 0 ? axis + ts.rank() : axis;
  if (a < 0 || a + k > ts.rank())
    fail(Code::kInvalidArgument, op, ": axis ", axis, " with mask ", mask.description(),
         " does not fit tensor ", tensor.description(), "; expected 0 <= axis <= rank(tensor) - rank(mask)");
  const int ax = static_cast<int>(a);
  if (dims_of(ts, ax, ax + k) != ms.to_vector())
    fail(Code::kInvalidArgument, op, ": mask ", mask.description(), " does not match dims ", ax, " to ",
         ax + k - 1, " of tensor ", tensor.description(), "; expected the same dims");
  const int64_t n = mask.num_elements();
  Tensor all = Tensor::empty(DType::kInt64, Shape{n});
  const int64_t count = kernels::true_positions(mask.data<uint8_t>(), n, all.mutable_data<int64_t>());
  Tensor positions = Tensor::empty(DType::kInt64, Shape{count});
  if (count > 0) std::memcpy(positions.raw_mutable_data(), all.raw_data(), static_cast<size_t>(count) * 8);
  const std::vector<int64_t> flat = join(join(dims_of(ts, 0, ax), {n}), dims_of(ts, ax + k, ts.rank()));
  return gather(reshape(tensor, flat), positions, ax, 0);
}

}  // namespace kiln::ops
