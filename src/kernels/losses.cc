#include "kernels/losses.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <utility>

#include "core/threads.h"
#include "kernels/dispatch.h"

namespace kiln::kernels {

namespace {

// The shifted log-sum-exp of one row: m = max, returns log(sum_j exp(x_j - m)) computed as
// log1p of the terms other than the (first) maximum, accumulated in double. A row with no
// finite maximum gives m = +-inf or NaN and a NaN shift, as TF (and the loss turns NaN/inf).
struct RowLse {
  double max;
  double shift;  // log(sum exp(x - max))
};

template <typename T>
RowLse row_lse(const T *x, int64_t n) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (n == 0) return {0.0, kNaN};
  T m = x[0];
  int64_t at = 0;
  bool nan = std::isnan(x[0]);
  for (int64_t j = 1; j < n; ++j) {
    nan = nan || std::isnan(x[j]);
    if (x[j] > m) m = x[j], at = j;
  }
  // NaN anywhere, or no finite maximum (all -inf, or +inf: inf - inf), gives NaN as in TF.
  if (nan || std::isinf(m)) return {m, kNaN};
  double s = 0;
  for (int64_t j = 0; j < n; ++j)
    if (j != at) s += std::exp(static_cast<double>(x[j]) - static_cast<double>(m));
  return {m, std::log1p(s)};
}

// double -> T without the undefined out-of-range conversion: beyond T's range is +-inf.
template <typename T>
T narrow(double v) {
  constexpr double kMax = std::numeric_limits<T>::max();
  if (v > kMax) return std::numeric_limits<T>::infinity();
  if (v < -kMax) return -std::numeric_limits<T>::infinity();
  return static_cast<T>(v);  // NaN converts to NaN
}

// Runs body(r) for every row, on OpenMP threads when the work is large.
template <typename F>
void for_rows(int64_t rows, int64_t work, F &&body) {
  const bool parallel = rows > 1 && work >= kLossParallelThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) body(r);
}

template <typename T, typename Index>
void sparse_typed(const T *x, const Index *labels, int64_t rows, int64_t n, T *loss) {
  for_rows(rows, rows * n, [&](int64_t r) {
    const T *row = x + r * n;
    const RowLse l = row_lse(row, n);
    const T picked = row[labels[r]];
    // (x_label - m) is exact in double for float inputs; a -inf label logit gives +inf.
    loss[r] = narrow<T>(l.shift - (static_cast<double>(picked) - l.max));
  });
}

// One row of dlogits: with p = softmax(x), g * (p * sum(z) - z) for a labels row z, or (z NULL)
// g * (p - one_hot(label)) with the label's own term -(sum of the other exps) / sum, which keeps
// its full relative precision where 1 - p would round to 0.
template <typename T>
void grad_row(const T *x, int64_t n, int64_t label, const T *z, T g, T *d) {
  double m = x[0];
  for (int64_t j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;
  double sum = 0, others = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double e = std::exp(static_cast<double>(x[j]) - m);
    sum += e;
    if (j != label) others += e;
  }
  double zsum = 0;
  if (z)
    for (int64_t j = 0; j < n; ++j) zsum += z[j];
  for (int64_t j = 0; j < n; ++j) {
    const double p = std::exp(static_cast<double>(x[j]) - m) / sum;
    double v;
    if (z)
      v = p * zsum - z[j];
    else
      v = j == label ? -others / sum : p;
    d[j] = narrow<T>(g * v);
  }
}

template <typename F>
void with_labels(DType label_dtype, const void *labels, F &&f) {
  if (label_dtype == DType::kInt64)
    f(static_cast<const int64_t *>(labels));
  else
    f(static_cast<const int32_t *>(labels));
}

template <typename F>
void float_types(DType dtype, const char *op, F &&f) {
  dispatch_among<float, double>(dtype, op, std::forward<F>(f));
}

}  // namespace

void sparse_softmax_xent_grad(DType dtype, const void *logits, DType label_dtype, const void *labels,
                              const void *g, int64_t rows, int64_t classes, void *dlogits) {
  if (rows == 0) return;
  float_types(dtype, "sparse_softmax_cross_entropy_with_logits", [&](auto t) {
    using T = decltype(t);
    const T *x = static_cast<const T *>(logits), *gv = static_cast<const T *>(g);
    T *d = static_cast<T *>(dlogits);
    with_labels(label_dtype, labels, [&](auto *l) {
      for_rows(rows, rows * classes, [&](int64_t r) {
        grad_row<T>(x + r * classes, classes, static_cast<int64_t>(l[r]), nullptr, gv[r], d + r * classes);
      });
    });
  });
}

void softmax_xent_grad(DType dtype, const void *logits, const void *labels, const void *g, int64_t rows,
                       int64_t classes, void *dlogits) {
  if (rows == 0) return;
  float_types(dtype, "softmax_cross_entropy_with_logits", [&](auto t) {
    using T = decltype(t);
    const T *x = static_cast<const T *>(logits), *z = static_cast<const T *>(labels),
            *gv = static_cast<const T *>(g);
    T *d = static_cast<T *>(dlogits);
    for_rows(rows, rows * classes, [&](int64_t r) {
      grad_row<T>(x + r * classes, classes, -1, z + r * classes, gv[r], d + r * classes);
    });
  });
}

void sparse_softmax_xent(DType dtype, const void *logits, DType label_dtype, const void *labels, int64_t rows,
                         int64_t classes, void *loss) {
  if (rows == 0) return;
  float_types(dtype, "sparse_softmax_cross_entropy_with_logits", [&](auto t) {
    using T = decltype(t);
    with_labels(label_dtype, labels, [&](auto *l) {
      sparse_typed(static_cast<const T *>(logits), l, rows, classes, static_cast<T *>(loss));
    });
  });
}

void softmax_xent(DType dtype, const void *logits, const void *labels, int64_t rows, int64_t classes,
                  void *loss) {
  if (rows == 0) return;
  float_types(dtype, "softmax_cross_entropy_with_logits", [&](auto t) {
    using T = decltype(t);
    const T *x = static_cast<const T *>(logits), *z = static_cast<const T *>(labels);
    T *out = static_cast<T *>(loss);
    const int64_t n = classes;
    for_rows(rows, rows * n, [&](int64_t r) {
      const T *xr = x + r * n, *zr = z + r * n;
      const RowLse l = row_lse(xr, n);
      double s = 0;
      for (int64_t j = 0; j < n; ++j)  // every class, zero labels too: TF's sum(labels * (lse - x))
        s += static_cast<double>(zr[j]) *
             (l.shift - (static_cast<double>(xr[j]) - l.max));  // 0 * inf is NaN, as TF
      out[r] = narrow<T>(s);
    });
  });
}

void sigmoid_xent(DType dtype, const void *logits, const void *labels, int64_t n, void *loss) {
  float_types(dtype, "sigmoid_cross_entropy_with_logits", [&](auto t) {
    using T = decltype(t);
    const T *x = static_cast<const T *>(logits), *z = static_cast<const T *>(labels);
    T *out = static_cast<T *>(loss);
    const bool parallel = n >= kLossParallelThreshold;
    if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T v = x[i];
      // TF's form: never exp of a positive number, and log1p keeps exp(-|x|) when it is tiny.
      out[i] = (v > T(0) ? v : T(0)) - v * z[i] + std::log1p(std::exp(-std::fabs(v)));
    }
  });
}

}  // namespace kiln::kernels
