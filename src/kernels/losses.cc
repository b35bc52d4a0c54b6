#include "kernels/losses.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/threads.h"
#include "kernels/dispatch.h"
#include "kernels/log_space.h"

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

// ---- CTC ----

// Doubles of scratch one CTC sample needs: log-softmax [frames, classes], alpha and beta
// [frames, states], and one occupancy row [classes].
int64_t ctc_scratch(int64_t frames, int64_t classes, int64_t max_label) {
  return frames * classes + 2 * frames * (2 * max_label + 1) + classes;
}

// One sample over its n frames and u labels; states s = 0..2u are blank (even s) and label
// (s - 1) / 2 (odd s). A label state is entered from itself, the blank before it, and the label
// before that when the two labels differ. grad (NULL: none) gets frames_all rows.
template <typename T, typename Index>
void ctc_sample(const T *x, const Index *lab, int64_t u, int64_t n, int64_t frames_all, int64_t c,
                int64_t blank, double *scratch, T *loss, T *grad) {
  const int64_t states = 2 * u + 1;
  double *lp = scratch, *alpha = lp + n * c, *beta = alpha + n * states, *occ = beta + n * states;
  auto label = [&](int64_t s) { return s % 2 == 0 ? blank : static_cast<int64_t>(lab[(s - 1) / 2]); };
  // Entering odd s from s - 2 (forward), or leaving it for s + 2 (backward).
  auto skips_back = [&](int64_t s) { return s % 2 == 1 && s >= 3 && lab[(s - 1) / 2] != lab[(s - 3) / 2]; };
  auto skips_ahead = [&](int64_t s) {
    return s % 2 == 1 && s + 2 < states && lab[(s - 1) / 2] != lab[(s + 1) / 2];
  };
  for (int64_t t = 0; t < n; ++t) {
    const T *row = x + t * c;
    const RowLse l = row_lse(row, c);
    for (int64_t j = 0; j < c; ++j) lp[t * c + j] = (static_cast<double>(row[j]) - l.max) - l.shift;
  }
  double log_p = u == 0 ? 0.0 : kLogZero;  // no frames: only the empty labelling fits
  if (n > 0) {
    for (int64_t s = 0; s < states; ++s) alpha[s] = s < 2 ? lp[label(s)] : kLogZero;
    for (int64_t t = 1; t < n; ++t) {
      const double *prev = alpha + (t - 1) * states;
      for (int64_t s = 0; s < states; ++s) {
        double a = prev[s];
        if (s >= 1) a = log_add(a, prev[s - 1]);
        if (skips_back(s)) a = log_add(a, prev[s - 2]);
        alpha[t * states + s] = a + lp[t * c + label(s)];
      }
    }
    double *last = beta + (n - 1) * states;
    for (int64_t s = 0; s < states; ++s) last[s] = s + 2 >= states ? lp[(n - 1) * c + label(s)] : kLogZero;
    for (int64_t t = n - 2; t >= 0; --t) {
      const double *next = beta + (t + 1) * states;
      for (int64_t s = 0; s < states; ++s) {
        double b = next[s];
        if (s + 1 < states) b = log_add(b, next[s + 1]);
        if (skips_ahead(s)) b = log_add(b, next[s + 2]);
        beta[t * states + s] = b + lp[t * c + label(s)];
      }
    }
    const double *end = alpha + (n - 1) * states;
    log_p = log_add(end[states - 1], states > 1 ? end[states - 2] : kLogZero);
  }
  *loss = narrow<T>(-log_p);
  if (!grad) return;
  const bool possible = log_p > kLogZero;  // NaN or -inf: every gradient of the sample is NaN
  for (int64_t t = 0; t < n; ++t) {
    // Each state's share of frame t: alpha * beta / emission (both hold frame t's emission),
    // normalized over the frame's states, as TF does, rather than by p: every frame's sum is p in
    // exact arithmetic, and the frame's own sum keeps huge logits from cancelling across frames.
    double frame = kLogZero;
    for (int64_t j = 0; j < c; ++j) occ[j] = kLogZero;
    for (int64_t s = 0; s < states; ++s) {
      const double both = alpha[t * states + s] + beta[t * states + s];
      if (both == kLogZero) continue;  // unreachable (a -inf emission would give -inf - -inf)
      const double v = both - lp[t * c + label(s)];
      occ[label(s)] = log_add(occ[label(s)], v);
      frame = log_add(frame, v);
    }
    for (int64_t j = 0; j < c; ++j) {
      const double taken = occ[j] == kLogZero ? 0.0 : std::exp(occ[j] - frame);
      grad[t * c + j] =
          possible ? narrow<T>(std::exp(lp[t * c + j]) - taken) : std::numeric_limits<T>::quiet_NaN();
    }
  }
  for (int64_t i = n * c; i < frames_all * c; ++i) grad[i] = T(0);
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

void ctc_loss(DType dtype, const void *logits, DType label_dtype, const void *labels,
              const int64_t *label_length, const int64_t *logit_length, int64_t batch, int64_t frames,
              int64_t classes, int64_t max_label, int64_t blank, void *loss, void *grad) {
  if (batch == 0) return;
  float_types(dtype, "ctc_loss", [&](auto t) {
    using T = decltype(t);
    const T *x = static_cast<const T *>(logits);
    T *out = static_cast<T *>(loss), *d = static_cast<T *>(grad);
    with_labels(label_dtype, labels, [&](auto *l) {
      const int64_t per = ctc_scratch(frames, classes, max_label);
      const bool parallel =
          batch > 1 && batch * frames * (classes + 2 * max_label + 1) >= kLossParallelThreshold;
      if (parallel) apply_num_threads();
      const int64_t slabs = parallel ? omp_get_max_threads() : 1;
      std::vector<double> scratch(static_cast<size_t>(slabs * per));
      // One sample per iteration, each serial: the result does not depend on the thread count.
#pragma omp parallel for if (parallel) schedule(static)
      for (int64_t b = 0; b < batch; ++b)
        ctc_sample<T>(x + b * frames * classes, l + b * max_label, label_length[b], logit_length[b], frames,
                      classes, blank, scratch.data() + omp_get_thread_num() * per, out + b,
                      d ? d + b * frames * classes : nullptr);
    });
  });
}

}  // namespace kiln::kernels
