// Per-op overhead: a 1-element add through kiln.hpp.
// Targets (issue 2): <= 0.30 us with no tape, <= 0.60 us with a tape recording the op.
#include <benchmark/benchmark.h>

#include <memory>

#include "kiln/kiln.hpp"

namespace {

void BM_Add1NoTape(benchmark::State &state) {
  kiln::Tensor a = kiln::Tensor::scalar(1.0f);
  kiln::Tensor b = kiln::Tensor::scalar(2.0f);
  for (auto _ : state) {
    kiln::Tensor c = a + b;
    benchmark::DoNotOptimize(c.get());
  }
}

void BM_Add1TapeRecording(benchmark::State &state) {
  kiln::Tensor a = kiln::Tensor::scalar(1.0f);
  kiln::Tensor b = kiln::Tensor::scalar(2.0f);
  // A tape that watches `a`, so every add is recorded. A fresh tape every
  // state.range(0) ops, like one tape per training step; creating and freeing the
  // tapes (and everything they recorded) is part of the measured cost.
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

BENCHMARK(BM_Add1NoTape)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Add1TapeRecording)->Arg(256)->Arg(4096)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Add1TapeNotWatching)->Unit(benchmark::kNanosecond);
