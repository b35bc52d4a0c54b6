// conv2d forward on a filter that stays unchanged between calls (inference, evaluation): the
// filter's reorder to oneDNN's blocked layout is cached per (storage, version) since issue 5;
// before, every call reordered it.
#include <benchmark/benchmark.h>

#include "kiln/kiln.hpp"

namespace {

// x [N, H, H, C] * filter [3, 3, C, O], SAME; args N, H, C, O.
void BM_KilnConv2dForward(benchmark::State &state) {
  const int64_t n = state.range(0), h = state.range(1), c = state.range(2), o = state.range(3);
  kiln::Tensor x = kiln::random_uniform({n, h, h, c}, -1, 1, 1);
  kiln::Tensor f = kiln::random_uniform({3, 3, c, o}, -1, 1, 2);
  for (auto _ : state) {
    kiln::Tensor y = kiln::conv2d(x, f, {1, 1}, {1, 1}, kiln::Padding::same);
    benchmark::DoNotOptimize(y.get());
  }
}

}  // namespace

// The workload, then filter-heavy layers (late ResNet stages at batch 1) where the reorder
// is a large part of the call.
BENCHMARK(BM_KilnConv2dForward)
    ->Args({8, 28, 32, 64})
    ->Args({1, 28, 32, 64})
    ->Args({1, 7, 256, 256})
    ->Args({1, 7, 512, 512})
    ->UseRealTime();
