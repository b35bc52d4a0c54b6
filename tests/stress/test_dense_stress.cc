// ops::dense from 4 std::threads at once (half of them running kernels at one thread): every
// forward result and gradient equals, bit for bit, the same call made alone. The shapes reach the
// one-piece, threaded-whole and tall-K (pieces, bias added after them) paths of the fused kernel,
// with activations whose gradients read y and the pre-activation. And batch-1 inference, whose
// gemv splits its panels with the spin team (kernels/spin_team.h).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "autodiff/tape.h"
#include "core/threads.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::random_tensor;

struct DenseCase {
  Tensor x, w, b, dy;
  ops::DenseActivation act;
};

// y and the gradients of sum(y * dy) with respect to x, w and b.
std::vector<Tensor> run(const DenseCase &c) {
  autodiff::Tape tape(false, false);
  for (const Tensor &t : {c.x, c.w, c.b}) tape.watch(t);
  const Tensor y = ops::dense(c.x, c.w, c.b, c.act);
  std::vector<Tensor> out = tape.gradient(y, {c.x, c.w, c.b}, autodiff::Unconnected::kZero, c.dy);
  out.insert(out.begin(), y);
  return out;
}

bool same_bits(const std::vector<Tensor> &a, const std::vector<Tensor> &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() || std::memcmp(a[i].raw_data(), b[i].raw_data(), a[i].byte_size()) != 0)
      return false;
  return true;
}

TEST(DenseStress, FourThreadsGiveTheResultsOfOne) {
  using A = ops::DenseActivation;
  const struct {
    Shape x;
    int64_t units;
    A act;
  } shapes[] = {
      {{8, 33}, 17, A::kRelu},       // one piece
      {{256, 256}, 256, A::kGelu},   // oneDNN's threaded GEMM (pre-activation kept)
      {{64, 2048}, 32, A::kTanh},    // tall K: K pieces, the bias after them
      {{4, 50, 96}, 40, A::kSwish},  // rank 3
  };
  std::vector<DenseCase> cases;
  unsigned seed = 1;
  for (const auto &s : shapes) {
    DenseCase c{random_tensor(s.x, seed++), random_tensor(Shape{s.x[s.x.rank() - 1], s.units}, seed++),
                random_tensor(Shape{s.units}, seed++), Tensor(), s.act};
    Shape out = s.x;
    out.set_dim(out.rank() - 1, s.units);
    c.dy = random_tensor(out, seed++);
    cases.push_back(c);
  }
  // References made alone, at the thread count each worker runs with.
  std::vector<std::vector<Tensor>> want_default, want_one;
  for (const DenseCase &c : cases) want_default.push_back(run(c));
  set_num_threads_for_this_thread(1);
  for (const DenseCase &c : cases) want_one.push_back(run(c));
  set_num_threads_for_this_thread(0);

  const char *env = std::getenv("KILN_STRESS_ITERATIONS");
  const int iterations = env ? std::max(1, std::atoi(env)) : 6;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const bool one = t % 2 == 1;
      if (one) set_num_threads_for_this_thread(1);
      for (int i = 0; i < iterations; ++i)
        for (size_t k = 0; k < cases.size(); ++k) {
          const size_t c = (k + static_cast<size_t>(t)) % cases.size();
          if (!same_bits(run(cases[c]), one ? want_one[c] : want_default[c])) wrong.fetch_add(1);
        }
      if (one) set_num_threads_for_this_thread(0);
    });
  for (std::thread &th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0) << "out of " << 4 * iterations * static_cast<int>(cases.size());
  // And the thread count never changes the bits.
  for (size_t c = 0; c < cases.size(); ++c)
    EXPECT_TRUE(same_bits(want_one[c], want_default[c])) << "case " << c;
}

// Batch-1 inference (kernels/gemv.h: packed weights, panels split between the calling thread and
// the spin team's helper at 2 threads) from 4 threads at once, each at 2 threads: the same bits
// as the call made alone at 1 thread. Under ThreadSanitizer this checks the team's hand-offs.
TEST(DenseStress, BatchOneInferenceFromFourThreadsAtTwoThreadsEach) {
  const Tensor x = random_tensor(Shape{1, 784}, 91), b = random_tensor(Shape{512}, 92);
  const Tensor w = random_tensor(Shape{784, 512}, 93);  // 1.6 MB: split at 2 threads
  set_num_threads_for_this_thread(1);
  const Tensor want = ops::dense(x, w, b, ops::DenseActivation::kRelu);
  set_num_threads_for_this_thread(0);
  const char *env = std::getenv("KILN_STRESS_ITERATIONS");
  const int iterations = 20 * (env ? std::max(1, std::atoi(env)) : 6);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      set_num_threads_for_this_thread(2);
      for (int i = 0; i < iterations; ++i) {
        const Tensor y = ops::dense(x, w, b, ops::DenseActivation::kRelu);
        if (std::memcmp(y.raw_data(), want.raw_data(), want.byte_size()) != 0) wrong.fetch_add(1);
      }
      set_num_threads_for_this_thread(0);
    });
  for (std::thread &th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0) << "out of " << 4 * iterations;
}

}  // namespace
}  // namespace kiln
