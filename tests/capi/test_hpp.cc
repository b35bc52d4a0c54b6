// kiln.hpp tests: the header-only C++ API over the shared library.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "kiln/kiln.hpp"

namespace {

using kiln::Tensor;

TEST(Hpp, OperatorsAndBroadcasting) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<float>({10, 20, 30}, {3});
  Tensor c = (a + b) * 2.0f - a / 1.0f;
  EXPECT_EQ(c.shape(), (kiln::Dims{2, 3}));
  std::vector<float> got = c.to_vector<float>();
  std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(got[i], (av[i] + bv[i % 3]) * 2 - av[i]);
  EXPECT_FLOAT_EQ((-a).to_vector<float>()[5], -6.0f);
}

TEST(Hpp, CopiesShareTheImmutableValue) {
  Tensor a = Tensor::from_vector<float>({1, 2}, {2});
  Tensor b = a;
  Tensor moved = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from state is documented
  EXPECT_EQ(b.data<float>(), moved.data<float>());
}

TEST(Hpp, ErrorsAreExceptionsWithCodes) {
  Tensor a = kiln::zeros({2, 3});
  Tensor b = kiln::zeros({3, 2});
  try {
    (void)(a + b);
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor().shape(), kiln::Error);
  EXPECT_THROW(kiln::set_num_threads(0), kiln::Error);
}

TEST(Hpp, MatmulAndTapeGradient) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  kiln::Variable w(Tensor::from_vector<float>({0.5f, -1, 2, 0.25f}, {2, 2}), "w");
  kiln::GradientTape tape;
  Tensor loss = kiln::sum(kiln::matmul(x, w));
  tape.stop();
  std::vector<Tensor> g = tape.gradient(loss, std::vector<kiln::Variable>{w});
  ASSERT_TRUE(g[0].valid());
  // d sum(x w) / d w[k][j] = sum_i x[i][k]
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{4, 4, 6, 6}));
}

TEST(Hpp, NestedTapesGiveSecondOrder) {
  Tensor x = Tensor::from_vector<float>({-2, 0.5f, 3}, {3});
  kiln::GradientTape outer;
  outer.watch(x);
  kiln::GradientTape inner;
  inner.watch(x);
  Tensor y = x * x * x;
  inner.stop();
  Tensor dy = inner.gradient(y, x);
  outer.stop();
  Tensor d2y = outer.gradient(dy, x);
  std::vector<float> xs = x.to_vector<float>(), d1 = dy.to_vector<float>(), d2 = d2y.to_vector<float>();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(d1[i], 3 * xs[i] * xs[i], 1e-5);
    EXPECT_NEAR(d2[i], 6 * xs[i], 1e-5);
  }
}

TEST(Hpp, UnconnectedAndStopGradient) {
  Tensor x = Tensor::from_vector<float>({1, 2}, {2});
  Tensor z = Tensor::from_vector<float>({3, 4}, {2});
  kiln::GradientTape tape(true);
  tape.watch(x);
  tape.watch(z);
  Tensor y = x * kiln::stop_gradient(x);
  tape.stop();
  std::vector<Tensor> g = tape.gradient(y, {x, z});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_FALSE(g[1].valid());
  Tensor gz = tape.gradient(y, z, kiln::Unconnected::zero);
  EXPECT_EQ(gz.to_vector<float>(), (std::vector<float>{0, 0}));
}

TEST(Hpp, JacobianBatchJacobianResetAndStopRecording) {
  Tensor x = Tensor::from_vector<float>({1, -2, 3, 0.5f}, {2, 2});
  kiln::Variable v(Tensor::from_vector<float>({2, 3}, {2}), "v");
  kiln::GradientTape tape(true);
  tape.watch(x);
  Tensor y = x * x * v.value();  // [2, 2]: x[i, k]^2 v[k]
  Tensor ignored;
  {
    auto paused = tape.stop_recording();
    ignored = x * 2.0f;  // not recorded
  }
  Tensor z = x * 3.0f;  // recorded again
  tape.stop();
  const Tensor j = tape.jacobian(y, x);
  EXPECT_EQ(j.shape(), (kiln::Dims{2, 2, 2, 2}));
  const std::vector<float> xs = x.to_vector<float>(), jv = j.to_vector<float>(), vs = {2, 3};
  for (size_t a = 0; a < 4; ++a)
    for (size_t b = 0; b < 4; ++b) EXPECT_FLOAT_EQ(jv[a * 4 + b], a == b ? 2 * xs[a] * vs[a % 2] : 0.0f);
  const Tensor jvar = tape.jacobian(y, v);
  EXPECT_EQ(jvar.shape(), (kiln::Dims{2, 2, 2}));
  EXPECT_FLOAT_EQ(jvar.to_vector<float>()[3 * 2 + 1], xs[3] * xs[3]);  // d y[1, 1] / d v[1]
  const Tensor bj = tape.batch_jacobian(y, x);
  EXPECT_EQ(bj.shape(), (kiln::Dims{2, 2, 2}));
  EXPECT_FLOAT_EQ(bj.to_vector<float>()[1 * 4 + 1 * 2 + 1], 2 * xs[3] * vs[1]);
  EXPECT_FALSE(tape.gradient(ignored, x).valid());
  EXPECT_EQ(tape.gradient(z, x).to_vector<float>(), (std::vector<float>{3, 3, 3, 3}));
  EXPECT_THROW(tape.batch_jacobian(y, Tensor::from_vector<float>({1, 2, 3}, {3})), kiln::Error);
  tape.reset();
  EXPECT_FALSE(tape.gradient(z, x).valid());
}

TEST(Hpp, VariableAssignDoesNotChangeEarlierReads) {
  kiln::Variable v(kiln::ones({3}), "v", false);
  Tensor before = v.value();
  v.assign_add(kiln::ones({3}));
  v.assign_sub(Tensor::from_vector<float>({0.5f, 0.5f, 0.5f}, {3}));
  EXPECT_EQ(before.to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(v.value().to_vector<float>(), (std::vector<float>{1.5f, 1.5f, 1.5f}));
  EXPECT_EQ(v.name(), "v");
  EXPECT_FALSE(v.trainable());
  EXPECT_THROW(v.assign(kiln::ones({2})), kiln::Error);
}

TEST(Hpp, VariableUpdateInPlace) {
  kiln::Variable v(Tensor::from_vector<float>({1, 2}, {2}), "v");
  const Tensor held = v.value();
  v.update_in_place([](void *dst, const void *src, size_t n) {
    for (size_t i = 0; i < n / sizeof(float); ++i)
      static_cast<float *>(dst)[i] = static_cast<const float *>(src)[i] * 3;
  });
  EXPECT_EQ(v.value().to_vector<float>(), (std::vector<float>{3, 6}));
  EXPECT_EQ(held.to_vector<float>(), (std::vector<float>{1, 2}));  // an earlier read never changes
  EXPECT_THROW(v.update_in_place([](void *, const void *, size_t) { throw std::runtime_error("no"); }),
               kiln::Error);
}

TEST(Hpp, TapeBelongsToItsThread) {
  kiln::GradientTape tape;
  Tensor x = kiln::ones({2});
  bool threw = false;
  std::thread t([&] {
    try {
      tape.watch(x);
    } catch (const kiln::Error &e) {
      threw = e.code() == KILN_STATUS_FAILED_PRECONDITION;
    }
  });
  t.join();
  EXPECT_TRUE(threw);
}

TEST(Hpp, OpsFromSeveralThreads) {
  std::vector<std::thread> threads;
  std::vector<float> results(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      Tensor a = kiln::fill({32, 32}, 1.0 + k);
      float s = 0;
      for (int i = 0; i < 50; ++i) s = kiln::sum(kiln::matmul(a, a)).item<float>();
      results[static_cast<size_t>(k)] = s;
    });
  for (auto &t : threads) t.join();
  for (int k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(results[static_cast<size_t>(k)], 32.f * 32 * 32 * (1 + k) * (1 + k));
}

TEST(Hpp, SplitConcatRoundTrip) {
  Tensor a = kiln::range(0, 12, 1);
  Tensor m = kiln::reshape(a, {3, 4});
  std::vector<Tensor> parts = kiln::split(m, {1, 3}, 1);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].shape(), (kiln::Dims{3, 3}));
  Tensor back = kiln::concat(parts, 1);
  EXPECT_EQ(back.to_vector<float>(), m.to_vector<float>());
}

}  // namespace
