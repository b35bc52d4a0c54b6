// pad (tf.pad: CONSTANT, REFLECT, SYMMETRIC) and its adjoint. Both are gathers along every axis
// through one index map per axis, so each is the other's gradient and nested tapes work.
#include "core/count.h"
#include "kernels/index.h"
#include "ops/array_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

using Maps = std::vector<std::vector<int64_t>>;

const char *mode_name(PadMode m) {
  switch (m) {
    case PadMode::kConstant:
      return "CONSTANT";
    case PadMode::kReflect:
      return "REFLECT";
    case PadMode::kSymmetric:
      return "SYMMETRIC";
  }
  return "?";
}

// The source position every output position of one axis reads (-1: the constant).
std::vector<int64_t> axis_map(int64_t dim, int64_t before, int64_t after, PadMode mode) {
  std::vector<int64_t> m(static_cast<size_t>(dim + before + after));
  for (size_t i = 0; i < m.size(); ++i) {
    int64_t j = static_cast<int64_t>(i) - before;
    if (j < 0)
      j = mode == PadMode::kConstant ? -1 : mode == PadMode::kReflect ? -j : -j - 1;
    else if (j >= dim)
      j = mode == PadMode::kConstant ? -1 : mode == PadMode::kReflect ? 2 * (dim - 1) - j : 2 * dim - 1 - j;
    m[i] = j;
  }
  return m;
}

Tensor pad_backward(const Tensor &dy, const Maps &maps, const Shape &x_shape);

// x padded through maps into out (allocated by the caller); records pad_backward as its gradient.
Tensor pad_with_maps(const Tensor &x, const Maps &maps, Tensor out, const void *constant) {
  if (out.num_elements() > 0)
    kernels::pad(x.raw_data(), x.shape().to_vector(), maps, constant, dtype_size(x.dtype()),
                 out.raw_mutable_data());
  if (is_floating(x.dtype()) && should_record({&x})) {
    const Shape xs = x.shape();
    record("pad", {x}, {out}, [maps, xs](const Grads &g) { return Grads{pad_backward(g[0], maps, xs)}; });
  }
  return out;
}

// The adjoint of pad_with_maps: sums dy into the source cells the maps read. bfloat16 sums in float32
// and rounds once (the casts carry the gradient).
Tensor pad_backward(const Tensor &dy, const Maps &maps, const Shape &x_shape) {
  require_floating(dy, "pad_grad", "dy");
  if (dy.dtype() == DType::kBFloat16)
    return cast(pad_backward(cast(dy, DType::kFloat32), maps, x_shape), DType::kBFloat16);
  Tensor dx = Tensor::empty(dy.dtype(), x_shape);
  if (dx.num_elements() > 0) {
    if (dy.dtype() == DType::kFloat64)
      kernels::pad_backward(dy.data<double>(), x_shape.to_vector(), maps, dx.mutable_data<double>());
    else
      kernels::pad_backward(dy.data<float>(), x_shape.to_vector(), maps, dx.mutable_data<float>());
  }
  if (should_record({&dy})) {
    const Shape ys = dy.shape();
    record("pad_grad", {dy}, {dx}, [maps, ys](const Grads &g) {
      const float zero = 0.0f;
      const double zero64 = 0.0;
      const void *z = g[0].dtype() == DType::kFloat64 ? static_cast<const void *>(&zero64) : &zero;
      return Grads{pad_with_maps(g[0], maps, Tensor::empty(g[0].dtype(), ys), z)};
    });
  }
  return dx;
}

}  // namespace

Tensor pad(const Tensor &x, const std::vector<int64_t> &paddings, PadMode mode, double constant_value) {
  const char *op = "pad";
  require_defined(x, op, "x");
  if (mode != PadMode::kConstant && mode != PadMode::kReflect && mode != PadMode::kSymmetric)
    fail(Code::kInvalidArgument, op, ": mode ", static_cast<int>(mode),
         " is not a pad mode; expected CONSTANT, ", "REFLECT or SYMMETRIC");
  const int rank = x.rank();
  if (paddings.size() != static_cast<size_t>(2 * rank))
    fail(Code::kInvalidArgument, op, ": paddings ", internal::dims_string(paddings), " for x ",
         x.description(), "; expected ", 2 * rank, " values, [before, after] for each of its ", rank,
         " dims");
  Maps maps;
  std::vector<int64_t> out_dims;
  for (int a = 0; a < rank; ++a) {
    const int64_t dim = x.shape()[a], before = paddings[2 * a], after = paddings[2 * a + 1];
    const int64_t limit = mode == PadMode::kReflect ? dim - 1 : dim;
    if (before < 0 || after < 0 || (mode != PadMode::kConstant && (before > limit || after > limit)))
      fail(Code::kInvalidArgument, op, ": paddings [", before, ", ", after, "] for dim ", a, " of x ",
           x.description(), " in ", mode_name(mode), " mode; expected values >= 0",
           mode == PadMode::kConstant ? std::string()
                                      : std::string(" and <= ") + std::to_string(limit) +
                                            (mode == PadMode::kReflect ? " (dim - 1)" : " (dim)"));
    int64_t n = 0;
    if (!checked_add(dim, before, &n) || !checked_add(n, after, &n))
      fail(Code::kInvalidArgument, op, ": paddings [", before, ", ", after, "] for dim ", a, " of x ",
           x.description(), " overflow kiln's limit of ", kMaxElements, " (2^62) elements");
    out_dims.push_back(n);
  }
  // The result first: the allocator names a size it cannot hold before the maps (one index per
  // output position of each axis) are made. An empty result needs no maps.
  Tensor out = Tensor::empty(x.dtype(), internal::checked_shape(op, out_dims, "the result"));
  for (int a = 0; a < rank; ++a)
    maps.push_back(out.num_elements() > 0 ? axis_map(x.shape()[a], paddings[2 * a], paddings[2 * a + 1], mode)
                                          : std::vector<int64_t>());
  alignas(8) unsigned char constant[8];
  internal::scalar_bytes(op, "constant_values", constant_value, x.dtype(), constant);
  return pad_with_maps(x, maps, std::move(out), constant);
}

}  // namespace kiln::ops
