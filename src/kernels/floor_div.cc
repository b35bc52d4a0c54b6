#include "kernels/floor_div.h"

#include <cmath>
#include <type_traits>

#include "core/threads.h"
#include "kernels/dispatch.h"

namespace kiln::kernels {

namespace {

constexpr int64_t kFloorParallelThreshold = 32768;

template <typename T>
T floordiv_one(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::floor(x / y);  // TF's float FloorDiv
  } else {
    using U = std::make_unsigned_t<T>;
    if (y == -1) return static_cast<T>(U(0) - static_cast<U>(x));  // wraps at the minimum
    T q = x / y;
    if (x % y != 0 && ((x < 0) != (y < 0))) --q;  // truncation rounded toward zero: step down
    return q;
  }
}

template <typename T>
T floormod_one(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    const T r = std::fmod(x, y);
    return r != 0 && ((y < 0) != (r < 0)) ? r + y : r;  // TF's float FloorMod
  } else {
    if (y == -1) return 0;
    const T r = x % y;
    return r != 0 && ((r < 0) != (y < 0)) ? static_cast<T>(r + y) : r;
  }
}

template <typename T, bool kDiv>
void run(const T *a, const T *b, T *out, int64_t n) {
  const bool parallel = n >= kFloorParallelThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = kDiv ? floordiv_one(a[i], b[i]) : floormod_one(a[i], b[i]);
}

template <bool kDiv>
void dispatch(DType dtype, const void *a, const void *b, int64_t n, void *out) {
  dispatch_among<float, double, int32_t, int64_t>(dtype, kDiv ? "floordiv" : "floormod", [&](auto t) {
    using T = decltype(t);
    run<T, kDiv>(static_cast<const T *>(a), static_cast<const T *>(b), static_cast<T *>(out), n);
  });
}

}  // namespace

void floordiv(DType dtype, const void *a, const void *b, int64_t n, void *out) {
  dispatch<true>(dtype, a, b, n, out);
}
void floormod(DType dtype, const void *a, const void *b, int64_t n, void *out) {
  dispatch<false>(dtype, a, b, n, out);
}

}  // namespace kiln::kernels
