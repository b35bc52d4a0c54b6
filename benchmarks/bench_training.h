// Shared by the training benchmarks (bench_training.cc, bench_training_fit.cc): the W3 MLP
// (784-512-256-10, ReLU, logits), its fixed batch, and the per-step statistics.
//
// W3 (issue 10): one training step of that MLP at batch 128 — forward, the mean sparse softmax
// cross-entropy of the logits (Keras's SparseCategoricalCrossentropy(from_logits=True)), backward,
// Adam(1e-3) — at 2 threads. Inputs: x[i, j] = ((i * 784 + j) mod 255) / 255, labels i mod 10.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "kiln/kiln.hpp"

namespace kiln_bench {

constexpr int64_t kW3Batch = 128, kW3Inputs = 784, kW3Classes = 10;

inline kiln::Sequential w3_mlp() {
  namespace L = kiln::layers;
  kiln::Sequential model({L::Dense(512, "relu"), L::Dense(256, "relu"), L::Dense(kW3Classes)});
  model.build_for({-1, kW3Inputs});
  return model;
}

inline kiln::Loss w3_loss() {
  kiln::losses::SparseCategoricalCrossentropyOptions o;
  o.from_logits = true;
  return kiln::losses::SparseCategoricalCrossentropy(o);
}

struct W3Batch {
  kiln::Tensor x, y;
  W3Batch() {
    std::vector<float> xs(static_cast<size_t>(kW3Batch * kW3Inputs));
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 255) / 255.0f;
    std::vector<int32_t> ys(static_cast<size_t>(kW3Batch));
    for (size_t i = 0; i < ys.size(); ++i) ys[i] = static_cast<int32_t>(i % kW3Classes);
    x = kiln::Tensor::from_vector(xs, {kW3Batch, kW3Inputs});
    y = kiln::Tensor::from_vector(ys, {kW3Batch});
  }
};

inline double min_of(const std::vector<double> &v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
inline double max_of(const std::vector<double> &v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

// One step per iteration, one iteration per repetition: run with --benchmark_repetitions=200 and
// the median, min and max aggregates are those of single steps, as the PyTorch peer reports them.
#define KILN_BENCH_PER_STEP(fn)                                                                      \
  BENCHMARK(fn)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1)->ComputeStatistics(      \
      "min", kiln_bench::min_of)->ComputeStatistics("max", kiln_bench::max_of)

}  // namespace kiln_bench
