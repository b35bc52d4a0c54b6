// The primitive cache (LRU capacity, POD keys with the thread count, user scratchpads), the
// per-thread thread-count override, and the folded weight gradient of a 3-D @ 2-D matmul.
#include <thread>

#include "core/threads.h"
#include "kernels/engine.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::random_tensor;
using testing::values;

// A reorder between two plain layouts of an n-element vector: cheap to create, needs no data.
dnnl::primitive vector_copy(int64_t n, bool user_scratchpad) {
  kernels::PrimitiveKey key(kernels::PrimitiveKind::kReorder);
  key.add(-1).add(n).add(static_cast<int64_t>(user_scratchpad));
  return kernels::cached_primitive(key, [&] {
    const dnnl::memory::desc md = kernels::plain_desc(Shape{n}, DType::kFloat32);
    dnnl::primitive_attr attr = user_scratchpad ? kernels::user_scratchpad_attr() : dnnl::primitive_attr();
    return dnnl::reorder(dnnl::reorder::primitive_desc(kernels::engine(), md, kernels::engine(), md, attr));
  });
}

class PrimitiveCacheTest : public ::testing::Test {
 protected:
  void TearDown() override { kernels::set_primitive_cache_capacity(kernels::kDefaultPrimitiveCacheCapacity); }
};

TEST_F(PrimitiveCacheTest, EvictsLeastRecentlyUsedBeyondCapacity) {
  kernels::primitive_cache_clear();
  kernels::set_primitive_cache_capacity(3);
  for (int64_t n = 1; n <= 10; ++n) vector_copy(n, true);
  EXPECT_EQ(kernels::primitive_cache_stats().size, 3);
  // A primitive that is still in use survives eviction; the cache can also shrink at once.
  dnnl::primitive kept = vector_copy(10, true);
  kernels::set_primitive_cache_capacity(1);
  EXPECT_EQ(kernels::primitive_cache_stats().size, 1);
  std::vector<float> src{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, dst(10, 0.0f);
  kernels::execute(kept, {{DNNL_ARG_FROM, src.data()}, {DNNL_ARG_TO, dst.data()}});
  EXPECT_EQ(dst, src);
}

TEST_F(PrimitiveCacheTest, ClearReachesEveryThreadsMemo) {
  vector_copy(7, true);
  const int64_t misses = kernels::primitive_cache_stats().misses;
  vector_copy(7, true);
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses);
  kernels::primitive_cache_clear();
  EXPECT_EQ(kernels::primitive_cache_stats().size, 0);
  vector_copy(7, true);
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses + 1);
}

// A primitive with oneDNN's default (library) scratchpad would share it among threads.
TEST_F(PrimitiveCacheTest, RefusesPrimitivesWithoutUserScratchpad) {
  try {
    vector_copy(5, false);
    FAIL() << "no error";
  } catch (const Error &e) {
    EXPECT_EQ(e.code(), Code::kInternal);
    EXPECT_NE(std::string(e.what()).find("user_scratchpad_attr"), std::string::npos) << e.what();
  }
}

// oneDNN 2.6 fixes the OpenMP thread count of some primitives when it creates them.
// Pooling runs its primitive at the caller's thread count (matmul no longer does: it runs pieces
// on one-thread primitives, kernels/split_run.h).
TEST_F(PrimitiveCacheTest, KeyCarriesTheThreadCount) {
  const Tensor x = random_tensor({3, 17, 19, 8}, 1u);
  auto pool = [&] { return ops::max_pool2d(x, {3, 3}, {2, 2}, ops::Padding::kSame); };
  set_num_threads_for_this_thread(1);
  const Tensor want = pool();
  const int64_t misses = kernels::primitive_cache_stats().misses;
  set_num_threads_for_this_thread(2);
  const Tensor got = pool();
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses + 1);
  set_num_threads_for_this_thread(1);
  pool();
  EXPECT_EQ(kernels::primitive_cache_stats().misses, misses + 1);
  set_num_threads_for_this_thread(0);
  testing::expect_near(got, values(want), 1e-5f);
}

// A float attribute is part of the key, but the LRU bound keeps a decaying clip bound from
// growing the cache without limit.
TEST_F(PrimitiveCacheTest, ChangingFloatAttributesStayWithinCapacity) {
  kernels::set_primitive_cache_capacity(8);
  const Tensor x = random_tensor({40000}, 3u);
  for (int i = 0; i < 40; ++i) ops::clip_by_value(x, -1.0f + 0.01f * static_cast<float>(i), 1.0f);
  EXPECT_LE(kernels::primitive_cache_stats().size, 8);
}

TEST(ThreadOverride, AppliesToTheCallingThreadOnly) {
  const int global = num_threads();
  set_num_threads_for_this_thread(1);
  EXPECT_EQ(num_threads(), 1);
  int other = 0;
  std::thread([&] { other = num_threads(); }).join();
  EXPECT_EQ(other, global);
  set_num_threads_for_this_thread(0);
  EXPECT_EQ(num_threads(), global);
  EXPECT_THROW(set_num_threads_for_this_thread(-1), Error);
}

// The weight gradient of x[B, M, K] @ w[K, N] runs as one [B*M, K]^T @ [B*M, N] GEMM; it must
// equal the sum over the batch of the per-sample gradients.
TEST(MatmulGradient, WeightGradientOfBatchedInputFoldsTheBatch) {
  for (bool tb : {false, true}) {
    const Tensor x = random_tensor({3, 5, 4}, 4u);
    const Tensor w = tb ? random_tensor({6, 4}, 5u) : random_tensor({4, 6}, 5u);
    const Tensor dy = random_tensor({3, 5, 6}, 6u);
    autodiff::Tape tape(false, false);
    tape.watch(w);
    const Tensor y = ops::matmul(x, w, false, tb);
    const Tensor dw = tape.gradient(y, {w}, autodiff::Unconnected::kNone, dy)[0];
    ASSERT_EQ(dw.shape(), w.shape());
    std::vector<float> want(static_cast<size_t>(w.num_elements()), 0.0f);
    const std::vector<float> xv = values(x), dyv = values(dy);
    for (int b = 0; b < 3; ++b)
      for (int m = 0; m < 5; ++m)
        for (int k = 0; k < 4; ++k)
          for (int n = 0; n < 6; ++n) {
            const float v =
                xv[static_cast<size_t>((b * 5 + m) * 4 + k)] * dyv[static_cast<size_t>((b * 5 + m) * 6 + n)];
            want[static_cast<size_t>(tb ? n * 4 + k : k * 6 + n)] += v;
          }
    testing::expect_near(dw, want, 1e-5f, tb ? "transpose_b" : "plain");
  }
}

}  // namespace
}  // namespace kiln
