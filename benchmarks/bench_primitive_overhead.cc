// Per-call overhead of ops that run cached oneDNN primitives, at sizes where that overhead
// (cache lookup, memory objects, scratchpad, execute) is a visible part of the time.
#include <benchmark/benchmark.h>

#include "bench_util.h"
#include "kiln/kiln.hpp"

namespace {

void BM_KilnMatmulSmall(benchmark::State &state) {
  const int64_t n = state.range(0);
  kiln::Tensor a = kiln::random_uniform({n, n}, -1, 1, 1);
  kiln::Tensor b = kiln::random_uniform({n, n}, -1, 1, 2);
  kiln_bench::time_matmul(state, a, b);
}

// A Dense layer on a sequence: [4, 16, 64] @ [64, 64].
void BM_KilnMatmul3d(benchmark::State &state) {
  kiln::Tensor a = kiln::random_uniform({4, 16, 64}, -1, 1, 1);
  kiln::Tensor b = kiln::random_uniform({64, 64}, -1, 1, 2);
  kiln_bench::time_matmul(state, a, b);
}

void BM_KilnConv2dSmall(benchmark::State &state) {
  kiln::Tensor x = kiln::random_uniform({1, 8, 8, 4}, -1, 1, 1);
  kiln::Tensor f = kiln::random_uniform({3, 3, 4, 8}, -1, 1, 2);
  for (auto _ : state) {
    kiln::Tensor y = kiln::conv2d(x, f, {1, 1}, {1, 1}, kiln::Padding::same);
    benchmark::DoNotOptimize(y.get());
  }
}

}  // namespace

BENCHMARK(BM_KilnMatmulSmall)->Arg(8)->Arg(64)->UseRealTime();
BENCHMARK(BM_KilnMatmul3d)->UseRealTime();
BENCHMARK(BM_KilnConv2dSmall)->UseRealTime();
