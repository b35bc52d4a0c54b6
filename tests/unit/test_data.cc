// The input pipeline's core: every transformation's values, order and cardinality, seeded
// shuffles, parallel map order, prefetch, errors from functions, early destruction.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "test_util.h"

namespace kiln::data {
namespace {

using kiln::testing::make_typed;

// Every element's first component as int64 values (scalars or 1-D rows flattened).
std::vector<std::vector<int64_t>> collect(const DatasetPtr &d) {
  std::vector<std::vector<int64_t>> out;
  IteratorPtr it = d->make_iterator();
  Element e;
  while (it->next(&e)) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < e[0].num_elements(); ++i)
      v.push_back(static_cast<int64_t>(e[0].item_as_double(i)));
    out.push_back(v);
  }
  return out;
}

std::vector<int64_t> scalars(const DatasetPtr &d) {
  std::vector<int64_t> out;
  for (const auto &v : collect(d)) out.push_back(v.at(0));
  return out;
}

std::vector<int64_t> iota(int64_t a, int64_t b) {
  std::vector<int64_t> v;
  for (int64_t i = a; i < b; ++i) v.push_back(i);
  return v;
}

Tensor i64(const std::vector<int64_t> &v) {
  return make_typed<int64_t>(Shape{static_cast<int64_t>(v.size())}, v);
}

// x[i] * 10 for an int64 scalar element.
Element times_ten(const Element &e) { return {Tensor::scalar<int64_t>(*e[0].data<int64_t>() * 10)}; }

TEST(Data, FromTensorSlicesTupleAndNames) {
  Tensor x = make_typed<float>(Shape{3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor y = i64({7, 8, 9});
  DatasetPtr d = from_tensor_slices({x, y}, {"x", "y"});
  EXPECT_EQ(d->cardinality(), 3);
  EXPECT_EQ(d->names(), (std::vector<std::string>{"x", "y"}));
  IteratorPtr it = d->make_iterator();
  Element e;
  ASSERT_TRUE(it->next(&e));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].shape(), Shape({2}));
  EXPECT_EQ(e[0].data<float>()[1], 2.0f);
  EXPECT_EQ(*e[1].data<int64_t>(), 7);
  ASSERT_TRUE(it->next(&e));
  ASSERT_TRUE(it->next(&e));
  EXPECT_EQ(e[0].data<float>()[0], 5.0f);
  EXPECT_FALSE(it->next(&e));
  EXPECT_FALSE(it->next(&e));
}

TEST(Data, SourceErrors) {
  EXPECT_THROW(from_tensor_slices({i64({1, 2}), i64({1})}), Error);
  EXPECT_THROW(from_tensor_slices({Tensor::scalar<int64_t>(1)}), Error);
  EXPECT_THROW(from_tensor_slices({i64({1})}, {"a", "b"}), Error);
  EXPECT_THROW(from_tensor_slices({i64({1}), i64({2})}, {"a", "a"}), Error);
  EXPECT_THROW(range(0, 3, 0), Error);
}

TEST(Data, FromTensorsAndRange) {
  DatasetPtr d = from_tensors({i64({1, 2, 3})});
  EXPECT_EQ(d->cardinality(), 1);
  EXPECT_EQ(collect(d), (std::vector<std::vector<int64_t>>{{1, 2, 3}}));
  EXPECT_EQ(scalars(range(0, 5)), iota(0, 5));
  EXPECT_EQ(scalars(range(5, 0, -2)), (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(range(5, 0, -2)->cardinality(), 3);
  EXPECT_EQ(range(0, 10, 3)->cardinality(), 4);
  EXPECT_EQ(range(3, 3)->cardinality(), 0);
}

// Ranges across the whole int64 line count in unsigned arithmetic (no signed overflow, which
// UBSan checks in CI): the elements and the cardinality are exact, a count past INT64_MAX reads
// as INT64_MAX.
TEST(Data, RangeAtTheEdgesOfInt64) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
  auto scalars = [](const DatasetPtr &d) {  // exact int64 values (the file's helper goes through double)
    std::vector<int64_t> out;
    IteratorPtr it = d->make_iterator();
    Element e;
    while (it->next(&e)) out.push_back(*e[0].data<int64_t>());
    return out;
  };
  EXPECT_EQ(scalars(range(kMin, kMax, kMax)), (std::vector<int64_t>{kMin, -1, kMax - 1}));
  EXPECT_EQ(range(kMin, kMax, kMax)->cardinality(), 3);
  EXPECT_EQ(scalars(range(-5, kMax, kMax)), (std::vector<int64_t>{-5, kMax - 5}));
  EXPECT_EQ(scalars(range(0, kMax, kMax / 2)), (std::vector<int64_t>{0, kMax / 2, kMax - 1}));
  EXPECT_EQ(scalars(range(kMax, kMin, kMin)), (std::vector<int64_t>{kMax, -1}));
  EXPECT_EQ(range(0, 10, kMin)->cardinality(), 0);
  EXPECT_EQ(scalars(range(kMax - 2, kMax)), (std::vector<int64_t>{kMax - 2, kMax - 1}));
  EXPECT_EQ(scalars(range(kMin + 2, kMin, -1)), (std::vector<int64_t>{kMin + 2, kMin + 1}));
  const DatasetPtr whole = range(kMin, kMax);
  EXPECT_EQ(whole->cardinality(), kMax);
  IteratorPtr it = whole->make_iterator();
  Element e;
  ASSERT_TRUE(it->next(&e));
  EXPECT_EQ(*e[0].data<int64_t>(), kMin);
  ASSERT_TRUE(it->next(&e));
  EXPECT_EQ(*e[0].data<int64_t>(), kMin + 1);
}

TEST(Data, Generator) {
  DatasetPtr d = from_generator([] {
    auto i = std::make_shared<int64_t>(0);
    return [i](Element *e) {
      if (*i >= 4) return false;
      *e = {Tensor::scalar<int64_t>((*i)++)};
      return true;
    };
  });
  EXPECT_EQ(d->cardinality(), kUnknown);
  EXPECT_EQ(scalars(d), iota(0, 4));
  EXPECT_EQ(scalars(d), iota(0, 4));  // every pass starts the generator anew
}

TEST(Data, ShuffleIsAPermutationDeterministicPerSeed) {
  DatasetPtr s1 = shuffle(range(0, 100), 10, 7);
  std::vector<int64_t> a = scalars(s1), b = scalars(s1);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota(0, 100));
  EXPECT_NE(a, iota(0, 100));
  EXPECT_NE(a, b);  // reshuffled each iteration
  // The same seed again gives the same sequence of epochs.
  DatasetPtr s2 = shuffle(range(0, 100), 10, 7);
  EXPECT_EQ(scalars(s2), a);
  EXPECT_EQ(scalars(s2), b);
  // Another seed, another order; no reshuffle, the same order every epoch.
  EXPECT_NE(scalars(shuffle(range(0, 100), 10, 8)), a);
  DatasetPtr fixed = shuffle(range(0, 100), 10, 7, false);
  EXPECT_EQ(scalars(fixed), scalars(fixed));
  EXPECT_EQ(s1->cardinality(), 100);
  // A buffer of 10 holds elements p .. p + 9 when output p is drawn.
  for (size_t p = 0; p < a.size(); ++p) EXPECT_LT(a[p], static_cast<int64_t>(p) + 10);
  EXPECT_THROW(shuffle(range(0, 3), 0), Error);
}

TEST(Data, UnseededShuffleFollowsTheGlobalSeed) {
  set_global_seed(42);
  std::vector<int64_t> a = scalars(shuffle(range(0, 50), 50));
  set_global_seed(42);
  std::vector<int64_t> b = scalars(shuffle(range(0, 50), 50));
  EXPECT_EQ(a, b);
  EXPECT_NE(scalars(shuffle(range(0, 50), 50)), a);  // the next value of the sequence
}

TEST(Data, ShuffleThenRepeatReshufflesEveryEpoch) {
  std::vector<int64_t> all = scalars(repeat(shuffle(range(0, 20), 20, 3), 2));
  ASSERT_EQ(all.size(), 40u);
  std::vector<int64_t> e1(all.begin(), all.begin() + 20), e2(all.begin() + 20, all.end());
  EXPECT_NE(e1, e2);
  std::sort(e2.begin(), e2.end());
  EXPECT_EQ(e2, iota(0, 20));
}

TEST(Data, BatchAndDropRemainder) {
  DatasetPtr b = batch(range(0, 10), 4);
  EXPECT_EQ(b->cardinality(), 3);
  EXPECT_EQ(collect(b), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}));
  DatasetPtr d = batch(range(0, 10), 4, true);
  EXPECT_EQ(d->cardinality(), 2);
  EXPECT_EQ(collect(d).size(), 2u);
  // Rows of rank 1 stack into [batch, n].
  Tensor x = make_typed<float>(Shape{4, 3}, std::vector<float>(12, 1.0f));
  IteratorPtr it = batch(from_tensor_slices({x}), 3)->make_iterator();
  Element e;
  ASSERT_TRUE(it->next(&e));
  EXPECT_EQ(e[0].shape(), Shape({3, 3}));
  EXPECT_EQ(batch(repeat(range(0, 3)), 2)->cardinality(), kInfinite);
  EXPECT_THROW(batch(range(0, 3), 0), Error);
}

TEST(Data, BatchOfUnequalShapesIsAnError) {
  DatasetPtr ragged = from_generator([] {
    auto i = std::make_shared<int64_t>(0);
    return [i](Element *e) {
      if (*i >= 3) return false;
      std::vector<int64_t> v(static_cast<size_t>(++*i), *i);
      *e = {i64(v)};
      return true;
    };
  });
  IteratorPtr it = batch(ragged, 3)->make_iterator();
  Element e;
  try {
    it->next(&e);
    FAIL() << "no error";
  } catch (const Error &err) {
    EXPECT_EQ(err.code(), Code::kInvalidArgument);
    EXPECT_NE(std::string(err.what()).find("padded_batch"), std::string::npos) << err.what();
  }
  // padded_batch pads to the longest, with the padding value or zeros.
  IteratorPtr p = padded_batch(ragged, 3, {}, {Tensor::scalar<int64_t>(-1)})->make_iterator();
  ASSERT_TRUE(p->next(&e));
  EXPECT_EQ(e[0].shape(), Shape({3, 3}));
  const int64_t *v = e[0].data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(v, v + 9), (std::vector<int64_t>{1, -1, -1, 2, 2, -1, 3, 3, 3}));
  IteratorPtr q = padded_batch(ragged, 2, {{5}}, {}, true)->make_iterator();
  ASSERT_TRUE(q->next(&e));
  EXPECT_EQ(e[0].shape(), Shape({2, 5}));
  v = e[0].data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(v, v + 10), (std::vector<int64_t>{1, 0, 0, 0, 0, 2, 2, 0, 0, 0}));
  EXPECT_FALSE(q->next(&e));  // the remainder of 1 is dropped
  // A padded shape smaller than an element is an error.
  IteratorPtr r = padded_batch(ragged, 3, {{2}}, {})->make_iterator();
  EXPECT_THROW(r->next(&e), Error);
}

TEST(Data, PaddedBatchRank2) {
  Tensor a = make_typed<float>(Shape{1, 2}, {1, 2});
  Tensor b = make_typed<float>(Shape{2, 1}, {3, 4});
  DatasetPtr d = concatenate(from_tensors({a}), from_tensors({b}));
  IteratorPtr it = padded_batch(d, 2, {}, {})->make_iterator();
  Element e;
  ASSERT_TRUE(it->next(&e));
  EXPECT_EQ(e[0].shape(), Shape({2, 2, 2}));
  const float *v = e[0].data<float>();
  EXPECT_EQ(std::vector<float>(v, v + 8), (std::vector<float>{1, 2, 0, 0, 3, 0, 4, 0}));
}

TEST(Data, MapSerialAndParallelAgree) {
  DatasetPtr serial = map(range(0, 200), times_ten);
  std::vector<int64_t> want;
  for (int64_t i = 0; i < 200; ++i) want.push_back(i * 10);
  EXPECT_EQ(scalars(serial), want);
  // Parallel: workers finish out of order (slow even elements), the output keeps the order.
  MapFn slow = [](const Element &e) {
    if (*e[0].data<int64_t>() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    return times_ten(e);
  };
  DatasetPtr parallel = map(range(0, 200), slow, 4);
  EXPECT_EQ(scalars(parallel), want);
  EXPECT_EQ(scalars(map(range(0, 200), slow, kAutotune)), want);
  EXPECT_EQ(parallel->cardinality(), 200);
  EXPECT_THROW(map(range(0, 1), times_ten, -2), Error);
}

TEST(Data, ParallelMapWorkersRunKernelsAtOneThread) {
  std::atomic<int> bad{0};
  DatasetPtr d = map(
      range(0, 16),
      [&](const Element &e) {
        if (num_threads() != 1) ++bad;
        return e;
      },
      3);
  EXPECT_EQ(scalars(d).size(), 16u);
  EXPECT_EQ(bad.load(), 0);
}

// A worker thread ended by pthread_exit inside the map function (as Python ends threads that call
// into it during interpreter shutdown) unwinds out of the pipeline: no "exception not rethrown"
// abort, and the iterator is still destroyed cleanly.
TEST(Data, AWorkerEndedByPthreadExitLeavesCleanly) {
  std::atomic<bool> exiting{false};
  DatasetPtr d = map(
      range(0, 100),
      [&](const Element &e) -> Element {
        exiting = true;
        pthread_exit(nullptr);
        return e;
      },
      2);
  IteratorPtr it = d->make_iterator();
  while (!exiting) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both workers are gone by now
  it.reset();
  SUCCEED();
}

TEST(Data, ErrorsFromFunctionsComeOutOfNext) {
  for (int64_t workers : {0, 4}) {
    DatasetPtr d = map(
        range(0, 10),
        [](const Element &e) {
          if (*e[0].data<int64_t>() == 3) fail(Code::kOutOfRange, "element three is bad");
          return e;
        },
        workers);
    IteratorPtr it = d->make_iterator();
    Element e;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(it->next(&e));
    try {
      it->next(&e);
      FAIL() << "no error";
    } catch (const Error &err) {
      EXPECT_EQ(err.code(), Code::kOutOfRange);
      EXPECT_STREQ(err.what(), "element three is bad");
    }
    ASSERT_TRUE(it->next(&e));  // the pass goes on, as tf's
    EXPECT_EQ(*e[0].data<int64_t>(), 4);
  }
}

TEST(Data, EarlyDestructionStopsThreads) {
  std::atomic<int> calls{0};
  for (int round = 0; round < 20; ++round) {
    DatasetPtr d = prefetch(map(
                                repeat(range(0, 10)),
                                [&](const Element &e) {
                                  ++calls;
                                  return e;
                                },
                                4),
                            8);
    IteratorPtr it = d->make_iterator();
    Element e;
    ASSERT_TRUE(it->next(&e));
    it.reset();  // joins the threads: no hang, no leak (ASan/TSan builds check)
  }
  const int after = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(calls.load(), after);  // nothing runs any more
}

TEST(Data, DatasetDroppedWhileIteratorRuns) {
  IteratorPtr it;
  {
    DatasetPtr d =
        prefetch(map(
                     batch(from_tensor_slices({i64(iota(0, 9))}), 3), [](const Element &e) { return e; }, 2),
                 2);
    it = d->make_iterator();
  }
  Element e;
  int n = 0;
  while (it->next(&e)) ++n;
  EXPECT_EQ(n, 3);
}

TEST(Data, Prefetch) {
  DatasetPtr d = prefetch(range(0, 50), 5);
  EXPECT_EQ(scalars(d), iota(0, 50));
  EXPECT_EQ(d->cardinality(), 50);
  EXPECT_EQ(scalars(prefetch(range(0, 5), kAutotune)), iota(0, 5));
  DatasetPtr r = range(0, 5);
  EXPECT_EQ(prefetch(r, 0), r);  // prefetch(0) prefetches nothing
  // The background thread fills the buffer before the consumer asks.
  std::atomic<int> pulled{0};
  DatasetPtr g = prefetch(map(range(0, 100),
                              [&](const Element &e) {
                                ++pulled;
                                return e;
                              }),
                          4);
  IteratorPtr it = g->make_iterator();
  for (int i = 0; i < 200 && pulled.load() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(pulled.load(), 4);
  EXPECT_LE(pulled.load(), 6);  // bounded by the buffer (+1 being filed)
}

TEST(Data, FilterRepeatTakeSkip) {
  DatasetPtr even = filter(range(0, 10), [](const Element &e) { return *e[0].data<int64_t>() % 2 == 0; });
  EXPECT_EQ(scalars(even), (std::vector<int64_t>{0, 2, 4, 6, 8}));
  EXPECT_EQ(even->cardinality(), kUnknown);
  // tf.data's docstring example: a filter over an infinite input is of unknown size (it may drop all).
  EXPECT_EQ(filter(repeat(range(0, 2)), [](const Element &) { return true; })->cardinality(), kUnknown);
  EXPECT_EQ(scalars(repeat(range(0, 3), 2)), (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(repeat(range(0, 3), 2)->cardinality(), 6);
  EXPECT_EQ(repeat(range(0, 3))->cardinality(), kInfinite);
  EXPECT_EQ(repeat(range(0, 0))->cardinality(), 0);
  EXPECT_TRUE(scalars(repeat(range(0, 0))).empty());  // no endless loop over nothing
  // A counted repeat runs every pass, even after an empty one (tf's FiniteIterator): a generator
  // that gives [10], [], [30] on its three passes.
  auto pass = std::make_shared<std::atomic<int>>(0);
  DatasetPtr passes = from_generator([pass] {
    const int p = (*pass)++;
    auto done = std::make_shared<bool>(p % 3 == 1);
    return [p, done](Element *out) {
      if (*done) return false;
      *done = true;
      *out = {Tensor::scalar<int64_t>(p % 3 == 0 ? 10 : 30)};
      return true;
    };
  });
  EXPECT_EQ(scalars(repeat(passes, 3)), (std::vector<int64_t>{10, 30}));
  // Repeating forever ends at an empty pass instead of looping over nothing.
  EXPECT_EQ(scalars(take(repeat(passes), 10)), (std::vector<int64_t>{10}));
  EXPECT_EQ(scalars(take(repeat(range(0, 3)), 7)), (std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(take(repeat(range(0, 3)), 7)->cardinality(), 7);
  EXPECT_EQ(take(range(0, 3), 7)->cardinality(), 3);
  EXPECT_EQ(take(range(0, 3), -1)->cardinality(), 3);
  EXPECT_EQ(scalars(skip(range(0, 5), 2)), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(skip(range(0, 5), 2)->cardinality(), 3);
  EXPECT_EQ(skip(range(0, 5), 9)->cardinality(), 0);
  EXPECT_TRUE(scalars(skip(range(0, 5), -1)).empty());
  // shard(n, i): positions i, i + n, ...; the cardinality as TF counts it.
  EXPECT_EQ(scalars(shard(range(0, 7), 3, 1)), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(scalars(shard(range(0, 7), 3, 0)), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(shard(range(0, 7), 3, 0)->cardinality(), 3);
  EXPECT_EQ(shard(range(0, 7), 3, 2)->cardinality(), 2);
  EXPECT_EQ(shard(range(0, 2), 3, 2)->cardinality(), 0);
  EXPECT_TRUE(scalars(shard(range(0, 2), 3, 2)).empty());
  EXPECT_EQ(shard(repeat(range(0, 3)), 2, 1)->cardinality(), kInfinite);
  EXPECT_EQ(scalars(take(shard(repeat(range(0, 3)), 2, 1), 3)), (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(shard(even, 2, 0)->cardinality(), kUnknown);
  testing::expect_error([] { shard(range(0, 3), 0, 0); }, Code::kInvalidArgument,
                        {"num_shards is 0", ">= 1"});
  testing::expect_error([] { shard(range(0, 3), 2, 2); }, Code::kInvalidArgument,
                        {"index is 2", "< num_shards (2)"});
  testing::expect_error([] { shard(range(0, 3), 2, -1); }, Code::kInvalidArgument, {"index is -1"});
  EXPECT_EQ(take(even, 2)->cardinality(), kUnknown);
  EXPECT_EQ(take(even, 0)->cardinality(), kUnknown);  // tf.data: unknown stays unknown
  EXPECT_EQ(take(repeat(range(0, 3)), -1)->cardinality(), kInfinite);
}

TEST(Data, ZipConcatenateEnumerate) {
  DatasetPtr z = zip({range(0, 3), range(10, 20)});
  EXPECT_EQ(z->cardinality(), 3);
  IteratorPtr it = z->make_iterator();
  Element e;
  ASSERT_TRUE(it->next(&e));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(*e[1].data<int64_t>(), 10);
  EXPECT_EQ(zip({range(0, 3), repeat(range(0, 1))})->cardinality(), 3);
  DatasetPtr c = concatenate(range(0, 2), range(5, 7));
  EXPECT_EQ(scalars(c), (std::vector<int64_t>{0, 1, 5, 6}));
  EXPECT_EQ(c->cardinality(), 4);
  IteratorPtr bad =
      concatenate(range(0, 1), from_tensors({make_typed<float>(Shape{}, {1})}))->make_iterator();
  ASSERT_TRUE(bad->next(&e));
  EXPECT_THROW(bad->next(&e), Error);
  DatasetPtr en = enumerate(range(7, 9), 5);
  IteratorPtr ei = en->make_iterator();
  ASSERT_TRUE(ei->next(&e));
  EXPECT_EQ(*e[0].data<int64_t>(), 5);
  EXPECT_EQ(*e[1].data<int64_t>(), 7);
  EXPECT_EQ(en->cardinality(), 2);
}

TEST(Data, CacheReadsTheInputOnce) {
  std::atomic<int> calls{0};
  DatasetPtr d = cache(map(range(0, 5), [&](const Element &e) {
    ++calls;
    return e;
  }));
  EXPECT_EQ(scalars(d), iota(0, 5));
  EXPECT_EQ(scalars(d), iota(0, 5));
  EXPECT_EQ(calls.load(), 5);
  // A cached shuffle repeats its first epoch's order.
  DatasetPtr s = cache(shuffle(range(0, 30), 30, 1));
  EXPECT_EQ(scalars(s), scalars(s));
}

TEST(Data, Unbatch) {
  DatasetPtr u = unbatch(batch(range(0, 7), 3));
  EXPECT_EQ(scalars(u), iota(0, 7));
  EXPECT_EQ(u->cardinality(), kUnknown);
  IteratorPtr it = unbatch(range(0, 2))->make_iterator();
  Element e;
  EXPECT_THROW(it->next(&e), Error);  // scalars have no rows
  // A batch whose components disagree on their rows is an error, and the pass goes on with the
  // next batch (as tf.data); its rows are not sliced afterwards (that read out of bounds).
  DatasetPtr ragged = from_generator([] {
    auto i = std::make_shared<int>(0);
    return [i](Element *out) {
      const int k = (*i)++;
      if (k == 0)
        *out = {testing::make_typed<int64_t>({4}, {100, 101, 102, 103}),
                testing::make_typed<int64_t>({1}, {200})};
      else if (k == 1)
        *out = {testing::make_typed<int64_t>({1}, {7}), testing::make_typed<int64_t>({1}, {8})};
      else
        return false;
      return true;
    };
  });
  it = unbatch(ragged)->make_iterator();
  testing::expect_error([&] { it->next(&e); }, Code::kInvalidArgument,
                        {"unbatch: component 1", "same first dim"});
  ASSERT_TRUE(it->next(&e));
  EXPECT_EQ(e[0].data<int64_t>()[0], 7);
  EXPECT_EQ(e[1].data<int64_t>()[0], 8);
  EXPECT_FALSE(it->next(&e));
}

}  // namespace
}  // namespace kiln::data
