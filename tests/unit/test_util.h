// Shared helpers for the unit tests: host tensors, reference comparison and
// the finite-difference gradient check every differentiable op goes through.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../temp_dir.h"
#include "autodiff/tape.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/threads.h"

namespace kiln::testing {

// The source tree's path (source_dir.cc), for tests that read golden files and fixtures.
std::string source_dir();

inline Tensor make(const Shape &shape, const std::vector<float> &values) {
  return Tensor::from_data(DType::kFloat32, shape, values.data(), values.size() * sizeof(float));
}

template <typename T>
inline Tensor make_typed(const Shape &shape, const std::vector<T> &values) {
  return Tensor::from_data(dtype_of<T>::value, shape, values.data(), values.size() * sizeof(T));
}

inline Tensor make_bool(const Shape &shape, const std::vector<int> &values) {
  std::vector<uint8_t> b(values.begin(), values.end());
  return Tensor::from_data(DType::kBool, shape, b.data(), b.size());
}

// Uniform values in [lo, hi), deterministic per seed.
inline Tensor random_tensor(const Shape &shape, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape.num_elements()));
  for (float &x : v) x = dist(gen);
  return make(shape, v);
}

template <typename T = float>
inline std::vector<T> values(const Tensor &t) {
  const T *p = t.data<T>();
  return std::vector<T>(p, p + t.num_elements());
}

inline void expect_near(const Tensor &got, const std::vector<float> &want, float tol = 1e-5f,
                        const std::string &what = "") {
  ASSERT_EQ(got.dtype(), DType::kFloat32) << what;
  ASSERT_EQ(static_cast<size_t>(got.num_elements()), want.size()) << what << " " << got.description();
  const float *p = got.data<float>();
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(p[i], want[i], tol * (1.0f + std::fabs(want[i]))) << what << " at element " << i;
}

struct GradCheckOptions {
  float eps = 1e-2f;
  float rtol = 2e-2f;
  float atol = 2e-3f;
};

// Compares the tape's gradient of sum(f(inputs) * w) (w a fixed random weighting,
// passed as the output gradient) with central differences computed in double.
inline void check_gradients(const std::string &name, const std::function<Tensor(const std::vector<Tensor> &)> &f,
                            const std::vector<Tensor> &inputs, GradCheckOptions opt = {}) {
  std::vector<Tensor> analytic;
  Tensor w;
  {
    autodiff::Tape tape(false, true);
    for (const Tensor &x : inputs) tape.watch(x);
    Tensor y = f(inputs);
    ASSERT_EQ(y.dtype(), DType::kFloat32) << name;
    w = random_tensor(y.shape(), 1234u);
    tape.stop_recording();
    analytic = tape.gradient(y, inputs, autodiff::Unconnected::kZero, w);
  }
  auto objective = [&](const std::vector<Tensor> &xs) {
    Tensor y = f(xs);
    const float *py = y.data<float>();
    const float *pw = w.data<float>();
    double s = 0;
    for (int64_t i = 0; i < y.num_elements(); ++i) s += static_cast<double>(py[i]) * pw[i];
    return s;
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    ASSERT_TRUE(analytic[k].defined()) << name << ": no gradient for input " << k;
    ASSERT_EQ(analytic[k].shape(), inputs[k].shape()) << name << ": gradient shape for input " << k;
    std::vector<float> base = values(inputs[k]);
    for (size_t i = 0; i < base.size(); ++i) {
      std::vector<Tensor> xs = inputs;
      std::vector<float> v = base;
      v[i] = base[i] + opt.eps;
      xs[k] = make(inputs[k].shape(), v);
      double up = objective(xs);
      v[i] = base[i] - opt.eps;
      xs[k] = make(inputs[k].shape(), v);
      double down = objective(xs);
      double numeric = (up - down) / (2.0 * opt.eps);
      double got = analytic[k].data<float>()[i];
      EXPECT_NEAR(got, numeric, opt.atol + opt.rtol * std::fabs(numeric))
          << name << ": d/d input " << k << " element " << i;
    }
  }
}

using GradFn = std::function<Tensor(const std::vector<Tensor> &)>;

// An inner tape's gradient of f with respect to input `wrt` (for a fixed random output gradient),
// as a function an outer tape can differentiate again: the second-order checks.
inline GradFn inner_gradient(const GradFn &f, size_t wrt) {
  return [f, wrt](const std::vector<Tensor> &xs) {
    autodiff::Tape tape(false, false);
    for (const Tensor &x : xs) tape.watch(x);
    Tensor y = f(xs);
    return tape.gradient(y, {xs[wrt]}, autodiff::Unconnected::kZero, random_tensor(y.shape(), 99u))[0];
  };
}

// One row of an op family's gradient table: f checked at random inputs of these shapes.
struct ShapeGradCase {
  std::string name;
  std::vector<Shape> shapes;
  GradFn f;
};

// Runs check_gradients over every row; inputs are uniform in [-1, 1), seeded from `seed`.
inline void check_gradient_table(const std::vector<ShapeGradCase> &cases, unsigned seed) {
  for (const ShapeGradCase &c : cases) {
    std::vector<Tensor> inputs;
    for (const Shape &s : c.shapes) inputs.push_back(random_tensor(s, seed++));
    check_gradients(c.name, c.f, inputs);
  }
}

// Expects f() to throw kiln::Error with `code` and a message containing every fragment.
inline void expect_error(const std::function<void()> &f, Code code, const std::vector<std::string> &fragments) {
  try {
    f();
    ADD_FAILURE() << "expected an error";
  } catch (const Error &e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string &frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << "message '" << e.what() << "' lacks '" << frag << "'";
  }
}

// Same shape, dtype and bytes.
inline bool same_bits(const Tensor &a, const Tensor &b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

// Four threads (at 1 and 2 kernel threads each) run f() five times each: every result must have
// want's bits. For caches shared between threads (conv filters, packed gemv weights).
inline void expect_same_bits_from_threads(const std::function<Tensor()> &f, const Tensor &want) {
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      set_num_threads_for_this_thread(1 + t % 2);
      int good = 0;
      for (int i = 0; i < 5; ++i) good += same_bits(f(), want);
      ok[static_cast<size_t>(t)] = good;
    });
  for (std::thread &t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[static_cast<size_t>(t)], 5) << "thread " << t;
}

}  // namespace kiln::testing
