// Binary elementwise ops: arithmetic, comparison and logical, with NumPy broadcasting.
#include "kernels/elementwise.h"

#include <utility>

#include "core/error.h"
#include "ops/elementwise_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

using kernels::BinaryOp;

Tensor internal::reduce_to(const Tensor &g, const Shape &shape) {
  return g.shape() == shape ? g : sum_to_shape(g, shape);
}

Tensor internal::scalar_like(double value, const Tensor &like) { return fill(Shape{}, value, like.dtype()); }

namespace {

// Validates, broadcasts and runs a binary kernel (no recording). Output dtype is a's, or
// bool for comparisons and logical ops.
Tensor binary_forward(BinaryOp op, const char *name, const Tensor &a, const Tensor &b,
                      std::initializer_list<DType> allowed) {
  require_same_dtype(a, b, name);
  require_dtype(a, name, "a", allowed);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(kernels::binary_writes_bool(op) ? DType::kBool : a.dtype(), out_shape);
  kernels::binary(op, a.dtype(), a.raw_data(), a.shape(), b.raw_data(), b.shape(), out.raw_mutable_data(),
                  out_shape);
  return out;
}

constexpr std::initializer_list<DType> kFloating = {DType::kFloat32, DType::kBFloat16, DType::kFloat64};
constexpr std::initializer_list<DType> kComparable = {DType::kFloat32, DType::kBFloat16, DType::kFloat64,
                                                      DType::kInt32,   DType::kInt64,    DType::kUInt8,
                                                      DType::kBool};

bool recordable(const Tensor &a, const Tensor &b) {
  return is_floating(a.dtype()) && should_record({&a, &b});
}

// Which inputs some tape can differentiate with respect to (TF's skip_input_indices): a gradient
// rule computes only those, so a constant operand (a scale, a mask) costs no backward pass. Neither
// for integer ops; the op is recorded when either is (recordable's test, asked once per input).
struct Needed {
  bool a, b;
  bool any() const { return a || b; }
};
Needed needed(const Tensor &a, const Tensor &b) {
  if (!is_floating(a.dtype())) return {false, false};
  return {should_record({&a}), should_record({&b})};
}

// maximum / minimum: the gradient goes to the side that was picked, a on ties (as in TensorFlow).
Tensor extremum(BinaryOp op, const char *name, const Tensor &a, const Tensor &b) {
  Tensor out = binary_forward(op, name, a, b, kArithmetic);
  if (recordable(a, b))
    record(name, {a, b}, {out}, [op, a, b](const Grads &g) {
      const Tensor picked_a = op == BinaryOp::kMaximum ? greater_equal(a, b) : less_equal(a, b);
      const Tensor ga = mul(g[0], cast(picked_a, a.dtype()));
      return Grads{internal::reduce_to(ga, a.shape()), internal::reduce_to(sub(g[0], ga), b.shape())};
    });
  return out;
}

}  // namespace

Tensor add(const Tensor &a, const Tensor &b) {
  Tensor out = binary_forward(BinaryOp::kAdd, "add", a, b, kArithmetic);
  if (const Needed need = needed(a, b); need.any())
    record("add", {a, b}, {out}, [as = a.shape(), bs = b.shape(), need](const Grads &g) {
      return Grads{need.a ? internal::reduce_to(g[0], as) : Tensor(),
                   need.b ? internal::reduce_to(g[0], bs) : Tensor()};
    });
  return out;
}

Tensor sub(const Tensor &a, const Tensor &b) {
  Tensor out = binary_forward(BinaryOp::kSub, "sub", a, b, kArithmetic);
  if (const Needed need = needed(a, b); need.any())
    record("sub", {a, b}, {out}, [as = a.shape(), bs = b.shape(), need](const Grads &g) {
      return Grads{need.a ? internal::reduce_to(g[0], as) : Tensor(),
                   need.b ? internal::reduce_to(neg(g[0]), bs) : Tensor()};
    });
  return out;
}

Tensor mul(const Tensor &a, const Tensor &b) {
  Tensor out = binary_forward(BinaryOp::kMul, "mul", a, b, kArithmetic);
  if (const Needed need = needed(a, b); need.any()) {
    // Each side keeps the other only when its own gradient is wanted.
    record("mul", {a, b}, {out},
           [as = a.shape(), bs = b.shape(), sa = need.b ? a : Tensor(),
            sb = need.a ? b : Tensor()](const Grads &g) {
             return Grads{sb.defined() ? internal::reduce_to(mul(g[0], sb), as) : Tensor(),
                          sa.defined() ? internal::reduce_to(mul(g[0], sa), bs) : Tensor()};
           });
  }
  return out;
}

Tensor div(const Tensor &a, const Tensor &b) {
  // As TF: an integer division by zero is an error, not a value (checked before any work).
  if ((b.dtype() == DType::kInt32 || b.dtype() == DType::kInt64) && a.dtype() == b.dtype() &&
      kernels::contains_zero(b.dtype(), b.raw_data(), b.num_elements()))
    fail(Code::kInvalidArgument, "div: integer division by zero (divisor ", b.shape().to_string(), " ",
         dtype_name(b.dtype()), " holds a 0)");
  Tensor out = binary_forward(BinaryOp::kDiv, "div", a, b, kArithmetic);
  if (const Needed need = needed(a, b); need.any()) {
    // d/da = g / b; d/db = -g a / b^2 = -(g / b) * out.
    record("div", {a, b}, {out}, [as = a.shape(), b, saved = need.b ? out : Tensor(), need](const Grads &g) {
      const Tensor g_over_b = div(g[0], b);
      return Grads{need.a ? internal::reduce_to(g_over_b, as) : Tensor(),
                   need.b ? internal::reduce_to(neg(mul(g_over_b, saved)), b.shape()) : Tensor()};
    });
  }
  return out;
}

namespace {

// Integer truediv: both sides widened to `to`, then divided. When the widened a already has the
// output's shape, the quotient is written over it (its buffer is this call's alone, and the
// kernels read each element before writing it): one floating buffer at the peak instead of two,
// which for x_train / 255 over Fashion-MNIST is 188 MB. Integers are never differentiable, so
// nothing is recorded either way.
Tensor widened_div(const Tensor &a, const Tensor &b, DType to) {
  const Tensor wa = cast(a, to), wb = cast(b, to);
  if (wa.shape() != broadcast_shapes(a.shape(), b.shape(), "truediv")) return div(wa, wb);
  kernels::binary(BinaryOp::kDiv, to, wa.raw_data(), wa.shape(), wb.raw_data(), wb.shape(),
                  wa.raw_mutable_data(), wa.shape());
  return wa;
}

}  // namespace

Tensor truediv(const Tensor &a, const Tensor &b) {
  require_same_dtype(a, b, "truediv");
  // As TF: int32 and int64 divide in float64 (exact for every int32), 8-bit integers in float32.
  switch (a.dtype()) {
    case DType::kInt32:
    case DType::kInt64:
      return widened_div(a, b, DType::kFloat64);
    case DType::kUInt8:
      return widened_div(a, b, DType::kFloat32);
    default:
      require_dtype(
          a, "truediv", "a",
          {DType::kFloat32, DType::kBFloat16, DType::kFloat64, DType::kInt32, DType::kInt64, DType::kUInt8});
      return div(a, b);
  }
}

Tensor maximum(const Tensor &a, const Tensor &b) { return extremum(BinaryOp::kMaximum, "maximum", a, b); }
Tensor minimum(const Tensor &a, const Tensor &b) { return extremum(BinaryOp::kMinimum, "minimum", a, b); }

Tensor clip_by_value(const Tensor &x, const Tensor &clip_min, const Tensor &clip_max) {
  // tf.clip_by_value with tensor bounds: minimum(x, clip_max), then maximum(that, clip_min), with
  // their NaN propagation and their gradients (which reach the bounds too). Each bound has x's
  // dtype and broadcasts to x's shape; the result keeps x's shape, as TF's merge_with asserts.
  require_dtype(x, "clip_by_value", "x", kArithmetic);
  const std::pair<const Tensor *, const char *> bounds[] = {{&clip_min, "clip_value_min"},
                                                            {&clip_max, "clip_value_max"}};
  for (const auto &[b, arg] : bounds) {
    require_defined(*b, "clip_by_value", arg);
    KILN_REQUIRE(b->dtype() == x.dtype(), "clip_by_value: argument '", arg, "' is ", b->description(),
                 "; expected x's dtype ", dtype_name(x.dtype()));
  }
  const Shape s = broadcast_shapes(broadcast_shapes(x.shape(), clip_max.shape(), "clip_by_value"),
                                   clip_min.shape(), "clip_by_value");
  KILN_REQUIRE(s == x.shape(), "clip_by_value: bounds ", clip_min.description(), " and ",
               clip_max.description(), " broadcast x ", x.description(), " to shape ", s.to_string(),
               "; expected bounds that broadcast to x's shape");
  return maximum(minimum(x, clip_max), clip_min);
}

Tensor pow(const Tensor &a, const Tensor &b) {
  // As TF: integers raise by repeated multiplication (wrapping), and a negative integer
  // exponent is an error, not a value (checked before any work).
  // An empty result runs no kernel, as TF's BinaryOp returns before it.
  if ((b.dtype() == DType::kInt32 || b.dtype() == DType::kInt64) && a.dtype() == b.dtype() &&
      a.num_elements() > 0 && kernels::contains_negative(b.dtype(), b.raw_data(), b.num_elements()))
    fail(Code::kInvalidArgument, "pow: integers to negative integer powers are not allowed (the exponent ",
         b.description(), " holds a negative value)");
  Tensor out = binary_forward(BinaryOp::kPow, "pow", a, b, kArithmetic);
  if (recordable(a, b))
    // d/da = g b a^(b-1); d/db = g out log(a), taken as 0 where a <= 0 (log undefined there).
    record("pow", {a, b}, {out}, [a, b, out](const Grads &g) {
      const Tensor one = internal::scalar_like(1.0, a);
      const Tensor ga = mul(g[0], mul(b, pow(a, sub(b, one))));
      const Tensor safe_a = where(greater(a, internal::scalar_like(0.0, a)), a, one);
      const Tensor gb = mul(g[0], mul(out, log(safe_a)));
      return Grads{internal::reduce_to(ga, a.shape()), internal::reduce_to(gb, b.shape())};
    });
  return out;
}

Tensor equal(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kEqual, "equal", a, b, kComparable);
}
Tensor not_equal(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kNotEqual, "not_equal", a, b, kComparable);
}
Tensor greater(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kGreater, "greater", a, b, kComparable);
}
Tensor greater_equal(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kGreaterEqual, "greater_equal", a, b, kComparable);
}
Tensor less(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kLess, "less", a, b, kComparable);
}
Tensor less_equal(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kLessEqual, "less_equal", a, b, kComparable);
}

Tensor logical_and(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kLogicalAnd, "logical_and", a, b, {DType::kBool});
}
Tensor logical_or(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kLogicalOr, "logical_or", a, b, {DType::kBool});
}
Tensor logical_xor(const Tensor &a, const Tensor &b) {
  return binary_forward(BinaryOp::kLogicalXor, "logical_xor", a, b, {DType::kBool});
}

}  // namespace kiln::ops
