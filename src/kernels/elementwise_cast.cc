// Dtype conversion and select (where).
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_loops.h"

namespace kiln::kernels {

namespace {

// Bool is read and written as bytes, so a stray non-0/1 byte is still read as true
// rather than being undefined behaviour.
template <typename T>
using Stored = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;

template <typename T>
constexpr bool kIsFloat = std::is_same_v<T, float> || std::is_same_v<T, bfloat16> || std::is_same_v<T, double>;

// Floating -> integer as TensorFlow's cast gives it on x86-64, where Eigen's conversion compiles
// to cvtt(s|p)(s|d)2si (NumPy and PyTorch give the same): truncation toward zero, and for NaN,
// an infinity or a value outside the target's range, the "integer indefinite" value INT32_MIN /
// INT64_MIN. uint8 takes the low 8 bits of the int32 result, so -1.0 gives 255, 300.0 gives 44
// and NaN gives 0. The range checks are written out, as C++ leaves those conversions undefined.
// Every float32 and bfloat16 value is exact as a double.
inline int32_t float_to_int32(double f) {
  if (!(f > -2147483649.0 && f < 2147483648.0)) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(f);
}
inline int64_t float_to_int64(double f) {
  if (!(f >= -0x1p63 && f < 0x1p63)) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(f);
}

template <typename To, typename From>
inline Stored<To> convert(Stored<From> v) {
  if constexpr (std::is_same_v<From, bool>) {
    const int one = v != 0 ? 1 : 0;
    if constexpr (std::is_same_v<To, bfloat16>)
      return bfloat16(static_cast<float>(one));
    else
      return static_cast<Stored<To>>(one);
  } else if constexpr (kIsFloat<From>) {
    // float64 keeps its precision; float32 and bfloat16 widen exactly to float.
    using Wide = std::conditional_t<std::is_same_v<From, double>, double, float>;
    const Wide f = static_cast<Wide>(v);
    if constexpr (std::is_same_v<To, bool>) {
      return f != Wide(0);  // NaN is true, as in C and TensorFlow
    } else if constexpr (std::is_same_v<To, bfloat16>) {
      return bfloat16(static_cast<float>(f));  // float64 rounds to float first, as TF (Eigen) does
    } else if constexpr (kIsFloat<To>) {
      return static_cast<To>(f);
    } else if constexpr (std::is_same_v<To, int64_t>) {
      return float_to_int64(static_cast<double>(f));
    } else {
      return static_cast<To>(float_to_int32(static_cast<double>(f)));  // uint8: the low 8 bits
    }
  } else {  // integers
    if constexpr (std::is_same_v<To, bool>)
      return v != 0;
    else if constexpr (std::is_same_v<To, bfloat16>)
      return bfloat16(static_cast<float>(v));
    else
      return static_cast<To>(v);  // integer narrowing wraps
  }
}

template <typename From, typename To>
void cast_typed(const void *x_raw, void *y_raw, int64_t n) {
  const Stored<From> *x = static_cast<const Stored<From> *>(x_raw);
  Stored<To> *y = static_cast<Stored<To> *>(y_raw);
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = convert<To, From>(x[i]);
  });
}

template <typename T>
void select_typed(const uint8_t *c, const Shape &cs, const void *x_raw, const Shape &xs, const void *y_raw,
                  const Shape &ys, void *out_raw, const Shape &os) {
  const T *x = static_cast<const T *>(x_raw);
  const T *y = static_cast<const T *>(y_raw);
  T *out = static_cast<T *>(out_raw);
  const int64_t n = os.num_elements();
  if (n == 0) return;
  if (cs.num_elements() == n && xs.num_elements() == n && ys.num_elements() == n) {
    parallel_chunks(n, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = c[i] ? x[i] : y[i];
    });
    return;
  }
  const Shape *ins[3] = {&cs, &xs, &ys};
  const BroadcastPlan<3> plan = make_broadcast_plan<3>(os, ins);
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    for_each_span(plan, lo, hi, [&](int64_t o, const int64_t *off, const int64_t *st, int64_t len) {
      const uint8_t *cp = c + off[0];
      const T *xp = x + off[1], *yp = y + off[2];
      T *op = out + o;
      for (int64_t i = 0; i < len; ++i) op[i] = cp[i * st[0]] ? xp[i * st[1]] : yp[i * st[2]];
    });
  });
}

}  // namespace

void cast(DType from, const void *x, DType to, void *y, int64_t n) {
  if (n <= 0) return;
  dispatch_dtype(from, [&](auto from_tag) {
    dispatch_dtype(to, [&](auto to_tag) { cast_typed<decltype(from_tag), decltype(to_tag)>(x, y, n); });
  });
}

void select(const uint8_t *cond, const Shape &cond_shape, const void *x, const Shape &x_shape, const void *y,
            const Shape &y_shape, void *out, const Shape &out_shape, size_t elem_size) {
  switch (elem_size) {
    case 1:
      return select_typed<uint8_t>(cond, cond_shape, x, x_shape, y, y_shape, out, out_shape);
    case 2:
      return select_typed<uint16_t>(cond, cond_shape, x, x_shape, y, y_shape, out, out_shape);
    case 4:
      return select_typed<uint32_t>(cond, cond_shape, x, x_shape, y, y_shape, out, out_shape);
    case 8:
      return select_typed<uint64_t>(cond, cond_shape, x, x_shape, y, y_shape, out, out_shape);
    default:
      break;
  }
  fail(Code::kInternal, "select kernel: no kernel for ", elem_size, "-byte elements");
}

}  // namespace kiln::kernels
