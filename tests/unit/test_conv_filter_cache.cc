// The conv kernels' cache of filters reordered to oneDNN's blocked layout (kernels/conv.cc), and the
// storage identity and version it is keyed by (core/storage.h): an in-place update of a filter is
// never served stale, an unchanged filter is reordered once, entries go with their storage.
#include <cstring>
#include <thread>
#include <vector>

#include "autodiff/tape.h"
#include "autodiff/variable.h"
#include "core/storage.h"
#include "core/threads.h"
#include "kernels/conv.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using autodiff::Tape;
using autodiff::Unconnected;
using autodiff::Variable;
using kernels::filter_cache_stats;
using testing::random_tensor;

using testing::same_bits;

// Large enough in channels that oneDNN picks a blocked filter layout on AVX2 and AVX-512 machines,
// which is what gets cached.
const Shape kX{2, 10, 10, 32}, kFilter{3, 3, 32, 64};

Tensor conv(const Tensor &x, const Tensor &f) {
  return ops::conv2d(x, f, {1, 1}, {1, 1}, ops::Padding::kSame);
}

// dx of sum(conv(x, f) * w): runs the backward-data kernel with f.
Tensor conv_dx(const Tensor &x, const Tensor &f, const Tensor &w) {
  Tape tape(false, false);
  tape.watch(x);
  Tensor loss = ops::sum(ops::mul(conv(x, f), w));
  return tape.gradient(loss, {x}, Unconnected::kNone)[0];
}

TEST(StorageIdentity, IdsAreNeverReusedAndWritesBumpTheVersion) {
  uint64_t first_id = 0;
  const void *first_ptr = nullptr;
  {
    Tensor t = Tensor::empty(DType::kFloat32, Shape{1000});
    first_id = t.storage()->id();
    first_ptr = t.raw_data();
  }
  Tensor t = Tensor::empty(DType::kFloat32, Shape{1000});
  if (allocator_caching_enabled()) {
    EXPECT_EQ(t.raw_data(), first_ptr);  // the buffer came back
  }
  EXPECT_NE(t.storage()->id(), first_id);
  EXPECT_NE(t.storage()->id(), 0u);
  const uint64_t v = t.storage()->version();
  (void)t.raw_mutable_data();
  EXPECT_GT(t.storage()->version(), v);
  EXPECT_TRUE(t.storage()->versioned());
  float user[4] = {1, 2, 3, 4};
  EXPECT_FALSE(Storage::adopt(user, sizeof user, nullptr, nullptr)->versioned());
}

TEST(StorageIdentity, VariableInPlaceWritesBumpTheVersion) {
  Variable v("v", random_tensor(Shape{4}, 1), true);
  const uint64_t id = v.peek().storage()->id(), version = v.peek().storage()->version();
  v.assign_add(random_tensor(Shape{4}, 2));
  EXPECT_EQ(v.peek().storage()->id(), id);  // written in place: nothing held the old value
  const uint64_t after_add = v.peek().storage()->version();
  EXPECT_GT(after_add, version);
  v.assign_sub(random_tensor(Shape{4}, 3));
  EXPECT_GT(v.peek().storage()->version(), after_add);
  const uint64_t after_sub = v.peek().storage()->version();
  v.assign(random_tensor(Shape{4}, 4));
  EXPECT_EQ(v.peek().storage()->id(), id);
  EXPECT_GT(v.peek().storage()->version(), after_sub);
}

TEST(ConvFilterCache, VariableUpdatedInPlaceIsNeverServedStale) {
  const Tensor x = random_tensor(kX, 10), w = random_tensor(Shape{2, 10, 10, 64}, 11);
  const Tensor f0 = random_tensor(kFilter, 12), delta = random_tensor(kFilter, 13, -0.5f, 0.5f);
  Variable v("filter", f0, true);
  const uint64_t id = v.peek().storage()->id();
  const Tensor y0 = conv(x, v.peek()), dx0 = conv_dx(x, v.peek(), w);
  EXPECT_TRUE(same_bits(y0, conv(x, f0)));
  for (int step = 0; step < 3; ++step) {
    v.assign_add(delta);  // nothing reads the variable now: the write goes into the same buffer
    ASSERT_EQ(v.peek().storage()->id(), id);
    // The same values in a fresh tensor, which the cache has never seen: identical bits.
    const Tensor fresh =
        Tensor::from_data(DType::kFloat32, kFilter, v.peek().raw_data(), v.peek().byte_size());
    const Tensor y = conv(x, v.peek()), dx = conv_dx(x, v.peek(), w);
    EXPECT_TRUE(same_bits(y, conv(x, fresh))) << "step " << step;
    EXPECT_TRUE(same_bits(dx, conv_dx(x, fresh, w))) << "step " << step;
    EXPECT_FALSE(same_bits(y, y0)) << "step " << step;
    EXPECT_FALSE(same_bits(dx, dx0)) << "step " << step;
  }
  v.assign(f0);
  EXPECT_TRUE(same_bits(conv(x, v.peek()), y0));
  EXPECT_TRUE(same_bits(conv_dx(x, v.peek(), w), dx0));
}

TEST(ConvFilterCache, AnUnchangedFilterIsReorderedOnceAndDroppedWithItsStorage) {
  kernels::filter_cache_clear();
  const Tensor x = random_tensor(kX, 20);
  const kernels::FilterCacheStats s0 = filter_cache_stats();
  EXPECT_EQ(s0.entries, 0);
  {
    const Tensor f = random_tensor(kFilter, 21);
    const Tensor y = conv(x, f);
    const kernels::FilterCacheStats s1 = filter_cache_stats();
    if (s1.misses == s0.misses)
      GTEST_SKIP() << "oneDNN kept the plain HWIO filter layout here: nothing to cache";
    EXPECT_EQ(s1.entries, 1);
    EXPECT_GT(s1.bytes, 0);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(conv(x, f), y));
    const kernels::FilterCacheStats s2 = filter_cache_stats();
    EXPECT_EQ(s2.hits - s1.hits, 3);
    EXPECT_EQ(s2.misses, s1.misses);
    // A reshape shares the storage: same id, same bits.
    EXPECT_TRUE(same_bits(conv(x, f.reshaped(kFilter)), y));
    EXPECT_EQ(filter_cache_stats().hits - s2.hits, 1);
  }
  EXPECT_EQ(filter_cache_stats().entries, 0);  // the filter died: its copy went with it
  EXPECT_EQ(filter_cache_stats().bytes, 0);
}

TEST(ConvFilterCache, AnotherBatchOrImageSizeReusesTheReorderedFilter) {
  kernels::filter_cache_clear();
  const Tensor f = random_tensor(kFilter, 25);
  const kernels::FilterCacheStats s0 = filter_cache_stats();
  (void)conv(random_tensor(kX, 26), f);
  const kernels::FilterCacheStats s1 = filter_cache_stats();
  if (s1.misses == s0.misses)
    GTEST_SKIP() << "oneDNN kept the plain HWIO filter layout here: nothing to cache";
  // The copy depends on the filter and its layout alone (a batch's pieces differ in batch size).
  const Tensor x3 = random_tensor(Shape{3, 10, 10, 32}, 27);
  const Tensor y3 = conv(x3, f);
  const kernels::FilterCacheStats s2 = filter_cache_stats();
  EXPECT_EQ(s2.misses, s1.misses);
  EXPECT_EQ(s2.hits - s1.hits, 1);
  EXPECT_EQ(s2.entries, 1);
  const Tensor fresh = Tensor::from_data(DType::kFloat32, kFilter, f.raw_data(), f.byte_size());
  EXPECT_TRUE(same_bits(y3, conv(x3, fresh)));
}

TEST(ConvFilterCache, AdoptedFiltersAreNotCached) {
  kernels::filter_cache_clear();
  const Tensor x = random_tensor(kX, 30), f = random_tensor(kFilter, 31);
  std::vector<float> user(static_cast<size_t>(kFilter.num_elements()));
  std::memcpy(user.data(), f.raw_data(), f.byte_size());
  const Tensor adopted = Tensor::from_storage(DType::kFloat32, kFilter,
                                              Storage::adopt(user.data(), f.byte_size(), nullptr, nullptr));
  const Tensor y = conv(x, adopted);
  EXPECT_TRUE(same_bits(y, conv(x, f)));
  const kernels::FilterCacheStats s = filter_cache_stats();
  // The owner may change an adopted buffer behind kiln's back (numpy arrays): it must be read again.
  for (float &u : user) u *= 2;
  EXPECT_TRUE(same_bits(conv(x, adopted), conv(x, ops::mul(f, ops::fill(Shape{}, 2)))));
  EXPECT_EQ(filter_cache_stats().hits, s.hits);
}

TEST(ConvFilterCache, StaysBounded) {
  kernels::filter_cache_clear();
  const Tensor x = random_tensor(Shape{1, 6, 6, 32}, 40);
  std::vector<Tensor> filters;
  for (int i = 0; i < 40; ++i) {
    filters.push_back(random_tensor(kFilter, 100 + static_cast<unsigned>(i)));
    (void)conv(x, filters.back());
  }
  EXPECT_LE(filter_cache_stats().entries, 32);
  filters.clear();
  EXPECT_EQ(filter_cache_stats().entries, 0);
}

TEST(ConvFilterCache, ThreadsSharingAFilterGetTheSameBits) {
  kernels::filter_cache_clear();
  const Tensor x = random_tensor(kX, 50);
  Variable v("filter", random_tensor(kFilter, 51), true);
  const Tensor want = conv(x, v.peek());
  kernels::filter_cache_clear();
  testing::expect_same_bits_from_threads([&] { return conv(x, v.peek()); }, want);
}

}  // namespace
}  // namespace kiln
