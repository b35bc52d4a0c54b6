// float64 unary kernels. See kernels/elementwise_f64.h; the float32 versions of each
// formula (kernels/simd_unary.cc) explain the choices.
#include "kernels/elementwise_f64.h"

#include <cmath>

namespace kiln::kernels::f64 {

namespace {

constexpr double kSqrtHalf = 0.70710678118654757;        // sqrt(1/2) rounded to double
constexpr double kSqrtHalfLo = -4.8336466567264567e-17;  // sqrt(1/2) - kSqrtHalf
constexpr double kTwoOverSqrtPi = 1.1283791670955126;
using activation::kGeluCubic;
using activation::kInvSqrt2Pi;
using activation::kSeluAlpha;
using activation::kSeluScale;
using activation::kSqrt2OverPi;

template <typename F>
void map(const double *x, double *y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <typename F>
void map2(const double *x, const double *g, double *y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i], g[i]);
}

// e = exp(-|z|), r = 1 / (1 + e), s = sigmoid(z) without cancellation on either side.
struct Logistic {
  double e, r, s;
};
Logistic logistic(double z) {
  const double e = std::exp(-std::fabs(z));
  const double r = 1.0 / (1.0 + e);
  return {e, r, z >= 0.0 ? r : e * r};
}

double gelu_tanh_arg(double x) { return 2.0 * kSqrt2OverPi * (kGeluCubic * (x * x * x) + x); }

// erfc(-x / sqrt 2) with the argument's rounding error carried to first order below x = -1,
// where it would otherwise cost ~2 t^2 ulp (fma gives the product's error exactly).
double gelu_erfc(double x) {
  const double t = x * -kSqrtHalf;
  if (!(x < -1.0)) return std::erfc(t);
  const double lo = std::fma(x, -kSqrtHalf, -t) + x * -kSqrtHalfLo;
  const double g = std::exp(-(t * t));
  return g == 0.0 ? std::erfc(t) : std::erfc(t) - lo * kTwoOverSqrtPi * g;
}

// To nearest, ties to even, whatever the thread's rounding mode (nearbyint would follow it);
// the sign is x's (-0.3 -> -0). v - floor(v) is exact; for inf it is NaN and inf passes.
double round_half_even(double v) {
  double r = std::floor(v);
  const double frac = v - r;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return std::copysign(r, v);
}

// NaN-propagating lower clamp at 0.
double relu_zero(double v) { return v < 0.0 ? 0.0 : v; }  // -0 and NaN pass, as TF's relu

}  // namespace

void unary(UnaryOp op, const double *x, double *y, int64_t n, double alpha, double beta) {
  switch (op) {
    case UnaryOp::kNeg:
      return map(x, y, n, [](double v) { return -v; });
    case UnaryOp::kAbs:
      return map(x, y, n, [](double v) { return std::fabs(v); });
    case UnaryOp::kSquare:
      return map(x, y, n, [](double v) { return v * v; });
    case UnaryOp::kExp:
      return map(x, y, n, [](double v) { return std::exp(v); });
    case UnaryOp::kLog:
      return map(x, y, n, [](double v) { return std::log(v); });
    case UnaryOp::kLog1p:
      return map(x, y, n, [](double v) { return std::log1p(v); });
    case UnaryOp::kExpm1:
      return map(x, y, n, [](double v) { return std::expm1(v); });
    case UnaryOp::kSin:
      return map(x, y, n, [](double v) { return std::sin(v); });
    case UnaryOp::kCos:
      return map(x, y, n, [](double v) { return std::cos(v); });
    case UnaryOp::kSqrt:
      return map(x, y, n, [](double v) { return std::sqrt(v); });
    case UnaryOp::kRsqrt:
      return map(x, y, n, [](double v) { return 1.0 / std::sqrt(v); });
    case UnaryOp::kTanh:
      return map(x, y, n, [](double v) { return std::tanh(v); });
    case UnaryOp::kSigmoid:
      return map(x, y, n, [](double v) { return logistic(v).s; });
    case UnaryOp::kRelu:
      if (alpha == 0.0) return map(x, y, n, relu_zero);
      return map(x, y, n, [alpha](double v) { return v > 0.0 ? v : alpha * v; });
    case UnaryOp::kRelu6:
      return map(x, y, n, [](double v) { return v > 6.0 ? 6.0 : relu_zero(v); });
    case UnaryOp::kGeluErf:
      return map(x, y, n, [](double v) { return 0.5 * v * gelu_erfc(v); });
    case UnaryOp::kGeluTanh:
      return map(x, y, n, [](double v) { return v * logistic(gelu_tanh_arg(v)).s; });
    case UnaryOp::kSoftplus:
      return map(x, y, n, [](double v) { return (v > 0.0 ? v : 0.0) + std::log1p(std::exp(-std::fabs(v))); });
    case UnaryOp::kElu:
      return map(x, y, n, [alpha](double v) { return v > 0.0 ? v : alpha * std::expm1(v); });
    case UnaryOp::kSelu:
      return map(x, y, n,
                 [](double v) { return v > 0.0 ? kSeluScale * v : kSeluScale * kSeluAlpha * std::expm1(v); });
    case UnaryOp::kSwish:
      return map(x, y, n, [](double v) { return v * logistic(v).s; });
    case UnaryOp::kClip:
      return map(x, y, n,
                 [alpha, beta](double v) {  // maximum(minimum(x, hi), lo), as TF's (see simd_unary.cc)
                   const double t = v < beta ? v : (v != v ? v : beta);
                   return t > alpha ? t : (t != t ? t : alpha);
                 });
    case UnaryOp::kFloor:
      return map(x, y, n, [](double v) { return std::floor(v); });
    case UnaryOp::kRound:
      return map(x, y, n, round_half_even);
    case UnaryOp::kSign:
      // As TF (Eigen's psign): +-0 give +0, NaN gives NaN.
      return map(x, y, n, [](double v) { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : std::fabs(v)); });
    case UnaryOp::kLogicalNot:
      break;
  }
}

void unary_backward(UnaryOp op, const double *x, const double *dy, double *dx, int64_t n, double alpha) {
  switch (op) {
    case UnaryOp::kRelu:
      return map2(x, dy, dx, n,
                  [alpha](double v, double g) { return v > 0.0 ? g : (alpha == 0.0 ? 0.0 : alpha * g); });
    case UnaryOp::kGeluErf:
      return map2(x, dy, dx, n, [](double v, double g) {
        const double cdf = 0.5 * gelu_erfc(v);
        const double pdf = std::exp(-0.5 * (v * v));
        return g * (v * kInvSqrt2Pi * pdf + cdf);
      });
    case UnaryOp::kGeluTanh:
      return map2(x, dy, dx, n, [](double v, double g) {
        const Logistic p = logistic(gelu_tanh_arg(v));
        const double ds = p.e * p.r * p.r;
        const double dz = 2.0 * kSqrt2OverPi * (3.0 * kGeluCubic * (v * v) + 1.0);
        return g * (p.s + (ds == 0.0 ? 0.0 : v * ds * dz));
      });
    default:
      break;
  }
}

}  // namespace kiln::kernels::f64
