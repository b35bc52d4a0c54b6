#include "kernels/losses.h"

#include <omp.h>

#include <cmath>
#include <limits>

#include "core/threads.h"

namespace kiln::kernels {

namespace {

// The shifted log-sum-exp of one row: m = max, returns log(sum_j exp(x_j - m)) computed as
// log1p of the terms other than the (first) maximum, accumulated in double. A row with no
// finite maximum gives m = +-inf or NaN and a NaN shift, as TF (and the loss turns NaN/inf).
struct RowLse {
  float max;
  double shift;  // log(sum exp(x - max))
};

RowLse row_lse(const float *x, int64_t n) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (n == 0) return {0.0f, kNaN};
  float m = x[0];
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

// double -> float without the undefined out-of-range conversion: beyond float's range is +-inf.
float to_float(double v) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (v > kMax) return std::numeric_limits<float>::infinity();
  if (v < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(v);  // NaN converts to NaN
}

// Runs body(r) for every row, on OpenMP threads when the work is large.
template <typename F>
void for_rows(int64_t rows, int64_t work, F &&body) {
  const bool parallel = rows > 1 && work >= kLossParallelThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) body(r);
}

template <typename Index>
void sparse_typed(const float *x, const Index *labels, int64_t rows, int64_t n, float *loss) {
  for_rows(rows, rows * n, [&](int64_t r) {
    const float *row = x + r * n;
    const RowLse l = row_lse(row, n);
    const float picked = row[labels[r]];
    // (x_label - m) is exact in double for float inputs; a -inf label logit gives +inf.
    loss[r] = to_float(l.shift - (static_cast<double>(picked) - static_cast<double>(l.max)));
  });
}

// One row of dlogits: with p = softmax(x), g * (p * sum(z) - z) for a labels row z, or (z NULL)
// g * (p - one_hot(label)) with the label's own term -(sum of the other exps) / sum, which keeps
// its full relative precision where 1 - p would round to 0.
void grad_row(const float *x, int64_t n, int64_t label, const float *z, float g, float *d) {
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
    d[j] = to_float(g * v);
  }
}

}  // namespace

void sparse_softmax_xent_grad(const Tensor &logits, const Tensor &labels, const Tensor &g,
                              const Tensor &dlogits) {
  const int64_t rows = g.num_elements();
  if (rows == 0) return;
  const int64_t n = logits.num_elements() / rows;
  const float *x = logits.data<float>(), *gv = g.data<float>();
  float *d = dlogits.mutable_data<float>();
  const bool wide = labels.dtype() == DType::kInt64;
  const int32_t *l32 = wide ? nullptr : labels.data<int32_t>();
  const int64_t *l64 = wide ? labels.data<int64_t>() : nullptr;
  for_rows(rows, rows * n,
           [&](int64_t r) { grad_row(x + r * n, n, wide ? l64[r] : l32[r], nullptr, gv[r], d + r * n); });
}

void softmax_xent_grad(const Tensor &logits, const Tensor &labels, const Tensor &g, const Tensor &dlogits) {
  const int64_t rows = g.num_elements();
  if (rows == 0) return;
  const int64_t n = logits.num_elements() / rows;
  const float *x = logits.data<float>(), *z = labels.data<float>(), *gv = g.data<float>();
  float *d = dlogits.mutable_data<float>();
  for_rows(rows, rows * n, [&](int64_t r) { grad_row(x + r * n, n, -1, z + r * n, gv[r], d + r * n); });
}

void sparse_softmax_xent(const Tensor &logits, const Tensor &labels, const Tensor &loss) {
  const int64_t rows = loss.num_elements();
  const int64_t n = rows == 0 ? 0 : logits.num_elements() / rows;
  if (rows == 0) return;
  if (labels.dtype() == DType::kInt32)
    sparse_typed(logits.data<float>(), labels.data<int32_t>(), rows, n, loss.mutable_data<float>());
  else
    sparse_typed(logits.data<float>(), labels.data<int64_t>(), rows, n, loss.mutable_data<float>());
}

void softmax_xent(const Tensor &logits, const Tensor &labels, const Tensor &loss) {
  const int64_t rows = loss.num_elements();
  if (rows == 0) return;
  const int64_t n = logits.num_elements() / rows;
  const float *x = logits.data<float>(), *z = labels.data<float>();
  float *out = loss.mutable_data<float>();
  for_rows(rows, rows * n, [&](int64_t r) {
    const float *xr = x + r * n, *zr = z + r * n;
    const RowLse l = row_lse(xr, n);
    double s = 0;
    for (int64_t j = 0; j < n; ++j)
      if (zr[j] != 0.0f) s += static_cast<double>(zr[j]) * (l.shift - (static_cast<double>(xr[j]) - l.max));
    out[r] = to_float(s);
  });
}

void sigmoid_xent(const Tensor &logits, const Tensor &labels, const Tensor &loss) {
  const int64_t n = loss.num_elements();
  const float *x = logits.data<float>(), *z = labels.data<float>();
  float *out = loss.mutable_data<float>();
  const bool parallel = n >= kLossParallelThreshold;
  if (parallel) apply_num_threads();
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    // TF's form: never exp of a positive number, and log1p keeps exp(-|x|) when it is tiny.
    out[i] = (v > 0.0f ? v : 0.0f) - v * z[i] + std::log1p(std::exp(-std::fabs(v)));
  }
}

}  // namespace kiln::kernels
