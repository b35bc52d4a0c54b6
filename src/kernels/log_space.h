// Sums of probabilities kept as logarithms (the CTC loss and CTC decoding).
#pragma once

#include <cmath>
#include <limits>

namespace kiln::kernels {

inline constexpr double kLogZero = -std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)) without overflow; kLogZero is probability 0; NaN if either is NaN.
inline double log_add(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  if (a == kLogZero) return b;
  if (b == kLogZero) return a;
  return (a > b ? a : b) + std::log1p(std::exp(-std::fabs(a - b)));
}

}  // namespace kiln::kernels
