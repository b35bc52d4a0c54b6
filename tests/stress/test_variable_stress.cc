// Readers and an updater on one variable at once. Run by ThreadSanitizer (label `stress`): the
// in-place update must be ordered after every reader's last access to the buffer.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "autodiff/variable.h"
#include "core/threads.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

constexpr int64_t kElements = 1024;
constexpr int kUpdates = 4000;

// assign_add adds a constant, so any consistent read has all elements equal; a read torn by an
// in-place write in progress would not.
bool all_equal(const Tensor &t) {
  const float *p = t.data<float>();
  for (int64_t i = 1; i < t.num_elements(); ++i)
    if (p[i] != p[0]) return false;
  return true;
}

// Runs reader on `count` threads until the updates are done: waits until every reader has counted
// a read in `reads`, calls update() `updates` times (yielding between), then stops and joins them.
template <typename Reader, typename Update>
void read_while_updating(int count, std::atomic<bool> &done, const std::atomic<int> &reads, Reader reader,
                         int updates, Update update) {
  std::vector<std::thread> readers;
  for (int i = 0; i < count; ++i) readers.emplace_back(reader, i);
  while (reads.load() < count) std::this_thread::yield();
  for (int i = 0; i < updates; ++i) {
    update();
    std::this_thread::yield();
  }
  done.store(true, std::memory_order_release);
  for (auto &t : readers) t.join();
}

TEST(VariableStress, ReadersAndAssignAdd) {
  autodiff::Variable v("v", ops::zeros(Shape{kElements}), true);
  const Tensor one = ops::ones(Shape{kElements});
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  // Through value(), peek() and read_for_op() (the tensor the variable keeps between writes).
  auto reader = [&](int how) {
    float last = 0;
    while (!done.load(std::memory_order_acquire)) {
      Tensor t = how == 0 ? v.value() : how == 1 ? v.peek() : v.read_for_op();
      if (!all_equal(t)) torn.fetch_add(1);
      if (t.data<float>()[0] < last) torn.fetch_add(1);  // values only grow
      last = t.data<float>()[0];
      reads.fetch_add(1, std::memory_order_relaxed);
      t = Tensor();  // the handle goes, racing with the next update...
      // ...and nothing of the variable's (its mutex) is touched for a while, so only the variable's
      // own ordering can put this read before an in-place write (ThreadSanitizer checks that).
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> readers;
  for (int how = 0; how < 3; ++how) readers.emplace_back(reader, how);
  while (reads.load() < 3) std::this_thread::yield();  // every reader is running
  for (int i = 0; i < kUpdates; ++i) {
    v.assign_add(one);
    if (i % 32 == 0) std::this_thread::yield();  // let readers in between updates
  }
  done.store(true, std::memory_order_release);
  for (auto &t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  Tensor final_value = v.peek();
  EXPECT_TRUE(all_equal(final_value));
  EXPECT_EQ(final_value.data<float>()[0], static_cast<float>(kUpdates));
}

TEST(VariableStress, AssignersAndReaders) {
  autodiff::Variable v("v", ops::zeros(Shape{kElements}), true);
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<bool> read_once{false};
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      if (!all_equal(v.peek())) torn.fetch_add(1);
      read_once.store(true);
      std::this_thread::yield();
    }
  });
  std::thread other([&] {
    while (!read_once.load()) std::this_thread::yield();
    for (int i = 0; i < kUpdates / 4; ++i) v.assign(ops::fill(Shape{kElements}, -1.0));
  });
  while (!read_once.load()) std::this_thread::yield();
  for (int i = 0; i < kUpdates / 4; ++i) v.assign_sub(ops::ones(Shape{kElements}));
  other.join();
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_TRUE(all_equal(v.peek()));
}

// Convolutions read a variable filter while it is updated in place: the conv kernels cache the
// filter's reordered copy per (storage, version), and every result must equal the convolution with
// a fresh copy of the value read (which the cache has never seen), never an older value's.
TEST(VariableStress, ConvFilterReadersAndAssignAdd) {
  const Tensor x = testing::random_tensor(Shape{1, 8, 8, 32}, 1);
  autodiff::Variable v("filter", testing::random_tensor(Shape{3, 3, 32, 32}, 2), true);
  const Tensor delta = testing::random_tensor(Shape{3, 3, 32, 32}, 3);
  auto conv = [&](const Tensor &f) { return ops::conv2d(x, f, {1, 1}, {1, 1}, ops::Padding::kSame); };
  std::atomic<bool> done{false};
  std::atomic<int> stale{0}, reads{0};
  auto reader = [&](bool kept) {
    while (!done.load(std::memory_order_acquire)) {
      Tensor f = kept ? v.read_for_op() : v.peek();
      const Tensor y = conv(f);
      const Tensor fresh = Tensor::from_data(DType::kFloat32, f.shape(), f.raw_data(), f.byte_size());
      const Tensor want = conv(fresh);
      if (std::memcmp(y.raw_data(), want.raw_data(), y.byte_size()) != 0) stale.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
      f = Tensor();  // lets the next update write in place
      std::this_thread::yield();
    }
  };
  read_while_updating(
      3, done, reads, [&](int i) { reader(i == 2); }, 200, [&] { v.assign_add(delta); });
  EXPECT_EQ(stale.load(), 0) << "out of " << reads.load();
}

// A layer's inference call: batch-1 dense through read_for_op (the packed-weights memo, split over
// 2 threads) from 2 threads while the kernel is updated in place. The kernel always holds one
// value c, so every consistent result is 256 * c in every column, and c only grows.
TEST(VariableStress, DenseInferenceThroughReadForOpWhileUpdated) {
  autodiff::Variable kernel("kernel", ops::zeros(Shape{256, 512}), true);
  const Tensor x = ops::ones(Shape{1, 256}), one = ops::ones(Shape{256, 512});
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  auto reader = [&] {
    set_num_threads_for_this_thread(2);
    float last = 0;
    while (!done.load(std::memory_order_acquire)) {
      const Tensor y = ops::dense(x, kernel.read_for_op(), Tensor(), ops::DenseActivation::kLinear);
      const float c = y.data<float>()[0] / 256;
      if (!all_equal(y) || c != static_cast<float>(static_cast<int>(c)) || c < last) torn.fetch_add(1);
      last = c;
      reads.fetch_add(1, std::memory_order_relaxed);
    }
    set_num_threads_for_this_thread(0);
  };
  read_while_updating(
      2, done, reads, [&](int) { reader(); }, 300, [&] { kernel.assign_add(one); });
  EXPECT_EQ(torn.load(), 0) << "out of " << reads.load();
  const Tensor y = ops::dense(x, kernel.read_for_op(), Tensor(), ops::DenseActivation::kLinear);
  EXPECT_EQ(y.data<float>()[0], 256.0f * 300);
}

}  // namespace
}  // namespace kiln
