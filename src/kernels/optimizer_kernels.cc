#include "kernels/optimizer_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/elementwise_loops.h"
#include "kernels/optimizer_simd.h"

namespace kiln::kernels {

namespace {

// The gradient as the rule sees it, clipped and scaled as the base optimizer does, and the weight
// after decoupled weight decay. Without clipping, scale is 1 and the bound +inf, which leave every
// value (NaN, inf, -0 too) as it is, so the loops carry no branches; the decay, which would turn
// an infinite weight into NaN even at rate 0, is a template switch.
template <typename T, bool Decay>
struct Prep {
  explicit Prep(const UpdateParams &p)
      : scale(static_cast<T>(p.scale ? p.clip_mul / p.clip_div : 1.0)),
        hi(p.clip_value > 0 ? static_cast<T>(p.clip_value) : std::numeric_limits<T>::infinity()),
        wd(static_cast<T>(p.weight_decay)),
        lr(static_cast<T>(p.decay_lr)) {}
  T grad(T g) const {
    g = g * scale;
    return g < -hi ? -hi : (g > hi ? hi : g);
  }
  T weight(T w) const {
    if constexpr (Decay)
      return w - w * wd * lr;
    else
      return w;
  }
  static constexpr bool kDecay = Decay;
  T scale, hi, wd, lr;
};

template <typename T>
T coef(const UpdateParams &p, int i) {
  return static_cast<T>(p.c[i]);
}

// Each rule runs over [b, e) of one chunk. Pointers: w (dst, src), slots s1..s3 (dst, src), g.
template <typename T>
struct Span {
  T *w;
  const T *w0;
  T *s[kMaxSlots];
  const T *s0[kMaxSlots];
  const T *g;
};

// SGD: c = {lr, momentum}.
template <typename T, typename Pre, UpdateRule R>
void sgd(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), mom = coef<T>(p, 1);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    if constexpr (R == UpdateRule::kSgd) {
      x.w[i] = w - g * lr;
    } else {
      const T m = x.s0[0][i] * mom - g * lr;
      x.s[0][i] = m;
      if constexpr (R == UpdateRule::kSgdNesterov)
        x.w[i] = w + (m * mom - g * lr);
      else
        x.w[i] = w + m;
    }
  }
}

// Adam's and Nadam's moments, into slots 0 and 1: m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2).
template <typename T>
inline void moments(const Span<T> &x, int64_t i, T g, T one_b1, T one_b2, T *m, T *v) {
  *m = x.s0[0][i] + (g - x.s0[0][i]) * one_b1;
  *v = x.s0[1][i] + (g * g - x.s0[1][i]) * one_b2;
  x.s[0][i] = *m;
  x.s[1][i] = *v;
}

// Adam's float32 vectors (kernels/optimizer_simd.h); other dtypes start with the scalar loop.
template <typename T, typename Pre, bool Amsgrad>
int64_t adam_vectors(const Span<T> &x, const Pre &pre, const T (&c)[4], int64_t b, int64_t e) {
  if constexpr (std::is_same_v<T, float>) {
    const optimizer_simd::AdamSpan s{x.w, x.w0, x.s[0], x.s0[0], x.s[1], x.s0[1], x.s[2], x.s0[2], x.g};
    const optimizer_simd::AdamCoefficients k{pre.scale, pre.hi, Pre::kDecay, pre.wd, pre.lr,
                                             Amsgrad,   c[0],   c[1],        c[2],   c[3]};
    return optimizer_simd::adam_f32(s, k, b, e);
  } else {
    (void)x, (void)pre, (void)c, (void)e;
    return b;
  }
}

// Adam: c = {alpha = lr * sqrt(1 - b2^t) / (1 - b1^t), 1 - b1, 1 - b2, epsilon}.
template <typename T, typename Pre, bool Amsgrad>
void adam(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T alpha = coef<T>(p, 0), one_b1 = coef<T>(p, 1), one_b2 = coef<T>(p, 2), eps = coef<T>(p, 3);
  const T c[4] = {alpha, one_b1, one_b2, eps};
  for (int64_t i = adam_vectors<T, Pre, Amsgrad>(x, pre, c, b, e); i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    T m, v;
    moments(x, i, g, one_b1, one_b2, &m, &v);
    if constexpr (Amsgrad) {
      const T vh = x.s0[2][i];
      v = (vh < v || v != v) ? v : vh;  // ops.maximum: a NaN in either propagates
      x.s[2][i] = v;
    }
    x.w[i] = w - (m * alpha) / (std::sqrt(v) + eps);
  }
}

// RMSprop: c = {lr, rho, 1 - rho, epsilon, momentum}; slots velocity[, momentum][, average_gradient].
template <typename T, typename Pre>
void rmsprop(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), rho = coef<T>(p, 1), one_rho = coef<T>(p, 2), eps = coef<T>(p, 3),
          mom = coef<T>(p, 4);
  const int avg = p.use_momentum ? 2 : 1;
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    const T vel = rho * x.s0[0][i] + one_rho * (g * g);
    x.s[0][i] = vel;
    T denom;
    if (p.centered) {
      const T a = rho * x.s0[avg][i] + one_rho * g;
      x.s[avg][i] = a;
      denom = vel - a * a + eps;
    } else {
      denom = vel + eps;
    }
    const T inc = (lr * g) / std::sqrt(denom);
    if (p.use_momentum) {
      const T m = mom * x.s0[1][i] + inc;
      x.s[1][i] = m;
      x.w[i] = w - m;
    } else {
      x.w[i] = w - inc;
    }
  }
}

// Adagrad: c = {lr, epsilon}.
template <typename T, typename Pre>
void adagrad(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), eps = coef<T>(p, 1);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    const T acc = x.s0[0][i] + g * g;
    x.s[0][i] = acc;
    x.w[i] = w - (lr * g) / std::sqrt(acc + eps);
  }
}

// Adamax: c = {lr, 1 - b1, b2, 1 - b1^t, epsilon}; slots momentum, norm.
// m += (g - m)(1 - b1); u = max(b2 u, |g|) (a NaN propagates); w -= (lr m) / ((1 - b1^t)(u + eps)).
template <typename T, typename Pre>
void adamax(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), one_b1 = coef<T>(p, 1), b2 = coef<T>(p, 2), one_b1_power = coef<T>(p, 3),
          eps = coef<T>(p, 4);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    const T m = x.s0[0][i] + (g - x.s0[0][i]) * one_b1;
    const T scaled = b2 * x.s0[1][i], a = std::abs(g);
    const T u = (scaled != scaled || a != a) ? scaled + a : (scaled < a ? a : scaled);
    x.s[0][i] = m;
    x.s[1][i] = u;
    x.w[i] = w - (lr * m) / (one_b1_power * (u + eps));
  }
}

// Lion: c = {lr, b1, 1 - b1, b2, 1 - b2}; slot momentum.
// w -= lr sign(m b1 + g (1 - b1)) (sign of NaN is NaN, of 0 is 0); m = m b2 + g (1 - b2).
template <typename T, typename Pre>
void lion(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), b1 = coef<T>(p, 1), one_b1 = coef<T>(p, 2), b2 = coef<T>(p, 3),
          one_b2 = coef<T>(p, 4);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    const T m0 = x.s0[0][i];
    const T d = m0 * b1 + g * one_b1;
    const T sign = d != d ? d : (d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0)));
    x.w[i] = w - lr * sign;
    x.s[0][i] = m0 * b2 + g * one_b2;
  }
}

// Adadelta: c = {lr, rho, 1 - rho, epsilon}.
template <typename T, typename Pre>
void adadelta(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), rho = coef<T>(p, 1), one_rho = coef<T>(p, 2), eps = coef<T>(p, 3);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    const T ag = rho * x.s0[0][i] + one_rho * (g * g);
    x.s[0][i] = ag;
    const T adv0 = x.s0[1][i];
    const T delta = -((std::sqrt(adv0 + eps) * g) / std::sqrt(ag + eps));
    x.s[1][i] = rho * adv0 + one_rho * (delta * delta);
    x.w[i] = w + lr * delta;
  }
}

// Nadam: c = {lr, 1 - b1, 1 - b2, epsilon, u_{t+1}, 1 - prod_{t+1}, 1 - u_t, 1 - prod_t, 1 - b2^t}.
template <typename T, typename Pre>
void nadam(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), one_b1 = coef<T>(p, 1), one_b2 = coef<T>(p, 2), eps = coef<T>(p, 3),
          u_next = coef<T>(p, 4), one_prod_next = coef<T>(p, 5), one_u = coef<T>(p, 6),
          one_prod = coef<T>(p, 7), one_b2_power = coef<T>(p, 8);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    T m, v;
    moments(x, i, g, one_b1, one_b2, &m, &v);
    const T m_hat = (u_next * m) / one_prod_next + (one_u * g) / one_prod;
    const T v_hat = v / one_b2_power;
    x.w[i] = w - (m_hat * lr) / (std::sqrt(v_hat) + eps);
  }
}

// Ftrl: c = {lr, -learning_rate_power, l1, 2 * (l2 + beta / (2 lr)), 2 * l2_shrinkage}; slots
// accumulator, linear. In Keras's order: n' = n + g^2; linear += g + shrink w - (n'^p - n^p) / lr * w;
// w = (clip(linear, -l1, l1) - linear) / (n'^p / lr + 2 l2); p = -learning_rate_power.
template <typename T, typename Pre>
void ftrl(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T lr = coef<T>(p, 0), power = coef<T>(p, 1), l1 = coef<T>(p, 2), two_l2 = coef<T>(p, 3),
          shrink = coef<T>(p, 4);
  for (int64_t i = b; i < e; ++i) {
    const T g = pre.grad(x.g[i]);
    const T w = pre.weight(x.w0[i]);
    const T n = x.s0[0][i], n_new = n + g * g;
    const T p_new = std::pow(n_new, power), p_old = std::pow(n, power);
    const T linear = x.s0[1][i] + ((g + shrink * w) - ((p_new - p_old) / lr) * w);
    const T clipped = linear < -l1 ? -l1 : (linear > l1 ? l1 : linear);
    x.s[0][i] = n_new;
    x.s[1][i] = linear;
    x.w[i] = (clipped - linear) / (p_new / lr + two_l2);
  }
}

// Lamb: c = {lr, 1 - b1, 1 - b2, 1 - b1^t, 1 - b2^t, epsilon, ratio * lr}; slots momentum,
// velocity. Keras's update r = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) after Adam's moments;
// w -= (ratio lr) r, where ratio = |w| / |r| over the whole variable (lamb_ratio_lr below).
template <typename T, typename Pre>
T lamb_direction(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t i, T *m, T *v) {
  const T g = pre.grad(x.g[i]);
  *m = x.s0[0][i] + (g - x.s0[0][i]) * coef<T>(p, 1);
  *v = x.s0[1][i] + (g * g - x.s0[1][i]) * coef<T>(p, 2);
  return (*m / coef<T>(p, 3)) / (std::sqrt(*v / coef<T>(p, 4)) + coef<T>(p, 5));
}

template <typename T, typename Pre>
void lamb(const Span<T> &x, const Pre &pre, const UpdateParams &p, int64_t b, int64_t e) {
  const T step = coef<T>(p, 6);
  for (int64_t i = b; i < e; ++i) {
    T m, v;
    const T r = lamb_direction(x, pre, p, i, &m, &v);
    const T w = pre.weight(x.w0[i]);
    x.s[0][i] = m;
    x.s[1][i] = v;
    x.w[i] = w - step * r;
  }
}

template <typename T, bool Decay>
void run_rule(const Span<T> &x, const UpdateParams &p, int64_t b, int64_t e) {
  using P = Prep<T, Decay>;
  const P pre(p);
  switch (p.rule) {
    case UpdateRule::kSgd:
      return sgd<T, P, UpdateRule::kSgd>(x, pre, p, b, e);
    case UpdateRule::kSgdMomentum:
      return sgd<T, P, UpdateRule::kSgdMomentum>(x, pre, p, b, e);
    case UpdateRule::kSgdNesterov:
      return sgd<T, P, UpdateRule::kSgdNesterov>(x, pre, p, b, e);
    case UpdateRule::kAdam:
      return adam<T, P, false>(x, pre, p, b, e);
    case UpdateRule::kAdamAmsgrad:
      return adam<T, P, true>(x, pre, p, b, e);
    case UpdateRule::kRmsprop:
      return rmsprop<T, P>(x, pre, p, b, e);
    case UpdateRule::kAdagrad:
      return adagrad<T, P>(x, pre, p, b, e);
    case UpdateRule::kAdadelta:
      return adadelta<T, P>(x, pre, p, b, e);
    case UpdateRule::kNadam:
      return nadam<T, P>(x, pre, p, b, e);
    case UpdateRule::kAdamax:
      return adamax<T, P>(x, pre, p, b, e);
    case UpdateRule::kLion:
      return lion<T, P>(x, pre, p, b, e);
    case UpdateRule::kFtrl:
      return ftrl<T, P>(x, pre, p, b, e);
    case UpdateRule::kLamb:
      return lamb<T, P>(x, pre, p, b, e);
    case UpdateRule::kAdafactor:  // not elementwise: update_typed runs adafactor() instead
      return;
  }
}

template <typename T>
void run(const Span<T> &x, const UpdateParams &p, int64_t b, int64_t e) {
  if (p.weight_decay != 0)
    run_rule<T, true>(x, p, b, e);
  else
    run_rule<T, false>(x, p, b, e);
}

int num_slots(const UpdateParams &p) {
  switch (p.rule) {
    case UpdateRule::kSgd:
      return 0;
    case UpdateRule::kSgdMomentum:
    case UpdateRule::kSgdNesterov:
    case UpdateRule::kAdagrad:
    case UpdateRule::kLion:
      return 1;
    case UpdateRule::kAdam:
    case UpdateRule::kAdadelta:
    case UpdateRule::kNadam:
    case UpdateRule::kAdamax:
    case UpdateRule::kFtrl:
    case UpdateRule::kLamb:
      return 2;
    case UpdateRule::kAdamAmsgrad:
      return 3;
    case UpdateRule::kRmsprop:
      return 1 + (p.use_momentum ? 1 : 0) + (p.centered ? 1 : 0);
    case UpdateRule::kAdafactor:
      return p.factored ? 3 : 1;
  }
  return 0;
}

// Blocks of the sum of squares: a fixed size, so the partial sums (and their order) depend on
// n alone.
constexpr int64_t kSquaresBlock = 16384;

// Eight running sums (element i into sum i % 8, as blocks start at multiples of 8), added in a
// fixed order at the end: the compiler may keep them in vector lanes without reordering a sum.
// at(i) is element i as a double.
template <typename At>
double block_squares(const At &at, int64_t b, int64_t e) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t i = b;
  for (; i + kLanes <= e; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const double v = at(i + k);
      acc[k] += v * v;
    }
  for (int k = 0; i < e; ++i, ++k) {
    const double v = at(i);
    acc[k] += v * v;
  }
  double s = 0;
  for (double a : acc) s += a;
  return s;
}

// The sum of at(i)^2 for i in [0, n), in fixed blocks whatever the thread count.
template <typename At>
double squares_of(const At &at, int64_t n) {
  const int64_t blocks = (n + kSquaresBlock - 1) / kSquaresBlock;
  if (blocks <= 1) return block_squares(at, 0, n);
  std::vector<double> partial(static_cast<size_t>(blocks));
  apply_num_threads();
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < blocks; ++k)
    partial[static_cast<size_t>(k)] =
        block_squares(at, k * kSquaresBlock, std::min(n, (k + 1) * kSquaresBlock));
  double s = 0;
  for (double v : partial) s += v;
  return s;
}

template <typename T>
double squares_typed(const T *x, int64_t n) {
  return squares_of([x](int64_t i) { return static_cast<double>(x[i]); }, n);
}

// Lamb's ratio times the learning rate, as Keras computes it in the variable's dtype: |w| (after
// the weight decay) over |r| (the Adam-style direction), or 1 unless both norms are > 0 (NaN
// norms give 1). The squares add in double.
template <typename T, bool Decay>
T lamb_ratio_lr(const Span<T> &x, const UpdateParams &p, int64_t n) {
  const Prep<T, Decay> pre(p);
  const T w_norm =
      std::sqrt(static_cast<T>(squares_of([&](int64_t i) { return double(pre.weight(x.w0[i])); }, n)));
  const T r_norm = std::sqrt(static_cast<T>(squares_of(
      [&](int64_t i) {
        T m, v;
        return double(lamb_direction(x, pre, p, i, &m, &v));
      },
      n)));
  const T ratio = w_norm > T(0) ? (r_norm > T(0) ? w_norm / r_norm : T(1)) : T(1);
  return ratio * coef<T>(p, 0);
}

// TF's maximum and minimum, which return NaN when either operand is NaN.
template <typename T>
T nan_max(T a, T b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<T>::quiet_NaN() : (a < b ? b : a);
}
template <typename T>
T nan_min(T a, T b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<T>::quiet_NaN() : (b < a ? b : a);
}

// The mean of n values whose sum (accumulated in double) is sum, rounded once to T.
template <typename T>
T mean_of(double sum, int64_t n) {
  return static_cast<T>(sum / static_cast<double>(n));
}

// Adafactor (Keras 3's update_step): c = {lr, t, relative step (1 or 0), epsilon_1, epsilon_2,
// clip_threshold, beta_2_decay}. Each scalar and each elementwise step is computed in T in
// Keras's order; the means (of squares for the RMS, of rows and columns for the factors) add in
// double in a fixed order and round once. Slots: r [..., rows], c [..., cols] and velocity when
// factored, velocity alone otherwise. Serial passes: r and c, then velocity and the sum of the
// update's squares, then the weight. Its buffer is allocated before anything is written.
template <typename T, bool Decay>
void adafactor(const Span<T> &x, const UpdateParams &p, int64_t n) {
  const Prep<T, Decay> pre(p);
  const T one(1), step = coef<T>(p, 1), eps1 = coef<T>(p, 3), eps2 = coef<T>(p, 4);
  const T inv_sqrt_step = one / std::sqrt(step);
  T lr = coef<T>(p, 0);
  if (p.c[2] != 0) lr = nan_min(lr, inv_sqrt_step);
  const T rho = nan_min(lr, inv_sqrt_step);
  const T w_rms =
      std::sqrt(mean_of<T>(squares_of([&](int64_t i) { return double(pre.weight(x.w0[i])); }, n), n));
  const T alpha = nan_max(eps2, w_rms) * rho;
  const T beta = one - std::pow(step, coef<T>(p, 6));
  const T one_beta = one - beta;
  auto square = [&](int64_t i) {
    const T g = pre.grad(x.g[i]);
    return g * g + eps1;
  };
  T *v = x.s[p.factored ? 2 : 0];
  if (p.factored) {
    const int64_t batches = p.factor[0], rows = p.factor[1], cols = p.factor[2];
    std::vector<double> col_sums(static_cast<size_t>(cols));
    for (int64_t b = 0; b < batches; ++b) {
      std::fill(col_sums.begin(), col_sums.end(), 0.0);
      double r_sum = 0;
      for (int64_t i = 0; i < rows; ++i) {
        double row_sum = 0;
        for (int64_t j = 0; j < cols; ++j) {
          const double s = square((b * rows + i) * cols + j);
          row_sum += s;
          col_sums[static_cast<size_t>(j)] += s;
        }
        const int64_t k = b * rows + i;
        x.s[0][k] = beta * x.s0[0][k] + one_beta * mean_of<T>(row_sum, cols);
        r_sum += x.s[0][k];
      }
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t k = b * cols + j;
        x.s[1][k] = beta * x.s0[1][k] + one_beta * mean_of<T>(col_sums[static_cast<size_t>(j)], rows);
      }
      const T r_mean = mean_of<T>(r_sum, rows);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j)
          v[(b * rows + i) * cols + j] = (x.s[0][b * rows + i] / r_mean) * x.s[1][b * cols + j];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) v[i] = beta * x.s0[0][i] + one_beta * square(i);
  }
  auto u = [&](int64_t i) { return pre.grad(x.g[i]) / std::sqrt(v[i]); };
  const T u_rms = std::sqrt(mean_of<T>(squares_of([&](int64_t i) { return double(u(i)); }, n), n));
  const T denominator = nan_max(one, u_rms / coef<T>(p, 5));
  for (int64_t i = 0; i < n; ++i) x.w[i] = pre.weight(x.w0[i]) - alpha * (u(i) / denominator);
}

template <typename T>
void update_typed(int64_t n, const UpdateParams &p, void *const *dst, const void *const *src,
                  const void *grad) {
  Span<T> x{};
  x.w = static_cast<T *>(dst[0]);
  x.w0 = static_cast<const T *>(src[0]);
  const int slots = num_slots(p);
  for (int k = 0; k < slots; ++k) {
    x.s[k] = static_cast<T *>(dst[k + 1]);
    x.s0[k] = static_cast<const T *>(src[k + 1]);
  }
  x.g = static_cast<const T *>(grad);
  if (p.rule == UpdateRule::kAdafactor) {
    if (p.weight_decay != 0)
      adafactor<T, true>(x, p, n);
    else
      adafactor<T, false>(x, p, n);
    return;
  }
  if (p.rule == UpdateRule::kLamb) {  // a first pass for the norms, writing nothing
    UpdateParams q = p;
    q.c[6] = p.weight_decay != 0 ? lamb_ratio_lr<T, true>(x, p, n) : lamb_ratio_lr<T, false>(x, p, n);
    parallel_chunks(n, [&](int64_t b, int64_t e) { run<T>(x, q, b, e); });
    return;
  }
  parallel_chunks(n, [&](int64_t b, int64_t e) { run<T>(x, p, b, e); });
}

}  // namespace

void apply_update(DType dtype, int64_t n, const UpdateParams &p, void *const *dst, const void *const *src,
                  const void *grad) {
  if (dtype == DType::kFloat32) return update_typed<float>(n, p, dst, src, grad);
  if (dtype == DType::kFloat64) return update_typed<double>(n, p, dst, src, grad);
  fail(Code::kUnimplemented, "optimizer update: dtype ", dtype_name(dtype),
       " is not supported; float32 or float64");
}

double sum_of_squares(DType dtype, const void *data, int64_t n) {
  if (dtype == DType::kFloat32) return squares_typed(static_cast<const float *>(data), n);
  if (dtype == DType::kFloat64) return squares_typed(static_cast<const double *>(data), n);
  fail(Code::kUnimplemented, "sum_of_squares: dtype ", dtype_name(dtype),
       " is not supported; float32 or float64");
}

}  // namespace kiln::kernels
