// W1 (issue 10): the square GEMM C = A·B through kiln.hpp against a raw oneDNN matmul primitive
// created once, fp32 at n = 64, 256, 1024, 2048 and bf16 at 1024, 2 threads on both sides.
// Target: kiln >= 95% of raw oneDNN at n >= 256. benchmarks/README.md, "### W1", defines it.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "bench_training.h"
#include "bench_util.h"
#include "kiln/kiln.hpp"

namespace {

constexpr int kW1Threads = 2;

// OpenMP's thread count for the calling thread, which the raw oneDNN primitive uses (oneDNN is
// built on OpenMP here): set to kW1Threads for the life of the scope, so the raw side runs on as
// many threads as kiln's, whatever OMP_NUM_THREADS says. libgomp is in the process through
// libdnnl; the benchmarks do not link OpenMP themselves, so its entry points are looked up at run
// time. Without them (a oneDNN on another runtime) OMP_NUM_THREADS decides, and `ok` says so.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int n) {
    set_ = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
    if (!set_ || !get) return;
    previous_ = get();
    set_(n);
  }
  ~OmpThreadsScope() {
    if (set_ && previous_ > 0) set_(previous_);
  }
  OmpThreadsScope(const OmpThreadsScope &) = delete;
  OmpThreadsScope &operator=(const OmpThreadsScope &) = delete;
  bool ok() const { return set_ != nullptr && previous_ > 0; }

 private:
  void (*set_)(int) = nullptr;
  int previous_ = 0;
};

kiln::Tensor w1_operand(int64_t n, uint64_t seed, kiln::DType dtype) {
  kiln::Tensor t = kiln::random_uniform({n, n}, -1, 1, seed);
  return dtype == kiln::DType::float32 ? t : kiln::cast(t, dtype);
}

void run_kiln(benchmark::State &state, kiln::DType dtype) {
  const int64_t n = state.range(0);
  kiln::ThreadCountScope threads(kW1Threads);
  kiln::Tensor a = w1_operand(n, 1, dtype);
  kiln::Tensor b = w1_operand(n, 2, dtype);
  kiln::Tensor warm = kiln::matmul(a, b);  // the primitive made and cached before timing
  benchmark::DoNotOptimize(warm.get());
  kiln_bench::time_matmul(state, a, b);
  kiln_bench::count_square_matmul_flops(state, n);
}

// The raw side: one oneDNN matmul primitive for [n, n] x [n, n] -> [n, n], row-major, made once
// before the loop; each iteration executes it and waits. bf16 takes bf16 A and B and writes a bf16
// C, as kiln's bfloat16 matmul does.
void run_raw(benchmark::State &state, dnnl::memory::data_type dt) {
  const int64_t n = state.range(0);
  OmpThreadsScope threads(kW1Threads);
  if (!threads.ok()) state.SetLabel("OpenMP entry points not found: threads from OMP_NUM_THREADS");
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  dnnl::memory::desc md({n, n}, dt, dnnl::memory::format_tag::ab);
  dnnl::matmul prim;
  try {
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(md, md, md), eng));
  } catch (const dnnl::error &e) {
    // oneDNN 2.6 has a bf16 matmul only for CPUs with AVX-512 (avx512_core and up).
    state.SkipWithError(
        (std::string("oneDNN has no matmul for this data type on this CPU: ") + e.what()).c_str());
    return;
  }
  const kiln::DType dtype =
      dt == dnnl::memory::data_type::bf16 ? kiln::DType::bfloat16 : kiln::DType::float32;
  kiln::Tensor a = w1_operand(n, 1, dtype);
  kiln::Tensor b = w1_operand(n, 2, dtype);
  dnnl::memory ma(md, eng, const_cast<void *>(a.data<void>()));
  dnnl::memory mb(md, eng, const_cast<void *>(b.data<void>()));
  dnnl::memory mc(md, eng);
  prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});  // warm-up
  s.wait();
  for (auto _ : state) {
    prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    s.wait();
  }
  kiln_bench::count_square_matmul_flops(state, n);
}

void BM_W1KilnMatmul(benchmark::State &state) { run_kiln(state, kiln::DType::float32); }
void BM_W1RawOneDnnMatmul(benchmark::State &state) { run_raw(state, dnnl::memory::data_type::f32); }
void BM_W1KilnMatmulBf16(benchmark::State &state) { run_kiln(state, kiln::DType::bfloat16); }
void BM_W1RawOneDnnMatmulBf16(benchmark::State &state) { run_raw(state, dnnl::memory::data_type::bf16); }

// Each repetition reports the mean of its iterations; min and max over the repetitions beside
// Google Benchmark's mean, median and stddev.
benchmark::internal::Benchmark *w1(benchmark::internal::Benchmark *b) {
  return b->Unit(benchmark::kMicrosecond)
      ->UseRealTime()
      ->ComputeStatistics("min", kiln_bench::min_of)
      ->ComputeStatistics("max", kiln_bench::max_of);
}
void w1_f32(benchmark::internal::Benchmark *b) { w1(b)->Arg(64)->Arg(256)->Arg(1024)->Arg(2048); }
void w1_bf16(benchmark::internal::Benchmark *b) { w1(b)->Arg(1024); }

}  // namespace

BENCHMARK(BM_W1KilnMatmul)->Apply(w1_f32);
BENCHMARK(BM_W1RawOneDnnMatmul)->Apply(w1_f32);
BENCHMARK(BM_W1KilnMatmulBf16)->Apply(w1_bf16);
BENCHMARK(BM_W1RawOneDnnMatmulBf16)->Apply(w1_bf16);
