// Core: shapes, dtypes, storage and the caching allocator, tensors, RNG, threads.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "core/rng.h"
#include "core/storage.h"
#include "core/threads.h"
#include "kernels/engine.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;

TEST(CoreShape, BasicsAndErrors) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.num_elements(), 24);
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
  EXPECT_EQ(s.dim(-1), 4);
  EXPECT_EQ(Shape{}.num_elements(), 1);
  auto st = s.strides();
  EXPECT_EQ(st[0], 12);
  EXPECT_EQ(st[2], 1);
  expect_error([] { Shape{1, 2, 3, 4, 5, 6, 7, 8, 9}; }, Code::kInvalidArgument, {"rank 9"});
  expect_error([] { Shape{2, -1}; }, Code::kInvalidArgument, {"[2, -1]", "negative"});
  expect_error([&] { (void)s.dim(3); }, Code::kInvalidArgument, {"axis 3", "rank 3"});
}

TEST(CoreShape, Broadcasting) {
  EXPECT_EQ(broadcast_shapes(Shape{3, 1}, Shape{1, 5}, "t"), (Shape{3, 5}));
  EXPECT_EQ(broadcast_shapes(Shape{2, 3, 4}, Shape{4}, "t"), (Shape{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes(Shape{}, Shape{7}, "t"), (Shape{7}));
  expect_error([] { broadcast_shapes(Shape{2, 3}, Shape{3, 2}, "myop"); }, Code::kInvalidArgument,
               {"myop", "[2, 3]", "[3, 2]"});
}

TEST(CoreShape, StartsWith) {
  const Shape s{2, 3, 4};
  EXPECT_TRUE(s.starts_with(Shape{}));
  EXPECT_TRUE(s.starts_with(Shape{2}));
  EXPECT_TRUE(s.starts_with(Shape{2, 3}));
  EXPECT_TRUE(s.starts_with(s));
  EXPECT_FALSE(s.starts_with(Shape{3}));
  EXPECT_FALSE(s.starts_with(Shape{2, 4}));
  EXPECT_FALSE(s.starts_with(Shape{2, 3, 4, 1}));
  EXPECT_FALSE(Shape{}.starts_with(Shape{1}));
}

TEST(CoreDType, Bfloat16Rounding) {
  EXPECT_EQ(static_cast<float>(bfloat16(1.0f)), 1.0f);
  EXPECT_EQ(static_cast<float>(bfloat16(-2.5f)), -2.5f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to even (1.0).
  EXPECT_EQ(static_cast<float>(bfloat16(1.00390625f)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to even (1 + 2^-6).
  EXPECT_EQ(static_cast<float>(bfloat16(1.01171875f)), 1.015625f);
  EXPECT_TRUE(std::isnan(static_cast<float>(bfloat16(std::nanf("")))));
}

TEST(CoreStorage, AlignedAndCached) {
  if (!allocator_caching_enabled()) GTEST_SKIP() << "sanitizer build: the buffer cache is off";
  auto before = allocator_stats();
  void *first = nullptr;
  {
    auto s = Storage::allocate(1000);
    first = s->data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s->data()) % kAlignment, 0u);
  }
  // The same size class comes back from the cache, not from malloc.
  auto again = Storage::allocate(900);
  EXPECT_EQ(again->data(), first);
  auto after = allocator_stats();
  EXPECT_GE(after.cache_hits, before.cache_hits + 1);
}

TEST(CoreStorage, SteadyLoopDoesNotCallMalloc) {
  if (!allocator_caching_enabled()) GTEST_SKIP() << "sanitizer build: the buffer cache is off";
  Tensor a = ops::fill(Shape{16, 16}, 1.0);
  auto body = [] {
    Tensor t = Tensor::empty(DType::kFloat32, Shape{16, 16});
    Tensor u = ops::fill(Shape{16, 16}, 2.0);
  };
  body();  // the first step fills the cache
  auto before = allocator_stats();
  for (int i = 0; i < 1000; ++i) body();
  EXPECT_EQ(allocator_stats().system_allocs, before.system_allocs);
}

// A fork while another thread allocates and frees tensors (the allocator's lock held most of the
// time): each child allocates a tensor buffer and exits. The first forks come while the other
// thread may still be making the allocator's cache (in a fresh process, as ctest runs it): a child
// once inherited that half-made cache's guard, or its lock, taken. Not under AddressSanitizer or
// ThreadSanitizer, whose own allocator locks are not guarded across fork here (a child of their
// runtime could hang on those).
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// Waits up to `seconds` for child `pid` to exit (its wait status in *status); false, with the child
// killed, when it has not.
bool wait_for_child(pid_t pid, int seconds, int *status) {
  for (int wait = 0; wait < seconds * 100; ++wait) {
    if (::waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, status, 0);
  return false;
}

TEST(CoreStorage, AForkedChildAllocatesWhileAnotherThreadOfTheParentDoes) {
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop.load(std::memory_order_relaxed)) Storage::allocate(256).reset();
  });
  for (int i = 0; i < 40; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const bool ok = Storage::allocate(256)->data() != nullptr;
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    const bool exited = wait_for_child(pid, 5, &status);
    EXPECT_TRUE(exited) << "fork " << i << ": the child still waited after 5 s";
    if (!exited) break;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fork " << i;
  }
  stop = true;
  churn.join();
}
#endif

TEST(CoreStorage, AdoptCallsDeleterOnce) {
  static int calls = 0;
  calls = 0;
  float buf[4] = {1, 2, 3, 4};
  {
    auto s = Storage::adopt(buf, sizeof buf, [](void *, void *ud) { ++*static_cast<int *>(ud); }, &calls);
    Tensor t = Tensor::from_storage(DType::kFloat32, Shape{4}, s);
    Tensor u = t.reshaped(Shape{2, 2});
    EXPECT_EQ(u.data<float>(), buf);
    EXPECT_NE(u.id(), t.id());
  }
  EXPECT_EQ(calls, 1);
}

TEST(CoreTensor, FromDataChecksSizes) {
  float v[6] = {0};
  expect_error([&] { Tensor::from_data(DType::kFloat32, Shape{2, 3}, v, 20); }, Code::kInvalidArgument,
               {"24 bytes", "got 20"});
  expect_error([&] { Tensor::from_data(DType::kFloat32, Shape{2, 3}, nullptr, 24); }, Code::kInvalidArgument,
               {"NULL"});
  Tensor t = Tensor::from_data(DType::kFloat32, Shape{2, 3}, v, 24);
  EXPECT_EQ(t.description(), "float32[2, 3]");
  expect_error([&] { t.reshaped(Shape{4}); }, Code::kInvalidArgument, {"reshape", "[4]"});
}

TEST(CoreRng, CounterBasedAndSeeded) {
  Philox a(1, 2), b(1, 2), c(1, 3), d(2, 2);
  EXPECT_EQ(a.block(5), b.block(5));
  EXPECT_NE(a.block(5), c.block(5));
  EXPECT_NE(a.block(5), d.block(5));
  EXPECT_NE(a.block(5), a.block(6));
  std::set<uint32_t> seen;
  for (uint64_t i = 0; i < 1000; ++i) seen.insert(a.block(i)[0]);
  EXPECT_EQ(seen.size(), 1000u);
  double sum = 0, sq = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    float u = a.uniform(static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    float z = a.normal(static_cast<uint64_t>(i));
    sum += z;
    sq += static_cast<double>(z) * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(sq / n, 1.0, 0.02);
}

TEST(CoreRng, GlobalSeedRestartsOpSequence) {
  set_global_seed(5);
  uint64_t s1 = resolve_op_seed(-1), s2 = resolve_op_seed(-1);
  EXPECT_NE(s1, s2);
  set_global_seed(5);
  EXPECT_EQ(resolve_op_seed(-1), s1);
  EXPECT_EQ(resolve_op_seed(9), 9u);
}

TEST(CoreThreads, SetAndValidate) {
  int n = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(n);
  expect_error([] { set_num_threads(0); }, Code::kInvalidArgument, {"set_num_threads", "0"});
}

// libgomp's threads do not survive fork: the thread that forked runs kernels on one thread in the
// child (its next OpenMP team of two would wait for its parent's threads for ever), and gets the
// same bits. Not under the sanitizers (see above).
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST(CoreThreads, AForkedChildRunsKernelsAfterItsParentsThreadedOnes) {
  const int before = num_threads();
  set_num_threads(2);
  const Tensor a = ops::random_uniform(Shape{256, 320}, 0.0f, 1.0f, 3);
  const Tensor b = ops::random_uniform(Shape{320, 192}, 0.0f, 1.0f, 4);
  const Tensor c = ops::matmul(a, b);  // oneDNN's GEMM on an OpenMP team of two
  const Tensor s = ops::sum(c, {0});
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    bool same = num_threads() == 1;
    const Tensor c2 = ops::matmul(a, b);
    const Tensor s2 = ops::sum(c2, {0});
    same = same && std::memcmp(c.data<float>(), c2.data<float>(), c.byte_size()) == 0 &&
           std::memcmp(s.data<float>(), s2.data<float>(), s.byte_size()) == 0;
    _exit(same ? 0 : 1);
  }
  int status = 0;
  EXPECT_TRUE(wait_for_child(pid, 30, &status)) << "the child still waited after 30 s";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the child ran on more than one thread or got other bits";
  set_num_threads(before);
}
#endif

TEST(CoreFill, CreationOps) {
  testing::expect_near(ops::zeros(Shape{2}), {0, 0});
  testing::expect_near(ops::ones(Shape{3}), {1, 1, 1});
  testing::expect_near(ops::fill(Shape{2}, 2.5), {2.5f, 2.5f});
  EXPECT_EQ(testing::values<int32_t>(ops::fill(Shape{2}, 7, DType::kInt32)), (std::vector<int32_t>{7, 7}));
  testing::expect_near(ops::range(0, 1, 0.25), {0, 0.25f, 0.5f, 0.75f});
  // As TF: a floating range's length is ceil(|(limit - start) / delta|) in its dtype, the limit
  // excluded, and each element is the one before plus delta, in its dtype.
  EXPECT_EQ(ops::range(1, 2.2, 0.2).num_elements(), 6);
  EXPECT_EQ(ops::range(0.1, 0.4, 0.1).num_elements(), 3);
  EXPECT_EQ(ops::range(0, 1e-5, 1e-6).num_elements(), 10);
  EXPECT_EQ(ops::range(1, 2.2, 0.2, DType::kFloat64).num_elements(), 7);  // float64's quotient is above 6
  {
    std::vector<float> want;
    for (float v = 0.1f; want.size() < 30; v += 0.1f) want.push_back(v);
    EXPECT_EQ(testing::values(ops::range(0.1, 3.05, 0.1)), want);
  }
  expect_error([] { ops::range(0, 1, 1e-50); }, Code::kInvalidArgument, {"range", "delta 1e-50", "float32"});
  expect_error([] { ops::range(0, 1e39, 1); }, Code::kInvalidArgument, {"range", "float32"});
  EXPECT_EQ(testing::values<int64_t>(ops::range(5, 0, -2, DType::kInt64)), (std::vector<int64_t>{5, 3, 1}));
  expect_error([] { ops::range(0, 5, 0); }, Code::kInvalidArgument, {"range", "delta"});
  expect_error([] { ops::range(0, 5, -1); }, Code::kInvalidArgument, {"range", "cannot reach"});
}

}  // namespace
}  // namespace kiln
