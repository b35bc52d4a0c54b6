// zeros, ones, fill, zeros_like, ones_like, range.
//
// Integer tensors are filled and counted in int64 arithmetic, never through double (which
// holds integers exactly only up to 2^53), and a value the dtype cannot hold is an
// InvalidArgument status: converting it would be undefined behaviour.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/count.h"
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

namespace {

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<T> || std::is_same_v<T, bfloat16>;

// True when v is finite and its truncation toward zero fits integer type T. The bounds
// are exact powers of two in double, so the comparisons are exact.
template <typename T>
bool double_fits(double v) {
  if (!std::isfinite(v)) return false;
  if constexpr (std::is_same_v<T, bool>) {
    return true;
  } else {
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi_excl = 2.0 * (static_cast<double>(std::numeric_limits<T>::max() / 2) + 1.0);
    return std::trunc(v) >= lo && std::trunc(v) < hi_excl;
  }
}

template <typename T>
bool int64_fits(int64_t v) {
  if constexpr (std::is_same_v<T, bool>)
    return true;
  else
    return v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           v <= static_cast<int64_t>(std::numeric_limits<T>::max());
}

template <typename T>
Tensor filled(const Shape &shape, DType dtype, T v) {
  Tensor t = Tensor::empty(dtype, shape);
  T *p = t.mutable_data<T>();
  const int64_t n = t.num_elements();
  for (int64_t i = 0; i < n; ++i) p[i] = v;
  return t;
}

// The number of elements of range(start, limit, delta) over the integers, exactly:
// ceil((limit - start) / delta), in unsigned arithmetic so that no difference overflows.
int64_t int_range_count(int64_t start, int64_t limit, int64_t delta) {
  const bool up = delta > 0;
  if (up ? limit <= start : limit >= start) return 0;
  const uint64_t span = up ? static_cast<uint64_t>(limit) - static_cast<uint64_t>(start)
                           : static_cast<uint64_t>(start) - static_cast<uint64_t>(limit);
  const uint64_t step = up ? static_cast<uint64_t>(delta) : uint64_t{0} - static_cast<uint64_t>(delta);
  const uint64_t n = span / step + (span % step != 0 ? 1 : 0);
  if (n > static_cast<uint64_t>(kMaxElements))
    fail(Code::kInvalidArgument, "range: ", n, " elements, more than kiln's limit of ", kMaxElements,
         " (2^62)");
  return static_cast<int64_t>(n);
}

void check_range_direction(double start, double limit, double delta) {
  if (delta == 0) fail(Code::kInvalidArgument, "range: delta is 0; expected a non-zero step");
  if ((delta > 0 && start > limit) || (delta < 0 && start < limit))
    fail(Code::kInvalidArgument, "range: start ", start, " cannot reach limit ", limit, " with delta ",
         delta);
}

void check_range_dtype(DType dtype) {
  if (dtype != DType::kFloat32 && dtype != DType::kFloat64 && dtype != DType::kInt32 &&
      dtype != DType::kInt64)
    fail(Code::kInvalidArgument, "range: dtype ", dtype_name(dtype),
         " is not supported; expected float32, float64, int32 or int64");
}

// An integer-valued double in int64's range, as int64 (exact).
bool as_int64(double v, int64_t *out) {
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != std::trunc(v)) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

}  // namespace

Tensor fill(const Shape &shape, double value, DType dtype) {
  // An integer value in int64's range takes the exact integer path.
  int64_t iv = 0;
  if (!is_floating(dtype) && as_int64(value, &iv)) return fill_int64(shape, iv, dtype);
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, double>) {
      return filled<T>(shape, dtype, value);
    } else if constexpr (kIsFloat<T>) {
      return filled<T>(shape, dtype, static_cast<T>(static_cast<float>(value)));
    } else {
      // A fraction truncates toward zero, as a C cast; NaN, inf or out of range is an error.
      if (!double_fits<T>(value))
        fail(Code::kInvalidArgument, "fill: value ", value, " does not fit in ", dtype_name(dtype));
      return filled<T>(shape, dtype, static_cast<T>(value));
    }
  });
}

Tensor fill_int64(const Shape &shape, int64_t value, DType dtype) {
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, double>) {
      return filled<T>(shape, dtype, static_cast<double>(value));  // rounded once, to the nearest double
    } else if constexpr (kIsFloat<T>) {
      // Rounded once, to the nearest float (a conversion through double could round twice).
      return filled<T>(shape, dtype, static_cast<T>(static_cast<float>(value)));
    } else {
      if (!int64_fits<T>(value))
        fail(Code::kInvalidArgument, "fill: value ", value, " does not fit in ", dtype_name(dtype));
      return filled<T>(shape, dtype, static_cast<T>(value));
    }
  });
}

Tensor zeros(const Shape &shape, DType dtype) { return fill_int64(shape, 0, dtype); }
Tensor ones(const Shape &shape, DType dtype) { return fill_int64(shape, 1, dtype); }
Tensor zeros_like(const Tensor &x) {
  require_defined(x, "zeros_like", "x");
  return zeros(x.shape(), x.dtype());
}
Tensor ones_like(const Tensor &x) {
  require_defined(x, "ones_like", "x");
  return ones(x.shape(), x.dtype());
}

namespace {

// A floating range as TF's RangeOp makes it: start, limit and delta in the dtype, ceil(|(limit -
// start) / delta|) elements computed in the dtype (so range(1, 2.2, 0.2) in float32 has 6, its
// limit excluded), and each element the previous plus delta, in the dtype.
template <typename T>
Tensor range_floating(double start, double limit, double delta, DType dtype) {
  const T s = static_cast<T>(start), l = static_cast<T>(limit), d = static_cast<T>(delta);
  if (!std::isfinite(s) || !std::isfinite(l) || !std::isfinite(d))
    fail(Code::kInvalidArgument, "range: start ", start, ", limit ", limit, " and delta ", delta,
         " do not fit in ", dtype_name(dtype));
  if (d == 0)
    fail(Code::kInvalidArgument, "range: delta ", delta, " is 0 in ", dtype_name(dtype),
         "; expected a non-zero step");
  const T count = std::ceil(std::fabs((l - s) / d));
  // Checked before any allocation: a huge count fails here, not in malloc.
  if (!(static_cast<double>(count) <= static_cast<double>(kMaxElements)))
    fail(Code::kInvalidArgument, "range: start ", start, ", limit ", limit, " and delta ", delta, " give ",
         count, " elements, more than kiln's limit of ", kMaxElements, " (2^62), counted in ",
         dtype_name(dtype));
  const auto n = static_cast<int64_t>(count);
  Tensor t = Tensor::empty(dtype, Shape{n});
  T *p = t.mutable_data<T>();
  T value = s;
  for (int64_t i = 0; i < n; ++i) {
    p[i] = value;
    value += d;
  }
  return t;
}

}  // namespace

Tensor range(double start, double limit, double delta, DType dtype) {
  if (!std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta))
    fail(Code::kInvalidArgument, "range: start ", start, ", limit ", limit, " and delta ", delta,
         " must be finite");
  check_range_direction(start, limit, delta);
  check_range_dtype(dtype);
  if (dtype == DType::kFloat32) return range_floating<float>(start, limit, delta, dtype);
  if (dtype == DType::kFloat64) return range_floating<double>(start, limit, delta, dtype);
  int64_t s = 0, l = 0, d = 0;
  if (as_int64(start, &s) && as_int64(limit, &l) && as_int64(delta, &d)) return range_int64(s, l, d, dtype);
  const double count = std::ceil((limit - start) / delta);
  // Checked before any conversion or allocation: a huge count fails here, not in malloc.
  if (!(count <= static_cast<double>(kMaxElements)))
    fail(Code::kInvalidArgument, "range: start ", start, ", limit ", limit, " and delta ", delta, " give ",
         count, " elements, more than kiln's limit of ", kMaxElements, " (2^62)");
  const int64_t n = static_cast<int64_t>(count);
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    Tensor t = Tensor::empty(dtype, Shape{n});
    if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>) {
      // Fractional bounds or step with an integer dtype: the values lie between start and the
      // last element, so checking both ends checks them all.
      const double last = start + static_cast<double>(n - 1) * delta;
      if (n > 0 && (!double_fits<T>(start) || !double_fits<T>(last)))
        fail(Code::kInvalidArgument, "range: values from ", start, " to ", last, " do not fit in ",
             dtype_name(dtype));
      T *p = t.mutable_data<T>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * delta);
    }
    return t;
  });
}

Tensor range_int64(int64_t start, int64_t limit, int64_t delta, DType dtype) {
  if (delta == 0) fail(Code::kInvalidArgument, "range: delta is 0; expected a non-zero step");
  if ((delta > 0 && start > limit) || (delta < 0 && start < limit))
    fail(Code::kInvalidArgument, "range: start ", start, " cannot reach limit ", limit, " with delta ",
         delta);
  check_range_dtype(dtype);
  const int64_t n = int_range_count(start, limit, delta);
  // Element i is start + i * delta, computed with wrapping unsigned arithmetic: every true
  // value lies between start and limit, so the wrapped result is exact.
  auto value = [start, delta](int64_t i) {
    return static_cast<int64_t>(static_cast<uint64_t>(start) +
                                static_cast<uint64_t>(i) * static_cast<uint64_t>(delta));
  };
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    Tensor t = Tensor::empty(dtype, Shape{n});
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t> ||
                  std::is_same_v<T, int64_t>) {
      if constexpr (std::is_same_v<T, int32_t>) {
        if (n > 0 && (!int64_fits<T>(start) || !int64_fits<T>(value(n - 1))))
          fail(Code::kInvalidArgument, "range: values from ", start, " to ", value(n - 1), " do not fit in ",
               dtype_name(dtype));
      }
      T *p = t.mutable_data<T>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(value(i));
    }
    return t;
  });
}

}  // namespace kiln::ops
