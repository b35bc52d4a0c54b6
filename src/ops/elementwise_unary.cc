// Unary elementwise ops and activations, with their gradient rules.
#include <cmath>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "ops/elementwise_internal.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

using kernels::UnaryOp;

namespace {

constexpr std::initializer_list<DType> kFloatOnly = {DType::kFloat32, DType::kBFloat16, DType::kFloat64};

Tensor unary_forward(UnaryOp op, const char *name, const Tensor &x, std::initializer_list<DType> allowed,
                     float alpha = 0.0f, float beta = 0.0f) {
  require_dtype(x, name, "x", allowed);
  Tensor out = Tensor::empty(x.dtype(), x.shape());
  kernels::unary(op, x.dtype(), x.raw_data(), out.raw_mutable_data(), x.num_elements(), alpha, beta);
  return out;
}

bool recordable(const Tensor &x) { return is_floating(x.dtype()) && should_record({&x}); }

// A constant of a gradient rule, in the dtype of the tensor it meets.
Tensor k(double v, const Tensor &like) { return internal::scalar_like(v, like); }
// A bool mask as 1 and 0 of like's dtype.
Tensor mask_like(const Tensor &mask, const Tensor &like) { return cast(mask, like.dtype()); }

// A float32 scalar-broadcast activation parameter must be finite to give finite results.
void require_finite(float v, const char *op, const char *arg) {
  KILN_REQUIRE(std::isfinite(v), op, ": argument '", arg, "' is ", v, "; expected a finite value");
}

// Records op with a backward of the form g -> {g * dydx}, where dydx is built from (x, out).
template <typename F>
Tensor with_grad(const char *name, const Tensor &x, Tensor out, F dydx) {
  if (recordable(x))
    record(name, {x}, {out}, [x, out, dydx](const Grads &g) { return Grads{mul(g[0], dydx(x, out))}; });
  return out;
}

// An integer x's clip bound must be a whole number its dtype holds (TF converts the bound to
// x's dtype, and refuses 2.5 or 2^40 for an int32 x).
void require_integer_bound(const Tensor &x, float v, const char *arg) {
  const double limit = x.dtype() == DType::kInt32 ? 2147483648.0 : 9223372036854775808.0;
  const double d = v;
  KILN_REQUIRE(std::isfinite(d) && std::trunc(d) == d && d >= -limit && d < limit,
               "clip_by_value: argument '", arg, "' is ", v,
               "; expected a whole number in the range of x's dtype ", dtype_name(x.dtype()));
}

}  // namespace

Tensor neg(const Tensor &x) {
  Tensor out = unary_forward(UnaryOp::kNeg, "neg", x, kArithmetic);
  if (recordable(x)) record("neg", {x}, {out}, [](const Grads &g) { return Grads{neg(g[0])}; });
  return out;
}

Tensor abs(const Tensor &x) {
  // TF's rule dy * sign(x): 0 at +-0, NaN at NaN.
  return with_grad("abs", x, unary_forward(UnaryOp::kAbs, "abs", x, kArithmetic),
                   [](const Tensor &v, const Tensor &) { return stop_gradient(sign(v)); });
}

Tensor exp(const Tensor &x) {
  return with_grad("exp", x, unary_forward(UnaryOp::kExp, "exp", x, kFloatOnly),
                   [](const Tensor &, const Tensor &out) { return out; });
}

Tensor log(const Tensor &x) {
  Tensor out = unary_forward(UnaryOp::kLog, "log", x, kFloatOnly);
  if (recordable(x)) record("log", {x}, {out}, [x](const Grads &g) { return Grads{div(g[0], x)}; });
  return out;
}

namespace {
// TF's SqrtGrad and RsqrtGrad give 0 where the incoming gradient is 0, whatever the rule's value
// there (inf at x = 0): where(x > 0, sqrt(x), 0) has gradient 0 at 0, not NaN.
Tensor zero_where_no_gradient(const Tensor &g, const Tensor &value) {
  return where(equal(g, k(0.0, g)), zeros_like(value), value);
}
}  // namespace

Tensor sqrt(const Tensor &x) {
  Tensor out = unary_forward(UnaryOp::kSqrt, "sqrt", x, kFloatOnly);
  if (recordable(x))  // d/dx = 1 / (2 sqrt(x)): TF's (0.5 dy) / y
    record("sqrt", {x}, {out}, [out](const Grads &g) {
      return Grads{zero_where_no_gradient(g[0], div(mul(g[0], k(0.5, out)), out))};
    });
  return out;
}

Tensor rsqrt(const Tensor &x) {
  Tensor out = unary_forward(UnaryOp::kRsqrt, "rsqrt", x, kFloatOnly);
  if (recordable(x))  // d/dx = -x^(-3/2) / 2: TF's -0.5 (dy y) (y y), +inf at -0 as at +0
    record("rsqrt", {x}, {out}, [out](const Grads &g) {
      return Grads{zero_where_no_gradient(g[0], mul(mul(mul(g[0], out), square(out)), k(-0.5, out)))};
    });
  return out;
}

Tensor square(const Tensor &x) {
  return with_grad("square", x, unary_forward(UnaryOp::kSquare, "square", x, kArithmetic),
                   [](const Tensor &v, const Tensor &) { return mul(v, k(2.0, v)); });
}

Tensor tanh(const Tensor &x) {
  return with_grad("tanh", x, unary_forward(UnaryOp::kTanh, "tanh", x, kFloatOnly),
                   [](const Tensor &, const Tensor &out) { return sub(k(1.0, out), square(out)); });
}

Tensor sigmoid(const Tensor &x) {
  return with_grad("sigmoid", x, unary_forward(UnaryOp::kSigmoid, "sigmoid", x, kFloatOnly),
                   [](const Tensor &, const Tensor &out) { return mul(out, sub(k(1.0, out), out)); });
}

Tensor relu(const Tensor &x) {
  Tensor out = unary_forward(UnaryOp::kRelu, "relu", x, kArithmetic);
  if (recordable(x))
    record("relu", {x}, {out}, [x](const Grads &g) { return Grads{internal::relu_grad(x, g[0], 0.0f)}; });
  return out;
}

Tensor leaky_relu(const Tensor &x, float alpha) {
  require_finite(alpha, "leaky_relu", "alpha");
  // TF's LeakyRelu is x > 0 ? x : x * alpha: with alpha 0 a negative x gives -0 and -inf gives
  // NaN, where relu gives +0 (differentiable through where and mul).
  if (alpha == 0.0f && x.defined() && is_floating(x.dtype())) {
    const Tensor zero = zeros_like(x);
    return where(greater(x, zero), x, mul(x, zero));
  }
  Tensor out = unary_forward(UnaryOp::kRelu, "leaky_relu", x, kFloatOnly, alpha);
  if (recordable(x))
    record("leaky_relu", {x}, {out},
           [x, alpha](const Grads &g) { return Grads{internal::relu_grad(x, g[0], alpha)}; });
  return out;
}

Tensor gelu(const Tensor &x, bool approximate) {
  Tensor out = unary_forward(approximate ? UnaryOp::kGeluTanh : UnaryOp::kGeluErf, "gelu", x, kFloatOnly);
  if (recordable(x))
    record("gelu", {x}, {out},
           [x, approximate](const Grads &g) { return Grads{internal::gelu_grad(x, g[0], approximate)}; });
  return out;
}

Tensor softplus(const Tensor &x) {
  return with_grad("softplus", x, unary_forward(UnaryOp::kSoftplus, "softplus", x, kFloatOnly),
                   [](const Tensor &v, const Tensor &) { return sigmoid(v); });
}

Tensor elu(const Tensor &x, float alpha) {
  require_finite(alpha, "elu", "alpha");
  // 1 for x > 0, else y + alpha (alpha e^x) where y = elu(x) < 0, else alpha: with alpha 1 this is
  // TF's EluGrad (y + 1 where y < 0, else 1; 1 at 0 and NaN), with another alpha Keras's
  // where(x > 0, elu(x), alpha * elu(x)) (alpha at 0 and NaN).
  return with_grad("elu", x, unary_forward(UnaryOp::kElu, "elu", x, kFloatOnly, alpha),
                   [alpha](const Tensor &v, const Tensor &out) {
                     const Tensor a = k(alpha, v);
                     return where(greater(v, k(0.0, v)), k(1.0, v),
                                  where(less(out, k(0.0, v)), add(out, a), a));
                   });
}

Tensor swish(const Tensor &x) {
  // d/dx = s + x s (1 - s) = s + out (1 - s), s = sigmoid(x).
  return with_grad("swish", x, unary_forward(UnaryOp::kSwish, "swish", x, kFloatOnly),
                   [](const Tensor &v, const Tensor &out) {
                     const Tensor s = sigmoid(v);
                     return add(s, mul(out, sub(k(1.0, v), s)));
                   });
}

Tensor logical_not(const Tensor &x) {
  return unary_forward(UnaryOp::kLogicalNot, "logical_not", x, {DType::kBool});
}

Tensor clip_by_value(const Tensor &x, float clip_min, float clip_max) {
  // As tf.clip_by_value, maximum(minimum(x, clip_max), clip_min): clip_min everywhere when it
  // exceeds clip_max, NaN everywhere for a NaN bound (TF's minimum and maximum propagate NaN).
  require_dtype(x, "clip_by_value", "x", kArithmetic);
  if (!is_floating(x.dtype())) {
    require_integer_bound(x, clip_min, "clip_value_min");
    require_integer_bound(x, clip_max, "clip_value_max");
  }
  Tensor out = unary_forward(UnaryOp::kClip, "clip_by_value", x, kArithmetic, clip_min, clip_max);
  if (std::isnan(clip_min) || std::isnan(clip_max)) out = fill(x.shape(), NAN, x.dtype());
  // The gradient passes where clip_min <= x <= clip_max.
  return with_grad("clip_by_value", x, out, [clip_min, clip_max](const Tensor &v, const Tensor &) {
    return mask_like(logical_and(greater_equal(v, k(clip_min, v)), less_equal(v, k(clip_max, v))), v);
  });
}

// ---- log1p, expm1, floor, round, sign, sin, cos, relu6, selu (as tf.math / tf.nn) ----

Tensor log1p(const Tensor &x) {
  return with_grad("log1p", x, unary_forward(UnaryOp::kLog1p, "log1p", x, kFloatOnly),
                   [](const Tensor &v, const Tensor &) { return div(k(1.0, v), add(v, k(1.0, v))); });
}

Tensor expm1(const Tensor &x) {
  // d/dx = e^x = out + 1.
  return with_grad("expm1", x, unary_forward(UnaryOp::kExpm1, "expm1", x, kFloatOnly),
                   [](const Tensor &, const Tensor &out) { return add(out, k(1.0, out)); });
}

// floor, round and sign are piecewise constant. As TF: sign's gradient is zeros; floor and round
// have none (not recorded, so tape.gradient gives None for them, and a sum treats them as 0).
Tensor floor(const Tensor &x) { return unary_forward(UnaryOp::kFloor, "floor", x, kFloatOnly); }
Tensor round(const Tensor &x) { return unary_forward(UnaryOp::kRound, "round", x, kArithmetic); }
Tensor sign(const Tensor &x) {
  return with_grad("sign", x, unary_forward(UnaryOp::kSign, "sign", x, kArithmetic),
                   [](const Tensor &v, const Tensor &) { return zeros_like(v); });
}

Tensor sin(const Tensor &x) {
  return with_grad("sin", x, unary_forward(UnaryOp::kSin, "sin", x, kFloatOnly),
                   [](const Tensor &v, const Tensor &) { return cos(v); });
}

Tensor cos(const Tensor &x) {
  return with_grad("cos", x, unary_forward(UnaryOp::kCos, "cos", x, kFloatOnly),
                   [](const Tensor &v, const Tensor &) { return neg(sin(v)); });
}

Tensor relu6(const Tensor &x) {
  // The gradient passes where 0 < x < 6, as TF's Relu6Grad.
  return with_grad("relu6", x, unary_forward(UnaryOp::kRelu6, "relu6", x, kArithmetic),
                   [](const Tensor &v, const Tensor &) {
                     return mask_like(logical_and(greater(v, k(0.0, v)), less(v, k(6.0, v))), v);
                   });
}

Tensor selu(const Tensor &x) {
  // As TF's SeluGrad on y = selu(x): y + scale alpha (scale alpha e^x) where y < 0, else scale
  // (at 0 and NaN too); tf.nn.selu's constants.
  constexpr double kScale = kernels::activation::kSeluScale,
                   kScaleAlpha = kScale * kernels::activation::kSeluAlpha;
  return with_grad("selu", x, unary_forward(UnaryOp::kSelu, "selu", x, kFloatOnly),
                   [](const Tensor &v, const Tensor &out) {
                     return where(less(out, k(0.0, v)), add(out, k(kScaleAlpha, v)), k(kScale, v));
                   });
}

// ---- fused backward ops ----

namespace {
void require_grad_pair(const Tensor &x, const Tensor &dy, const char *op) {
  require_floating(x, op, "x");
  require_dtype(dy, op, "dy", {x.dtype()});
  KILN_REQUIRE(x.shape() == dy.shape(), op, ": x is ", x.description(), " but dy is ", dy.description(),
               "; expected the same shape");
}

Tensor fused_backward(UnaryOp op, const char *name, const Tensor &x, const Tensor &dy, float alpha) {
  require_grad_pair(x, dy, name);
  Tensor dx = Tensor::empty(x.dtype(), x.shape());
  kernels::unary_backward(op, x.dtype(), x.raw_data(), dy.raw_data(), dx.raw_mutable_data(), x.num_elements(),
                          alpha);
  return dx;
}
}  // namespace

Tensor internal::relu_grad(const Tensor &x, const Tensor &dy, float alpha) {
  Tensor dx = fused_backward(UnaryOp::kRelu, "relu_grad", x, dy, alpha);
  if (should_record({&x, &dy}))  // linear in dy; piecewise constant in x (second derivative 0)
    record("relu_grad", {x, dy}, {dx}, [x, alpha](const Grads &g) {
      return Grads{Tensor(), internal::relu_grad(x, g[0], alpha)};
    });
  return dx;
}

Tensor internal::overwritable_or_empty(const Tensor &g) {
  return g.overwritable() ? g : Tensor::empty(g.dtype(), g.shape());
}

Tensor internal::gelu_grad_from_erfc(const Tensor &x, const Tensor &erfc, const Tensor &dy) {
  if (should_record({&x, &dy}) || x.dtype() != DType::kFloat32 || dy.dtype() != DType::kFloat32 ||
      !erfc.defined() || erfc.dtype() != DType::kFloat32 || erfc.shape() != x.shape())
    return gelu_grad(x, dy, false);
  require_grad_pair(x, dy, "gelu_grad");
  Tensor dx = overwritable_or_empty(dy);
  kernels::gelu_erf_backward_from_erfc(x.data<float>(), erfc.data<float>(), dy.data<float>(),
                                       dx.mutable_data<float>(), x.num_elements());
  return dx;
}

Tensor internal::gelu_grad(const Tensor &x, const Tensor &dy, bool approximate) {
  Tensor dx = fused_backward(approximate ? UnaryOp::kGeluTanh : UnaryOp::kGeluErf, "gelu_grad", x, dy, 0.0f);
  if (should_record({&x, &dy}))
    record("gelu_grad", {x, dy}, {dx}, [x, dy, approximate](const Grads &g) {
      const Tensor x2 = square(x);
      Tensor second;  // gelu''(x)
      if (!approximate) {
        // phi(x) (2 - x^2), phi the standard normal density.
        const Tensor phi = mul(exp(mul(x2, k(-0.5, x))), k(kernels::activation::kInvSqrt2Pi, x));
        second = mul(phi, sub(k(2.0, x), x2));
      } else {
        // u = s (x + c x^3), t = tanh(u): (1 - t^2) (u' - x t u'^2 + x u'' / 2).
        const double s = kernels::activation::kSqrt2OverPi, c = kernels::activation::kGeluCubic;
        const Tensor t = tanh(mul(add(x, mul(mul(x2, x), k(c, x))), k(s, x)));
        const Tensor du = mul(add(k(1.0, x), mul(x2, k(3.0 * c, x))), k(s, x));
        const Tensor half_x_ddu = mul(x2, k(3.0 * c * s, x));  // x u'' / 2 = 3 c s x^2
        const Tensor inner = add(sub(du, mul(mul(x, t), square(du))), half_x_ddu);
        second = mul(sub(k(1.0, x), square(t)), inner);
      }
      return Grads{mul(mul(g[0], dy), second), internal::gelu_grad(x, g[0], approximate)};
    });
  return dx;
}

}  // namespace kiln::ops
