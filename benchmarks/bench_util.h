// Shared by the benchmark files: the timed matmul loop and the FLOP counter of a square matmul.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

#include "kiln/kiln.hpp"

namespace kiln_bench {

// Times kiln::matmul(a, b), one call per iteration.
inline void time_matmul(benchmark::State &state, const kiln::Tensor &a, const kiln::Tensor &b) {
  for (auto _ : state) {
    kiln::Tensor c = kiln::matmul(a, b);
    benchmark::DoNotOptimize(c.get());
  }
}

// Reports GFLOPS for one n x n by n x n matmul per iteration.
inline void count_square_matmul_flops(benchmark::State &state, int64_t n) {
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(n * n * n), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

}  // namespace kiln_bench
