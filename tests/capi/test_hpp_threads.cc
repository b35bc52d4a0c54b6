// kiln.hpp per-thread thread counts: kiln::set_num_threads_for_this_thread and
// kiln::ThreadCountScope apply to the calling std::thread only, give the global-count bits,
// and reject out-of-range values with kiln::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

using kiln::Tensor;

Tensor filled(const kiln::Dims &dims, float scale) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 0.1));
  return Tensor::from_vector<float>(v, dims);
}

struct Work {
  Tensor a = filled({48, 40}, 1), b = filled({40, 56}, 0.5f), x = filled({2, 9, 9, 8}, 1),
         f = filled({3, 3, 8, 16}, 0.25f);
  std::vector<Tensor> run() const {
    return {kiln::matmul(a, b), kiln::conv2d(x, f, kiln::Conv2dOptions().with_padding(kiln::Padding::same))};
  }
};

bool same_bits(const std::vector<Tensor> &a, const std::vector<Tensor> &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    std::vector<float> x = a[i].to_vector<float>(), y = b[i].to_vector<float>();
    if (x.size() != y.size() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

class HppThreads : public ::testing::Test {
 protected:
  void SetUp() override { kiln::set_num_threads(3); }
  void TearDown() override { kiln::set_num_threads_for_this_thread(0); }
};

TEST_F(HppThreads, OverrideAppliesToItsThreadOnlyAndKeepsTheBits) {
  const Work w;
  const std::vector<Tensor> want = w.run();
  int seen[3] = {0, 0, 0}, after[3] = {0, 0, 0};
  bool same[3] = {false, false, false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&, i] {
      if (i < 2) kiln::set_num_threads_for_this_thread(i + 1);
      seen[i] = kiln::num_threads();
      same[i] = same_bits(w.run(), want);
      kiln::set_num_threads_for_this_thread(0);
      after[i] = kiln::num_threads();
    });
  for (std::thread &t : threads) t.join();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(same[i]) << "thread " << i;
    EXPECT_EQ(seen[i], i < 2 ? i + 1 : 3);
    EXPECT_EQ(after[i], 3);
  }
  EXPECT_EQ(kiln::num_threads(), 3);
  EXPECT_EQ(kiln::num_threads_for_this_thread(), 0);
}

TEST_F(HppThreads, ScopeRestoresThePreviousOverride) {
  const Work w;
  const std::vector<Tensor> want = w.run();
  {
    kiln::ThreadCountScope outer(2);
    EXPECT_EQ(kiln::num_threads(), 2);
    {
      kiln::ThreadCountScope inner(1);
      EXPECT_EQ(kiln::num_threads(), 1);
      EXPECT_TRUE(same_bits(w.run(), want));
    }
    EXPECT_EQ(kiln::num_threads_for_this_thread(), 2);
    kiln::set_num_threads(4);  // the override still wins
    EXPECT_EQ(kiln::num_threads(), 2);
  }
  EXPECT_EQ(kiln::num_threads_for_this_thread(), 0);
  EXPECT_EQ(kiln::num_threads(), 4);
  std::thread([] {
    kiln::ThreadCountScope s(1);
    EXPECT_EQ(kiln::num_threads(), 1);
  }).join();
  EXPECT_EQ(kiln::num_threads(), 4);
}

TEST_F(HppThreads, OutOfRangeIsRejected) {
  kiln::set_num_threads_for_this_thread(2);
  for (int bad : {-1, 1 << 30, 100000}) {
    try {
      kiln::set_num_threads_for_this_thread(bad);
      FAIL() << "expected kiln::Error for " << bad;
    } catch (const kiln::Error &e) {
      EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
      const std::string m = e.what();
      EXPECT_NE(m.find("set_num_threads_for_this_thread"), std::string::npos) << m;
      EXPECT_NE(m.find("got " + std::to_string(bad)), std::string::npos) << m;
      EXPECT_NE(m.find("a count from 1 to"), std::string::npos) << m;
    }
  }
  EXPECT_THROW(kiln::ThreadCountScope(-3), kiln::Error);
  EXPECT_EQ(kiln::num_threads_for_this_thread(), 2);
}

// First calls of an unbuilt layer from several threads at once: one builds, the others wait for
// its build (kiln_layer_call: "building is serialised") and get the same result.
TEST_F(HppThreads, FirstCallsFromSeveralThreadsShareOneBuild) {
  const Tensor x = filled({2, 6}, 1);
  for (int round = 0; round < 100; ++round) {
    kiln::Layer layer = round % 2
                            ? kiln::Layer(kiln::Sequential({kiln::layers::Dense(4), kiln::layers::Dense(3)}))
                            : kiln::layers::Dense(3);
    std::vector<std::vector<float>> got(8);
    std::vector<std::string> errors;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t)
      threads.emplace_back([&, t] {
        try {
          got[t] = layer(x, false).to_vector<float>();
        } catch (const std::exception &e) {
          std::lock_guard<std::mutex> lock(mu);
          errors.push_back(e.what());
        }
      });
    for (std::thread &t : threads) t.join();
    ASSERT_TRUE(errors.empty()) << errors[0];
    EXPECT_EQ(layer.trainable_variables().size(), round % 2 ? 4u : 2u);  // built once
    for (const std::vector<float> &g : got) EXPECT_EQ(g, got[0]);
  }
}

}  // namespace
