// W2 (issue 10): the eager overhead of one small op, `c = a + b` through kiln.hpp on float32
// tensors of shape [1] and [1, 64], without a tape and inside a recording GradientTape.
// Target: at most 0.25x PyTorch's figure, both ways. benchmarks/README.md, "### W2", defines it.
// Earlier targets (issue 2): <= 0.30 us with no tape, <= 0.60 us recorded.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "bench_training.h"
#include "kiln/kiln.hpp"

namespace {

// Ops recorded per tape before a fresh one starts, like one tape per training step; making and
// freeing the tapes (and everything they recorded) is part of the measured cost.
constexpr int64_t kOpsPerTape = 256;

kiln::Tensor w2_operand(int64_t elements, float start) {
  std::vector<float> v(static_cast<size_t>(elements));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<float>(i);
  return kiln::Tensor::from_vector(v, elements == 1 ? kiln::Dims{1} : kiln::Dims{1, elements});
}

// BM_W2KilnAdd/<elements>/<tape>: elements 1 ([1]) or 64 ([1, 64]); tape 1 records every add on
// a GradientTape that watches both inputs (a fresh tape every kOpsPerTape adds).
void BM_W2KilnAdd(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  const int64_t elements = state.range(0);
  const bool taped = state.range(1) != 0;
  kiln::Tensor a = w2_operand(elements, 1.0f);
  kiln::Tensor b = w2_operand(elements, 2.0f);
  std::unique_ptr<kiln::GradientTape> tape;
  int64_t i = 0;
  for (auto _ : state) {
    if (taped && i++ % kOpsPerTape == 0) {
      tape.reset();
      tape = std::make_unique<kiln::GradientTape>();
      tape->watch(a);
      tape->watch(b);
    }
    kiln::Tensor c = a + b;
    benchmark::DoNotOptimize(c.get());
  }
}

// A long tape: 4096 recorded ops per tape on 1-element scalars, so the recording's cost as the
// tape grows (the arena, the record list) shows beside W2's 256.
void BM_Add1TapeRecording(benchmark::State &state) {
  kiln::Tensor a = kiln::Tensor::scalar(1.0f);
  kiln::Tensor b = kiln::Tensor::scalar(2.0f);
  const int64_t ops_per_tape = state.range(0);
  std::unique_ptr<kiln::GradientTape> tape;
  int64_t i = 0;
  for (auto _ : state) {
    if (i++ % ops_per_tape == 0) {
      tape.reset();
      tape = std::make_unique<kiln::GradientTape>();
      tape->watch(a);
    }
    kiln::Tensor c = a + b;
    benchmark::DoNotOptimize(c.get());
  }
}

// A tape that is active but watches nothing: the cost of checking whether to record.
void BM_Add1TapeNotWatching(benchmark::State &state) {
  kiln::Tensor a = kiln::Tensor::scalar(1.0f);
  kiln::Tensor b = kiln::Tensor::scalar(2.0f);
  kiln::GradientTape tape;  // active, but nothing watched: nothing recorded
  for (auto _ : state) {
    kiln::Tensor c = a + b;
    benchmark::DoNotOptimize(c.get());
  }
}

}  // namespace

BENCHMARK(BM_W2KilnAdd)
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({64, 0})
    ->Args({64, 1})
    ->Unit(benchmark::kNanosecond)
    ->UseRealTime()
    ->ComputeStatistics("min", kiln_bench::min_of)
    ->ComputeStatistics("max", kiln_bench::max_of);
BENCHMARK(BM_Add1TapeRecording)->Arg(4096)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Add1TapeNotWatching)->Unit(benchmark::kNanosecond);
