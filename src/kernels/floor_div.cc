#include "kernels/floor_div.h"

#include <cmath>
#include <type_traits>

#include "core/error.h"
#include "core/threads.h"

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
void dispatch(const Tensor &a, const Tensor &b, const Tensor &out) {
  const int64_t n = out.num_elements();
  switch (a.dtype()) {
    case DType::kFloat32:
      return run<float, kDiv>(a.data<float>(), b.data<float>(), out.mutable_data<float>(), n);
    case DType::kInt32:
      return run<int32_t, kDiv>(a.data<int32_t>(), b.data<int32_t>(), out.mutable_data<int32_t>(), n);
    case DType::kInt64:
      return run<int64_t, kDiv>(a.data<int64_t>(), b.data<int64_t>(), out.mutable_data<int64_t>(), n);
    default:
      break;
  }
  fail(Code::kInvalidArgument, kDiv ? "floordiv" : "floormod", ": unsupported dtype ", dtype_name(a.dtype()));
}

template <typename T>
bool any_zero(const T *v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (v[i] == 0) return true;
  return false;
}

}  // namespace

void floordiv(const Tensor &a, const Tensor &b, const Tensor &out) { dispatch<true>(a, b, out); }
void floormod(const Tensor &a, const Tensor &b, const Tensor &out) { dispatch<false>(a, b, out); }

bool has_zero(const Tensor &t) {
  if (t.dtype() == DType::kInt32) return any_zero(t.data<int32_t>(), t.num_elements());
  if (t.dtype() == DType::kInt64) return any_zero(t.data<int64_t>(), t.num_elements());
  return false;
}

}  // namespace kiln::kernels
