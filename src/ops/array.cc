// Shape ops: reshape, expand_dims, squeeze, stop_gradient, transpose,
// broadcast_to, tile, concat, split, slice, stack (and pad_zeros, slice's
// gradient). They move bytes, so they serve every dtype.
#include "kernels/array.h"

#include <algorithm>

#include "core/count.h"
#include "ops/array_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

using internal::dims_string;

namespace {

std::vector<int64_t> strides_of(const Shape &s) { return kernels::contiguous_strides(s.to_vector()); }

char *byte_ptr(const Tensor &t, int64_t elements) {
  return static_cast<char *>(t.raw_mutable_data()) + static_cast<size_t>(elements) * dtype_size(t.dtype());
}
const char *byte_ptr_const(const Tensor &t, int64_t elements) {
  return static_cast<const char *>(t.raw_data()) + static_cast<size_t>(elements) * dtype_size(t.dtype());
}

void require_rank_at_most(size_t rank, const char *op, const std::string &what) {
  if (rank > static_cast<size_t>(Shape::kMaxRank))
    fail(Code::kInvalidArgument, op, ": ", what, " would have rank ", rank,
         "; kiln supports rank <= ", Shape::kMaxRank);
}

// Product of dims [from, to).
int64_t span(const Shape &s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= s[i];
  return n;
}

// Copies an [outer, cols] block between row-major matrices of dst_cols and src_cols
// columns (counted in elements); the caller offsets the pointers to the block.
void copy_columns(char *dst, int64_t dst_cols, const char *src, int64_t src_cols, int64_t outer, int64_t cols,
                  size_t elem_size) {
  kernels::copy_strided(dst, {dst_cols, 1}, src, {src_cols, 1}, {outer, cols}, elem_size);
}

Shape infer_reshape(const Tensor &x, const std::vector<int64_t> &dims) {
  require_rank_at_most(dims.size(), "reshape", "the target shape " + dims_string(dims));
  int infer = -1;
  int64_t known = 1;  // product of the known non-zero dims, checked
  bool has_zero = false;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      if (infer >= 0)
        fail(Code::kInvalidArgument, "reshape: target shape ", dims_string(dims), " for ", x.description(),
             " has more than one -1; expected at most one dimension to infer");
      infer = static_cast<int>(i);
    } else if (dims[i] < 0) {
      fail(Code::kInvalidArgument, "reshape: target shape ", dims_string(dims), " for ", x.description(),
           " has negative dimension ", dims[i], "; expected dims >= 0 or a single -1");
    } else if (dims[i] == 0) {
      has_zero = true;
    } else if (!checked_mul(known, dims[i], &known)) {
      // Even beside a 0 (which makes it empty): its strides would overflow.
      fail(Code::kInvalidArgument, "reshape: target shape ", dims_string(dims), " for ", x.description(),
           " has too many elements: the product of its non-zero dims exceeds kiln's limit of ", kMaxElements,
           " (2^62)");
    }
  }
  const int64_t n = x.num_elements();
  std::vector<int64_t> out = dims;
  if (infer >= 0) {
    if (has_zero || n % known != 0)
      fail(Code::kInvalidArgument, "reshape: cannot infer the -1 in ", dims_string(dims), " for ",
           x.description(), " (", n, " elements); expected the other dims to divide it");
    out[static_cast<size_t>(infer)] = n / known;
  } else if ((has_zero ? 0 : known) != n) {
    fail(Code::kInvalidArgument, "reshape: cannot reshape ", x.description(), " (", n, " elements) to ",
         dims_string(dims), " (", has_zero ? 0 : known, " elements); expected the same element count");
  }
  return Shape(out, "reshape");
}

}  // namespace

Tensor reshape(const Tensor &x, const std::vector<int64_t> &shape) {
  require_defined(x, "reshape", "x");
  Tensor out = x.reshaped(infer_reshape(x, shape));
  if (should_record({&x})) {
    std::vector<int64_t> in = x.shape().to_vector();
    record("reshape", {x}, {out}, [in](const Grads &g) { return Grads{reshape(g[0], in)}; });
  }
  return out;
}

Tensor expand_dims(const Tensor &x, int64_t axis) {
  require_defined(x, "expand_dims", "x");
  const int r = x.rank();
  if (axis < -(r + 1) || axis > r)
    fail(Code::kInvalidArgument, "expand_dims: axis ", axis, " is out of range for ", x.description(),
         "; expected an axis in [", -(r + 1), ", ", r, "]");
  require_rank_at_most(static_cast<size_t>(r) + 1, "expand_dims",
                       "the result of expanding " + x.description());
  std::vector<int64_t> dims = x.shape().to_vector();
  dims.insert(dims.begin() + (axis < 0 ? axis + r + 1 : axis), 1);
  return reshape(x, dims);
}

Tensor squeeze(const Tensor &x, const std::vector<int64_t> &axes) {
  require_defined(x, "squeeze", "x");
  std::vector<char> drop(static_cast<size_t>(x.rank()), 0);
  for (int64_t axis : axes) {
    int a = normalize_axis(axis, x.rank(), "squeeze");
    if (x.shape()[a] != 1)
      fail(Code::kInvalidArgument, "squeeze: cannot squeeze axis ", axis, " of ", x.description(),
           ": its size is ", x.shape()[a], "; expected 1");
    drop[static_cast<size_t>(a)] = 1;
  }
  std::vector<int64_t> dims;
  for (int i = 0; i < x.rank(); ++i)
    if (!(axes.empty() ? x.shape()[i] == 1 : drop[static_cast<size_t>(i)])) dims.push_back(x.shape()[i]);
  return reshape(x, dims);
}

Tensor stop_gradient(const Tensor &x) {
  require_defined(x, "stop_gradient", "x");
  return x.reshaped(x.shape());
}

Tensor transpose(const Tensor &x, const std::vector<int64_t> &perm) {
  require_defined(x, "transpose", "x");
  const int r = x.rank();
  std::vector<int64_t> p(static_cast<size_t>(r));
  if (perm.empty()) {
    for (int i = 0; i < r; ++i) p[static_cast<size_t>(i)] = r - 1 - i;
  } else {
    if (perm.size() != static_cast<size_t>(r))
      fail(Code::kInvalidArgument, "transpose: perm ", dims_string(perm), " has ", perm.size(),
           " entries for ", x.description(), "; expected ", r);
    std::vector<char> seen(static_cast<size_t>(r), 0);
    for (int i = 0; i < r; ++i) {
      int a = normalize_axis(perm[static_cast<size_t>(i)], r, "transpose");
      if (seen[static_cast<size_t>(a)]++)
        fail(Code::kInvalidArgument, "transpose: perm ", dims_string(perm), " for ", x.description(),
             " repeats axis ", a, "; expected a permutation of the axes");
      p[static_cast<size_t>(i)] = a;
    }
  }
  std::vector<int64_t> in_strides = strides_of(x.shape()), dims(p.size()), src(p.size());
  bool identity = true;
  for (size_t i = 0; i < p.size(); ++i) {
    dims[i] = x.shape()[static_cast<int>(p[i])];
    src[i] = in_strides[static_cast<size_t>(p[i])];
    identity = identity && p[i] == static_cast<int64_t>(i);
  }
  Tensor out;
  if (identity) {
    out = x.reshaped(x.shape());
  } else {
    out = Tensor::empty(x.dtype(), Shape(dims));
    kernels::copy_strided(out.raw_mutable_data(), kernels::contiguous_strides(dims), x.raw_data(), src, dims,
                          dtype_size(x.dtype()));
  }
  if (should_record({&x})) {
    std::vector<int64_t> inverse(p.size());
    for (size_t i = 0; i < p.size(); ++i) inverse[static_cast<size_t>(p[i])] = static_cast<int64_t>(i);
    record("transpose", {x}, {out}, [inverse](const Grads &g) { return Grads{transpose(g[0], inverse)}; });
  }
  return out;
}

Tensor broadcast_to(const Tensor &x, const Shape &shape) {
  require_defined(x, "broadcast_to", "x");
  const int r = shape.rank(), lead = r - x.rank();
  if (lead < 0)
    fail(Code::kInvalidArgument, "broadcast_to: cannot broadcast ", x.description(), " to ",
         shape.to_string(), ", which has fewer dims; expected a shape of rank >= ", x.rank());
  std::vector<int64_t> in_strides = strides_of(x.shape()), src(static_cast<size_t>(r), 0);
  for (int i = lead; i < r; ++i) {
    int64_t d = x.shape()[i - lead];
    if (d != shape[i] && d != 1)
      fail(Code::kInvalidArgument, "broadcast_to: cannot broadcast ", x.description(), " to ",
           shape.to_string(), " (dimension ", i, ": ", d, " vs ", shape[i],
           "); expected each dim of x to equal the target's or be 1");
    if (d != 1) src[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(i - lead)];
  }
  Tensor out;
  if (shape == x.shape()) {
    out = x.reshaped(shape);
  } else {
    out = Tensor::empty(x.dtype(), shape);
    std::vector<int64_t> dims = shape.to_vector();
    kernels::copy_strided(out.raw_mutable_data(), kernels::contiguous_strides(dims), x.raw_data(), src, dims,
                          dtype_size(x.dtype()));
  }
  if (should_record({&x})) {
    Shape in = x.shape();
    record("broadcast_to", {x}, {out}, [in](const Grads &g) { return Grads{sum_to_shape(g[0], in)}; });
  }
  return out;
}

namespace {
// Sums the gradient of tile over the copies, one tiled axis at a time (each sum is rank 4).
Tensor tile_grad(Tensor g, const Shape &in, const std::vector<int64_t> &multiples) {
  for (int64_t m : multiples)
    if (m == 0) return zeros(in);
  std::vector<int64_t> cur = g.shape().to_vector();
  for (int k = 0; k < in.rank(); ++k) {
    int64_t m = multiples[static_cast<size_t>(k)];
    if (m == 1) continue;
    int64_t pre = 1, post = 1;
    for (int i = 0; i < k; ++i) pre *= cur[static_cast<size_t>(i)];
    for (int i = k + 1; i < in.rank(); ++i) post *= cur[static_cast<size_t>(i)];
    g = sum(reshape(g, {pre, m, in[k], post}), {1});
    cur[static_cast<size_t>(k)] = in[k];
    g = reshape(g, cur);
  }
  return g;
}
}  // namespace

Tensor tile(const Tensor &x, const std::vector<int64_t> &multiples) {
  require_defined(x, "tile", "x");
  const int r = x.rank();
  if (multiples.size() != static_cast<size_t>(r))
    fail(Code::kInvalidArgument, "tile: multiples ", dims_string(multiples), " has ", multiples.size(),
         " entries for ", x.description(), "; expected one per dim (", r, ")");
  std::vector<int64_t> out_dims, dims, src;
  std::vector<int64_t> in_strides = strides_of(x.shape());
  for (int i = 0; i < r; ++i) {
    int64_t m = multiples[static_cast<size_t>(i)];
    if (m < 0)
      fail(Code::kInvalidArgument, "tile: multiples ", dims_string(multiples), " for ", x.description(),
           " has a negative entry; expected multiples >= 0");
    int64_t d;
    if (!checked_mul(x.shape()[i], m, &d))
      fail(Code::kInvalidArgument, "tile: multiples ", dims_string(multiples), " for ", x.description(),
           " give dimension ", i, " a size of ", x.shape()[i], " x ", m, ", more than kiln's limit of ",
           kMaxElements, " (2^62) elements");
    out_dims.push_back(d);
    // Output dim i seen as [m, d]: the copy index (stride 0) then the source index.
    dims.insert(dims.end(), {m, x.shape()[i]});
    src.insert(src.end(), {0, in_strides[static_cast<size_t>(i)]});
  }
  Tensor out = Tensor::empty(x.dtype(), Shape(out_dims, "tile"));
  kernels::copy_strided(out.raw_mutable_data(), kernels::contiguous_strides(dims), x.raw_data(), src, dims,
                        dtype_size(x.dtype()));
  if (should_record({&x})) {
    Shape in = x.shape();
    record("tile", {x}, {out},
           [in, multiples](const Grads &g) { return Grads{tile_grad(g[0], in, multiples)}; });
  }
  return out;
}

Tensor concat(const std::vector<Tensor> &values, int64_t axis) {
  if (values.empty()) fail(Code::kInvalidArgument, "concat: got an empty list; expected at least one tensor");
  for (size_t i = 0; i < values.size(); ++i) require_defined(values[i], "concat", "values");
  const Tensor &first = values[0];
  if (first.rank() == 0)
    fail(Code::kInvalidArgument, "concat: cannot concatenate scalars (", first.description(),
         "); expected tensors of rank >= 1");
  const int a = normalize_axis(axis, first.rank(), "concat");
  Shape out_shape = first.shape();
  int64_t total = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < values.size(); ++i) {
    const Tensor &v = values[i];
    bool ok = v.dtype() == first.dtype() && v.rank() == first.rank();
    for (int d = 0; ok && d < v.rank(); ++d) ok = d == a || v.shape()[d] == first.shape()[d];
    if (!ok)
      fail(Code::kInvalidArgument, "concat: values[", i, "] is ", v.description(), " but values[0] is ",
           first.description(), "; expected the same dtype and the same dims except on axis ", axis);
    sizes.push_back(v.shape()[a]);
    if (!checked_add(total, v.shape()[a], &total))
      fail(Code::kInvalidArgument, "concat: axis ", axis, " of the result would have more than ",
           kMaxElements, " (2^62) entries (values[", i, "] is ", v.description(), ")");
  }
  out_shape.set_dim(a, total, "concat");
  Tensor out = Tensor::empty(first.dtype(), out_shape);
  const int64_t outer = span(out_shape, 0, a), inner = span(out_shape, a + 1, out_shape.rank());
  int64_t offset = 0;
  for (const Tensor &v : values) {
    int64_t cols = v.shape()[a] * inner;
    copy_columns(byte_ptr(out, offset), out_shape[a] * inner, byte_ptr_const(v, 0), cols, outer, cols,
                 dtype_size(out.dtype()));
    offset += cols;
  }
  if (should_record(values))
    record("concat", values, {out}, [sizes, a](const Grads &g) { return split(g[0], sizes, 0, a); });
  return out;
}

std::vector<Tensor> split(const Tensor &x, const std::vector<int64_t> &sizes, int64_t num_splits,
                          int64_t axis) {
  require_defined(x, "split", "x");
  if (x.rank() == 0)
    fail(Code::kInvalidArgument, "split: cannot split a scalar (", x.description(), "); expected rank >= 1");
  const int a = normalize_axis(axis, x.rank(), "split");
  const int64_t dim = x.shape()[a];
  std::vector<int64_t> parts = sizes;
  if (parts.empty()) {
    if (num_splits < 1 || dim % num_splits != 0)
      fail(Code::kInvalidArgument, "split: cannot split axis ", axis, " of ", x.description(), " into ",
           num_splits, " equal parts; expected a number of parts >= 1 that divides ", dim);
    parts.assign(static_cast<size_t>(num_splits), dim / num_splits);
  } else {
    int64_t known = 0, infer = -1;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i] == -1 && infer < 0) {
        infer = static_cast<int64_t>(i);
      } else if (parts[i] < 0) {
        fail(Code::kInvalidArgument, "split: sizes ", dims_string(sizes), " for ", x.description(),
             " has a negative size; expected sizes >= 0 and at most one -1");
      } else if (!checked_add(known, parts[i], &known)) {
        fail(Code::kInvalidArgument, "split: sizes ", dims_string(sizes), " add up to more than ",
             kMaxElements, " (2^62); expected them to add up to ", dim, ", the size of axis ", axis, " of ",
             x.description());
      }
    }
    if (infer >= 0 && known <= dim) parts[static_cast<size_t>(infer)] = dim - known;
    if ((infer >= 0 && known > dim) || (infer < 0 && known != dim))
      fail(Code::kInvalidArgument, "split: sizes ", dims_string(sizes), " do not add up to ", dim,
           ", the size of axis ", axis, " of ", x.description());
  }
  const int64_t outer = span(x.shape(), 0, a), inner = span(x.shape(), a + 1, x.rank());
  std::vector<Tensor> outs;
  int64_t offset = 0;
  for (int64_t s : parts) {
    Shape shape = x.shape();
    shape.set_dim(a, s, "split");
    Tensor out = Tensor::empty(x.dtype(), shape);
    copy_columns(byte_ptr(out, 0), s * inner, byte_ptr_const(x, offset), dim * inner, outer, s * inner,
                 dtype_size(x.dtype()));
    offset += s * inner;
    outs.push_back(out);
  }
  if (should_record({&x})) record("split", {x}, outs, [a](const Grads &g) { return Grads{concat(g, a)}; });
  return outs;
}

namespace {
// Checks begin/size against shape for `op` and resolves size -1; returns the element offset of begin.
int64_t resolve_window(const char *op, const Tensor &x, const Shape &shape, const std::vector<int64_t> &begin,
                       std::vector<int64_t> &size) {
  const int r = shape.rank();
  if (begin.size() != static_cast<size_t>(r) || size.size() != static_cast<size_t>(r))
    fail(Code::kInvalidArgument, op, ": begin ", dims_string(begin), " and size ", dims_string(size), " for ",
         x.description(), " must have one entry per dim (", r, ")");
  std::vector<int64_t> strides = strides_of(shape);
  int64_t offset = 0;
  for (size_t i = 0; i < size.size(); ++i) {
    int64_t d = shape[static_cast<int>(i)];
    if (size[i] == -1 && begin[i] >= 0 && begin[i] <= d) size[i] = d - begin[i];
    // size > d - begin, not begin + size > d: the sum could overflow and pass.
    if (begin[i] < 0 || size[i] < 0 || begin[i] > d || size[i] > d - begin[i])
      fail(Code::kInvalidArgument, op, ": window begin ", dims_string(begin), " size ", dims_string(size),
           " does not fit in ", shape.to_string(), " at dim ", i,
           "; expected 0 <= begin and begin + size <= ", d);
    offset += begin[i] * strides[i];
  }
  return offset;
}
}  // namespace

Tensor slice(const Tensor &x, const std::vector<int64_t> &begin, const std::vector<int64_t> &size) {
  require_defined(x, "slice", "x");
  std::vector<int64_t> dims = size;
  int64_t offset = resolve_window("slice", x, x.shape(), begin, dims);
  Tensor out = Tensor::empty(x.dtype(), Shape(dims));
  kernels::copy_strided(out.raw_mutable_data(), kernels::contiguous_strides(dims), byte_ptr_const(x, offset),
                        strides_of(x.shape()), dims, dtype_size(x.dtype()));
  if (should_record({&x})) {
    Shape in = x.shape();
    record("slice", {x}, {out},
           [in, begin](const Grads &g) { return Grads{internal::pad_zeros(g[0], begin, in)}; });
  }
  return out;
}

Tensor internal::pad_zeros(const Tensor &x, const std::vector<int64_t> &begin, const Shape &shape) {
  require_defined(x, "pad_zeros", "x");
  std::vector<int64_t> dims = x.shape().to_vector();
  if (x.rank() != shape.rank())
    fail(Code::kInvalidArgument, "pad_zeros: ", x.description(), " does not have the rank of ",
         shape.to_string());
  int64_t offset = resolve_window("pad_zeros", x, shape, begin, dims);
  Tensor out = Tensor::empty(x.dtype(), shape);
  std::fill_n(static_cast<char *>(out.raw_mutable_data()), out.byte_size(), char{0});
  kernels::copy_strided(byte_ptr(out, offset), strides_of(shape), x.raw_data(),
                        kernels::contiguous_strides(dims), dims, dtype_size(x.dtype()));
  if (should_record({&x})) {
    std::vector<int64_t> size = x.shape().to_vector();
    record("pad_zeros", {x}, {out},
           [begin, size](const Grads &g) { return Grads{slice(g[0], begin, size)}; });
  }
  return out;
}

Tensor stack(const std::vector<Tensor> &values, int64_t axis) {
  if (values.empty()) fail(Code::kInvalidArgument, "stack: got an empty list; expected at least one tensor");
  for (const Tensor &v : values) require_defined(v, "stack", "values");
  const int r = values[0].rank();
  if (axis < -(r + 1) || axis > r)
    fail(Code::kInvalidArgument, "stack: axis ", axis, " is out of range for values of ",
         values[0].description(), "; expected an axis in [", -(r + 1), ", ", r, "]");
  for (size_t i = 1; i < values.size(); ++i)
    if (values[i].dtype() != values[0].dtype() || values[i].shape() != values[0].shape())
      fail(Code::kInvalidArgument, "stack: values[", i, "] is ", values[i].description(),
           " but values[0] is ", values[0].description(), "; expected the same dtype and shape");
  require_rank_at_most(static_cast<size_t>(r) + 1, "stack",
                       "the result of stacking " + values[0].description());
  std::vector<int64_t> dims = values[0].shape().to_vector();
  dims.insert(dims.begin() + (axis < 0 ? axis + r + 1 : axis), static_cast<int64_t>(values.size()));
  (void)Shape(dims, "stack");  // checks the result's element count, so the error names stack
  std::vector<Tensor> expanded;
  for (const Tensor &v : values) expanded.push_back(expand_dims(v, axis));
  return concat(expanded, axis < 0 ? axis + r + 1 : axis);
}

}  // namespace kiln::ops
