// Random fills and dropout through kiln.hpp at W4's activation sizes (issue 10): [16, 128, 256]
// (524288 elements, the attention and FFN outputs) and [16, 128, 1024] (2097152, the FFN inner
// width), 2 threads. BM_Dropout draws the mask and writes the output only; BM_DropoutTaped runs
// the same call under a GradientTape watching x, so it also keeps the mask for the gradient, as a
// training step does.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "kiln/kiln.hpp"

namespace {

void BM_Dropout(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  const int64_t n = state.range(0);
  kiln::Tensor x = kiln::random_uniform({n}, -1, 1, 1);
  for (auto _ : state) {
    kiln::Tensor y = kiln::dropout(x, 0.1f, true, 7);
    benchmark::DoNotOptimize(y.get());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_DropoutTaped(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  const int64_t n = state.range(0);
  kiln::Tensor x = kiln::random_uniform({n}, -1, 1, 1);
  for (auto _ : state) {
    kiln::GradientTape tape;
    tape.watch(x);
    kiln::Tensor y = kiln::dropout(x, 0.1f, true, 7);
    benchmark::DoNotOptimize(y.get());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_RandomUniform(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  const int64_t n = state.range(0);
  for (auto _ : state) {
    kiln::Tensor y = kiln::random_uniform({n}, -1, 1, 7);
    benchmark::DoNotOptimize(y.get());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

BENCHMARK(BM_Dropout)
    ->Arg(16 * 128 * 256)
    ->Arg(16 * 128 * 1024)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_DropoutTaped)
    ->Arg(16 * 128 * 256)
    ->Arg(16 * 128 * 1024)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_RandomUniform)
    ->Arg(16 * 128 * 256)
    ->Arg(16 * 128 * 1024)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
