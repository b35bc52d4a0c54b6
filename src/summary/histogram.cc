// Built with -ffp-contract=off (src/CMakeLists.txt): TensorFlow computes the edges with separate
// multiply and add ops, and a fused multiply-add would round differently.
#include "summary/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/error.h"

namespace kiln::summary {
namespace {

// tf.cast(data, tf.float64).
template <typename T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, bfloat16>)
    return static_cast<double>(static_cast<float>(v));
  else
    return static_cast<double>(v);
}

// Calls f(i, x) with every element of data as a double, in order.
template <typename F>
void for_each_value(const Tensor &data, F &&f) {
  const int64_t n = data.num_elements();
  dispatch_dtype(data.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = data.data<T>();
    for (int64_t i = 0; i < n; ++i) f(to_double(p[i]));
  });
}

// The bucket TensorFlow's one_hot(min(int32(floor(q)), k - 1)) sets, or -1 for none: its
// float-to-int32 cast gives INT32_MIN on x86-64 for NaN and for values outside int32, and
// one_hot leaves a row of zeros for a negative index.
int64_t bucket_index(double q, int64_t k) {
  const double f = std::floor(q);
  constexpr double kTwo31 = 2147483648.0;
  if (!(f >= -kTwo31 && f < kTwo31)) return -1;  // NaN too
  const auto index = std::min(static_cast<int64_t>(f), k - 1);
  return index < 0 ? -1 : index;
}

}  // namespace

std::vector<double> histogram_buckets(const Tensor &data, int64_t bucket_count) {
  require_defined(data, "summary.histogram", "data");
  if (bucket_count > std::numeric_limits<int32_t>::max())
    fail(Code::kInvalidArgument, "summary.histogram: bucket_count is ", bucket_count, "; expected at most ",
         std::numeric_limits<int32_t>::max(), " (an int32, as TensorBoard requires)");
  // TensorBoard: "Treat a negative bucket count as zero", which gives a [0, 3] result.
  if (bucket_count <= 0) return {};
  const int64_t k = bucket_count;
  std::vector<double> out(static_cast<size_t>(k) * 3, 0.0);
  const int64_t n = data.num_elements();
  if (n == 0) return out;

  // tf.reduce_min / reduce_max, which propagate NaN (since TensorFlow 2.4).
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool any_nan = false;
  for_each_value(data, [&](double x) {
    if (std::isnan(x)) {
      any_nan = true;
    } else {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  });
  if (any_nan) lo = hi = std::numeric_limits<double>::quiet_NaN();
  const double range = hi - lo;

  if (range == 0.0) {  // one distinct (finite) value: every edge is it, the last bucket holds all
    for (int64_t i = 0; i < k; ++i) {
      out[static_cast<size_t>(3 * i)] = hi;
      out[static_cast<size_t>(3 * i + 1)] = hi;
    }
    out[static_cast<size_t>(3 * k - 1)] = static_cast<double>(n);
    return out;
  }

  const double width = range / static_cast<double>(k);
  std::vector<int64_t> counts(static_cast<size_t>(k), 0);
  for_each_value(data, [&](double x) {
    const int64_t b = bucket_index((x - lo) / width, k);
    if (b >= 0) ++counts[static_cast<size_t>(b)];
  });

  // tf.linspace(lo, hi, k + 1) (math_ops.linspace_nd): lo itself, lo + delta * i for
  // i = 1 .. k - 1 with delta = (hi - lo) / k (the same value as width), then hi itself.
  std::vector<double> edges(static_cast<size_t>(k) + 1);
  edges[0] = lo;
  for (int64_t i = 1; i < k; ++i) {
    const double step = width * static_cast<double>(i);
    edges[static_cast<size_t>(i)] = lo + step;
  }
  edges[static_cast<size_t>(k)] = hi;
  for (int64_t i = 0; i < k; ++i) {
    out[static_cast<size_t>(3 * i)] = edges[static_cast<size_t>(i)];
    out[static_cast<size_t>(3 * i + 1)] = edges[static_cast<size_t>(i + 1)];
    out[static_cast<size_t>(3 * i + 2)] = static_cast<double>(counts[static_cast<size_t>(i)]);
  }
  return out;
}

}  // namespace kiln::summary
