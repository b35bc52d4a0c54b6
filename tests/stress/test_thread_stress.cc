// Several std::threads run the oneDNN-backed ops at once, on the same shapes and on different
// shapes, and every result must equal, bit for bit, the result of the same call made with no
// other thread running. Each thread runs kernels with the same kiln thread count as the reference
// run, so oneDNN partitions the work identically and the comparison can be exact.
//
// The case table (stress_cases.cc) covers every op family in src/ops, forward and gradient, with
// sizes above the loop/oneDNN thresholds (kElementwiseLargeThreshold = 32768 elements,
// kNormLoopMaxElements = 16384), so every case reaches its threaded loop or oneDNN primitive.
// Before primitives ran with user scratchpads, the same-shape matmul case gave hundreds of wrong
// results.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "autodiff/tape.h"
#include "core/threads.h"
#include "ops/ops.h"
#include "stress_cases.h"
#include "test_util.h"

namespace kiln {
namespace {

using stress::Case;
using testing::random_tensor;

// Iterations per thread; the ThreadSanitizer job lowers it (TSan runs code ~10x slower). The case
// table covers every op family, so a pass over it takes far longer than one matmul: it runs
// kTableIterations times by default.
constexpr int kTableIterations = 4;
int iterations(int fallback = 12) {
  const char *s = std::getenv("KILN_STRESS_ITERATIONS");
  return s ? std::max(1, std::atoi(s)) : fallback;
}

int num_workers() {
  const char *s = std::getenv("KILN_STRESS_THREADS");
  return s ? std::max(2, std::atoi(s)) : 6;
}

bool same_bits(const Tensor &x, const Tensor &y) {
  return x.dtype() == y.dtype() && x.shape() == y.shape() &&
         std::memcmp(x.raw_data(), y.raw_data(), x.byte_size()) == 0;
}

// Runs the cases on num_workers() threads: thread t starts at case (t * stride) % n and walks the
// list, so stride 0 makes every thread run the same shapes at the same time and stride 1 mixes them.
// With `one`, odd threads run kernels at one thread (set_num_threads_for_this_thread, as a
// pipeline worker would) and compare with `one`, the reference computed at one thread.
// Returns the number of results that differ from the single-threaded reference, per case name.
using Results = std::vector<std::vector<Tensor>>;
std::vector<int> run_concurrently(const std::vector<Case> &cs, const Results &want, size_t stride,
                                  const Results *one = nullptr) {
  std::vector<std::atomic<int>> wrong(cs.size());
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  const int workers = num_workers(), iters = iterations(kTableIterations);
  for (int t = 0; t < workers; ++t)
    threads.emplace_back([&, t] {
      const bool at_one = one && t % 2 == 1;
      const Results &ref = at_one ? *one : want;
      if (at_one) set_num_threads_for_this_thread(1);
      try {
        for (int it = 0; it < iters; ++it)
          for (size_t k = 0; k < cs.size(); ++k) {
            const size_t i = (k + static_cast<size_t>(t) * stride) % cs.size();
            const std::vector<Tensor> got = cs[i].run();
            for (size_t j = 0; j < got.size(); ++j)
              if (!same_bits(got[j], ref[i][j])) wrong[i].fetch_add(1);
          }
      } catch (const std::exception &) {
        errors.fetch_add(1);
      }
    });
  for (std::thread &th : threads) th.join();
  EXPECT_EQ(errors.load(), 0) << "a worker thread threw";
  std::vector<int> out;
  for (auto &w : wrong) out.push_back(w.load());
  return out;
}

void check(size_t stride, bool mixed_thread_counts = false) {
  const std::vector<Case> cs = stress::cases();
  Results want, one;
  for (const Case &c : cs) want.push_back(c.run());  // the single-threaded reference
  if (mixed_thread_counts) {
    set_num_threads_for_this_thread(1);
    for (const Case &c : cs) one.push_back(c.run());
    set_num_threads_for_this_thread(0);
  }
  const std::vector<int> wrong = run_concurrently(cs, want, stride, mixed_thread_counts ? &one : nullptr);
  const int total_runs = num_workers() * iterations(kTableIterations);
  for (size_t i = 0; i < cs.size(); ++i)
    EXPECT_EQ(wrong[i], 0) << cs[i].name << ": " << wrong[i] << " wrong results out of "
                           << total_runs * static_cast<int>(want[i].size());
}

TEST(ThreadStress, SameShapesOnEveryThread) { check(0); }

TEST(ThreadStress, DifferentShapesOnEachThread) { check(1); }

// Threads at different kernel thread counts run side by side: oneDNN 2.6 fixes the thread count
// of some primitives at creation, so each count must get its own primitive.
TEST(ThreadStress, MixedThreadCounts) { check(0, true); }

// The case that broke first: many threads multiplying the same shapes, many times.
TEST(ThreadStress, MatmulFromManyThreadsManyTimes) {
  const Tensor a = random_tensor({4, 64, 96}, 30u), b = random_tensor({96, 64}, 31u);
  const Tensor want = ops::matmul(a, b), want_t = ops::matmul(a, a, false, true);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < num_workers(); ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < iterations() * 20; ++i) {
        if (!same_bits(ops::matmul(a, b), want)) wrong.fetch_add(1);
        if (!same_bits(ops::matmul(a, a, false, true), want_t)) wrong.fetch_add(1);
      }
    });
  for (std::thread &th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0) << "out of " << num_workers() * iterations() * 40;
}

}  // namespace
}  // namespace kiln
