// Checked element and byte counts (core/count.h), the Shape invariant, the allocator at its
// limits, and the core ops' size checks (issue 5, section 2).
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "core/count.h"
#include "core/storage.h"
#include "core/threads.h"
#include "layers/layer.h"
#include "ops/image.h"
#include "ops/ops.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
// Allocations beyond memory must come back as NULL for kiln to report; ASan aborts by default.
extern "C" const char *__asan_default_options() { return "allocator_may_return_null=1"; }
#endif

namespace kiln {
namespace {

using testing::expect_error;

constexpr int64_t k62 = int64_t{1} << 62, k32 = int64_t{1} << 32, kMax = INT64_MAX;

// Ends the process if a test body has not finished in time: a call that used to hang must
// fail the suite, not stall it.
class Watchdog {
 public:
  explicit Watchdog(int seconds) {
    std::thread([done = done_, seconds] {
      for (int i = 0; i < seconds * 10 && !done->load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!done->load()) {
        std::fprintf(stderr, "watchdog: the test hung for %d s\n", seconds);
        std::_Exit(1);
      }
    }).detach();
  }
  ~Watchdog() { done_->store(true); }

 private:
  // Shared with the detached thread, which may outlive this object.
  std::shared_ptr<std::atomic<bool>> done_ = std::make_shared<std::atomic<bool>>(false);
};

TEST(CheckedCount, MulAndAddStopAtTheLimit) {
  int64_t r = -7;
  EXPECT_TRUE(checked_mul(k32, k32 / 4, &r));
  EXPECT_EQ(r, k62);
  EXPECT_FALSE(checked_mul(k32, k32, &r));  // 2^64 wraps to 0 unchecked
  EXPECT_FALSE(checked_mul(kMax, 2, &r));
  EXPECT_FALSE(checked_mul(k62 + 1, 1, &r));  // fits int64, exceeds the cap
  EXPECT_FALSE(checked_mul(-1, 4, &r));
  EXPECT_EQ(r, k62);  // untouched by the failures
  EXPECT_TRUE(checked_mul(0, kMax, &r));
  EXPECT_EQ(r, 0);
  EXPECT_TRUE(checked_add(k62 - 1, 1, &r));
  EXPECT_EQ(r, k62);
  EXPECT_FALSE(checked_add(k62, 1, &r));
  EXPECT_FALSE(checked_add(kMax, kMax, &r));
  EXPECT_FALSE(checked_add(-1, 1, &r));
}

TEST(CheckedCount, NonZeroProductAndByteCounts) {
  const int64_t ok[3] = {k32, 0, k32 / 4}, bad[3] = {k32, 0, k32}, neg[2] = {2, -1};
  EXPECT_EQ(nonzero_dims_product(ok, 3), k62);
  EXPECT_EQ(nonzero_dims_product(bad, 3), -1);
  EXPECT_EQ(nonzero_dims_product(neg, 2), -1);
  EXPECT_EQ(nonzero_dims_product(nullptr, 0), 1);
  EXPECT_EQ(byte_count_string(k62, 8), "36893488147419103232");
  EXPECT_EQ(byte_count_string(0, 4), "0");
  EXPECT_EQ(checked_byte_size(k62 / 4, 4, [] { return std::string("x"); }), static_cast<size_t>(k62));
  expect_error([] { checked_byte_size(k62, 4, [] { return std::string("float32[4611686018427387904]"); }); }, Code::kResourceExhausted,
               {"float32[4611686018427387904]", "18446744073709551616 bytes"});
}

TEST(ShapeInvariant, OverflowingShapesCannotBeBuilt) {
  EXPECT_EQ(Shape({k62}).num_elements(), k62);
  EXPECT_EQ(Shape({0, k62}).num_elements(), 0);
  expect_error([] { Shape s{k32, k32}; }, Code::kInvalidArgument, {"[4294967296, 4294967296]", "2^62"});
  expect_error([] { Shape s{0, k32, k32}; }, Code::kInvalidArgument, {"[0, 4294967296, 4294967296]"});
  expect_error(
      [] {
        Shape s(std::vector<int64_t>{kMax, 2}, "my_op");
      },
      Code::kInvalidArgument, {"my_op: shape [9223372036854775807, 2]"});
  Shape s{0, k32};
  expect_error([&] { s.push_back(k32, "grow"); }, Code::kInvalidArgument,
               {"grow:", "[0, 4294967296, 4294967296]"});
  expect_error([&] { s.set_dim(0, k32, "set"); }, Code::kInvalidArgument,
               {"set:", "[4294967296, 4294967296]"});
  EXPECT_EQ(s, (Shape{0, k32}));  // failures change nothing
  s.set_dim(0, 2);
  EXPECT_EQ(s.num_elements(), 2 * k32);
}

TEST(AllocatorLimits, HugeRequestsFailFast) {
  Watchdog watchdog(60);  // above 2^63 bytes the size-class loop used to spin forever
  for (size_t bytes : {SIZE_MAX, (size_t{1} << 63) + 1, static_cast<size_t>(k62) + 1})
    expect_error([&] { Storage::allocate(bytes); }, Code::kResourceExhausted,
                 {std::to_string(bytes), "2^62"});
  // Within the cap but beyond any address space: the system allocator fails, kiln retries once.
  expect_error([] { Storage::allocate(size_t{1} << 61); }, Code::kResourceExhausted,
               {"2305843009213693952 bytes", "cached bytes"});
  expect_error([] { Tensor::empty(DType::kInt64, Shape{k62}); }, Code::kResourceExhausted,
               {"int64[4611686018427387904]", "36893488147419103232 bytes"});
}

// In a child process whose address space is capped: 128 MiB sit in the cache, and a 128 MiB
// buffer fits only once they are given back. Without the retry the request fails.
TEST(AllocatorLimits, FailedAllocationEmptiesTheCacheAndRetries) {
  if (!allocator_caching_enabled()) GTEST_SKIP() << "the cache is off in sanitizer builds";
  EXPECT_EXIT(
      {
        // glibc raises its mmap threshold after earlier tests free large blocks; pinned, each 1 MiB
        // block below is its own mapping, which free() (and so the cache's release) unmaps.
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        allocator_release_cached();
        long pages = 0;
        std::FILE *f = std::fopen("/proc/self/statm", "r");
        if (!f || std::fscanf(f, "%ld", &pages) != 1) std::_Exit(3);
        std::fclose(f);
        rlimit lim;
        lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(pages * sysconf(_SC_PAGESIZE) + (192L << 20));
        if (setrlimit(RLIMIT_AS, &lim) != 0) std::_Exit(4);
        {
          std::vector<std::shared_ptr<Storage>> held;
          held.reserve(128);
          for (int i = 0; i < 128; ++i) held.push_back(Storage::allocate(size_t{1} << 20));
        }
        if (allocator_stats().cached_bytes != int64_t{128} << 20) std::_Exit(5);
        try {
          auto big = Storage::allocate(size_t{128} << 20);
          std::_Exit(allocator_stats().cached_bytes == 0 ? 0 : 6);
        } catch (const Error &) {
          std::_Exit(7);
        }
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(AllocatorLimits, ReleaseCachedEmptiesTheCache) {
  allocator_release_cached();
  { auto s = Storage::allocate(size_t{1} << 20); }
  const int64_t released = allocator_release_cached();
  EXPECT_EQ(released, allocator_caching_enabled() ? int64_t{1} << 20 : 0);
  EXPECT_EQ(allocator_stats().cached_bytes, 0);
  const AllocatorStats before = allocator_stats();
  { auto s = Storage::allocate(size_t{1} << 20); }
  EXPECT_EQ(allocator_stats().system_allocs, before.system_allocs + 1);
  EXPECT_EQ(allocator_stats().cache_hits, before.cache_hits);
}

TEST(OpLimits, ShapeOpsNameThemselves) {
  Tensor empty = ops::zeros(Shape{0}), four = ops::zeros(Shape{4});
  expect_error([&] { ops::reshape(empty, {k32, k32}); }, Code::kInvalidArgument, {"reshape", "4294967296"});
  expect_error(
      [&] {
        ops::reshape(empty, {k32, k32, 0});
      },
      Code::kInvalidArgument, {"reshape", "4294967296"});
  expect_error([&] { ops::tile(four, {k62}); }, Code::kInvalidArgument, {"tile", "4611686018427387904"});
  expect_error(
      [&] {
        ops::split(four, {k62 + 1, k62 + 1, k62 + 1, k62 + 1}, 0, 0);
      },
      Code::kInvalidArgument, {"split", "4611686018427387905"});
  expect_error([&] { ops::slice(four, {1}, {kMax}); }, Code::kInvalidArgument,
               {"slice", "9223372036854775807"});
  expect_error(
      [&] {
        ops::concat({ops::zeros(Shape{k62, 0}), ops::zeros(Shape{1, 0})}, 0);
      },
      Code::kInvalidArgument, {"concat", "4611686018427387904"});
  Tensor indices = testing::make_typed<int32_t>(Shape{2}, {0, 1});
  expect_error([&] { ops::one_hot(indices, k62, 1, 0); }, Code::kInvalidArgument,
               {"one_hot", "depth 4611686018427387904"});
  expect_error(
      [&] {
        ops::matmul(ops::zeros(Shape{k32, 0}), ops::zeros(Shape{0, k32}));
      },
      Code::kInvalidArgument, {"matmul", "[4294967296, 4294967296]"});
  expect_error([] { ops::range(0, std::nan(""), 1); }, Code::kInvalidArgument, {"range", "limit nan"});
  expect_error([] { ops::range(0, 1e300, 1); }, Code::kInvalidArgument, {"range", "do not fit in float32"});
  expect_error([] { ops::range(0, 1e300, 1, DType::kFloat64); }, Code::kInvalidArgument,
               {"range", "1e+300 elements", "counted in float64"});
}

TEST(OpLimits, HugeWindowArguments) {
  Tensor x = ops::ones(Shape{1, 5, 5, 2}), f = ops::ones(Shape{2, 2, 2, 1});
  Tensor want = ops::conv2d(x, f, {4, 4}, {1, 1}, ops::Padding::kValid);
  Tensor got = ops::conv2d(x, f, {kMax, kMax}, {1, 1}, ops::Padding::kSame);
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_EQ(got.item_as_double(0), want.item_as_double(0));
  expect_error(
      [&] {
        ops::conv2d(x, f, {1, 1}, {kMax, 1}, ops::Padding::kValid);
      },
      Code::kInvalidArgument, {"conv2d", "9223372036854775807"});
  expect_error(
      [&] {
        ops::avg_pool2d(x, {kMax, kMax}, {1, 1}, ops::Padding::kSame);
      },
      Code::kInvalidArgument, {"avg_pool2d", "9223372036854775807"});
}

// A resize (Resizing, CenterCrop) to a size no memory holds fails before building its per-row
// tables, which once grew until the system killed the process.
TEST(OpLimits, HugeResizeTargets) {
  Watchdog watchdog(60);
  const Tensor images = ops::ones(Shape{4, 6, 3});
  expect_error([&] { ops::resize(images, int64_t{1} << 58, 2, ops::ResizeMethod::kBilinear); },
               Code::kResourceExhausted, {"float32[", "2^62"});
  expect_error([&] { ops::resize(images, int64_t{1} << 55, 2, ops::ResizeMethod::kNearest); },
               Code::kResourceExhausted, {"out of memory"});
  layers::LayerPtr crop =
      layers::create_layer("CenterCrop", Config::from_json(R"({"height": 1099511627776, "width": 2})"));
  expect_error([&] { (*crop)({images}, layers::CallContext()); }, Code::kResourceExhausted, {});
}

TEST(ThreadLimits, CountIsBounded) {
  const int before = num_threads();
  EXPECT_GE(max_num_threads(), 64);
  expect_error([] { set_num_threads(max_num_threads() + 1); }, Code::kInvalidArgument,
               {"set_num_threads", std::to_string(max_num_threads() + 1)});
  expect_error([] { set_num_threads(1 << 30); }, Code::kInvalidArgument, {"set_num_threads", "1073741824"});
  EXPECT_EQ(num_threads(), before);
}

}  // namespace
}  // namespace kiln
