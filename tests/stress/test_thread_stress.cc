// Several std::threads run the oneDNN-backed ops at once, on the same shapes and on different
// shapes, and every result must equal, bit for bit, the result of the same call made with no
// other thread running. Each thread runs kernels with the same kiln thread count as the reference
// run, so oneDNN partitions the work identically and the comparison can be exact.
//
// Sizes sit above the loop/oneDNN thresholds (kElementwiseLargeThreshold = 32768 elements,
// kNormLoopMaxElements = 16384), so every case reaches a oneDNN primitive. Before primitives ran
// with user scratchpads, the same-shape matmul case gave hundreds of wrong results.
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
#include "test_util.h"

namespace kiln {
namespace {

using autodiff::Tape;
using autodiff::Unconnected;
using testing::random_tensor;

// Iterations per thread; the ThreadSanitizer job lowers it (TSan runs code ~10x slower).
int iterations() {
  const char *s = std::getenv("KILN_STRESS_ITERATIONS");
  return s ? std::max(1, std::atoi(s)) : 12;
}

int num_workers() {
  const char *s = std::getenv("KILN_STRESS_THREADS");
  return s ? std::max(2, std::atoi(s)) : 6;
}

struct Case {
  std::string name;
  std::function<std::vector<Tensor>()> run;
};

// y = f(inputs) and the gradients of sum(y * dy) with respect to every input, through a tape.
std::vector<Tensor> with_grads(const std::vector<Tensor> &inputs, const Tensor &dy,
                               const std::function<Tensor(const std::vector<Tensor> &)> &f) {
  Tape tape(false, false);
  for (const Tensor &t : inputs) tape.watch(t);
  Tensor y = f(inputs);
  std::vector<Tensor> out = tape.gradient(y, inputs, Unconnected::kZero, dy);
  out.insert(out.begin(), y);
  return out;
}

std::vector<Case> cases() {
  std::vector<Case> c;
  // matmul: plain, transposed operands, 3-D @ 2-D (batch folded into rows) and batched 3-D.
  const Tensor a = random_tensor({96, 160}, 1u), b = random_tensor({160, 128}, 2u);
  const Tensor at = random_tensor({160, 96}, 3u), bt = random_tensor({128, 160}, 4u);
  c.push_back({"matmul", [=] { return std::vector<Tensor>{ops::matmul(a, b)}; }});
  c.push_back({"matmul_ta_tb", [=] {
                 return std::vector<Tensor>{ops::matmul(at, b, true, false), ops::matmul(a, bt, false, true),
                                            ops::matmul(at, bt, true, true)};
               }});
  const Tensor x3 = random_tensor({4, 48, 96}, 5u), w = random_tensor({96, 80}, 6u);
  const Tensor dy3 = random_tensor({4, 48, 80}, 7u);
  c.push_back({"matmul_3d_grad", [=] {
                 return with_grads({x3, w}, dy3,
                                   [](const std::vector<Tensor> &v) { return ops::matmul(v[0], v[1]); });
               }});
  const Tensor xb = random_tensor({4, 48, 96}, 8u), wb = random_tensor({4, 96, 80}, 9u);
  c.push_back({"matmul_batched_grad", [=] {
                 return with_grads({xb, wb}, dy3,
                                   [](const std::vector<Tensor> &v) { return ops::matmul(v[0], v[1]); });
               }});
  // conv2d forward and both gradients; two geometries so that different shapes interleave.
  const Tensor cx = random_tensor({4, 16, 16, 8}, 10u), cf = random_tensor({3, 3, 8, 16}, 11u);
  const Tensor cdy = random_tensor({4, 16, 16, 16}, 12u);
  c.push_back({"conv2d_same_grad", [=] {
                 return with_grads({cx, cf}, cdy, [](const std::vector<Tensor> &v) {
                   return ops::conv2d(v[0], v[1], {1, 1}, {1, 1}, ops::Padding::kSame);
                 });
               }});
  const Tensor cf2 = random_tensor({5, 5, 8, 12}, 13u), cdy2 = random_tensor({4, 6, 6, 12}, 14u);
  c.push_back({"conv2d_valid_stride2_grad", [=] {
                 return with_grads({cx, cf2}, cdy2, [](const std::vector<Tensor> &v) {
                   return ops::conv2d(v[0], v[1], {2, 2}, {1, 1}, ops::Padding::kValid);
                 });
               }});
  // Norms over 64 x 512 = 32768 elements (> 16384).
  const Tensor nx = random_tensor({64, 512}, 15u), ndy = random_tensor({64, 512}, 16u);
  const Tensor gamma = random_tensor({512}, 17u, 0.5f, 1.5f), beta = random_tensor({512}, 18u);
  c.push_back({"layer_norm_grad", [=] {
                 return with_grads({nx, gamma, beta}, ndy, [](const std::vector<Tensor> &v) {
                   return ops::layer_norm(v[0], v[1], v[2]);
                 });
               }});
  const Tensor mv = random_tensor({512}, 19u), vv = random_tensor({512}, 20u, 0.5f, 2.0f);
  c.push_back({"batch_norm_grad", [=] {
                 std::vector<Tensor> r =
                     with_grads({nx, gamma, beta}, ndy, [=](const std::vector<Tensor> &v) {
                       return ops::batch_norm(v[0], v[1], v[2], mv, vv, true).y;
                     });
                 r.push_back(ops::batch_norm(nx, gamma, beta, mv, vv, false).y);
                 return r;
               }});
  // softmax over rows of 64 x 1024 = 65536 elements (> 32768: the oneDNN path).
  const Tensor sx = random_tensor({64, 1024}, 21u, -4.0f, 4.0f);
  c.push_back({"softmax", [=] { return std::vector<Tensor>{ops::softmax(sx), ops::log_softmax(sx)}; }});
  // Pools over 4 x 32 x 32 x 16 = 65536 elements, with gradients.
  const Tensor px = random_tensor({4, 32, 32, 16}, 22u), pdy = random_tensor({4, 16, 16, 16}, 23u);
  c.push_back({"pools_grad", [=] {
                 std::vector<Tensor> r = with_grads({px}, pdy, [](const std::vector<Tensor> &v) {
                   return ops::max_pool2d(v[0], {2, 2}, {2, 2}, ops::Padding::kValid);
                 });
                 std::vector<Tensor> s = with_grads({px}, pdy, [](const std::vector<Tensor> &v) {
                   return ops::avg_pool2d(v[0], {3, 3}, {2, 2}, ops::Padding::kSame);
                 });
                 r.insert(r.end(), s.begin(), s.end());
                 return r;
               }});
  // Large elementwise work (oneDNN binary and eltwise primitives).
  const Tensor ex = random_tensor({40000}, 24u), ey = random_tensor({40000}, 25u);
  c.push_back(
      {"elementwise", [=] {
         return std::vector<Tensor>{ops::add(ex, ey), ops::mul(ex, ey), ops::tanh(ex), ops::gelu(ex, false)};
       }});
  return c;
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
  const int workers = num_workers(), iters = iterations();
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
  const std::vector<Case> cs = cases();
  Results want, one;
  for (const Case &c : cs) want.push_back(c.run());  // the single-threaded reference
  if (mixed_thread_counts) {
    set_num_threads_for_this_thread(1);
    for (const Case &c : cs) one.push_back(c.run());
    set_num_threads_for_this_thread(0);
  }
  const std::vector<int> wrong = run_concurrently(cs, want, stride, mixed_thread_counts ? &one : nullptr);
  const int total_runs = num_workers() * iterations();
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
