// matmul through kiln.hpp against a raw oneDNN matmul primitive created once.
// Target (issue 2): kiln >= 95% of raw at 256^3 and 1024^3.
#include <benchmark/benchmark.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "bench_util.h"
#include "kiln/kiln.hpp"

namespace {

void BM_KilnMatmul(benchmark::State &state) {
  const int64_t n = state.range(0);
  kiln::Tensor a = kiln::random_uniform({n, n}, -1, 1, 1);
  kiln::Tensor b = kiln::random_uniform({n, n}, -1, 1, 2);
  kiln_bench::time_matmul(state, a, b);
  kiln_bench::count_square_matmul_flops(state, n);
}

void BM_RawOneDnnMatmul(benchmark::State &state) {
  const int64_t n = state.range(0);
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  dnnl::memory::desc md({n, n}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md, md, md), eng);
  dnnl::matmul prim(pd);
  kiln::Tensor a = kiln::random_uniform({n, n}, -1, 1, 1);
  kiln::Tensor b = kiln::random_uniform({n, n}, -1, 1, 2);
  dnnl::memory ma(md, eng, const_cast<float *>(a.data<float>()));
  dnnl::memory mb(md, eng, const_cast<float *>(b.data<float>()));
  dnnl::memory mc(md, eng);
  for (auto _ : state) {
    prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    s.wait();
  }
  kiln_bench::count_square_matmul_flops(state, n);
}

void BM_KilnMatmulBf16(benchmark::State &state) {
  const int64_t n = state.range(0);
  kiln::Tensor a = kiln::cast(kiln::random_uniform({n, n}, -1, 1, 1), kiln::DType::bfloat16);
  kiln::Tensor b = kiln::cast(kiln::random_uniform({n, n}, -1, 1, 2), kiln::DType::bfloat16);
  kiln_bench::time_matmul(state, a, b);
  kiln_bench::count_square_matmul_flops(state, n);
}

}  // namespace

BENCHMARK(BM_KilnMatmul)->Arg(256)->Arg(1024)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RawOneDnnMatmul)->Arg(256)->Arg(1024)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KilnMatmulBf16)->Arg(256)->Arg(1024)->Unit(benchmark::kMicrosecond)->UseRealTime();
