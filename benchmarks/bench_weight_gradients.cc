// Weight gradients whose reduction kiln keeps independent of the thread count: conv2d's filter
// gradient (oneDNN backward-weights) and matmul's weight gradient x^T · dy (a tall-K GEMM). Run
// at 2 threads, the machine's core count.
#include <benchmark/benchmark.h>

#include "kiln/kiln.hpp"

namespace {

// The filter gradient of conv2d(x [N, H, H, C], filter [3, 3, C, O], SAME), from a persistent
// tape, so that each iteration times the backward pass alone; args N, H, C, O.
void BM_KilnConv2dFilterGradient(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  const int64_t n = state.range(0), h = state.range(1), c = state.range(2), o = state.range(3);
  kiln::Tensor x = kiln::random_uniform({n, h, h, c}, -1, 1, 1);
  kiln::Tensor f = kiln::random_uniform({3, 3, c, o}, -1, 1, 2);
  kiln::Tensor dy = kiln::random_uniform({n, h, h, o}, -1, 1, 3);
  kiln::GradientTape tape(true);
  tape.watch(f);
  kiln::Tensor y = kiln::conv2d(x, f, {1, 1}, {1, 1}, kiln::Padding::same);
  tape.stop();
  for (auto _ : state) {
    std::vector<kiln::Tensor> g = tape.gradient(y, {f}, kiln::Unconnected::none, dy);
    benchmark::DoNotOptimize(g[0].get());
  }
}

// matmul(x, dy, transpose_a=true): x [K, M], dy [K, N]; args K, M, N.
void BM_KilnMatmulWeightGradient(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  const int64_t k = state.range(0), m = state.range(1), n = state.range(2);
  kiln::Tensor x = kiln::random_uniform({k, m}, -1, 1, 1);
  kiln::Tensor dy = kiln::random_uniform({k, n}, -1, 1, 2);
  for (auto _ : state) {
    kiln::Tensor g = kiln::matmul(x, dy, true, false);
    benchmark::DoNotOptimize(g.get());
  }
}

}  // namespace

BENCHMARK(BM_KilnConv2dFilterGradient)
    ->Args({16, 28, 32, 64})
    ->Args({32, 14, 64, 128})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_KilnMatmulWeightGradient)->Args({4096, 512, 512})->Unit(benchmark::kMillisecond)->UseRealTime();
