#include "kernels/scan.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/dispatch.h"

namespace kiln::kernels {

namespace {

// Starts the thread team for a parallel loop of `work` elements; false below the threshold.
bool go_parallel(int64_t items, int64_t work) {
  const bool parallel = items > 1 && work >= kScanParallelThreshold;
  if (parallel) apply_num_threads();
  return parallel;
}

template <typename T>
void argmin_typed(const T *x, int64_t outer, int64_t n, int64_t inner, int64_t *out) {
  using V = std::conditional_t<std::is_same_v<T, bfloat16>, float, T>;
  const bool parallel = go_parallel(outer * inner, outer * n * inner);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t oi = 0; oi < outer * inner; ++oi) {
    const int64_t o = oi / inner, i = oi % inner;
    const T *base = x + o * n * inner + i;
    // As argmax: from (0, highest), strictly less replaces (ties: the first; NaN: never).
    V best = std::numeric_limits<V>::max();
    int64_t at = 0;
    for (int64_t k = 0; k < n; ++k) {
      V v = static_cast<V>(base[k * inner]);
      if (v < best) best = v, at = k;
    }
    out[oi] = at;
  }
}

template <typename T>
void prod_rows(const T *x, int64_t rows, int64_t n, T *out) {
  const bool parallel = go_parallel(rows, rows * n);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *row = x + r * n;
    if constexpr (std::is_integral_v<T>) {
      // Unsigned arithmetic wraps where signed overflow would be undefined.
      using U = std::make_unsigned_t<T>;
      U p = 1;
      for (int64_t j = 0; j < n; ++j) p = static_cast<U>(p * static_cast<U>(row[j]));
      out[r] = static_cast<T>(p);
    } else {
      double p = 1;  // double: fewer intermediate overflows and underflows than float
      for (int64_t j = 0; j < n; ++j) p *= row[j];
      // Beyond T's range is +-inf (an out-of-range conversion would be undefined).
      constexpr double kMax = std::numeric_limits<T>::max();
      out[r] = p > kMax    ? std::numeric_limits<T>::infinity()
               : p < -kMax ? -std::numeric_limits<T>::infinity()
                           : static_cast<T>(p);
    }
  }
}

void logical_rows(bool any, const uint8_t *x, int64_t rows, int64_t n, uint8_t *out) {
  const bool parallel = go_parallel(rows, rows * n);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t *row = x + r * n;
    uint8_t acc = any ? 0 : 1;
    for (int64_t j = 0; j < n; ++j) acc = any ? (acc | row[j]) : (acc & row[j]);
    out[r] = acc ? 1 : 0;
  }
}

// The cumulative sum (Prod false) or product (Prod true); integers wrap.
template <bool Prod, typename T>
void scan_typed(const T *x, int64_t outer, int64_t n, int64_t inner, bool exclusive, bool reverse, T *out) {
  const bool parallel = go_parallel(outer * inner, outer * n * inner);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t oi = 0; oi < outer * inner; ++oi) {
    const int64_t o = oi / inner, i = oi % inner;
    const T *src = x + o * n * inner + i;
    T *dst = out + o * n * inner + i;
    using Acc = typename Wrapping<T>::type;
    Acc acc = Prod ? 1 : 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t k = reverse ? n - 1 - s : s;
      const Acc v = static_cast<Acc>(src[k * inner]);
      if (exclusive) dst[k * inner] = static_cast<T>(acc);
      acc = static_cast<Acc>(Prod ? acc * v : acc + v);
      if (!exclusive) dst[k * inner] = static_cast<T>(acc);
    }
  }
}

// a before b in top-k order: larger first (NaN largest), then the lower index.
template <typename T>
bool ranks_before(T va, int32_t a, T vb, int32_t b) {
  if constexpr (std::is_floating_point_v<T>) {
    const bool na = std::isnan(va), nb = std::isnan(vb);
    if (na || nb) return na && (!nb || a < b);
  }
  if (va != vb) return va > vb;
  return a < b;
}

template <typename T>
void top_k_typed(const T *x, int64_t rows, int64_t n, int64_t k, T *values, int32_t *indices) {
  const bool parallel = go_parallel(rows, rows * n);
  const int nt = parallel ? num_threads() : 1;
  // One index buffer per thread, allocated before the parallel region.
  std::vector<int32_t> scratch(static_cast<size_t>(nt) * static_cast<size_t>(n));
#pragma omp parallel num_threads(nt) if (parallel)
  {
    int32_t *order = scratch.data() + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(n);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T *row = x + r * n;
      std::iota(order, order + n, 0);
      auto before = [row](int32_t a, int32_t b) { return ranks_before(row[a], a, row[b], b); };
      std::partial_sort(order, order + k, order + n, before);
      for (int64_t j = 0; j < k; ++j) {
        values[r * k + j] = row[order[j]];
        indices[r * k + j] = order[j];
      }
    }
  }
}

}  // namespace

void argmin(DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner, int64_t *out) {
  if (outer * inner == 0) return;
  dispatch_among<float, bfloat16, double, int32_t, int64_t>(dtype, "argmin", [&](auto t) {
    using T = decltype(t);
    argmin_typed(static_cast<const T *>(x), outer, n, inner, out);
  });
}

void reduce_rows(RowReduce kind, DType dtype, const void *x, int64_t rows, int64_t n, void *out) {
  if (kind != RowReduce::kProd) {
    return logical_rows(kind == RowReduce::kAny, static_cast<const uint8_t *>(x), rows, n,
                        static_cast<uint8_t *>(out));
  }
  dispatch_among<float, double, int32_t, int64_t>(dtype, "reduce_prod", [&](auto t) {
    using T = decltype(t);
    prod_rows(static_cast<const T *>(x), rows, n, static_cast<T *>(out));
  });
}

void cumsum(bool exclusive, bool reverse, DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner,
            void *out) {
  if (outer * n * inner == 0) return;
  dispatch_among<float, double, int32_t, int64_t>(dtype, "cumsum", [&](auto t) {
    using T = decltype(t);
    scan_typed<false>(static_cast<const T *>(x), outer, n, inner, exclusive, reverse, static_cast<T *>(out));
  });
}

void cumprod(bool exclusive, bool reverse, DType dtype, const void *x, int64_t outer, int64_t n,
             int64_t inner, void *out) {
  if (outer * n * inner == 0) return;
  dispatch_among<float, double, int32_t, int64_t>(dtype, "cumprod", [&](auto t) {
    using T = decltype(t);
    scan_typed<true>(static_cast<const T *>(x), outer, n, inner, exclusive, reverse, static_cast<T *>(out));
  });
}

void top_k(DType dtype, const void *x, int64_t rows, int64_t n, int64_t k, void *values, int32_t *indices) {
  if (rows == 0 || k == 0) return;
  dispatch_among<float, double, int32_t, int64_t>(dtype, "top_k", [&](auto t) {
    using T = decltype(t);
    top_k_typed(static_cast<const T *>(x), rows, n, k, static_cast<T *>(values), indices);
  });
}

}  // namespace kiln::kernels
