// Unary elementwise kernels and the fused backward of relu and gelu.
#include <cmath>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_loops.h"
#include "kernels/engine.h"

namespace kiln::kernels {

namespace {

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kGeluCubic = 0.044715f;

inline float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

template <typename T>
inline T wrap_neg(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(std::make_unsigned_t<T>(0) - static_cast<std::make_unsigned_t<T>>(v));
  else
    return -v;
}

// Same loop for every op: below the threshold one plain pass, above it one chunk per thread.
template <typename T, typename F>
void map(const void *x_raw, void *y_raw, int64_t n, F f) {
  const T *x = static_cast<const T *>(x_raw);
  T *y = static_cast<T *>(y_raw);
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = f(x[i]);
  });
}

// Neg, abs and square, the ops defined for integers too (wrapping on overflow).
template <typename T>
bool map_integral_safe(UnaryOp op, const void *x, void *y, int64_t n) {
  using U =
      typename std::conditional_t<std::is_integral_v<T>, std::make_unsigned<T>, std::common_type<T>>::type;
  switch (op) {
    case UnaryOp::kNeg:
      map<T>(x, y, n, [](T v) { return wrap_neg(v); });
      return true;
    case UnaryOp::kAbs:
      map<T>(x, y, n, [](T v) { return v < 0 ? wrap_neg(v) : v; });
      return true;
    case UnaryOp::kSquare:
      map<T>(x, y, n, [](T v) { return static_cast<T>(static_cast<U>(v) * static_cast<U>(v)); });
      return true;
    default:
      return false;
  }
}

void loop_float(UnaryOp op, const void *x, void *y, int64_t n, float alpha, float beta) {
  if (map_integral_safe<float>(op, x, y, n)) return;
  switch (op) {
    case UnaryOp::kExp:
      return map<float>(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::kLog:
      return map<float>(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::kSqrt:
      return map<float>(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::kRsqrt:
      return map<float>(x, y, n, [](float v) { return 1.0f / std::sqrt(v); });
    case UnaryOp::kTanh:
      return map<float>(x, y, n, [](float v) { return std::tanh(v); });
    case UnaryOp::kSigmoid:
      return map<float>(x, y, n, [](float v) { return sigmoid(v); });
    case UnaryOp::kRelu:
      return map<float>(x, y, n, [alpha](float v) { return v > 0.0f ? v : alpha * v; });
    case UnaryOp::kGeluErf:
      return map<float>(x, y, n, [](float v) { return 0.5f * v * (1.0f + std::erf(v * kSqrtHalf)); });
    case UnaryOp::kGeluTanh:
      return map<float>(x, y, n, [](float v) {
        return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v)));
      });
    case UnaryOp::kSoftplus:
      // log(1 + e^x) without overflow for large |x|.
      return map<float>(x, y, n,
                        [](float v) { return std::fmax(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))); });
    case UnaryOp::kElu:
      return map<float>(x, y, n, [alpha](float v) { return v > 0.0f ? v : alpha * std::expm1(v); });
    case UnaryOp::kSwish:
      return map<float>(x, y, n, [](float v) { return v * sigmoid(v); });
    case UnaryOp::kClip:
      // NaN stays NaN: both comparisons are false.
      return map<float>(x, y, n,
                        [alpha, beta](float v) { return v < alpha ? alpha : (v > beta ? beta : v); });
    default:
      break;
  }
  fail(Code::kInternal, "elementwise unary kernel: op ", static_cast<int>(op), " has no float32 kernel");
}

// The oneDNN algorithm and (alpha, beta) for op; false when oneDNN has none.
bool eltwise_algorithm(UnaryOp op, float alpha, float beta, dnnl::algorithm *alg, float *a, float *b) {
  using A = dnnl::algorithm;
  *a = 0.0f;
  *b = 0.0f;
  switch (op) {
    case UnaryOp::kNeg:
      *alg = A::eltwise_linear, *a = -1.0f;
      return true;
    case UnaryOp::kAbs:
      *alg = A::eltwise_abs;
      return true;
    case UnaryOp::kSquare:
      *alg = A::eltwise_square;
      return true;
    case UnaryOp::kExp:
      *alg = A::eltwise_exp;
      return true;
    case UnaryOp::kLog:
      *alg = A::eltwise_log;
      return true;
    case UnaryOp::kSqrt:
      *alg = A::eltwise_sqrt;
      return true;
    case UnaryOp::kRsqrt:
      *alg = A::eltwise_pow, *a = 1.0f, *b = -0.5f;
      return true;
    case UnaryOp::kTanh:
      *alg = A::eltwise_tanh;
      return true;
    case UnaryOp::kSigmoid:
      *alg = A::eltwise_logistic;
      return true;
    case UnaryOp::kRelu:
      *alg = A::eltwise_relu, *a = alpha;
      return true;
    case UnaryOp::kGeluErf:
      *alg = A::eltwise_gelu_erf;
      return true;
    case UnaryOp::kGeluTanh:
      *alg = A::eltwise_gelu_tanh;
      return true;
    case UnaryOp::kSoftplus:
      *alg = A::eltwise_soft_relu;
      return true;
    case UnaryOp::kElu:
      *alg = A::eltwise_elu, *a = alpha;
      return true;
    case UnaryOp::kSwish:
      *alg = A::eltwise_swish, *a = 1.0f;
      return true;
    case UnaryOp::kClip:
      *alg = A::eltwise_clip, *a = alpha, *b = beta;
      return true;
    default:
      return false;
  }
}

PrimitiveKey eltwise_key(PrimitiveKind kind, dnnl::algorithm alg, float a, float b, int64_t n) {
  PrimitiveKey key(kind);
  key.add(static_cast<int64_t>(alg)).add_bits(a).add_bits(b).add(n);
  return key;
}

dnnl::eltwise_forward::primitive_desc eltwise_forward_pd(dnnl::algorithm alg, float a, float b, int64_t n,
                                                         dnnl::prop_kind prop) {
  dnnl::eltwise_forward::desc d(prop, alg, plain_f32_desc(Shape{n}), a, b);
  return dnnl::eltwise_forward::primitive_desc(d, user_scratchpad_attr(), engine());
}

bool onednn_unary(UnaryOp op, const void *x, void *y, int64_t n, float alpha, float beta) {
  dnnl::algorithm alg;
  float a, b;
  if (!eltwise_algorithm(op, alpha, beta, &alg, &a, &b)) return false;
  run_cached(eltwise_key(PrimitiveKind::kEltwiseForward, alg, a, b, n),
             [&] {
               return dnnl::primitive(dnnl::eltwise_forward(
                   eltwise_forward_pd(alg, a, b, n, dnnl::prop_kind::forward_inference)));
             },
             {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  return true;
}

}  // namespace

void unary(UnaryOp op, DType dtype, const void *x, void *y, int64_t n, float alpha, float beta) {
  if (n <= 0) return;
  switch (dtype) {
    case DType::kFloat32:
      if (n >= kElementwiseLargeThreshold && onednn_unary(op, x, y, n, alpha, beta)) return;
      return loop_float(op, x, y, n, alpha, beta);
    case DType::kInt32:
      if (map_integral_safe<int32_t>(op, x, y, n)) return;
      break;
    case DType::kInt64:
      if (map_integral_safe<int64_t>(op, x, y, n)) return;
      break;
    case DType::kBool:
      if (op == UnaryOp::kLogicalNot)
        return map<uint8_t>(x, y, n, [](uint8_t v) -> uint8_t { return v == 0; });
      break;
    default:
      break;
  }
  fail(Code::kInternal, "elementwise unary kernel: op ", static_cast<int>(op), " has no ", dtype_name(dtype),
       " kernel");
}

void unary_backward(UnaryOp op, const float *x, const float *dy, float *dx, int64_t n, float alpha) {
  if (n <= 0) return;
  dnnl::algorithm alg;
  float a, b;
  if (!eltwise_algorithm(op, alpha, 0.0f, &alg, &a, &b) ||
      (op != UnaryOp::kRelu && op != UnaryOp::kGeluErf && op != UnaryOp::kGeluTanh))
    fail(Code::kInternal, "elementwise unary_backward kernel: op ", static_cast<int>(op), " has no kernel");
  if (n >= kElementwiseLargeThreshold) {
    run_cached(eltwise_key(PrimitiveKind::kEltwiseBackward, alg, a, b, n),
               [&] {
                 auto fwd = eltwise_forward_pd(alg, a, b, n, dnnl::prop_kind::forward_training);
                 const auto md = plain_f32_desc(Shape{n});
                 dnnl::eltwise_backward::desc d(alg, md, md, a, b);
                 return dnnl::primitive(dnnl::eltwise_backward(
                     dnnl::eltwise_backward::primitive_desc(d, user_scratchpad_attr(), engine(), fwd)));
               },
               {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float d;
    if (op == UnaryOp::kRelu) {
      d = v > 0.0f ? 1.0f : alpha;
    } else if (op == UnaryOp::kGeluErf) {
      d = 0.5f * (1.0f + std::erf(v * kSqrtHalf)) + v * kInvSqrt2Pi * std::exp(-0.5f * v * v);
    } else {
      const float t = std::tanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v));
      d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
    }
    dx[i] = dy[i] * d;
  }
}

}  // namespace kiln::kernels
