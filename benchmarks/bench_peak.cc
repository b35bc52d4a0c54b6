// The machine's limit (issue 10): the arithmetic peak of 2 cores, measured by an FMA loop, so the
// W1 GEMM and the training steps can be read as a fraction of it.
//
// BM_PeakFmaF32: each of 2 std::threads runs independent chains of fused multiply-adds on full
// vector registers — 16 zmm accumulators (vfmadd231ps, 16 lanes x 2 FLOP) with AVX-512F, else 12
// ymm accumulators (8 lanes) with AVX2+FMA, so neither the FMA latency nor register spills limit
// the issue rate. BM_PeakFmaBf16: the same with vdpbf16ps (AVX512_BF16; 16 lanes x 2 bf16
// products x 2 FLOP), skipped on CPUs without it. The ISA is chosen at run time
// (__builtin_cpu_supports, which also checks that the OS saves the zmm state), and each loop is
// compiled for its ISA alone with __attribute__((target)), never with -march, so the binary runs
// on any x86-64. benchmarks/README.md, "### Machine limit", defines the workload.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "bench_training.h"

namespace {

constexpr int kPeakThreads = 2;
// Trips of the inner loop per thread and iteration: ~30M FMA instructions, 10-40 ms, so starting
// and joining the threads (tens of microseconds) stays below 0.5% of an iteration.
constexpr int64_t kTrips = int64_t{1} << 21;

// Each accumulator takes acc = m * c + acc per trip (vfmadd231ps acc, m, c): with m * c ~1e-6
// and 2^21 trips per call it stays far from overflow, and no value is denormal. m and c come in
// as arguments the caller reads from a volatile, and the sum of the accumulators is returned and
// consumed, so the compiler can neither fold nor drop the loop.

// The sum of a zmm register's lanes (not _mm512_reduce_add_ps, on which GCC 12 warns
// -Wuninitialized from inside its own header).
__attribute__((target("avx512f"))) float sum_lanes(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float r = 0;
  for (float x : lanes) r += x;
  return r;
}

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t trips, float m, float c) {
  const __m512 vm = _mm512_set1_ps(m), vc = _mm512_set1_ps(c);
  __m512 a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(0.1f), a2 = _mm512_set1_ps(0.2f),
         a3 = _mm512_set1_ps(0.3f), a4 = _mm512_set1_ps(0.4f), a5 = _mm512_set1_ps(0.5f),
         a6 = _mm512_set1_ps(0.6f), a7 = _mm512_set1_ps(0.7f), a8 = _mm512_set1_ps(0.8f),
         a9 = _mm512_set1_ps(0.9f), a10 = _mm512_set1_ps(1.0f), a11 = _mm512_set1_ps(1.1f),
         a12 = _mm512_set1_ps(1.2f), a13 = _mm512_set1_ps(1.3f), a14 = _mm512_set1_ps(1.4f),
         a15 = _mm512_set1_ps(1.5f);
  for (int64_t t = 0; t < trips; ++t) {
    a0 = _mm512_fmadd_ps(vm, vc, a0);
    a1 = _mm512_fmadd_ps(vm, vc, a1);
    a2 = _mm512_fmadd_ps(vm, vc, a2);
    a3 = _mm512_fmadd_ps(vm, vc, a3);
    a4 = _mm512_fmadd_ps(vm, vc, a4);
    a5 = _mm512_fmadd_ps(vm, vc, a5);
    a6 = _mm512_fmadd_ps(vm, vc, a6);
    a7 = _mm512_fmadd_ps(vm, vc, a7);
    a8 = _mm512_fmadd_ps(vm, vc, a8);
    a9 = _mm512_fmadd_ps(vm, vc, a9);
    a10 = _mm512_fmadd_ps(vm, vc, a10);
    a11 = _mm512_fmadd_ps(vm, vc, a11);
    a12 = _mm512_fmadd_ps(vm, vc, a12);
    a13 = _mm512_fmadd_ps(vm, vc, a13);
    a14 = _mm512_fmadd_ps(vm, vc, a14);
    a15 = _mm512_fmadd_ps(vm, vc, a15);
  }
  const __m512 s =
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                  _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
                    _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                  _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  return sum_lanes(s);
}

// AVX2 has 16 ymm registers: 12 accumulators and the two operands fit without spilling.
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t trips, float m, float c) {
  const __m256 vm = _mm256_set1_ps(m), vc = _mm256_set1_ps(c);
  __m256 a0 = _mm256_set1_ps(0.0f), a1 = _mm256_set1_ps(0.1f), a2 = _mm256_set1_ps(0.2f),
         a3 = _mm256_set1_ps(0.3f), a4 = _mm256_set1_ps(0.4f), a5 = _mm256_set1_ps(0.5f),
         a6 = _mm256_set1_ps(0.6f), a7 = _mm256_set1_ps(0.7f), a8 = _mm256_set1_ps(0.8f),
         a9 = _mm256_set1_ps(0.9f), a10 = _mm256_set1_ps(1.0f), a11 = _mm256_set1_ps(1.1f);
  for (int64_t t = 0; t < trips; ++t) {
    a0 = _mm256_fmadd_ps(vm, vc, a0);
    a1 = _mm256_fmadd_ps(vm, vc, a1);
    a2 = _mm256_fmadd_ps(vm, vc, a2);
    a3 = _mm256_fmadd_ps(vm, vc, a3);
    a4 = _mm256_fmadd_ps(vm, vc, a4);
    a5 = _mm256_fmadd_ps(vm, vc, a5);
    a6 = _mm256_fmadd_ps(vm, vc, a6);
    a7 = _mm256_fmadd_ps(vm, vc, a7);
    a8 = _mm256_fmadd_ps(vm, vc, a8);
    a9 = _mm256_fmadd_ps(vm, vc, a9);
    a10 = _mm256_fmadd_ps(vm, vc, a10);
    a11 = _mm256_fmadd_ps(vm, vc, a11);
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                               _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7))),
                                 _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float r = 0;
  for (float v : lanes) r += v;
  return r;
}

// vdpbf16ps acc, m, c: acc += m * c + m * c per float lane, from the pairs of bf16 lanes.
__attribute__((target("avx512bf16,avx512f"))) float dpbf16_loop_avx512(int64_t trips, float m, float c) {
  const __m512bh vm = _mm512_cvtne2ps_pbh(_mm512_set1_ps(m), _mm512_set1_ps(m));
  const __m512bh vc = _mm512_cvtne2ps_pbh(_mm512_set1_ps(c), _mm512_set1_ps(c));
  __m512 a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(0.1f), a2 = _mm512_set1_ps(0.2f),
         a3 = _mm512_set1_ps(0.3f), a4 = _mm512_set1_ps(0.4f), a5 = _mm512_set1_ps(0.5f),
         a6 = _mm512_set1_ps(0.6f), a7 = _mm512_set1_ps(0.7f), a8 = _mm512_set1_ps(0.8f),
         a9 = _mm512_set1_ps(0.9f), a10 = _mm512_set1_ps(1.0f), a11 = _mm512_set1_ps(1.1f),
         a12 = _mm512_set1_ps(1.2f), a13 = _mm512_set1_ps(1.3f), a14 = _mm512_set1_ps(1.4f),
         a15 = _mm512_set1_ps(1.5f);
  for (int64_t t = 0; t < trips; ++t) {
    a0 = _mm512_dpbf16_ps(a0, vm, vc);
    a1 = _mm512_dpbf16_ps(a1, vm, vc);
    a2 = _mm512_dpbf16_ps(a2, vm, vc);
    a3 = _mm512_dpbf16_ps(a3, vm, vc);
    a4 = _mm512_dpbf16_ps(a4, vm, vc);
    a5 = _mm512_dpbf16_ps(a5, vm, vc);
    a6 = _mm512_dpbf16_ps(a6, vm, vc);
    a7 = _mm512_dpbf16_ps(a7, vm, vc);
    a8 = _mm512_dpbf16_ps(a8, vm, vc);
    a9 = _mm512_dpbf16_ps(a9, vm, vc);
    a10 = _mm512_dpbf16_ps(a10, vm, vc);
    a11 = _mm512_dpbf16_ps(a11, vm, vc);
    a12 = _mm512_dpbf16_ps(a12, vm, vc);
    a13 = _mm512_dpbf16_ps(a13, vm, vc);
    a14 = _mm512_dpbf16_ps(a14, vm, vc);
    a15 = _mm512_dpbf16_ps(a15, vm, vc);
  }
  const __m512 s =
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                  _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
                    _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                  _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  return sum_lanes(s);
}

// A loop, what it is called, and the FLOPs of one trip (all its instructions).
struct Kernel {
  float (*loop)(int64_t, float, float) = nullptr;
  const char *isa = "";
  double flops_per_trip = 0;
};

Kernel f32_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return {fma_loop_avx512, "avx512f: 16 x vfmadd231ps zmm", 16 * 16 * 2.0};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {fma_loop_avx2, "avx2: 12 x vfmadd231ps ymm", 12 * 8 * 2.0};
  return {};
}

Kernel bf16_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f"))
    return {dpbf16_loop_avx512, "avx512bf16: 16 x vdpbf16ps zmm", 16 * 32 * 2.0};
  return {};
}

volatile float g_m = 1e-3f, g_c = 1e-3f;  // read at run time: the loops' operands are unknown

void run_peak(benchmark::State &state, const Kernel &k, const char *missing) {
  if (!k.loop) {
    state.SkipWithError(missing);
    return;
  }
  const float m = g_m, c = g_c;
  std::vector<float> results(kPeakThreads);
  for (auto _ : state) {
    std::vector<std::thread> workers;
    for (int i = 0; i < kPeakThreads; ++i)
      workers.emplace_back(
          [&results, &k, i, m, c] { results[static_cast<size_t>(i)] = k.loop(kTrips, m, c); });
    for (std::thread &w : workers) w.join();
    benchmark::DoNotOptimize(results.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(k.isa) + ", " + std::to_string(kPeakThreads) + " threads");
  state.counters["GFLOPS"] =
      benchmark::Counter(k.flops_per_trip * static_cast<double>(kTrips) * kPeakThreads,
                         benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_PeakFmaF32(benchmark::State &state) { run_peak(state, f32_kernel(), "no avx2+fma"); }
void BM_PeakFmaBf16(benchmark::State &state) { run_peak(state, bf16_kernel(), "no avx512_bf16"); }

}  // namespace

BENCHMARK(BM_PeakFmaF32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", kiln_bench::min_of)
    ->ComputeStatistics("max", kiln_bench::max_of);
BENCHMARK(BM_PeakFmaBf16)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", kiln_bench::min_of)
    ->ComputeStatistics("max", kiln_bench::max_of);
