// Unary elementwise kernels and the fused backward of relu and gelu.
//
// Float32 runs kiln's own vector loops (kernels/simd.h) at every size, below and above
// the threading threshold alike; only the split among threads differs. bfloat16 widens
// blocks into a stack buffer, runs the same float32 loops and rounds once, so its result
// is bf16(f32_op(x)) at every size; float64 runs the libm loops of kernels/elementwise_f64.h.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_f64.h"
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

// The ops defined for integers too, as TF registers them: neg, abs and square (wrapping on
// overflow), sign, relu and relu6, clip (bounds alpha and beta, which the op checked are whole
// numbers of T's range) and round (the identity).
template <typename T>
bool map_integral_safe(UnaryOp op, const void *x, void *y, int64_t n, float alpha, float beta) {
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
    case UnaryOp::kSign:
      map<T>(x, y, n, [](T v) { return static_cast<T>((v > 0) - (v < 0)); });
      return true;
    case UnaryOp::kRelu:
      if (alpha != 0.0f) return false;
      map<T>(x, y, n, [](T v) { return v > 0 ? v : T(0); });
      return true;
    case UnaryOp::kRelu6:
      map<T>(x, y, n, [](T v) { return v > 0 ? (v < 6 ? v : T(6)) : T(0); });
      return true;
    case UnaryOp::kClip: {
      const T lo = static_cast<T>(alpha), hi = static_cast<T>(beta);
      // maximum(minimum(x, hi), lo), as the float kernels: lo wherever lo > hi.
      map<T>(x, y, n, [lo, hi](T v) { return std::max(std::min(v, hi), lo); });
      return true;
    }
    case UnaryOp::kRound:
      map<T>(x, y, n, [](T v) { return v; });
      return true;
    default:
      return false;
  }
}

// Elements widened per block: small enough for the stack of an OpenMP thread.
constexpr int64_t kBf16Block = 256;

// f(xs, ys, m) on float32 copies of blocks of m <= kBf16Block bfloat16 elements of each
// input (x, and dy when given), then y = bf16(ys). Allocation-free.
template <typename F>
void bf16_blocks(const bfloat16 *x, const bfloat16 *dy, bfloat16 *y, int64_t n, F f) {
  float xs[kBf16Block], gs[kBf16Block], ys[kBf16Block];
  for (int64_t b = 0; b < n; b += kBf16Block) {
    const int64_t m = n - b < kBf16Block ? n - b : kBf16Block;
    for (int64_t i = 0; i < m; ++i) xs[i] = static_cast<float>(x[b + i]);
    if (dy)
      for (int64_t i = 0; i < m; ++i) gs[i] = static_cast<float>(dy[b + i]);
    f(static_cast<const float *>(xs), static_cast<const float *>(gs), static_cast<float *>(ys), m);
    for (int64_t i = 0; i < m; ++i) y[b + i] = bfloat16(ys[i]);
  }
}

bool floating_op(UnaryOp op) { return op != UnaryOp::kLogicalNot; }

}  // namespace

void unary(UnaryOp op, DType dtype, const void *x, void *y, int64_t n, float alpha, float beta) {
  if (n <= 0) return;
  switch (dtype) {
    case DType::kFloat32:
      if (!simd::has_unary_f32(op)) break;
      {
        const float *xf = static_cast<const float *>(x);
        float *yf = static_cast<float *>(y);
        parallel_chunks(
            n, [&](int64_t lo, int64_t hi) { simd::unary_f32(op, xf + lo, yf + lo, hi - lo, alpha, beta); });
      }
      return;
    case DType::kBFloat16:
      if (!floating_op(op)) break;
      {
        const bfloat16 *xb = static_cast<const bfloat16 *>(x);
        bfloat16 *yb = static_cast<bfloat16 *>(y);
        parallel_chunks(n, [&](int64_t lo, int64_t hi) {
          bf16_blocks(xb + lo, nullptr, yb + lo, hi - lo,
                      [&](const float *xs, const float *, float *ys, int64_t m) {
                        simd::unary_f32(op, xs, ys, m, alpha, beta);
                      });
        });
      }
      return;
    case DType::kFloat64:
      if (!floating_op(op)) break;
      {
        const double *xd = static_cast<const double *>(x);
        double *yd = static_cast<double *>(y);
        parallel_chunks(
            n, [&](int64_t lo, int64_t hi) { f64::unary(op, xd + lo, yd + lo, hi - lo, alpha, beta); });
      }
      return;
    case DType::kInt32:
      if (map_integral_safe<int32_t>(op, x, y, n, alpha, beta)) return;
      break;
    case DType::kInt64:
      if (map_integral_safe<int64_t>(op, x, y, n, alpha, beta)) return;
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

void unary_backward(UnaryOp op, DType dtype, const void *x, const void *dy, void *dx, int64_t n,
                    float alpha) {
  if (n <= 0) return;
  if (op != UnaryOp::kRelu && op != UnaryOp::kGeluErf && op != UnaryOp::kGeluTanh)
    fail(Code::kInternal, "elementwise unary_backward kernel: op ", static_cast<int>(op), " has no kernel");
  switch (dtype) {
    case DType::kFloat32: {
      const float *xf = static_cast<const float *>(x), *gf = static_cast<const float *>(dy);
      float *df = static_cast<float *>(dx);
      return parallel_chunks(n, [&](int64_t lo, int64_t hi) {
        simd::unary_backward_f32(op, xf + lo, gf + lo, df + lo, hi - lo, alpha);
      });
    }
    case DType::kBFloat16: {
      const bfloat16 *xb = static_cast<const bfloat16 *>(x), *gb = static_cast<const bfloat16 *>(dy);
      bfloat16 *db = static_cast<bfloat16 *>(dx);
      return parallel_chunks(n, [&](int64_t lo, int64_t hi) {
        bf16_blocks(xb + lo, gb + lo, db + lo, hi - lo,
                    [&](const float *xs, const float *gs, float *ys, int64_t m) {
                      simd::unary_backward_f32(op, xs, gs, ys, m, alpha);
                    });
      });
    }
    case DType::kFloat64: {
      const double *xd = static_cast<const double *>(x), *gd = static_cast<const double *>(dy);
      double *dd = static_cast<double *>(dx);
      return parallel_chunks(n, [&](int64_t lo, int64_t hi) {
        f64::unary_backward(op, xd + lo, gd + lo, dd + lo, hi - lo, alpha);
      });
    }
    default:
      break;
  }
  fail(Code::kInternal, "elementwise unary_backward kernel: no ", dtype_name(dtype), " kernel");
}

void bias_unary_inplace(float *y, int64_t n, const float *bias, int64_t channels, const UnaryOp *op,
                        float alpha) {
  constexpr int64_t kBlock = 4096;  // 16 KB: the add's output is still in L1 for the activation
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    for (int64_t b0 = lo; b0 < hi; b0 += kBlock) {
      const int64_t b1 = std::min(hi, b0 + kBlock);
      if (bias) simd::add_bias_f32(y + b0, b1 - b0, bias, channels, b0 % channels);
      if (op) simd::unary_f32(*op, y + b0, y + b0, b1 - b0, alpha, 0.0f);
    }
  });
}

void gelu_erf_saving_erfc(const float *x, float *y, float *erfc, int64_t n) {
  parallel_chunks(
      n, [&](int64_t lo, int64_t hi) { simd::gelu_erf_saving_erfc_f32(x + lo, y + lo, erfc + lo, hi - lo); });
}

void gelu_erf_backward_from_erfc(const float *x, const float *erfc, const float *dy, float *dx, int64_t n) {
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    simd::gelu_erf_backward_from_erfc_f32(x + lo, erfc + lo, dy + lo, dx + lo, hi - lo);
  });
}

}  // namespace kiln::kernels
