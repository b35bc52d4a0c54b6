// kiln::data from kiln.hpp: chained datasets iterated with range-for, lambdas for map, filter
// and generators (their exceptions come out of the loop), and the readers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Tensor;
using kiln::data::Dataset;
using kiln::data::Element;

int64_t first(const Element &e) { return e[0].to_vector<int64_t>()[0]; }

std::vector<int64_t> firsts(const Dataset &d) {
  std::vector<int64_t> out;
  for (const Element &e : d) out.push_back(first(e));
  return out;
}

TEST(HppData, SlicesShuffleBatchRangeFor) {
  std::vector<float> xs(20);
  std::vector<int64_t> ys(20);
  for (int i = 0; i < 20; ++i) {
    xs[static_cast<size_t>(i)] = static_cast<float>(i);
    ys[static_cast<size_t>(i)] = i;
  }
  Tensor x = Tensor::from_vector(xs, {10, 2});
  Tensor y = Tensor::from_vector(std::vector<int64_t>(ys.begin(), ys.begin() + 10), {10});
  Dataset ds = Dataset::from_tensor_slices({x, y}).shuffle(1024, 7).batch(4);
  EXPECT_EQ(ds.cardinality(), 3);
  std::vector<int64_t> seen;
  int batches = 0;
  for (const Element &b : ds) {
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b[0].shape()[1], 2);
    for (int64_t v : b[1].to_vector<int64_t>()) seen.push_back(v);
    // x row i is [2i, 2i + 1]: the components stay together through the shuffle.
    std::vector<float> xv = b[0].to_vector<float>();
    std::vector<int64_t> yv = b[1].to_vector<int64_t>();
    for (size_t r = 0; r < yv.size(); ++r) EXPECT_EQ(xv[2 * r], 2.0f * static_cast<float>(yv[r]));
    ++batches;
  }
  EXPECT_EQ(batches, 3);
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, std::vector<int64_t>(ys.begin(), ys.begin() + 10));
  EXPECT_NE(seen, sorted);
  // Seeded: a new dataset with the same seed repeats the order.
  Dataset again = Dataset::from_tensor_slices({x, y}).shuffle(1024, 7).batch(4);
  std::vector<int64_t> seen2;
  for (const Element &b : again)
    for (int64_t v : b[1].to_vector<int64_t>()) seen2.push_back(v);
  EXPECT_EQ(seen, seen2);
  Dataset dict = Dataset::from_tensor_slices({x, y}, {"image", "label"});
  EXPECT_EQ(dict.names(), (std::vector<std::string>{"image", "label"}));
}

TEST(HppData, MapFilterRepeatTakePrefetch) {
  auto square = [](const Element &e) { return Element{Tensor::scalar<int64_t>(first(e) * first(e))}; };
  Dataset base = Dataset::range(10);
  std::vector<int64_t> want;
  for (int64_t i = 0; i < 10; ++i) want.push_back(i * i);
  EXPECT_EQ(firsts(base.map(square)), want);
  EXPECT_EQ(firsts(base.map(square, 4)), want);
  EXPECT_EQ(firsts(base.map(square, kiln::data::AUTOTUNE).prefetch()), want);
  EXPECT_EQ(firsts(base.filter([](const Element &e) { return first(e) % 3 == 0; })),
            (std::vector<int64_t>{0, 3, 6, 9}));
  EXPECT_EQ(firsts(base.repeat().take(12)).size(), 12u);
  EXPECT_EQ(base.repeat().cardinality(), kiln::data::INFINITE_CARDINALITY);
  EXPECT_EQ(base.filter([](const Element &) { return true; }).cardinality(), kiln::data::UNKNOWN_CARDINALITY);
  EXPECT_EQ(firsts(base.skip(8)), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(firsts(base.shard(4, 1)), (std::vector<int64_t>{1, 5, 9}));
  EXPECT_EQ(base.shard(4, 3).cardinality(), 2);
  EXPECT_THROW(base.shard(2, 5), kiln::Error);
  EXPECT_EQ(firsts(base.take(2).concatenate(base.skip(9))), (std::vector<int64_t>{0, 1, 9}));
  EXPECT_EQ(firsts(base.batch(3).unbatch()).size(), 10u);
  EXPECT_EQ(firsts(base.enumerate(5)).front(), 5);
  EXPECT_EQ(firsts(Dataset::zip({base, Dataset::range(3)})).size(), 3u);
  EXPECT_EQ(firsts(base.cache()), firsts(base));
  Dataset padded = Dataset::range(1, 4)
                       .map([](const Element &e) {
                         return Element{Tensor::from_vector(
                             std::vector<int32_t>(static_cast<size_t>(first(e)), 1), {first(e)})};
                       })
                       .padded_batch(3, {{-1}}, {Tensor::scalar<int32_t>(-1)});
  for (const Element &b : padded) {
    EXPECT_EQ(b[0].shape(), (kiln::Dims{3, 3}));
    EXPECT_EQ(b[0].to_vector<int32_t>(), (std::vector<int32_t>{1, -1, -1, 1, 1, -1, 1, 1, 1}));
  }
}

TEST(HppData, GeneratorAndExceptionsFromLambdas) {
  Dataset gen = Dataset::from_generator([] {
    auto i = std::make_shared<int64_t>(0);
    return kiln::data::NextFn([i](Element &e) {
      if (*i == 5) return false;
      e = {Tensor::scalar<int64_t>((*i)++)};
      return true;
    });
  });
  EXPECT_EQ(firsts(gen), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(firsts(gen.repeat(2)).size(), 10u);
  for (int64_t workers : {0, 3}) {
    Dataset bad = gen.map(
        [](const Element &e) -> Element {
          if (first(e) == 2) throw kiln::Error(KILN_STATUS_FAILED_PRECONDITION, "two is not allowed");
          return e;
        },
        workers);
    std::vector<int64_t> got;
    try {
      for (const Element &e : bad) got.push_back(first(e));
      FAIL() << "no exception";
    } catch (const kiln::Error &err) {
      EXPECT_EQ(err.code(), KILN_STATUS_FAILED_PRECONDITION);
      EXPECT_STREQ(err.what(), "two is not allowed");
    }
    EXPECT_EQ(got, (std::vector<int64_t>{0, 1}));
  }
  Dataset throws =
      Dataset::from_generator([]() -> kiln::data::NextFn { throw std::runtime_error("no source"); });
  EXPECT_THROW(throws.make_iterator(), kiln::Error);
}

TEST(HppData, EarlyBreakStopsThreads) {
  std::atomic<int> calls{0};
  Dataset d = Dataset::range(1000000)
                  .map(
                      [&](const Element &e) {
                        ++calls;
                        return e;
                      },
                      4)
                  .prefetch(8);
  for (int round = 0; round < 5; ++round)
    for (const Element &e : d) {
      EXPECT_EQ(first(e), 0);
      break;  // the iterator goes, and joins its threads
    }
  const int after = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(calls.load(), after);
}

TEST(HppData, Readers) {
  const kiln::testing::TempDir tmp("kiln_hpp_data");
  const std::string &dir = tmp.path();
  const std::string images("\0\0\x08\x03\0\0\0\x01\0\0\0\x02\0\0\0\x02\x01\x02\x03\x04", 20);
  const std::string labels("\0\0\x08\x01\0\0\0\x01\x05", 9);
  std::ofstream(dir + "/train-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir + "/t10k-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir + "/train-labels-idx1-ubyte", std::ios::binary) << labels;
  std::ofstream(dir + "/t10k-labels-idx1-ubyte", std::ios::binary) << labels;
  Tensor t = kiln::data::read_idx(dir + "/train-images-idx3-ubyte");
  EXPECT_EQ(t.shape(), (kiln::Dims{1, 2, 2}));
  EXPECT_EQ(t.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2, 3, 4}));
  kiln::data::FashionMnist f = kiln::data::load_fashion_mnist(dir);
  EXPECT_EQ(f.y_test.to_vector<uint8_t>(), (std::vector<uint8_t>{5}));
  // The training loop's pipeline over it.
  for (const Element &b : Dataset::from_tensor_slices({f.x_train, f.y_train}).shuffle(60000, 1).batch(32)) {
    EXPECT_EQ(b[0].shape(), (kiln::Dims{1, 2, 2}));
  }
  std::ofstream(dir + "/t10k-labels-idx1-ubyte", std::ios::binary) << std::string("\0\0\x08", 3);
  try {
    kiln::data::load_fashion_mnist(dir);
    FAIL() << "no error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_DATA_LOSS);
    EXPECT_NE(std::string(e.what()).find("t10k-labels-idx1-ubyte"), std::string::npos) << e.what();
  }
  std::ofstream(dir + "/a.csv") << "x,y\n1,0.5\n2,1.5\n3,2.5\n";
  kiln::data::CsvColumns c = kiln::data::read_csv(dir + "/a.csv");
  EXPECT_EQ(c.names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c.columns.at(0).to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(c.columns.at(1).to_vector<float>(), (std::vector<float>{0.5f, 1.5f, 2.5f}));
  EXPECT_EQ(Dataset::from_csv(dir + "/a.csv").batch(2).cardinality(), 2);
}

}  // namespace
