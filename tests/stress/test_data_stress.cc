// Input pipelines under threads: several threads each iterate their own iterator of one shared
// dataset (a parallel map whose function runs kernels, behind a shuffle and in front of a
// prefetch), and iterators are destroyed with their workers busy. Run under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "ops/ops.h"

namespace kiln::data {
namespace {

Tensor row(int64_t i) {
  std::vector<float> v(64);
  for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(i) + 0.01f * static_cast<float>(k);
  return Tensor::from_data(DType::kFloat32, Shape{64}, v.data(), v.size() * sizeof(float));
}

// A function that runs real kernels (matmul, softmax) on the element.
Element heavy(const Element &e) {
  Tensor x = ops::reshape(e[1], {8, 8});
  Tensor y = ops::softmax(ops::matmul(x, x), -1);
  return {e[0], ops::sum(y, {}, false)};
}

DatasetPtr pipeline(int64_t n) {
  std::vector<float> all;
  for (int64_t i = 0; i < n; ++i) {
    Tensor r = row(i);
    all.insert(all.end(), r.data<float>(), r.data<float>() + 64);
  }
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  Tensor x = Tensor::from_data(DType::kFloat32, Shape{n, 64}, all.data(), all.size() * sizeof(float));
  Tensor id = Tensor::from_data(DType::kInt64, Shape{n}, ids.data(), ids.size() * sizeof(int64_t));
  return prefetch(batch(map(shuffle(from_tensor_slices({id, x}), 16, 5, false), heavy, 3), 4), 2);
}

std::vector<double> run(const DatasetPtr &d) {
  std::vector<double> out;
  IteratorPtr it = d->make_iterator();
  Element e;
  while (it->next(&e))
    for (int64_t i = 0; i < e[0].num_elements(); ++i) {
      out.push_back(e[0].item_as_double(i));
      out.push_back(e[1].item_as_double(i));
    }
  return out;
}

TEST(DataStress, ParallelMapPipelineFromSeveralThreads) {
  DatasetPtr d = pipeline(64);
  const std::vector<double> want = run(d);
  ASSERT_EQ(want.size(), 128u);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 3; ++rep)
        if (run(d) != want) ++mismatches;
    });
  for (std::thread &t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(DataStress, IteratorsDestroyedWhileWorkersRun) {
  DatasetPtr d = repeat(pipeline(32));
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) {
        IteratorPtr it = d->make_iterator();
        Element e;
        for (int k = 0; k < t + rep; ++k) ASSERT_TRUE(it->next(&e));
      }  // destroyed mid-stream: workers and the prefetch thread stop and join
    });
  for (std::thread &t : threads) t.join();
}

}  // namespace
}  // namespace kiln::data
