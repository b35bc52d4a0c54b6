// Unary elementwise kernels and the fused backward of relu and gelu.
//
// Float32 runs kiln's own vector loops (kernels/simd.h) at every size, below and above
// the threading threshold alike; only the split among threads differs.
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_loops.h"
#include "kernels/simd.h"

namespace kiln::kernels {

namespace {

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
  using U = std::make_unsigned_t<T>;
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

}  // namespace

void unary(UnaryOp op, DType dtype, const void *x, void *y, int64_t n, float alpha, float beta) {
  if (n <= 0) return;
  switch (dtype) {
    case DType::kFloat32:
      if (!simd::has_unary_f32(op)) break;
      {
        const float *xf = static_cast<const float *>(x);
        float *yf = static_cast<float *>(y);
        parallel_chunks(n, [&](int64_t lo, int64_t hi) { simd::unary_f32(op, xf + lo, yf + lo, hi - lo, alpha, beta); });
      }
      return;
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
  if (op != UnaryOp::kRelu && op != UnaryOp::kGeluErf && op != UnaryOp::kGeluTanh)
    fail(Code::kInternal, "elementwise unary_backward kernel: op ", static_cast<int>(op), " has no kernel");
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    simd::unary_backward_f32(op, x + lo, dy + lo, dx + lo, hi - lo, alpha);
  });
}

}  // namespace kiln::kernels
